//! The `check-status` Lambda function: wiring only; the logic is `ossnap_core::status`.

use lambda_runtime::{service_fn, Error};
use ossnap_core::config::Environment;
use ossnap_core::{status, Deps};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let env = Environment::from_process();
    ossnap_core::logging::init(&env);
    let deps = Deps::from_env(&env).await;
    lambda_runtime::run(service_fn(|event| status::handle(&deps, event))).await
}
