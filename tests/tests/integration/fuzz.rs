//! Fuzz targets, with proptest so that they run in CI's time: what arrives from outside — events,
//! OpenSearch's error answers, names, and the repository's blobs in the bucket — never panics and
//! never takes memory out of proportion to its size.
//!
//! `cargo test -p ossnap-tests --test integration fuzz::` runs proptest's default 256 cases per target (in
//! `make test`); the long run sets `PROPTEST_CASES` (README, "Fuzzing").

use ossnap_core::check_restore::CheckRestoreInput;
use ossnap_core::event::Invocation;
use ossnap_core::names;
use ossnap_core::opensearch::classify::classify;
use ossnap_core::register::RegisterInput;
use ossnap_core::restore::RestoreInput;
use ossnap_core::retention::RetentionInput;
use ossnap_core::snapshot::SnapshotInput;
use ossnap_core::status::StatusInput;
use ossnap_core::ErrorKind;
use ossnap_repository::codec::{self, BLOB_FORMAT_VERSION};
use ossnap_repository::repository_data::decode_index_latest;
use ossnap_repository::{
    smile, Codec, RepositoryData, ShardSnapshot, ShardSnapshots, SnapshotInfo,
};
use ossnap_verify::VerifyInput;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// The fields the functions know, and the envelope's, so that objects often look like events.
const KEYS: [&str; 16] = [
    "repository",
    "snapshot",
    "bucket",
    "base_path",
    "role_arn",
    "indices",
    "prefix",
    "run_id",
    "dry_run",
    "deep",
    "resume_from",
    "scheduled_time",
    "detail-type",
    "source",
    "time",
    "detail",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,24}".prop_map(Value::from),
        Just(Value::from("2026-11-28T02:00:00Z")),
        Just(Value::from("Scheduled Event")),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(&KEYS[..]).prop_map(str::to_string),
                        ".{0,8}"
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An error message says what is wrong without carrying more than its input.
fn bounded(message: &str, input_len: usize) {
    assert!(!message.is_empty());
    assert!(
        message.len() <= 4 * input_len + 2048,
        "a {}-byte message for a {input_len}-byte input",
        message.len()
    );
}

fn parse_all(event: &Value) {
    fn one<T: serde::de::DeserializeOwned>(event: &Value) {
        if let Err(error) = Invocation::<T>::parse(event.clone()) {
            assert_eq!(error.kind(), ErrorKind::ConfigError, "{error}");
            bounded(error.message(), event.to_string().len());
        }
    }
    one::<RegisterInput>(event);
    one::<SnapshotInput>(event);
    one::<StatusInput>(event);
    one::<VerifyInput>(event);
    one::<RetentionInput>(event);
    one::<RestoreInput>(event);
    one::<CheckRestoreInput>(event);
}

fn error_envelope() -> impl Strategy<Value = Value> {
    let error_type = prop_oneof![
        Just("concurrent_snapshot_execution_exception".to_string()),
        Just("snapshot_missing_exception".to_string()),
        Just("invalid_snapshot_name_exception".to_string()),
        Just("security_exception".to_string()),
        Just("repository_verification_exception".to_string()),
        "[a-z_]{0,30}",
    ];
    (error_type, ".{0,200}", prop::option::of(json_value()), any::<u16>()).prop_map(
        |(error_type, reason, caused_by, status)| {
            json!({
                "error": {"root_cause": [{"type": error_type, "reason": reason}], "type": error_type,
                          "reason": reason, "caused_by": caused_by},
                "status": status
            })
        },
    )
}

/// A valid blob's SMILE body, to be damaged.
fn snapshot_info_body() -> Vec<u8> {
    let info: SnapshotInfo = serde_json::from_value(json!({
        "name": "ossnap-20261128-020000", "uuid": "abc", "version_id": 136217927,
        "indices": ["logs-2026", "orders"], "state": "SUCCESS", "start_time": 1, "end_time": 2,
        "total_shards": 4, "successful_shards": 4, "failures": [],
        "metadata": {"taken_by": "ossnap"}
    }))
    .expect("a SnapshotInfo");
    let blob = info.to_blob().expect("it encodes");
    codec::unframe(&blob)
        .expect("its own framing")
        .body
        .to_vec()
}

