//! The `check-restore` Lambda function: wiring only; the logic is `ossnap_core::check_restore`.

use lambda_runtime::{service_fn, Error};
use ossnap_core::config::Environment;
use ossnap_core::{check_restore, Deps};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let env = Environment::from_process();
    ossnap_core::logging::init(&env);
    let deps = Deps::from_env(&env).await;
    lambda_runtime::run(service_fn(|event| check_restore::handle(&deps, event))).await
}
