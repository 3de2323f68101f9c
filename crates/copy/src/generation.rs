//! What one generation of a repository needs, worked out from its root `index-N` with
//! `ossnap_repository`'s parsers: the root and index-level metadata of its snapshots, and for
//! each shard folder the shard's `snap-{uuid}.dat` per snapshot and its current `index-*`
//! (whose data blobs the copy then reads from those `snap-*.dat`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ossnap_core::{Error, ErrorKind, Result};
use ossnap_repository::{layout, RepositoryData, SnapshotEntry, SnapshotState};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The shard generations OpenSearch writes in `shard_generations` for "no `index-*` blob"
/// (`ShardGenerations.NEW_SHARD_GEN` and `DELETED_SHARD_GEN`).
const NO_SHARD_INDEX: [&str; 2] = ["_new", "_deleted"];

/// One generation as the destination gets it.
#[derive(Debug, Clone)]
pub struct Generation {
    pub number: u64,
    /// What the destination's `index-N` holds: the source's bytes as they are, or, when only
    /// some snapshots are copied, the same document listing only those.
    pub repository_data: Vec<u8>,
    pub data: RepositoryData,
    /// The source's `index-N` as read, and the snapshots chosen from it (`None`: all).
    source_index: Vec<u8>,
    chosen: Option<Vec<String>>,
}

/// A generation as a plan keeps it: the source's `index-N` and the choice of snapshots.
#[derive(Serialize, Deserialize)]
struct Planned {
    snapshots: Option<Vec<String>>,
    index: String,
}

/// A blob a generation needs, and whether its absence at the source is damage (`required`: a
/// snapshot recorded as SUCCESS) or expected (a shard that a PARTIAL or FAILED snapshot could
/// not write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needed {
    pub name: String,
    pub required: bool,
}

/// A shard's folder, `indices/<index id>/<shard>/`: the unit of work of a batch.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardFolder {
    pub index_id: String,
    pub shard: u32,
}

impl ShardFolder {
    /// `indices/<index id>/<shard>/`, as a plan's batch names it.
    pub fn parse(text: &str) -> Result<ShardFolder> {
        let invalid = || {
            Error::config(format!(
                "invalid folder [{text}]: a batch names shard folders as indices/<index id>/<shard>/, as the plan wrote them"
            ))
        };
        let rest = text.strip_prefix("indices/").ok_or_else(invalid)?;
        let rest = rest.strip_suffix('/').ok_or_else(invalid)?;
        let (index_id, shard) = rest.split_once('/').ok_or_else(invalid)?;
        let id_valid = !index_id.is_empty()
            && index_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let shard = shard
            .parse()
            .ok()
            .filter(|_| shard.bytes().all(|b| b.is_ascii_digit()));
        match shard {
            Some(shard) if id_valid => Ok(ShardFolder {
                index_id: index_id.to_owned(),
                shard,
            }),
            _ => Err(invalid()),
        }
    }

    pub fn path(&self) -> String {
        layout::shard_directory(&self.index_id, self.shard)
    }
}

impl fmt::Display for ShardFolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// The shard's current `index-*` blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardIndex {
    /// Named by `shard_generations` (Elasticsearch 7.6 and later, OpenSearch).
    Named(String),
    /// Older repositories number it: the newest `index-<n>` in the folder.
    Newest,
    /// The shard has none.
    Absent,
}

/// What one shard folder needs besides the data blobs its `snap-*.dat` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardNeeds {
    pub snapshots: Vec<Needed>,
    pub index: ShardIndex,
}

impl Generation {
    /// Generation `number` from its `index-N` bytes, with only the `chosen` snapshots (all of
    /// them when `None`); a name the generation does not hold is a `ConfigError` naming those
    /// it does.
    pub fn new(number: u64, raw: Vec<u8>, chosen: Option<&[String]>) -> Result<Generation> {
        let data = parse(number, &raw)?;
        let chosen: Option<BTreeSet<&str>> =
            chosen.map(|names| names.iter().map(String::as_str).collect());
        if let Some(unknown) = chosen
            .as_ref()
            .and_then(|names| unknown_names(&data, names))
        {
            return Err(unknown_snapshots(number, &data, &unknown));
        }
        let Some(chosen) = chosen.filter(|names| names.len() < data.snapshots.len()) else {
            return Ok(Generation {
                number,
                repository_data: raw.clone(),
                data,
                source_index: raw,
                chosen: None,
            });
        };
        let repository_data = only_snapshots(number, &raw, &data, &chosen)?;
        Ok(Generation {
            number,
            data: parse(number, &repository_data)?,
            repository_data,
            source_index: raw,
            chosen: Some(chosen.into_iter().map(str::to_owned).collect()),
        })
    }

