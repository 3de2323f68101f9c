//! Reads every repository in ../shared/fixtures/real-repositories (written by real Elasticsearch
//! 5.6, 6.8 and 7.10 clusters, whose layout OpenSearch keeps) with this crate's models, and checks
//! that what the models say agrees with what is stored.

use std::fs;
use std::path::{Path, PathBuf};

use ossnap_repository::codec::{self, checksum_to_string, Codec};
use ossnap_repository::model::read_untyped;
use ossnap_repository::repository_data::{decode_index_latest, root_index_generation};
use ossnap_repository::smile::Value;
use ossnap_repository::{
    layout, RepositoryData, ShardSnapshot, ShardSnapshots, SnapshotInfo, SnapshotState,
};

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/real-repositories")
}

fn repositories() -> Vec<PathBuf> {
    let mut repositories: Vec<PathBuf> = fs::read_dir(fixtures_root())
        .expect("fixtures present at ../shared/fixtures/real-repositories")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("index.latest").exists())
        .collect();
    repositories.sort();
    assert_eq!(
        repositories.len(),
        7,
        "expected the seven fixture repositories"
    );
    repositories
}

fn latest_repository_data(repository: &Path) -> (u64, RepositoryData) {
    let newest = fs::read_dir(repository)
        .unwrap()
        .filter_map(|entry| root_index_generation(entry.unwrap().file_name().to_str()?))
        .max()
        .expect("an index-N blob");
    let bytes = fs::read(repository.join(layout::root_index(newest))).unwrap();
    (newest, RepositoryData::from_json(&bytes).unwrap())
}

fn shard_directories(index_directory: &Path) -> Vec<u32> {
    let mut shards: Vec<u32> = fs::read_dir(index_directory)
        .unwrap()
        .filter_map(|entry| entry.unwrap().file_name().to_str()?.parse().ok())
        .collect();
    shards.sort();
    shards
}

#[test]
fn index_latest_names_the_newest_root_index() {
    for repository in repositories() {
        let (newest, _) = latest_repository_data(&repository);
        let latest =
            decode_index_latest(&fs::read(repository.join(layout::INDEX_LATEST)).unwrap()).unwrap();
        assert_eq!(latest, newest, "{}", repository.display());
    }
}

#[test]
fn every_snapshot_in_index_n_has_readable_snapshot_and_global_metadata() {
    for repository in repositories() {
        let (_, data) = latest_repository_data(&repository);
        assert!(!data.snapshots.is_empty(), "{}", repository.display());
        for entry in &data.snapshots {
            let blob = fs::read(repository.join(layout::snapshot_info(&entry.uuid))).unwrap();
            let info = SnapshotInfo::from_blob(&blob).unwrap();
            assert_eq!(info.name, entry.name);
            assert_eq!(info.snapshot_state().unwrap(), Some(SnapshotState::Success));
            assert_eq!(
                entry.snapshot_state().unwrap(),
                Some(SnapshotState::Success)
            );
            assert_eq!(info.successful_shards, info.total_shards);
            let mut indices_in_index_n: Vec<&str> = data
                .indices_of(&entry.uuid)
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            indices_in_index_n.sort();
            let mut indices_in_info: Vec<&str> = info.indices.iter().map(String::as_str).collect();
            indices_in_info.sort();
            assert_eq!(
                indices_in_info,
                indices_in_index_n,
                "{}",
                repository.display()
            );

            let meta = fs::read(repository.join(layout::global_metadata(&entry.uuid))).unwrap();
            assert!(matches!(
                read_untyped(Codec::Metadata, &meta).unwrap(),
                Value::Object(_)
            ));
        }
    }
}

