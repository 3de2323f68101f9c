//! The `register` Lambda function: wiring only; the logic is `ossnap_core::register`.

use lambda_runtime::{service_fn, Error};
use ossnap_core::config::Environment;
use ossnap_core::{register, Deps};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let env = Environment::from_process();
    ossnap_core::logging::init(&env);
    let deps = Deps::from_env(&env).await;
    lambda_runtime::run(service_fn(|event| register::handle(&deps, event))).await
}
