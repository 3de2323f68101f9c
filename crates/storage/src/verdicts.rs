//! verify's verdicts on damaged snapshots ([`ossnap_core::verdict`]) in the repository's bucket:
//! verify writes one when it finds a snapshot damaged, retention lists them once a run.

use ossnap_core::verdict::{self, DamagedSnapshot};
use ossnap_core::Result;
use serde_json::Value;

use crate::s3::S3Store;
use crate::BlobStore;

/// The verdicts on one repository: `s3://<bucket>/ossnap-verdicts/<base path>/`.
#[derive(Debug, Clone)]
pub struct Verdicts {
    store: S3Store,
}

impl Verdicts {
    /// The verdicts on the repository at `s3://bucket/base_path`, read and written with `s3`'s
    /// client.
    pub fn of_repository(s3: &S3Store, bucket: String, base_path: Option<&str>) -> Verdicts {
        Verdicts {
            store: s3.scoped(bucket, verdict::folder(base_path)),
        }
    }

    /// Records that `snapshot` (`uuid`) is damaged, with `details` as the object's body; answers
    /// where it is.
    pub async fn record(&self, snapshot: &str, uuid: &str, details: &Value) -> Result<String> {
        let blob = verdict::blob(snapshot, uuid);
        let body = serde_json::to_vec_pretty(details).expect("a JSON value serialises");
        self.store.put(&blob, body).await?;
        Ok(format!("{}/{blob}", self.store.location()))
    }

    /// Every snapshot recorded as damaged (one listing of the folder).
    pub async fn damaged(&self) -> Result<Vec<DamagedSnapshot>> {
        Ok(self
            .store
            .list("")
            .await?
            .iter()
            .filter_map(|blob| verdict::parse(&blob.name))
            .collect())
    }

    /// Where the verdicts are: `s3://bucket/ossnap-verdicts/<base path>`.
    pub fn location(&self) -> String {
        self.store.location()
    }
}
