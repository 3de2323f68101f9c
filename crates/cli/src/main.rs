//! The `ossnap` command: wiring only; the logic is the `ossnap_cli` library.

use clap::Parser;
use ossnap_cli::args::Cli;
use ossnap_core::config::Environment;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let exit = ossnap_cli::run(cli, Environment::from_process()).await;
    std::process::ExitCode::from(exit.code())
}
