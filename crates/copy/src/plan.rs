//! The work list of a copy at scale: which shard folders generation N has, in batches, written
//! to S3 for a Step Functions Distributed Map to read, beside the source's `index-N` and the
//! snapshots chosen (batches and finalize read them there: once a newer generation exists,
//! OpenSearch deletes the source's `index-N`).
//!
//! Both lie at `s3://<bucket>/<plan_prefix><base path, or the repository's name at the bucket's
//! root>/<N>/`, outside the repository's base path, so OpenSearch never sees them.

use std::collections::{BTreeSet, HashSet};

use futures::{stream, StreamExt, TryStreamExt};
use ossnap_core::{Error, Result};
use ossnap_repository::layout;
use ossnap_storage::s3::S3Store;
use ossnap_storage::{Blob, BlobStore, RequestCounts};
use serde::{Deserialize, Serialize};

use crate::generation::{Generation, ShardFolder};

pub const DEFAULT_PLAN_PREFIX: &str = "ossnap-plans/";
const ITEMS: &str = "items.json";
const GENERATION: &str = "generation.json";

/// One item of the work list: a batch's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub generation: u64,
    pub folders: Vec<String>,
}

/// Where a plan's work list lies (the Distributed Map's ItemReader reads it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanLocation {
    pub bucket: String,
    pub key: String,
}

/// The plans of one repository.
#[derive(Debug, Clone)]
pub(crate) struct Plans {
    store: S3Store,
}

impl Plans {
    /// `prefix` is validated; `base_path` is the repository's (empty at the bucket's root).
    pub fn new(
        s3: &S3Store,
        bucket: &str,
        prefix: &str,
        base_path: &str,
        repository: &str,
    ) -> Result<Plans> {
        validate_prefix(prefix, base_path)?;
        let name = if base_path.is_empty() {
            repository
        } else {
            base_path
        };
        Ok(Plans {
            store: s3.scoped(bucket.to_owned(), format!("{prefix}{name}")),
        })
    }

    pub fn location(&self, generation: u64) -> PlanLocation {
        PlanLocation {
            bucket: self.store.bucket().to_owned(),
            key: layout::key(self.store.base_path(), &format!("{generation}/{ITEMS}")),
        }
    }

    /// The generation first, then the work list that needs it.
    pub async fn save(&self, generation: &Generation, batches: &[Batch]) -> Result<()> {
        let number = generation.number;
        self.store
            .put(&format!("{number}/{GENERATION}"), generation.to_plan())
            .await?;
        let items = serde_json::to_vec(batches).expect("batches serialize");
        self.store.put(&format!("{number}/{ITEMS}"), items).await
    }

    /// The generation a plan saved; a `ConfigError` when there is none.
    pub async fn load(&self, number: u64) -> Result<Generation> {
        let blob = format!("{number}/{GENERATION}");
        let Some(bytes) = self.store.get(&blob).await? else {
            return Err(Error::config(format!(
                "no plan for generation {number} at {}/{blob}: run the copy with \"mode\": \"plan\" first (with the same plan_prefix)",
                self.store.location()
            )));
        };
        Generation::from_plan(number, &bytes)
    }

    pub fn requests(&self) -> RequestCounts {
        self.store.requests()
    }
}

/// A plan prefix is a folder of the bucket, outside the repository.
fn validate_prefix(prefix: &str, base_path: &str) -> Result<()> {
    let invalid = |reason: &str| {
        Err(Error::config(format!(
            "invalid plan_prefix [{prefix}]: {reason}"
        )))
    };
    let Some(folder) = prefix.strip_suffix('/') else {
        return invalid("must end with '/' (a folder of the bucket, e.g. ossnap-plans/)");
    };
    if folder.starts_with('/')
        || folder
            .split('/')
            .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return invalid("must be relative to the bucket, with no empty, '.' or '..' segments");
    }
    if prefix.chars().any(char::is_control) {
        return invalid("must not contain control characters");
    }
    if !base_path.is_empty() && prefix.starts_with(&format!("{base_path}/")) {
        return invalid(
            "must lie outside the repository's base path, where OpenSearch would see the plan",
        );
    }
    Ok(())
}

