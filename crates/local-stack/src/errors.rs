//! Error responses exactly as the real servers shape them: OpenSearch's
//! `{"error":{"root_cause":[..],"type","reason",..},"status"}` envelope, and the AWS front door's
//! `{"message": ..}` / IAM's `{"Message": ..}` bodies, which have no envelope.

use serde_json::{json, Map, Value};

use crate::Profile;

/// A complete error response; `error_type` is what the request log records.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: u16,
    pub body: Value,
    pub error_type: String,
}

impl ApiError {
    pub fn opensearch(status: u16, error_type: &str, reason: impl Into<String>) -> Self {
        Self::opensearch_with(status, error_type, reason, Map::new(), None)
    }

    /// An OpenSearch error with extra fields on the cause (e.g. `index`, `resource.type`) and an
    /// optional `caused_by` chain.
    pub fn opensearch_with(
        status: u16,
        error_type: &str,
        reason: impl Into<String>,
        extra: Map<String, Value>,
        caused_by: Option<Value>,
    ) -> Self {
        let mut cause = Map::new();
        cause.insert("type".to_owned(), json!(error_type));
        cause.insert("reason".to_owned(), json!(reason.into()));
        cause.extend(extra);
        let root_cause = Value::Object(cause.clone());
        if let Some(caused_by) = caused_by {
            cause.insert("caused_by".to_owned(), caused_by);
        }
        let mut error = Map::new();
        error.insert("root_cause".to_owned(), json!([root_cause]));
        error.extend(cause);
        ApiError {
            status,
            body: json!({"error": error, "status": status}),
            error_type: error_type.to_owned(),
        }
    }

    /// AWS front-door bodies (SigV4 failures) use lower-case `message`.
    pub fn aws_front_door(message: impl Into<String>) -> Self {
        ApiError {
            status: 403,
            body: json!({"message": message.into()}),
            error_type: "aws_signature".to_owned(),
        }
    }

    /// IAM authorisation bodies use capital `Message`.
    pub fn iam_denied(message: impl Into<String>) -> Self {
        ApiError {
            status: 403,
            body: json!({"Message": message.into()}),
            error_type: "iam_access_denied".to_owned(),
        }
    }

    pub fn repository_missing(repository: &str) -> Self {
        Self::opensearch(
            404,
            "repository_missing_exception",
            format!("[{repository}] missing"),
        )
    }

    pub fn snapshot_missing(repository: &str, snapshot: &str) -> Self {
        Self::opensearch(
            404,
            "snapshot_missing_exception",
            format!("[{repository}:{snapshot}] is missing"),
        )
    }

    pub fn invalid_snapshot_name(repository: &str, snapshot: &str, description: &str) -> Self {
        Self::opensearch(
            400,
            "invalid_snapshot_name_exception",
            format!("[{repository}:{snapshot}] Invalid snapshot name [{snapshot}], {description}"),
        )
    }

    pub fn concurrent_snapshot(
        profile: Profile,
        repository: &str,
        snapshot: &str,
        running: usize,
    ) -> Self {
        let status = match profile {
            Profile::V2 | Profile::Es77 | Profile::Es68 => 503,
            Profile::V3 => 409,
        };
        Self::opensearch(
            status,
            "concurrent_snapshot_execution_exception",
            format!(
                "[{repository}:{snapshot}] Cannot start another operation, already running [{running}] operations and the current limit for concurrent snapshot operations is set to [1]"
            ),
        )
    }

    pub fn repository_exception(repository: &str, reason: &str) -> Self {
        Self::opensearch(
            500,
            "repository_exception",
            format!("[{repository}] {reason}"),
        )
    }

    pub fn illegal_argument(reason: impl Into<String>) -> Self {
        Self::opensearch(400, "illegal_argument_exception", reason)
    }

    pub fn parse(reason: impl Into<String>) -> Self {
        Self::opensearch(400, "parse_exception", reason)
    }

    pub fn index_not_found(index: &str) -> Self {
        let mut extra = Map::new();
        extra.insert("index".to_owned(), json!(index));
        extra.insert("resource.id".to_owned(), json!(index));
        extra.insert("resource.type".to_owned(), json!("index_or_alias"));
        extra.insert("index_uuid".to_owned(), json!("_na_"));
        Self::opensearch_with(
            404,
            "index_not_found_exception",
            format!("no such index [{index}]"),
            extra,
            None,
        )
    }
}
