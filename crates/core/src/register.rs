//! `register`: makes sure the snapshot repository is registered with the intended settings, and
//! that every node can write to it. The repository is an S3 bucket (`s3`, the default; through
//! `role_arn` on Amazon OpenSearch Service), a shared folder (`fs`) or an Azure Blob Storage
//! container (`azure`) on self-managed clusters, such as the one a user restores into after
//! leaving AWS.
//!
//! Idempotent: it reads the repository first and sends nothing more when it is already
//! registered as intended. Everything it would send is validated before the first request.

use std::time::Duration;

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{self, var, AuthSettings, RepositoryType};
use crate::error::{Error, ErrorKind, Result};
use crate::event::Invocation;
use crate::function::{prepare, Deps};
use crate::names;
use crate::opensearch::RepositoryDefinition;

/// IAM changes take seconds to reach OpenSearch; verification is retried with these pauses.
pub(crate) const VERIFY_BACKOFF: [Duration; 4] = [
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
];

/// Fields that override the environment for one invocation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterInput {
    pub repository: Option<String>,
    pub repository_type: Option<RepositoryType>,
    pub bucket: Option<String>,
    pub base_path: Option<String>,
    pub role_arn: Option<String>,
    pub region: Option<String>,
    pub server_side_encryption: Option<bool>,
    pub readonly: Option<bool>,
    /// `fs`: the folder on the cluster's nodes.
    pub location: Option<String>,
    /// `azure`: the container and the keystore client name.
    pub container: Option<String>,
    pub client: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationStatus {
    Created,
    Updated,
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisterOutput {
    pub repository: String,
    pub status: RegistrationStatus,
    /// Nodes that verified the repository; `null` when nothing was sent (unchanged).
    pub verified_nodes: Option<usize>,
}

/// The Lambda handler.
pub async fn handle(deps: &Result<Deps>, event: LambdaEvent<Value>) -> Result<RegisterOutput> {
    let (deps, invocation, _) = prepare(deps, event)?;
    run(deps, invocation).await
}

pub async fn run(deps: &Deps, invocation: Invocation<RegisterInput>) -> Result<RegisterOutput> {
    let (repository, desired) = intended_repository(deps, invocation.input)?;
    let existing = deps.opensearch.get_repository(&repository).await?;
    let status = match &existing {
        Some(current) if same_definition(current, &desired) => {
            tracing::info!(repository, "repository already registered as intended");
            return Ok(RegisterOutput {
                repository,
                status: RegistrationStatus::Unchanged,
                verified_nodes: None,
            });
        }
        Some(_) => RegistrationStatus::Updated,
        None => RegistrationStatus::Created,
    };
    deps.opensearch
        .put_repository(&repository, &desired)
        .await?;
    let verified_nodes = verify(deps, &repository).await?;
    tracing::info!(repository, ?status, verified_nodes, "repository registered");
    Ok(RegisterOutput {
        repository,
        status,
        verified_nodes: Some(verified_nodes),
    })
}

/// The repository name and definition the settings and event ask for, validated for its type
/// (also what `ossnap doctor` compares the registered repository with).
pub fn intended_repository(
    deps: &Deps,
    input: RegisterInput,
) -> Result<(String, RepositoryDefinition)> {
    let settings = &deps.settings;
    let repository = input
        .repository
        .clone()
        .unwrap_or_else(|| settings.repository.clone());
    names::validate_repository_name(&repository)?;
    let kind = input.repository_type.unwrap_or(settings.repository_type);
    let server_side_encryption = input
        .server_side_encryption
        .unwrap_or(settings.server_side_encryption);
    if server_side_encryption && kind != RepositoryType::S3 {
        return Err(Error::config(format!(
            "{}=true applies to s3 repositories only, not {}: unset it",
            var::SERVER_SIDE_ENCRYPTION,
            kind.name()
        )));
    }
    let readonly = input.readonly.unwrap_or(settings.readonly);
    let mut wanted = match kind {
        RepositoryType::S3 => s3_settings(deps, input)?,
        RepositoryType::Fs => fs_settings(deps, input)?,
        RepositoryType::Azure => azure_settings(deps, input)?,
    };
    for (key, flag) in [
        ("server_side_encryption", server_side_encryption),
        ("readonly", readonly),
    ] {
        if flag {
            wanted.insert(key.into(), Value::String("true".into()));
        }
    }
    Ok((
        repository,
        RepositoryDefinition {
            kind: kind.name().into(),
            settings: wanted,
        },
    ))
}

/// `bucket`, `base_path`, `region` and `role_arn` (required with SigV4: Amazon OpenSearch Service
/// writes to S3 only through a role it assumes).
fn s3_settings(deps: &Deps, input: RegisterInput) -> Result<Map<String, Value>> {
    let settings = &deps.settings;
    let (bucket, base_path) = settings.location(input.bucket, input.base_path)?;
    let role_arn = input.role_arn.or_else(|| settings.role_arn.clone());
    match &role_arn {
        Some(role_arn) => names::validate_role_arn(role_arn)?,
        None if settings.auth == AuthSettings::SigV4 => {
            return Err(config::missing(
                var::ROLE_ARN,
                "role_arn",
                "the ARN of the role OpenSearch assumes to write to the bucket",
            ))
        }
        None => {}
    }
    let region = input.region.or_else(|| settings.region.clone());
    let mut wanted = Map::new();
    wanted.insert("bucket".into(), Value::String(bucket));
    insert_present(
        &mut wanted,
        [
            ("base_path", base_path),
            ("region", region),
            ("role_arn", role_arn),
        ],
    );
    Ok(wanted)
}

/// `location`: an absolute folder under the cluster's `path.repo`.
fn fs_settings(deps: &Deps, input: RegisterInput) -> Result<Map<String, Value>> {
    let location = input
        .location
        .or_else(|| deps.settings.location.clone())
        .ok_or_else(|| {
            config::missing(
                var::LOCATION,
                "location",
                "the repository's folder, under one of the cluster's path.repo folders",
            )
        })?;
    names::validate_fs_location(&location)?;
    let mut wanted = Map::new();
    wanted.insert("location".into(), Value::String(location));
    Ok(wanted)
}

/// `container`, `base_path` and `client` (the keystore's `azure.client.<client>.*` entries).
fn azure_settings(deps: &Deps, input: RegisterInput) -> Result<Map<String, Value>> {
    let settings = &deps.settings;
    let container = input
        .container
        .or_else(|| settings.azure_container.clone())
        .ok_or_else(|| {
            config::missing(
                var::AZURE_CONTAINER,
                "container",
                "the Azure Blob Storage container that holds the snapshots",
            )
        })?;
    names::validate_azure_container(&container)?;
    let base_path = input.base_path.or_else(|| settings.base_path.clone());
    if let Some(base_path) = &base_path {
        names::validate_base_path(base_path)?;
    }
    let client = input.client.or_else(|| settings.azure_client.clone());
    let mut wanted = Map::new();
    wanted.insert("container".into(), Value::String(container));
    insert_present(&mut wanted, [("base_path", base_path), ("client", client)]);
    Ok(wanted)
}

fn insert_present<const N: usize>(
    settings: &mut Map<String, Value>,
    values: [(&str, Option<String>); N],
) {
    for (key, value) in values {
        if let Some(value) = value {
            settings.insert(key.into(), Value::String(value));
        }
    }
}

/// Whether the registered definition is the intended one. OpenSearch returns every setting as a
/// string; compare them as strings.
pub fn same_definition(current: &RepositoryDefinition, wanted: &RepositoryDefinition) -> bool {
    let as_strings = |settings: &Map<String, Value>| -> Map<String, Value> {
        settings
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), Value::String(text))
            })
            .collect()
    };
    current.kind == wanted.kind && as_strings(&current.settings) == as_strings(&wanted.settings)
}

