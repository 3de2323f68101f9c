//! ossnap-verify: proves from the storage side that a snapshot is complete in the customer's
//! bucket — or in the Azure Blob container it was copied to — whatever the cluster says.
//!
//! It reads through `ossnap_storage`, so the same checks and depths run on S3 (the default), on
//! Azure Blob Storage (the event's `azure: {account, container, base_path}`) before anyone
//! registers the copy there, and on a local folder.
//!
//! It reads the repository as OpenSearch wrote it (the layout and formats are
//! `ossnap_repository`'s): the newest root `index-N` found by listing must list the snapshot as
//! SUCCESS; its `snap-`/`meta-` blobs must pass their codec header, footer and CRC32; every index
//! must have its metadata blob, every shard its `snap-{uuid}.dat`, and every data blob that file
//! lists must exist with its recorded length. Cost grows with listing pages and metadata blobs,
//! never with one request per data blob: each shard folder is listed once and compared. Deeper
//! checks read the data blobs' Lucene footers or whole content ([`Depth`]).
//!
//! A snapshot found damaged in S3 gets a verdict beside the repository
//! (`ossnap-verdicts/<base path>/<snapshot>/<uuid>.json`, [`ossnap_core::verdict`]): retention
//! then no longer counts it among the healthy snapshots it must keep, whatever the cluster says.
//!
//! Its time is bounded: it starts no new shard check once its time budget is spent (the Lambda
//! deadline less a margin, or `time_budget_seconds`), waits for those running, and answers
//! `complete: false` with `resume_from`, the position of the first shard not checked, for the
//! next invocation to continue from (the workflow loops until `complete`).

mod damage;
mod depth;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::LambdaEvent;
use ossnap_core::clock::Clock;
use ossnap_core::config::{Environment, Settings};
use ossnap_core::event::Invocation;
use ossnap_core::function::prepare;
use ossnap_core::metrics::{self, Metric, Unit};
use ossnap_core::{names, Error, ErrorKind, Result};
use ossnap_repository::{
    layout, smile, Codec, RepositoryData, ShardSnapshot, SnapshotInfo, SnapshotState,
};
use ossnap_storage::azure::AzureStore;
use ossnap_storage::azure_target::AzureTarget;
use ossnap_storage::verdicts::Verdicts;
use ossnap_storage::BlobStore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use damage::Damage;
pub use depth::{Depth, VERIFY_DEPTH};
pub use ossnap_storage::s3::S3Store;
pub use ossnap_storage::RequestCounts;

