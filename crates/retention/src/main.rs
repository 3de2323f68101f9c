//! The `retention` Lambda function: wiring only; the logic is `ossnap_retention`.

use lambda_runtime::{service_fn, Error};
use ossnap_core::config::Environment;
use ossnap_retention::{handle, RetentionFunction};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let env = Environment::from_process();
    ossnap_core::logging::init(&env);
    let function = RetentionFunction::from_env(&env).await;
    lambda_runtime::run(service_fn(|event| handle(&function, event))).await
}