    /// Whether every snapshot of the source's generation is copied (the destination is then a
    /// repository a cluster may also write into).
    pub fn every_snapshot(&self) -> bool {
        self.chosen.is_none()
    }

    /// What a plan saves of the generation.
    pub fn to_plan(&self) -> Vec<u8> {
        let planned = Planned {
            snapshots: self.chosen.clone(),
            index: String::from_utf8_lossy(&self.source_index).into_owned(),
        };
        serde_json::to_vec(&planned).expect("a plan serializes")
    }

    /// The generation a plan saved.
    pub fn from_plan(number: u64, saved: &[u8]) -> Result<Generation> {
        let planned: Planned = serde_json::from_slice(saved).map_err(|e| {
            Error::config(format!(
                "the plan of generation {number} is not one this version wrote ({e}): plan again"
            ))
        })?;
        Generation::new(
            number,
            planned.index.into_bytes(),
            planned.snapshots.as_deref(),
        )
    }

    pub fn snapshot_names(&self) -> Vec<String> {
        self.data.snapshots.iter().map(|s| s.name.clone()).collect()
    }

    /// The root `snap-`/`meta-` blobs of its snapshots and the index metadata they use, each
    /// once: what finalize copies before `index-N`.
    pub fn metadata(&self) -> Vec<Needed> {
        let mut needed: BTreeMap<String, bool> = BTreeMap::new();
        let mut add = |name: String, required: bool| {
            *needed.entry(name).or_default() |= required;
        };
        for snapshot in &self.data.snapshots {
            let required = is_required(snapshot);
            add(layout::snapshot_info(&snapshot.uuid), required);
            add(layout::global_metadata(&snapshot.uuid), required);
            for (_, index) in self.data.indices_of(&snapshot.uuid) {
                let blob_id = self.data.index_metadata_blob_id(snapshot, &index.id);
                add(layout::index_metadata(&index.id, &blob_id), required);
            }
        }
        needed
            .into_iter()
            .map(|(name, required)| Needed { name, required })
            .collect()
    }

    /// The index ids of the generation, for listing their folders.
    pub fn index_ids(&self) -> Vec<&str> {
        self.data
            .indices
            .values()
            .map(|index| index.id.as_str())
            .collect()
    }

    /// The shards `shard_generations` records for `index_id` (none in older repositories,
    /// whose shard folders are found by listing).
    pub fn recorded_shards(&self, index_id: &str) -> u32 {
        self.data
            .indices
            .values()
            .find(|index| index.id == index_id)
            .and_then(|index| index.shard_generations.as_ref())
            .map_or(0, |generations| generations.len() as u32)
    }

    /// What `folder` needs besides its data blobs; a folder of an index the generation does not
    /// hold is a `ConfigError` (a batch from another plan).
    pub fn shard(&self, folder: &ShardFolder) -> Result<ShardNeeds> {
        let index = self
            .data
            .indices
            .values()
            .find(|index| index.id == folder.index_id)
            .ok_or_else(|| {
                Error::config(format!(
                    "{folder} is not a folder of generation {}: the batch comes from another plan; plan again",
                    self.number
                ))
            })?;
        let snapshots = self
            .data
            .snapshots
            .iter()
            .filter(|snapshot| index.snapshots.contains(&snapshot.uuid))
            .map(|snapshot| Needed {
                name: layout::shard_snapshot(&index.id, folder.shard, &snapshot.uuid),
                required: is_required(snapshot),
            })
            .collect();
        let index = match &index.shard_generations {
            None => ShardIndex::Newest,
            Some(generations) => match generations.get(folder.shard as usize) {
                Some(Some(generation)) if !NO_SHARD_INDEX.contains(&generation.as_str()) => {
                    ShardIndex::Named(layout::shard_index(&index.id, folder.shard, generation))
                }
                _ => ShardIndex::Absent,
            },
        };
        Ok(ShardNeeds { snapshots, index })
    }
}

