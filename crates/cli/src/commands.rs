//! Every command but `doctor`: each calls the library the functions call, and presents what it
//! returns.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ossnap_copy::{CopyInput, CopyOutput, Counts, Progress};
use ossnap_core::check_restore::{self, CheckRestoreAnswer, CheckRestoreInput, RestoreReport};
use ossnap_core::event::Invocation;
use ossnap_core::opensearch::SnapshotStatus;
use ossnap_core::restore::{self, IndexList, RestoreInput, RestoreOutput};
use ossnap_core::retention::Retention;
use ossnap_core::status::{SnapshotReport, StatusInput, StatusOutput};
use ossnap_core::{register, snapshot, status, Deps, ErrorKind, Result};
use ossnap_storage::s3::S3Store;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::args::{CopyArgs, RestoreArgs, SnapshotArgs};
use crate::context::Context;
use crate::exit::Exit;
use crate::output::{fields, table, Report, Style};

fn invocation<T>(input: T) -> Invocation<T> {
    Invocation {
        input,
        scheduled_time: None,
    }
}

fn to_json(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).expect("ossnap's outputs serialize")
}

pub async fn register(context: &Context, style: Style) -> Result<Report> {
    let deps = context.deps().await?;
    let output = register::run(&deps, invocation(Default::default())).await?;
    let verified = output
        .verified_nodes
        .map_or("not asked (nothing changed)".to_string(), |nodes| {
            format!("{nodes} node(s) can write to it")
        });
    Ok(Report {
        text: fields(
            style,
            &[
                ("repository", output.repository.clone()),
                (
                    "status",
                    to_json(&output.status)
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ),
                ("verified", verified),
            ],
        ),
        json: to_json(&output),
        exit: Exit::Success,
    })
}

pub async fn snapshot(context: &Context, style: Style, args: &SnapshotArgs) -> Result<Report> {
    let deps = context.deps().await?;
    let input = snapshot::SnapshotInput {
        snapshot: args.name.clone(),
        ..Default::default()
    };
    // Recorded as the snapshot's run_id: a retry of this command is another run.
    let run_id = format!("ossnap-cli-{}", deps.clock.now_millis());
    let started = snapshot::run(&deps, invocation(input), &run_id).await?;
    if !args.wait {
        return Ok(Report {
            text: fields(
                style,
                &[
                    ("repository", started.repository.clone()),
                    ("snapshot", started.snapshot.clone()),
                    ("state", started.state.clone()),
                    ("started", started.started_at.clone()),
                    ("next", format!("ossnap status {}", started.snapshot)),
                ],
            ),
            json: to_json(&started),
            exit: Exit::Success,
        });
    }
    let (report, timed_out) = wait(&deps, &started.repository, &started.snapshot, args).await?;
    let mut text = snapshot_text(style, &report);
    let exit = if timed_out {
        text.push_str(&format!(
            "still running after {}: it goes on; follow it with `ossnap status {}`\n",
            seconds(args.timeout.as_millis() as i64),
            report.snapshot
        ));
        Exit::StillRunning
    } else {
        report_exit(&report)
    };
    Ok(Report {
        text,
        json: json!({"started": to_json(&started), "status": to_json(&report), "timed_out": timed_out}),
        exit,
    })
}

/// Polls until the snapshot is done or `--timeout` passes, drawing progress on stderr when it is
/// a terminal. Returns the last report and whether time ran out.
async fn wait(
    deps: &Deps,
    repository: &str,
    snapshot: &str,
    args: &SnapshotArgs,
) -> Result<(SnapshotReport, bool)> {
    let bar = progress_bar(snapshot);
    let deadline = Instant::now() + args.timeout;
    loop {
        let report = snapshot_report(deps, repository, snapshot).await?;
        if report.done {
            bar.finish_and_clear();
            return Ok((report, false));
        }
        match deps.opensearch.snapshot_status(repository, snapshot).await {
            Ok(status) => show_progress(&bar, &status),
            // Progress is only shown; the next report tells what happened.
            Err(e) if e.kind() == ErrorKind::SnapshotMissing || e.kind().is_transient() => {}
            Err(e) => return Err(e),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bar.abandon();
            return Ok((report, true));
        }
        deps.clock.sleep(args.interval.min(left)).await;
    }
}

