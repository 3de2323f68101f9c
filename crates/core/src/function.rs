//! What every function shares: its dependencies, built once at init, and the way an
//! invocation's event becomes an operation's input.

use lambda_runtime::{Context, LambdaEvent};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::Result;
use crate::event::Invocation;
#[cfg(feature = "opensearch")]
use crate::{
    clock::Clock,
    config::{Environment, Settings},
    opensearch::OpenSearch,
};

/// Everything an operation needs, built once per process.
#[cfg(feature = "opensearch")]
#[derive(Debug, Clone)]
pub struct Deps {
    pub settings: Settings,
    pub opensearch: OpenSearch,
    pub clock: Clock,
}

#[cfg(feature = "opensearch")]
impl Deps {
    /// Reads the settings and builds the client. An error here is kept and reported by every
    /// invocation (as a `ConfigError` naming the variable) instead of failing the init.
    pub async fn from_env(env: &Environment) -> Result<Deps> {
        Deps::with_credentials(Settings::from_env(env)?, None).await
    }

    /// The client for `settings`, signing (SigV4) with `credentials` when given: a provider the
    /// caller has already built (the command line's profile, or an SDK configuration that a
    /// function loads for S3 as well), instead of a default chain of its own.
    pub async fn with_credentials(
        settings: Settings,
        credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
    ) -> Result<Deps> {
        let clock = Clock::system();
        let opensearch =
            OpenSearch::from_settings_with(&settings, clock.clone(), credentials).await?;
        Ok(Deps {
            settings,
            opensearch,
            clock,
        })
    }
}

/// Splits an invocation into the dependencies (or the init error), the input parsed from
/// whichever envelope it came in, and the Lambda context.
pub fn prepare<D, I: DeserializeOwned>(
    deps: &Result<D>,
    event: LambdaEvent<Value>,
) -> Result<(&D, Invocation<I>, Context)> {
    let (payload, context) = event.into_parts();
    let deps = deps.as_ref().map_err(Clone::clone)?;
    Ok((deps, Invocation::parse(payload)?, context))
}
