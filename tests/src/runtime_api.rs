//! A loopback implementation of the Lambda Runtime API (2018-06-01) for one function process.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{oneshot, Notify};

const INVOCATION_TIMEOUT: Duration = Duration::from_secs(120);

/// What a function reported through `/invocation/{id}/error` (or `/init/error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    pub error_type: String,
    pub error_message: String,
}

type Outcome = Result<Value, FunctionError>;

#[derive(Default)]
struct State {
    queue: VecDeque<(String, Value)>,
    waiting: Vec<(String, oneshot::Sender<Outcome>)>,
    first_next: Option<Instant>,
    init_error: Option<FunctionError>,
}

struct Shared {
    state: Mutex<State>,
    event_ready: Notify,
}

/// One function process behind a loopback Runtime API.
pub struct LambdaProcess {
    shared: Arc<Shared>,
    child: Child,
    started: Instant,
    next_id: u64,
    server: tokio::task::JoinHandle<()>,
}

impl LambdaProcess {
    /// Starts `binary` as Lambda would, with `env` added to the variables Lambda sets.
    pub async fn start(binary: &Path, env: &[(&str, &str)]) -> std::io::Result<LambdaProcess> {
        let name = binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        LambdaProcess::start_command(Command::new(binary), &name, env).await
    }

    /// Starts `command` (a runtime interface client of another language, say) as function `name`.
    pub async fn start_command(
        mut command: Command,
        name: &str,
        env: &[(&str, &str)],
    ) -> std::io::Result<LambdaProcess> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            event_ready: Notify::new(),
        });
        let server = tokio::spawn(serve(listener, shared.clone()));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/28/[$LATEST]local")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_LOG", "warn")
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let started = Instant::now();
        let child = command.spawn()?;
        Ok(LambdaProcess {
            shared,
            child,
            started,
            next_id: 0,
            server,
        })
    }

    /// Hands `event` to the function and waits for its answer.
    pub async fn invoke(&mut self, event: Value) -> Result<Value, FunctionError> {
        self.next_id += 1;
        let id = format!("00000000-0000-4000-8000-{:012}", self.next_id);
        let (sender, receiver) = oneshot::channel();
        {
            let mut state = self.shared.state.lock().unwrap();
            if let Some(error) = state.init_error.clone() {
                return Err(error);
            }
            state.queue.push_back((id.clone(), event));
            state.waiting.push((id, sender));
        }
        self.shared.event_ready.notify_one();
        let exited = async {
            let status = self.child.wait().await;
            let state = self.shared.state.lock().unwrap();
            state.init_error.clone().unwrap_or(FunctionError {
                error_type: "Runtime.ExitError".into(),
                error_message: format!("the process exited: {status:?}"),
            })
        };
        tokio::select! {
            outcome = receiver => outcome.expect("the runtime API keeps the sender until it answers"),
            error = exited => Err(error),
            _ = tokio::time::sleep(INVOCATION_TIMEOUT) => Err(FunctionError {
                error_type: "Sandbox.Timedout".into(),
                error_message: format!("no answer within {INVOCATION_TIMEOUT:?}"),
            }),
        }
    }

    /// The process's id while it runs (to kill it from outside, as Lambda kills a function).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Time from spawning the process to its first `GET /invocation/next`: Lambda's init.
    pub fn init_duration(&self) -> Option<Duration> {
        let state = self.shared.state.lock().unwrap();
        state.first_next.map(|t| t - self.started)
    }

    /// Peak resident memory so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

impl Drop for LambdaProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        self.server.abort();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(route(request, shared).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(request: Request<Incoming>, shared: Arc<Shared>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let rest = path.strip_prefix("/2018-06-01/runtime/").unwrap_or("");
    match (
        method.as_str(),
        rest.split('/').collect::<Vec<_>>().as_slice(),
    ) {
        ("GET", ["invocation", "next"]) => next_event(&shared).await,
        ("POST", ["invocation", id, "response"]) => {
            let output = serde_json::from_slice(&body).unwrap_or(Value::Null);
            answer(&shared, id, Ok(output))
        }
        ("POST", ["invocation", id, "error"]) => answer(&shared, id, Err(parse_error(&body))),
        ("POST", ["init", "error"]) => {
            shared.state.lock().unwrap().init_error = Some(parse_error(&body));
            accepted()
        }
        _ => Response::builder()
            .status(404)
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap(),
    }
}

async fn next_event(shared: &Shared) -> Response<Full<Bytes>> {
    loop {
        let notified = shared.event_ready.notified();
        {
            let mut state = shared.state.lock().unwrap();
            state.first_next.get_or_insert_with(Instant::now);
            if let Some((id, event)) = state.queue.pop_front() {
                let deadline = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    + INVOCATION_TIMEOUT;
                return Response::builder()
                    .header("Lambda-Runtime-Aws-Request-Id", &id)
                    .header(
                        "Lambda-Runtime-Deadline-Ms",
                        deadline.as_millis().to_string(),
                    )
                    .header(
                        "Lambda-Runtime-Invoked-Function-Arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:ossnap-local",
                    )
                    .header(
                        "Lambda-Runtime-Trace-Id",
                        "Root=1-00000000-000000000000000000000000",
                    )
                    .header("Content-Type", "application/json")
                    .body(Full::new(Bytes::from(event.to_string())))
                    .unwrap();
            }
        }
        notified.await;
    }
}

fn answer(shared: &Shared, id: &str, outcome: Outcome) -> Response<Full<Bytes>> {
    let mut state = shared.state.lock().unwrap();
    if let Some(position) = state.waiting.iter().position(|(waiting, _)| waiting == id) {
        let (_, sender) = state.waiting.remove(position);
        let _ = sender.send(outcome);
    }
    accepted()
}

fn parse_error(body: &[u8]) -> FunctionError {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    FunctionError {
        error_type: value["errorType"].as_str().unwrap_or_default().to_string(),
        error_message: value["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}

fn accepted() -> Response<Full<Bytes>> {
    Response::builder()
        .status(202)
        .body(Full::new(Bytes::from_static(b"{\"status\":\"OK\"}")))
        .unwrap()
}
