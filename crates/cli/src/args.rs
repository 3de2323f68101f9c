//! The command line: commands, flags, and how flags override the functions' environment
//! variables (each flag is written over the variable of the same meaning, so the library reads
//! one set of settings whatever their source).

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ossnap_core::config::{var, Environment};
use ossnap_core::retention::var as retention_var;
use ossnap_storage::azure_target;

use crate::duration::parse_duration;

const EXIT_CODES: &str = "\
Settings: the functions' environment variables (OPENSEARCH_ENDPOINT, AWS_REGION, SNAPSHOT_*,
RETENTION_*, VERIFY_DEPTH, ...); a flag overrides its variable. Credentials: aws-config's full
chain (environment, profiles, SSO, credential processes, assume-role, instance metadata).

Exit codes:
  0  success
  1  failure (the error's name, its message and the fix are printed)
  2  usage or configuration (a bad flag, a missing or invalid setting)
  3  still running at --timeout
  4  finished but not healthy (a snapshot that is not SUCCESS with every shard, a damaged
     snapshot in verify, a FAIL in doctor)";

#[derive(Debug, Parser)]
#[command(
    name = "ossnap",
    version,
    about = "Manual OpenSearch snapshots into your own bucket, from a terminal",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The domain endpoint [OPENSEARCH_ENDPOINT]
    #[arg(long, global = true)]
    pub endpoint: Option<String>,
    /// sigv4, basic or none [OPENSEARCH_AUTH]
    #[arg(long, global = true, value_parser = ["sigv4", "basic", "none"])]
    pub auth: Option<String>,
    /// The domain's region [AWS_REGION; else the profile's]
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// The AWS profile whose credentials sign requests [AWS_PROFILE]
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// The snapshot repository [SNAPSHOT_REPOSITORY]
    #[arg(long, global = true)]
    pub repository: Option<String>,
    /// The bucket that holds the snapshots [SNAPSHOT_BUCKET]
    #[arg(long, global = true)]
    pub bucket: Option<String>,
    /// The key prefix inside the bucket [SNAPSHOT_BASE_PATH]
    #[arg(long, global = true)]
    pub base_path: Option<String>,
    /// Snapshot names are PREFIX-yyyymmdd-hhmmss [SNAPSHOT_PREFIX]
    #[arg(long, global = true)]
    pub prefix: Option<String>,
    /// A table for people, or one JSON document on stdout for scripts
    #[arg(long, global = true, value_enum, default_value_t = OutputMode::Table)]
    pub output: OutputMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputMode {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Checks every link of the chain, each PASS, WARN, FAIL or NOT CHECKED, with its fix
    Doctor {
        /// The newest healthy snapshot must be younger than this (the schedule's period plus a
        /// margin)
        #[arg(long, default_value = "26h", value_parser = parse_duration)]
        max_age: Duration,
    },
    /// Registers the repository idempotently, and verifies it
    Register(RegisterArgs),
    /// Starts a snapshot; with --wait, shows its progress until it ends
    Snapshot(SnapshotArgs),
    /// One snapshot's standing, or what runs on the cluster
    Status {
        /// The snapshot; without it, the snapshots running across the cluster
        snapshot: Option<String>,
    },
    /// The repository's snapshots: name, state, start, duration, shards, taken by
    List,
    /// Verifies a snapshot from the storage side (the bucket), not the cluster's word
    Verify {
        snapshot: String,
        /// structure, footers or full [VERIFY_DEPTH]
        #[arg(long, value_parser = ["structure", "footers", "full"])]
        depth: Option<String>,
        /// Read the copy in Azure Blob Storage instead of the bucket (AZURE_STORAGE_* settings)
        #[arg(long)]
        azure: bool,
        /// The Azure storage account [AZURE_STORAGE_ACCOUNT]
        #[arg(long, requires = "azure")]
        azure_account: Option<String>,
        /// The container [AZURE_STORAGE_CONTAINER]
        #[arg(long, requires = "azure")]
        azure_container: Option<String>,
        /// The path in the container (default: the bucket's base path) [AZURE_STORAGE_BASE_PATH]
        #[arg(long, requires = "azure")]
        azure_base_path: Option<String>,
    },
    /// The restore plan (--plan), or the restore; with --wait, its progress until every shard is
    /// back
    Restore(RestoreArgs),
    /// Copies the repository's newest generation to Azure Blob Storage (or a folder): data
    /// first, index-N and index.latest last; what is already there is skipped
    Copy(CopyArgs),
    /// Applies retention (RETENTION_* variables), or with --dry-run shows what it would do
    Retention {
        /// Delete nothing; show what would go [RETENTION_DRY_RUN]
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// s3, fs or azure [SNAPSHOT_REPOSITORY_TYPE]
    #[arg(long = "type", value_parser = ["s3", "fs", "azure"])]
    pub repository_type: Option<String>,
    /// The role OpenSearch assumes to write to the bucket [SNAPSHOT_ROLE_ARN]
    #[arg(long)]
    pub role_arn: Option<String>,
    /// fs: the folder on every node [SNAPSHOT_LOCATION]
    #[arg(long)]
    pub location: Option<String>,
    /// azure: the container [AZURE_STORAGE_CONTAINER]
    #[arg(long)]
    pub container: Option<String>,
    /// Register read-only (restore targets) [SNAPSHOT_READONLY]
    #[arg(long)]
    pub readonly: bool,
    /// s3: SSE-S3 [SNAPSHOT_SERVER_SIDE_ENCRYPTION]
    #[arg(long)]
    pub server_side_encryption: bool,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// A name instead of PREFIX-yyyymmdd-hhmmss
    #[arg(long)]
    pub name: Option<String>,
    /// What to snapshot [SNAPSHOT_INDICES]
    #[arg(long)]
    pub indices: Option<String>,
    /// Show progress until the snapshot ends
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up waiting after this long (exit 3; the snapshot goes on)
    #[arg(long, default_value = "6h", value_parser = parse_duration)]
    pub timeout: Duration,
    /// With --wait: how often to ask the cluster
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub interval: Duration,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The Azure storage account [AZURE_STORAGE_ACCOUNT]
    #[arg(long)]
    pub to_account: Option<String>,
    /// The container [AZURE_STORAGE_CONTAINER]
    #[arg(long)]
    pub to_container: Option<String>,
    /// The path in the container (default: the bucket's base path) [AZURE_STORAGE_BASE_PATH]
    #[arg(long)]
    pub to_base_path: Option<String>,
    /// A local folder instead of Azure (a staging disk, an `fs` repository's location)
    #[arg(long, conflicts_with_all = ["to_account", "to_container", "to_base_path"])]
    pub to_folder: Option<std::path::PathBuf>,
    /// Only these snapshots, comma-separated (default: every snapshot of the generation)
    #[arg(long, value_delimiter = ',')]
    pub snapshots: Vec<String>,
    /// Write nothing: list what would be copied and what is already there
    #[arg(long)]
    pub dry_run: bool,
    /// Blobs in flight at once [COPY_CONCURRENCY]
    #[arg(long)]
    pub concurrency: Option<String>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A snapshot name, or `latest`: the newest healthy snapshot ossnap took
    #[arg(default_value = "latest")]
    pub snapshot: String,
    /// Names or * patterns, comma-separated (default: every index of the snapshot but system ones)
    #[arg(long)]
    pub indices: Option<String>,
    /// Restore under new names: a regular expression over each index name...
    #[arg(long, requires = "rename_replacement")]
    pub rename_pattern: Option<String>,
    /// ...and its replacement ($1 for the first group)
    #[arg(long, requires = "rename_pattern")]
    pub rename_replacement: Option<String>,
    /// Restore what was snapshotted of partly failed shards (missing shards come back empty)
    #[arg(long)]
    pub partial: bool,
    /// Only show the plan: what would be restored, under which names, and the capacity checks
    #[arg(long, conflicts_with = "wait")]
    pub plan: bool,
    /// Show progress until every shard is recovered
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up waiting after this long (exit 3; the restore goes on)
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub timeout: Duration,
    /// With --wait: how often to ask the cluster
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub interval: Duration,
}

impl Cli {
    /// The process environment with the flags written over their variables.
    pub fn environment(&self, process: Environment) -> Environment {
        let global = &self.global;
        let mut overrides: Vec<(&str, Option<String>)> = vec![
            (var::ENDPOINT, global.endpoint.clone()),
            (var::AUTH, global.auth.clone()),
            (var::REGION, global.region.clone()),
            ("AWS_PROFILE", global.profile.clone()),
            (var::REPOSITORY, global.repository.clone()),
            (var::BUCKET, global.bucket.clone()),
            (var::BASE_PATH, global.base_path.clone()),
            (var::PREFIX, global.prefix.clone()),
        ];
        let on = |flag: bool| flag.then(|| "true".to_string());
        match &self.command {
            Command::Register(register) => overrides.extend([
                (var::REPOSITORY_TYPE, register.repository_type.clone()),
                (var::ROLE_ARN, register.role_arn.clone()),
                (var::LOCATION, register.location.clone()),
                (var::AZURE_CONTAINER, register.container.clone()),
                (var::READONLY, on(register.readonly)),
                (
                    var::SERVER_SIDE_ENCRYPTION,
                    on(register.server_side_encryption),
                ),
            ]),
            Command::Snapshot(snapshot) => overrides.push((var::INDICES, snapshot.indices.clone())),
            Command::Verify {
                depth,
                azure_account,
                azure_container,
                azure_base_path,
                ..
            } => overrides.extend([
                (ossnap_verify::VERIFY_DEPTH, depth.clone()),
                (azure_target::ACCOUNT, azure_account.clone()),
                (azure_target::CONTAINER, azure_container.clone()),
                (azure_target::BASE_PATH, azure_base_path.clone()),
            ]),
            Command::Retention { dry_run } => {
                overrides.push((retention_var::DRY_RUN, on(*dry_run)))
            }
            Command::Copy(copy) => overrides.extend([
                (azure_target::ACCOUNT, copy.to_account.clone()),
                (azure_target::CONTAINER, copy.to_container.clone()),
                (azure_target::BASE_PATH, copy.to_base_path.clone()),
                (ossnap_copy::COPY_CONCURRENCY, copy.concurrency.clone()),
            ]),
            Command::Doctor { .. }
            | Command::Status { .. }
            | Command::List
            | Command::Restore(_) => {}
        }
        process.with_overrides(
            overrides
                .into_iter()
                .filter_map(|(name, value)| Some((name, value?))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_their_variables_and_leave_the_others() {
        let cli = Cli::parse_from([
            "ossnap",
            "--endpoint",
            "https://flag.example.com",
            "retention",
            "--dry-run",
        ]);
        let env = cli.environment(Environment::from_pairs([
            (var::ENDPOINT, "https://env.example.com"),
            (var::REPOSITORY, "from-env"),
        ]));
        assert_eq!(env.get(var::ENDPOINT), Some("https://flag.example.com"));
        assert_eq!(env.get(var::REPOSITORY), Some("from-env"));
        assert_eq!(env.get(retention_var::DRY_RUN), Some("true"));
    }

    #[test]
    fn copy_flags_override_the_azure_variables() {
        let cli = Cli::parse_from([
            "ossnap",
            "copy",
            "--to-account",
            "flagacct",
            "--concurrency",
            "4",
            "--snapshots",
            "a,b",
        ]);
        let env = cli.environment(Environment::from_pairs([
            (azure_target::ACCOUNT, "envacct"),
            (azure_target::CONTAINER, "from-env"),
        ]));
        assert_eq!(env.get(azure_target::ACCOUNT), Some("flagacct"));
        assert_eq!(env.get(azure_target::CONTAINER), Some("from-env"));
        assert_eq!(env.get(ossnap_copy::COPY_CONCURRENCY), Some("4"));
        let Command::Copy(copy) = cli.command else {
            panic!("copy parses as copy");
        };
        assert_eq!(copy.snapshots, ["a", "b"]);
        let both = Cli::try_parse_from([
            "ossnap",
            "copy",
            "--to-folder",
            "/tmp/x",
            "--to-account",
            "a",
        ]);
        assert!(both.is_err());
    }

    #[test]
    fn an_unset_switch_leaves_the_variable_alone() {
        let cli = Cli::parse_from(["ossnap", "retention"]);
        let env = cli.environment(Environment::from_pairs([(retention_var::DRY_RUN, "true")]));
        assert_eq!(env.get(retention_var::DRY_RUN), Some("true"));
    }
}