fn progress_bar(snapshot: &str) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(0), target);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {prefix} [{bar:30}] {pos}/{len} shards {msg} ({elapsed})",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(snapshot.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn show_progress(bar: &ProgressBar, status: &SnapshotStatus) {
    if let Some(shards) = status.shards_stats {
        bar.set_length(shards.total);
        bar.set_position(shards.done);
    }
    let bytes = status.stats.as_ref().and_then(|stats| {
        let processed = stats.processed?;
        let total = stats.incremental.or(stats.total)?;
        Some(format!(
            "{} of {}",
            indicatif::HumanBytes(processed.size_in_bytes),
            indicatif::HumanBytes(total.size_in_bytes)
        ))
    });
    bar.set_message(bytes.unwrap_or_default());
}

async fn snapshot_report(deps: &Deps, repository: &str, snapshot: &str) -> Result<SnapshotReport> {
    let input = StatusInput {
        repository: Some(repository.to_string()),
        snapshot: Some(snapshot.to_string()),
    };
    match status::run(deps, invocation(input)).await? {
        StatusOutput::Snapshot(report) => Ok(report),
        StatusOutput::Cluster(_) => unreachable!("a named snapshot gets its own report"),
    }
}

fn report_exit(report: &SnapshotReport) -> Exit {
    if report.done && !report.healthy {
        Exit::Unhealthy
    } else {
        Exit::Success
    }
}

fn snapshot_text(style: Style, report: &SnapshotReport) -> String {
    let shards = report.shards;
    let mut pairs = vec![
        ("repository", report.repository.clone()),
        ("snapshot", report.snapshot.clone()),
        ("state", report.state.clone()),
        (
            "healthy",
            match (report.done, report.healthy) {
                (false, _) => "not yet (running)".to_string(),
                (true, true) => "yes".to_string(),
                (true, false) => "FAIL: no".to_string(),
            },
        ),
        (
            "shards",
            format!(
                "{} total, {} successful, {} failed",
                shards.total, shards.successful, shards.failed
            ),
        ),
    ];
    if let Some(reason) = &report.reason {
        pairs.push(("reason", reason.clone()));
    }
    if !report.done {
        pairs.push(("look again", format!("in {} s", report.wait_seconds)));
    }
    fields(style, &pairs)
}