/// Shard folders checked at once: enough to hide S3 latency, few enough for 128 MB.
const SHARD_CONCURRENCY: usize = 32;
/// Kept from the Lambda deadline for the shard checks under way and the answer: a shard folder's
/// listing and `snap-*.dat` take well under a second; a `full` read of a large shard longer.
const DEADLINE_MARGIN: Duration = Duration::from_secs(60);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyInput {
    pub repository: Option<String>,
    pub snapshot: Option<String>,
    pub bucket: Option<String>,
    pub base_path: Option<String>,
    /// Read the repository from Azure Blob Storage instead of S3 (a copy, before it is
    /// registered); each field left out comes from its `AZURE_STORAGE_*` setting.
    pub azure: Option<AzureTarget>,
    /// How deep to read: `structure`, `footers` or `full`; `VERIFY_DEPTH` by default.
    pub deep: Option<Depth>,
    /// The position of the first shard to check (a previous answer's `resume_from`).
    pub resume_from: Option<usize>,
    /// Seconds after which no new shard check starts; by default the Lambda deadline less a
    /// margin, and no limit outside Lambda.
    pub time_budget_seconds: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyOutput {
    pub repository: String,
    pub snapshot: String,
    /// Every shard was checked (in this invocation and the ones before it) and nothing is wrong.
    pub verified: bool,
    /// Whether every shard has been checked; when not, call again with `resume_from`.
    pub complete: bool,
    /// Where the next invocation starts; `null` once complete.
    pub resume_from: Option<usize>,
    pub indices: usize,
    /// Shards checked by this invocation, of `shards_total`.
    pub shards: usize,
    pub shards_total: usize,
    /// Data blobs found with their recorded length (virtual `v__` files have none).
    pub blobs: usize,
    pub bytes: u64,
    /// How deep this check read.
    pub depth: Depth,
    /// Where the repository was read: `s3://bucket/base` or `azure://account/container/base`.
    pub location: String,
    /// The storage requests this check made, and the bytes they read.
    pub requests: RequestCounts,
}

/// The verify function's dependencies.
#[derive(Debug, Clone)]
pub struct Verifier {
    pub settings: Settings,
    /// The depth when the event names none (`VERIFY_DEPTH`).
    pub depth: Depth,
    /// The S3 client; each check scopes it to its repository.
    pub store: S3Store,
    /// Reads the Azure credential when `AZURE_CREDENTIALS_SECRET_ARN` names a secret (Lambda);
    /// without it, only `AZURE_STORAGE_KEY` or `AZURE_STORAGE_SAS_TOKEN` can give one.
    pub secrets: Option<aws_sdk_secretsmanager::Client>,
    /// The settings an event's `azure` target is completed from.
    pub env: Environment,
    pub clock: Clock,
}

impl Verifier {
    /// An S3 client from aws-config's default chain; `AWS_ENDPOINT_URL_S3` points it elsewhere
    /// (the local stack), with path-style addressing.
    pub async fn from_env(env: &Environment) -> Result<Verifier> {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        Verifier::with_sdk_config(env, &sdk)
    }

    /// As [`Self::from_env`], with an SDK configuration loaded by the caller (the command line's
    /// chosen profile and region).
    pub fn with_sdk_config(env: &Environment, sdk: &aws_config::SdkConfig) -> Result<Verifier> {
        Ok(Verifier {
            secrets: Some(aws_sdk_secretsmanager::Client::new(sdk)),
            ..Verifier::new(env, s3_client(env, sdk), Clock::system())?
        })
    }

    /// A verifier with the settings of `env`, reading S3 with `s3`, and no Secrets Manager.
    pub fn new(env: &Environment, s3: aws_sdk_s3::Client, clock: Clock) -> Result<Verifier> {
        let settings = Settings::from_env(env)?;
        let depth = env
            .get(VERIFY_DEPTH)
            .map(Depth::parse)
            .transpose()?
            .unwrap_or_default();
        Ok(Verifier {
            settings,
            depth,
            store: S3Store::new(s3),
            secrets: None,
            env: env.clone(),
            clock,
        })
    }
}

/// An S3 client from `sdk`, with path-style addressing when `AWS_ENDPOINT_URL_S3` (or
/// `AWS_ENDPOINT_URL`) points it at another S3 server (the local stack).
pub fn s3_client(env: &Environment, sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    ossnap_storage::s3::client(env, sdk)
}

pub async fn handle(
    verifier: &Result<Verifier>,
    event: LambdaEvent<Value>,
) -> Result<VerifyOutput> {
    let (verifier, mut invocation, context): (_, Invocation<VerifyInput>, _) =
        prepare(verifier, event)?;
    if invocation.input.time_budget_seconds.is_none() {
        let deadline = UNIX_EPOCH + Duration::from_millis(context.deadline);
        let left = deadline
            .duration_since(verifier.clock.now())
            .unwrap_or_default();
        invocation.input.time_budget_seconds = Some(left.saturating_sub(DEADLINE_MARGIN).as_secs());
    }
    run(verifier, invocation).await
}

pub async fn run(verifier: &Verifier, invocation: Invocation<VerifyInput>) -> Result<VerifyOutput> {
    let input = invocation.input;
    let settings = &verifier.settings;
    let repository = input
        .repository
        .unwrap_or_else(|| settings.repository.clone());
    // The name appears only in metrics and answers, but a bad one is refused as everywhere else.
    names::validate_repository_name(&repository)?;
    let snapshot = input
        .snapshot
        .ok_or_else(|| Error::config("the event must name the \"snapshot\" to verify"))?;
    names::validate_snapshot_name(&snapshot)?;
    let (store, verdicts) =
        open_store(verifier, input.bucket, input.base_path, input.azure).await?;
    let depth = input.deep.unwrap_or(verifier.depth);
    let window = Window {
        resume_from: input.resume_from.unwrap_or(0),
        deadline: input
            .time_budget_seconds
            .map(|seconds| verifier.clock.now() + Duration::from_secs(seconds)),
    };
    let checked = check_snapshot(&store, &snapshot, depth, window, &verifier.clock).await?;
    let requests = store.requests();
    let location = store.location();
    let now_ms = verifier.clock.now_millis();
    if !checked.damage.is_empty() {
        metrics::emit(
            settings.metric_dimensions("verify", &repository),
            &[Metric::new("VerificationFailures", Unit::Count, 1)],
            now_ms,
        );
        let recorded = match (&verdicts, &checked.uuid) {
            (Some(verdicts), Some(uuid)) => {
                let details = damage::verdict(&location, &snapshot, uuid, depth, &checked.damage);
                Some(verdicts.record(&snapshot, uuid, &details).await)
            }
            // Not in the repository, or read from a copy in Azure: retention has nothing to skip.
            _ => None,
        };
        return Err(damage::report(
            &location,
            &snapshot,
            &checked.damage,
            recorded,
        ));
    }
    metrics::emit(
        settings.metric_dimensions("verify", &repository),
        &[
            Metric::new("BlobsVerified", Unit::Count, checked.blobs as f64),
            Metric::new("BytesVerified", Unit::Bytes, checked.bytes as f64),
            Metric::new("ShardsVerified", Unit::Count, checked.shards as f64),
        ],
        now_ms,
    );
    tracing::info!(
        repository,
        snapshot,
        indices = checked.indices,
        shards = checked.shards,
        blobs = checked.blobs,
        bytes = checked.bytes,
        ?depth,
        resume_from = checked.resume_from,
        shards_total = checked.shards_total,
        location,
        "snapshot verified"
    );
    Ok(VerifyOutput {
        repository,
        snapshot,
        verified: checked.resume_from.is_none(),
        complete: checked.resume_from.is_none(),
        resume_from: checked.resume_from,
        indices: checked.indices,
        shards: checked.shards,
        shards_total: checked.shards_total,
        blobs: checked.blobs,
        bytes: checked.bytes,
        depth,
        location,
        requests,
    })
}

/// The repository's store: the S3 bucket and base path of the event or the settings, or the
/// event's Azure target; never both. In S3, also where a damaged snapshot's verdict goes.
async fn open_store(
    verifier: &Verifier,
    bucket: Option<String>,
    base_path: Option<String>,
    azure: Option<AzureTarget>,
) -> Result<(Arc<dyn BlobStore>, Option<Verdicts>)> {
    let Some(azure) = azure else {
        let (bucket, base_path) = verifier.settings.location(bucket, base_path)?;
        let verdicts =
            Verdicts::of_repository(&verifier.store, bucket.clone(), base_path.as_deref());
        let store = verifier.store.scoped(bucket, base_path.unwrap_or_default());
        return Ok((Arc::new(store), Some(verdicts)));
    };
    if bucket.is_some() {
        return Err(Error::config(
            "the event names both a \"bucket\" and an \"azure\" target: give one, the storage to read",
        ));
    }
    let source_base_path = base_path.or_else(|| verifier.settings.base_path.clone());
    let settings = azure
        .settings(
            &verifier.env,
            source_base_path.as_deref(),
            verifier.secrets.as_ref(),
        )
        .await?;
    Ok((Arc::new(AzureStore::connect(settings)?), None))
}

/// Which shards one invocation may check: from `resume_from`, none started after `deadline`
/// (at least one always, so every invocation makes progress).
#[derive(Debug, Clone, Copy)]
struct Window {
    resume_from: usize,
    deadline: Option<SystemTime>,
}

#[derive(Debug, Default)]
struct Checked {
    /// The snapshot's uuid, once the repository lists it.
    uuid: Option<String>,
    indices: usize,
    shards: usize,
    shards_total: usize,
    /// The first shard not checked, when the budget ran out before the last.
    resume_from: Option<usize>,
    blobs: usize,
    bytes: u64,
    damage: Vec<Damage>,
}

async fn check_snapshot(
    store: &Arc<dyn BlobStore>,
    snapshot: &str,
    depth: Depth,
    window: Window,
    clock: &Clock,
) -> Result<Checked> {
    let mut checked = Checked::default();
    let (generation, root) = match newest_root(store).await? {
        Ok(newest) => newest,
        Err(damage) => {
            checked.damage.push(damage);
            return Ok(checked);
        }
    };
    let root_key = layout::root_index(generation);
    let repository = match RepositoryData::from_json(&root) {
        Ok(data) => data,
        Err(e) => {
            checked.damage.push(Damage::Unreadable {
                key: root_key,
                reason: e.to_string(),
            });
            return Ok(checked);
        }
    };
    let Some(entry) = repository.snapshot(snapshot) else {
        checked.damage.push(Damage::NotInRepository { generation });
        return Ok(checked);
    };
    checked.uuid = Some(entry.uuid.clone());
    if let Some(damage) = unless_success(entry.snapshot_state()) {
        checked.damage.push(damage);
        return Ok(checked);
    }
    let uuid = entry.uuid.clone();

    let info_key = layout::snapshot_info(&uuid);
    let info = match store.get(&info_key).await? {
        None => {
            checked.damage.push(Damage::MissingBlob { key: info_key });
            None
        }
        Some(blob) => match SnapshotInfo::from_blob(&blob) {
            Ok(info) => Some(info),
            Err(e) => {
                checked.damage.push(Damage::Unreadable {
                    key: info_key,
                    reason: e.to_string(),
                });
                None
            }
        },
    };
    if let Some(damage) = info
        .as_ref()
        .and_then(|i| unless_success(i.snapshot_state()))
    {
        checked.damage.push(damage);
    }
    let global_key = layout::global_metadata(&uuid);
    check_metadata_blob(store, &global_key, Codec::Metadata, &mut checked.damage).await?;

    let indices = repository.indices_of(&uuid);
    if let Some(info) = &info {
        for name in &info.indices {
            if !indices.iter().any(|(indexed, _)| indexed == name) {
                checked.damage.push(Damage::IndexNotInRepository {
                    index: name.clone(),
                });
            }
        }
    }
    // Every shard of the snapshot, in one order that every invocation sees alike.
    let mut shards: Vec<(String, u32)> = Vec::new();
    for (index, index_entry) in &indices {
        checked.indices += 1;
        let blob_id = repository.index_metadata_blob_id(entry, &index_entry.id);
        let meta_key = layout::index_metadata(&index_entry.id, &blob_id);
        let shard_count = match store.get(&meta_key).await? {
            None => {
                checked.damage.push(Damage::MissingIndexMetadata {
                    index: index.to_string(),
                    key: meta_key,
                });
                continue;
            }
            Some(blob) => match number_of_shards(&blob) {
                Ok(count) => count,
                Err(reason) => {
                    checked.damage.push(Damage::Unreadable {
                        key: meta_key,
                        reason,
                    });
                    continue;
                }
            },
        };
        shards.extend((0..shard_count).map(|shard| (index_entry.id.clone(), shard)));
    }
    checked.shards_total = shards.len();
    let semaphore = Arc::new(Semaphore::new(SHARD_CONCURRENCY));
    let mut shard_checks = JoinSet::new();
    let mut next = window.resume_from.min(shards.len());
    while next < shards.len() {
        let out_of_time = window
            .deadline
            .is_some_and(|deadline| clock.now() >= deadline);
        if out_of_time && next > window.resume_from {
            checked.resume_from = Some(next);
            break;
        }
        let permit = semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore stays open");
        let (index_id, shard) = shards[next].clone();
        let store = store.clone();
        let uuid = uuid.clone();
        shard_checks.spawn(async move {
            let _permit = permit;
            check_shard(&store, &index_id, shard, &uuid, depth).await
        });
        next += 1;
    }
    while let Some(joined) = shard_checks.join_next().await {
        let shard = joined.map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("a shard check stopped: {e}"),
            )
        })??;
        checked.shards += 1;
        checked.blobs += shard.blobs;
        checked.bytes += shard.bytes;
        checked.damage.extend(shard.damage);
    }
    Ok(checked)
}

