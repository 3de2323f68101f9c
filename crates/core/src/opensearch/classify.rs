//! Turns a failed response into an [`Error`] of the right kind, with a message that says what to
//! do. Classification is by OpenSearch's `error.type`: the same condition has had different HTTP
//! statuses across versions (a concurrent snapshot is 503 on 1.x/2.x, 409 on 3.x, 429 in one
//! revision). The status decides only when the body carries no type at all: AWS's front door
//! answers with `{"message": ...}` or `{"Message": ...}`, and gateways with HTML.

use serde_json::Value;

use crate::error::{Error, ErrorKind};

/// The parts of an error body that classification reads.
#[derive(Debug, Default, PartialEq)]
pub struct ErrorBody {
    /// `error.type`, when the body has OpenSearch's envelope.
    pub error_type: Option<String>,
    /// `error.reason`, or AWS's `message`/`Message`, or the start of a non-JSON body.
    pub reason: String,
    /// The `caused_by` chain's reasons, outermost first.
    pub causes: Vec<String>,
}

impl ErrorBody {
    pub fn parse(body: &[u8]) -> ErrorBody {
        let Ok(json) = serde_json::from_slice::<Value>(body) else {
            return ErrorBody {
                reason: summarize_text(body),
                ..ErrorBody::default()
            };
        };
        match json.get("error") {
            Some(Value::Object(error)) => {
                let mut causes = Vec::new();
                let mut cause = error.get("caused_by");
                while let Some(Value::Object(inner)) = cause {
                    if let Some(reason) = inner.get("reason").and_then(Value::as_str) {
                        causes.push(reason.to_string());
                    }
                    cause = inner.get("caused_by");
                }
                ErrorBody {
                    error_type: error
                        .get("type")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    reason: error
                        .get("reason")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    causes,
                }
            }
            // Old servers answer some errors with a bare string.
            Some(Value::String(reason)) => ErrorBody {
                reason: reason.clone(),
                ..ErrorBody::default()
            },
            _ => ErrorBody {
                reason: ["message", "Message"]
                    .iter()
                    .find_map(|key| json.get(*key).and_then(Value::as_str))
                    .map(str::to_string)
                    .unwrap_or_else(|| summarize_text(body)),
                ..ErrorBody::default()
            },
        }
    }

    fn detail(&self) -> String {
        let mut detail = self.reason.clone();
        for cause in &self.causes {
            detail.push_str("; caused by: ");
            detail.push_str(cause);
        }
        detail
    }
}

/// A short, single-line excerpt of a non-JSON body (an HTML 504 page, say).
fn summarize_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let title = text
        .find("<title>")
        .and_then(|start| {
            let rest = &text[start + 7..];
            rest.find("</title>").map(|end| rest[..end].to_string())
        })
        .unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "));
    title.chars().take(200).collect()
}

/// Classifies a non-2xx response to `method path`.
pub fn classify(status: u16, method: &str, path: &str, body: &[u8]) -> Error {
    let parsed = ErrorBody::parse(body);
    let call = format!("{method} {path}");
    match parsed.error_type.as_deref() {
        Some(error_type) => classify_opensearch(status, &call, error_type, &parsed),
        None => classify_front_door(status, &call, &parsed),
    }
}