pub async fn status(context: &Context, style: Style, snapshot: Option<String>) -> Result<Report> {
    let deps = context.deps().await?;
    let input = StatusInput {
        repository: None,
        snapshot,
    };
    Ok(match status::run(&deps, invocation(input)).await? {
        StatusOutput::Snapshot(report) => Report {
            text: snapshot_text(style, &report),
            json: to_json(&report),
            exit: report_exit(&report),
        },
        StatusOutput::Cluster(cluster) => {
            let text = if cluster.running.is_empty() {
                "no snapshot is running on the cluster\n".to_string()
            } else {
                let rows: Vec<Vec<String>> = cluster
                    .running
                    .iter()
                    .map(|r| {
                        vec![
                            r.repository.clone(),
                            r.snapshot.clone(),
                            r.state.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                table(style, &["REPOSITORY", "SNAPSHOT", "STATE"], &rows)
            };
            Report {
                text,
                json: to_json(&cluster),
                exit: Exit::Success,
            }
        }
    })
}

pub async fn list(context: &Context, style: Style) -> Result<Report> {
    let deps = context.deps().await?;
    let repository = deps.settings.repository.clone();
    ossnap_core::names::validate_repository_name(&repository)?;
    let mut snapshots = deps
        .opensearch
        .get_snapshots(&repository, &["_all"], true)
        .await?;
    snapshots.sort_by_key(|s| s.start_time_in_millis);
    let entries: Vec<Value> = snapshots
        .iter()
        .map(|s| {
            json!({
                "snapshot": s.snapshot,
                "state": s.state,
                "healthy": s.is_healthy(),
                "start_time": s.start_time_in_millis.map(rfc3339),
                "duration_seconds": s.duration_in_millis.map(|ms| ms as f64 / 1000.0),
                "shards": s.shards,
                "taken_by": taken_by(s),
            })
        })
        .collect();
    let text = if snapshots.is_empty() {
        format!("no snapshots in [{repository}]\n")
    } else {
        let rows: Vec<Vec<String>> = snapshots
            .iter()
            .map(|s| {
                let shards = s.shards.unwrap_or_default();
                vec![
                    s.snapshot.clone(),
                    s.state.clone().unwrap_or_default(),
                    s.start_time_in_millis.map(rfc3339).unwrap_or_default(),
                    s.duration_in_millis.map(seconds).unwrap_or_default(),
                    format!("{}/{}", shards.successful, shards.total),
                    taken_by(s).unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        table(
            style,
            &[
                "SNAPSHOT",
                "STATE",
                "START (UTC)",
                "DURATION",
                "SHARDS",
                "TAKEN BY",
            ],
            &rows,
        )
    };
    Ok(Report {
        text,
        json: json!({"repository": repository, "snapshots": entries}),
        exit: Exit::Success,
    })
}

pub async fn restore(context: &Context, style: Style, args: &RestoreArgs) -> Result<Report> {
    let deps = context.deps().await?;
    let input = RestoreInput {
        snapshot: Some(args.snapshot.clone()),
        indices: args.indices.clone().map(IndexList::One),
        rename_pattern: args.rename_pattern.clone(),
        rename_replacement: args.rename_replacement.clone(),
        partial: args.partial,
        dry_run: args.plan,
        ..RestoreInput::default()
    };
    let output = restore::run(&deps, input).await?;
    let mut text = plan_text(style, &output);
    if !args.wait {
        if !output.dry_run {
            text.push_str(&format!(
                "restore started; follow it with `ossnap restore {} --wait` or GET /{}/_recovery\n",
                output.snapshot,
                output.indices.join(",")
            ));
        }
        return Ok(Report {
            text,
            json: to_json(&output),
            exit: Exit::Success,
        });
    }
    let (report, timed_out) = wait_for_restore(&deps, &output, args).await?;
    text.push_str(&restore_report_text(style, &report));
    let exit = if timed_out {
        text.push_str(&format!(
            "still recovering after {}: it goes on; run `ossnap restore` with --wait again to follow it\n",
            seconds(args.timeout.as_millis() as i64)
        ));
        Exit::StillRunning
    } else if report.healthy {
        Exit::Success
    } else {
        Exit::Unhealthy
    };
    Ok(Report {
        text,
        json: json!({"restore": to_json(&output), "progress": to_json(&report), "timed_out": timed_out}),
        exit,
    })
}

/// The plan: each index and its restored name, what is left out and why, and the capacity.
fn plan_text(style: Style, output: &RestoreOutput) -> String {
    let plan = &output.plan;
    let mut text = fields(
        style,
        &[
            ("repository", plan.repository.clone()),
            ("snapshot", plan.snapshot.clone()),
            (
                "versions",
                format!(
                    "snapshot {} into cluster {}",
                    plan.snapshot_version.as_deref().unwrap_or("unknown"),
                    plan.cluster_version
                ),
            ),
            (
                "capacity",
                format!(
                    "{} shard(s) to add to {} open (at most {}), {} to restore",
                    plan.capacity.shards_to_add,
                    plan.capacity.shards_open,
                    plan.capacity.max_shards,
                    indicatif::HumanBytes(plan.capacity.bytes_to_add)
                ),
            ),
            (
                "mode",
                if output.dry_run {
                    "plan only: nothing was changed".to_string()
                } else {
                    "restore started".to_string()
                },
            ),
        ],
    );
    let rows: Vec<Vec<String>> = plan
        .indices
        .iter()
        .map(|index| {
            vec![
                index.index.clone(),
                index.restored_as.clone(),
                index.primaries.to_string(),
                indicatif::HumanBytes(index.bytes).to_string(),
            ]
        })
        .collect();
    text.push_str(&table(
        style,
        &["INDEX", "RESTORED AS", "PRIMARIES", "SIZE"],
        &rows,
    ));
    for excluded in &plan.excluded {
        text.push_str(&format!(
            "left out: {} ({})\n",
            excluded.index, excluded.reason
        ));
    }
    text
}

/// Polls check-restore until every primary is recovered or `--timeout` passes, drawing progress
/// on stderr when it is a terminal.
async fn wait_for_restore(
    deps: &Deps,
    output: &RestoreOutput,
    args: &RestoreArgs,
) -> Result<(RestoreReport, bool)> {
    let bar = progress_bar(&output.snapshot);
    let deadline = Instant::now() + args.timeout;
    loop {
        let input = CheckRestoreInput {
            indices: Some(IndexList::Many(output.indices.clone())),
            ..CheckRestoreInput::default()
        };
        let report = match check_restore::run(deps, invocation(input)).await? {
            CheckRestoreAnswer::Report(answer) => answer.report,
            CheckRestoreAnswer::Cleanup(_) => unreachable!("no drill clean-up was asked"),
        };
        if report.done {
            bar.finish_and_clear();
            return Ok((report, false));
        }
        bar.set_length(report.primaries.total);
        bar.set_position(report.primaries.done);
        bar.set_message(format!(
            "primaries, {:.0}% of the bytes{}",
            report.percent,
            report
                .eta_seconds
                .map(|eta| format!(", about {eta} s left"))
                .unwrap_or_default()
        ));
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bar.abandon();
            return Ok((report, true));
        }
        deps.clock.sleep(args.interval.min(left)).await;
    }
}

fn restore_report_text(style: Style, report: &RestoreReport) -> String {
    let rows: Vec<Vec<String>> = report
        .indices
        .iter()
        .map(|index| {
            vec![
                index.index.clone(),
                index.status.clone(),
                format!("{}/{}", index.primaries.done, index.primaries.total),
                format!("{:.0}%", index.percent),
            ]
        })
        .collect();
    let mut text = table(style, &["INDEX", "HEALTH", "PRIMARIES", "BYTES"], &rows);
    text.push_str(&fields(
        style,
        &[(
            "restored",
            match (report.done, report.healthy) {
                (true, true) => "yes: every primary recovered, every index at least yellow".into(),
                (true, false) => "FAIL: recovered, but an index is red".into(),
                (false, _) => format!("not yet ({:.0}%)", report.percent),
            },
        )],
    ));
    text
}

fn taken_by(snapshot: &ossnap_core::opensearch::SnapshotInfo) -> Option<String> {
    snapshot
        .metadata
        .as_ref()?
        .get(snapshot::TAKEN_BY)?
        .as_str()
        .map(str::to_string)
}

/// Verifies `snapshot` in the bucket, or with `on_azure` in its copy in Azure Blob Storage.
pub async fn verify(
    context: &Context,
    style: Style,
    snapshot: String,
    on_azure: bool,
) -> Result<Report> {
    let verifier = context.verifier().await?;
    let input = ossnap_verify::VerifyInput {
        snapshot: Some(snapshot),
        azure: on_azure.then(Default::default),
        ..Default::default()
    };
    let output = ossnap_verify::run(&verifier, invocation(input)).await?;
    let json = to_json(&output);
    let requests = &output.requests;
    Ok(Report {
        text: fields(
            style,
            &[
                ("repository", output.repository.clone()),
                ("snapshot", output.snapshot.clone()),
                ("verified", format!("PASS: complete in {}", output.location)),
                (
                    "depth",
                    json["depth"].as_str().unwrap_or_default().to_string(),
                ),
                (
                    "checked",
                    format!(
                        "{} indices, {} shards, {} data blobs, {} bytes",
                        output.indices, output.shards, output.blobs, output.bytes
                    ),
                ),
                (
                    "requests",
                    format!(
                        "{} LIST, {} GET, {} bytes read",
                        requests.list, requests.get, requests.bytes_read
                    ),
                ),
            ],
        ),
        json,
        exit: Exit::Success,
    })
}

pub async fn copy(context: &Context, style: Style, args: &CopyArgs) -> Result<Report> {
    let copier = context.copier(args.to_folder.as_deref()).await?;
    let input = CopyInput {
        snapshots: (!args.snapshots.is_empty()).then(|| args.snapshots.clone()),
        dry_run: args.dry_run,
        ..CopyInput::default()
    };
    let progress = Progress::default();
    let bar = copy_progress_bar();
    let copying = ossnap_copy::run_watched(&copier, input, &progress);
    tokio::pin!(copying);
    let output = loop {
        tokio::select! {
            output = &mut copying => break output,
            _ = tokio::time::sleep(Duration::from_millis(200)) => show_copy_progress(&bar, progress.counts()),
        }
    };
    bar.finish_and_clear();
    let output = output?;
    Ok(Report {
        text: copy_text(style, &output),
        json: to_json(&output),
        exit: Exit::Success,
    })
}

fn copy_progress_bar() -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(0), target);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} copy [{bar:30}] {pos}/{len} shard folders {msg} ({elapsed})",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn show_copy_progress(bar: &ProgressBar, counts: Counts) {
    bar.set_length(counts.folders_total);
    bar.set_position(counts.folders_done);
    bar.set_message(format!(
        "{} blobs, {} copied, {} skipped",
        counts.blobs_copied + counts.blobs_skipped,
        indicatif::HumanBytes(counts.bytes_copied),
        indicatif::HumanBytes(counts.bytes_skipped)
    ));
}

fn copy_text(style: Style, output: &CopyOutput) -> String {
    let to = &output.to;
    let destination = match to["location"].as_str() {
        Some(location) => location.to_string(),
        None => format!(
            "azure://{}/{}/{}",
            to["account"].as_str().unwrap_or_default(),
            to["container"].as_str().unwrap_or_default(),
            to["base_path"].as_str().unwrap_or_default()
        ),
    };
    let (copied, mode) = if output.dry_run {
        ("to copy", "dry run: nothing was written".to_string())
    } else if output.blobs_copied == 0 {
        (
            "copied",
            format!(
                "nothing to copy: the destination holds generation {} whole",
                output.generation
            ),
        )
    } else {
        (
            "copied",
            "copied: data first, index-N and index.latest last".to_string(),
        )
    };
    let source = &output.requests.source;
    let written = &output.requests.destination;
    let mut pairs = vec![
        ("repository", output.repository.clone()),
        (
            "generation",
            format!("{} ({})", output.generation, output.snapshots.join(", ")),
        ),
        (
            "from",
            format!(
                "s3://{}/{}",
                output.source.bucket, output.source.base_path
            ),
        ),
        ("to", destination),
        ("mode", mode),
        (
            copied,
            format!(
                "{} blobs, {}",
                output.blobs_copied,
                indicatif::HumanBytes(output.bytes_copied)
            ),
        ),
        (
            "already there",
            format!(
                "{} blobs, {}",
                output.blobs_skipped,
                indicatif::HumanBytes(output.bytes_skipped)
            ),
        ),
        (
            "requests",
            format!(
                "source {} LIST, {} GET; destination {} LIST, {} GET, {} PUT, {} PUT BLOCK, {} PUT BLOCK LIST",
                source.list,
                source.get,
                written.list,
                written.get,
                written.put,
                written.put_block,
                written.put_block_list
            ),
        ),
    ];
    if output.shard_indices_superseded > 0 {
        pairs.push((
            "left out",
            format!(
                "{} shard index file(s) a newer generation replaced at the source (restores do not read them)",
                output.shard_indices_superseded
            ),
        ));
    }
    if let Some(newer) = output.newer_generation {
        pairs.push((
            "newer",
            format!(
                "WARN the source is at generation {newer} now: run `ossnap copy` again to copy it"
            ),
        ));
    }
    fields(style, &pairs)
}

pub async fn retention(context: &Context, style: Style) -> Result<Report> {
    let retention = Retention {
        policy: context.policy()?,
        deps: context.deps().await?,
    };
    let store = S3Store::new(context.s3().await);
    let output = ossnap_retention::run(&retention, &store, invocation(Default::default())).await?;
    let deleted = if output.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let rows: Vec<Vec<String>> = [
        ("kept", &output.kept),
        (deleted, &output.deleted),
        ("skipped", &output.skipped),
    ]
    .iter()
    .flat_map(|(action, decisions)| {
        decisions
            .iter()
            .map(|d| vec![action.to_string(), d.snapshot.clone(), d.reason.clone()])
    })
    .collect();
    let mut text = if output.dry_run {
        "dry run: nothing was deleted\n".to_string()
    } else {
        String::new()
    };
    if rows.is_empty() {
        text.push_str(&format!("no ossnap snapshots in [{}]\n", output.repository));
    } else {
        text.push_str(&table(style, &["ACTION", "SNAPSHOT", "REASON"], &rows));
    }
    Ok(Report {
        text,
        json: to_json(&output),
        exit: Exit::Success,
    })
}

pub fn rfc3339(millis: i64) -> String {
    OffsetDateTime::from_unix_timestamp(millis.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// `42s`, `3m 05s`, `2h 01m`.
pub fn seconds(millis: i64) -> String {
    let total = millis.max(0) / 1000;
    match total {
        0..60 => format!("{total}s"),
        60..3600 => format!("{}m {:02}s", total / 60, total % 60),
        _ => format!("{}h {:02}m", total / 3600, total % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_read_well() {
        assert_eq!(rfc3339(1_764_295_200_123), "2025-11-28T02:00:00Z");
        assert_eq!(seconds(999), "0s");
        assert_eq!(seconds(185_000), "3m 05s");
        assert_eq!(seconds(7_260_000), "2h 01m");
    }
}