/// The newest root `index-N` by listing (`index.latest` is only a hint and may lag or be
/// missing), and its bytes. OpenSearch deletes the older `index-N` right after writing a newer
/// one, so a root blob that was listed but is gone is looked for once more in a new listing
/// before it counts as missing.
async fn newest_root(
    store: &Arc<dyn BlobStore>,
) -> Result<std::result::Result<(u64, Vec<u8>), Damage>> {
    let mut looked_again = false;
    loop {
        let generation = store
            .list(layout::ROOT_INDEX_PREFIX)
            .await?
            .iter()
            .filter_map(|blob| {
                ossnap_repository::repository_data::root_index_generation(&blob.name)
            })
            .max();
        let Some(generation) = generation else {
            return Ok(Err(Damage::NoRepository));
        };
        let key = layout::root_index(generation);
        match store.get(&key).await? {
            Some(root) => return Ok(Ok((generation, root))),
            None if looked_again => return Ok(Err(Damage::MissingBlob { key })),
            None => looked_again = true,
        }
    }
}

/// The damage when a recorded state is not SUCCESS, or is a state this version does not know
/// (which must not pass as SUCCESS). No state at all (very old repositories) passes.
fn unless_success(
    state: std::result::Result<Option<SnapshotState>, ossnap_repository::FormatError>,
) -> Option<Damage> {
    match state {
        Ok(None) | Ok(Some(SnapshotState::Success)) => None,
        Ok(Some(state)) => Some(Damage::NotSuccessful {
            state: state.name().to_string(),
        }),
        Err(e) => Some(Damage::NotSuccessful {
            state: format!("an unknown state ({e})"),
        }),
    }
}

