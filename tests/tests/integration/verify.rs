//! verify against the local S3: every real repository in the fixtures, the emulator's own
//! snapshots, and each kind of damage reported by name.

use std::path::{Path, PathBuf};

use aws_sdk_s3::primitives::ByteStream;
use ossnap_core::config::Environment;
use ossnap_core::event::Invocation;
use ossnap_core::{snapshot, ErrorKind};
use ossnap_storage::azure::{AzureCredential, AzureLocation, AzureSettings, AzureStore};
use ossnap_storage::azure_target::AzureTarget;
use ossnap_storage::folder::FolderStore;
use ossnap_storage::{BlobSink, BlobStore, ReadRange};
use ossnap_tests::TestStack;
use ossnap_verify::{S3Store, Verifier, VerifyInput, VerifyOutput};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/real-repositories")
}

fn verifier(stack: &TestStack) -> Verifier {
    Verifier::new(
        &Environment::from_pairs(stack.env()),
        stack.local.s3_client(),
        ossnap_core::clock::Clock::without_sleeps(),
    )
    .unwrap()
}

async fn verify(
    stack: &TestStack,
    base_path: &str,
    snapshot: &str,
) -> ossnap_core::Result<VerifyOutput> {
    let input = VerifyInput {
        repository: None,
        snapshot: Some(snapshot.to_string()),
        bucket: None,
        base_path: Some(base_path.to_string()),
        deep: None,
        ..VerifyInput::default()
    };
    ossnap_verify::run(
        &verifier(stack),
        Invocation {
            input,
            scheduled_time: None,
        },
    )
    .await
}

/// Copies a fixture repository into the bucket under `base_path`.
async fn upload(stack: &TestStack, fixture: &str, base_path: &str) {
    stack
        .upload_folder(&fixtures().join(fixture), base_path)
        .await;
}

fn fixture_snapshots(fixture: &str) -> Vec<String> {
    let dir = fixtures().join(fixture);
    let newest = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            e.unwrap()
                .file_name()
                .to_str()?
                .strip_prefix("index-")?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap();
    let data: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("index-{newest}"))).unwrap())
            .unwrap();
    data["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn every_snapshot_of_every_real_repository_verifies() {
    let stack = TestStack::start().await;
    let mut verified = 0;
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let entry = entry.unwrap();
        if !entry.path().is_dir() {
            continue;
        }
        let fixture = entry.file_name().to_string_lossy().to_string();
        let base_path = format!("fixtures/{fixture}");
        upload(&stack, &fixture, &base_path).await;
        for snapshot in fixture_snapshots(&fixture) {
            let output = verify(&stack, &base_path, &snapshot)
                .await
                .unwrap_or_else(|e| panic!("{fixture}/{snapshot}: {e}"));
            assert!(output.verified);
            assert!(
                output.indices >= 1 && output.shards >= 1,
                "{fixture}/{snapshot}: {output:?}"
            );
            assert!(
                output.blobs >= 1 && output.bytes > 0,
                "{fixture}/{snapshot}: {output:?}"
            );
            verified += 1;
        }
    }
    assert!(verified >= 8, "only {verified} snapshots verified");
}

#[tokio::test]
async fn a_snapshot_the_emulator_took_verifies_with_few_requests() {
    let stack = TestStack::start().await;
    let deps = stack.deps(&[]);
    stack.seed_index(&deps, "logs", 30).await;
    stack.seed_index(&deps, "orders", 5).await;
    stack.register(&deps).await;
    let input = snapshot::SnapshotInput {
        snapshot: Some("verified-one".into()),
        ..Default::default()
    };
    snapshot::run(
        &deps,
        Invocation {
            input,
            scheduled_time: None,
        },
        "run",
    )
    .await
    .unwrap();
    ossnap_tests::stack::wait_until_idle(&deps).await;
    let output = verify(&stack, ossnap_tests::stack::BASE_PATH, "verified-one")
        .await
        .unwrap();
    assert_eq!(output.indices, 2);
    assert_eq!(output.shards, 4);
    // A shard that got no document may hold only virtual (`v__`) files, which have no blob.
    assert!(output.blobs > 0);
    // One listing for index-N and one per shard; one read per metadata blob; none per data blob.
    assert_eq!(output.requests.list, 1 + 4);
    assert_eq!(output.requests.get, 1 + 2 + 2 + 4);
}

