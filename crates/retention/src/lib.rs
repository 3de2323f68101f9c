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

/// The bucket and base path of the input's repository: the input's, else the settings'. The
/// settings' are `SNAPSHOT_REPOSITORY`'s only: for another repository they would name a folder
/// without its verdicts, and a snapshot verify found damaged would count as healthy, so
/// retention of another repository must say where it is.
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
    settings.location(input.bucket.clone(), input.base_path.clone())
}
