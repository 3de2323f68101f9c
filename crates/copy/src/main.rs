//! The `copy` Lambda function: wiring only; the logic is the `ossnap_copy` library.

use lambda_runtime::{service_fn, Error};
use ossnap_copy::Copier;
use ossnap_core::config::Environment;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let env = Environment::from_process();
    ossnap_core::logging::init(&env);
    let copier = Copier::from_env(&env).await;
    lambda_runtime::run(service_fn(|event| ossnap_copy::handle(&copier, event))).await
}
