//! Static checks on `infra/` that cfn-lint, checkov and asl-validator miss (issue 3).
//!
//! Each check returns the violations it finds instead of panicking, so that the same checks run
//! twice: on the real template and state machine, where they must find nothing, and on the seed
//! blog's insecure setup (`infra/fixtures/insecure-blog.yaml`), where each must find something,
//! which proves it bites.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ossnap_core::ErrorKind;
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

const TEMPLATE: &str = "template.yaml";
const FIXTURE: &str = "fixtures/insecure-blog.yaml";

/// What AWS recommends retrying on every Lambda task (bp-lambda-serviceexception).
const LAMBDA_SERVICE_EXCEPTIONS: [&str; 4] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];

/// Errors that a retry cannot fix: the event, the environment, IAM or the role mapping must change.
const NEVER_RETRIED: [ErrorKind; 2] = [ErrorKind::ConfigError, ErrorKind::AuthError];

/// Catch-alls that would retry `NEVER_RETRIED` too.
const CATCH_ALL_ERRORS: [&str; 2] = ["States.ALL", "States.TaskFailed"];

/// Actions that have no resource-level permissions, so AWS documents `"Resource": "*"` for them:
/// Step Functions' delivery of execution logs to CloudWatch Logs.
const ACTIONS_WITHOUT_RESOURCE_LEVEL: [&str; 8] = [
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
];

/// The only S3 resources a policy may name: the bucket (listing, which must then be limited to the
/// base path) and the objects under the base path.
const BUCKET_ARN: &str = "arn:${AWS::Partition}:s3:::${SnapshotBucketName}";
const REPOSITORY_OBJECTS_ARN: &str =
    "arn:${AWS::Partition}:s3:::${SnapshotBucketName}/${SnapshotBasePath}/*";
/// The only domain paths a policy may name: the repository and what is under it.
const DOMAIN_SNAPSHOT_PATHS: &str = "${DomainArn}/_snapshot/";

/// The input each function accepts (they reject unknown fields), keyed by its logical id.
const FUNCTION_INPUTS: [(&str, &[&str]); 5] = [
    ("RegisterFunction", &[]),
    ("SnapshotFunction", &["scheduled_time", "run_id"]),
    ("CheckStatusFunction", &["repository", "snapshot"]),
    ("VerifyFunction", &["repository", "snapshot"]),
    ("RetentionFunction", &["repository"]),
];

/// Functions of which two copies must never run at once.
const SINGLE_FLIGHT_FUNCTIONS: [&str; 3] =
    ["RegisterFunction", "SnapshotFunction", "RetentionFunction"];

// ------------------------------------------------------------------------------------ loading

fn infra_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra")
}

fn read(relative: &str) -> String {
    let path = infra_dir().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn load_template(relative: &str) -> Yaml {
    serde_yaml::from_str(&read(relative)).unwrap_or_else(|e| panic!("parsing {relative}: {e}"))
}

/// A state machine of a template: its logical id, properties and definition.
struct StateMachine<'t> {
    id: String,
    properties: &'t Yaml,
    definition: Json,
}

fn state_machines(template: &Yaml) -> Vec<StateMachine<'_>> {
    resources_of_type(template, &["AWS::Serverless::StateMachine"])
        .into_iter()
        .map(|(id, resource)| {
            let properties = &resource["Properties"];
            let definition = match properties["DefinitionUri"].as_str() {
                Some(uri) => serde_json::from_str(&read(uri))
                    .unwrap_or_else(|e| panic!("parsing {uri}: {e}")),
                None => serde_json::to_value(&properties["Definition"])
                    .expect("an inline Definition converts to JSON"),
            };
            StateMachine {
                id,
                properties,
                definition,
            }
        })
        .collect()
}

// ------------------------------------------------------------------------------------ helpers

fn resources(template: &Yaml) -> impl Iterator<Item = (String, &Yaml)> {
    template["Resources"]
        .as_mapping()
        .expect("the template has Resources")
        .iter()
        .map(|(id, resource)| {
            (
                id.as_str().expect("logical ids are strings").to_string(),
                resource,
            )
        })
}

fn resources_of_type<'t>(template: &'t Yaml, types: &[&str]) -> Vec<(String, &'t Yaml)> {
    resources(template)
        .filter(|(_, resource)| types.contains(&resource["Type"].as_str().unwrap_or_default()))
        .collect()
}

