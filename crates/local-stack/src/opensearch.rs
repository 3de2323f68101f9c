//! The OpenSearch emulator: request handling (latency, authentication, faults, logging),
//! routing, and the non-snapshot endpoints (cluster info and health, indices, documents, the
//! security plugin's role mappings, and the `/_local` control endpoints).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{json, Map, Value};

use crate::cluster::{ClusterState, IndexState, Recovery, StateFile};
use crate::control::{Control, Fault, LoggedRequest, SnapshotOutcome};
use crate::errors::ApiError;
use crate::ids::random_base64_uuid;
use crate::millis::{format_millis, now_millis};
use crate::running::RunningSnapshot;
use crate::security::{self, Principal, RoleMapping, MANAGE_SNAPSHOTS};
use crate::Profile;
use crate::{sigv4, AuthMode, Error, LocalStackConfig};

/// The emulated cluster's one node.
pub(crate) const NODE_NAME: &str = "ossnap-local";
/// Its disk, of which the indices use a sliver unless a test says otherwise.
const DISK_TOTAL_BYTES: u64 = 100 << 30;
/// OpenSearch's default `cluster.max_shards_per_node`.
const DEFAULT_MAX_SHARDS_PER_NODE: u64 = 1000;

/// `http.max_content_length` is 100mb on OpenSearch; the emulator has no use for more than this.
const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Query parameters every endpoint accepts.
const GLOBAL_PARAMETERS: &[&str] = &[
    "pretty",
    "human",
    "error_trace",
    "filter_path",
    "source",
    "source_content_type",
];

pub(crate) struct Emulator {
    pub config: LocalStackConfig,
    pub control: Control,
    pub state: Mutex<ClusterState>,
    state_file: StateFile,
    pub storage: crate::blob_store::StorageClients,
    pub running: Mutex<Vec<RunningSnapshot>>,
    pub node_id: String,
}

/// A parsed request as the handlers see it.
pub(crate) struct Call {
    pub method: String,
    pub path: String,
    /// Percent-decoded path segments.
    pub segments: Vec<String>,
    pub query: BTreeMap<String, String>,
    pub body: Bytes,
    pub principal: Principal,
}

impl Call {
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.query.get(name).map(String::as_str) {
            None => Ok(default),
            Some("" | "true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(ApiError::illegal_argument(format!(
                "Failed to parse value [{other}] as only [true] or [false] are allowed."
            ))),
        }
    }

    /// Refuses query parameters the endpoint does not know, as `BaseRestHandler` does.
    pub fn allow_parameters(&self, allowed: &[&str]) -> Result<(), ApiError> {
        let unknown: Vec<&String> = self
            .query
            .keys()
            .filter(|name| {
                !allowed.contains(&name.as_str()) && !GLOBAL_PARAMETERS.contains(&name.as_str())
            })
            .collect();
        match unknown.as_slice() {
            [] => Ok(()),
            [one] => Err(ApiError::illegal_argument(format!(
                "request [{}] contains unrecognized parameter: [{one}]",
                self.path
            ))),
            many => Err(ApiError::illegal_argument(format!(
                "request [{}] contains unrecognized parameters: {}",
                self.path,
                many.iter()
                    .map(|name| format!("[{name}]"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// The JSON body, `None` when empty; malformed JSON is `parse_exception` as from
    /// `XContentHelper.convertToMap`.
    pub fn json(&self) -> Result<Option<Value>, ApiError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&self.body)
            .map(Some)
            .map_err(|error| {
                ApiError::opensearch_with(
                    400,
                    "parse_exception",
                    "Failed to parse content to map",
                    Map::new(),
                    Some(json!({"type": "json_parse_exception", "reason": error.to_string()})),
                )
            })
    }

    pub fn required_json(&self) -> Result<Value, ApiError> {
        self.json()?
            .ok_or_else(|| ApiError::parse("request body is required"))
    }
}

pub(crate) enum Body {
    Json(Value),
    Text(String),
}

pub(crate) struct Reply {
    pub status: u16,
    pub body: Body,
}

impl Reply {
    pub fn ok(body: Value) -> Result<Reply, ApiError> {
        Ok(Reply {
            status: 200,
            body: Body::Json(body),
        })
    }

    pub fn acknowledged() -> Result<Reply, ApiError> {
        Self::ok(json!({"acknowledged": true}))
    }
}

pub(crate) type Handled = Result<Reply, ApiError>;

fn percent_decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

fn parse_query(raw: &str) -> BTreeMap<String, String> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&key.replace('+', " ")),
                percent_decode(&value.replace('+', " ")),
            )
        })
        .collect()
}

fn json_response(status: u16, body: &Value) -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=UTF-8")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("valid response")
}

fn text_response(status: u16, content_type: &str, body: String) -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("valid response")
}

