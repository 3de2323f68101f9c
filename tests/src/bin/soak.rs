//! `soak` (`make soak`): the deployed state machine, night after night with faults, checked after
//! every run (see `ossnap_tests::soak`). `SOAK_RUNS` (default 1000) scheduled runs, seeded by
//! `SOAK_SEED`; the report is printed and written to `target/soak/report.json`. Exits 1 when an
//! invariant was violated, 2 when the soak could not run.

use std::process::ExitCode;

use ossnap_tests::soak::{self, SoakConfig};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match SoakConfig::from_env(1000) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("soak: {error}");
            return ExitCode::from(2);
        }
    };
    let runs = config.runs;
    let report = soak::run(config, |day, report| {
        if day % 50 == 0 || day == runs {
            eprintln!(
                "soak: day {day}/{runs}, {} runs, {} violations, {:.0} s",
                report.runs, report.invariant_violations, report.wall_seconds
            );
        }
    })
    .await;
    let report = match report {
        Ok(report) => report,
        Err(error) => {
            eprintln!("soak: {error}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report.render());
    let path = soak::output_dir().join("report.json");
    let written = serde_json::to_vec_pretty(&report)
        .map_err(|e| e.to_string())
        .and_then(|json| std::fs::write(&path, json).map_err(|e| e.to_string()));
    match written {
        Ok(()) => println!("report: {}", path.display()),
        Err(error) => {
            eprintln!("soak: writing {}: {error}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.invariant_violations > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