fn has_resource(template: &Yaml, id: &str) -> bool {
    template["Resources"].get(id).is_some()
}

/// A scalar or a list, as IAM allows for Action, Resource and condition values.
fn one_or_many(value: &Yaml) -> Vec<&Yaml> {
    match value {
        Yaml::Sequence(items) => items.iter().collect(),
        Yaml::Null => Vec::new(),
        other => vec![other],
    }
}

/// `!If [condition, a, b]` stands for both branches; `!Ref AWS::NoValue` for nothing.
fn both_branches(value: &Yaml) -> Vec<&Yaml> {
    if let Some(arguments) = intrinsic(value, "If") {
        let arguments = arguments
            .as_sequence()
            .expect("!If takes [condition, then, else]");
        return arguments[1..].iter().flat_map(both_branches).collect();
    }
    if intrinsic(value, "Ref").is_some_and(|name| name == "AWS::NoValue") {
        return Vec::new();
    }
    vec![value]
}

/// The argument of `!name argument` (serde_yaml compares tags without their `!`).
fn intrinsic<'v>(value: &'v Yaml, name: &str) -> Option<&'v Yaml> {
    match value {
        Yaml::Tagged(tagged) if tagged.tag == name => Some(&tagged.value),
        _ => None,
    }
}

/// A policy value as a `${...}`-style string, the form `!Sub` uses: `!Ref X` is `${X}` and
/// `!GetAtt X.Arn` is `${X.Arn}`. Anything else is spelled out so that it fails the checks.
fn as_sub_string(value: &Yaml) -> String {
    if let Yaml::String(s) = value {
        return s.clone();
    }
    if let Some(name) = intrinsic(value, "Ref").and_then(Yaml::as_str) {
        return format!("${{{name}}}");
    }
    if let Some(template) = intrinsic(value, "Sub").and_then(Yaml::as_str) {
        return template.to_string();
    }
    match intrinsic(value, "GetAtt") {
        Some(Yaml::String(attribute)) => format!("${{{attribute}}}"),
        Some(Yaml::Sequence(parts)) => {
            let parts: Vec<&str> = parts.iter().filter_map(Yaml::as_str).collect();
            format!("${{{}}}", parts.join("."))
        }
        _ => format!("unsupported value {value:?}"),
    }
}

/// The logical id that a `${X}` or `${X.Attribute}` string names, if it names nothing else.
fn referenced_id(sub: &str) -> Option<&str> {
    let inner = sub.strip_prefix("${")?.strip_suffix('}')?;
    let id = inner.split('.').next()?;
    id.chars().all(|c| c.is_ascii_alphanumeric()).then_some(id)
}

fn strings(value: &Yaml) -> Vec<String> {
    one_or_many(value).into_iter().map(as_sub_string).collect()
}

// ------------------------------------------------------------------------------------ IAM

/// An IAM statement and where it was found.
struct Statement<'t> {
    place: String,
    body: &'t Yaml,
}

impl Statement<'_> {
    fn allows(&self) -> bool {
        self.body["Effect"].as_str() == Some("Allow")
    }
    fn actions(&self) -> Vec<String> {
        strings(&self.body["Action"])
    }
    fn resources(&self) -> Vec<String> {
        strings(&self.body["Resource"])
    }
    fn condition(&self, operator: &str, key: &str) -> Vec<String> {
        self.body["Condition"][operator]
            .get(key)
            .map(strings)
            .unwrap_or_default()
    }
}

fn statements_of<'t>(place: String, document: &'t Yaml, out: &mut Vec<Statement<'t>>) {
    for statement in one_or_many(&document["Statement"]) {
        for body in both_branches(statement) {
            out.push(Statement {
                place: place.clone(),
                body,
            });
        }
    }
}

