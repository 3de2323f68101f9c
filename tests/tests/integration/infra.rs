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

/// What AWS recommends retrying on every Lambda task (bp-lambda-serviceexception), and the
/// timeout of the Invoke call itself, which Step Functions reports under its own name.
const LAMBDA_SERVICE_EXCEPTIONS: [&str; 5] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
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
/// base path), the objects under the base path, the migrate workflow's plans (outside every
/// repository), which only copy writes and copy and the migrate workflow's ItemReader read, and
/// verify's verdicts on damaged snapshots (outside every repository too), which only verify
/// writes and only retention lists.
const BUCKET_ARN: &str = "arn:${AWS::Partition}:s3:::${SnapshotBucketName}";
const REPOSITORY_OBJECTS_ARN: &str =
    "arn:${AWS::Partition}:s3:::${SnapshotBucketName}/${SnapshotBasePath}/*";
const PLAN_OBJECTS_ARN: &str =
    "arn:${AWS::Partition}:s3:::${SnapshotBucketName}/ossnap-plans/${SnapshotBasePath}/*";
const PLAN_WRITER: &str = "CopyFunction";
const VERDICT_OBJECTS_ARN: &str =
    "arn:${AWS::Partition}:s3:::${SnapshotBucketName}/ossnap-verdicts/${SnapshotBasePath}/*";
const VERDICT_PREFIX: &str = "ossnap-verdicts/${SnapshotBasePath}/*";
const VERDICT_WRITER: &str = "VerifyFunction";
const VERDICT_LISTER: &str = "RetentionFunction";
/// The Azure credential: one secret, named by a parameter, read by the functions that reach Azure.
const AZURE_SECRET: &str = "${AzureCredentialsSecretArn}";
const AZURE_SECRET_READERS: [&str; 2] = ["CopyFunction", "VerifyFunction"];
/// Settings that would put an Azure credential in plain sight in a function's environment.
const PLAIN_AZURE_CREDENTIALS: [&str; 2] = ["AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN"];
/// The only domain paths a policy may name: the repository and what is under it ...
const DOMAIN_SNAPSHOT_PATHS: &str = "${DomainArn}/_snapshot/";
/// ... the metadata restore plans with and check-restore follows a recovery with, read-only
/// (allocation explain is a POST that changes nothing) ...
const DOMAIN_METADATA_READS: [(&str, &str); 10] = [
    ("es:ESHttpGet", "${DomainArn}/"),
    ("es:ESHttpGet", "${DomainArn}/_cat/indices"),
    ("es:ESHttpGet", "${DomainArn}/_cat/allocation"),
    ("es:ESHttpGet", "${DomainArn}/_cluster/health"),
    ("es:ESHttpGet", "${DomainArn}/_cluster/health/*"),
    ("es:ESHttpGet", "${DomainArn}/_cluster/settings"),
    ("es:ESHttpGet", "${DomainArn}/*/_recovery"),
    ("es:ESHttpGet", "${DomainArn}/*/_stats/indexing"),
    ("es:ESHttpGet", "${DomainArn}/*/_count"),
    ("es:ESHttpPost", "${DomainArn}/_cluster/allocation/explain"),
];
/// ... and the restore drill's copies, which only check-restore deletes.
const DRILL_COPIES: (&str, &str, &str) = (
    "CheckRestoreFunction",
    "es:ESHttpDelete",
    "${DomainArn}/ossnap-drill-*",
);

/// Functions that never call OpenSearch (they read storage: S3, Azure), so hold no `es:` grant
/// and no role mapping.
const S3_ONLY_FUNCTIONS: [&str; 2] = ["VerifyFunction", "CopyFunction"];

/// The inputs each function is given by the workflows (they reject unknown fields), keyed by its
/// logical id: each Task passes exactly one of them.
const FUNCTION_INPUTS: [(&str, &[&[&str]]); 8] = [
    ("RegisterFunction", &[&[]]),
    ("SnapshotFunction", &[&["scheduled_time", "run_id"]]),
    ("CheckStatusFunction", &[&["repository", "snapshot"]]),
    (
        "VerifyFunction",
        &[
            &["repository", "snapshot", "resume_from"],
            // The copy in Azure, after a migration.
            &["snapshot", "azure", "resume_from"],
        ],
    ),
    (
        "CopyFunction",
        &[
            &["mode", "snapshots", "to"],
            &["mode", "generation", "folders", "to"],
            &["mode", "generation", "snapshots", "to"],
        ],
    ),
    ("RetentionFunction", &[&["repository"]]),
    (
        "RestoreFunction",
        &[
            &[
                "repository",
                "snapshot",
                "indices",
                "rename_pattern",
                "rename_replacement",
                "include_aliases",
                "index_settings",
                "ignore_index_settings",
                "partial",
                "dry_run",
            ],
            // The restore drill's start.
            &["repository", "snapshot", "drill"],
        ],
    ),
    (
        "CheckRestoreFunction",
        &[&["indices"], &["indices", "drill"], &["drill_cleanup"]],
    ),
];

/// Functions of which two copies must never run at once: every path of the workflow to them
/// passes through the overlap guard, a listing of the state machine's running executions. (Two
/// migrations at once could finalize out of order: an older `index.latest` after a newer one.)
const SINGLE_FLIGHT_FUNCTIONS: [&str; 4] = [
    "SnapshotFunction",
    "RetentionFunction",
    "RestoreFunction",
    "CopyFunction",
];
const OVERLAP_GUARD: &str = "aws-sdk:sfn:listExecutions";

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
                let prefixes = statement.condition("StringLike", "s3:prefix");
                let limited_to_base_path = prefixes
                    .iter()
                    .all(|prefix| prefix.starts_with("${SnapshotBasePath}"))
                    && !prefixes.is_empty();
                let limited_to_verdicts = place.as_str() == VERDICT_LISTER
                    && prefixes.iter().map(String::as_str).eq([VERDICT_PREFIX]);
                actions == ["s3:ListBucket"] && (limited_to_base_path || limited_to_verdicts)
            } else if resource.starts_with("arn:") || resource.contains("s3:::") {
                resource == REPOSITORY_OBJECTS_ARN
                    || (resource == PLAN_OBJECTS_ARN && plan_access_allowed(place, &actions))
                    || (resource == VERDICT_OBJECTS_ARN
                        && place.as_str() == VERDICT_WRITER
                        && actions == ["s3:PutObject"])
                    || own_executions_access(template, place, &actions, &resource)
            } else if resource.starts_with("${DomainArn}") {
                resource.starts_with(DOMAIN_SNAPSHOT_PATHS)
                    || actions.iter().all(|action| {
                        DOMAIN_METADATA_READS.contains(&(action.as_str(), resource.as_str()))
                    })
                    || (place.as_str() == DRILL_COPIES.0
                        && actions == [DRILL_COPIES.1]
                        && resource == DRILL_COPIES.2)
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

/// Everyone may read a plan (copy, and the migrate workflow's ItemReader); only copy writes one.
fn plan_access_allowed(holder: &str, actions: &[String]) -> bool {
    let reads_only = actions.iter().all(|action| action == "s3:GetObject");
    let reads_and_writes = actions
        .iter()
        .all(|action| ["s3:GetObject", "s3:PutObject"].contains(&action.as_str()));
    reads_only || (holder == PLAN_WRITER && reads_and_writes)
}

/// A state machine may list its own executions (the overlap guard), and, when it runs a
/// Distributed Map, start its own child executions and follow and stop them: nothing of another
/// state machine.
fn own_executions_access(
    template: &Yaml,
    holder: &str,
    actions: &[String],
    resource: &str,
) -> bool {
    let Some(name) = template["Resources"][holder]["Properties"]
        .get("Name")
        .filter(|_| has_resource(template, holder))
        .map(as_sub_string)
    else {
        return false;
    };
    let prefix = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}";
    let distributed = state_machines(template).iter().any(|machine| {
        machine.id == holder && distributed_maps(&machine.definition).next().is_some()
    });
    if resource == format!("{prefix}:stateMachine:{name}") {
        actions == ["states:ListExecutions"]
            || (distributed && actions == ["states:StartExecution"])
    } else if resource == format!("{prefix}:execution:{name}/*") {
        distributed
            && actions.iter().all(|action| {
                ["states:DescribeExecution", "states:StopExecution"].contains(&action.as_str())
            })
    } else {
        false
    }
}