fn unknown_names(data: &RepositoryData, chosen: &BTreeSet<&str>) -> Option<Vec<String>> {
    let unknown: Vec<String> = chosen
        .iter()
        .filter(|name| data.snapshot(name).is_none())
        .map(|name| name.to_string())
        .collect();
    (!unknown.is_empty()).then_some(unknown)
}

fn unknown_snapshots(number: u64, data: &RepositoryData, unknown: &[String]) -> Error {
    let held: Vec<&str> = data.snapshots.iter().map(|s| s.name.as_str()).collect();
    Error::config(format!(
        "generation {number} of the source holds no snapshot named {}; it holds: {}",
        unknown.join(", "),
        if held.is_empty() {
            "none".to_string()
        } else {
            held.join(", ")
        }
    ))
}

/// A snapshot's blobs must all be there unless it is recorded as not having succeeded.
fn is_required(snapshot: &SnapshotEntry) -> bool {
    !matches!(
        snapshot.snapshot_state(),
        Ok(Some(
            SnapshotState::Partial | SnapshotState::Failed | SnapshotState::Incompatible
        ))
    )
}

fn parse(number: u64, bytes: &[u8]) -> Result<RepositoryData> {
    RepositoryData::from_json(bytes).map_err(|e| {
        Error::new(
            ErrorKind::VerificationFailed,
            format!(
                "index-{number} is not a repository's index ({e}); check the source with `ossnap verify`"
            ),
        )
    })
}

