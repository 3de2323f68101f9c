//! The Azure side of a copy or a verify, as an event names it (`to` / `azure`: account,
//! container, base path), completed from the `AZURE_STORAGE_*` settings, with its secret from
//! the environment (command line, local stack) or from an AWS Secrets Manager secret (Lambda:
//! the template never puts a key in a function's environment).

use ossnap_core::config::Environment;
use ossnap_core::{names, Error, Result};
use serde::Deserialize;

use crate::azure::{AzureCredential, AzureLocation, AzureSettings};

pub const ACCOUNT: &str = "AZURE_STORAGE_ACCOUNT";
pub const CONTAINER: &str = "AZURE_STORAGE_CONTAINER";
pub const BASE_PATH: &str = "AZURE_STORAGE_BASE_PATH";
pub const KEY: &str = "AZURE_STORAGE_KEY";
pub const SAS_TOKEN: &str = "AZURE_STORAGE_SAS_TOKEN";
pub const ENDPOINT: &str = "AZURE_STORAGE_ENDPOINT";
/// In Lambda: the secret holding `{"account_key": ...}` or `{"sas_token": ...}`.
pub const CREDENTIALS_SECRET_ARN: &str = "AZURE_CREDENTIALS_SECRET_ARN";

/// The Azure repository an event names; each field left out comes from its setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureTarget {
    pub account: Option<String>,
    pub container: Option<String>,
    pub base_path: Option<String>,
}

/// The secret's JSON: one of the two credentials.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretValue {
    account_key: Option<String>,
    sas_token: Option<String>,
}

impl AzureTarget {
    /// The account, container and base path, validated; the base path defaults to
    /// `AZURE_STORAGE_BASE_PATH`, else `default_base_path` (the S3 repository's, so that a
    /// copy keeps its layout).
    pub fn location(
        &self,
        env: &Environment,
        default_base_path: Option<&str>,
    ) -> Result<AzureLocation> {
        let pick = |field: &Option<String>, name: &str| {
            field.clone().or_else(|| env.get(name).map(str::to_owned))
        };
        let account = pick(&self.account, ACCOUNT).ok_or_else(|| {
            Error::config(format!(
                "{ACCOUNT} is not set: set it to the storage account's name, or pass \"account\" in the event's Azure target"
            ))
        })?;
        let container = pick(&self.container, CONTAINER).ok_or_else(|| {
            Error::config(format!(
                "{CONTAINER} is not set: set it to the blob container's name, or pass \"container\" in the event's Azure target"
            ))
        })?;
        validate_account(&account)?;
        names::validate_azure_container(&container)?;
        let base_path = pick(&self.base_path, BASE_PATH)
            .or_else(|| default_base_path.map(str::to_owned))
            .unwrap_or_default();
        if !base_path.is_empty() {
            names::validate_base_path(&base_path)?;
        }
        Ok(AzureLocation {
            account,
            container,
            base_path,
        })
    }

    /// Everything needed to connect: [`Self::location`], the endpoint, and the credential from
    /// `AZURE_STORAGE_KEY` or `AZURE_STORAGE_SAS_TOKEN`, else from the secret that
    /// `AZURE_CREDENTIALS_SECRET_ARN` names, read with `secrets`.
    pub async fn settings(
        &self,
        env: &Environment,
        default_base_path: Option<&str>,
        secrets: Option<&aws_sdk_secretsmanager::Client>,
    ) -> Result<AzureSettings> {
        let location = self.location(env, default_base_path)?;
        let credential = match (env.get(KEY), env.get(SAS_TOKEN), env.get(CREDENTIALS_SECRET_ARN)) {
            (Some(_), Some(_), _) => {
                return Err(Error::config(format!(
                    "both {KEY} and {SAS_TOKEN} are set: keep one (a SAS scoped to the container is safer)"
                )))
            }
            (Some(key), None, _) => AzureCredential::AccountKey(key.to_owned()),
            (None, Some(token), _) => AzureCredential::SasToken(token.to_owned()),
            (None, None, Some(arn)) => match secrets {
                Some(client) => read_secret(client, arn).await?,
                None => {
                    return Err(Error::config(format!(
                        "{CREDENTIALS_SECRET_ARN} is set but no AWS client was given to read it"
                    )))
                }
            },
            (None, None, None) => {
                return Err(Error::config(format!(
                    "no Azure credential for account `{}`: set {KEY} or {SAS_TOKEN} (command line), or {CREDENTIALS_SECRET_ARN} to a secret holding {{\"sas_token\": ...}} or {{\"account_key\": ...}} (Lambda)",
                    location.account
                )))
            }
        };
        let mut settings = AzureSettings::new(location, credential);
        settings.endpoint = env.get(ENDPOINT).map(str::to_owned);
        Ok(settings)
    }
}