/// The shard folders a generation has, and the blobs and bytes the source holds for it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Survey {
    pub folders: Vec<ShardFolder>,
    /// Every blob in those folders (an upper bound of the data a first copy writes: a folder
    /// may also hold blobs of snapshots outside the generation), plus the generation's
    /// metadata, `index-N` and `index.latest`.
    pub blobs: u64,
    pub bytes: u64,
}

/// Lists each index folder of the generation once (and the root's `snap-`/`meta-` blobs): the
/// shard folders are those found and those `shard_generations` records.
pub(crate) async fn survey(
    source: &dyn BlobStore,
    generation: &Generation,
    concurrency: usize,
) -> Result<Survey> {
    let metadata: HashSet<String> = generation.metadata().into_iter().map(|n| n.name).collect();
    let mut prefixes = vec!["snap-".to_string(), "meta-".to_string()];
    prefixes.extend(
        generation
            .index_ids()
            .into_iter()
            .map(|id| format!("indices/{id}/")),
    );
    let listings: Vec<_> = prefixes.iter().map(|prefix| source.list(prefix)).collect();
    let listings: Vec<Vec<Blob>> = stream::iter(listings)
        .buffered(concurrency)
        .try_collect()
        .await?;
    let mut survey = Survey {
        blobs: 2,
        bytes: generation.repository_data.len() as u64 + 8,
        ..Survey::default()
    };
    let mut folders = BTreeSet::new();
    for id in generation.index_ids() {
        folders.extend(
            (0..generation.recorded_shards(id)).map(|shard| ShardFolder {
                index_id: id.to_owned(),
                shard,
            }),
        );
    }
    for blob in listings.iter().flatten() {
        let folder = shard_folder_of(&blob.name);
        if folder.is_some() || metadata.contains(&blob.name) {
            survey.blobs += 1;
            survey.bytes += blob.size;
        }
        folders.extend(folder);
    }
    survey.folders = folders.into_iter().collect();
    Ok(survey)
}

/// The shard folder `indices/<id>/<shard>/...` a blob lies in, if it lies in one.
fn shard_folder_of(name: &str) -> Option<ShardFolder> {
    let rest = name.strip_prefix("indices/")?;
    let mut parts = rest.splitn(3, '/');
    let (id, shard, _blob) = (parts.next()?, parts.next()?, parts.next()?);
    ShardFolder::parse(&format!("indices/{id}/{shard}/")).ok()
}

/// The folders in batches of at most `size`.
pub(crate) fn batches(generation: u64, folders: &[ShardFolder], size: usize) -> Vec<Batch> {
    folders
        .chunks(size)
        .map(|chunk| Batch {
            generation,
            folders: chunk.iter().map(ShardFolder::path).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ossnap_core::ErrorKind;

    #[test]
    fn a_plan_prefix_is_a_folder_outside_the_repository() {
        assert!(validate_prefix("ossnap-plans/", "prod/a").is_ok());
        assert!(validate_prefix("tools/plans/", "").is_ok());
        for (prefix, reason) in [
            ("ossnap-plans", "must end with '/'"),
            ("/plans/", "relative"),
            ("a//b/", "empty"),
            ("../plans/", "'..'"),
            ("prod/a/plans/", "outside the repository"),
        ] {
            let error = validate_prefix(prefix, "prod/a").unwrap_err();
            assert_eq!(error.kind(), ErrorKind::ConfigError);
            assert!(error.message().contains(reason), "{prefix}: {error}");
        }
    }

    #[test]
    fn blobs_belong_to_the_shard_folder_they_lie_in() {
        assert_eq!(
            shard_folder_of("indices/Ab-_1/3/__x"),
            Some(ShardFolder {
                index_id: "Ab-_1".into(),
                shard: 3
            })
        );
        assert_eq!(shard_folder_of("indices/Ab/meta-x.dat"), None);
        assert_eq!(shard_folder_of("snap-x.dat"), None);
    }

    #[test]
    fn batches_hold_at_most_the_given_number_of_folders() {
        let folders: Vec<ShardFolder> = (0..5)
            .map(|shard| ShardFolder {
                index_id: "I".into(),
                shard,
            })
            .collect();
        let batches = batches(4, &folders, 2);
        assert_eq!(batches.len(), 3);
        assert_eq!(batches[2].folders, ["indices/I/4/"]);
        assert!(batches.iter().all(|batch| batch.generation == 4));
    }
}
