//! Settings from the environment, each with its documented default.
//!
//! Every function reads the same variables once at init. Missing required settings are not an
//! init failure: each invocation reports a `ConfigError` naming the variable, so the cause shows
//! in the console and in Step Functions rather than as an opaque `Runtime.ExitError`.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// The names of the variables ossnap reads (documented in README).
pub mod var {
    pub const ENDPOINT: &str = "OPENSEARCH_ENDPOINT";
    pub const AUTH: &str = "OPENSEARCH_AUTH";
    pub const USERNAME: &str = "OPENSEARCH_USERNAME";
    pub const PASSWORD: &str = "OPENSEARCH_PASSWORD";
    pub const REPOSITORY: &str = "SNAPSHOT_REPOSITORY";
    pub const REPOSITORY_TYPE: &str = "SNAPSHOT_REPOSITORY_TYPE";
    pub const LOCATION: &str = "SNAPSHOT_LOCATION";
    pub const AZURE_CONTAINER: &str = "AZURE_STORAGE_CONTAINER";
    pub const AZURE_CLIENT: &str = "SNAPSHOT_AZURE_CLIENT";
    pub const BUCKET: &str = "SNAPSHOT_BUCKET";
    pub const BASE_PATH: &str = "SNAPSHOT_BASE_PATH";
    pub const ROLE_ARN: &str = "SNAPSHOT_ROLE_ARN";
    pub const PREFIX: &str = "SNAPSHOT_PREFIX";
    pub const INDICES: &str = "SNAPSHOT_INDICES";
    pub const SERVER_SIDE_ENCRYPTION: &str = "SNAPSHOT_SERVER_SIDE_ENCRYPTION";
    pub const READONLY: &str = "SNAPSHOT_READONLY";
    pub const RESTORE_DRILL: &str = "RESTORE_DRILL";
    pub const RESTORE_DRILL_MAX_BYTES: &str = "RESTORE_DRILL_MAX_BYTES";
    pub const REGION: &str = "AWS_REGION";
    pub const STACK: &str = "OSSNAP_STACK";
}

pub const DEFAULT_REPOSITORY: &str = "ossnap";
pub const DEFAULT_PREFIX: &str = "ossnap";
/// Everything but the security plugin's index, which cannot be restored without an admin
/// certificate and would make a full restore fail. The exclusion is a wildcard because OpenSearch
/// refuses to exclude a plain name that does not exist (`index_not_found_exception`), and a
/// domain without fine-grained access control has no security index.
pub const DEFAULT_INDICES: &str = "*,-.opendistro_security*";
/// The restore drill restores nothing bigger (1 GiB) unless told otherwise.
pub const DEFAULT_RESTORE_DRILL_MAX_BYTES: u64 = 1 << 30;

/// A read-only view of the process environment, so tests can hand in their own.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: HashMap<String, String>,
}

impl Environment {
    pub fn from_process() -> Self {
        Environment {
            vars: std::env::vars().collect(),
        }
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Environment {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// This environment with `overrides` written over it (the command line's flags).
    pub fn with_overrides<K: Into<String>, V: Into<String>>(
        mut self,
        overrides: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.vars
            .extend(overrides.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// The value of `name`, with an empty value treated as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    fn flag(&self, name: &str) -> Result<bool> {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None | Some("false") | Some("0") | Some("no") => Ok(false),
            Some("true") | Some("1") | Some("yes") => Ok(true),
            Some(other) => Err(Error::config(format!(
                "{name}={other:?} is not a boolean: set it to true or false"
            ))),
        }
    }
}

/// How requests to the domain are authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthSettings {
    /// SigV4 with service `es` and credentials from aws-config's default chain.
    SigV4,
    /// HTTP basic auth, for clusters outside AWS.
    Basic { username: String, password: String },
    /// No authentication (the local stack, or a self-managed cluster behind a private network).
    None,
}

/// The kind of snapshot repository `register` creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepositoryType {
    /// An S3 bucket (`repository-s3`; on Amazon OpenSearch Service through `role_arn`).
    #[default]
    S3,
    /// A shared file system folder under the cluster's `path.repo` (self-managed clusters).
    Fs,
    /// An Azure Blob Storage container (`repository-azure`; self-managed clusters on Azure).
    Azure,
}

