//! `ossnap doctor`: every link of the chain a scheduled run needs, checked in order, each PASS,
//! WARN, FAIL or NOT CHECKED with what to do. A check that cannot be made (an S3 call the server
//! does not answer or the caller may not make, a link after a broken one) is NOT CHECKED, never
//! PASS.

use std::time::Duration;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use ossnap_core::config::{AuthSettings, RepositoryType, Settings};
use ossnap_core::opensearch::classify::{backend_role_for, classify};
use ossnap_core::{register, retention, Deps, Error};
use serde::Serialize;
use serde_json::{json, Value};

use crate::commands::{rfc3339, seconds};
use crate::context::Context;
use crate::exit::{fix, Exit};
use crate::output::{Report, Style};

/// Answers any authenticated caller with its identity and mapped roles, where the security
/// plugin runs (fine-grained access control).
const AUTHINFO: &str = "/_plugins/_security/authinfo";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    #[serde(rename = "PASS")]
    Pass,
    #[serde(rename = "WARN")]
    Warn,
    #[serde(rename = "FAIL")]
    Fail,
    #[serde(rename = "NOT CHECKED")]
    NotChecked,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
            Verdict::NotChecked => "NOT CHECKED",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub status: Verdict,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The checks, in the order a run meets them.
mod name {
    pub const SETTINGS: &str = "settings";
    pub const ENDPOINT: &str = "endpoint reachable";
    pub const CREDENTIALS: &str = "credentials accepted";
    pub const ROLE_MAPPING: &str = "role mapping";
    pub const REPOSITORY: &str = "repository registered";
    pub const REPOSITORY_VERIFY: &str = "repository verify";
    pub const AUTOMATED: &str = "automated snapshot";
    pub const NEWEST: &str = "newest healthy snapshot";
    pub const PUBLIC_ACCESS_BLOCK: &str = "bucket public-access block";
    pub const POLICY_STATUS: &str = "bucket policy status";
    pub const ENCRYPTION: &str = "bucket encryption";
    pub const TLS_ONLY: &str = "bucket TLS-only";
    pub const LIFECYCLE: &str = "bucket lifecycle";

    /// The checks that need OpenSearch, after the endpoint.
    pub const AFTER_ENDPOINT: [&str; 6] = [
        CREDENTIALS,
        ROLE_MAPPING,
        REPOSITORY,
        REPOSITORY_VERIFY,
        AUTOMATED,
        NEWEST,
    ];
    pub const BUCKET: [&str; 5] = [
        PUBLIC_ACCESS_BLOCK,
        POLICY_STATUS,
        ENCRYPTION,
        TLS_ONLY,
        LIFECYCLE,
    ];
}

#[derive(Default)]
struct Checks(Vec<Check>);

impl Checks {
    fn add(&mut self, check: &'static str, status: Verdict, detail: impl Into<String>) {
        self.0.push(Check {
            check,
            status,
            detail: detail.into(),
            fix: None,
        });
    }

    fn fail(&mut self, check: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        self.add_with_fix(check, Verdict::Fail, detail, fix);
    }

    fn add_with_fix(
        &mut self,
        check: &'static str,
        status: Verdict,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.0.push(Check {
            check,
            status,
            detail: detail.into(),
            fix: Some(fix.into()),
        });
    }

    fn error(&mut self, check: &'static str, error: &Error) {
        self.fail(check, error.message(), fix(error.kind()));
    }