#[test]
fn every_shard_file_is_stored_with_its_recorded_length_and_checksum() {
    let mut checked_blobs = 0;
    let mut virtual_files = 0;
    for repository in repositories() {
        let (_, data) = latest_repository_data(&repository);
        for entry in &data.snapshots {
            for (index_name, index) in data.indices_of(&entry.uuid) {
                let index_directory = repository.join("indices").join(&index.id);
                let blob_id = data.index_metadata_blob_id(entry, &index.id);
                let meta =
                    fs::read(repository.join(layout::index_metadata(&index.id, &blob_id))).unwrap();
                let Value::Object(meta) = read_untyped(Codec::IndexMetadata, &meta).unwrap() else {
                    panic!("index metadata is an object");
                };
                assert!(
                    meta.contains_key(index_name),
                    "{index_name} in its own metadata"
                );

                for shard in shard_directories(&index_directory) {
                    let path =
                        repository.join(layout::shard_snapshot(&index.id, shard, &entry.uuid));
                    let shard_snapshot =
                        ShardSnapshot::from_blob(&fs::read(&path).unwrap()).unwrap();
                    assert_eq!(shard_snapshot.name, entry.name);
                    assert!(
                        shard_snapshot.incremental_file_count <= shard_snapshot.files.len() as u64
                    );
                    assert!(
                        shard_snapshot.incremental_size
                            <= shard_snapshot
                                .files
                                .iter()
                                .map(|file| file.length)
                                .sum::<u64>()
                    );
                    for file in &shard_snapshot.files {
                        if file.is_virtual() {
                            virtual_files += 1;
                            let content = file
                                .meta_hash
                                .as_ref()
                                .expect("virtual file carries its content");
                            assert_eq!(content.len() as u64, file.length, "{}", file.physical_name);
                            continue;
                        }
                        let blob_names = file.blob_names();
                        assert_eq!(blob_names, vec![file.name.clone()], "fixtures are unsplit");
                        let blob = fs::read(
                            repository.join(layout::shard_data(&index.id, shard, &file.name)),
                        )
                        .unwrap();
                        assert_eq!(blob.len() as u64, file.length, "{}", file.physical_name);
                        let crc = codec::verify_footer(&blob).unwrap();
                        assert_eq!(
                            Some(checksum_to_string(crc)),
                            file.checksum,
                            "{}",
                            file.physical_name
                        );
                        checked_blobs += 1;
                    }
                }
            }
        }
    }
    assert!(checked_blobs > 50, "checked {checked_blobs} data blobs");
    assert!(
        virtual_files > 0,
        "the 7.10 fixtures have virtual segments_N files"
    );
}

#[test]
fn shard_index_files_list_every_file_their_snapshots_use() {
    let mut shard_indexes = 0;
    for repository in repositories() {
        for path in walk(&repository.join("indices")) {
            let name = path.file_name().unwrap().to_str().unwrap();
            if !name.starts_with("index-") {
                continue;
            }
            let shard_index = ShardSnapshots::from_blob(&fs::read(&path).unwrap()).unwrap();
            assert!(!shard_index.snapshots.is_empty());
            for (snapshot, entry) in &shard_index.snapshots {
                for file in &entry.files {
                    assert!(
                        shard_index.files.iter().any(|known| &known.name == file),
                        "{snapshot} uses {file} missing from {}",
                        path.display()
                    );
                }
            }
            shard_indexes += 1;
        }
    }
    assert!(shard_indexes >= 7);
}

#[test]
fn every_metadata_blob_decodes_and_re_encodes_to_the_same_model() {
    let mut decoded = 0;
    for repository in repositories() {
        for path in walk(&repository) {
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let parent = path
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            let blob = fs::read(&path).unwrap();
            let in_shard = parent.parse::<u32>().is_ok();
            if name.ends_with(".dat") {
                let framed = codec::unframe(&blob).unwrap();
                let value: Value = ossnap_repository::smile::decode(framed.body).unwrap();
                assert!(matches!(value, Value::Object(_)), "{}", path.display());
                if name.starts_with("snap-") && in_shard {
                    let model = ShardSnapshot::from_blob(&blob).unwrap();
                    assert_eq!(
                        ShardSnapshot::from_blob(&model.to_blob().unwrap()).unwrap(),
                        model
                    );
                } else if name.starts_with("snap-") {
                    let model = SnapshotInfo::from_blob(&blob).unwrap();
                    assert_eq!(
                        SnapshotInfo::from_blob(&model.to_blob().unwrap()).unwrap(),
                        model
                    );
                }
                decoded += 1;
            } else if name.starts_with("index-") && in_shard {
                let model = ShardSnapshots::from_blob(&blob).unwrap();
                assert_eq!(
                    ShardSnapshots::from_blob(&model.to_blob().unwrap()).unwrap(),
                    model
                );
                decoded += 1;
            } else if name.starts_with("index-") {
                let data = RepositoryData::from_json(&blob).unwrap();
                assert_eq!(
                    RepositoryData::from_json(&data.to_json().unwrap()).unwrap(),
                    data
                );
            }
        }
    }
    assert!(decoded > 40, "decoded {decoded} blobs");
}

fn walk(directory: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