/// Every identity-policy statement: inline role policies, IAM policies, and the statements SAM
/// functions and state machines carry (SAM policy templates are scoped by SAM and left out).
fn identity_statements(template: &Yaml) -> Vec<Statement<'_>> {
    let mut out = Vec::new();
    for (id, resource) in resources(template) {
        let properties = &resource["Properties"];
        match resource["Type"].as_str().unwrap_or_default() {
            "AWS::IAM::Role" => {
                for policy in one_or_many(&properties["Policies"]) {
                    statements_of(id.clone(), &policy["PolicyDocument"], &mut out);
                }
            }
            "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => {
                statements_of(id.clone(), &properties["PolicyDocument"], &mut out);
            }
            "AWS::Serverless::Function" | "AWS::Serverless::StateMachine" => {
                for policy in one_or_many(&properties["Policies"]) {
                    if policy.get("Statement").is_some() {
                        statements_of(id.clone(), policy, &mut out);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The role the domain assumes: the one trusted by es.amazonaws.com.
fn snapshot_role_ids(template: &Yaml) -> Vec<String> {
    resources_of_type(template, &["AWS::IAM::Role"])
        .into_iter()
        .filter(|(_, role)| {
            one_or_many(&role["Properties"]["AssumeRolePolicyDocument"]["Statement"])
                .iter()
                .any(|s| strings(&s["Principal"]["Service"]).contains(&"es.amazonaws.com".into()))
        })
        .map(|(id, _)| id)
        .collect()
}

fn least_privilege_violations(template: &Yaml) -> Vec<String> {
    let mut violations = Vec::new();
    for statement in identity_statements(template).iter().filter(|s| s.allows()) {
        let place = &statement.place;
        let actions = statement.actions();
        for action in &actions {
            if action.contains('*') {
                violations.push(format!("{place}: wildcard action {action}"));
            }
        }
        for resource in statement.resources() {
            let allowed = if resource == "*" {
                actions
                    .iter()
                    .all(|a| ACTIONS_WITHOUT_RESOURCE_LEVEL.contains(&a.as_str()))
            } else if resource == BUCKET_ARN {
                let limited_to_base_path = statement
                    .condition("StringLike", "s3:prefix")
                    .iter()
                    .all(|prefix| prefix.starts_with("${SnapshotBasePath}"))
                    && !statement.condition("StringLike", "s3:prefix").is_empty();
                actions == ["s3:ListBucket"] && limited_to_base_path
            } else if resource.starts_with("arn:") || resource.contains("s3:::") {
                resource == REPOSITORY_OBJECTS_ARN
            } else if resource.starts_with("${DomainArn}") {
                resource.starts_with(DOMAIN_SNAPSHOT_PATHS)
            } else {
                // A single resource of this stack, or the key a parameter names.
                referenced_id(&resource).is_some_and(|id| {
                    has_resource(template, id) || template["Parameters"].get(id).is_some()
                })
            };
            if !allowed {
                violations.push(format!(
                    "{place}: {actions:?} on {resource} reaches beyond the bucket's base path, the domain's repository paths and this stack's own resources"
                ));
            }
        }
    }
    violations
}

fn pass_role_violations(template: &Yaml) -> Vec<String> {
    let snapshot_roles = snapshot_role_ids(template);
    let mut violations = Vec::new();
    let mut holders = BTreeSet::new();
    for statement in identity_statements(template).iter().filter(|s| s.allows()) {
        if !statement.actions().iter().any(|a| a == "iam:PassRole") {
            continue;
        }
        holders.insert(statement.place.clone());
        let pinned_to_snapshot_role = statement.resources().iter().all(|resource| {
            referenced_id(resource).is_some_and(|id| snapshot_roles.iter().any(|r| r == id))
        });
        if !pinned_to_snapshot_role {
            violations.push(format!(
                "{}: iam:PassRole on {:?}, not only the snapshot role {snapshot_roles:?}",
                statement.place,
                statement.resources()
            ));
        }
        if statement.condition("StringEquals", "iam:PassedToService") != ["es.amazonaws.com"] {
            violations.push(format!(
                "{}: iam:PassRole without iam:PassedToService = es.amazonaws.com",
                statement.place
            ));
        }
    }
    if holders.iter().any(|holder| holder != "RegisterFunction") {
        violations.push(format!(
            "iam:PassRole held by {holders:?}: only RegisterFunction registers the repository"
        ));
    }
    violations
}

fn snapshot_role_trust_violations(template: &Yaml) -> Vec<String> {
    let mut violations = Vec::new();
    for id in snapshot_role_ids(template) {
        let trust = &template["Resources"][id.as_str()]["Properties"]["AssumeRolePolicyDocument"];
        let mut statements = Vec::new();
        statements_of(id.clone(), trust, &mut statements);
        for statement in &statements {
            let services = strings(&statement.body["Principal"]["Service"]);
            if services != ["es.amazonaws.com"] || statement.body["Principal"].get("AWS").is_some()
            {
                violations.push(format!(
                    "{id}: trusted by {services:?}, not es.amazonaws.com only"
                ));
            }
            if statement
                .condition("StringEquals", "aws:SourceAccount")
                .is_empty()
            {
                violations.push(format!("{id}: trust has no aws:SourceAccount condition"));
            }
            if statement.condition("ArnLike", "aws:SourceArn") != ["${DomainArn}"] {
                violations.push(format!(
                    "{id}: trust is not limited to the domain (aws:SourceArn)"
                ));
            }
        }
    }
    if violations.is_empty() && snapshot_role_ids(template).is_empty() {
        violations.push("no snapshot role trusted by es.amazonaws.com".into());
    }
    violations
}

// ------------------------------------------------------------------------------------ S3

fn bucket_violations(template: &Yaml) -> Vec<String> {
    let mut violations = Vec::new();
    let buckets = resources_of_type(template, &["AWS::S3::Bucket"]);
    let policies = resources_of_type(template, &["AWS::S3::BucketPolicy"]);
    for (id, bucket) in buckets {
        let properties = &bucket["Properties"];
        let block = &properties["PublicAccessBlockConfiguration"];
        for flag in [
            "BlockPublicAcls",
            "BlockPublicPolicy",
            "IgnorePublicAcls",
            "RestrictPublicBuckets",
        ] {
            if block[flag].as_bool() != Some(true) {
                violations.push(format!("{id}: public access block {flag} is not true"));
            }
        }
        if properties.get("AccessControl").is_some() {
            violations.push(format!("{id}: sets an ACL (AccessControl)"));
        }
        let ownership = &properties["OwnershipControls"]["Rules"][0]["ObjectOwnership"];
        if ownership.as_str() != Some("BucketOwnerEnforced") {
            violations.push(format!("{id}: ACLs are not disabled (BucketOwnerEnforced)"));
        }
        for keep in ["DeletionPolicy", "UpdateReplacePolicy"] {
            if bucket[keep].as_str() != Some("Retain") {
                violations.push(format!("{id}: {keep} is not Retain"));
            }
        }
        let rules = one_or_many(&properties["LifecycleConfiguration"]["Rules"]);
        if rules.iter().any(|rule| {
            rule.get("Transitions").is_some()
                || rule.get("Transition").is_some()
                || rule.get("NoncurrentVersionTransitions").is_some()
        }) {
            violations.push(format!(
                "{id}: lifecycle transitions (Glacier breaks snapshot repositories)"
            ));
        }
        if properties["VersioningConfiguration"]["Status"].as_str() == Some("Enabled")
            && !rules
                .iter()
                .any(|rule| rule.get("NoncurrentVersionExpiration").is_some())
        {
            violations.push(format!("{id}: versioned without noncurrent-version expiry"));
        }
        let denies_plain_http = policies.iter().any(|(_, policy)| {
            let properties = &policy["Properties"];
            let mut statements = Vec::new();
            statements_of(
                String::new(),
                &properties["PolicyDocument"],
                &mut statements,
            );
            as_sub_string(&properties["Bucket"]) == format!("${{{id}}}")
                && statements.iter().any(|s| {
                    s.body["Effect"].as_str() == Some("Deny")
                        && strings(&s.body["Principal"]) == ["*"]
                        && s.actions().iter().any(|a| a == "s3:*")
                        && s.condition("Bool", "aws:SecureTransport") == ["false"]
                        && s.resources().contains(&format!("${{{id}.Arn}}"))
                        && s.resources().contains(&format!("${{{id}.Arn}}/*"))
                })
        });
        if !denies_plain_http {
            violations.push(format!(
                "{id}: no bucket policy denies requests without TLS (aws:SecureTransport false)"
            ));
        }
    }
    violations
}

// ------------------------------------------------------------------------------------ workflow

/// What a Task state calls, resolved through the state machine's DefinitionSubstitutions.
#[derive(Debug, PartialEq)]
enum Target {
    /// A Lambda function of this template, by logical id.
    Function(String),
    /// A Step Functions service integration, e.g. `sns:publish`.
    Service(String),
    Unknown(String),
}

fn task_target(template: &Yaml, machine: &StateMachine, resource: &Json) -> Target {
    let reference = match resource {
        Json::String(s) => match s.strip_prefix("${").and_then(|s| s.strip_suffix('}')) {
            Some(placeholder) => {
                match machine.properties["DefinitionSubstitutions"].get(placeholder) {
                    Some(value) => as_sub_string(value),
                    None => return Target::Unknown(format!("no substitution for {s}")),
                }
            }
            None => s.clone(),
        },
        // An inline definition's `!GetAtt X.Arn` converts to {"!GetAtt": "X.Arn"}.
        Json::Object(map) => match map.get("!GetAtt").and_then(Json::as_str) {
            Some(target) => format!("${{{target}}}"),
            None => return Target::Unknown(resource.to_string()),
        },
        other => return Target::Unknown(other.to_string()),
    };
    if let Some(service) = reference.split(":states:::").nth(1) {
        return Target::Service(service.to_string());
    }
    match referenced_id(&reference) {
        Some(id)
            if template["Resources"][id]["Type"].as_str() == Some("AWS::Serverless::Function") =>
        {
            Target::Function(id.to_string())
        }
        _ => Target::Unknown(reference),
    }
}

fn error_names(retriers_or_catchers: &Json) -> Vec<String> {
    retriers_or_catchers
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|entry| entry["ErrorEquals"].as_array().into_iter().flatten())
        .filter_map(|name| name.as_str().map(str::to_string))
        .collect()
}

fn function_timeout(template: &Yaml, function: &str) -> u64 {
    let own = &template["Resources"][function]["Properties"]["Timeout"];
    let global = &template["Globals"]["Function"]["Timeout"];
    own.as_u64().or(global.as_u64()).unwrap_or(3)
}

fn is_known_error_name(name: &str) -> bool {
    name.starts_with("States.")
        || name.starts_with("Lambda.")
        || ErrorKind::ALL.iter().any(|kind| kind.name() == name)
}

fn workflow_violations(template: &Yaml) -> Vec<String> {
    let machines = state_machines(template);
    let mut violations = Vec::new();
    if machines.is_empty() {
        violations.push("no state machine".into());
    }
    for machine in &machines {
        violations.extend(state_machine_violations(template, machine));
    }
    violations
}

fn state_machine_violations(template: &Yaml, machine: &StateMachine) -> Vec<String> {
    let asl = &machine.definition;
    let properties = machine.properties;
    let id = &machine.id;
    let mut violations = Vec::new();

    if asl["TimeoutSeconds"].as_u64().unwrap_or(0) == 0 {
        violations.push(format!("{id}: the execution has no TimeoutSeconds"));
    }
    if asl.get("QueryLanguage").is_some_and(|q| q != "JSONPath") {
        violations.push(format!(
            "{id}: JSONata is not run by aws-local-stepfunctions"
        ));
    }
    if properties["Type"].as_str().is_some_and(|t| t != "STANDARD") {
        violations.push(format!("{id}: not a Standard state machine"));
    }
    if properties["Tracing"]["Enabled"].as_bool() != Some(true) {
        violations.push(format!("{id}: X-Ray tracing is off"));
    }
    if properties["Logging"]["Destinations"]
        .as_sequence()
        .is_none_or(Vec::is_empty)
    {
        violations.push(format!("{id}: execution logging is off"));
    }
    if let Some(path) = properties["DefinitionUri"].as_str() {
        if read(path).contains("arn:") {
            violations.push(format!(
                "{id}: {path} names an ARN; use DefinitionSubstitutions"
            ));
        }
    }

    let states = asl["States"].as_object().cloned().unwrap_or_default();
    let target_of = |state: &Json| task_target(template, machine, &state["Resource"]);
    for (name, state) in &states {
        let place = format!("{id}.{name}");
        for (field, entries) in [("Retry", &state["Retry"]), ("Catch", &state["Catch"])] {
            for error in error_names(entries) {
                if !is_known_error_name(&error) {
                    violations.push(format!(
                        "{place}: {field} names {error}, which no function emits (not in ErrorKind::ALL)"
                    ));
                }
            }
        }
        let retried = error_names(&state["Retry"]);
        for kind in NEVER_RETRIED {
            if retried.iter().any(|e| e == kind.name()) {
                violations.push(format!(
                    "{place}: retries {}, which a retry cannot fix",
                    kind.name()
                ));
            }
        }
        if state["Type"] != "Task" {
            continue;
        }
        if state["TimeoutSeconds"].as_u64().unwrap_or(0) == 0 {
            violations.push(format!("{place}: Task without TimeoutSeconds"));
        }
        let function = match target_of(state) {
            Target::Function(function) => function,
            Target::Service(_) => continue,
            Target::Unknown(what) => {
                violations.push(format!(
                    "{place}: calls {what}, which is not in this template"
                ));
                continue;
            }
        };
        violations.extend(lambda_task_violations(template, &place, state, &function));
        let notifies = state["Catch"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|catcher| {
                catcher["ErrorEquals"]
                    .as_array()
                    .is_some_and(|e| e.contains(&"States.ALL".into()))
                    && catcher["Next"]
                        .as_str()
                        .and_then(|next| states.get(next))
                        .is_some_and(|next| {
                            target_of(next) == Target::Service("sns:publish".into())
                        })
            });
        if !notifies {
            violations.push(format!(
                "{place}: no Catch of States.ALL into an SNS notification"
            ));
        }
    }
    violations
}

fn lambda_task_violations(
    template: &Yaml,
    place: &str,
    state: &Json,
    function: &str,
) -> Vec<String> {
    let mut violations = Vec::new();
    let retriers = state["Retry"].as_array().cloned().unwrap_or_default();
    for exception in LAMBDA_SERVICE_EXCEPTIONS {
        let retrier = retriers.iter().find(|r| {
            r["ErrorEquals"]
                .as_array()
                .is_some_and(|e| e.contains(&exception.into()))
        });
        let as_recommended = retrier.is_some_and(|r| {
            r["IntervalSeconds"] == 2 && r["MaxAttempts"] == 6 && r["BackoffRate"] == 2
        });
        if !as_recommended {
            violations.push(format!(
                "{place}: does not retry {exception} as AWS recommends (2 s, 6 attempts, rate 2)"
            ));
        }
    }
    for retrier in &retriers {
        let errors = error_names(&Json::Array(vec![retrier.clone()]));
        if errors
            .iter()
            .any(|e| CATCH_ALL_ERRORS.contains(&e.as_str()))
        {
            violations.push(format!(
                "{place}: retries {errors:?}, which would retry ConfigError and AuthError too"
            ));
        }
        let backpressure = errors
            .iter()
            .any(|e| e == ErrorKind::Throttled.name() || e == ErrorKind::Unavailable.name());
        if backpressure && retrier["JitterStrategy"] != "FULL" {
            violations.push(format!("{place}: retries {errors:?} without full jitter"));
        }
    }
    let timeout = state["TimeoutSeconds"].as_u64().unwrap_or(0);
    if timeout <= function_timeout(template, function) {
        violations.push(format!(
            "{place}: TimeoutSeconds {timeout} does not outlast {function}'s own timeout"
        ));
    }
    if let Some((_, fields)) = FUNCTION_INPUTS.iter().find(|(id, _)| *id == function) {
        let given: BTreeSet<String> = state["Parameters"]
            .as_object()
            .map(|p| {
                p.keys()
                    .map(|k| k.trim_end_matches(".$").to_string())
                    .collect()
            })
            .unwrap_or_default();
        let expected: BTreeSet<String> = fields.iter().map(|f| f.to_string()).collect();
        if given != expected || state.get("Parameters").is_none() {
            violations.push(format!(
                "{place}: passes {given:?} to {function}, which accepts exactly {expected:?}"
            ));
        }
    }
    violations
}

fn schedule_violations(template: &Yaml) -> Vec<String> {
    let mut schedules = Vec::new();
    for (id, machine) in resources_of_type(template, &["AWS::Serverless::StateMachine"]) {
        for (name, event) in machine["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flatten()
        {
            if event["Type"].as_str() == Some("ScheduleV2") {
                schedules.push((
                    format!("{id}.{}", name.as_str().unwrap_or_default()),
                    &event["Properties"],
                ));
            }
        }
    }
    let mut violations = Vec::new();
    if schedules.is_empty() {
        violations.push("no EventBridge Scheduler schedule starts the state machine".into());
    }
    if let Some(default) = template["Parameters"]["ScheduleExpression"]["Default"].as_str() {
        violations.extend(scheduler_expression_problem(default));
    }
    for (place, schedule) in schedules {
        let input: Option<Json> = schedule["Input"]
            .as_str()
            .and_then(|s| serde_json::from_str(s).ok());
        if input != Some(serde_json::json!({"scheduled_time": "<aws.scheduler.scheduled-time>"})) {
            violations.push(format!(
                "{place}: input is not {{\"scheduled_time\": <aws.scheduler.scheduled-time>}}"
            ));
        }
        for required in [
            "RetryPolicy",
            "DeadLetterConfig",
            "ScheduleExpressionTimezone",
        ] {
            if schedule.get(required).is_none() {
                violations.push(format!("{place}: no {required}"));
            }
        }
    }
    violations
}

/// Why EventBridge Scheduler would refuse `expression`, if it would: a cron has six fields, and
/// exactly one of day-of-month and day-of-week is `?` (cfn-lint's E3027 checks only Events rules).
fn scheduler_expression_problem(expression: &str) -> Option<String> {
    if let Some(rate) = expression
        .strip_prefix("rate(")
        .and_then(|r| r.strip_suffix(')'))
    {
        let parsed = rate.split_once(' ').and_then(|(count, unit)| {
            let count = count.parse::<u64>().ok().filter(|c| *c > 0)?;
            Some((count, unit))
        });
        let Some((count, unit)) = parsed else {
            return Some(format!(
                "{expression}: a rate is rate(<positive count> <unit>)"
            ));
        };
        let singular = ["minute", "hour", "day"].contains(&unit);
        let plural = ["minutes", "hours", "days"].contains(&unit);
        return match (count, singular, plural) {
            (1, true, _) | (2.., _, true) => None,
            _ => Some(format!(
                "{expression}: rate unit {unit} does not agree with {count}"
            )),
        };
    }
    let Some(cron) = expression
        .strip_prefix("cron(")
        .and_then(|c| c.strip_suffix(')'))
    else {
        return Some(format!("{expression}: neither cron(...) nor rate(...)"));
    };
    let fields: Vec<&str> = cron.split(' ').collect();
    if fields.len() != 6 {
        return Some(format!(
            "{expression}: a Scheduler cron has 6 fields, not {}",
            fields.len()
        ));
    }
    if (fields[2] == "?") == (fields[4] == "?") {
        return Some(format!(
            "{expression}: exactly one of day-of-month and day-of-week must be ?"
        ));
    }
    None
}

fn function_violations(template: &Yaml) -> Vec<String> {
    let globals = &template["Globals"]["Function"];
    let mut violations = Vec::new();
    for (id, function) in resources_of_type(template, &["AWS::Serverless::Function"]) {
        let setting = |key: &str| {
            let own = &function["Properties"][key];
            if own.is_null() {
                &globals[key]
            } else {
                own
            }
        };
        if setting("Runtime").as_str() != Some("provided.al2023")
            || setting("Handler").as_str() != Some("bootstrap")
        {
            violations.push(format!(
                "{id}: not a provided.al2023 `bootstrap` (Rust) function"
            ));
        }
        if setting("Tracing").as_str() != Some("Active") {
            violations.push(format!("{id}: X-Ray tracing is off"));
        }
        if setting("VpcConfig").is_null() {
            violations.push(format!("{id}: not in the domain's VPC"));
        }
        if SINGLE_FLIGHT_FUNCTIONS.contains(&id.as_str())
            && function["Properties"]["ReservedConcurrentExecutions"].as_u64() != Some(1)
        {
            violations.push(format!(
                "{id}: two copies could run at once (reserved concurrency is not 1)"
            ));
        }
    }
    violations
}

fn role_mapping_violations(template: &Yaml) -> Vec<String> {
    let mapping = template["Outputs"]["RoleMappingRequest"]["Value"].clone();
    let request = as_sub_string(&mapping);
    let mut violations = Vec::new();
    if request.contains("all_access") {
        violations.push("the role mapping grants all_access".into());
    }
    if !request.starts_with("PUT _plugins/_security/api/rolesmapping/manage_snapshots") {
        violations.push(format!(
            "the role mapping is not to manage_snapshots: {request}"
        ));
    }
    for (function, _) in FUNCTION_INPUTS {
        if !request.contains(&format!("${{{function}Role.Arn}}")) {
            violations.push(format!("the role mapping leaves out {function}'s role"));
        }
    }
    violations
}

// ------------------------------------------------------------------------------------ tests

type Check = fn(&Yaml) -> Vec<String>;

const CHECKS: [(&str, Check); 9] = [
    ("least privilege", least_privilege_violations),
    ("iam:PassRole", pass_role_violations),
    ("snapshot role trust", snapshot_role_trust_violations),
    ("snapshot bucket", bucket_violations),
    ("workflow", workflow_violations),
    ("schedule", schedule_violations),
    ("functions", function_violations),
    ("role mapping", role_mapping_violations),
    ("substitutions", substitution_violations),
];

/// Every `${...}` of the ASL has a substitution, and every substitution is used.
fn substitution_violations(template: &Yaml) -> Vec<String> {
    let mut violations = Vec::new();
    for machine in state_machines(template) {
        let Some(path) = machine.properties["DefinitionUri"].as_str() else {
            continue;
        };
        let text = read(path);
        let used: BTreeSet<&str> = text
            .split("${")
            .skip(1)
            .filter_map(|rest| rest.split('}').next())
            .collect();
        let given: BTreeSet<&str> = machine.properties["DefinitionSubstitutions"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(key, _)| key.as_str())
            .collect();
        if used != given {
            violations.push(format!(
                "{}: placeholders {used:?} but substitutions {given:?}",
                machine.id
            ));
        }
    }
    violations
}

#[test]
fn the_template_and_workflow_pass_every_check() {
    let template = load_template(TEMPLATE);
    let failures: Vec<String> = CHECKS
        .iter()
        .flat_map(|(check, run)| {
            run(&template)
                .into_iter()
                .map(move |v| format!("[{check}] {v}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "infra/{TEMPLATE}:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_check_rejects_the_insecure_blog_setup() {
    let fixture = load_template(FIXTURE);
    let toothless: Vec<&str> = CHECKS
        .iter()
        .filter(|(check, _)| *check != "substitutions") // the fixture's definition is inline
        .filter(|(_, run)| run(&fixture).is_empty())
        .map(|(check, _)| *check)
        .collect();
    assert!(
        toothless.is_empty(),
        "these checks accept infra/{FIXTURE}: {toothless:?}"
    );
}

#[test]
fn the_fixture_fails_for_the_blogs_actual_flaws() {
    let fixture = load_template(FIXTURE);
    let all: Vec<String> = CHECKS.iter().flat_map(|(_, run)| run(&fixture)).collect();
    let expect = |needle: &str| {
        assert!(
            all.iter().any(|v| v.contains(needle)),
            "no violation mentions {needle:?}:\n{}",
            all.join("\n")
        )
    };
    expect("wildcard action s3:*");
    expect("iam:PassRole without iam:PassedToService");
    expect("no aws:SourceAccount");
    expect("denies requests without TLS");
    expect("all_access");
    expect("does not retry Lambda.ServiceException");
    expect("retries ConfigError");
    expect("names Retryable");
    expect("Task without TimeoutSeconds");
    expect("the execution has no TimeoutSeconds");
}

#[test]
fn scheduler_expressions_are_checked_as_the_scheduler_reads_them() {
    for good in [
        "cron(0 2 * * ? *)",
        "cron(15 */6 ? * MON-FRI *)",
        "rate(1 hour)",
        "rate(12 hours)",
    ] {
        assert_eq!(scheduler_expression_problem(good), None, "{good}");
    }
    for bad in [
        "cron(0 2 * * *)",
        "cron(0 2 * * * *)",
        "rate(1 hours)",
        "rate(2 hour)",
        "every day",
    ] {
        assert!(
            scheduler_expression_problem(bad).is_some(),
            "{bad} was accepted"
        );
    }
}

#[test]
fn the_workflow_retries_exactly_the_transient_error_kinds() {
    // The workflow retries exactly the kinds that ossnap-core calls transient: one taxonomy, not two.
    let template = load_template(TEMPLATE);
    let retried: BTreeSet<String> = state_machines(&template)
        .iter()
        .flat_map(|machine| {
            machine.definition["States"]
                .as_object()
                .into_iter()
                .flatten()
                .flat_map(|(_, state)| error_names(&state["Retry"]))
                .collect::<Vec<_>>()
        })
        .filter(|name| !name.starts_with("States.") && !name.starts_with("Lambda."))
        .collect();
    let retryable: BTreeSet<String> = ErrorKind::ALL
        .iter()
        .filter(|kind| kind.is_transient())
        .map(|kind| kind.name().to_string())
        .collect();
    assert_eq!(retried, retryable);
}