    fn not_checked(&mut self, checks: &[&'static str], reason: &str) {
        for check in checks {
            self.add(check, Verdict::NotChecked, reason);
        }
    }
}

pub async fn doctor(context: &Context, style: Style, max_age: Duration) -> Report {
    let mut checks = Checks::default();
    match context.deps().await {
        Ok(deps) => {
            checks.add(
                name::SETTINGS,
                Verdict::Pass,
                format!(
                    "endpoint {}, repository [{}]",
                    deps.opensearch.endpoint(),
                    deps.settings.repository
                ),
            );
            opensearch_checks(&deps, max_age, &mut checks).await;
            bucket_checks(context, &deps.settings, &mut checks).await;
        }
        Err(error) => {
            checks.error(name::SETTINGS, &error);
            checks.not_checked(&[name::ENDPOINT], "the settings are incomplete");
            checks.not_checked(&name::AFTER_ENDPOINT, "the settings are incomplete");
            checks.not_checked(&name::BUCKET, "the settings are incomplete");
        }
    }
    let checks = checks.0;
    let failed = checks.iter().any(|c| c.status == Verdict::Fail);
    Report {
        text: text(style, &checks),
        json: json!({"healthy": !failed, "checks": checks}),
        exit: if failed {
            Exit::Unhealthy
        } else {
            Exit::Success
        },
    }
}

fn text(style: Style, checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
    let mut text = String::new();
    for check in checks {
        let label = format!("{:11}", check.status.label());
        text.push_str(&format!(
            "{}  {:width$}  {}\n",
            style.status(&label),
            check.check,
            check.detail
        ));
        if let Some(fix) = &check.fix {
            text.push_str(&format!("{:11}  {:width$}  fix: {fix}\n", "", ""));
        }
    }
    text
}

async fn opensearch_checks(deps: &Deps, max_age: Duration, checks: &mut Checks) {
    let endpoint = deps.opensearch.endpoint().to_string();
    let probe = deps
        .opensearch
        .exchange(&http::Method::GET, AUTHINFO, &[], None)
        .await;
    let (status, body) = match probe {
        Ok(answer) => answer,
        Err(error) if error.kind() == ossnap_core::ErrorKind::AuthError => {
            checks.add(
                name::ENDPOINT,
                Verdict::NotChecked,
                "no request was sent: there are no credentials to sign it with",
            );
            checks.error(name::CREDENTIALS, &error);
            checks.not_checked(&name::AFTER_ENDPOINT[1..], "the credentials are missing");
            return;
        }
        Err(error) => {
            checks.error(name::ENDPOINT, &error);
            checks.not_checked(&name::AFTER_ENDPOINT, "the endpoint did not answer");
            return;
        }
    };
    transport_check(&endpoint, checks);

    if matches!(status, 401 | 403) {
        checks.error(name::CREDENTIALS, &classify(status, "GET", AUTHINFO, &body));
        checks.not_checked(&name::AFTER_ENDPOINT[1..], "the credentials were refused");
        return;
    }
    let identity: Option<Value> = (200..300)
        .contains(&status)
        .then(|| serde_json::from_slice(&body).ok())
        .flatten();
    let who = identity
        .as_ref()
        .and_then(|info| info["user_name"].as_str())
        .map_or(String::new(), |user| format!(" as {user}"));
    let how = match &deps.settings.auth {
        AuthSettings::SigV4 => "SigV4-signed requests",
        AuthSettings::Basic { .. } => "basic auth",
        AuthSettings::None => "unauthenticated requests (OPENSEARCH_AUTH=none)",
    };
    checks.add(
        name::CREDENTIALS,
        Verdict::Pass,
        format!("the domain accepts {how}{who}"),
    );
    role_mapping_check(&deps.settings.auth, status, identity.as_ref(), checks);

    let registered = repository_checks(deps, checks).await;
    automated_check(deps, checks).await;
    if registered {
        newest_healthy_check(deps, max_age, checks).await;
    } else {
        checks.not_checked(&[name::NEWEST], "the repository is not registered");
    }
}

/// HTTPS, or plain HTTP on loopback (the local stack); plain HTTP elsewhere sends snapshot
/// requests, and with basic auth the password, in the clear.
fn transport_check(endpoint: &str, checks: &mut Checks) {
    let host = endpoint
        .split("://")
        .nth(1)
        .unwrap_or_default()
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    if endpoint.starts_with("https://") {
        checks.add(
            name::ENDPOINT,
            Verdict::Pass,
            format!("{endpoint} answered over TLS"),
        );
    } else if matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        checks.add(
            name::ENDPOINT,
            Verdict::Pass,
            format!("{endpoint} answered (plain HTTP, on loopback only)"),
        );
    } else {
        checks.add_with_fix(
            name::ENDPOINT,
            Verdict::Warn,
            format!("{endpoint} answered over plain HTTP: requests are not encrypted"),
            "use the domain's https:// endpoint",
        );
    }
}