impl RepositoryType {
    /// The `type` OpenSearch knows it by.
    pub const fn name(self) -> &'static str {
        match self {
            RepositoryType::S3 => "s3",
            RepositoryType::Fs => "fs",
            RepositoryType::Azure => "azure",
        }
    }

    fn parse(value: &str) -> Result<Self> {
        match value.to_ascii_lowercase().as_str() {
            "s3" => Ok(RepositoryType::S3),
            "fs" => Ok(RepositoryType::Fs),
            "azure" => Ok(RepositoryType::Azure),
            other => Err(Error::config(format!(
                "{}={other:?} is not supported: use s3 (default), fs or azure",
                var::REPOSITORY_TYPE
            ))),
        }
    }
}

/// ossnap's settings, read once at init.
#[derive(Debug, Clone)]
pub struct Settings {
    pub endpoint: Option<String>,
    pub auth: AuthSettings,
    pub region: Option<String>,
    pub repository: String,
    pub repository_type: RepositoryType,
    pub bucket: Option<String>,
    pub base_path: Option<String>,
    pub role_arn: Option<String>,
    /// `fs` repositories: the folder on the cluster's nodes.
    pub location: Option<String>,
    /// `azure` repositories: the container, and the client name of the cluster's keystore.
    pub azure_container: Option<String>,
    pub azure_client: Option<String>,
    pub prefix: String,
    pub indices: String,
    pub server_side_encryption: bool,
    pub readonly: bool,
    /// The snapshot workflow's restore drill is on.
    pub restore_drill: bool,
    /// The drill skips snapshots whose smallest index is bigger.
    pub restore_drill_max_bytes: u64,
    /// The stack that deployed the function: a dimension of its metrics.
    pub stack: Option<String>,
}

impl Settings {
    pub fn from_env(env: &Environment) -> Result<Settings> {
        let auth = match env.get(var::AUTH).map(str::to_ascii_lowercase).as_deref() {
            None | Some("sigv4") => AuthSettings::SigV4,
            Some("none") => AuthSettings::None,
            Some("basic") => AuthSettings::Basic {
                username: required(env, var::USERNAME, "the user name for basic auth")?,
                password: required(env, var::PASSWORD, "the password for basic auth")?,
            },
            Some(other) => {
                return Err(Error::config(format!(
                    "{}={other:?} is not supported: use sigv4 (default), basic or none",
                    var::AUTH
                )))
            }
        };
        Ok(Settings {
            endpoint: env.get(var::ENDPOINT).map(str::to_string),
            auth,
            region: env.get(var::REGION).map(str::to_string),
            repository: env
                .get(var::REPOSITORY)
                .unwrap_or(DEFAULT_REPOSITORY)
                .to_string(),
            repository_type: env
                .get(var::REPOSITORY_TYPE)
                .map(RepositoryType::parse)
                .transpose()?
                .unwrap_or_default(),
            bucket: env.get(var::BUCKET).map(str::to_string),
            base_path: env.get(var::BASE_PATH).map(str::to_string),
            role_arn: env.get(var::ROLE_ARN).map(str::to_string),
            location: env.get(var::LOCATION).map(str::to_string),
            azure_container: env.get(var::AZURE_CONTAINER).map(str::to_string),
            azure_client: env.get(var::AZURE_CLIENT).map(str::to_string),
            prefix: env.get(var::PREFIX).unwrap_or(DEFAULT_PREFIX).to_string(),
            indices: env.get(var::INDICES).unwrap_or(DEFAULT_INDICES).to_string(),
            server_side_encryption: env.flag(var::SERVER_SIDE_ENCRYPTION)?,
            readonly: env.flag(var::READONLY)?,
            stack: env.get(var::STACK).map(str::to_string),
            restore_drill: env.flag(var::RESTORE_DRILL)?,
            restore_drill_max_bytes: match env.get(var::RESTORE_DRILL_MAX_BYTES) {
                None => DEFAULT_RESTORE_DRILL_MAX_BYTES,
                Some(text) => text.trim().parse().map_err(|_| {
                    Error::config(format!(
                        "{}={text:?} is not a number of bytes, e.g. 1073741824 for 1 GiB",
                        var::RESTORE_DRILL_MAX_BYTES
                    ))
                })?,
            },
        })
    }
}

