//! ossnap-copy: copies one consistent generation of a snapshot repository from S3 to Azure Blob
//! Storage (or a folder), so that a self-managed cluster restores from the copy through
//! `repository-azure`: the migration out of Amazon OpenSearch Service.
//!
//! - A consistent generation: the source's newest root `index-N` says what generation N needs
//!   ([`generation`]): each snapshot's root `snap-`/`meta-` blobs and index metadata, and in each
//!   shard folder its `snap-*.dat`, the data blobs they name and the shard's `index-*`.
//!   Nothing else is copied, and no `index-M` with M > N is ever written.
//! - Order ([`transfer`]): in each shard folder its data blobs, then its `snap-*.dat` and
//!   `index-*`; then the root and index metadata; then `index-N`; `index.latest` last. A cluster
//!   listing the destination never sees an `index-N` that points at missing blobs.
//! - Incremental and safe: a blob present with the same length is skipped; another length is a
//!   `CopyConflict` and nothing is overwritten. Stores never expose a half-written blob (Azure
//!   commits a block list last, a folder renames a finished file), so an interrupted run resumes
//!   where it stopped; a shard folder whose `snap-*.dat` and `index-*` are already there was
//!   finished, and is skipped on its listings alone.
//! - A newer generation appearing at the source meanwhile: generation N is still finished, and
//!   the answer says `newer_generation` (the next run copies it). OpenSearch deletes the shard
//!   `index-*` blobs a newer generation replaces; those are left out and counted
//!   (`shard_indices_superseded`): restores and verify do not read them.
//! - Streaming with bounded memory: at most `COPY_CONCURRENCY` blobs in flight, each holding at
//!   most a few blocks (`ossnap_storage`'s Put Block / Put Block List).
//! - Modes: `all` does everything in one invocation; at scale `plan` writes the work list
//!   ([`plan`]), a Step Functions Distributed Map runs one `batch` per item, and `finalize`
//!   writes the metadata, `index-N` and `index.latest`.

mod destination;
pub mod generation;
pub mod plan;
mod transfer;

use std::sync::Arc;

use lambda_runtime::LambdaEvent;
use ossnap_core::clock::Clock;
use ossnap_core::config::{Environment, Settings};
use ossnap_core::event::Invocation;
use ossnap_core::function::prepare;
use ossnap_core::metrics::{self, Metric, Unit};
use ossnap_core::{names, Error, ErrorKind, Result};
use ossnap_repository::layout;
use ossnap_storage::azure_target::AzureTarget;
use ossnap_storage::s3::S3Store;
use ossnap_storage::{BlobSink, BlobStore, RequestCounts};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use destination::Destination;
pub use generation::{Generation, ShardFolder};
pub use plan::{Batch, PlanLocation, DEFAULT_PLAN_PREFIX};
pub use transfer::{Counts, Progress};

use crate::plan::Plans;
use crate::transfer::Transfer;

/// Blobs in flight at once.
pub const COPY_CONCURRENCY: &str = "COPY_CONCURRENCY";
pub const DEFAULT_COPY_CONCURRENCY: usize = 16;
/// Shard folders per item of a plan.
pub const PLAN_BATCH_FOLDERS: &str = "PLAN_BATCH_FOLDERS";
pub const DEFAULT_PLAN_BATCH_FOLDERS: usize = 100;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Plan, every batch and finalize, in one invocation.
    #[default]
    All,
    /// Writes the work list of the source's newest generation.
    Plan,
    /// Copies some shard folders of a planned generation.
    Batch,
    /// Writes a planned generation's metadata, `index-N` and `index.latest`.
    Finalize,
}