fn role_mapping_check(
    auth: &AuthSettings,
    status: u16,
    identity: Option<&Value>,
    checks: &mut Checks,
) {
    if *auth == AuthSettings::None {
        checks.add(
            name::ROLE_MAPPING,
            Verdict::NotChecked,
            "OPENSEARCH_AUTH=none: there is no identity to map",
        );
        return;
    }
    let Some(identity) = identity else {
        checks.add(
            name::ROLE_MAPPING,
            Verdict::NotChecked,
            format!(
                "the security plugin did not answer GET {AUTHINFO} (HTTP {status}): fine-grained access control looks off, so the domain's access policy alone decides"
            ),
        );
        return;
    };
    let strings = |field: &str| -> Vec<String> {
        identity[field]
            .as_array()
            .map(|values| {
                values
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let roles = strings("roles");
    let user = identity["user_name"].as_str().unwrap_or_default();
    if roles.iter().any(|r| r == "all_access") {
        checks.add_with_fix(
            name::ROLE_MAPPING,
            Verdict::Warn,
            format!("{user} is mapped to all_access: far more than snapshots need"),
            "map it to manage_snapshots instead, and remove it from all_access",
        );
    } else if roles.iter().any(|r| r == "manage_snapshots") {
        checks.add(
            name::ROLE_MAPPING,
            Verdict::Pass,
            format!("{user} is mapped to manage_snapshots"),
        );
    } else {
        let (field, value) = match strings("backend_roles").first() {
            Some(role) => ("backend_roles", role.clone()),
            None if user.starts_with("arn:") => ("backend_roles", backend_role_for(user)),
            None => ("users", user.to_string()),
        };
        checks.fail(
            name::ROLE_MAPPING,
            format!(
                "{user} is not mapped to manage_snapshots (its roles: [{}]): every snapshot call is refused",
                roles.join(", ")
            ),
            format!(
                "as an admin, in Dashboards Dev Tools: PATCH _plugins/_security/api/rolesmapping/manage_snapshots {}  (when the mapping does not exist yet: PUT _plugins/_security/api/rolesmapping/manage_snapshots {})",
                json!([{"op": "add", "path": format!("/{field}/-"), "value": value}]),
                json!({ field: [value] })
            ),
        );
    }
}

/// The repository registered as the settings describe, and `_verify` passing; whether it is
/// registered at all.
async fn repository_checks(deps: &Deps, checks: &mut Checks) -> bool {
    let repository = deps.settings.repository.as_str();
    let current = match deps.opensearch.get_repository(repository).await {
        Ok(Some(current)) => current,
        Ok(None) => {
            checks.fail(
                name::REPOSITORY,
                format!("[{repository}] is not registered on the domain"),
                "register it: `ossnap register`",
            );
            checks.not_checked(
                &[name::REPOSITORY_VERIFY],
                "the repository is not registered",
            );
            return false;
        }
        Err(error) => {
            checks.error(name::REPOSITORY, &error);
            checks.not_checked(
                &[name::REPOSITORY_VERIFY],
                "the repository could not be read",
            );
            return false;
        }
    };
    let registered = json!({"type": current.kind, "settings": current.settings});
    match register::intended_repository(deps, Default::default()) {
        Ok((_, wanted)) if register::same_definition(&current, &wanted) => checks.add(
            name::REPOSITORY,
            Verdict::Pass,
            format!("[{repository}] is registered as intended: {registered}"),
        ),
        Ok((_, wanted)) => checks.fail(
            name::REPOSITORY,
            format!(
                "[{repository}] is registered as {registered}, not as the settings say: {}",
                json!({"type": wanted.kind, "settings": wanted.settings})
            ),
            "`ossnap register` updates it (or fix the settings if the registration is right)",
        ),
        Err(error) => checks.add_with_fix(
            name::REPOSITORY,
            Verdict::Warn,
            format!(
                "[{repository}] is registered as {registered}; the settings cannot tell what it should be: {}",
                error.message()
            ),
            fix(error.kind()),
        ),
    }
    match deps.opensearch.verify_repository(repository).await {
        Ok(nodes) => checks.add(
            name::REPOSITORY_VERIFY,
            Verdict::Pass,
            format!("{nodes} node(s) can write to [{repository}]"),
        ),
        Err(error) => checks.error(name::REPOSITORY_VERIFY, &error),
    }
    true
}

/// A snapshot running now (AWS's hourly `cs-automated` above all) makes a snapshot started now
/// wait.
async fn automated_check(deps: &Deps, checks: &mut Checks) {
    match deps.opensearch.running_snapshots().await {
        Ok(running) => match running.iter().find(|r| r.repository.starts_with("cs-")) {
            Some(automated) => checks.add_with_fix(
                name::AUTOMATED,
                Verdict::Warn,
                format!(
                    "[{}:{}] (Amazon OpenSearch Service's automated snapshot) is running now",
                    automated.repository, automated.snapshot
                ),
                "nothing to fix: a snapshot started now waits (SnapshotInProgress) until it ends",
            ),
            None => checks.add(
                name::AUTOMATED,
                Verdict::Pass,
                match running.first() {
                    Some(other) => format!(
                        "none running (but [{}:{}] is)",
                        other.repository, other.snapshot
                    ),
                    None => "none running".to_string(),
                },
            ),
        },
        Err(error) => checks.error(name::AUTOMATED, &error),
    }
}

async fn newest_healthy_check(deps: &Deps, max_age: Duration, checks: &mut Checks) {
    let repository = deps.settings.repository.as_str();
    let prefix = deps.settings.prefix.as_str();
    let snapshots = match deps
        .opensearch
        .find_snapshots(repository, &[&format!("{prefix}-*")], true)
        .await
    {
        Ok(snapshots) => snapshots,
        Err(error) => return checks.error(name::NEWEST, &error),
    };
    let newest = snapshots
        .iter()
        .filter(|s| s.is_healthy() && retention::taken_at(prefix, &s.snapshot).is_some())
        .filter_map(|s| Some((s.start_time_in_millis?, s)))
        .max_by_key(|(started, _)| *started);
    let limit = seconds(max_age.as_millis() as i64);
    let Some((started, newest)) = newest else {
        return checks.fail(
            name::NEWEST,
            format!("no healthy {prefix}-yyyymmdd-hhmmss snapshot in [{repository}]"),
            "take one (`ossnap snapshot --wait`), then check that the schedule runs the workflow",
        );
    };
    let age = deps.clock.now_millis() - started;
    let detail = format!(
        "{} started {} ({} ago)",
        newest.snapshot,
        rfc3339(started),
        seconds(age)
    );
    if age > max_age.as_millis() as i64 {
        checks.fail(
            name::NEWEST,
            format!("{detail}: older than --max-age {limit}"),
            "look at the workflow's recent runs and the schedule (a disabled schedule, runs that keep failing or skipping)",
        );
    } else {
        checks.add(
            name::NEWEST,
            Verdict::Pass,
            format!("{detail}, within {limit}"),
        );
    }
}

async fn bucket_checks(context: &Context, settings: &Settings, checks: &mut Checks) {
    if settings.repository_type != RepositoryType::S3 {
        return checks.not_checked(
            &name::BUCKET,
            &format!(
                "an {} repository has no S3 bucket",
                settings.repository_type.name()
            ),
        );
    }
    let Some(bucket) = settings.bucket.as_deref() else {
        return checks.not_checked(&name::BUCKET, "SNAPSHOT_BUCKET (--bucket) is not set");
    };
    let s3 = context.s3().await;
    bucket::public_access_block(&s3, bucket, checks).await;
    bucket::policy_status(&s3, bucket, checks).await;
    bucket::encryption(&s3, bucket, checks).await;
    bucket::tls_only(&s3, bucket, checks).await;
    bucket::lifecycle(&s3, bucket, checks).await;
}

mod bucket {
    use super::*;
    use aws_sdk_s3::types::TransitionStorageClass;

    /// An S3 call that did not tell: the server does not implement it, or the caller may not
    /// make it. Reported as not checked, never as a pass.
    fn unanswered<E: ProvideErrorMetadata, R>(
        check: &'static str,
        call: &str,
        permission: &str,
        error: &SdkError<E, R>,
        checks: &mut Checks,
    ) {
        let code = error.code().unwrap_or("no error code");
        let detail = match code {
            "NotImplemented" => format!("the S3 server does not answer {call}"),
            "AccessDenied" => format!("{call} was denied: grant {permission} to check it"),
            _ => format!(
                "{call} failed: {code}: {}",
                error.message().unwrap_or("no message")
            ),
        };
        checks.add(check, Verdict::NotChecked, detail);
    }

    pub async fn public_access_block(s3: &aws_sdk_s3::Client, bucket: &str, checks: &mut Checks) {
        let fix = format!("aws s3api put-public-access-block --bucket {bucket} --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true");
        match s3.get_public_access_block().bucket(bucket).send().await {
            Ok(output) => {
                let config = output.public_access_block_configuration();
                let flags = [
                    (
                        "BlockPublicAcls",
                        config.and_then(|c| c.block_public_acls()),
                    ),
                    (
                        "IgnorePublicAcls",
                        config.and_then(|c| c.ignore_public_acls()),
                    ),
                    (
                        "BlockPublicPolicy",
                        config.and_then(|c| c.block_public_policy()),
                    ),
                    (
                        "RestrictPublicBuckets",
                        config.and_then(|c| c.restrict_public_buckets()),
                    ),
                ];
                let off: Vec<&str> = flags
                    .iter()
                    .filter(|(_, on)| *on != Some(true))
                    .map(|(name, _)| *name)
                    .collect();
                if off.is_empty() {
                    checks.add(
                        name::PUBLIC_ACCESS_BLOCK,
                        Verdict::Pass,
                        format!("all four blocks are on for {bucket}"),
                    );
                } else {
                    checks.fail(
                        name::PUBLIC_ACCESS_BLOCK,
                        format!("{bucket} leaves off: {}", off.join(", ")),
                        fix,
                    );
                }
            }
            Err(error) if error.code() == Some("NoSuchPublicAccessBlockConfiguration") => checks
                .fail(
                    name::PUBLIC_ACCESS_BLOCK,
                    format!("{bucket} has no public-access block"),
                    fix,
                ),
            Err(error) => unanswered(
                name::PUBLIC_ACCESS_BLOCK,
                "GetPublicAccessBlock",
                "s3:GetBucketPublicAccessBlock",
                &error,
                checks,
            ),
        }
    }

    pub async fn policy_status(s3: &aws_sdk_s3::Client, bucket: &str, checks: &mut Checks) {
        match s3.get_bucket_policy_status().bucket(bucket).send().await {
            Ok(output) => {
                if output.policy_status().and_then(|s| s.is_public()) == Some(true) {
                    checks.fail(
                        name::POLICY_STATUS,
                        format!("the bucket policy makes {bucket} public"),
                        "remove the statements that allow everyone (\"Principal\": \"*\" without a condition)",
                    );
                } else {
                    checks.add(
                        name::POLICY_STATUS,
                        Verdict::Pass,
                        format!("the bucket policy does not make {bucket} public"),
                    );
                }
            }
            Err(error) if error.code() == Some("NoSuchBucketPolicy") => checks.add(
                name::POLICY_STATUS,
                Verdict::Pass,
                format!("{bucket} has no bucket policy to make it public"),
            ),
            Err(error) => unanswered(
                name::POLICY_STATUS,
                "GetBucketPolicyStatus",
                "s3:GetBucketPolicyStatus",
                &error,
                checks,
            ),
        }
    }

    pub async fn encryption(s3: &aws_sdk_s3::Client, bucket: &str, checks: &mut Checks) {
        match s3.get_bucket_encryption().bucket(bucket).send().await {
            Ok(output) => {
                let algorithms: Vec<String> = output
                    .server_side_encryption_configuration()
                    .map(|c| c.rules())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|rule| rule.apply_server_side_encryption_by_default())
                    .map(|default| default.sse_algorithm().as_str().to_string())
                    .collect();
                if algorithms.is_empty() {
                    checks.fail(
                        name::ENCRYPTION,
                        format!("{bucket} has no default encryption rule"),
                        format!("aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration '{{\"Rules\":[{{\"ApplyServerSideEncryptionByDefault\":{{\"SSEAlgorithm\":\"AES256\"}}}}]}}'"),
                    );
                } else {
                    checks.add(
                        name::ENCRYPTION,
                        Verdict::Pass,
                        format!("{bucket} encrypts with {}", algorithms.join(", ")),
                    );
                }
            }
            Err(error) if error.code() == Some("ServerSideEncryptionConfigurationNotFoundError") => {
                checks.fail(
                    name::ENCRYPTION,
                    format!("{bucket} has no default encryption"),
                    format!("aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration '{{\"Rules\":[{{\"ApplyServerSideEncryptionByDefault\":{{\"SSEAlgorithm\":\"AES256\"}}}}]}}'"),
                )
            }
            Err(error) => unanswered(
                name::ENCRYPTION,
                "GetBucketEncryption",
                "s3:GetEncryptionConfiguration",
                &error,
                checks,
            ),
        }
    }

    /// A statement that denies every request made without TLS (`aws:SecureTransport` false).
    pub fn denies_plain_http(policy: &Value) -> bool {
        let statements = match &policy["Statement"] {
            Value::Array(statements) => statements.clone(),
            statement @ Value::Object(_) => vec![statement.clone()],
            _ => Vec::new(),
        };
        statements.iter().any(|statement| {
            let secure = &statement["Condition"]["Bool"]["aws:SecureTransport"];
            statement["Effect"] == "Deny" && (secure == "false" || *secure == Value::Bool(false))
        })
    }

    pub async fn tls_only(s3: &aws_sdk_s3::Client, bucket: &str, checks: &mut Checks) {
        let fix = format!(
            "add to the bucket policy: {}",
            json!({
                "Sid": "DenyWithoutTLS", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}
            })
        );
        match s3.get_bucket_policy().bucket(bucket).send().await {
            Ok(output) => {
                let policy: Value = output
                    .policy()
                    .and_then(|text| serde_json::from_str(text).ok())
                    .unwrap_or(Value::Null);
                if denies_plain_http(&policy) {
                    checks.add(
                        name::TLS_ONLY,
                        Verdict::Pass,
                        format!("the bucket policy denies requests to {bucket} without TLS"),
                    );
                } else {
                    checks.fail(
                        name::TLS_ONLY,
                        format!("no statement of the bucket policy denies requests to {bucket} without TLS"),
                        fix,
                    );
                }
            }
            Err(error) if error.code() == Some("NoSuchBucketPolicy") => checks.fail(
                name::TLS_ONLY,
                format!("{bucket} has no bucket policy, so requests without TLS are allowed"),
                fix,
            ),
            Err(error) => unanswered(
                name::TLS_ONLY,
                "GetBucketPolicy",
                "s3:GetBucketPolicy",
                &error,
                checks,
            ),
        }
    }

    pub async fn lifecycle(s3: &aws_sdk_s3::Client, bucket: &str, checks: &mut Checks) {
        match s3
            .get_bucket_lifecycle_configuration()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(output) => {
                let glacier: Vec<String> = output
                    .rules()
                    .iter()
                    .filter(|rule| rule.status().as_str() == "Enabled")
                    .filter(|rule| {
                        rule.transitions().iter().any(|t| {
                            matches!(
                                t.storage_class(),
                                Some(TransitionStorageClass::Glacier)
                                    | Some(TransitionStorageClass::DeepArchive)
                            )
                        })
                    })
                    .map(|rule| rule.id().unwrap_or("(no id)").to_string())
                    .collect();
                if glacier.is_empty() {
                    checks.add(
                        name::LIFECYCLE,
                        Verdict::Pass,
                        format!("no lifecycle rule of {bucket} moves objects to Glacier"),
                    );
                } else {
                    checks.fail(
                        name::LIFECYCLE,
                        format!(
                            "lifecycle rule(s) {} of {bucket} move objects to Glacier, which snapshot repositories cannot read",
                            glacier.join(", ")
                        ),
                        "remove the Glacier transitions from those rules",
                    );
                }
            }
            Err(error) if error.code() == Some("NoSuchLifecycleConfiguration") => checks.add(
                name::LIFECYCLE,
                Verdict::Pass,
                format!("{bucket} has no lifecycle rules"),
            ),
            Err(error) => unanswered(
                name::LIFECYCLE,
                "GetBucketLifecycleConfiguration",
                "s3:GetLifecycleConfiguration",
                &error,
                checks,
            ),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn only_a_deny_without_secure_transport_counts_as_tls_only() {
            let deny = json!({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]});
            assert!(denies_plain_http(&deny));
            let allow = json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}});
            assert!(!denies_plain_http(&allow));
            assert!(!denies_plain_http(&Value::Null));
        }
    }
}
