//! The `verify` Lambda function: wiring only; the logic is the `ossnap_verify` library.

use lambda_runtime::{service_fn, Error};
use ossnap_core::config::Environment;
use ossnap_verify::Verifier;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let env = Environment::from_process();
    ossnap_core::logging::init(&env);
    let verifier = Verifier::from_env(&env).await;
    lambda_runtime::run(service_fn(|event| ossnap_verify::handle(&verifier, event))).await
}
