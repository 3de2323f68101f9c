//! ossnap-retention: the retention function. It reads verify's verdicts on damaged snapshots
//! from the repository's bucket ([`ossnap_storage::verdicts`]), then applies the policy of
//! [`ossnap_core::retention`] to the cluster's snapshots, so a snapshot the cluster calls SUCCESS
//! but verify found damaged never counts among the healthy ones that must stay.
//!
//! It lists one S3 folder (`ossnap-verdicts/<base path>/`) and writes nothing to S3: snapshots
//! are deleted through the OpenSearch API only. A listing that fails stops the run before any
//! deletion, since without it a damaged snapshot could be counted as healthy.

use lambda_runtime::LambdaEvent;
use ossnap_core::config::{AuthSettings, Environment, Settings};
use ossnap_core::event::Invocation;
use ossnap_core::function::prepare;
use ossnap_core::retention::{self, Policy, Retention, RetentionInput, RetentionOutput};
use ossnap_core::{Deps, Error, Result};
use ossnap_storage::s3::S3Store;
use ossnap_storage::verdicts::Verdicts;
use serde_json::Value;

/// The retention function's dependencies: the cluster's, the policy, and the S3 client that
/// reads the verdicts.
#[derive(Debug, Clone)]
pub struct RetentionFunction {
    pub retention: Retention,
    pub store: S3Store,
}

impl RetentionFunction {
    /// The settings and policy of `env`; one SDK configuration from aws-config's default chain
    /// for the S3 client (`AWS_ENDPOINT_URL_S3` points it at the local stack) and for signing
    /// the cluster's requests.
    pub async fn from_env(env: &Environment) -> Result<RetentionFunction> {
        let policy = Policy::from_env(env)?;
        let settings = Settings::from_env(env)?;
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let credentials = match settings.auth {
            AuthSettings::SigV4 => sdk.credentials_provider(),
            _ => None,
        };
        Ok(RetentionFunction {
            retention: Retention {
                deps: Deps::with_credentials(settings, credentials).await?,
                policy,
            },
            store: S3Store::new(ossnap_storage::s3::client(env, &sdk)),
        })
    }
}

pub async fn handle(
    function: &Result<RetentionFunction>,
    event: LambdaEvent<Value>,
) -> Result<RetentionOutput> {
    let (function, invocation, _) = prepare(function, event)?;
    run(&function.retention, &function.store, invocation).await
}

/// Applies the policy, with the verdicts on the repository where its snapshots are (read once
/// the input is valid).
pub async fn run(
    retention: &Retention,
    s3: &S3Store,
    invocation: Invocation<RetentionInput>,
) -> Result<RetentionOutput> {
    let location = verdicts_location(&retention.deps.settings, &invocation.input);
    let damaged = async {
        let (bucket, base_path) = location?;
        Verdicts::of_repository(s3, bucket, base_path.as_deref())
            .damaged()
            .await
    };
    retention::run(&retention.deps, &retention.policy, damaged, invocation).await
}

/// Where verify's verdicts on the input's repository are: its bucket and base path, by default
/// the settings' for `SNAPSHOT_REPOSITORY`. Another repository must give at least one of them
/// (its bucket is then the settings' if left out, its base path its own: none is the bucket's
/// root), since the settings' folder holds none of its verdicts and a snapshot verify found
/// damaged would count as healthy.
fn verdicts_location(
    settings: &Settings,
    input: &RetentionInput,
) -> Result<(String, Option<String>)> {
    let another = input
        .repository
        .as_ref()
        .filter(|repository| **repository != settings.repository);
    if let (Some(repository), None, None) = (another, &input.bucket, &input.base_path) {
        return Err(Error::config(format!(
            "retention of repository {repository:?} needs its \"bucket\" and \"base_path\" in the \
             event: SNAPSHOT_BUCKET and SNAPSHOT_BASE_PATH are those of {:?} (SNAPSHOT_REPOSITORY), \
             and retention reads verify's verdicts where the snapshots are, so that a damaged \
             snapshot never counts as healthy",
            settings.repository
        )));
    }
    let (bucket, base_path) = settings.location(input.bucket.clone(), input.base_path.clone())?;
    // Another repository's base path is its own: none given is the bucket's root.
    let base_path = if another.is_some() {
        input.base_path.clone()
    } else {
        base_path
    };
    Ok((bucket, base_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::from_env(&Environment::from_pairs([
            ("SNAPSHOT_REPOSITORY", "ossnap"),
            ("SNAPSHOT_BUCKET", "acme-backups"),
            ("SNAPSHOT_BASE_PATH", "prod"),
        ]))
        .unwrap()
    }

    fn input(
        repository: Option<&str>,
        bucket: Option<&str>,
        base_path: Option<&str>,
    ) -> RetentionInput {
        RetentionInput {
            repository: repository.map(str::to_string),
            bucket: bucket.map(str::to_string),
            base_path: base_path.map(str::to_string),
            dry_run: None,
        }
    }

    #[test]
    fn the_configured_repository_has_the_configured_location() {
        let expected = ("acme-backups".to_string(), Some("prod".to_string()));
        for repository in [None, Some("ossnap")] {
            let location = verdicts_location(&settings(), &input(repository, None, None));
            assert_eq!(location.unwrap(), expected);
        }
    }

    #[test]
    fn another_repository_never_takes_the_configured_base_path() {
        let location = |bucket, base_path| {
            verdicts_location(&settings(), &input(Some("archive"), bucket, base_path))
        };
        let refused = location(None, None).unwrap_err();
        assert_eq!(refused.kind(), ossnap_core::ErrorKind::ConfigError);
        assert_eq!(
            location(Some("archive-bucket"), None).unwrap(),
            ("archive-bucket".to_string(), None)
        );
        assert_eq!(
            location(None, Some("archive")).unwrap(),
            ("acme-backups".to_string(), Some("archive".to_string()))
        );
    }
}
