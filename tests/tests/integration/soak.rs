//! The soak in CI: a short run of the deployed state machine with faults (`SOAK_RUNS`, default
//! 50; `SOAK_SEED`), which fails on any invariant violation, and the proof that the checker sees
//! a violation when there is one. The full soak is `make soak` (README, "Soak").
//! Needs `make workflow-tools` and `cargo build --workspace --bins` (`make test` does both).

use ossnap_tests::soak::{self, invariants::REPOSITORY, RunFault, Soak, SoakConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_keeps_every_invariant() {
    let config = SoakConfig::from_env(50).unwrap_or_else(|e| panic!("{e}"));
    let runs = config.runs;
    let mut soak = Soak::start(config).await.unwrap_or_else(|e| panic!("{e}"));
    for day in 0..runs {
        soak.run_day(day).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let report = soak.report();
    println!("{}", report.render());
    assert_eq!(report.invariant_violations, 0, "{:#?}", report.violations);
    assert!(report.runs >= runs);
    assert!(
        report.snapshots_deleted > 0,
        "retention never deleted anything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_reports_a_deleted_newest_healthy_snapshot() {
    let config = SoakConfig {
        runs: 4,
        fault_rate: 0.0,
        manual_rate: 0.0,
        ..SoakConfig::default()
    };
    let mut soak = Soak::start(config).await.unwrap_or_else(|e| panic!("{e}"));
    for day in 0..4 {
        soak.run_day(day).await.unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(soak.violations().is_empty(), "{:?}", soak.violations());
    let newest = soak.newest_healthy().expect("four runs took snapshots");
    let deps = soak.stack().deps(&[]);
    deps.opensearch
        .delete_snapshots(REPOSITORY, &[&newest])
        .await
        .expect("the newest snapshot is deleted behind the soak's back");

    let found = soak.check("after a deletion behind ossnap's back").await;

    assert!(
        found
            .iter()
            .any(|violation| violation.contains(&newest) && violation.contains("newest healthy")),
        "{found:?}"
    );
    assert_eq!(found.len(), 1, "{found:?}");

    // Four were taken: with two gone, fewer than RETENTION_MIN_COUNT=3 remain.
    let next = soak.newest_healthy().expect("three are left");
    deps.opensearch
        .delete_snapshots(REPOSITORY, &[&next])
        .await
        .expect("deleted");
    let found = soak.check("after a second deletion").await;
    assert!(
        found
            .iter()
            .any(|violation| violation.contains("only 2 healthy snapshots of ours remain")),
        "{found:?}"
    );
    assert_eq!(soak.report().invariant_violations, 1 + found.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_reports_a_foreign_snapshot_deleted() {
    let config = SoakConfig {
        runs: 1,
        fault_rate: 0.0,
        manual_rate: 0.0,
        ..SoakConfig::default()
    };
    let mut soak = Soak::start(config).await.unwrap_or_else(|e| panic!("{e}"));
    soak.run_day(0).await.unwrap_or_else(|e| panic!("{e}"));
    let deps = soak.stack().deps(&[]);
    deps.opensearch
        .delete_snapshots(REPOSITORY, &["manual-before-upgrade"])
        .await
        .expect("deleted");

    let found = soak.check("after a foreign snapshot was deleted").await;

    assert_eq!(
        found,
        ["after a foreign snapshot was deleted: deleted [manual-before-upgrade], a snapshot ossnap did not take"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thirty_minute_snapshot_is_polled_a_handful_of_times() {
    let long = soak::long_snapshot(30)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(long.succeeded);
    // Each poll waits the time left at the pace so far (at most 15 minutes): two waits, then done.
    // (It once took 7 when a heavy shard came first: the emulator gave every shard the same time
    // and check-status trusted the count of shards done over the bytes.)
    assert!(long.workflow.polls <= 3, "{long:?}");
    assert_eq!(long.waits.len(), long.workflow.polls, "{long:?}");
    assert_eq!(long.waits.last(), Some(&0), "{long:?}");
    assert!(
        long.waits[..long.waits.len() - 1]
            .iter()
            .all(|wait| *wait >= 850),
        "{long:?}"
    );
    assert_eq!(long.polling_every_60_s.polls, 30);
    assert!(long.workflow.transitions * 2 < long.polling_every_60_s.transitions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_damaged_in_the_bucket_fail_their_run_and_break_no_invariant() {
    let config = SoakConfig {
        fault_rate: 0.0,
        manual_rate: 0.0,
        ..SoakConfig::default()
    };
    let mut soak = Soak::start(config).await.unwrap_or_else(|e| panic!("{e}"));
    for (day, fault) in [
        None,
        Some(RunFault::BlobMissing),
        Some(RunFault::BlobTruncated),
        None,
        None,
    ]
    .into_iter()
    .enumerate()
    {
        soak.run_day_with(day, fault)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let report = soak.report();
    assert!(soak.violations().is_empty(), "{:?}", soak.violations());
    assert_eq!(report.faults.get("blob_missing"), Some(&1));
    assert_eq!(report.faults.get("blob_truncated"), Some(&1));
    assert_eq!((report.runs_failed, report.runs_failed_notified), (2, 2));
}
