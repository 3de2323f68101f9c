//! A local stack per test, and ossnap's dependencies pointed at it.

use aws_credential_types::provider::SharedCredentialsProvider;
use ossnap_core::clock::Clock;
use ossnap_core::config::{Environment, Settings};
use ossnap_core::event::Invocation;
use ossnap_core::opensearch::{Auth, OpenSearch, SigV4Signer};
use ossnap_core::retention::{Policy, Retention, RetentionInput, RetentionOutput};
use ossnap_core::Deps;
use ossnap_local_stack::{Control, Engine, LocalStack, LocalStackConfig};
use ossnap_storage::s3::S3Store;
use serde_json::{json, Value};

/// The role OpenSearch assumes to write to the bucket (the emulator checks PassRole for it).
pub use ossnap_local_stack::SNAPSHOT_ROLE;
pub const BASE_PATH: &str = "clusters/local";

/// A running local stack and the directory it keeps its data in.
pub struct TestStack {
    pub local: LocalStack,
    _data: tempfile::TempDir,
}

impl TestStack {
    pub async fn start() -> TestStack {
        TestStack::start_with(|_| {}).await
    }

    /// A stack whose OpenSearch is `engine` (a real node takes seconds to start).
    pub async fn start_engine(engine: Engine) -> TestStack {
        TestStack::start_with(|config| config.engine = engine).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut LocalStackConfig)) -> TestStack {
        let data = tempfile::tempdir().expect("a temporary directory");
        let mut config = LocalStackConfig::for_tests(data.path());
        adjust(&mut config);
        let local = LocalStack::start(config)
            .await
            .expect("the local stack starts");
        TestStack { local, _data: data }
    }

    /// The environment a deployed function would have, pointed at this stack: what
    /// `ossnap-local` prints as exports, with the repository under [`BASE_PATH`].
    pub fn env(&self) -> Vec<(String, String)> {
        self.local
            .environment(Some(BASE_PATH))
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect()
    }

    /// The emulator's fault injection and request log.
    pub fn control(&self) -> &Control {
        self.local.control().expect(
            "faults and the request log are the emulator's: start the stack with Engine::Emulator",
        )
    }

    pub fn engine(&self) -> Engine {
        self.local.engine()
    }

    /// ossnap's dependencies with `extra` variables on top of [`Self::env`]; sleeps return at once.
    pub fn deps(&self, extra: &[(&str, &str)]) -> Deps {
        self.deps_at(&self.local.opensearch_endpoint(), extra)
    }

    /// [`Self::deps`] for the cluster at `endpoint` (another cluster sharing this stack's S3).
    pub fn deps_at(&self, endpoint: &str, extra: &[(&str, &str)]) -> Deps {
        let mut vars = self.env();
        vars.retain(|(name, _)| name != "OPENSEARCH_ENDPOINT");
        vars.push(("OPENSEARCH_ENDPOINT".to_string(), endpoint.to_string()));
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let settings = Settings::from_env(&Environment::from_pairs(vars)).expect("valid settings");
        let config = self.local.config();
        let credentials = aws_credential_types::Credentials::new(
            &config.credentials.access_key_id,
            &config.credentials.secret_access_key,
            config.credentials.session_token.clone(),
            None,
            "local-stack",
        );
        let auth = match self.engine() {
            Engine::Emulator => Auth::SigV4(SigV4Signer::for_opensearch(
                SharedCredentialsProvider::new(credentials),
                config.region.clone(),
            )),
            Engine::OpenSearch2 | Engine::OpenSearch3 => Auth::None,
        };
        let clock = Clock::without_sleeps();
        Deps {
            opensearch: OpenSearch::new(endpoint, auth, clock.clone()).expect("a valid endpoint"),
            settings,
            clock,
        }
    }

    /// retention as the function runs it: verify's verdicts read from this stack's S3, then
    /// `policy` applied to the cluster of `deps`.
    pub async fn retain(
        &self,
        deps: &Deps,
        policy: &Policy,
        input: RetentionInput,
    ) -> ossnap_core::Result<RetentionOutput> {
        let retention = Retention {
            deps: deps.clone(),
            policy: policy.clone(),
        };
        let invocation = Invocation {
            input,
            scheduled_time: None,
        };
        ossnap_retention::run(
            &retention,
            &S3Store::new(self.local.s3_client()),
            invocation,
        )
        .await
    }

    /// Creates `index` with `docs` documents through the OpenSearch API.
    pub async fn seed_index(&self, deps: &Deps, index: &str, docs: usize) {
        let os = &deps.opensearch;
        os.call(
            http::Method::PUT,
            &format!("/{index}"),
            &[],
            Some(&json!({"settings": {"number_of_shards": 2, "number_of_replicas": 0}})),
        )
        .await
        .expect("index created");
        for n in 0..docs {
            os.call(
                http::Method::POST,
                &format!("/{index}/_doc"),
                &[],
                Some(&json!({"message": format!("event {n}"), "n": n})),
            )
            .await
            .expect("document indexed");
        }
    }

    /// Registers the repository as the environment describes it.
    pub async fn register(&self, deps: &Deps) -> ossnap_core::register::RegisterOutput {
        let invocation = ossnap_core::event::Invocation {
            input: Default::default(),
            scheduled_time: None,
        };
        ossnap_core::register::run(deps, invocation)
            .await
            .expect("the repository registers")
    }

    /// Takes the snapshot `name` with the snapshot function and waits until it has ended.
    pub async fn take_snapshot(&self, deps: &Deps, name: &str) {
        let input = ossnap_core::snapshot::SnapshotInput {
            snapshot: Some(name.into()),
            ..Default::default()
        };
        let invocation = ossnap_core::event::Invocation {
            input,
            scheduled_time: None,
        };
        ossnap_core::snapshot::run(deps, invocation, "test")
            .await
            .expect("the snapshot starts");
        wait_until_idle(deps).await;
    }

    /// Uploads every file under `root` into the bucket under `base_path`, keyed by its path
    /// relative to `root` (a fixture repository, or a copy read back as a repository).
    pub async fn upload_folder(&self, root: &std::path::Path, base_path: &str) {
        let s3 = self.local.s3_client();
        let mut pending = vec![root.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).expect("a readable folder") {
                let path = entry.expect("a folder entry").path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let relative = path
                    .strip_prefix(root)
                    .expect("under the root")
                    .to_string_lossy()
                    .replace('\\', "/");
                s3.put_object()
                    .bucket(&self.local.config().bucket)
                    .key(format!("{base_path}/{relative}"))
                    .body(std::fs::read(&path).expect("a readable file").into())
                    .send()
                    .await
                    .expect("the object is stored");
            }
        }
    }

    /// Requests the emulator saw with `method` and a path starting with `prefix`.
    pub fn requests(&self, method: &str, prefix: &str) -> Vec<String> {
        self.control()
            .requests()
            .into_iter()
            .filter(|r| r.method == method && r.path.starts_with(prefix))
            .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
            .collect()
    }
}