fn required(env: &Environment, name: &str, what: &str) -> Result<String> {
    env.get(name)
        .map(str::to_string)
        .ok_or_else(|| Error::config(format!("{name} is not set: set it to {what}")))
}

impl Settings {
    /// Where the repository lies: the bucket and base path of the event, else of the
    /// environment, validated.
    pub fn location(
        &self,
        bucket: Option<String>,
        base_path: Option<String>,
    ) -> Result<(String, Option<String>)> {
        let bucket = bucket
            .or_else(|| self.bucket.clone())
            .ok_or_else(|| missing(var::BUCKET, "bucket", "the bucket that holds the snapshots"))?;
        crate::names::validate_bucket_name(&bucket)?;
        let base_path = base_path.or_else(|| self.base_path.clone());
        if let Some(base_path) = &base_path {
            crate::names::validate_base_path(base_path)?;
        }
        Ok((bucket, base_path))
    }
}

impl Settings {
    /// The dimensions of `function`'s metrics about `repository`.
    pub fn metric_dimensions<'a>(
        &'a self,
        function: &'a str,
        repository: &'a str,
    ) -> crate::metrics::Dimensions<'a> {
        crate::metrics::Dimensions {
            function,
            repository,
            stack: self.stack.as_deref(),
        }
    }
}

/// The error for a setting that an operation needs and nobody gave.
pub fn missing(name: &str, field: &str, what: &str) -> Error {
    Error::config(format!(
        "{name} is not set: set it to {what}, or pass \"{field}\" in the event"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn defaults_leave_out_the_security_index() {
        let settings = Settings::from_env(&Environment::default()).unwrap();
        assert_eq!(settings.repository, "ossnap");
        assert_eq!(settings.prefix, "ossnap");
        assert_eq!(settings.indices, "*,-.opendistro_security*");
        assert_eq!(settings.auth, AuthSettings::SigV4);
        assert!(settings.endpoint.is_none());
    }

    #[test]
    fn basic_auth_names_the_missing_variable() {
        let env = Environment::from_pairs([(var::AUTH, "basic"), (var::USERNAME, "admin")]);
        let error = Settings::from_env(&env).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ConfigError);
        assert!(error.message().contains("OPENSEARCH_PASSWORD"), "{error}");
    }

    #[test]
    fn unknown_auth_mode_and_bad_flags_are_refused() {
        let env = Environment::from_pairs([(var::AUTH, "kerberos")]);
        assert!(Settings::from_env(&env)
            .unwrap_err()
            .message()
            .contains("OPENSEARCH_AUTH"));
        let env = Environment::from_pairs([(var::REPOSITORY_TYPE, "hdfs")]);
        assert!(Settings::from_env(&env)
            .unwrap_err()
            .message()
            .contains("use s3 (default), fs or azure"));
        let env = Environment::from_pairs([(var::READONLY, "maybe")]);
        assert!(Settings::from_env(&env)
            .unwrap_err()
            .message()
            .contains("SNAPSHOT_READONLY"));
    }

    #[test]
    fn empty_values_count_as_unset() {
        let env = Environment::from_pairs([(var::REPOSITORY, " "), (var::ENDPOINT, "")]);
        let settings = Settings::from_env(&env).unwrap();
        assert_eq!(settings.repository, "ossnap");
        assert!(settings.endpoint.is_none());
    }
}