async fn check_metadata_blob(
    store: &Arc<dyn BlobStore>,
    key: &str,
    codec: Codec,
    damage: &mut Vec<Damage>,
) -> Result<()> {
    match store.get(key).await? {
        None => damage.push(Damage::MissingBlob {
            key: key.to_string(),
        }),
        Some(blob) => {
            if let Err(e) = ossnap_repository::codec::unframe_expecting(&blob, codec) {
                damage.push(Damage::Unreadable {
                    key: key.to_string(),
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(())
}

#[derive(Debug, Default)]
struct ShardChecked {
    blobs: usize,
    bytes: u64,
    damage: Vec<Damage>,
}

/// One listing of the shard folder, one read of the shard's `snap-{uuid}.dat`, then every data
/// blob it names is looked up in the listing; below `structure`, each whole file is checked too.
async fn check_shard(
    store: &Arc<dyn BlobStore>,
    index_id: &str,
    shard: u32,
    uuid: &str,
    depth: Depth,
) -> Result<ShardChecked> {
    let mut checked = ShardChecked::default();
    let listing: HashMap<String, u64> = store
        .list(&layout::shard_directory(index_id, shard))
        .await?
        .into_iter()
        .map(|blob| (blob.name, blob.size))
        .collect();
    let snap_key = layout::shard_snapshot(index_id, shard, uuid);
    if !listing.contains_key(&snap_key) {
        checked
            .damage
            .push(Damage::MissingShardSnapshot { key: snap_key });
        return Ok(checked);
    }
    let Some(blob) = store.get(&snap_key).await? else {
        checked
            .damage
            .push(Damage::MissingShardSnapshot { key: snap_key });
        return Ok(checked);
    };
    let files = match ShardSnapshot::from_blob(&blob) {
        Ok(shard_snapshot) => shard_snapshot.files,
        Err(e) => {
            checked.damage.push(Damage::Unreadable {
                key: snap_key,
                reason: e.to_string(),
            });
            return Ok(checked);
        }
    };
    for file in files {
        let names = file.blob_names();
        let part_size = file.part_size.filter(|_| names.len() > 1);
        let mut keys = Vec::with_capacity(names.len());
        for (part, name) in names.iter().enumerate() {
            let expected = match part_size {
                Some(size) if part + 1 < names.len() => size,
                Some(size) => file.length - size * (names.len() as u64 - 1),
                None => file.length,
            };
            let key = layout::shard_data(index_id, shard, name);
            match listing.get(&key) {
                None => checked.damage.push(Damage::MissingBlob { key }),
                Some(&actual) if actual != expected => checked.damage.push(Damage::WrongLength {
                    key,
                    expected,
                    actual,
                }),
                Some(&actual) => {
                    checked.blobs += 1;
                    checked.bytes += actual;
                    keys.push(key);
                }
            }
        }
        if keys.len() == names.len() {
            checked
                .damage
                .extend(depth::check_file(store.as_ref(), depth, &file, &keys).await?);
        }
    }
    Ok(checked)
}

/// `index.number_of_shards` from an index metadata blob (`{"<index>": {"settings": {...}}}`),
/// with settings flat (`index.number_of_shards`) or nested, as servers have written them.
fn number_of_shards(blob: &[u8]) -> std::result::Result<u32, String> {
    let document: smile::Value = ossnap_repository::model::read_untyped(Codec::IndexMetadata, blob)
        .map_err(|e| e.to_string())?;
    let smile::Value::Object(top) = document else {
        return Err("index metadata is not an object".into());
    };
    let settings = top
        .values()
        .find_map(|index| match index {
            smile::Value::Object(fields) => fields.get("settings"),
            _ => None,
        })
        .ok_or("index metadata has no settings")?;
    let smile::Value::Object(settings) = settings else {
        return Err("index settings are not an object".into());
    };
    let value = settings
        .get("index.number_of_shards")
        .or_else(|| match settings.get("index") {
            Some(smile::Value::Object(index)) => index.get("number_of_shards"),
            _ => None,
        });
    let count = match value {
        Some(smile::Value::String(text)) => text.parse().ok(),
        Some(smile::Value::Integer(n)) => u32::try_from(*n).ok(),
        Some(smile::Value::Long(n)) => u32::try_from(*n).ok(),
        _ => None,
    };
    count.ok_or_else(|| "index settings have no readable index.number_of_shards".into())
}