impl Emulator {
    pub fn load(
        config: LocalStackConfig,
        storage: crate::blob_store::StorageClients,
    ) -> Result<Self, Error> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| Error::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let state_file = StateFile::new(&config.data_dir);
        let state = match state_file.load()? {
            Some(state) => state,
            None => {
                let mut state = ClusterState {
                    cluster_uuid: random_base64_uuid(),
                    ..ClusterState::default()
                };
                // The demo works out of the box: the configured principal may manage snapshots.
                state.role_mappings.insert(
                    MANAGE_SNAPSHOTS.to_owned(),
                    RoleMapping {
                        backend_roles: vec![config.principal_arn.clone()],
                        users: vec![config.principal_arn.clone()],
                        ..RoleMapping::default()
                    },
                );
                state_file.save(&state)?;
                state
            }
        };
        Ok(Emulator {
            config,
            control: Control::default(),
            state: Mutex::new(state),
            state_file,
            storage,
            running: Mutex::new(Vec::new()),
            node_id: random_base64_uuid(),
        })
    }

    /// Persists the cluster state; failures are reported as the cluster would report a failed
    /// state publication.
    pub fn save(&self, state: &ClusterState) -> Result<(), ApiError> {
        self.state_file.save(state).map_err(|error| {
            ApiError::opensearch(
                500,
                "failed_to_commit_cluster_state_exception",
                error.to_string(),
            )
        })
    }

    pub async fn handle(
        self: &Arc<Self>,
        peer: SocketAddr,
        request: http::Request<Incoming>,
    ) -> http::Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let method = parts.method.as_str().to_owned();
        let raw_path = parts.uri.path().to_owned();
        let raw_query = parts.uri.query().unwrap_or("").to_owned();
        let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                let error = ApiError::opensearch(
                    413,
                    "content_too_long_exception",
                    format!("request body is larger than [{MAX_BODY_BYTES}] bytes"),
                );
                return json_response(error.status, &error.body);
            }
        };

        if raw_path.starts_with("/_local/") || raw_path == "/_local" {
            if !peer.ip().is_loopback() {
                return json_response(
                    403,
                    &json!({"message": "control endpoints are loopback-only"}),
                );
            }
            return self.handle_control(&method, &raw_path, &body);
        }

        let latency = self.control.latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }

        let log = |status: u16, error_type: Option<String>| {
            self.control.log(LoggedRequest {
                method: method.clone(),
                path: raw_path.clone(),
                query: raw_query.clone(),
                status,
                error_type,
            });
        };

        let principal =
            match self.authenticate(&method, &raw_path, &raw_query, &parts.headers, &body) {
                Ok(principal) => principal,
                Err(error) => {
                    log(error.status, Some(error.error_type.clone()));
                    if error.status == 401 {
                        return http::Response::builder()
                            .status(401)
                            .header("www-authenticate", "Basic realm=\"OpenSearch Security\"")
                            .body(Full::new(Bytes::from_static(b"Unauthorized")))
                            .expect("valid response");
                    }
                    return json_response(error.status, &error.body);
                }
            };

        let fault = self.control.take_fault(&method, &raw_path);
        if let Some(fault) = fault.as_ref().filter(|fault| !fault.after_accept) {
            return self.fault_response(fault, &log).await;
        }

        let call = Call {
            segments: raw_path
                .split('/')
                .filter(|segment| !segment.is_empty())
                .map(percent_decode)
                .collect(),
            method: method.clone(),
            path: raw_path.clone(),
            query: parse_query(&raw_query),
            body,
            principal,
        };
        let handled = self.route(&call).await;
        if let Some(fault) = fault {
            return self.fault_response(&fault, &log).await;
        }
        match handled {
            Ok(reply) => {
                log(reply.status, None);
                match reply.body {
                    Body::Json(value) => json_response(reply.status, &value),
                    Body::Text(text) => {
                        text_response(reply.status, "text/plain; charset=UTF-8", text)
                    }
                }
            }
            Err(error) => {
                log(error.status, Some(error.error_type.clone()));
                json_response(error.status, &error.body)
            }
        }
    }

    /// Creates `sample` with its documents unless an index of that name exists.
    pub(crate) fn seed_index(&self, sample: &crate::samples::SampleIndex<'_>) -> Result<(), Error> {
        let mut state = self.state.lock().unwrap();
        if state.indices.contains_key(sample.name) {
            return Ok(());
        }
        let mut index = IndexState::new(
            random_base64_uuid(),
            now_millis(),
            sample.shards,
            1,
            sample.mappings(),
        );
        for n in 0..sample.documents {
            let (id, source) = sample.document(n);
            index.index_document(id, source);
        }
        state.indices.insert(sample.name.to_owned(), index);
        self.state_file.save(&state)
    }

    async fn fault_response(
        &self,
        fault: &Fault,
        log: &impl Fn(u16, Option<String>),
    ) -> http::Response<Full<Bytes>> {
        if fault.latency_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(fault.latency_ms)).await;
        }
        let error_type = serde_json::from_str::<Value>(&fault.body)
            .ok()
            .and_then(|body| body["error"]["type"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "injected_fault".to_owned());
        log(fault.status, Some(error_type));
        let content_type = if serde_json::from_str::<Value>(&fault.body).is_ok() {
            "application/json; charset=UTF-8"
        } else {
            "text/html"
        };
        text_response(fault.status, content_type, fault.body.clone())
    }

    fn authenticate(
        &self,
        method: &str,
        raw_path: &str,
        raw_query: &str,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Principal, ApiError> {
        match &self.config.auth {
            AuthMode::None => Ok(Principal::from_arn(&self.config.principal_arn)),
            AuthMode::SigV4 => {
                sigv4::verify(
                    &sigv4::Request {
                        method,
                        raw_path,
                        raw_query,
                        headers,
                        body,
                    },
                    &sigv4::Expected {
                        credentials: &self.config.credentials,
                        region: &self.config.region,
                        service: "es",
                        now: time::OffsetDateTime::now_utc(),
                    },
                )?;
                Ok(Principal::from_arn(&self.config.principal_arn))
            }
            AuthMode::Basic { username, password } => {
                let expected = format!(
                    "Basic {}",
                    base64_standard(format!("{username}:{password}").as_bytes())
                );
                let given = headers
                    .get("authorization")
                    .and_then(|value| value.to_str().ok());
                if given == Some(expected.as_str()) {
                    Ok(Principal::internal_user(username))
                } else {
                    Err(ApiError {
                        status: 401,
                        body: Value::Null,
                        error_type: "unauthorized".to_owned(),
                    })
                }
            }
        }
    }

    async fn route(self: &Arc<Self>, call: &Call) -> Handled {
        let segments: Vec<&str> = call.segments.iter().map(String::as_str).collect();
        let method = call.method.as_str();
        match (method, segments.as_slice()) {
            ("GET", []) => self.cluster_info(call),
            ("GET", ["_cluster", "health"]) => self.cluster_health(call, None),
            ("GET", ["_cluster", "health", indices]) => self.cluster_health(call, Some(indices)),
            ("GET" | "POST", ["_cluster", "allocation", "explain"]) => {
                self.allocation_explain(call)
            }
            ("GET", ["_cluster", "settings"]) => self.get_cluster_settings(call),
            ("PUT", ["_cluster", "settings"]) => self.put_cluster_settings(call),
            ("GET", ["_cat", "indices"]) => self.cat_indices(call),
            ("GET", ["_cat", "allocation"]) => self.cat_allocation(call),
            (_, ["_snapshot", ..]) | (_, ["_cat", "snapshots" | "repositories", ..]) => {
                self.route_snapshot(call, &segments).await
            }
            ("GET", ["_plugins", "_security", "authinfo"]) => {
                call.allow_parameters(&[])?;
                let state = self.state.lock().unwrap();
                Reply::ok(security::auth_info(&state.role_mappings, &call.principal))
            }
            (_, ["_plugins", "_security", "api", "rolesmapping", rest @ ..]) => {
                self.roles_mapping(call, rest)
            }
            ("PUT", [index]) if !index.starts_with('_') => self.create_index(call, index),
            ("DELETE", [index]) if !index.starts_with('_') => self.delete_index(call, index),
            ("GET", [index]) if !index.starts_with('_') => self.get_index(call, index),
            ("POST", [index, "_doc"]) => self.index_document(call, index, None),
            ("PUT" | "POST", [index, "_doc", id]) => self.index_document(call, index, Some(id)),
            ("GET", [index, "_doc", id]) => self.get_document(call, index, id),
            ("GET" | "POST", [index, "_count"]) => self.count(call, index),
            ("GET", [index, "_stats", "indexing"]) => self.indexing_stats(call, index),
            ("POST", ["_aliases"]) => self.update_aliases(call),
            ("GET", [index, "_recovery"]) => self.recovery(call, index),
            // Documents are searchable as soon as they are indexed here: refreshing is a no-op.
            ("POST" | "GET", ["_refresh"]) => {
                call.allow_parameters(&[])?;
                Reply::ok(json!({"_shards": {"total": 1, "successful": 1, "failed": 0}}))
            }
            ("POST" | "GET", [index, "_refresh"]) => {
                call.allow_parameters(&[])?;
                self.with_index(index, |_| ())?;
                Reply::ok(json!({"_shards": {"total": 1, "successful": 1, "failed": 0}}))
            }
            _ => Err(ApiError::opensearch(
                400,
                "illegal_argument_exception",
                format!(
                    "no handler found for uri [{}] and method [{}]",
                    call.path, call.method
                ),
            )),
        }
    }

    fn cluster_info(&self, call: &Call) -> Handled {
        call.allow_parameters(&[])?;
        let (number, _) = self.config.profile.version();
        // What 2.x and 3.x nodes answer: 3.x reads indices of 2.x and later only.
        let (wire, oldest_index) = match self.config.profile {
            crate::Profile::V2 => ("7.10.0", "7.0.0"),
            crate::Profile::V3 => ("2.19.0", "2.0.0"),
            crate::Profile::Es77 => ("6.8.0", "6.0.0-beta1"),
            crate::Profile::Es68 => ("5.6.0", "5.0.0"),
        };
        let state = self.state.lock().unwrap();
        let mut info = json!({
            "name": "ossnap-local",
            "cluster_name": "123456789012:ossnap-local",
            "cluster_uuid": state.cluster_uuid,
            "version": {"distribution": "opensearch", "number": number, "build_type": "tar", "build_hash": "0000000000000000000000000000000000000000", "build_date": "2024-09-01T00:00:00.000000000Z", "build_snapshot": false, "lucene_version": "9.11.1", "minimum_wire_compatibility_version": wire, "minimum_index_compatibility_version": oldest_index},
            "tagline": "The OpenSearch Project: https://opensearch.org/"
        });
        if matches!(self.config.profile, Profile::Es77 | Profile::Es68) {
            // Elasticsearch has no `distribution`.
            info["version"]
                .as_object_mut()
                .expect("an object")
                .remove("distribution");
            info["tagline"] = json!("You Know, for Search");
        }
        Reply::ok(info)
    }

    fn cluster_health(&self, call: &Call, indices: Option<&str>) -> Handled {
        call.allow_parameters(&[
            "level",
            "local",
            "master_timeout",
            "cluster_manager_timeout",
            "timeout",
            "wait_for_status",
            "wait_for_nodes",
            "wait_for_active_shards",
            "wait_for_no_relocating_shards",
            "wait_for_no_initializing_shards",
            "wait_for_events",
            "expand_wildcards",
            "awareness_attribute",
        ])?;
        let now = now_millis();
        let state = self.state.lock().unwrap();
        let named: Option<Vec<&str>> = indices.map(|list| list.split(',').collect());
        let mut per_index = Map::new();
        let (mut active, mut initializing, mut unassigned) = (0u32, 0u32, 0u32);
        for (name, index) in &state.indices {
            if named
                .as_ref()
                .is_some_and(|names| !names.contains(&name.as_str()))
            {
                continue;
            }
            let (index_active, index_initializing, index_unassigned) = if self.control.is_red(name)
            {
                (0, 0, index.number_of_shards)
            } else {
                match &index.recovery {
                    Some(recovery) if recovery.unallocatable() => (0, 0, index.number_of_shards),
                    Some(recovery) if !recovery.done(now) => (0, index.number_of_shards, 0),
                    _ => (index.number_of_shards, 0, 0),
                }
            };
            active += index_active;
            initializing += index_initializing;
            unassigned += index_unassigned;
            let status = if index_active < index.number_of_shards {
                "red"
            } else {
                "green"
            };
            per_index.insert(
                name.clone(),
                json!({
                    "status": status,
                    "number_of_shards": index.number_of_shards,
                    "number_of_replicas": index.number_of_replicas,
                    "active_primary_shards": index_active,
                    "active_shards": index_active,
                    "relocating_shards": 0,
                    "initializing_shards": index_initializing,
                    "unassigned_shards": index_unassigned,
                }),
            );
        }
        let missing = named
            .as_ref()
            .is_some_and(|names| names.iter().any(|name| !per_index.contains_key(*name)));
        let status = if missing || active < active + initializing + unassigned {
            "red"
        } else {
            "green"
        };
        let mut body = json!({
            "cluster_name": "123456789012:ossnap-local",
            "status": status,
            "timed_out": false,
            "number_of_nodes": 1,
            "number_of_data_nodes": 1,
            "discovered_master": true,
            "discovered_cluster_manager": true,
            "active_primary_shards": active,
            "active_shards": active,
            "relocating_shards": 0,
            "initializing_shards": initializing,
            "unassigned_shards": unassigned,
            "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0,
            "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": if active + initializing + unassigned == 0 { 100.0 } else { f64::from(active) * 100.0 / f64::from(active + initializing + unassigned) }
        });
        if call.query.get("level").map(String::as_str) == Some("indices") {
            body["indices"] = Value::Object(per_index);
        }
        Reply::ok(body)
    }

    /// Shards of open indices, replicas included: what `cluster.max_shards_per_node` limits.
    fn open_shards(state: &ClusterState) -> u64 {
        state
            .indices
            .values()
            .map(|index| {
                u64::from(index.number_of_shards) * u64::from(1 + index.number_of_replicas)
            })
            .sum()
    }

    fn max_shards_per_node(state: &ClusterState) -> u64 {
        state
            .settings
            .get("cluster.max_shards_per_node")
            .and_then(|value| value.as_u64().or_else(|| value.as_str()?.parse().ok()))
            .unwrap_or(DEFAULT_MAX_SHARDS_PER_NODE)
    }

    /// OpenSearch's refusal of an action that would open more shards than the cluster allows.
    pub(crate) fn check_shard_limit(
        &self,
        state: &ClusterState,
        adding: u64,
    ) -> Result<(), ApiError> {
        let open = Self::open_shards(state);
        let limit = Self::max_shards_per_node(state);
        if open + adding > limit {
            // 3.x names the kind of shards it counts (remote-backed indices are counted apart).
            let kind = match self.config.profile {
                crate::Profile::V2 | crate::Profile::Es77 | crate::Profile::Es68 => "",
                crate::Profile::V3 => "LOCAL_ONLY ",
            };
            return Err(ApiError::opensearch(
                400,
                "validation_exception",
                format!("Validation Failed: 1: this action would add [{adding}] total {kind}shards, but this cluster currently has [{open}]/[{limit}] maximum {kind}shards open;"),
            ));
        }
        Ok(())
    }

    fn get_cluster_settings(&self, call: &Call) -> Handled {
        call.allow_parameters(&[
            "include_defaults",
            "flat_settings",
            "master_timeout",
            "cluster_manager_timeout",
            "timeout",
        ])?;
        let state = self.state.lock().unwrap();
        let persistent: Map<String, Value> = state.settings.clone().into_iter().collect();
        let mut body = json!({"persistent": persistent, "transient": {}});
        if call.flag("include_defaults", false)? {
            body["defaults"] =
                json!({"cluster.max_shards_per_node": DEFAULT_MAX_SHARDS_PER_NODE.to_string()});
        }
        Reply::ok(body)
    }

    /// `PUT _cluster/settings`: the persistent and transient settings the emulator knows
    /// (`cluster.max_shards_per_node`), kept alike; `null` resets one.
    fn put_cluster_settings(&self, call: &Call) -> Handled {
        call.allow_parameters(&[
            "flat_settings",
            "master_timeout",
            "cluster_manager_timeout",
            "timeout",
        ])?;
        let body = call.required_json()?;
        let mut state = self.state.lock().unwrap();
        let mut acknowledged = json!({"acknowledged": true, "persistent": {}, "transient": {}});
        for scope in ["persistent", "transient"] {
            let Some(settings) = body.get(scope).and_then(Value::as_object) else {
                continue;
            };
            for (key, value) in settings {
                match key.as_str() {
                    "cluster.max_shards_per_node"
                    | "snapshot.max_concurrent_operations"
                    | "cluster.routing.allocation.disk.threshold_enabled"
                    | "cluster.routing.allocation.disk.watermark.low"
                    | "cluster.routing.allocation.disk.watermark.high"
                    | "cluster.routing.allocation.disk.watermark.flood_stage" => {}
                    other => {
                        return Err(ApiError::illegal_argument(format!(
                            "{scope} setting [{other}], not recognized"
                        )))
                    }
                }
                if value.is_null() {
                    state.settings.remove(key);
                    continue;
                }
                state.settings.insert(key.clone(), value.clone());
                // Answered nested, every value a string, as OpenSearch renders settings.
                let text = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned);
                let mut node = &mut acknowledged[scope];
                let parts: Vec<&str> = key.split('.').collect();
                for part in &parts[..parts.len() - 1] {
                    if node.get(*part).is_none() {
                        node[*part] = json!({});
                    }
                    node = &mut node[*part];
                }
                node[parts[parts.len() - 1]] = json!(text);
            }
        }
        self.save(&state)?;
        Reply::ok(acknowledged)
    }

    /// `_cat/indices?format=json` (the columns ossnap reads; every index is open here).
    fn cat_indices(&self, call: &Call) -> Handled {
        call.allow_parameters(&[
            "format",
            "h",
            "expand_wildcards",
            "bytes",
            "s",
            "v",
            "health",
            "pri",
        ])?;
        let now = now_millis();
        let state = self.state.lock().unwrap();
        let rows: Vec<Value> = state
            .indices
            .iter()
            .map(|(name, index)| {
                let health = if self.control.is_red(name) || index.inactive_primaries(now) > 0 {
                    "red"
                } else {
                    "green"
                };
                json!({
                    "health": health, "status": "open", "index": name, "uuid": index.uuid,
                    "pri": index.number_of_shards.to_string(), "rep": index.number_of_replicas.to_string(),
                    "docs.count": index.count().to_string(),
                })
            })
            .collect();
        Reply::ok(Value::Array(rows))
    }

    /// `_cat/allocation?format=json&bytes=b`: the one node's shards and disk.
    fn cat_allocation(&self, call: &Call) -> Handled {
        call.allow_parameters(&["format", "h", "bytes", "s", "v", "local"])?;
        let state = self.state.lock().unwrap();
        let shards: u64 = state
            .indices
            .values()
            .map(|i| u64::from(i.number_of_shards))
            .sum();
        let available = self
            .control
            .disk_available()
            .unwrap_or(DISK_TOTAL_BYTES - (1 << 20))
            .min(DISK_TOTAL_BYTES);
        let used = DISK_TOTAL_BYTES - available;
        Reply::ok(json!([{
            "shards": shards.to_string(),
            "disk.indices": "0",
            "disk.used": used.to_string(),
            "disk.avail": available.to_string(),
            "disk.total": DISK_TOTAL_BYTES.to_string(),
            "disk.percent": (used * 100 / DISK_TOTAL_BYTES).to_string(),
            "host": "127.0.0.1", "ip": "127.0.0.1", "node": NODE_NAME
        }]))
    }

    /// `_cluster/allocation/explain` for one shard (body `index`, `shard`, `primary`).
    fn allocation_explain(&self, call: &Call) -> Handled {
        call.allow_parameters(&["include_yes_decisions", "include_disk_info"])?;
        let body = call.json()?.unwrap_or(Value::Null);
        let Some(index_name) = body["index"].as_str() else {
            return Err(ApiError::illegal_argument(
                "unable to find any unassigned shards to explain [ClusterAllocationExplainRequest[useAnyUnassignedShard=true,include_yes_decisions?=false]",
            ));
        };
        let shard = body["shard"].as_u64().unwrap_or(0);
        let primary = body["primary"].as_bool().unwrap_or(false);
        let now = now_millis();
        let (shards, recovery, red) = self.with_index(index_name, |index| {
            (
                index.number_of_shards,
                index.recovery.clone(),
                self.control.is_red(index_name),
            )
        })?;
        if shard >= u64::from(shards) {
            return Err(ApiError::illegal_argument(format!(
                "No shard was specified in the explain API request for index [{index_name}] and shard [{shard}]"
            )));
        }
        let node = json!({"id": self.node_id, "name": NODE_NAME, "transport_address": "127.0.0.1:9300", "attributes": {}, "weight_ranking": 1});
        let unassigned = |reason: &str, details: String, decider: &str, explanation: String| {
            json!({
                "index": index_name, "shard": shard, "primary": primary,
                "current_state": "unassigned",
                "unassigned_info": {"reason": reason, "at": format_millis(now), "details": details, "last_allocation_status": "no"},
                "can_allocate": "no",
                "allocate_explanation": "cannot allocate because allocation is not permitted to any of the nodes",
                "node_allocation_decisions": [{
                    "node_id": self.node_id, "node_name": NODE_NAME, "transport_address": "127.0.0.1:9300",
                    "node_attributes": {}, "node_decision": "no", "weight_ranking": 1,
                    "deciders": [{"decider": decider, "decision": "NO", "explanation": explanation}]
                }]
            })
        };
        if !primary {
            return Reply::ok(unassigned(
                "INDEX_CREATED",
                "a single-node cluster holds no replica".to_owned(),
                "same_shard",
                "a copy of this shard is already allocated to this node".to_owned(),
            ));
        }
        if let Some(required) = recovery.as_ref().and_then(|r| r.required_node.clone()) {
            let origin = recovery
                .as_ref()
                .map(|r| format!("{}/{}", r.repository, r.snapshot))
                .unwrap_or_default();
            return Reply::ok(unassigned(
                "NEW_INDEX_RESTORED",
                format!("restore_source[{origin}]"),
                "filter",
                format!("node does not match index setting [index.routing.allocation.require] filters [_name:\"{required}\"]"),
            ));
        }
        if red {
            return Reply::ok(unassigned(
                "NODE_LEFT",
                "node_left [the node holding the primary left the cluster]".to_owned(),
                "replica_after_primary_active",
                "no node holds a copy of this shard".to_owned(),
            ));
        }
        let initializing = recovery.as_ref().is_some_and(|r| !r.done(now));
        let mut answer = json!({
            "index": index_name, "shard": shard, "primary": primary,
            "current_state": if initializing { "initializing" } else { "started" },
            "current_node": node,
        });
        if !initializing {
            answer["can_remain_on_current_node"] = json!("yes");
            answer["can_rebalance_cluster"] = json!("no");
            answer["rebalance_explanation"] = json!("cannot rebalance as no target node exists that can both allocate this shard and improve the cluster balance");
        } else {
            answer["explanation"] = json!("the shard is in the process of initializing on node [ossnap-local], wait until initialization has completed");
        }
        Reply::ok(answer)
    }

    fn indexing_stats(&self, call: &Call, index_name: &str) -> Handled {
        call.allow_parameters(&["level", "expand_wildcards", "ignore_unavailable"])?;
        let (index_total, count) =
            self.with_index(index_name, |index| (index.index_total, index.count()))?;
        let indexing = json!({"index_total": index_total, "index_time_in_millis": 0, "index_current": 0, "index_failed": 0, "delete_total": 0, "delete_time_in_millis": 0, "delete_current": 0, "noop_update_total": 0, "is_throttled": false, "throttle_time_in_millis": 0});
        let stats = json!({"docs": {"count": count, "deleted": 0}, "indexing": indexing});
        Reply::ok(json!({
            "_shards": {"total": 1, "successful": 1, "failed": 0},
            "_all": {"primaries": stats, "total": stats},
            "indices": {index_name: {"uuid": self.with_index(index_name, |i| i.uuid.clone())?, "primaries": stats, "total": stats}}
        }))
    }

    pub fn with_index<T>(
        &self,
        name: &str,
        f: impl FnOnce(&mut IndexState) -> T,
    ) -> Result<T, ApiError> {
        let mut state = self.state.lock().unwrap();
        let index = state
            .indices
            .get_mut(name)
            .ok_or_else(|| ApiError::index_not_found(name))?;
        Ok(f(index))
    }

    fn validate_index_name(name: &str) -> Result<(), ApiError> {
        let invalid = |reason: &str| {
            let mut extra = Map::new();
            extra.insert("index".to_owned(), json!(name));
            extra.insert("index_uuid".to_owned(), json!("_na_"));
            Err(ApiError::opensearch_with(
                400,
                "invalid_index_name_exception",
                format!("Invalid index name [{name}], {reason}"),
                extra,
                None,
            ))
        };
        if name.to_lowercase() != name {
            return invalid("must be lowercase");
        }
        if name.starts_with(['_', '-', '+']) {
            return invalid("must not start with '_', '-', or '+'");
        }
        if name.contains(['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',', '#', ':']) {
            return invalid(
                "must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?]",
            );
        }
        Ok(())
    }

    fn new_index(&self, name: &str, body: Option<&Value>) -> Result<IndexState, ApiError> {
        Self::validate_index_name(name)?;
        let settings = body.and_then(|body| body.get("settings"));
        let setting = |key: &str, default: u32| -> Result<u32, ApiError> {
            let value = settings.and_then(|settings| {
                settings
                    .get("index")
                    .and_then(|index| index.get(key))
                    .or_else(|| settings.get(format!("index.{key}")))
                    .or_else(|| settings.get(key))
            });
            match value {
                None => Ok(default),
                Some(Value::Number(number)) => number.as_u64().map(|n| n as u32).ok_or(()),
                Some(Value::String(text)) => text.parse().map_err(|_| ()),
                Some(_) => Err(()),
            }
            .map_err(|()| {
                ApiError::illegal_argument(format!(
                    "Failed to parse value [{}] for setting [index.{key}]",
                    value.map(Value::to_string).unwrap_or_default()
                ))
            })
        };
        let shards = setting("number_of_shards", 1)?;
        if shards == 0 || shards > 1024 {
            return Err(ApiError::illegal_argument(format!(
                "Failed to parse value [{shards}] for setting [index.number_of_shards] must be >= 1"
            )));
        }
        let replicas = setting("number_of_replicas", 1)?;
        let mappings = body
            .and_then(|body| body.get("mappings"))
            .cloned()
            .unwrap_or(json!({}));
        Ok(IndexState::new(
            random_base64_uuid(),
            now_millis(),
            shards,
            replicas,
            mappings,
        ))
    }

    fn create_index(&self, call: &Call, name: &str) -> Handled {
        call.allow_parameters(&[
            "wait_for_active_shards",
            "timeout",
            "master_timeout",
            "cluster_manager_timeout",
        ])?;
        let body = call.json()?;
        let index = self.new_index(name, body.as_ref())?;
        let mut state = self.state.lock().unwrap();
        if let Some(existing) = state.indices.get(name) {
            let mut extra = Map::new();
            extra.insert("index".to_owned(), json!(name));
            extra.insert("index_uuid".to_owned(), json!(existing.uuid));
            return Err(ApiError::opensearch_with(
                400,
                "resource_already_exists_exception",
                format!("index [{name}/{}] already exists", existing.uuid),
                extra,
                None,
            ));
        }
        state.indices.insert(name.to_owned(), index);
        self.save(&state)?;
        Reply::ok(json!({"acknowledged": true, "shards_acknowledged": true, "index": name}))
    }

    fn delete_index(&self, call: &Call, name: &str) -> Handled {
        call.allow_parameters(&[
            "timeout",
            "master_timeout",
            "cluster_manager_timeout",
            "ignore_unavailable",
            "allow_no_indices",
            "expand_wildcards",
        ])?;
        if let Some(running) = self.snapshot_using_index(name) {
            return Err(ApiError::opensearch(
                400,
                "snapshot_in_progress_exception",
                format!("Cannot delete indices that are being snapshotted: [[{name}]]. Try again after snapshot finishes or cancel the currently running snapshot. Snapshot: {running}"),
            ));
        }
        let mut state = self.state.lock().unwrap();
        if state.indices.remove(name).is_none() {
            return Err(ApiError::index_not_found(name));
        }
        self.save(&state)?;
        Reply::acknowledged()
    }

    fn get_index(&self, call: &Call, name: &str) -> Handled {
        call.allow_parameters(&[
            "include_defaults",
            "flat_settings",
            "local",
            "ignore_unavailable",
            "allow_no_indices",
            "expand_wildcards",
            "master_timeout",
            "cluster_manager_timeout",
        ])?;
        let state = self.state.lock().unwrap();
        let index = state
            .indices
            .get(name)
            .ok_or_else(|| ApiError::index_not_found(name))?;
        Reply::ok(
            json!({name: {"aliases": {}, "mappings": index.mappings, "settings": index.settings(name)}}),
        )
    }

    fn index_document(&self, call: &Call, index_name: &str, id: Option<&str>) -> Handled {
        call.allow_parameters(&[
            "refresh",
            "routing",
            "timeout",
            "version",
            "version_type",
            "if_seq_no",
            "if_primary_term",
            "op_type",
            "pipeline",
            "wait_for_active_shards",
            "require_alias",
        ])?;
        let source = call.required_json()?;
        if !source.is_object() {
            return Err(ApiError::opensearch(
                400,
                "mapper_parsing_exception",
                "failed to parse",
            ));
        }
        let id = id.map_or_else(random_base64_uuid, str::to_owned);
        let mut state = self.state.lock().unwrap();
        if !state.indices.contains_key(index_name) {
            let index = self.new_index(index_name, None)?;
            state.indices.insert(index_name.to_owned(), index);
        }
        let index = state.indices.get_mut(index_name).expect("just ensured");
        let created = index.document(&id).is_none();
        index.index_document(id.clone(), source);
        self.save(&state)?;
        Ok(Reply {
            status: if created { 201 } else { 200 },
            body: Body::Json(json!({
                "_index": index_name, "_id": id, "_version": 1,
                "result": if created { "created" } else { "updated" },
                "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": 0, "_primary_term": 1
            })),
        })
    }

    fn get_document(&self, call: &Call, index_name: &str, id: &str) -> Handled {
        call.allow_parameters(&[
            "routing",
            "preference",
            "realtime",
            "refresh",
            "_source",
            "_source_includes",
            "_source_excludes",
            "stored_fields",
            "version",
            "version_type",
        ])?;
        let document = self.with_index(index_name, |index| index.document(id).cloned())?;
        match document {
            Some(source) => Reply::ok(
                json!({"_index": index_name, "_id": id, "_version": 1, "_seq_no": 0, "_primary_term": 1, "found": true, "_source": source}),
            ),
            None => Ok(Reply {
                status: 404,
                body: Body::Json(json!({"_index": index_name, "_id": id, "found": false})),
            }),
        }
    }

    fn count(&self, call: &Call, index_name: &str) -> Handled {
        call.allow_parameters(&[
            "q",
            "ignore_unavailable",
            "allow_no_indices",
            "expand_wildcards",
            "routing",
            "preference",
            "min_score",
            "terminate_after",
            "analyzer",
            "default_operator",
            "df",
            "lenient",
            "analyze_wildcard",
        ])?;
        let now = now_millis();
        let (count, shards, inactive) = self.with_index(index_name, |index| {
            (
                index.count(),
                index.number_of_shards,
                index.inactive_primaries(now),
            )
        })?;
        if inactive > 0 {
            return Err(ApiError::opensearch_with(
                503,
                "search_phase_execution_exception",
                "all shards failed",
                Map::new(),
                None,
            ));
        }
        Reply::ok(
            json!({"count": count, "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0}}),
        )
    }

    /// `POST _aliases` with `add`/`remove` actions (enough for restore's `include_aliases`).
    fn update_aliases(&self, call: &Call) -> Handled {
        call.allow_parameters(&["timeout", "master_timeout", "cluster_manager_timeout"])?;
        let body = call.required_json()?;
        let actions = body["actions"].as_array().ok_or_else(|| {
            ApiError::opensearch(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: no actions specified;",
            )
        })?;
        let mut state = self.state.lock().unwrap();
        for action in actions {
            let (kind, details) = action
                .as_object()
                .and_then(|object| object.iter().next())
                .ok_or_else(|| ApiError::parse("Failed to parse content to map"))?;
            let index = details["index"].as_str().unwrap_or_default();
            let alias = details["alias"].as_str().unwrap_or_default().to_owned();
            let entry = state
                .indices
                .get_mut(index)
                .ok_or_else(|| ApiError::index_not_found(index))?;
            match kind.as_str() {
                "add" => {
                    entry.aliases.insert(alias);
                }
                "remove" => {
                    entry.aliases.remove(&alias);
                }
                other => {
                    return Err(ApiError::illegal_argument(format!(
                        "Unsupported action [{other}]"
                    )))
                }
            }
        }
        self.save(&state)?;
        Reply::acknowledged()
    }

    /// `GET {indices}/_recovery`: a restored index's primaries copy their files over the
    /// restore's duration; unallocated primaries have no recovery, as on a real cluster.
    fn recovery(&self, call: &Call, names: &str) -> Handled {
        call.allow_parameters(&["detailed", "active_only"])?;
        let now = now_millis();
        let mut answer = Map::new();
        for index_name in names.split(',') {
            let (shards, recovery, created) = self.with_index(index_name, |index| {
                (
                    index.number_of_shards,
                    index.recovery.clone(),
                    index.creation_date,
                )
            })?;
            if recovery.as_ref().is_some_and(Recovery::unallocatable) {
                answer.insert(index_name.to_owned(), json!({"shards": []}));
                continue;
            }
            let share = recovery.as_ref().map_or(1.0, |r| r.share(now));
            let stage = if share >= 1.0 { "DONE" } else { "INDEX" };
            let elapsed = (now - recovery.as_ref().map_or(created, |r| r.started_millis)).max(0);
            let shards: Vec<Value> = (0..shards)
                .map(|id| {
                    let (kind, source, (files, bytes)) = match &recovery {
                        Some(origin) => (
                            "SNAPSHOT",
                            json!({"repository": origin.repository, "snapshot": origin.snapshot, "version": self.config.profile.version().0, "index": index_name, "restoreUUID": origin.started_millis.to_string()}),
                            origin.shards.get(id as usize).copied().unwrap_or((0, 0)),
                        ),
                        None => ("EMPTY_STORE", json!({}), (0, 0)),
                    };
                    let recovered_files = (files as f64 * share).floor() as u64;
                    let recovered_bytes = (bytes as f64 * share).floor() as u64;
                    let percent = |done: u64, total: u64| {
                        if total == 0 { "100.0%".to_owned() } else { format!("{:.1}%", done as f64 * 100.0 / total as f64) }
                    };
                    json!({
                        "id": id, "type": kind, "stage": stage, "primary": true,
                        "start_time_in_millis": recovery.as_ref().map_or(created, |r| r.started_millis),
                        "total_time_in_millis": elapsed,
                        "source": source,
                        "target": {"id": self.node_id, "host": "127.0.0.1", "transport_address": "127.0.0.1:9300", "ip": "127.0.0.1", "name": NODE_NAME},
                        "index": {
                            "size": {"total_in_bytes": bytes, "reused_in_bytes": 0, "recovered_in_bytes": recovered_bytes, "percent": percent(recovered_bytes, bytes)},
                            "files": {"total": files, "reused": 0, "recovered": recovered_files, "percent": percent(recovered_files, files)},
                            "total_time_in_millis": elapsed, "source_throttle_time_in_millis": 0, "target_throttle_time_in_millis": 0
                        },
                        "translog": {"recovered": 0, "total": 0, "percent": "100.0%", "total_on_start": 0, "total_time_in_millis": 0},
                        "verify_index": {"check_index_time_in_millis": 0, "total_time_in_millis": 0}
                    })
                })
                .collect();
            answer.insert(index_name.to_owned(), json!({"shards": shards}));
        }
        Reply::ok(Value::Object(answer))
    }

    fn roles_mapping(&self, call: &Call, rest: &[&str]) -> Handled {
        call.allow_parameters(&[])?;
        let mut state = self.state.lock().unwrap();
        match (call.method.as_str(), rest) {
            ("GET", []) => {
                let all: Map<String, Value> = state
                    .role_mappings
                    .iter()
                    .map(|(role, mapping)| (role.clone(), mapping.to_api()))
                    .collect();
                Reply::ok(Value::Object(all))
            }
            ("GET", [role]) => match state.role_mappings.get(*role) {
                Some(mapping) => Reply::ok(json!({ *role: mapping.to_api() })),
                None => Ok(Reply {
                    status: 404,
                    body: Body::Json(security::status_body(
                        "NOT_FOUND",
                        &format!("Resource '{role}' not found."),
                    )),
                }),
            },
            ("PUT", [role]) => {
                let body = call.required_json()?;
                let mapping: RoleMapping = serde_json::from_value(body)
                    .map_err(|error| security_bad_request(&error.to_string()))?;
                let created = state
                    .role_mappings
                    .insert((*role).to_owned(), mapping)
                    .is_none();
                self.save(&state)?;
                Ok(Reply {
                    status: if created { 201 } else { 200 },
                    body: Body::Json(security::status_body(
                        if created { "CREATED" } else { "OK" },
                        &format!("'{role}' {}.", if created { "created" } else { "updated" }),
                    )),
                })
            }
            ("PATCH", [role]) => {
                let body = call.required_json()?;
                let operations = body
                    .as_array()
                    .cloned()
                    .ok_or_else(|| security_bad_request("Patch must be an array of operations"))?;
                let Some(mapping) = state.role_mappings.get_mut(*role) else {
                    return Ok(Reply {
                        status: 404,
                        body: Body::Json(security::status_body(
                            "NOT_FOUND",
                            &format!("Resource '{role}' not found."),
                        )),
                    });
                };
                security::patch_mapping(mapping, &operations)
                    .map_err(|reason| security_bad_request(&reason))?;
                self.save(&state)?;
                Reply::ok(security::status_body("OK", "Resource updated."))
            }
            ("DELETE", [role]) => {
                if state.role_mappings.remove(*role).is_none() {
                    return Ok(Reply {
                        status: 404,
                        body: Body::Json(security::status_body(
                            "NOT_FOUND",
                            &format!("Resource '{role}' not found."),
                        )),
                    });
                }
                self.save(&state)?;
                Reply::ok(security::status_body("OK", &format!("'{role}' deleted.")))
            }
            _ => Err(ApiError::opensearch(
                405,
                "method_not_allowed",
                format!("Method {} not supported for this action.", call.method),
            )),
        }
    }

    fn handle_control(&self, method: &str, path: &str, body: &[u8]) -> http::Response<Full<Bytes>> {
        let parsed = || serde_json::from_slice::<Value>(body);
        let bad = |reason: String| json_response(400, &json!({"error": reason}));
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            ("GET", ["_local", "requests"]) => json_response(
                200,
                &serde_json::to_value(self.control.requests()).unwrap_or_default(),
            ),
            ("DELETE", ["_local", "requests"]) => {
                self.control.clear_requests();
                json_response(200, &json!({"acknowledged": true}))
            }
            ("POST", ["_local", "faults"]) => {
                let faults = match parsed() {
                    Ok(Value::Array(items)) => items
                        .into_iter()
                        .map(serde_json::from_value::<Fault>)
                        .collect::<Result<Vec<_>, _>>(),
                    Ok(item) => serde_json::from_value::<Fault>(item).map(|fault| vec![fault]),
                    Err(error) => Err(error),
                };
                match faults {
                    Ok(faults) => {
                        faults
                            .into_iter()
                            .for_each(|fault| self.control.add_fault(fault));
                        json_response(200, &json!({"acknowledged": true}))
                    }
                    Err(error) => bad(error.to_string()),
                }
            }
            ("DELETE", ["_local", "faults"]) => {
                self.control.clear_faults();
                json_response(200, &json!({"acknowledged": true}))
            }
            ("PUT" | "POST", ["_local", "latency"]) => {
                match parsed().ok().and_then(|body| body["latency_ms"].as_u64()) {
                    Some(millis) => {
                        self.control
                            .set_latency(std::time::Duration::from_millis(millis));
                        json_response(200, &json!({"acknowledged": true}))
                    }
                    None => bad("expected {\"latency_ms\": N}".to_owned()),
                }
            }
            ("POST", ["_local", "next-snapshot"]) => {
                match parsed().map(serde_json::from_value::<SnapshotOutcome>) {
                    Ok(Ok(outcome)) => {
                        self.control.set_next_snapshot_outcome(outcome);
                        json_response(200, &json!({"acknowledged": true}))
                    }
                    Ok(Err(error)) | Err(error) => bad(error.to_string()),
                }
            }
            ("POST", ["_local", "automated-snapshot"]) => {
                match parsed().ok().and_then(|body| body["duration_ms"].as_u64()) {
                    Some(millis) => {
                        let name = self
                            .control
                            .start_automated_snapshot(std::time::Duration::from_millis(millis));
                        json_response(
                            200,
                            &json!({"repository": crate::control::AUTOMATED_REPOSITORY, "snapshot": name}),
                        )
                    }
                    None => bad("expected {\"duration_ms\": N}".to_owned()),
                }
            }
            ("PUT", ["_local", "disk"]) => {
                match parsed()
                    .ok()
                    .and_then(|body| body["available_bytes"].as_u64())
                {
                    Some(bytes) => {
                        self.control.set_disk_available(bytes);
                        json_response(200, &json!({"acknowledged": true}))
                    }
                    None => bad("expected {\"available_bytes\": N}".to_owned()),
                }
            }
            ("POST", ["_local", "indices", index, "red"]) => {
                self.control.make_index_red(index);
                json_response(200, &json!({"acknowledged": true}))
            }
            ("POST", ["_local", "indices", index, "green"]) => {
                self.control.make_index_green(index);
                json_response(200, &json!({"acknowledged": true}))
            }
            _ => json_response(
                404,
                &json!({"error": format!("no control endpoint {method} {path}")}),
            ),
        }
    }
}

/// The security REST API's own error shape (`{"status":"BAD_REQUEST","message":..}`).
fn security_bad_request(message: &str) -> ApiError {
    ApiError {
        status: 400,
        body: security::status_body("BAD_REQUEST", message),
        error_type: "bad_request".to_owned(),
    }
}

fn base64_standard(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let value = chunk.iter().enumerate().fold(0u32, |acc, (i, &byte)| {
            acc | (u32::from(byte) << (16 - 8 * i))
        });
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((value >> (18 - 6 * i)) & 0x3F) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_encode_like_rfc_7617() {
        assert_eq!(
            base64_standard(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }
}