async fn verify(deps: &Deps, repository: &str) -> Result<usize> {
    let mut pauses = VERIFY_BACKOFF.iter();
    loop {
        match deps.opensearch.verify_repository(repository).await {
            Err(error) if error.kind() == ErrorKind::RepositoryVerificationFailed => {
                let Some(pause) = pauses.next() else {
                    return Err(Error::new(
                        ErrorKind::RepositoryVerificationFailed,
                        format!(
                            "{} (still failing after {} attempts over {}s, longer than IAM changes take to propagate)",
                            error.message(),
                            VERIFY_BACKOFF.len() + 1,
                            VERIFY_BACKOFF.iter().map(Duration::as_secs).sum::<u64>()
                        ),
                    ));
                };
                tracing::warn!(
                    repository,
                    retry_in_s = pause.as_secs(),
                    "repository verification failed; retrying"
                );
                deps.clock.sleep(*pause).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::config::{Environment, Settings};
    use crate::opensearch::{Auth, OpenSearch};
    use serde_json::json;

    fn deps(vars: &[(&str, &str)]) -> Deps {
        let settings = Settings::from_env(&Environment::from_pairs(vars.iter().copied())).unwrap();
        Deps {
            settings,
            // Validation happens before any request; nothing listens here.
            opensearch: OpenSearch::new("http://127.0.0.1:9", Auth::None, Clock::system()).unwrap(),
            clock: Clock::without_sleeps(),
        }
    }

    const AWS: &[(&str, &str)] = &[
        ("SNAPSHOT_BUCKET", "acme-os-backups"),
        ("SNAPSHOT_BASE_PATH", "prod/domain-a"),
        (
            "SNAPSHOT_ROLE_ARN",
            "arn:aws:iam::123456789012:role/TheSnapshotRole",
        ),
        ("AWS_REGION", "eu-west-1"),
        ("SNAPSHOT_SERVER_SIDE_ENCRYPTION", "true"),
    ];

    #[test]
    fn the_definition_carries_the_aws_settings() {
        let (repository, definition) =
            intended_repository(&deps(AWS), RegisterInput::default()).unwrap();
        assert_eq!(repository, "ossnap");
        assert_eq!(
            serde_json::to_value(&definition).unwrap(),
            json!({"type": "s3", "settings": {
                "bucket": "acme-os-backups", "base_path": "prod/domain-a", "region": "eu-west-1",
                "role_arn": "arn:aws:iam::123456789012:role/TheSnapshotRole",
                "server_side_encryption": "true"}})
        );
    }

    #[test]
    fn event_fields_override_the_environment() {
        let input = RegisterInput {
            repository: Some("restore-target".into()),
            readonly: Some(true),
            server_side_encryption: Some(false),
            ..RegisterInput::default()
        };
        let (repository, definition) = intended_repository(&deps(AWS), input).unwrap();
        assert_eq!(repository, "restore-target");
        assert_eq!(definition.settings["readonly"], "true");
        assert!(!definition.settings.contains_key("server_side_encryption"));
    }

    #[test]
    fn bad_settings_are_refused_before_any_request() {
        for (field, input, needle) in [
            (
                "repository",
                RegisterInput {
                    repository: Some("cs-automated".into()),
                    ..Default::default()
                },
                "reserved",
            ),
            (
                "role_arn",
                RegisterInput {
                    role_arn: Some("arn:aws:iam::123456789012:user/me".into()),
                    ..Default::default()
                },
                "not a role",
            ),
            (
                "bucket",
                RegisterInput {
                    bucket: Some("Bad_Bucket".into()),
                    ..Default::default()
                },
                "SNAPSHOT_BUCKET",
            ),
            (
                "base_path",
                RegisterInput {
                    base_path: Some("/abs".into()),
                    ..Default::default()
                },
                "must not start with '/'",
            ),
            (
                "base_path",
                RegisterInput {
                    base_path: Some("a/../b".into()),
                    ..Default::default()
                },
                "'..'",
            ),
        ] {
            let error = intended_repository(&deps(AWS), input).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::ConfigError, "{field}");
            assert!(error.message().contains(needle), "{field}: {error}");
        }
    }

    #[test]
    fn missing_settings_name_the_variable() {
        let error = intended_repository(&deps(&[]), RegisterInput::default()).unwrap_err();
        assert!(error.message().contains("SNAPSHOT_BUCKET"), "{error}");
        let error = intended_repository(
            &deps(&[("SNAPSHOT_BUCKET", "b-1")]),
            RegisterInput::default(),
        )
        .unwrap_err();
        assert!(error.message().contains("SNAPSHOT_ROLE_ARN"), "{error}");
        // Self-managed clusters need no role.
        intended_repository(
            &deps(&[("SNAPSHOT_BUCKET", "b-1"), ("OPENSEARCH_AUTH", "none")]),
            RegisterInput::default(),
        )
        .unwrap();
    }

    #[test]
    fn self_managed_types_carry_their_own_settings() {
        let (_, fs) = intended_repository(
            &deps(&[
                ("SNAPSHOT_REPOSITORY_TYPE", "fs"),
                ("SNAPSHOT_LOCATION", "/mnt/snapshots/prod"),
                ("SNAPSHOT_READONLY", "true"),
            ]),
            RegisterInput::default(),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&fs).unwrap(),
            json!({"type": "fs", "settings": {"location": "/mnt/snapshots/prod", "readonly": "true"}})
        );
        let (_, azure) = intended_repository(
            &deps(&[
                ("SNAPSHOT_REPOSITORY_TYPE", "azure"),
                ("AZURE_STORAGE_CONTAINER", "ossnap-local"),
                ("SNAPSHOT_BASE_PATH", "clusters/a"),
            ]),
            RegisterInput {
                client: Some("secondary".into()),
                ..RegisterInput::default()
            },
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&azure).unwrap(),
            json!({"type": "azure", "settings": {"container": "ossnap-local", "base_path": "clusters/a", "client": "secondary"}})
        );
        // The event's type wins over the environment's; an S3 role is not needed on another type.
        let input = RegisterInput {
            repository_type: Some(RepositoryType::Fs),
            location: Some("/srv/repo".into()),
            ..RegisterInput::default()
        };
        let (_, from_event) =
            intended_repository(&deps(&[("AWS_REGION", "eu-west-1")]), input).unwrap();
        assert_eq!(from_event.kind, "fs");
    }

    #[test]
    fn self_managed_types_name_what_is_missing_or_wrong() {
        for (vars, needle) in [
            (
                vec![("SNAPSHOT_REPOSITORY_TYPE", "fs")],
                "SNAPSHOT_LOCATION is not set",
            ),
            (
                vec![
                    ("SNAPSHOT_REPOSITORY_TYPE", "fs"),
                    ("SNAPSHOT_LOCATION", "repo"),
                ],
                "must be an absolute path",
            ),
            (
                vec![("SNAPSHOT_REPOSITORY_TYPE", "azure")],
                "AZURE_STORAGE_CONTAINER is not set",
            ),
            (
                vec![
                    ("SNAPSHOT_REPOSITORY_TYPE", "azure"),
                    ("AZURE_STORAGE_CONTAINER", "Snapshots"),
                ],
                "lowercase",
            ),
            (
                vec![
                    ("SNAPSHOT_REPOSITORY_TYPE", "fs"),
                    ("SNAPSHOT_LOCATION", "/srv/repo"),
                    ("SNAPSHOT_SERVER_SIDE_ENCRYPTION", "true"),
                ],
                "applies to s3 repositories only",
            ),
        ] {
            let error = intended_repository(&deps(&vars), RegisterInput::default()).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::ConfigError);
            assert!(error.message().contains(needle), "{needle}: {error}");
        }
    }

    #[test]
    fn definitions_compare_as_opensearch_returns_them() {
        let (_, wanted) = intended_repository(&deps(AWS), RegisterInput::default()).unwrap();
        let returned: RepositoryDefinition = serde_json::from_value(json!({"type": "s3", "settings": {
            "bucket": "acme-os-backups", "base_path": "prod/domain-a", "region": "eu-west-1",
            "role_arn": "arn:aws:iam::123456789012:role/TheSnapshotRole", "server_side_encryption": true}}))
        .unwrap();
        assert!(same_definition(&returned, &wanted));
        let mut other_bucket = returned.clone();
        other_bucket
            .settings
            .insert("bucket".into(), json!("elsewhere"));
        assert!(!same_definition(&other_bucket, &wanted));
        let mut fs = returned;
        fs.kind = "fs".into();
        assert!(!same_definition(&fs, &wanted));
    }
}
