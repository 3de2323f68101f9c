//! The `register` Lambda function: wiring only; the logic is `ossnap_core::register`.

use lambda_runtime::{service_fn, Error};
use ossnap_core::config::Environment;
use ossnap_core::{register, Deps};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deps = Deps::from_env(&Environment::from_process()).await;
    lambda_runtime::run(service_fn(|event| register::handle(&deps, event))).await
}