async fn read_secret(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<AzureCredential> {
    let answer = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
            let code = e.code().unwrap_or("unknown");
            let kind = match code {
                "AccessDeniedException" => ossnap_core::ErrorKind::AuthError,
                "ResourceNotFoundException" => ossnap_core::ErrorKind::ConfigError,
                _ => ossnap_core::ErrorKind::Unavailable,
            };
            Error::new(
                kind,
                format!(
                    "cannot read the Azure credential secret {arn}: {code}: {}; check {CREDENTIALS_SECRET_ARN} and that the function's role may call secretsmanager:GetSecretValue on it",
                    e.message().unwrap_or_default()
                ),
            )
        })?;
    parse_secret(arn, answer.secret_string().unwrap_or_default())
}

fn parse_secret(arn: &str, text: &str) -> Result<AzureCredential> {
    let shape =
        format!("the secret {arn} must be JSON with one of \"sas_token\" or \"account_key\"");
    let value: SecretValue =
        serde_json::from_str(text).map_err(|_| Error::config(shape.clone()))?;
    match (value.account_key, value.sas_token) {
        (Some(key), None) if !key.is_empty() => Ok(AzureCredential::AccountKey(key)),
        (None, Some(token)) if !token.is_empty() => Ok(AzureCredential::SasToken(token)),
        _ => Err(Error::config(shape)),
    }
}

/// Azure's rule for storage account names: 3 to 24 lowercase letters and digits.
pub fn validate_account(account: &str) -> Result<()> {
    let valid = (3..=24).contains(&account.len())
        && account
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if valid {
        Ok(())
    } else {
        Err(Error::config(format!(
            "invalid Azure storage account [{account}]: use 3 to 24 lowercase letters and digits"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ossnap_core::ErrorKind;

    fn env(pairs: &[(&str, &str)]) -> Environment {
        Environment::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn the_event_overrides_the_settings_and_the_base_path_follows_the_source() {
        let env = env(&[(ACCOUNT, "acct1"), (CONTAINER, "backups")]);
        let target = AzureTarget {
            container: Some("other-one".into()),
            ..AzureTarget::default()
        };
        let location = target.location(&env, Some("prod/os")).unwrap();
        assert_eq!(
            location,
            AzureLocation {
                account: "acct1".into(),
                container: "other-one".into(),
                base_path: "prod/os".into()
            }
        );
    }

    #[test]
    fn bad_names_are_refused_naming_the_rule() {
        for (account, container, expected) in [
            ("Acct", "backups", "invalid Azure storage account [Acct]"),
            ("ab", "backups", "3 to 24"),
            (
                "acct1",
                "Backups",
                "invalid AZURE_STORAGE_CONTAINER [Backups]",
            ),
            ("acct1", "a--b", "no '--'"),
            ("acct1", "-ab", "begin and end"),
        ] {
            let env = env(&[(ACCOUNT, account), (CONTAINER, container)]);
            let error = AzureTarget::default().location(&env, None).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::ConfigError);
            assert!(error.to_string().contains(expected), "{error}");
        }
    }

    #[tokio::test]
    async fn a_missing_credential_names_every_way_to_give_one() {
        let env = env(&[(ACCOUNT, "acct1"), (CONTAINER, "backups")]);
        let error = AzureTarget::default()
            .settings(&env, None, None)
            .await
            .unwrap_err();
        for name in [KEY, SAS_TOKEN, CREDENTIALS_SECRET_ARN, "acct1"] {
            assert!(error.to_string().contains(name), "{error}");
        }
    }

    #[tokio::test]
    async fn two_credentials_are_refused() {
        let env = env(&[
            (ACCOUNT, "acct1"),
            (CONTAINER, "backups"),
            (KEY, "a2V5"),
            (SAS_TOKEN, "sv=1&sig=2"),
        ]);
        let error = AzureTarget::default()
            .settings(&env, None, None)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("keep one"), "{error}");
    }

    #[test]
    fn the_secret_holds_exactly_one_credential() {
        assert_eq!(
            parse_secret("arn", r#"{"sas_token": "sv=1&sig=2"}"#).unwrap(),
            AzureCredential::SasToken("sv=1&sig=2".into())
        );
        assert_eq!(
            parse_secret("arn", r#"{"account_key": "a2V5"}"#).unwrap(),
            AzureCredential::AccountKey("a2V5".into())
        );
        for bad in [
            r#"{}"#,
            r#"{"sas_token": "", "account_key": "s3cr3t"}"#,
            "s3cr3t",
            r#"{"key": "s3cr3t"}"#,
        ] {
            let error = parse_secret("arn:secret", bad).unwrap_err();
            assert!(error.to_string().contains("arn:secret"), "{error}");
            assert!(
                !error.to_string().contains("s3cr3t"),
                "secret echoed: {error}"
            );
        }
    }
}
