//! What the commands run with: the functions' settings read from the environment (flags written
//! over it), and AWS's SDK configuration from aws-config's full chain with the chosen profile,
//! loaded once and only when a command needs it (SigV4 or S3).

use std::path::Path;
use std::sync::Arc;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use ossnap_copy::{Copier, Destination};
use ossnap_core::config::{AuthSettings, Environment, Settings};
use ossnap_core::retention::Policy;
use ossnap_core::{Deps, Result};
use ossnap_storage::folder::FolderStore;
use ossnap_storage::s3::S3Store;
use ossnap_verify::Verifier;
use tokio::sync::OnceCell;

pub struct Context {
    pub env: Environment,
    sdk: OnceCell<SdkConfig>,
}

impl Context {
    pub fn new(env: Environment) -> Context {
        Context {
            env,
            sdk: OnceCell::new(),
        }
    }

    /// aws-config's chain: environment, the profile (`--profile`, `AWS_PROFILE`) with SSO,
    /// credential processes and assume-role, then container and instance metadata.
    pub async fn sdk(&self) -> &SdkConfig {
        self.sdk
            .get_or_init(|| async {
                let mut loader = aws_config::defaults(BehaviorVersion::latest());
                if let Some(profile) = self.env.get("AWS_PROFILE") {
                    loader = loader.profile_name(profile);
                }
                if let Some(region) = self.env.get("AWS_REGION") {
                    loader = loader.region(Region::new(region.to_string()));
                }
                loader.load().await
            })
            .await
    }

    /// The settings; with SigV4 and no `AWS_REGION`, the profile's region.
    pub async fn settings(&self) -> Result<Settings> {
        let mut settings = Settings::from_env(&self.env)?;
        if settings.auth == AuthSettings::SigV4 && settings.region.is_none() {
            settings.region = self.sdk().await.region().map(ToString::to_string);
        }
        Ok(settings)
    }

    pub async fn deps(&self) -> Result<Deps> {
        let settings = self.settings().await?;
        let credentials = match settings.auth {
            AuthSettings::SigV4 => self.sdk().await.credentials_provider(),
            _ => None,
        };
        Deps::with_credentials(settings, credentials).await
    }

    pub fn policy(&self) -> Result<Policy> {
        Policy::from_env(&self.env)
    }

    pub async fn verifier(&self) -> Result<Verifier> {
        Verifier::with_sdk_config(&self.env, self.sdk().await)
    }

    pub async fn s3(&self) -> aws_sdk_s3::Client {
        ossnap_verify::s3_client(&self.env, self.sdk().await)
    }

    /// A copier to Azure Blob Storage (the `AZURE_STORAGE_*` settings), or into `folder`.
    pub async fn copier(&self, folder: Option<&Path>) -> Result<Copier> {
        match folder {
            None => Copier::with_sdk_config(&self.env, self.sdk().await),
            Some(folder) => Copier::new(
                &self.env,
                S3Store::new(self.s3().await),
                Destination::Store(Arc::new(FolderStore::new(folder))),
            ),
        }
    }
}
