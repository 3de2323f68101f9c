//! Blob names relative to a repository's `base_path` (the FIXED shard path type, which is the
//! default and the only one ossnap supports).

pub const INDEX_LATEST: &str = "index.latest";
pub const ROOT_INDEX_PREFIX: &str = "index-";

pub fn root_index(generation: u64) -> String {
    format!("index-{generation}")
}

pub fn snapshot_info(snapshot_uuid: &str) -> String {
    format!("snap-{snapshot_uuid}.dat")
}

pub fn global_metadata(snapshot_uuid: &str) -> String {
    format!("meta-{snapshot_uuid}.dat")
}

pub fn index_metadata(index_id: &str, blob_id: &str) -> String {
    format!("indices/{index_id}/meta-{blob_id}.dat")
}

pub fn shard_directory(index_id: &str, shard: u32) -> String {
    format!("indices/{index_id}/{shard}/")
}

pub fn shard_snapshot(index_id: &str, shard: u32, snapshot_uuid: &str) -> String {
    format!("indices/{index_id}/{shard}/snap-{snapshot_uuid}.dat")
}

pub fn shard_index(index_id: &str, shard: u32, generation: &str) -> String {
    format!("indices/{index_id}/{shard}/index-{generation}")
}

pub fn shard_data(index_id: &str, shard: u32, blob_name: &str) -> String {
    format!("indices/{index_id}/{shard}/{blob_name}")
}

/// Joins `base_path` and a blob name the way repository-s3 builds keys (no leading slash, one
/// separator).
pub fn key(base_path: &str, blob: &str) -> String {
    let base = base_path.trim_matches('/');
    if base.is_empty() {
        blob.to_owned()
    } else {
        format!("{base}/{blob}")
    }
}
