//! The OpenSearch API specification in ../shared/contracts/opensearch-api, read at test time:
//! finds the operation a request hit and bundles its 200 response schema, with every `$ref`
//! (across the YAML files) rewritten into local `$defs`, for the jsonschema crate.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

pub fn contracts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/contracts/opensearch-api")
}

pub struct Spec {
    spec_dir: PathBuf,
    files: HashMap<String, Value>,
}

/// `a/b/../c.yaml` → `a/c.yaml`, relative to the spec directory.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

fn pointer_get<'v>(value: &'v Value, pointer: &str) -> &'v Value {
    value
        .pointer(pointer)
        .unwrap_or_else(|| panic!("spec pointer {pointer} not found"))
}

impl Spec {
    pub fn load() -> Self {
        Spec {
            spec_dir: contracts_dir().join("spec"),
            files: HashMap::new(),
        }
    }

    fn file(&mut self, name: &str) -> &Value {
        if !self.files.contains_key(name) {
            let text = std::fs::read_to_string(self.spec_dir.join(name))
                .unwrap_or_else(|error| panic!("{name}: {error}"));
            let value: Value =
                serde_yaml::from_str(&text).unwrap_or_else(|error| panic!("{name}: {error}"));
            self.files.insert(name.to_owned(), value);
        }
        &self.files[name]
    }

    /// The namespace file, path template and operation for a concrete request; literal segments
    /// beat `{parameters}`.
    pub fn operation(&mut self, method: &str, path: &str) -> Option<(String, String, Value)> {
        let segments: Vec<&str> = path
            .split('/')
            .filter(|segment| !segment.is_empty())
            .collect();
        let mut best: Option<(usize, String, String, Value)> = None;
        let namespaces: Vec<String> = std::fs::read_dir(self.spec_dir.join("namespaces"))
            .unwrap()
            .map(|entry| {
                format!(
                    "namespaces/{}",
                    entry.unwrap().file_name().to_string_lossy()
                )
            })
            .collect();
        for namespace in namespaces {
            let document = self.file(&namespace).clone();
            let Some(paths) = document["paths"].as_object() else {
                continue;
            };
            for (template, operations) in paths {
                let template_segments: Vec<&str> = template
                    .split('/')
                    .filter(|segment| !segment.is_empty())
                    .collect();
                if template_segments.len() != segments.len() {
                    continue;
                }
                let mut literal = 0;
                let matches = template_segments
                    .iter()
                    .zip(&segments)
                    .all(|(expected, actual)| {
                        if expected.starts_with('{') {
                            true
                        } else {
                            literal += 1;
                            expected == actual
                        }
                    });
                let Some(operation) = operations.get(method.to_lowercase()) else {
                    continue;
                };
                if matches && best.as_ref().is_none_or(|(score, ..)| literal > *score) {
                    best = Some((
                        literal,
                        namespace.clone(),
                        template.clone(),
                        operation.clone(),
                    ));
                }
            }
        }
        best.map(|(_, namespace, template, operation)| (namespace, template, operation))
    }

    /// A self-contained JSON schema for the 200 response of an operation.
    pub fn response_schema(&mut self, namespace: &str, operation: &Value) -> Option<Value> {
        let mut response = operation["responses"]["200"].clone();
        if let Some(reference) = response["$ref"].as_str() {
            let pointer = reference.trim_start_matches('#').to_owned();
            response = pointer_get(self.file(namespace), &pointer).clone();
        }
        let schema = response["content"]["application/json"]["schema"].clone();
        if schema.is_null() {
            return None;
        }
        Some(self.bundle(namespace, schema))
    }

    /// A schema from a file by pointer, bundled (e.g. `_common.yaml#/components/schemas/ErrorResponseBase`).
    pub fn schema(&mut self, file: &str, pointer: &str) -> Value {
        let schema = pointer_get(self.file(file), pointer).clone();
        self.bundle(file, schema)
    }

    fn bundle(&mut self, file: &str, schema: Value) -> Value {
        let mut bundler = Bundler::default();
        let root = bundler.rewrite(&schema, file);
        while let Some((target_file, pointer, name)) = bundler.queue.pop() {
            let target = pointer_get(self.file(&target_file), &pointer).clone();
            let rewritten = bundler.rewrite(&target, &target_file);
            bundler.defs.insert(name, rewritten);
        }
        let mut bundled = root.as_object().cloned().unwrap_or_default();
        bundled.insert("$defs".to_owned(), Value::Object(bundler.defs));
        bundled.insert(
            "$schema".to_owned(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        Value::Object(bundled)
    }
}

#[derive(Default)]
struct Bundler {
    names: HashMap<String, String>,
    defs: Map<String, Value>,
    queue: Vec<(String, String, String)>,
}

impl Bundler {
    fn def_name(&mut self, file: &str, pointer: &str) -> String {
        let key = format!("{file}#{pointer}");
        if let Some(name) = self.names.get(&key) {
            return name.clone();
        }
        let name: String = key
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let name = format!("{name}_{}", self.names.len());
        self.names.insert(key, name.clone());
        self.queue
            .push((file.to_owned(), pointer.to_owned(), name.clone()));
        name
    }

    fn rewrite(&mut self, value: &Value, file: &str) -> Value {
        match value {
            Value::Object(object) => {
                let mut out = Map::new();
                for (key, child) in object {
                    if key == "$ref" {
                        let reference = child.as_str().unwrap_or_default();
                        let (target, pointer) =
                            reference.split_once('#').unwrap_or((reference, ""));
                        let target_file = if target.is_empty() {
                            file.to_owned()
                        } else {
                            let directory =
                                file.rsplit_once('/').map_or("", |(directory, _)| directory);
                            normalize(&format!("{directory}/{target}"))
                        };
                        let name = self.def_name(&target_file, pointer);
                        out.insert(key.clone(), json!(format!("#/$defs/{name}")));
                    } else {
                        out.insert(key.clone(), self.rewrite(child, file));
                    }
                }
                Value::Object(out)
            }
            Value::Array(items) => {
                Value::Array(items.iter().map(|item| self.rewrite(item, file)).collect())
            }
            other => other.clone(),
        }
    }
}

/// Validates a body against a bundled schema; the error lists every violation.
pub fn validate(schema: &Value, body: &Value) -> Result<(), String> {
    let validator = jsonschema::validator_for(schema)
        .map_err(|error| format!("schema does not compile: {error}"))?;
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}
