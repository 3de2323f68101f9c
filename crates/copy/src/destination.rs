//! Where a copy writes: Azure Blob Storage, as the event's `to` and the `AZURE_STORAGE_*`
//! settings say (the secret from the environment or from Secrets Manager), or a store the
//! caller gives (a folder; a test's wrapper).

use std::fmt;
use std::sync::Arc;

use ossnap_core::config::Environment;
use ossnap_core::{Error, Result};
use ossnap_storage::azure::{AzureLocation, AzureStore};
use ossnap_storage::azure_target::AzureTarget;
use ossnap_storage::BlobSink;
use serde_json::{json, Value};

#[derive(Clone)]
pub enum Destination {
    /// Azure Blob Storage; the client reads the credential secret that
    /// `AZURE_CREDENTIALS_SECRET_ARN` names, when it names one.
    Azure {
        secrets: Option<aws_sdk_secretsmanager::Client>,
    },
    /// This store, whatever the event says (an event with `to` is refused).
    Store(Arc<dyn BlobSink>),
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Azure { .. } => f.write_str("Destination::Azure"),
            Destination::Store(store) => write!(f, "Destination::Store({})", store.location()),
        }
    }
}

/// A destination as one invocation resolved it, before any request.
#[derive(Clone)]
pub(crate) enum Target {
    Azure(AzureLocation),
    Store(Arc<dyn BlobSink>),
}

impl Destination {
    /// Validates the event's `to` against the settings; `source_base_path` is the base path
    /// an Azure destination gets unless told otherwise, so that a copy keeps its layout.
    pub(crate) fn resolve(
        &self,
        env: &Environment,
        to: Option<&AzureTarget>,
        source_base_path: &str,
    ) -> Result<Target> {
        match self {
            Destination::Azure { .. } => {
                let to = to.cloned().unwrap_or_default();
                let default_base_path = Some(source_base_path).filter(|base| !base.is_empty());
                Ok(Target::Azure(to.location(env, default_base_path)?))
            }
            Destination::Store(store) if to.is_none() => Ok(Target::Store(store.clone())),
            Destination::Store(store) => Err(Error::config(format!(
                "this copy writes to {}: leave \"to\" out of the event",
                store.location()
            ))),
        }
    }

    /// The store to write to; for Azure, with its credential (read from Secrets Manager when
    /// the settings name a secret).
    pub(crate) async fn open(
        &self,
        target: &Target,
        env: &Environment,
    ) -> Result<Arc<dyn BlobSink>> {
        match (self, target) {
            (Destination::Azure { secrets }, Target::Azure(location)) => {
                let to = AzureTarget {
                    account: Some(location.account.clone()),
                    container: Some(location.container.clone()),
                    base_path: Some(location.base_path.clone()),
                };
                let settings = to.settings(env, None, secrets.as_ref()).await?;
                Ok(Arc::new(AzureStore::connect(settings)?))
            }
            (_, Target::Store(store)) => Ok(store.clone()),
            (Destination::Store(_), Target::Azure(_)) => {
                unreachable!("a store destination resolves to itself")
            }
        }
    }
}

impl Target {
    /// As the output shows it: Azure's account, container and base path (what verify's
    /// `azure` field takes), or the store's location.
    pub(crate) fn describe(&self) -> Value {
        match self {
            Target::Azure(location) => json!({
                "account": location.account,
                "container": location.container,
                "base_path": location.base_path,
            }),
            Target::Store(store) => json!({"location": store.location()}),
        }
    }
}
