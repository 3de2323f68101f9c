//! Verify's verdicts on damaged snapshots, kept in the repository's bucket so that retention
//! stops counting a snapshot that no longer restores.
//!
//! OpenSearch calls a snapshot SUCCESS forever: it knows nothing of a blob deleted or cut short
//! after the fact. verify proves such damage from the storage side and records it as one object,
//! `ossnap-verdicts/<base path>/<snapshot>/<uuid>.json`, outside the repository (whose blobs are
//! OpenSearch's to write and clean up). Retention lists that folder once a run and treats every
//! snapshot found there as unhealthy, so the newest `RETENTION_MIN_COUNT` snapshots it always
//! keeps are ones that verified or were never found damaged. Snapshots are matched by uuid: a name
//! taken again later is not affected. A verdict stays until someone deletes it (after repairing
//! the snapshot, say); this module names the objects, `ossnap_storage::verdicts` reads and writes
//! them.

/// The folder of the bucket that holds every repository's verdicts.
pub const PREFIX: &str = "ossnap-verdicts";

/// A snapshot verify found damaged, as its verdict's name records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedSnapshot {
    pub snapshot: String,
    pub uuid: String,
}

/// The folder, relative to the bucket, of the verdicts on the repository at `base_path`.
pub fn folder(base_path: Option<&str>) -> String {
    match base_path.map(|base| base.trim_matches('/')) {
        Some(base) if !base.is_empty() => format!("{PREFIX}/{base}"),
        _ => PREFIX.to_string(),
    }
}

/// The verdict's name within [`folder`].
pub fn blob(snapshot: &str, uuid: &str) -> String {
    format!("{snapshot}/{uuid}.json")
}

/// The snapshot a verdict's name within [`folder`] records; `None` for anything else there
/// (the verdicts of a repository under a deeper base path, say).
pub fn parse(blob: &str) -> Option<DamagedSnapshot> {
    let (snapshot, file) = blob.split_once('/')?;
    let uuid = file.strip_suffix(".json")?;
    if snapshot.is_empty() || uuid.is_empty() || uuid.contains('/') {
        return None;
    }
    Some(DamagedSnapshot {
        snapshot: snapshot.to_string(),
        uuid: uuid.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_names_its_snapshot_and_uuid_and_nothing_else_parses() {
        let name = blob("ossnap-20261201-020000", "dUNQ3b9tQeOq1UhX0fB1Aw");
        assert_eq!(
            parse(&name),
            Some(DamagedSnapshot {
                snapshot: "ossnap-20261201-020000".into(),
                uuid: "dUNQ3b9tQeOq1UhX0fB1Aw".into(),
            })
        );
        for other in [
            "index-3",
            "a/b",
            "a/.json",
            "/u.json",
            "deeper/a/u.json",
            "a/u.txt",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }

    #[test]
    fn verdicts_live_outside_the_repository() {
        assert_eq!(folder(None), "ossnap-verdicts");
        assert_eq!(folder(Some("")), "ossnap-verdicts");
        assert_eq!(folder(Some("/prod/logs/")), "ossnap-verdicts/prod/logs");
    }
}
