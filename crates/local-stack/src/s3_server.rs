//! The S3 server: s3s's protocol implementation over s3s-fs's directory store, with SigV4
//! authentication against the configured credentials.

use std::path::Path;

use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

use crate::http_server::{self, RunningServer};
use crate::{Credentials, Error};

pub(crate) async fn start(
    root: &Path,
    port: u16,
    credentials: &Credentials,
) -> Result<RunningServer, Error> {
    let file_system =
        s3s_fs::FileSystem::new(root).map_err(|error| Error::S3Fs(format!("{error:?}")))?;
    let mut builder = S3ServiceBuilder::new(file_system);
    builder.set_auth(SimpleAuth::from_single(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.clone(),
    ));
    let service = builder.build();
    let listener = http_server::bind("S3 server", port).await?;
    http_server::spawn(listener, move |_peer| service.clone())
}