fn classify_opensearch(status: u16, call: &str, error_type: &str, body: &ErrorBody) -> Error {
    let detail = body.detail();
    let (kind, advice) = match error_type {
        "security_exception" => {
            return Error::new(ErrorKind::AuthError, security_advice(call, &body.reason));
        }
        "repository_missing_exception" => (
            ErrorKind::RepositoryMissing,
            "register it first (run the register function)",
        ),
        "snapshot_missing_exception" => (ErrorKind::SnapshotMissing, "check the snapshot name"),
        "concurrent_snapshot_execution_exception" | "snapshot_in_progress_exception" => (
            ErrorKind::SnapshotInProgress,
            "another snapshot operation is running; retry once it ends",
        ),
        "illegal_state_exception" if body.reason.contains("currently used") => (
            ErrorKind::SnapshotInProgress,
            "the repository is in use by a running snapshot; retry once it ends",
        ),
        "invalid_snapshot_name_exception"
            if body.reason.contains("already exists") || body.reason.contains("already in-progress") =>
        {
            (
                ErrorKind::SnapshotNameConflict,
                "a snapshot with that name exists already",
            )
        }
        "snapshot_restore_exception" if body.reason.contains("open index with same name") => (
            ErrorKind::RestoreConflict,
            "delete the existing index, close it, or restore under another name (rename_pattern and rename_replacement)",
        ),
        "snapshot_restore_exception" | "illegal_state_exception"
            if body.reason.contains("version") && (body.reason.contains("higher than the version")
                || body.reason.contains("minimum index compatibility")
                || body.reason.contains("minimum compatible version")) =>
        {
            (
                ErrorKind::IncompatibleVersion,
                "restore into a cluster of the snapshot's version or newer; indices older than the previous major version must be reindexed first",
            )
        }
        "validation_exception"
            if body.reason.contains("maximum") && body.reason.contains("shards open") =>
        {
            (
            ErrorKind::InsufficientCapacity,
            "raise cluster.max_shards_per_node, add data nodes, delete or shrink indices, or restore fewer indices",
            )
        }
        "snapshot_restore_exception" => (
            ErrorKind::RestoreFailed,
            "see the reason; the snapshot may be unusable for this restore",
        ),
        "repository_verification_exception" => (
            ErrorKind::RepositoryVerificationFailed,
            "OpenSearch could not write to the bucket: check the snapshot role's trust policy (es.amazonaws.com) and its S3 permissions on the bucket and base path",
        ),
        "es_rejected_execution_exception" | "too_many_requests_exception" => (
            ErrorKind::Throttled,
            "the domain is overloaded; retry with backoff",
        ),
        "process_cluster_event_timeout_exception" | "cluster_manager_not_discovered_exception"
        | "master_not_discovered_exception" | "node_not_connected_exception"
        | "node_disconnected_exception" | "no_shard_available_action_exception"
        | "receive_timeout_transport_exception" => (
            ErrorKind::Unavailable,
            "the cluster could not serve the request; retry later",
        ),
        "a_w_s_security_token_service_exception" => (
            ErrorKind::AuthError,
            "OpenSearch could not assume the snapshot role: check SNAPSHOT_ROLE_ARN and that the role trusts es.amazonaws.com",
        ),
        "index_not_found_exception" => (
            ErrorKind::ConfigError,
            "an index named in SNAPSHOT_INDICES does not exist: fix the list or use wildcards",
        ),
        "repository_exception" => (
            ErrorKind::ConfigError,
            "the repository cannot be used as configured: check the bucket exists, the snapshot role can read and write it, and the repository is not readonly",
        ),
        "invalid_snapshot_name_exception" | "invalid_repository_name_exception"
        | "illegal_argument_exception" | "parse_exception" | "x_content_parse_exception"
        | "action_request_validation_exception" | "mapper_parsing_exception"
        | "json_parse_exception" => (ErrorKind::ConfigError, "fix the request's settings"),
        _ if status == 429 => (ErrorKind::Throttled, "retry with backoff"),
        _ if status >= 500 => (ErrorKind::Unavailable, "retry later"),
        _ => (ErrorKind::ConfigError, "see the reason"),
    };
    Error::new(
        kind,
        format!("{call} failed with {error_type} ({status}): {detail}; {advice}"),
    )
}

/// Bodies without OpenSearch's envelope: AWS's IAM and SigV4 front door, gateways, proxies.
fn classify_front_door(status: u16, call: &str, body: &ErrorBody) -> Error {
    let reason = &body.reason;
    let lower = reason.to_ascii_lowercase();
    let (kind, advice) = if lower.contains("throttl")
        || lower.contains("too many requests")
        || status == 429
    {
        (
            ErrorKind::Throttled,
            "the domain is throttling requests; retry with backoff".to_string(),
        )
    } else if lower.contains("iam:passrole") {
        (ErrorKind::AuthError, pass_role_advice(reason))
    } else if lower.contains("not authorized to perform") {
        (
            ErrorKind::AuthError,
            "grant the function's role that es:ESHttp* action on the domain (identity policy and domain access policy)".to_string(),
        )
    } else if lower.contains("signature we calculated does not match") {
        (
            ErrorKind::AuthError,
            "the SigV4 signature does not match: check the secret key, AWS_REGION and that OPENSEARCH_ENDPOINT is the domain endpoint (service es)".to_string(),
        )
    } else if lower.contains("security token")
        && (lower.contains("expired") || lower.contains("invalid"))
    {
        (
            ErrorKind::AuthError,
            "the session credentials are expired or invalid: refresh them (a Lambda role's credentials refresh by themselves)".to_string(),
        )
    } else if lower.contains("signature expired") || lower.contains("signature not yet current") {
        (
            ErrorKind::AuthError,
            "the request's time is more than 5 minutes off: fix the system clock".to_string(),
        )
    } else if status == 401 || status == 403 {
        (
            ErrorKind::AuthError,
            "check the credentials and the domain's access policy".to_string(),
        )
    } else if status >= 500 {
        (ErrorKind::Unavailable, "retry later".to_string())
    } else {
        (
            ErrorKind::ConfigError,
            "check OPENSEARCH_ENDPOINT and the request".to_string(),
        )
    };
    let shown = if reason.is_empty() {
        "(empty body)"
    } else {
        reason.as_str()
    };
    Error::new(
        kind,
        format!("{call} failed with HTTP {status}: {shown}; {advice}"),
    )
}