/// Maps nobody to `manage_snapshots` (fine-grained access control then refuses every caller).
pub async fn unmap_the_caller(deps: &Deps) {
    deps.opensearch
        .call(
            http::Method::PUT,
            "/_plugins/_security/api/rolesmapping/manage_snapshots",
            &[],
            Some(&json!({"backend_roles": [], "users": []})),
        )
        .await
        .expect("the mapping is replaced");
}

/// The cluster's index names, sorted.
pub async fn index_names(deps: &Deps) -> Vec<String> {
    let mut names: Vec<String> = deps
        .opensearch
        .cat_indices()
        .await
        .unwrap()
        .into_iter()
        .map(|index| index.index)
        .collect();
    names.sort();
    names
}

/// The body OpenSearch answers a concurrent snapshot with, for fault injection.
pub fn error_body(error_type: &str, reason: &str, status: u16) -> String {
    let body: Value = json!({
        "error": {"root_cause": [{"type": error_type, "reason": reason}], "type": error_type, "reason": reason},
        "status": status
    });
    body.to_string()
}

/// Waits until no snapshot runs on the cluster (the emulator's take milliseconds).
pub async fn wait_until_idle(deps: &Deps) {
    for _ in 0..500 {
        if deps
            .opensearch
            .running_snapshots()
            .await
            .unwrap()
            .is_empty()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("snapshots kept running");
}