/// `raw` with only the `chosen` snapshots: edited as JSON, so that fields ossnap does not model
/// are kept as the source wrote them.
fn only_snapshots(
    number: u64,
    raw: &[u8],
    data: &RepositoryData,
    chosen: &BTreeSet<&str>,
) -> Result<Vec<u8>> {
    let mut document: Value = serde_json::from_slice(raw).map_err(|e| {
        Error::new(
            ErrorKind::VerificationFailed,
            format!("index-{number} is not JSON ({e})"),
        )
    })?;
    let kept: Vec<&SnapshotEntry> = data
        .snapshots
        .iter()
        .filter(|snapshot| chosen.contains(snapshot.name.as_str()))
        .collect();
    let uuids: BTreeSet<&str> = kept.iter().map(|s| s.uuid.as_str()).collect();
    let used_metadata: BTreeSet<&str> = kept
        .iter()
        .filter_map(|s| s.index_metadata_lookup.as_ref())
        .flat_map(|lookup| lookup.values().map(String::as_str))
        .collect();
    if let Some(Value::Array(snapshots)) = document.get_mut("snapshots") {
        snapshots.retain(|snapshot| {
            snapshot["name"]
                .as_str()
                .is_some_and(|name| chosen.contains(name))
        });
    }
    if let Some(Value::Object(indices)) = document.get_mut("indices") {
        indices.retain(|_, index| {
            if let Some(Value::Array(snapshots)) = index.get_mut("snapshots") {
                snapshots.retain(|uuid| uuid.as_str().is_some_and(|uuid| uuids.contains(uuid)));
                !snapshots.is_empty()
            } else {
                false
            }
        });
    }
    if let Some(Value::Object(identifiers)) = document.get_mut("index_metadata_identifiers") {
        identifiers.retain(|key, _| used_metadata.contains(key.as_str()));
    }
    Ok(serde_json::to_vec(&document).expect("a JSON value serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two snapshots: `a` of index `logs` (2 shards), `b` of `logs` and `old` (no
    /// shard_generations, as before 7.6), and an unmodelled field.
    fn raw() -> Vec<u8> {
        serde_json::json!({
            "snapshots": [
                {"name": "a", "uuid": "UA", "state": 1, "index_metadata_lookup": {"L": "logs-1"}},
                {"name": "b", "uuid": "UB", "state": 3, "index_metadata_lookup": {"L": "logs-2", "O": "old-1"}}
            ],
            "indices": {
                "logs": {"id": "L", "snapshots": ["UA", "UB"], "shard_generations": ["g0", "_new"]},
                "old": {"id": "O", "snapshots": ["UB"]}
            },
            "index_metadata_identifiers": {"logs-1": "m1", "logs-2": "m2", "old-1": "m3"},
            "uuid": "repository-uuid"
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn every_snapshot_keeps_the_source_bytes() {
        let all = Generation::new(7, raw(), None).unwrap();
        assert_eq!(all.repository_data, raw());
        assert!(all.every_snapshot());
        let named = Generation::new(7, raw(), Some(&["b".into(), "a".into()])).unwrap();
        assert_eq!(named.repository_data, raw());
        assert!(named.every_snapshot());
    }

    #[test]
    fn a_plan_keeps_the_choice_of_snapshots() {
        let one = Generation::new(7, raw(), Some(&["a".into()])).unwrap();
        let planned = Generation::from_plan(7, &one.to_plan()).unwrap();
        assert!(!planned.every_snapshot());
        assert_eq!(planned.repository_data, one.repository_data);
        let all = Generation::new(7, raw(), None).unwrap();
        let planned = Generation::from_plan(7, &all.to_plan()).unwrap();
        assert!(planned.every_snapshot());
        assert_eq!(planned.repository_data, raw());
        let error = Generation::from_plan(7, b"[]").unwrap_err();
        assert!(error.message().contains("plan again"), "{error}");
    }

    #[test]
    fn some_snapshots_leave_the_others_out_of_index_n_and_keep_unknown_fields() {
        let one = Generation::new(7, raw(), Some(&["a".into()])).unwrap();
        assert_eq!(one.snapshot_names(), ["a"]);
        let document: Value = serde_json::from_slice(&one.repository_data).unwrap();
        assert_eq!(document["uuid"], "repository-uuid");
        assert_eq!(
            document["indices"]["logs"]["snapshots"],
            serde_json::json!(["UA"])
        );
        assert!(document["indices"].get("old").is_none());
        assert_eq!(
            document["index_metadata_identifiers"],
            serde_json::json!({"logs-1": "m1"})
        );
        let names: Vec<String> = one.metadata().into_iter().map(|n| n.name).collect();
        assert_eq!(
            names,
            ["indices/L/meta-m1.dat", "meta-UA.dat", "snap-UA.dat"]
        );
    }

    #[test]
    fn an_unknown_snapshot_is_refused_naming_those_there_are() {
        let error = Generation::new(7, raw(), Some(&["c".into()])).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ConfigError);
        assert!(error.message().contains("named c"), "{error}");
        assert!(error.message().contains("holds: a, b"), "{error}");
    }

    #[test]
    fn a_partial_snapshots_blobs_may_be_missing_and_shard_indices_follow_the_format() {
        let all = Generation::new(7, raw(), None).unwrap();
        let logs0 = all
            .shard(&ShardFolder::parse("indices/L/0/").unwrap())
            .unwrap();
        assert_eq!(
            logs0.snapshots,
            [
                Needed {
                    name: "indices/L/0/snap-UA.dat".into(),
                    required: true
                },
                Needed {
                    name: "indices/L/0/snap-UB.dat".into(),
                    required: false
                }
            ]
        );
        assert_eq!(
            logs0.index,
            ShardIndex::Named("indices/L/0/index-g0".into())
        );
        let logs1 = all
            .shard(&ShardFolder::parse("indices/L/1/").unwrap())
            .unwrap();
        assert_eq!(logs1.index, ShardIndex::Absent);
        let old = all
            .shard(&ShardFolder::parse("indices/O/0/").unwrap())
            .unwrap();
        assert_eq!(old.index, ShardIndex::Newest);
        assert_eq!((all.recorded_shards("L"), all.recorded_shards("O")), (2, 0));
        let stranger = all.shard(&ShardFolder::parse("indices/X/0/").unwrap());
        assert_eq!(stranger.unwrap_err().kind(), ErrorKind::ConfigError);
    }

    #[test]
    fn folders_are_parsed_strictly() {
        assert_eq!(
            ShardFolder::parse("indices/-Kq_9/12/").unwrap(),
            ShardFolder {
                index_id: "-Kq_9".into(),
                shard: 12
            }
        );
        for bad in [
            "indices/L/0",
            "indices/L/x/",
            "indices/L/+1/",
            "indices//0/",
            "indices/../0/",
            "other/L/0/",
            "indices/L/0/extra/",
        ] {
            let error = ShardFolder::parse(bad).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::ConfigError, "{bad}");
        }
    }
}