impl Mode {
    pub const fn name(self) -> &'static str {
        match self {
            Mode::All => "all",
            Mode::Plan => "plan",
            Mode::Batch => "batch",
            Mode::Finalize => "finalize",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyInput {
    pub repository: Option<String>,
    pub bucket: Option<String>,
    pub base_path: Option<String>,
    /// The snapshots to copy (default: every snapshot of the generation); in `batch` and
    /// `finalize`, if given, they must be the plan's.
    pub snapshots: Option<Vec<String>>,
    /// The Azure repository; each field defaults to its `AZURE_STORAGE_*` setting.
    pub to: Option<AzureTarget>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub mode: Mode,
    /// `plan`, `batch`, `finalize`: the plans' folder in the source bucket.
    pub plan_prefix: Option<String>,
    /// `batch`, `finalize`: the planned generation.
    pub generation: Option<u64>,
    /// `batch`: the shard folders, as the plan's item names them.
    pub folders: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CopyOutput {
    pub mode: Mode,
    pub repository: String,
    pub generation: u64,
    pub snapshots: Vec<String>,
    pub source: SourceLocation,
    /// The destination: `{"account", "container", "base_path"}` for Azure (verify's `azure`).
    pub to: Value,
    /// In a dry run: what would be copied.
    pub blobs_copied: u64,
    pub blobs_skipped: u64,
    pub bytes_copied: u64,
    pub bytes_skipped: u64,
    pub requests: Requests,
    pub dry_run: bool,
    /// The source's newest generation when it is newer than the one copied.
    pub newer_generation: Option<u64>,
    /// Shard `index-*` blobs of the generation that a newer one replaced at the source during
    /// the copy (not copied).
    pub shard_indices_superseded: u64,
    /// `plan`: where the work list lies, its items, and what the generation holds (the blobs
    /// and bytes of its shard folders as listed, an upper bound of a first copy, and its
    /// metadata).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanLocation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batches: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blobs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// `batch`: the shard folders it covered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folders: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceLocation {
    pub bucket: String,
    pub base_path: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Requests {
    pub source: RequestCounts,
    pub destination: RequestCounts,
}

/// The copy function's dependencies.
#[derive(Debug, Clone)]
pub struct Copier {
    pub settings: Settings,
    /// The `AZURE_STORAGE_*` settings, read per invocation with the event's `to`.
    pub env: Environment,
    /// The S3 client (scoped to the repository per invocation).
    pub source: S3Store,
    pub destination: Destination,
    pub concurrency: usize,
    pub batch_folders: usize,
    pub clock: Clock,
}

impl Copier {
    /// An S3 client from aws-config's default chain (`AWS_ENDPOINT_URL_S3` points it at the
    /// local stack), Azure as the destination.
    pub async fn from_env(env: &Environment) -> Result<Copier> {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        Copier::with_sdk_config(env, &sdk)
    }

    /// As [`Self::from_env`], with an SDK configuration loaded by the caller (the command line's
    /// profile and region).
    pub fn with_sdk_config(env: &Environment, sdk: &aws_config::SdkConfig) -> Result<Copier> {
        let secrets = aws_sdk_secretsmanager::Client::new(sdk);
        Copier::new(
            env,
            S3Store::new(ossnap_storage::s3::client(env, sdk)),
            Destination::Azure {
                secrets: Some(secrets),
            },
        )
    }

    /// A copier from `source` to `destination`, with the settings of `env`.
    pub fn new(env: &Environment, source: S3Store, destination: Destination) -> Result<Copier> {
        Ok(Copier {
            settings: Settings::from_env(env)?,
            env: env.clone(),
            source,
            destination,
            concurrency: count_setting(env, COPY_CONCURRENCY, DEFAULT_COPY_CONCURRENCY, 256)?,
            batch_folders: count_setting(
                env,
                PLAN_BATCH_FOLDERS,
                DEFAULT_PLAN_BATCH_FOLDERS,
                1000,
            )?,
            clock: Clock::system(),
        })
    }
}

fn count_setting(env: &Environment, name: &str, default: usize, max: usize) -> Result<usize> {
    match env.get(name) {
        None => Ok(default),
        Some(text) => text
            .trim()
            .parse()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                Error::config(format!(
                    "{name}={text:?} is not a number from 1 to {max} (default {default})"
                ))
            }),
    }
}

pub async fn handle(copier: &Result<Copier>, event: LambdaEvent<Value>) -> Result<CopyOutput> {
    let (copier, invocation, _context): (_, Invocation<CopyInput>, _) = prepare(copier, event)?;
    run(copier, invocation.input).await
}

pub async fn run(copier: &Copier, input: CopyInput) -> Result<CopyOutput> {
    run_watched(copier, input, &Progress::default()).await
}

/// [`run`], counting into `progress` as it goes (the command line shows it).
pub async fn run_watched(
    copier: &Copier,
    input: CopyInput,
    progress: &Progress,
) -> Result<CopyOutput> {
    let job = Job::validate(copier, input)?;
    let repository = job.repository.clone();
    let metric_dimensions = copier.settings.metric_dimensions("copy", &repository);
    // Boxed: the copy's nested futures are otherwise too deep for the compiler's layout.
    let outcome = Box::pin(job.run(copier, progress)).await;
    let now_ms = copier.clock.now_millis();
    match &outcome {
        Ok(output) if !output.dry_run => metrics::emit(
            metric_dimensions,
            &[
                Metric::new("BlobsCopied", Unit::Count, output.blobs_copied as f64),
                Metric::new("BytesCopied", Unit::Bytes, output.bytes_copied as f64),
                Metric::new("BlobsSkipped", Unit::Count, output.blobs_skipped as f64),
                Metric::new("BytesSkipped", Unit::Bytes, output.bytes_skipped as f64),
            ],
            now_ms,
        ),
        Err(error) if error.kind() == ErrorKind::CopyConflict => metrics::emit(
            metric_dimensions,
            &[Metric::new("CopyConflicts", Unit::Count, 1)],
            now_ms,
        ),
        _ => {}
    }
    outcome
}

/// One invocation's work, validated before any request.
struct Job {
    repository: String,
    source: SourceLocation,
    snapshots: Option<Vec<String>>,
    target: destination::Target,
    dry_run: bool,
    work: Work,
}

enum Work {
    All,
    Plan(Plans),
    Batch {
        plans: Plans,
        generation: u64,
        folders: Vec<ShardFolder>,
    },
    Finalize {
        plans: Plans,
        generation: u64,
    },
}

impl Job {
    fn validate(copier: &Copier, input: CopyInput) -> Result<Job> {
        let settings = &copier.settings;
        let repository = input
            .repository
            .unwrap_or_else(|| settings.repository.clone());
        names::validate_repository_name(&repository)?;
        let (bucket, base_path) = settings.location(input.bucket, input.base_path)?;
        let base_path = base_path.unwrap_or_default();
        if let Some(snapshots) = &input.snapshots {
            if snapshots.is_empty() {
                return Err(Error::config(
                    "\"snapshots\" is empty: name at least one, or leave it out to copy them all",
                ));
            }
            snapshots
                .iter()
                .try_for_each(|name| names::validate_snapshot_name(name))?;
        }
        let target = copier
            .destination
            .resolve(&copier.env, input.to.as_ref(), &base_path)?;

        let mode = input.mode;
        let refuse = |field: &str, present: bool| {
            if present {
                Err(Error::config(format!(
                    "\"{field}\" does not apply to mode \"{}\"",
                    mode.name()
                )))
            } else {
                Ok(())
            }
        };
        let required = |field: &str| {
            Error::config(format!(
                "mode \"{}\" needs \"{field}\" (from the plan's answer or item)",
                mode.name()
            ))
        };
        let plans = || {
            Plans::new(
                &copier.source,
                &bucket,
                input.plan_prefix.as_deref().unwrap_or(DEFAULT_PLAN_PREFIX),
                &base_path,
                &repository,
            )
        };
        let work = match mode {
            Mode::All | Mode::Plan => {
                refuse("generation", input.generation.is_some())?;
                refuse("folders", input.folders.is_some())?;
                if mode == Mode::All {
                    refuse("plan_prefix", input.plan_prefix.is_some())?;
                    Work::All
                } else {
                    Work::Plan(plans()?)
                }
            }
            Mode::Batch => {
                let generation = input.generation.ok_or_else(|| required("generation"))?;
                let folders = input
                    .folders
                    .as_ref()
                    .ok_or_else(|| required("folders"))?
                    .iter()
                    .map(|folder| ShardFolder::parse(folder))
                    .collect::<Result<Vec<_>>>()?;
                Work::Batch {
                    plans: plans()?,
                    generation,
                    folders,
                }
            }
            Mode::Finalize => {
                refuse("folders", input.folders.is_some())?;
                let generation = input.generation.ok_or_else(|| required("generation"))?;
                Work::Finalize {
                    plans: plans()?,
                    generation,
                }
            }
        };
        Ok(Job {
            repository,
            source: SourceLocation { bucket, base_path },
            snapshots: input.snapshots,
            target,
            dry_run: input.dry_run,
            work,
        })
    }

    async fn run(self, copier: &Copier, progress: &Progress) -> Result<CopyOutput> {
        let source = copier
            .source
            .scoped(self.source.bucket.clone(), self.source.base_path.clone());
        let destination: Arc<dyn BlobSink> =
            copier.destination.open(&self.target, &copier.env).await?;
        // A store the caller gave may have served earlier copies: count this one's requests.
        let destination_before = destination.requests();
        let transfer = Transfer::new(
            &source,
            destination.as_ref(),
            copier.concurrency,
            self.dry_run,
            progress,
        );
        let mut output = self.output();
        let mut plan_requests = RequestCounts::default();
        let generation = match &self.work {
            Work::All => {
                let generation = newest(&source, self.snapshots.as_deref()).await?;
                transfer.refuse_newer_destination(generation.number).await?;
                let survey = plan::survey(&source, &generation, copier.concurrency).await?;
                progress.add_folders(survey.folders.len());
                transfer.folders(&generation, &survey.folders).await?;
                transfer.finalize(&generation).await?;
                output.newer_generation = newer(&source, generation.number).await?;
                generation
            }
            Work::Plan(plans) => {
                let generation = newest(&source, self.snapshots.as_deref()).await?;
                transfer.refuse_newer_destination(generation.number).await?;
                let survey = plan::survey(&source, &generation, copier.concurrency).await?;
                let batches =
                    plan::batches(generation.number, &survey.folders, copier.batch_folders);
                if !self.dry_run {
                    plans.save(&generation, &batches).await?;
                }
                plan_requests = plans.requests();
                output.plan = Some(plans.location(generation.number));
                output.batches = Some(batches.len());
                output.blobs = Some(survey.blobs);
                output.bytes = Some(survey.bytes);
                generation
            }
            Work::Batch {
                plans,
                generation,
                folders,
            } => {
                let generation = plans.load(*generation).await?;
                plan_requests = plans.requests();
                self.same_snapshots(&generation)?;
                progress.add_folders(folders.len());
                transfer.folders(&generation, folders).await?;
                output.folders = Some(folders.len());
                output.newer_generation = transfer
                    .newest_seen()
                    .filter(|&newest| newest > generation.number);
                generation
            }
            Work::Finalize { plans, generation } => {
                let generation = plans.load(*generation).await?;
                plan_requests = plans.requests();
                self.same_snapshots(&generation)?;
                transfer.finalize(&generation).await?;
                output.newer_generation = newer(&source, generation.number).await?;
                generation
            }
        };
        let counts = progress.counts();
        output.generation = generation.number;
        output.snapshots = generation.snapshot_names();
        output.blobs_copied = counts.blobs_copied;
        output.blobs_skipped = counts.blobs_skipped;
        output.bytes_copied = counts.bytes_copied;
        output.bytes_skipped = counts.bytes_skipped;
        output.shard_indices_superseded = counts.shard_indices_superseded;
        output.requests = Requests {
            source: source.requests() + plan_requests,
            destination: destination.requests().since(destination_before),
        };
        tracing::info!(
            repository = output.repository,
            mode = ?output.mode,
            generation = output.generation,
            destination = destination.location(),
            blobs_copied = output.blobs_copied,
            bytes_copied = output.bytes_copied,
            blobs_skipped = output.blobs_skipped,
            dry_run = output.dry_run,
            newer_generation = output.newer_generation,
            "copy done"
        );
        Ok(output)
    }

    /// The answer with nothing counted yet.
    fn output(&self) -> CopyOutput {
        CopyOutput {
            mode: match self.work {
                Work::All => Mode::All,
                Work::Plan(_) => Mode::Plan,
                Work::Batch { .. } => Mode::Batch,
                Work::Finalize { .. } => Mode::Finalize,
            },
            repository: self.repository.clone(),
            generation: 0,
            snapshots: Vec::new(),
            source: self.source.clone(),
            to: self.target.describe(),
            blobs_copied: 0,
            blobs_skipped: 0,
            bytes_copied: 0,
            bytes_skipped: 0,
            requests: Requests::default(),
            dry_run: self.dry_run,
            newer_generation: None,
            shard_indices_superseded: 0,
            plan: None,
            batches: None,
            blobs: None,
            bytes: None,
            folders: None,
        }
    }

    /// Batches and finalize copy what the plan chose; `snapshots`, if given, must say the same.
    fn same_snapshots(&self, generation: &Generation) -> Result<()> {
        let Some(asked) = &self.snapshots else {
            return Ok(());
        };
        let mut asked = asked.clone();
        let mut planned = generation.snapshot_names();
        asked.sort();
        asked.dedup();
        planned.sort();
        if asked == planned {
            Ok(())
        } else {
            Err(Error::config(format!(
                "the plan of generation {} copies the snapshots {}, not {}: give batches and finalize the plan's snapshots, or none",
                generation.number,
                planned.join(", "),
                asked.join(", ")
            )))
        }
    }
}

/// The source's newest generation, with only `snapshots` (all when `None`). A root `index-N`
/// listed but gone when read (OpenSearch deletes the old one once the next is written) is
/// looked for once more in a new listing.
async fn newest(source: &S3Store, snapshots: Option<&[String]>) -> Result<Generation> {
    let mut looked_again = false;
    loop {
        let Some(number) = transfer::newest_generation(source).await? else {
            return Err(Error::config(format!(
                "{} holds no repository (no index-N): check SNAPSHOT_BUCKET and SNAPSHOT_BASE_PATH (or \"bucket\" and \"base_path\"), and that a snapshot was taken into it",
                source.location()
            )));
        };
        match source.get(&layout::root_index(number)).await? {
            Some(bytes) => return Generation::new(number, bytes, snapshots),
            None if !looked_again => looked_again = true,
            None => {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "{}/index-{number} was listed but is gone twice: the repository is changing fast; try again",
                        source.location()
                    ),
                ))
            }
        }
    }
}

/// The source's newest generation, when newer than `number`.
async fn newer(source: &S3Store, number: u64) -> Result<Option<u64>> {
    Ok(transfer::newest_generation(source)
        .await?
        .filter(|&newest| newest > number))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_bounded_numbers() {
        let env = |value: &str| Environment::from_pairs([(COPY_CONCURRENCY, value)]);
        assert_eq!(
            count_setting(&env("8"), COPY_CONCURRENCY, 16, 256).unwrap(),
            8
        );
        assert_eq!(
            count_setting(&Environment::default(), COPY_CONCURRENCY, 16, 256).unwrap(),
            16
        );
        for bad in ["0", "-1", "many", "257"] {
            let error = count_setting(&env(bad), COPY_CONCURRENCY, 16, 256).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::ConfigError);
            assert!(error.message().contains("COPY_CONCURRENCY"), "{error}");
        }
    }
}