#[tokio::test]
async fn a_verify_out_of_time_stops_and_the_next_invocation_continues_where_it_stopped() {
    let stack = TestStack::start().await;
    let deps = stack.deps(&[]);
    stack.local.seed_index("logs", 5, 50).await.unwrap();
    stack.register(&deps).await;
    let input = snapshot::SnapshotInput {
        snapshot: Some("budgeted".into()),
        ..Default::default()
    };
    let invocation = Invocation {
        input,
        scheduled_time: None,
    };
    snapshot::run(&deps, invocation, "run").await.unwrap();
    ossnap_tests::stack::wait_until_idle(&deps).await;

    // A spent budget still checks one shard per invocation, so every invocation makes progress.
    let mut resume_from = None;
    let mut invocations = Vec::new();
    loop {
        let input = VerifyInput {
            snapshot: Some("budgeted".into()),
            base_path: Some(ossnap_tests::stack::BASE_PATH.into()),
            resume_from,
            time_budget_seconds: Some(0),
            ..VerifyInput::default()
        };
        let invocation = Invocation {
            input,
            scheduled_time: None,
        };
        let output = ossnap_verify::run(&verifier(&stack), invocation)
            .await
            .unwrap();
        resume_from = output.resume_from;
        invocations.push((output.shards, output.complete, output.verified));
        if output.complete {
            assert_eq!(output.shards_total, 5);
            break;
        }
        assert!(invocations.len() < 5, "no progress: {invocations:?}");
    }
    assert_eq!(
        invocations,
        [
            (1, false, false),
            (1, false, false),
            (1, false, false),
            (1, false, false),
            (1, true, true)
        ]
    );
    // Without a budget, one invocation checks them all.
    let whole = verify(&stack, ossnap_tests::stack::BASE_PATH, "budgeted")
        .await
        .unwrap();
    assert_eq!(
        (whole.shards, whole.complete, whole.resume_from),
        (5, true, None)
    );
}

/// A fresh copy of ES_7_10_Single under `base_path`, and its bucket for tampering.
async fn damaged_copy(stack: &TestStack, base_path: &str) -> (aws_sdk_s3::Client, String) {
    upload(stack, "ES_7_10_Single", base_path).await;
    (stack.local.s3_client(), stack.local.config().bucket.clone())
}

async fn keys(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<(String, i64)> {
    let listing = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    listing
        .contents()
        .iter()
        .map(|o| (o.key().unwrap().to_string(), o.size().unwrap()))
        .collect()
}

async fn read(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    object.body.collect().await.unwrap().to_vec()
}

async fn rewrite(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    change: impl FnOnce(&mut Vec<u8>),
) {
    let mut bytes = read(s3, bucket, key).await;
    change(&mut bytes);
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .unwrap();
}

async fn expect_damage(stack: &TestStack, base_path: &str, needle: &str) {
    let error = verify(stack, base_path, "global_state_snapshot")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::VerificationFailed, "{error}");
    assert!(
        error.message().contains(needle),
        "wanted {needle:?} in: {error}"
    );
}