/// FGAC refusals name the user; map that role (not the session) to manage_snapshots.
fn security_advice(call: &str, reason: &str) -> String {
    let user = reason
        .split("User [name=")
        .nth(1)
        .and_then(|rest| rest.split([',', ']']).next())
        .unwrap_or("the function's role");
    let role = backend_role_for(user);
    format!(
        "{call} refused by fine-grained access control: {reason}; map {role} as a backend role of manage_snapshots (PUT _plugins/_security/api/rolesmapping/manage_snapshots), never all_access"
    )
}

/// `arn:aws:sts::123456789012:assumed-role/Name/session` → `arn:aws:iam::123456789012:role/Name`,
/// the backend role that a role mapping names.
pub fn backend_role_for(principal: &str) -> String {
    let parts: Vec<&str> = principal.splitn(6, ':').collect();
    if let [arn, partition, "sts", "", account, resource] = parts[..] {
        if let Some(role) = resource
            .strip_prefix("assumed-role/")
            .and_then(|rest| rest.split('/').next())
        {
            return format!("{arn}:{partition}:iam::{account}:role/{role}");
        }
    }
    principal.to_string()
}

fn pass_role_advice(reason: &str) -> String {
    let role = reason
        .split("on resource: ")
        .nth(1)
        .map(|rest| rest.trim().trim_end_matches('.'))
        .unwrap_or("SNAPSHOT_ROLE_ARN");
    format!(
        "grant the register function's role iam:PassRole on {role} (with the condition iam:PassedToService = es.amazonaws.com)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(error_type: &str, reason: &str, status: u16) -> Vec<u8> {
        serde_json::json!({
            "error": {"root_cause": [{"type": error_type, "reason": reason}], "type": error_type, "reason": reason},
            "status": status
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn concurrent_snapshot_is_in_progress_whatever_the_status() {
        for status in [503, 409, 429] {
            let body = envelope(
                "concurrent_snapshot_execution_exception",
                "[repo:snap]  a snapshot is already running",
                status,
            );
            let error = classify(status, "PUT", "/_snapshot/repo/snap", &body);
            assert_eq!(
                error.kind(),
                ErrorKind::SnapshotInProgress,
                "status {status}"
            );
        }
    }

    #[test]
    fn opensearch_error_types_map_to_kinds() {
        for (error_type, reason, status, kind) in [
            ("repository_missing_exception", "[r] missing", 404, ErrorKind::RepositoryMissing),
            ("snapshot_missing_exception", "[r:s] is missing", 404, ErrorKind::SnapshotMissing),
            ("snapshot_in_progress_exception", "Cannot delete indices that are being snapshotted", 400, ErrorKind::SnapshotInProgress),
            ("invalid_snapshot_name_exception", "[r:s] Invalid snapshot name [s], snapshot with the same name already exists", 400, ErrorKind::SnapshotNameConflict),
            ("invalid_snapshot_name_exception", "[r:s] Invalid snapshot name [s], snapshot with the same name is already in-progress", 400, ErrorKind::SnapshotNameConflict),
            ("invalid_snapshot_name_exception", "[r:S] Invalid snapshot name [S], must be lowercase", 400, ErrorKind::ConfigError),
            ("repository_verification_exception", "[r] path  is not accessible on master node", 500, ErrorKind::RepositoryVerificationFailed),
            ("es_rejected_execution_exception", "rejected execution", 429, ErrorKind::Throttled),
            ("illegal_state_exception", "trying to modify or unregister repository that is currently used", 500, ErrorKind::SnapshotInProgress),
            ("index_not_found_exception", "no such index [logs]", 404, ErrorKind::ConfigError),
            ("repository_exception", "[r] could not read repository data from index blob", 500, ErrorKind::ConfigError),
            ("x_content_parse_exception", "[1:2] Unexpected character", 400, ErrorKind::ConfigError),
            ("snapshot_restore_exception", "[r:s/u] cannot restore index [logs] because an open index with same name already exists in the cluster. Either close or delete the existing index or restore the index under a different name by providing a rename pattern and replacement name", 500, ErrorKind::RestoreConflict),
            ("snapshot_restore_exception", "[r:s/u] the snapshot was created with OpenSearch version [3.8.0] which is higher than the version of this node [2.19.6]", 500, ErrorKind::IncompatibleVersion),
            ("validation_exception", "Validation Failed: 1: this action would add [2] total shards, but this cluster currently has [1]/[1] maximum shards open;", 400, ErrorKind::InsufficientCapacity),
            ("validation_exception", "Validation Failed: 1: this action would add [2] total LOCAL_ONLY shards, but this cluster currently has [4]/[1] maximum LOCAL_ONLY shards open;", 400, ErrorKind::InsufficientCapacity),
            ("snapshot_restore_exception", "[r:s] unsupported snapshot state [FAILED]", 500, ErrorKind::RestoreFailed),
            ("some_new_exception", "?", 503, ErrorKind::Unavailable),
            ("some_new_exception", "?", 429, ErrorKind::Throttled),
        ] {
            let error = classify(status, "GET", "/x", &envelope(error_type, reason, status));
            assert_eq!(error.kind(), kind, "{error_type}");
            assert!(error.message().contains(reason), "{error}");
        }
    }

    #[test]
    fn fgac_refusal_names_the_role_to_map() {
        let reason = "no permissions for [cluster:admin/repository/put] and User [name=arn:aws:sts::123456789012:assumed-role/ossnap-register/session-1, backend_roles=[], requestedTenant=null]";
        let error = classify(
            403,
            "PUT",
            "/_snapshot/r",
            &envelope("security_exception", reason, 403),
        );
        assert_eq!(error.kind(), ErrorKind::AuthError);
        assert!(
            error.message().contains("map arn:aws:iam::123456789012:role/ossnap-register as a backend role of manage_snapshots"),
            "{error}"
        );
        assert!(error.message().contains("never all_access"));
    }

    #[test]
    fn missing_pass_role_names_the_role_and_action() {
        let body = br#"{"Message":"User: arn:aws:iam::123456789012:user/MyUserAccount is not authorized to perform: iam:PassRole on resource: arn:aws:iam::123456789012:role/TheSnapshotRole"}"#;
        let error = classify(403, "PUT", "/_snapshot/r", body);
        assert_eq!(error.kind(), ErrorKind::AuthError);
        assert!(
            error
                .message()
                .contains("iam:PassRole on arn:aws:iam::123456789012:role/TheSnapshotRole"),
            "{error}"
        );
    }

    #[test]
    fn sigv4_front_door_errors_say_what_is_wrong() {
        for (body, needle) in [
            (
                r#"{"message":"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."}"#,
                "secret key",
            ),
            (
                r#"{"message":"The security token included in the request is expired"}"#,
                "expired",
            ),
            (
                r#"{"message":"Signature expired: 20241008T195522Z is now earlier than 20241008T195940Z (20241008T200440Z - 5 min.)"}"#,
                "clock",
            ),
            (
                r#"{"Message":"User: anonymous is not authorized to perform: es:ESHttpGet"}"#,
                "es:ESHttp",
            ),
        ] {
            let error = classify(403, "GET", "/_snapshot/_status", body.as_bytes());
            assert_eq!(error.kind(), ErrorKind::AuthError, "{body}");
            assert!(error.message().contains(needle), "{error}");
        }
    }

    #[test]
    fn throttling_and_gateway_pages_are_transient() {
        let error = classify(
            403,
            "GET",
            "/",
            b"Request throttled due to too many requests",
        );
        assert_eq!(error.kind(), ErrorKind::Throttled);
        let error = classify(429, "GET", "/", b"Too Many Requests");
        assert_eq!(error.kind(), ErrorKind::Throttled);
        let page = b"<html><head><title>504 Gateway Time-out</title></head><body><center><h1>504 Gateway Time-out</h1></center></body></html>";
        let error = classify(504, "PUT", "/_snapshot/r/s", page);
        assert_eq!(error.kind(), ErrorKind::Unavailable);
        assert!(error.message().contains("504 Gateway Time-out"), "{error}");
    }

    #[test]
    fn odd_bodies_parse_without_panicking() {
        for body in [
            &b""[..],
            b"null",
            b"[]",
            b"{\"error\": 5}",
            b"{\"error\": \"bare string\"}",
            b"{\"error\": {\"caused_by\": {\"caused_by\": 1}}}",
            b"\xff\xfe",
        ] {
            let _ = classify(500, "GET", "/", body);
        }
        let parsed = ErrorBody::parse(b"{\"error\":{\"type\":\"t\",\"reason\":\"r\",\"extra\":[1],\"caused_by\":{\"type\":\"i_o_exception\",\"reason\":\"io\",\"caused_by\":{\"type\":\"amazon_s3_exception\",\"reason\":\"Access Denied\"}}}}");
        assert_eq!(parsed.error_type.as_deref(), Some("t"));
        assert_eq!(parsed.causes, vec!["io", "Access Denied"]);
    }

    #[test]
    fn backend_roles_come_from_assumed_role_sessions() {
        assert_eq!(
            backend_role_for("arn:aws:sts::123456789012:assumed-role/ossnap-snapshot/abc"),
            "arn:aws:iam::123456789012:role/ossnap-snapshot"
        );
        assert_eq!(
            backend_role_for("arn:aws:iam::123456789012:user/alice"),
            "arn:aws:iam::123456789012:user/alice"
        );
    }
}
