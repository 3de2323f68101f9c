//! ossnap-cli: the `ossnap` command, presentation only over the library the Lambda functions
//! call (`ossnap_core` for register, snapshot, status and retention, `ossnap_verify` for verify,
//! `ossnap_copy` for copy).
//!
//! - [`args`]: the commands and flags, and how flags override the functions' variables;
//! - [`context`]: settings and AWS configuration (the full credential chain, `--profile`);
//! - [`commands`]: every command but doctor; [`doctor`]: the chain's checks;
//! - [`output`]: tables, JSON, colour; [`exit`]: the exit codes and each error's fix.

pub mod args;
pub mod commands;
pub mod context;
pub mod doctor;
pub mod duration;
pub mod exit;
pub mod output;

use args::{Cli, Command};
use context::Context;
use exit::Exit;
use ossnap_core::config::Environment;
use output::Style;

/// Runs one command and prints its report (or its error); returns the exit code.
pub async fn run(cli: Cli, process: Environment) -> Exit {
    // stdout is this command's output: CloudWatch metrics lines have no place in it.
    ossnap_core::metrics::disable();
    let mode = cli.global.output;
    let context = Context::new(cli.environment(process));
    let style = Style::stdout();
    let report = match &cli.command {
        Command::Doctor { max_age } => Ok(doctor::doctor(&context, style, *max_age).await),
        Command::Register(_) => commands::register(&context, style).await,
        Command::Snapshot(args) => commands::snapshot(&context, style, args).await,
        Command::Status { snapshot } => commands::status(&context, style, snapshot.clone()).await,
        Command::List => commands::list(&context, style).await,
        Command::Verify {
            snapshot, azure, ..
        } => commands::verify(&context, style, snapshot.clone(), *azure).await,
        Command::Retention { .. } => commands::retention(&context, style).await,
        Command::Copy(args) => commands::copy(&context, style, args).await,
        Command::Restore(args) => commands::restore(&context, style, args).await,
    };
    match report {
        Ok(report) => {
            output::print(mode, &report);
            report.exit
        }
        Err(error) => output::print_error(mode, &error),
    }
}