fn read_every_way(blob: &[u8]) {
    let _ = SnapshotInfo::from_blob(blob);
    let _ = ShardSnapshot::from_blob(blob);
    let _ = ShardSnapshots::from_blob(blob);
    for codec in [
        Codec::Snapshot,
        Codec::Metadata,
        Codec::IndexMetadata,
        Codec::ShardSnapshots,
    ] {
        let _ = ossnap_repository::model::read_untyped(codec, blob);
    }
}

proptest! {
    #[test]
    fn events_of_any_shape_parse_or_are_config_errors(event in json_value()) {
        parse_all(&event);
    }

    #[test]
    fn eventbridge_envelopes_of_any_content_parse_or_are_config_errors(
        time in prop_oneof![Just(json!("2026-11-28T02:00:00Z")), json_value()],
        detail in json_value(),
        extra in json_value(),
    ) {
        parse_all(&json!({"version": "0", "id": "x", "detail-type": "Scheduled Event",
            "source": "aws.events", "time": time, "detail": detail, "resources": extra}));
    }

    #[test]
    fn any_status_and_body_is_classified(status in any::<u16>(), body in prop::collection::vec(any::<u8>(), 0..4096)) {
        let error = classify(status, "GET", "/_snapshot/ossnap/x", &body);
        bounded(error.message(), body.len());
    }

    #[test]
    fn error_envelopes_are_classified_by_their_type_whatever_the_status(
        status in any::<u16>(),
        body in error_envelope(),
    ) {
        let bytes = body.to_string().into_bytes();
        let error = classify(status, "PUT", "/_snapshot/ossnap/x", &bytes);
        bounded(error.message(), bytes.len());
        match body["error"]["type"].as_str() {
            Some("concurrent_snapshot_execution_exception") => {
                prop_assert_eq!(error.kind(), ErrorKind::SnapshotInProgress)
            }
            Some("snapshot_missing_exception") => prop_assert_eq!(error.kind(), ErrorKind::SnapshotMissing),
            _ => {}
        }
    }

    #[test]
    fn names_of_any_text_are_judged_without_panicking(name in "\\PC{0,300}") {
        let accepted = names::validate_snapshot_name(&name).is_ok();
        if accepted {
            prop_assert!(!name.is_empty() && name.len() <= 255 && name.is_ascii());
            prop_assert_eq!(name.to_lowercase(), name.clone());
            prop_assert!(!name.starts_with(['_', '-', '+']));
            prop_assert!(!name.contains(['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',', '#']));
        }
        if names::validate_repository_name(&name).is_ok() {
            prop_assert!(accepted && !name.starts_with("cs-"));
        }
        let _ = names::validate_index_name(&name);
        let _ = names::validate_bucket_name(&name);
        let _ = names::validate_base_path(&name);
        let _ = names::validate_role_arn(&name);
        let _ = names::validate_fs_location(&name);
        let _ = names::validate_azure_container(&name);
    }

    #[test]
    fn root_index_n_of_any_bytes_parses_or_fails(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = RepositoryData::from_json(&bytes);
        let _ = decode_index_latest(&bytes);
    }

    #[test]
    fn root_index_n_of_any_json_parses_or_fails(value in json_value()) {
        let _ = RepositoryData::from_json(value.to_string().as_bytes());
        let wrapped = json!({"snapshots": [value.clone()], "indices": {"logs": value}, "min_version": "2.17.0"});
        let _ = RepositoryData::from_json(wrapped.to_string().as_bytes());
    }

    #[test]
    fn blobs_of_any_bytes_are_refused_or_read(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        read_every_way(&bytes);
    }

    #[test]
    fn well_framed_blobs_of_any_body_are_refused_or_read(
        body in prop::collection::vec(any::<u8>(), 0..2048),
        deflated in any::<bool>(),
    ) {
        let body = if deflated { smile::compress(&body) } else { body };
        for codec in [Codec::Snapshot, Codec::Metadata, Codec::IndexMetadata, Codec::ShardSnapshots] {
            read_every_way(&codec::frame(codec.name(), BLOB_FORMAT_VERSION, &body));
        }
    }

    #[test]
    fn damaged_snapshot_infos_are_refused_or_read(
        cuts in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        truncate in any::<prop::sample::Index>(),
        deflated in any::<bool>(),
    ) {
        let mut body = snapshot_info_body();
        for (at, byte) in cuts {
            let at = at.index(body.len());
            body[at] = byte;
        }
        body.truncate(truncate.index(body.len() + 1));
        let body = if deflated { smile::compress(&body) } else { body };
        read_every_way(&codec::frame(Codec::Snapshot.name(), BLOB_FORMAT_VERSION, &body));
    }
}