/// The Map states of a definition that run their items as child executions.
fn distributed_maps(definition: &Json) -> impl Iterator<Item = Placed<'_>> {
    all_states(definition)
        .into_iter()
        .filter(|placed| placed.state["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED")
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
        // No AWS document shows OpenSearch Service setting iam:PassedToService when it registers
        // a repository: a condition on it that holds by default could fail every registration.
        let condition = &statement.body["Condition"];
        let on_by_default = match intrinsic(condition, "If").and_then(Yaml::as_sequence) {
            Some(branches) => LOGS_DOMAIN.condition_holds(template, &branches[0]),
            None => !condition.is_null(),
        };
        if on_by_default && format!("{condition:?}").contains("iam:PassedToService") {
            violations.push(format!(
                "{}: iam:PassRole requires iam:PassedToService by default, which OpenSearch Service is not documented to set",
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
        let tls_policy = policies.iter().find(|(_, policy)| {
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
        match tls_policy {
            None => violations.push(format!(
                "{id}: no bucket policy denies requests without TLS (aws:SecureTransport false)"
            )),
            Some((policy_id, policy)) => {
                for keep in ["DeletionPolicy", "UpdateReplacePolicy"] {
                    if policy[keep].as_str() != Some("Retain") {
                        violations.push(format!(
                            "{policy_id}: {keep} is not Retain, so the retained bucket {id} would lose its TLS-only policy"
                        ));
                    }
                }
            }
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

    let target_of = |state: &Json| task_target(template, machine, &state["Resource"]);
    for Placed {
        name,
        state,
        enclosing,
    } in all_states(asl)
    {
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
        // A failure inside a Map fails the Map: the top-level state's Catch is the task's.
        if !catches_into_notification(template, machine, enclosing.unwrap_or(state), 0) {
            violations.push(format!(
                "{place}: no Catch of States.ALL into an SNS notification"
            ));
        }
    }
    violations.extend(overlap_violations(template, machine));
    violations
}

/// A state of a definition, nested ones included.
struct Placed<'d> {
    /// `State`, or `Map.InnerState` for a state of a Map's ItemProcessor or a Parallel branch.
    name: String,
    state: &'d Json,
    /// The top-level state a nested state runs inside.
    enclosing: Option<&'d Json>,
}

/// The top-level states of `definition`, each followed by those it runs (a Map's ItemProcessor or
/// Iterator, a Parallel's branches), at any depth.
fn all_states(definition: &Json) -> Vec<Placed<'_>> {
    let mut placed = Vec::new();
    for (name, state) in definition["States"].as_object().into_iter().flatten() {
        placed.push(Placed {
            name: name.clone(),
            state,
            enclosing: None,
        });
        for (inner_name, inner) in inner_states(state) {
            placed.push(Placed {
                name: format!("{name}.{inner_name}"),
                state: inner,
                enclosing: Some(state),
            });
        }
    }
    placed
}

/// The states a Map or Parallel state runs, at any depth, named relative to it.
fn inner_states(state: &Json) -> Vec<(String, &Json)> {
    let processor = state.get("ItemProcessor").or_else(|| state.get("Iterator"));
    let branches = state["Branches"].as_array().into_iter().flatten();
    processor
        .into_iter()
        .chain(branches)
        .flat_map(|machine| machine["States"].as_object().into_iter().flatten())
        .flat_map(|(name, inner)| {
            std::iter::once((name.clone(), inner)).chain(
                inner_states(inner)
                    .into_iter()
                    .map(move |(deeper, state)| (format!("{name}.{deeper}"), state)),
            )
        })
        .collect()
}

/// Whether the state catches States.ALL into an SNS notification, directly or through a cleanup
/// Task whose own catch and next both lead to one.
fn catches_into_notification(
    template: &Yaml,
    machine: &StateMachine,
    state: &Json,
    depth: usize,
) -> bool {
    let states = &machine.definition["States"];
    let notifies = |name: &Json| {
        name.as_str()
            .and_then(|next| states.get(next))
            .is_some_and(|next| {
                let target = task_target(template, machine, &next["Resource"]);
                target == Target::Service("sns:publish".into())
                    || (depth == 0
                        && matches!(target, Target::Function(_))
                        && notifies_next(template, machine, next)
                        && catches_into_notification(template, machine, next, depth + 1))
            })
    };
    state["Catch"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|catcher| {
            catcher["ErrorEquals"]
                .as_array()
                .is_some_and(|e| e.contains(&"States.ALL".into()))
                && notifies(&catcher["Next"])
        })
}

/// Whether the state's Next is the SNS notification.
fn notifies_next(template: &Yaml, machine: &StateMachine, state: &Json) -> bool {
    state["Next"]
        .as_str()
        .and_then(|next| machine.definition["States"].get(next))
        .is_some_and(|next| {
            task_target(template, machine, &next["Resource"])
                == Target::Service("sns:publish".into())
        })
}

/// The states reachable from StartAt without passing through the overlap guard.
fn reachable_without_guard(template: &Yaml, machine: &StateMachine) -> BTreeSet<String> {
    let states = machine.definition["States"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut seen = BTreeSet::new();
    let mut next: Vec<String> = machine.definition["StartAt"]
        .as_str()
        .map(str::to_string)
        .into_iter()
        .collect();
    while let Some(name) = next.pop() {
        let Some(state) = states.get(&name) else {
            continue;
        };
        if !seen.insert(name) {
            continue;
        }
        let guard = task_target(template, machine, &state["Resource"])
            == Target::Service(OVERLAP_GUARD.into());
        if guard {
            continue;
        }
        let successors = [&state["Next"], &state["Default"]]
            .into_iter()
            .chain(
                state["Choices"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| &c["Next"]),
            )
            .chain(
                state["Catch"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| &c["Next"]),
            );
        next.extend(successors.filter_map(|n| n.as_str().map(str::to_string)));
    }
    seen
}

/// Two runs at once would take two snapshots or apply retention twice: the workflow, not a
/// Lambda reservation, keeps them apart.
fn overlap_violations(template: &Yaml, machine: &StateMachine) -> Vec<String> {
    let states = &machine.definition["States"];
    let mut violations = Vec::new();
    for name in reachable_without_guard(template, machine) {
        let state = &states[&name];
        let runs = std::iter::once(state).chain(inner_states(state).into_iter().map(|(_, s)| s));
        for called in runs {
            let Target::Function(function) = task_target(template, machine, &called["Resource"])
            else {
                continue;
            };
            if SINGLE_FLIGHT_FUNCTIONS.contains(&function.as_str()) {
                violations.push(format!(
                    "{}.{name}: calls {function} on a path that skips the overlap guard ({OVERLAP_GUARD}), so two runs could call it at once",
                    machine.id
                ));
            }
        }
    }
    let guards_this_machine = states.as_object().into_iter().flatten().any(|(_, state)| {
        task_target(template, machine, &state["Resource"]) == Target::Service(OVERLAP_GUARD.into())
            && state["Parameters"]["StateMachineArn.$"] == "$$.StateMachine.Id"
            && state["Parameters"]["StatusFilter"] == "RUNNING"
    });
    if !guards_this_machine {
        violations.push(format!(
            "{}: no state lists this state machine's RUNNING executions",
            machine.id
        ));
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
    if let Some((_, inputs)) = FUNCTION_INPUTS.iter().find(|(id, _)| *id == function) {
        let given: BTreeSet<String> = state["Parameters"]
            .as_object()
            .map(|p| {
                p.keys()
                    .map(|k| k.trim_end_matches(".$").to_string())
                    .collect()
            })
            .unwrap_or_default();
        let expected: Vec<BTreeSet<String>> = inputs
            .iter()
            .map(|fields| fields.iter().map(|f| f.to_string()).collect())
            .collect();
        if !expected.contains(&given) || state.get("Parameters").is_none() {
            violations.push(format!(
                "{place}: passes {given:?} to {function}, which accepts one of {expected:?}"
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
        if function["Properties"]
            .get("ReservedConcurrentExecutions")
            .is_some()
        {
            violations.push(format!(
                "{id}: reserves concurrency, which fails in accounts whose concurrency quota is below 100 plus the reservation"
            ));
        }
    }
    violations
}

fn s3_only_violations(template: &Yaml) -> Vec<String> {
    identity_statements(template)
        .iter()
        .filter(|s| S3_ONLY_FUNCTIONS.contains(&s.place.as_str()))
        .flat_map(|s| {
            s.actions()
                .into_iter()
                .filter(|a| a.starts_with("es:"))
                .map(|a| format!("{}: holds {a}, but never calls OpenSearch", s.place))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Each parameter's AllowedPattern accepts its default, and the base path refuses what would
/// turn the S3 grants built from it into wildcards or lead out of it.
fn parameter_pattern_violations(template: &Yaml) -> Vec<String> {
    let mut violations = Vec::new();
    let pattern_of = |name: &str| {
        template["Parameters"][name]["AllowedPattern"]
            .as_str()
            .map(|p| fancy_regex::Regex::new(p).unwrap_or_else(|e| panic!("{name}: {e}")))
    };
    for (name, parameter) in template["Parameters"].as_mapping().into_iter().flatten() {
        let name = name.as_str().unwrap_or_default();
        if let (Some(pattern), Some(default)) = (pattern_of(name), parameter["Default"].as_str()) {
            if !pattern.is_match(default).unwrap_or(false) {
                violations.push(format!(
                    "{name}: the default {default:?} fails its own AllowedPattern"
                ));
            }
        }
    }
    let Some(base_path) = pattern_of("SnapshotBasePath") else {
        return vec!["SnapshotBasePath has no AllowedPattern".into()];
    };
    for good in [
        "ossnap",
        "prod/domain-a",
        "team_1/logs.v2",
        "ossnap-plans-archive",
        "ossnap-verdicts-archive",
    ] {
        if !base_path.is_match(good).unwrap_or(false) {
            violations.push(format!("SnapshotBasePath refuses {good:?}"));
        }
    }
    for bad in [
        "*",
        "prod*",
        "prod/*",
        "pro?",
        "${aws:username}",
        "/prod",
        "prod/",
        "a//b",
        "..",
        "a/../b",
        "./a",
        // The migrate workflow's plans lie under ossnap-plans/<base path>/.
        "ossnap-plans",
        "ossnap-plans/logs",
        // verify's verdicts lie under ossnap-verdicts/<base path>/.
        "ossnap-verdicts",
        "ossnap-verdicts/logs",
    ] {
        if base_path.is_match(bad).unwrap_or(true) {
            violations.push(format!("SnapshotBasePath accepts {bad:?}"));
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
    let callers: BTreeSet<String> = identity_statements(template)
        .iter()
        .filter(|s| s.allows() && s.actions().iter().any(|a| a.starts_with("es:ESHttp")))
        .map(|s| s.place.clone())
        .collect();
    for (function, _) in FUNCTION_INPUTS {
        let mapped = request.contains(&format!("${{{function}Role.Arn}}"));
        let calls_opensearch = callers.contains(function);
        if calls_opensearch && !mapped {
            violations.push(format!("the role mapping leaves out {function}'s role"));
        }
        if mapped && !calls_opensearch {
            violations.push(format!(
                "the role mapping maps {function}'s role, which holds no es:ESHttp* grant"
            ));
        }
    }
    violations
}

// ------------------------------------------------------------------------------------ names

/// One stack of the template as deployed: its name, and the parameters it gives (the others take
/// their defaults).
struct Deployment<'d> {
    stack: &'d str,
    parameters: &'d [(&'d str, &'d str)],
}

/// Two domains in one account and region, deployed as README's "Several domains" shows: the
/// second shares the first one's bucket under its own base path.
const LOGS_DOMAIN: Deployment = Deployment {
    stack: "ossnap-logs",
    parameters: &[
        ("DomainArn", "arn:aws:es:eu-west-1:123456789012:domain/logs"),
        ("SnapshotBucketName", "acme-opensearch-snapshots"),
        ("SnapshotBasePath", "logs"),
    ],
};
const SEARCH_DOMAIN: Deployment = Deployment {
    stack: "ossnap-search",
    parameters: &[
        (
            "DomainArn",
            "arn:aws:es:eu-west-1:123456789012:domain/search",
        ),
        ("SnapshotBucketName", "acme-opensearch-snapshots"),
        ("CreateSnapshotBucket", "false"),
        ("SnapshotBasePath", "search"),
    ],
};

impl Deployment<'_> {
    fn parameter(&self, template: &Yaml, name: &str) -> Option<String> {
        if let Some((_, value)) = self.parameters.iter().find(|(key, _)| *key == name) {
            return Some(value.to_string());
        }
        let default = &template["Parameters"].get(name)?["Default"];
        match default {
            Yaml::String(s) => Some(s.clone()),
            Yaml::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// A value as CloudFormation resolves it in this stack. A resource stands for a name that
    /// CloudFormation generates from the stack's name, unique in the account.
    fn render(&self, template: &Yaml, value: &Yaml) -> String {
        let text = as_sub_string(value);
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').map_or(rest.len(), |e| start + e);
            let name = &rest[start + 2..end];
            let resolved = match name {
                "AWS::StackName" => self.stack.to_string(),
                "AWS::Region" => "eu-west-1".into(),
                "AWS::AccountId" => "123456789012".into(),
                "AWS::Partition" => "aws".into(),
                _ => self.parameter(template, name).unwrap_or_else(|| {
                    let id = name.split('.').next().unwrap_or(name);
                    format!("{}-{id}-GENERATED", self.stack)
                }),
            };
            out.push_str(&resolved);
            rest = &rest[(end + 1).min(rest.len())..];
        }
        out.push_str(rest);
        out
    }

    fn condition_holds(&self, template: &Yaml, condition: &Yaml) -> bool {
        if let Some(name) = condition.as_str() {
            return self.condition_holds(template, &template["Conditions"][name]);
        }
        if let Some(arguments) = intrinsic(condition, "Equals").and_then(Yaml::as_sequence) {
            return self.render(template, &arguments[0]) == self.render(template, &arguments[1]);
        }
        if let Some(arguments) = intrinsic(condition, "Not").and_then(Yaml::as_sequence) {
            return !self.condition_holds(template, &arguments[0]);
        }
        panic!("unsupported condition {condition:?}")
    }

    /// The names this stack gives its resources, by kind (a log group and a schedule may share a
    /// name; two log groups may not). Names CloudFormation generates are unique and left out.
    fn physical_names(&self, template: &Yaml) -> Vec<(String, String)> {
        let mut names = Vec::new();
        for (id, resource) in resources(template) {
            if let Some(condition) = resource.get("Condition") {
                if !self.condition_holds(template, condition) {
                    continue;
                }
            }
            let kind = resource["Type"].as_str().unwrap_or_default().to_string();
            for (key, value) in resource["Properties"].as_mapping().into_iter().flatten() {
                let key = key.as_str().unwrap_or_default();
                if key.ends_with("Name") && !["DisplayName", "MetricName"].contains(&key) {
                    names.push((kind.clone(), self.render(template, value)));
                }
            }
            // Metrics are keyed by repository and stack: alarms of two stacks keyed by the
            // repository alone would watch both domains' snapshots.
            for metric in resource["Properties"]["Metrics"]
                .as_sequence()
                .into_iter()
                .flatten()
            {
                let metric = &metric["MetricStat"]["Metric"];
                if metric["Namespace"].as_str() == Some(ossnap_core::metrics::NAMESPACE) {
                    let keys: Vec<String> = one_or_many(&metric["Dimensions"])
                        .into_iter()
                        .filter(|dimension| {
                            matches!(dimension["Name"].as_str(), Some("Repository" | "Stack"))
                        })
                        .map(|dimension| self.render(template, &dimension["Value"]))
                        .collect();
                    names.push(("ossnap metrics of".into(), keys.join(" in ")));
                }
            }
            for (event, body) in resource["Properties"]["Events"]
                .as_mapping()
                .into_iter()
                .flatten()
            {
                if body["Type"].as_str() == Some("ScheduleV2") {
                    // Without a Name, SAM names the schedule after the logical ids.
                    let name = match body["Properties"].get("Name") {
                        Some(name) => self.render(template, name),
                        None => format!("{id}{}", event.as_str().unwrap_or_default()),
                    };
                    names.push(("AWS::Scheduler::Schedule".into(), name));
                }
            }
        }
        names
    }
}

/// The names two stacks of `template` would both claim in one account and region.
fn name_clashes(template: &Yaml, first: &Deployment, second: &Deployment) -> Vec<String> {
    let theirs: BTreeSet<(String, String)> = second.physical_names(template).into_iter().collect();
    first
        .physical_names(template)
        .into_iter()
        .filter(|name| theirs.contains(name))
        .map(|(kind, name)| {
            format!(
                "{kind} {name}: {} and {} both claim it",
                first.stack, second.stack
            )
        })
        .collect()
}

/// The logs key may encrypt only this stack's log groups: its condition names each of them and
/// nothing else.
fn logs_key_violations(template: &Yaml) -> Vec<String> {
    let deployment = &LOGS_DOMAIN;
    let log_groups: BTreeSet<String> = resources_of_type(template, &["AWS::Logs::LogGroup"])
        .into_iter()
        .map(|(_, group)| {
            format!(
                "arn:aws:logs:eu-west-1:123456789012:log-group:{}",
                deployment.render(template, &group["Properties"]["LogGroupName"])
            )
        })
        .collect();
    let mut violations = Vec::new();
    for (id, key) in resources_of_type(template, &["AWS::KMS::Key"]) {
        let mut statements = Vec::new();
        statements_of(id.clone(), &key["Properties"]["KeyPolicy"], &mut statements);
        for statement in statements.iter().filter(|s| s.allows()) {
            let services = strings(&statement.body["Principal"]["Service"]);
            if !services.iter().any(|s| s.starts_with("logs.")) {
                continue;
            }
            let mut scope = Vec::new();
            for operator in ["ArnEquals", "ArnLike", "StringEquals", "StringLike"] {
                scope.extend(statement.condition(operator, "kms:EncryptionContext:aws:logs:arn"));
            }
            let granted: BTreeSet<String> = scope
                .iter()
                .map(|arn| deployment.render(template, &Yaml::String(arn.clone())))
                .collect();
            if scope.is_empty() || granted != log_groups {
                violations.push(format!(
                    "{id}: CloudWatch Logs may use the key for {granted:?}, not exactly this stack's log groups {log_groups:?}"
                ));
            }
        }
    }
    violations
}

// ------------------------------------------------------------------------------------ roles

/// The functions a state machine's ASL invokes, by logical id.
fn invoked_functions(template: &Yaml, machine: &StateMachine) -> BTreeSet<String> {
    all_states(&machine.definition)
        .into_iter()
        .filter_map(
            |placed| match task_target(template, machine, &placed.state["Resource"]) {
                Target::Function(function) => Some(function),
                _ => None,
            },
        )
        .collect()
}

/// Each state machine runs with a role of its own holding exactly what its definition calls: an
/// invoke grant for each function its Tasks name and no other, and the Distributed Map's grants
/// (its child executions, its ItemReader's plans) only when it has one.
fn state_machine_role_violations(template: &Yaml) -> Vec<String> {
    let mut violations = Vec::new();
    let statements = identity_statements(template);
    for machine in state_machines(template) {
        let id = &machine.id;
        if let Some(role) = machine.properties.get("Role") {
            violations.push(format!(
                "{id}: runs with the role {}, which others may share, instead of policies of its own",
                as_sub_string(role)
            ));
        }
        let granted: BTreeSet<String> = one_or_many(&machine.properties["Policies"])
            .into_iter()
            .filter_map(|policy| policy.get("LambdaInvokePolicy"))
            .filter_map(|policy| {
                referenced_id(&as_sub_string(&policy["FunctionName"])).map(str::to_string)
            })
            .collect();
        let invoked = invoked_functions(template, &machine);
        for function in invoked.difference(&granted) {
            violations.push(format!(
                "{id}: invokes {function} without a LambdaInvokePolicy of its own"
            ));
        }
        for function in granted.difference(&invoked) {
            violations.push(format!(
                "{id}: may invoke {function}, which its definition never calls"
            ));
        }
        let own = |action: &str, resource_part: &str| {
            statements.iter().any(|s| {
                s.allows()
                    && &s.place == id
                    && s.actions().iter().any(|a| a == action)
                    && s.resources().iter().any(|r| r.contains(resource_part))
            })
        };
        let distributed = distributed_maps(&machine.definition).next().is_some();
        let reads_items = all_states(&machine.definition)
            .iter()
            .any(|placed| placed.state.get("ItemReader").is_some());
        for (needed, action, resource_part, why) in [
            (
                distributed,
                "states:StartExecution",
                ":stateMachine:",
                "a Distributed Map's child executions",
            ),
            (
                distributed,
                "states:DescribeExecution",
                ":execution:",
                "a Distributed Map's child executions",
            ),
            (
                distributed,
                "states:StopExecution",
                ":execution:",
                "a Distributed Map's child executions",
            ),
            (
                reads_items,
                "s3:GetObject",
                "ossnap-plans/",
                "an ItemReader's plan",
            ),
        ] {
            match (needed, own(action, resource_part)) {
                (true, false) => violations.push(format!("{id}: lacks {action}, which {why} need")),
                (false, true) => violations.push(format!("{id}: holds {action}, but has no {why}")),
                _ => {}
            }
        }
    }
    violations
}

// ------------------------------------------------------------------------------------ migrate

const MIGRATE_STATE_MACHINE: &str = "MigrateStateMachine";
/// What copy's mode says a Task does.
fn copy_mode<'j>(template: &Yaml, machine: &StateMachine, state: &'j Json) -> Option<&'j str> {
    let calls_copy =
        task_target(template, machine, &state["Resource"]) == Target::Function(PLAN_WRITER.into());
    calls_copy
        .then(|| state["Parameters"]["mode"].as_str())
        .flatten()
}

/// The migrate workflow: started by hand; Plan, then one Distributed Map over the plan (read by an
/// ItemReader, no failure tolerated, a bounded concurrency from the input or a parameter) running
/// copy's batch mode, then Finalize, then verify of the copy in Azure, looping until complete; the
/// Azure credential read from one secret by copy and verify only, never in an environment.
fn migrate_violations(template: &Yaml) -> Vec<String> {
    let mut violations = Vec::new();
    let machines = state_machines(template);
    let Some(machine) = machines.iter().find(|m| m.id == MIGRATE_STATE_MACHINE) else {
        return vec![format!("no {MIGRATE_STATE_MACHINE}")];
    };
    let id = &machine.id;
    if machine.properties.get("Events").is_some() {
        violations.push(format!(
            "{id}: has Events; a migration is started by hand, never on a schedule"
        ));
    }
    let maps: Vec<Placed> = distributed_maps(&machine.definition).collect();
    let [map] = maps.as_slice() else {
        violations.push(format!(
            "{id}: {} Distributed Maps, not one over the plan",
            maps.len()
        ));
        return violations;
    };
    violations.extend(copy_map_violations(template, machine, map));
    violations.extend(migrate_order_violations(template, machine, &map.name));
    violations.extend(azure_secret_violations(template));
    // copy reads the repository and writes only plans, outside it.
    for statement in identity_statements(template)
        .iter()
        .filter(|s| s.allows() && s.place == PLAN_WRITER)
    {
        let writes = statement.actions().into_iter().any(|action| {
            action.starts_with("s3:")
                && !["s3:GetObject", "s3:ListBucket"].contains(&action.as_str())
        });
        if writes && statement.resources() != [PLAN_OBJECTS_ARN] {
            violations.push(format!(
                "{PLAN_WRITER}: {:?} on {:?}: copy writes nothing in S3 but its plans",
                statement.actions(),
                statement.resources()
            ));
        }
    }
    violations
}

fn copy_map_violations(template: &Yaml, machine: &StateMachine, map: &Placed) -> Vec<String> {
    let place = format!("{}.{}", machine.id, map.name);
    let state = map.state;
    let mut violations = Vec::new();
    if state["ToleratedFailurePercentage"] != 0 {
        violations.push(format!(
            "{place}: ToleratedFailurePercentage is not 0: Finalize would write index-N over a partial copy"
        ));
    }
    for field in [
        "ToleratedFailureCount",
        "ToleratedFailureCountPath",
        "ToleratedFailurePercentagePath",
    ] {
        if state.get(field).is_some_and(|value| value != 0) {
            violations.push(format!("{place}: {field} tolerates failed batches"));
        }
    }
    let reader = &state["ItemReader"];
    if task_target(template, machine, &reader["Resource"]) != Target::Service("s3:getObject".into())
        || reader["ReaderConfig"]["InputType"] != "JSON"
    {
        violations.push(format!(
            "{place}: does not read its items from the plan (s3:getObject of a JSON array)"
        ));
    }
    let max_concurrency = state["MaxConcurrencyPath"].as_str();
    let substituted = &machine.properties["DefinitionSubstitutions"]["MigrateMaxConcurrency"];
    let parameter = &template["Parameters"]["MigrateMaxConcurrency"];
    let bounded = parameter["Default"].as_u64().is_some_and(|d| d >= 1)
        && parameter["MaxValue"]
            .as_u64()
            .is_some_and(|max| max <= 10_000);
    if max_concurrency.is_none()
        || as_sub_string(substituted) != "${MigrateMaxConcurrency}"
        || !bounded
    {
        violations.push(format!(
            "{place}: MaxConcurrency does not come from the input, defaulting to the MigrateMaxConcurrency parameter (1 to 10,000)"
        ));
    }
    if state["ItemProcessor"]["ProcessorConfig"]["ExecutionType"] != "STANDARD" {
        violations.push(format!(
            "{place}: child executions are not STANDARD: an Express one ends after 5 minutes, a batch may take 15"
        ));
    }
    let inner = inner_states(state);
    let batches = inner
        .iter()
        .filter(|(_, inner)| copy_mode(template, machine, inner) == Some("batch"))
        .count();
    let tasks = inner
        .iter()
        .filter(|(_, inner)| inner["Type"] == "Task")
        .count();
    if batches == 0 || batches != tasks {
        violations.push(format!(
            "{place}: its items run something else than copy's batch mode"
        ));
    }
    violations
}

/// Along the workflow's path (Next and Default, no Catch): copy's plan, the Distributed Map,
/// copy's finalize, then verify in Azure (`azure`) looping on `complete: false`.
fn migrate_order_violations(
    template: &Yaml,
    machine: &StateMachine,
    map_name: &str,
) -> Vec<String> {
    let states = &machine.definition["States"];
    let mut steps = Vec::new();
    let mut seen = BTreeSet::new();
    let mut next = machine.definition["StartAt"].as_str().map(str::to_string);
    while let Some(name) = next.take() {
        if !seen.insert(name.clone()) {
            break;
        }
        let state = &states[&name];
        let verifies_in_azure = std::iter::once(state)
            .chain(inner_states(state).into_iter().map(|(_, s)| s))
            .any(|called| {
                task_target(template, machine, &called["Resource"])
                    == Target::Function("VerifyFunction".into())
                    && called["Parameters"].get("azure.$").is_some()
            });
        if let Some(mode) = copy_mode(template, machine, state) {
            steps.push(mode.to_string());
        } else if name == map_name {
            steps.push("batches".into());
        } else if verifies_in_azure {
            steps.push("verify in Azure".into());
            let loops = inner_states(state).into_iter().any(|(_, choice)| {
                choice["Choices"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|rule| {
                        rule["Variable"] == "$.verify.complete"
                            && rule["BooleanEquals"] == false
                            && inner_states(state).iter().any(|(task, called)| {
                                rule["Next"] == task.as_str()
                                    && called
                                        .get("Parameters")
                                        .is_some_and(|p| p.get("resume_from.$").is_some())
                            })
                    })
            });
            if !loops {
                steps.push("(no loop on complete: false with resume_from)".into());
            }
        }
        // A Choice goes on by its first rule (the overlap guard's "nothing else runs").
        next = state["Next"]
            .as_str()
            .or_else(|| state["Choices"][0]["Next"].as_str())
            .or_else(|| state["Default"].as_str())
            .map(str::to_string);
    }
    let expected = ["plan", "batches", "finalize", "verify in Azure"];
    if steps != expected {
        vec![format!(
            "{}: runs {steps:?} along its path, not {expected:?}",
            machine.id
        )]
    } else {
        Vec::new()
    }
}

/// A stack that migrates: the secret's ARN given.
const MIGRATING: Deployment = Deployment {
    stack: "ossnap-logs",
    parameters: &[(
        "AzureCredentialsSecretArn",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ossnap/azure-AbCdEf",
    )],
};

/// The Azure credential is read from one secret, by copy and verify only, and only in a stack
/// that names one (an empty ARN in a policy would fail every deployment); no environment holds a
/// key or a SAS token.
fn azure_secret_violations(template: &Yaml) -> Vec<String> {
    let mut violations = Vec::new();
    for statement in identity_statements(template).iter().filter(|s| s.allows()) {
        if !statement
            .actions()
            .iter()
            .any(|a| a.starts_with("secretsmanager:"))
        {
            continue;
        }
        if statement.actions() != ["secretsmanager:GetSecretValue"]
            || statement.resources() != [AZURE_SECRET]
            || !AZURE_SECRET_READERS.contains(&statement.place.as_str())
        {
            violations.push(format!(
                "{}: {:?} on {:?}: only {AZURE_SECRET_READERS:?} read the one secret {AZURE_SECRET}",
                statement.place,
                statement.actions(),
                statement.resources()
            ));
        }
    }
    for (id, function) in resources_of_type(template, &["AWS::Serverless::Function"]) {
        for policy in one_or_many(&function["Properties"]["Policies"]) {
            for statement in one_or_many(&policy["Statement"]) {
                let condition = intrinsic(statement, "If")
                    .and_then(Yaml::as_sequence)
                    .map(|b| &b[0]);
                let reads_secret = format!("{statement:?}").contains("secretsmanager:");
                let only_when_given = condition.is_some_and(|condition| {
                    !LOGS_DOMAIN.condition_holds(template, condition)
                        && MIGRATING.condition_holds(template, condition)
                });
                if reads_secret && !only_when_given {
                    violations.push(format!(
                        "{id}: reads the Azure secret even when AzureCredentialsSecretArn is empty (an invalid policy)"
                    ));
                }
            }
        }
        let environments = [&template["Globals"]["Function"], &function["Properties"]]
            .map(|holder| &holder["Environment"]["Variables"]);
        for variables in environments {
            for name in PLAIN_AZURE_CREDENTIALS {
                if variables.get(name).is_some() {
                    violations.push(format!(
                        "{id}: {name} in its environment: the credential goes in the secret"
                    ));
                }
            }
            if let Some(arn) = variables.get("AZURE_CREDENTIALS_SECRET_ARN") {
                if as_sub_string(arn) != AZURE_SECRET {
                    violations.push(format!(
                        "{id}: AZURE_CREDENTIALS_SECRET_ARN is not {AZURE_SECRET}"
                    ));
                }
            }
        }
    }
    violations
}

// ------------------------------------------------------------------------------------ tests

type Check = fn(&Yaml) -> Vec<String>;

const CHECKS: [(&str, Check); 14] = [
    ("least privilege", least_privilege_violations),
    ("iam:PassRole", pass_role_violations),
    ("snapshot role trust", snapshot_role_trust_violations),
    ("snapshot bucket", bucket_violations),
    ("workflow", workflow_violations),
    ("schedule", schedule_violations),
    ("functions", function_violations),
    ("role mapping", role_mapping_violations),
    ("substitutions", substitution_violations),
    ("logs key", logs_key_violations),
    ("S3-only functions", s3_only_violations),
    ("parameter patterns", parameter_pattern_violations),
    ("state machine roles", state_machine_role_violations),
    ("migrate", migrate_violations),
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
        // The fixture's definition is inline, and it has no logs key, verify, parameter patterns or
        // migration (the tests at the end bite instead).
        .filter(|(check, _)| {
            ![
                "substitutions",
                "logs key",
                "S3-only functions",
                "parameter patterns",
                "migrate",
            ]
            .contains(check)
        })
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
    expect("iam:PassRole held by");
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

#[test]
fn two_stacks_in_one_account_claim_no_name_twice() {
    let template = load_template(TEMPLATE);
    let clashes = name_clashes(&template, &LOGS_DOMAIN, &SEARCH_DOMAIN);
    assert!(clashes.is_empty(), "{}", clashes.join("\n"));

    // The check bites: without its Name, the schedule is named after its logical id in both.
    let mut unnamed = template.clone();
    let schedule = &mut unnamed["Resources"]["SnapshotStateMachine"]["Properties"]["Events"]
        ["Nightly"]["Properties"];
    schedule
        .as_mapping_mut()
        .expect("the schedule's properties")
        .remove("Name");
    let clashes = name_clashes(&unnamed, &LOGS_DOMAIN, &SEARCH_DOMAIN);
    assert_eq!(
        clashes,
        ["AWS::Scheduler::Schedule SnapshotStateMachineNightly: ossnap-logs and ossnap-search both claim it"]
    );

    // Both keep the default repository name: without the Stack dimension, each stack's alarm
    // would watch the other domain's snapshots too.
    let mut unkeyed = template.clone();
    let metrics = unkeyed["Resources"]["StaleSnapshotsAlarm"]["Properties"]["Metrics"]
        .as_sequence_mut()
        .expect("the alarm's metrics");
    for metric in metrics {
        if let Some(dimensions) = metric["MetricStat"]["Metric"]["Dimensions"].as_sequence_mut() {
            dimensions.retain(|dimension| dimension["Name"].as_str() != Some("Stack"));
        }
    }
    let clashes = name_clashes(&unkeyed, &LOGS_DOMAIN, &SEARCH_DOMAIN);
    assert_eq!(clashes.len(), 1, "{clashes:?}");
    assert!(clashes[0].contains("ossnap metrics of"), "{clashes:?}");
}

#[test]
fn a_logs_key_for_every_log_group_of_the_account_is_refused() {
    let mut template = load_template(TEMPLATE);
    let statements = template["Resources"]["OperationsKey"]["Properties"]["KeyPolicy"]["Statement"]
        .as_sequence_mut()
        .expect("the key policy's statements");
    let logs = statements
        .iter_mut()
        .find(|s| s["Sid"].as_str() == Some("CloudWatchLogsEncryptsThisStacksLogGroups"))
        .expect("the logs statement");
    logs["Condition"] = serde_yaml::from_str(
        "ArnLike: {kms:EncryptionContext:aws:logs:arn: 'arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*'}",
    )
    .unwrap();
    let violations = logs_key_violations(&template);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].contains("log-group:*"), "{violations:?}");
}

#[test]
fn the_old_findings_are_refused() {
    // Each finding of issue 13, put back into the real template, fails a check.
    let findings: [(&str, &str, &str); 4] = [
        (
            "RegisterFunction PassRole condition",
            "StringEquals: {iam:PassedToService: es.amazonaws.com}",
            "requires iam:PassedToService by default",
        ),
        (
            "SnapshotBucketPolicy DeletionPolicy",
            "Delete",
            "DeletionPolicy is not Retain",
        ),
        (
            "SnapshotBasePath AllowedPattern",
            "^[a-zA-Z0-9!_.*'()-]+(/[a-zA-Z0-9!_.*'()-]+)*$",
            "SnapshotBasePath accepts \"prod*\"",
        ),
        (
            "VerifyFunction es grant",
            "es:ESHttpGet",
            "VerifyFunction: holds es:ESHttpGet",
        ),
    ];
    for (finding, value, expected) in findings {
        let mut template = load_template(TEMPLATE);
        let value: Yaml = serde_yaml::from_str(value).unwrap();
        let resources = &mut template["Resources"];
        match finding {
            "RegisterFunction PassRole condition" => {
                let statements = resources["RegisterFunction"]["Properties"]["Policies"][0]
                    ["Statement"]
                    .as_sequence_mut()
                    .unwrap();
                let pass_role = statements
                    .iter_mut()
                    .find(|s| s["Action"].as_str() == Some("iam:PassRole"))
                    .unwrap();
                pass_role["Condition"] = value;
            }
            "SnapshotBucketPolicy DeletionPolicy" => {
                resources["SnapshotBucketPolicy"]["DeletionPolicy"] = value;
            }
            "SnapshotBasePath AllowedPattern" => {
                template["Parameters"]["SnapshotBasePath"]["AllowedPattern"] = value;
            }
            "VerifyFunction es grant" => {
                let statements = resources["VerifyFunction"]["Properties"]["Policies"][0]
                    ["Statement"]
                    .as_sequence_mut()
                    .unwrap();
                statements.push(
                    serde_yaml::from_str(&format!(
                        "{{Effect: Allow, Action: {value:?}, Resource: '${{DomainArn}}/_snapshot/${{SnapshotRepository}}/*'}}",
                        value = value.as_str().unwrap()
                    ))
                    .unwrap(),
                );
            }
            _ => unreachable!(),
        }
        let found: Vec<String> = CHECKS.iter().flat_map(|(_, run)| run(&template)).collect();
        assert!(
            found.iter().any(|v| v.contains(expected)),
            "{finding}: no violation mentions {expected:?}:\n{}",
            found.join("\n")
        );
    }
}

/// Where each function emits its metrics, to check that the dashboard shows what is emitted.
const METRIC_SOURCES: [(&str, &str); 3] = [
    ("check-status", "crates/core/src/status.rs"),
    ("verify", "crates/verify/src/lib.rs"),
    ("retention", "crates/core/src/retention.rs"),
];

#[test]
fn the_dashboard_shows_how_the_backups_go() {
    let template = load_template(TEMPLATE);
    let dashboards = resources_of_type(&template, &["AWS::CloudWatch::Dashboard"]);
    assert_eq!(dashboards.len(), 1, "one dashboard per stack");
    let body = LOGS_DOMAIN.render(&template, &dashboards[0].1["Properties"]["DashboardBody"]);
    let body: Json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let widgets = body["widgets"].as_array().expect("widgets");
    let metrics: Vec<&Vec<Json>> = widgets
        .iter()
        .flat_map(|w| w["properties"]["metrics"].as_array().into_iter().flatten())
        .filter_map(Json::as_array)
        .collect();
    let shown: BTreeSet<&str> = metrics.iter().filter_map(|m| m[1].as_str()).collect();
    for measure in [
        "SnapshotsHealthy",
        "SnapshotsUnhealthy",
        "SnapshotDurationSeconds",
        "ShardsVerified",
        "BytesVerified",
        "SnapshotsKept",
        "SnapshotsDeleted",
        "ExecutionsFailed",
    ] {
        assert!(
            shown.contains(measure),
            "the dashboard does not show {measure}"
        );
    }
    // Every ossnap metric is this stack's repository's, as its function emits it.
    for metric in metrics
        .iter()
        .filter(|m| m[0] == ossnap_core::metrics::NAMESPACE)
    {
        let dimension = |name: &str| {
            let at = metric.iter().position(|v| v == name)?;
            metric[at + 1].as_str()
        };
        assert_eq!(dimension("Repository"), Some("ossnap"), "{metric:?}");
        assert!(dimension("Stack").is_some(), "{metric:?}");
        let function = dimension("Function").expect("a Function dimension");
        let (_, source) = METRIC_SOURCES
            .iter()
            .find(|(f, _)| *f == function)
            .unwrap_or_else(|| panic!("{function} emits no metrics"));
        let source = std::fs::read_to_string(infra_dir().join("..").join(source)).unwrap();
        let name = metric[1].as_str().unwrap();
        assert!(
            source.contains(&format!("\"{name}\"")) && source.contains(&format!("\"{function}\"")),
            "{function} does not emit {name}"
        );
    }
    let alarms: Vec<&str> = widgets
        .iter()
        .flat_map(|w| w["properties"]["alarms"].as_array().into_iter().flatten())
        .filter_map(Json::as_str)
        .collect();
    assert!(
        alarms.iter().any(|a| a.contains("StaleSnapshotsAlarm")),
        "the dashboard does not show the stale-snapshots alarm: {alarms:?}"
    );
}

#[test]
fn an_alarm_fires_when_the_newest_healthy_snapshot_is_older_than_the_schedule_allows() {
    let template = load_template(TEMPLATE);
    let alarm = &template["Resources"]["StaleSnapshotsAlarm"]["Properties"];
    let watched = one_or_many(&alarm["Metrics"])
        .into_iter()
        .find(|m| m["MetricStat"]["Metric"]["MetricName"].as_str() == Some("SnapshotsHealthy"))
        .expect("the alarm watches SnapshotsHealthy");
    assert_eq!(watched["MetricStat"]["Period"].as_u64(), Some(3600));
    assert_eq!(
        alarm["ComparisonOperator"].as_str(),
        Some("LessThanThreshold")
    );
    assert_eq!(alarm["Threshold"].as_u64(), Some(1));
    // Nothing at all reported is a stopped backup, not a healthy silence.
    assert_eq!(alarm["TreatMissingData"].as_str(), Some("breaching"));
    // Every hour of the window, not some, must have had no healthy snapshot.
    for key in ["EvaluationPeriods", "DatapointsToAlarm"] {
        assert_eq!(
            as_sub_string(&alarm[key]),
            "${HealthySnapshotMaxAgeHours}",
            "{key}"
        );
    }
    assert_eq!(strings(&alarm["AlarmActions"]), ["${FailureTopic}"]);
    // The default window is the default daily schedule plus a margin.
    let window = template["Parameters"]["HealthySnapshotMaxAgeHours"]["Default"].as_u64();
    assert!(window.is_some_and(|hours| hours > 24), "{window:?}");
    assert_eq!(
        template["Parameters"]["ScheduleExpression"]["Default"].as_str(),
        Some("cron(0 2 * * ? *)")
    );
}

#[test]
fn restore_reads_metadata_and_deletes_only_the_drill_copies() {
    let template = load_template(TEMPLATE);
    let widen = |sid: &str, resource: &str| {
        let mut widened = template.clone();
        let statements = widened["Resources"]["CheckRestoreFunction"]["Properties"]["Policies"][0]
            ["Statement"]
            .as_sequence_mut()
            .expect("check-restore's statements");
        let statement = statements
            .iter_mut()
            .find(|s| s["Sid"].as_str() == Some(sid))
            .expect("the statement");
        statement["Resource"] = Yaml::String(resource.to_string());
        least_privilege_violations(&widened)
    };
    let any_index = widen("DeleteRestoreDrillCopiesOnly", "${DomainArn}/*");
    assert_eq!(any_index.len(), 1, "{any_index:?}");
    assert!(any_index[0].contains("es:ESHttpDelete"), "{any_index:?}");
    let any_read = widen("ReadRecoveryHealthAndCounts", "${DomainArn}/*/_search");
    assert_eq!(any_read.len(), 1, "{any_read:?}");

    // The drill's failure path cleans up, then notifies; a cleanup that goes elsewhere does not count.
    let mut astray = template.clone();
    let machine = &mut astray["Resources"]["SnapshotStateMachine"]["Properties"];
    let definition: Json = serde_json::from_str(&read("statemachine/snapshot.asl.json")).unwrap();
    let mut definition = definition;
    definition["States"]["CleanUpDrill"]["Next"] = Json::String("Retention".into());
    machine.as_mapping_mut().unwrap().remove("DefinitionUri");
    machine["Definition"] = serde_yaml::to_value(&definition).unwrap();
    let violations = workflow_violations(&astray);
    assert!(
        violations
            .iter()
            .any(|v| v
                .contains("StartRestoreDrill: no Catch of States.ALL into an SNS notification")),
        "{violations:?}"
    );
}

/// The template with the migrate workflow's definition inline, as `edit` leaves it.
fn with_migrate_definition(template: &Yaml, edit: impl FnOnce(&mut Json)) -> Yaml {
    let mut edited = template.clone();
    let machine = &mut edited["Resources"][MIGRATE_STATE_MACHINE]["Properties"];
    let mut definition: Json =
        serde_json::from_str(&read("statemachine/migrate.asl.json")).unwrap();
    edit(&mut definition);
    machine.as_mapping_mut().unwrap().remove("DefinitionUri");
    machine["Definition"] = serde_yaml::to_value(&definition).unwrap();
    edited
}

fn statements_of_mut<'t>(template: &'t mut Yaml, id: &str) -> &'t mut Vec<Yaml> {
    template["Resources"][id]["Properties"]["Policies"]
        .as_sequence_mut()
        .unwrap()
        .iter_mut()
        .find_map(|policy| policy.get_mut("Statement"))
        .and_then(Yaml::as_sequence_mut)
        .unwrap()
}

#[test]
fn the_migrate_workflow_holds_what_a_safe_copy_needs() {
    let template = load_template(TEMPLATE);
    let yaml = |text: &str| -> Yaml { serde_yaml::from_str(text).unwrap() };
    let mut cases: Vec<(&str, Yaml, &str)> = vec![
        (
            "a failed batch tolerated",
            with_migrate_definition(&template, |d| {
                d["States"]["CopyBatches"]["ToleratedFailurePercentage"] = 5.into()
            }),
            "ToleratedFailurePercentage is not 0",
        ),
        (
            "the batches copied inline",
            with_migrate_definition(&template, |d| {
                d["States"]["CopyBatches"]["ItemProcessor"]["ProcessorConfig"] =
                    serde_json::json!({"Mode": "INLINE"})
            }),
            "0 Distributed Maps",
        ),
        (
            "no MaxConcurrencyPath",
            with_migrate_definition(&template, |d| {
                d["States"]["CopyBatches"]
                    .as_object_mut()
                    .unwrap()
                    .remove("MaxConcurrencyPath");
            }),
            "MaxConcurrency does not come from the input",
        ),
        (
            "Finalize before the batches",
            with_migrate_definition(&template, |d| {
                d["States"]["Plan"]["Next"] = "Finalize".into();
                d["States"]["Finalize"]["Next"] = "CopyBatches".into();
                d["States"]["CopyBatches"]["Next"] = "VerifyOnAzure".into();
            }),
            "runs [\"plan\", \"finalize\", \"batches\", \"verify in Azure\"]",
        ),
        (
            "verify without its loop",
            with_migrate_definition(&template, |d| {
                d["States"]["VerifyOnAzure"]["ItemProcessor"]["States"]["IsSnapshotVerified"]
                    ["Choices"][0]["Next"] = "SnapshotVerified".into()
            }),
            "no loop on complete: false",
        ),
        (
            // The nested states are checked as the top-level ones.
            "a batch task without a timeout",
            with_migrate_definition(&template, |d| {
                d["States"]["CopyBatches"]["ItemProcessor"]["States"]["CopyBatch"]
                    .as_object_mut()
                    .unwrap()
                    .remove("TimeoutSeconds");
            }),
            "CopyBatches.CopyBatch: Task without TimeoutSeconds",
        ),
        (
            "a batch retried for a bad event",
            with_migrate_definition(&template, |d| {
                d["States"]["CopyBatches"]["ItemProcessor"]["States"]["CopyBatch"]["Retry"][1]
                    ["ErrorEquals"]
                    .as_array_mut()
                    .unwrap()
                    .push("ConfigError".into())
            }),
            "CopyBatches.CopyBatch: retries ConfigError",
        ),
    ];
    let mut scheduled = template.clone();
    scheduled["Resources"][MIGRATE_STATE_MACHINE]["Properties"]["Events"] =
        yaml("Weekly: {Type: ScheduleV2, Properties: {ScheduleExpression: 'rate(7 days)'}}");
    cases.push(("a schedule", scheduled, "a migration is started by hand"));

    let mut writes_repository = template.clone();
    statements_of_mut(&mut writes_repository, "CopyFunction").push(yaml(
        "{Effect: Allow, Action: s3:PutObject, Resource: 'arn:${AWS::Partition}:s3:::${SnapshotBucketName}/${SnapshotBasePath}/*'}",
    ));
    cases.push((
        "copy writing the repository",
        writes_repository,
        "copy writes nothing in S3 but its plans",
    ));

    let mut other_writer = template.clone();
    statements_of_mut(&mut other_writer, "VerifyFunction").push(yaml(
        "{Effect: Allow, Action: s3:PutObject, Resource: 'arn:${AWS::Partition}:s3:::${SnapshotBucketName}/ossnap-plans/${SnapshotBasePath}/*'}",
    ));
    cases.push((
        "verify writing plans",
        other_writer,
        "VerifyFunction: [\"s3:PutObject\"] on arn:${AWS::Partition}:s3:::${SnapshotBucketName}/ossnap-plans/${SnapshotBasePath}/* reaches beyond",
    ));

    let mut verdict_writer = template.clone();
    statements_of_mut(&mut verdict_writer, "RetentionFunction").push(yaml(
        "{Effect: Allow, Action: s3:PutObject, Resource: 'arn:${AWS::Partition}:s3:::${SnapshotBucketName}/ossnap-verdicts/${SnapshotBasePath}/*'}",
    ));
    cases.push((
        "retention writing verdicts",
        verdict_writer,
        "RetentionFunction: [\"s3:PutObject\"] on arn:${AWS::Partition}:s3:::${SnapshotBucketName}/ossnap-verdicts/${SnapshotBasePath}/* reaches beyond",
    ));

    let mut unconditional = template.clone();
    statements_of_mut(&mut unconditional, "CopyFunction").push(yaml(
        "{Effect: Allow, Action: secretsmanager:GetSecretValue, Resource: !Ref AzureCredentialsSecretArn}",
    ));
    cases.push((
        "the secret read unconditionally",
        unconditional,
        "CopyFunction: reads the Azure secret even when AzureCredentialsSecretArn is empty",
    ));

    let mut any_secret = template.clone();
    statements_of_mut(&mut any_secret, "CopyFunction").push(yaml(
        "!If [HasAzureCredentialsSecret, {Effect: Allow, Action: secretsmanager:GetSecretValue, Resource: '*'}, !Ref AWS::NoValue]",
    ));
    cases.push((
        "every secret",
        any_secret,
        "only [\"CopyFunction\", \"VerifyFunction\"] read the one secret",
    ));

    let mut restore_reads_secret = template.clone();
    statements_of_mut(&mut restore_reads_secret, "RestoreFunction").push(yaml(
        "!If [HasAzureCredentialsSecret, {Effect: Allow, Action: secretsmanager:GetSecretValue, Resource: !Ref AzureCredentialsSecretArn}, !Ref AWS::NoValue]",
    ));
    cases.push((
        "another reader of the secret",
        restore_reads_secret,
        "RestoreFunction: [\"secretsmanager:GetSecretValue\"]",
    ));

    let mut plain_key = template.clone();
    plain_key["Resources"]["CopyFunction"]["Properties"]["Environment"]["Variables"]
        ["AZURE_STORAGE_KEY"] = yaml("'bm90LWEtcmVhbC1rZXk='");
    cases.push((
        "a key in the environment",
        plain_key,
        "CopyFunction: AZURE_STORAGE_KEY in its environment",
    ));

    let mut invokes_more = template.clone();
    invokes_more["Resources"][MIGRATE_STATE_MACHINE]["Properties"]["Policies"]
        .as_sequence_mut()
        .unwrap()
        .push(yaml(
            "LambdaInvokePolicy: {FunctionName: !Ref RetentionFunction}",
        ));
    cases.push((
        "an invoke grant it never uses",
        invokes_more,
        "MigrateStateMachine: may invoke RetentionFunction, which its definition never calls",
    ));

    let mut starts_others = template.clone();
    statements_of_mut(&mut starts_others, MIGRATE_STATE_MACHINE).push(yaml(
        "{Effect: Allow, Action: states:StartExecution, Resource: !Sub 'arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:ossnap-${AWS::StackName}'}",
    ));
    cases.push((
        "starting the snapshot workflow",
        starts_others,
        "MigrateStateMachine: [\"states:StartExecution\"] on arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:ossnap-${AWS::StackName} reaches beyond",
    ));

    for (case, edited, expected) in cases {
        let found: Vec<String> = CHECKS.iter().flat_map(|(_, run)| run(&edited)).collect();
        assert!(
            found.iter().any(|v| v.contains(expected)),
            "{case}: no violation mentions {expected:?}:\n{}",
            found.join("\n")
        );
    }
}