#[tokio::test]
async fn each_kind_of_damage_is_reported_by_name() {
    let stack = TestStack::start().await;

    let base = "damage/missing-data";
    let (s3, bucket) = damaged_copy(&stack, base).await;
    let data = keys(&s3, &bucket, base)
        .await
        .into_iter()
        .find(|(k, _)| k.rsplit('/').next().unwrap().starts_with("__"))
        .unwrap();
    s3.delete_object()
        .bucket(&bucket)
        .key(&data.0)
        .send()
        .await
        .unwrap();
    expect_damage(
        &stack,
        base,
        &format!(
            "missing blob {}",
            data.0.strip_prefix(&format!("{base}/")).unwrap()
        ),
    )
    .await;

    let base = "damage/truncated";
    let (s3, bucket) = damaged_copy(&stack, base).await;
    let snap = keys(&s3, &bucket, &format!("{base}/snap-"))
        .await
        .remove(0)
        .0;
    rewrite(&s3, &bucket, &snap, |b| b.truncate(b.len() / 2)).await;
    expect_damage(&stack, base, "damaged blob snap-").await;

    let base = "damage/bit-flip";
    let (s3, bucket) = damaged_copy(&stack, base).await;
    let meta = keys(&s3, &bucket, &format!("{base}/meta-"))
        .await
        .remove(0)
        .0;
    rewrite(&s3, &bucket, &meta, |b| b[40] ^= 0x01).await;
    expect_damage(&stack, base, "CRC32 mismatch").await;

    let base = "damage/index-metadata";
    let (s3, bucket) = damaged_copy(&stack, base).await;
    let index_meta = keys(&s3, &bucket, &format!("{base}/indices/"))
        .await
        .into_iter()
        .find(|(k, _)| k.contains("/meta-"))
        .unwrap();
    s3.delete_object()
        .bucket(&bucket)
        .key(&index_meta.0)
        .send()
        .await
        .unwrap();
    expect_damage(&stack, base, "missing index metadata").await;

    let base = "damage/shard-data-truncated";
    let (s3, bucket) = damaged_copy(&stack, base).await;
    let data = keys(&s3, &bucket, base)
        .await
        .into_iter()
        .find(|(k, size)| k.rsplit('/').next().unwrap().starts_with("__") && *size > 10)
        .unwrap();
    rewrite(&s3, &bucket, &data.0, |b| b.truncate(b.len() - 1)).await;
    expect_damage(&stack, base, "wrong length").await;

    let base = "damage/not-listed";
    let (s3, bucket) = damaged_copy(&stack, base).await;
    let root = keys(&s3, &bucket, &format!("{base}/index-"))
        .await
        .remove(0)
        .0;
    let generation: u64 = root.rsplit('-').next().unwrap().parse().unwrap();
    let bytes = read(&s3, &bucket, &root).await;
    let mut data: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    data["snapshots"] = serde_json::json!([]);
    s3.put_object()
        .bucket(&bucket)
        .key(format!("{base}/index-{}", generation + 1))
        .body(ByteStream::from(serde_json::to_vec(&data).unwrap()))
        .send()
        .await
        .unwrap();
    expect_damage(
        &stack,
        base,
        &format!("absent from the newest root index-{}", generation + 1),
    )
    .await;

    let error = verify(&stack, "nothing/here", "global_state_snapshot")
        .await
        .unwrap_err();
    assert!(error.message().contains("no repository"), "{error}");
}

