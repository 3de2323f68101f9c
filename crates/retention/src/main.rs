//! The `retention` Lambda function: wiring only; the logic is `ossnap_core::retention`.

use lambda_runtime::{service_fn, Error};
use ossnap_core::config::Environment;
use ossnap_core::retention::{self, Retention};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let env = Environment::from_process();
    ossnap_core::logging::init(&env);
    let retention = Retention::from_env(&env).await;
    lambda_runtime::run(service_fn(|event| retention::handle(&retention, event))).await
}