#[tokio::test]
async fn verify_needs_a_snapshot_name() {
    let stack = TestStack::start().await;
    let error = ossnap_verify::run(
        &verifier(&stack),
        Invocation {
            input: VerifyInput::default(),
            scheduled_time: None,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConfigError);
    assert!(error.message().contains("snapshot"), "{error}");
}

#[tokio::test]
async fn an_unknown_snapshot_state_is_damage() {
    let stack = TestStack::start().await;
    let base = "damage/unknown-state";
    let (s3, bucket) = damaged_copy(&stack, base).await;
    let root = keys(&s3, &bucket, &format!("{base}/index-"))
        .await
        .remove(0)
        .0;
    rewrite(&s3, &bucket, &root, |bytes| {
        let mut data: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        for snapshot in data["snapshots"].as_array_mut().unwrap() {
            snapshot["state"] = serde_json::json!(9);
        }
        *bytes = serde_json::to_vec(&data).unwrap();
    })
    .await;
    expect_damage(&stack, base, "unknown state").await;
}

/// Moves the root `index-N` to `index-{N+1}` in the local S3's directory the first time it is
/// read, as OpenSearch does when it writes a new generation and deletes the old one.
#[derive(Debug)]
struct NewGenerationOnFirstRead {
    bucket_dir: PathBuf,
    root: String,
    moved: std::sync::atomic::AtomicBool,
}

impl aws_sdk_s3::config::Intercept for NewGenerationOnFirstRead {
    fn name(&self) -> &'static str {
        "NewGenerationOnFirstRead"
    }

    fn read_before_execution(
        &self,
        context: &aws_sdk_s3::config::interceptors::BeforeSerializationInterceptorContextRef<'_>,
        _: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        let reads_root = context
            .input()
            .downcast_ref::<aws_sdk_s3::operation::get_object::GetObjectInput>()
            .is_some_and(|get| get.key() == Some(self.root.as_str()));
        if reads_root && !self.moved.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let (stem, generation) = self.root.rsplit_once('-').unwrap();
            let next = format!("{stem}-{}", generation.parse::<u64>().unwrap() + 1);
            std::fs::rename(self.bucket_dir.join(&self.root), self.bucket_dir.join(next))?;
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_root_blob_replaced_while_verifying_is_looked_for_again() {
    let stack = TestStack::start().await;
    let base = "busy/repository";
    let (s3, bucket) = damaged_copy(&stack, base).await;
    let root = keys(&s3, &bucket, &format!("{base}/index-"))
        .await
        .remove(0)
        .0;
    let interceptor = NewGenerationOnFirstRead {
        bucket_dir: stack.local.config().data_dir.join("s3").join(&bucket),
        root,
        moved: Default::default(),
    };
    let racing = aws_sdk_s3::Client::from_conf(
        stack
            .local
            .s3_client()
            .config()
            .to_builder()
            .interceptor(interceptor)
            .build(),
    );
    let verifier = Verifier {
        store: S3Store::new(racing),
        ..verifier(&stack)
    };
    let input = VerifyInput {
        snapshot: Some("global_state_snapshot".into()),
        base_path: Some(base.into()),
        ..VerifyInput::default()
    };
    let output = ossnap_verify::run(
        &verifier,
        Invocation {
            input,
            scheduled_time: None,
        },
    )
    .await
    .unwrap();
    assert!(output.verified);
    assert_eq!(output.requests.list, output.shards as u64 + 2);
}

/// Copies a fixture repository from its folder into Azurite under `base_path`, through the same
/// storage interface copy writes with.
async fn upload_to_azure(stack: &TestStack, fixture: &str, base_path: &str) -> AzureStore {
    let azure = stack.local.azure().expect("the stack runs Azurite");
    let mut settings = AzureSettings::new(
        AzureLocation {
            account: azure.account.clone(),
            container: azure.container.clone(),
            base_path: base_path.to_owned(),
        },
        AzureCredential::AccountKey(azure.key.clone()),
    );
    settings.endpoint = Some(azure.blob_endpoint.clone());
    let destination = AzureStore::connect(settings).unwrap();
    let source = FolderStore::new(fixtures().join(fixture));
    for blob in source.list("").await.unwrap() {
        let body = source.open(&blob.name, ReadRange::Whole).await.unwrap();
        destination
            .write(&blob.name, blob.size, body.unwrap())
            .await
            .unwrap();
    }
    destination
}

async fn verify_on_azure(
    stack: &TestStack,
    env: &[(String, String)],
    input: VerifyInput,
) -> ossnap_core::Result<VerifyOutput> {
    let verifier = Verifier::new(
        &Environment::from_pairs(env.iter().cloned()),
        stack.local.s3_client(),
        ossnap_core::clock::Clock::without_sleeps(),
    )
    .unwrap();
    ossnap_verify::run(
        &verifier,
        Invocation {
            input,
            scheduled_time: None,
        },
    )
    .await
}

#[tokio::test]
async fn a_repository_in_azure_verifies_as_it_does_in_s3_and_its_damage_is_found_there() {
    let stack = TestStack::start_with(|config| config.azure = true).await;
    let fixture = "ES_7_10_Single".to_string();
    let base_path = format!("copies/{fixture}");
    upload(&stack, &fixture, &base_path).await;
    let destination = upload_to_azure(&stack, &fixture, &base_path).await;
    let snapshot = fixture_snapshots(&fixture).remove(0);
    let on_azure = || VerifyInput {
        snapshot: Some(snapshot.clone()),
        azure: Some(AzureTarget {
            base_path: Some(base_path.clone()),
            ..AzureTarget::default()
        }),
        deep: Some(ossnap_verify::Depth::Full),
        ..VerifyInput::default()
    };

    let in_s3 = verify(&stack, &base_path, &snapshot).await.unwrap();
    let in_azure = verify_on_azure(&stack, &stack.env(), on_azure())
        .await
        .unwrap();
    assert!(in_azure.verified && in_azure.complete, "{in_azure:?}");
    assert_eq!(
        (
            in_azure.indices,
            in_azure.shards,
            in_azure.blobs,
            in_azure.bytes
        ),
        (in_s3.indices, in_s3.shards, in_s3.blobs, in_s3.bytes)
    );
    let azure = stack.local.azure().unwrap();
    assert_eq!(
        in_azure.location,
        format!("azure://{}/{}/{base_path}", azure.account, azure.container)
    );
    assert!(in_azure.requests.list >= 1 && in_azure.requests.bytes_read > 0);

    // The largest data blob, one byte short: found in Azure, named with its Azure location.
    let largest = destination
        .list("indices/")
        .await
        .unwrap()
        .into_iter()
        .filter(|blob| blob.name.rsplit('/').next().unwrap().starts_with("__"))
        .max_by_key(|blob| blob.size)
        .unwrap();
    let mut bytes = destination.get(&largest.name).await.unwrap().unwrap();
    bytes.pop();
    let shorter = bytes.len() as u64;
    let body = futures::stream::iter([Ok(bytes::Bytes::from(bytes))]);
    destination
        .write(&largest.name, shorter, Box::pin(body))
        .await
        .unwrap();
    let damaged = verify_on_azure(&stack, &stack.env(), on_azure())
        .await
        .unwrap_err();
    assert_eq!(damaged.kind(), ErrorKind::VerificationFailed, "{damaged}");
    assert!(damaged.to_string().contains(&largest.name), "{damaged}");
    assert!(damaged.to_string().contains("azure://"), "{damaged}");
}

#[tokio::test]
async fn verify_on_azure_names_the_account_it_may_not_read_and_takes_one_storage_only() {
    let stack = TestStack::start_with(|config| config.azure = true).await;
    let account = stack.local.azure().unwrap().account.clone();
    let wrong_key: Vec<(String, String)> = stack
        .env()
        .into_iter()
        .map(|(name, value)| match name.as_str() {
            "AZURE_STORAGE_KEY" => (name, "d3Jvbmcga2V5".to_owned()),
            _ => (name, value),
        })
        .collect();
    let input = || VerifyInput {
        snapshot: Some("nightly".into()),
        azure: Some(AzureTarget::default()),
        ..VerifyInput::default()
    };
    let refused = verify_on_azure(&stack, &wrong_key, input())
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::AuthError, "{refused}");
    assert!(
        refused.to_string().contains(&format!("`{account}`")),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("AZURE_STORAGE_KEY"),
        "{refused}"
    );
    assert!(!refused.to_string().contains("d3Jvbmcga2V5"), "{refused}");

    let both = verify_on_azure(
        &stack,
        &stack.env(),
        VerifyInput {
            bucket: Some(stack.local.config().bucket.clone()),
            ..input()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(both.kind(), ErrorKind::ConfigError);
    assert!(both.to_string().contains("give one"), "{both}");
}
