//! `initguard check`: the webhook's pipeline over manifests, as the apiserver would call the
//! mutating and then the validating webhook on a CREATE of each object.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use initguard_core::release::Release;
use initguard_core::{FailurePolicy, Mode, Phase, Pipeline, Request, Review, WorkloadKind};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::input::{self, Document, InputError, Objects, ReadLimits};
use crate::yaml;

/// A finding initguard makes itself, beside the policies' rules: its id and what it means.
#[derive(Debug, Clone, Copy)]
pub struct OwnRule {
    pub id: &'static str,
    pub summary: &'static str,
}

/// A policy could not give a verdict; its failurePolicy decided what that did.
pub const POLICY_FAILED: OwnRule = OwnRule {
    id: "IG-E001",
    summary: "a policy could not give a verdict: failurePolicy Fail denies (500), Ignore warns",
};
/// An AdmissionReview document that is not one.
pub const REVIEW_UNREADABLE: OwnRule = OwnRule {
    id: "IG-E002",
    summary: "an AdmissionReview document that cannot be read as one (400)",
};
/// An object in an API version the Kubernetes release does not serve.
pub const VERSION_NOT_SERVED: OwnRule = OwnRule {
    id: "IG-E003",
    summary: "the object's apiVersion is not served by the Kubernetes release checked against",
};
/// Every [`OwnRule`], for the rule lists of SARIF and the docs.
pub const OWN_RULES: [OwnRule; 3] = [POLICY_FAILED, REVIEW_UNREADABLE, VERSION_NOT_SERVED];

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Denies the object.
    Error,
    /// Reported to the user, allowed.
    Warning,
    /// Recorded only (audit mode).
    Info,
}

/// One thing a policy said about an object.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub policy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allowed,
    Denied,
    Skipped,
}

/// The result for one object.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectReport {
    pub source: String,
    pub document: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<usize>,
    pub line: usize,
    pub kind: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub verdict: Verdict,
    /// 403 for violations, 500 for a failed policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// Why an object was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub findings: Vec<Finding>,
    /// The RFC 6902 patch the mutating webhook would return.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<json_patch::Patch>,
    /// How long the policies took on this object.
    #[serde(skip)]
    pub duration: std::time::Duration,
    /// The object in its final form: mutated, or as read.
    #[serde(skip)]
    pub object: Value,
    /// The `kind: *List` this object was an item of, without its items.
    #[serde(skip)]
    list: Option<Arc<Value>>,
    #[serde(skip)]
    source_index: usize,
}

impl ObjectReport {
    /// Denies the object for a reason of initguard's own, as the apiserver would refuse it
    /// with `code`.
    fn refuse(&mut self, code: u16, rule: OwnRule, path: Option<String>, message: String) {
        self.verdict = Verdict::Denied;
        self.code = Some(code);
        self.findings.push(Finding {
            policy: "initguard".to_owned(),
            rule: Some(rule.id.to_owned()),
            severity: Severity::Error,
            path,
            message,
        });
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }
}

/// What `check` found besides the objects themselves, which it hands out as it judges them.
#[derive(Debug, Default)]
pub struct Checked {
    pub summary: Summary,
    pub input_errors: Vec<InputError>,
    /// What a folder walk passed over, and why (a FIFO, a symlink cycle).
    pub skipped: Vec<String>,
    /// Every source read, in input order: files by path, stdin as `-`.
    pub source_names: Vec<String>,
}

/// Everything `check` found, the objects kept.
#[derive(Debug)]
pub struct CheckReport {
    pub objects: Vec<ObjectReport>,
    pub checked: Checked,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub objects: usize,
    pub allowed: usize,
    pub denied: usize,
    pub skipped: usize,
    pub errors: usize,
    pub warnings: usize,
    pub input_errors: usize,
}

impl Summary {
    fn count(&mut self, object: &ObjectReport) {
        self.objects += 1;
        match object.verdict {
            Verdict::Allowed => self.allowed += 1,
            Verdict::Denied => self.denied += 1,
            Verdict::Skipped => self.skipped += 1,
        }
        self.errors += object.count(Severity::Error);
        self.warnings += object.count(Severity::Warning);
    }
}

/// How `check` reads and judges its inputs.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// The Kubernetes release whose API the objects must use.
    pub release: Release,
    pub limits: ReadLimits,
    /// Keep each object's final form, for [`CheckReport::final_manifests`] (`--mutated`); without
    /// it an object's tree is dropped once judged.
    pub keep_objects: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            release: initguard_core::release::LATEST,
            limits: ReadLimits::default(),
            keep_objects: false,
        }
    }
}

/// Reads `inputs` and evaluates every object with `pipeline`, in parallel, as Kubernetes
/// `options.release` would admit them, keeping every object's report.
pub fn check(
    pipeline: &Pipeline,
    options: CheckOptions,
    inputs: &[PathBuf],
    stdin: &mut dyn std::io::Read,
) -> CheckReport {
    let mut objects = Vec::new();
    let checked = check_streaming(pipeline, options, inputs, stdin, &mut |report| {
        objects.push(report);
        Ok(())
    });
    CheckReport {
        objects,
        // Collecting cannot fail.
        checked: checked.unwrap_or_default(),
    }
}

/// Documents read and judged at once: enough to keep both cores busy, few enough that only
/// their trees and reports are in memory.
const BATCH: usize = 256;
/// A batch is judged once its documents' text reaches this, whatever their number.
const BATCH_BYTES: usize = 16 << 20;

/// As [`check`], handing each object's report to `each` in input order as soon as its batch
/// is judged, so that memory holds the input text and a batch, not every report. An error
/// from `each` (a closed stdout) stops the run.
pub fn check_streaming(
    pipeline: &Pipeline,
    options: CheckOptions,
    inputs: &[PathBuf],
    stdin: &mut dyn std::io::Read,
    each: &mut dyn FnMut(ObjectReport) -> std::io::Result<()>,
) -> std::io::Result<Checked> {
    let input::Found {
        inputs,
        errors: mut input_errors,
        skipped,
    } = input::find_inputs(inputs);
    let limits = options.limits;
    // Stdin cannot be read twice, and the Namespaces in it must be known before its first
    // object is judged: it is kept (up to the input limit). Files are read twice instead.
    let mut stdin_units: Option<Vec<Result<yaml::Unit, InputError>>> = inputs
        .iter()
        .any(|input| matches!(input, input::Input::Stdin))
        .then(|| input::stdin_units(stdin, limits).collect());
    let namespaces = namespaces_in(&inputs, stdin_units.as_deref(), limits);
    let evaluate = |document: Document| {
        let name = inputs[document.source].name();
        evaluate(pipeline, options, name, document, &namespaces)
    };
    let mut summary = Summary::default();
    let mut unreadable = Vec::new();
    let mut emit = |(report, error): (ObjectReport, Option<InputError>)| {
        summary.count(&report);
        unreadable.extend(error);
        each(report)
    };
    let mut judge_batch = |batch: &mut Vec<(usize, yaml::Unit)>,
                           input_errors: &mut Vec<InputError>|
     -> std::io::Result<()> {
        let read: Vec<Vec<Result<Judged<'_>, InputError>>> = batch
            .par_iter()
            .map(|(index, unit)| {
                objects_in(inputs[*index].name(), *index, unit)
                    .map(|objects| {
                        objects.map(|objects| match objects {
                            Objects::One(document) => Judged::One(Box::new(evaluate(document))),
                            Objects::List(list) => Judged::List(list),
                        })
                    })
                    .collect()
            })
            .collect();
        for document in read.into_iter().flatten() {
            match document {
                Ok(Judged::One(judged)) => emit(*judged)?,
                // A list's items are judged a batch at a time, in parallel, so that only one
                // batch of its items is ever a tree.
                Ok(Judged::List(list)) => {
                    for items in list.batches(BATCH) {
                        let judged: Vec<_> = items
                            .into_par_iter()
                            .map(|item| item.map(evaluate))
                            .collect();
                        for item in judged {
                            match item {
                                Ok(judged) => emit(judged)?,
                                Err(error) => input_errors.push(error),
                            }
                        }
                    }
                }
                Err(error) => input_errors.push(error),
            }
        }
        batch.clear();
        Ok(())
    };
    let mut batch = Vec::with_capacity(BATCH);
    let mut batch_bytes = 0;
    for (index, input) in inputs.iter().enumerate() {
        let units: input::Units<'_> = match input {
            // Named twice, stdin is read once.
            input::Input::Stdin => Box::new(stdin_units.take().unwrap_or_default().into_iter()),
            input::Input::File { .. } => match input.units(limits) {
                Ok(units) => units,
                Err(error) => {
                    input_errors.push(error);
                    continue;
                }
            },
        };
        for unit in units {
            match unit {
                Ok(unit) => {
                    batch_bytes += unit.text().len();
                    batch.push((index, unit));
                    if batch.len() == BATCH || batch_bytes >= BATCH_BYTES {
                        judge_batch(&mut batch, &mut input_errors)?;
                        batch_bytes = 0;
                    }
                }
                Err(error) => input_errors.push(error),
            }
        }
    }
    judge_batch(&mut batch, &mut input_errors)?;
    input_errors.extend(unreadable);
    summary.input_errors = input_errors.len();
    Ok(Checked {
        summary,
        input_errors,
        skipped,
        source_names: inputs.iter().map(|input| input.name().to_owned()).collect(),
    })
}

/// The objects of `unit`, of source `index` named `name`.
fn objects_in<'a>(
    name: &'a str,
    index: usize,
    unit: &'a yaml::Unit,
) -> impl Iterator<Item = Result<Objects<'a>, InputError>> {
    unit.read_lazily()
        .into_iter()
        .map(move |document| input::objects_of(index, name, document))
}

/// Namespace labels feed the namespace selectors of every object, so they are read first:
/// only inputs that mention `Namespace` are read for it, and only their documents that do are
/// parsed.
fn namespaces_in(
    inputs: &[input::Input],
    stdin_units: Option<&[Result<yaml::Unit, InputError>]>,
    limits: ReadLimits,
) -> BTreeMap<String, BTreeMap<String, String>> {
    const WORD: &str = "Namespace";
    // The Namespaces of one unit, parsed only when its text names the kind.
    let of_unit = |index: usize, unit: &yaml::Unit| -> Vec<(String, BTreeMap<String, String>)> {
        if !unit.text().contains(WORD) {
            return Vec::new();
        }
        objects_in(inputs[index].name(), index, unit)
            .filter_map(Result::ok)
            .flat_map(|objects| match objects {
                Objects::One(document) => vec![Ok(document)],
                Objects::List(list) => list.batches(BATCH).flatten().collect(),
            })
            .filter_map(Result::ok)
            .filter_map(|document| namespace_of(&document.object))
            .collect()
    };
    inputs
        .par_iter()
        .enumerate()
        .filter(|(_, input)| input.mentions(WORD, limits))
        .flat_map_iter(|(index, input)| match input {
            input::Input::Stdin => stdin_units
                .unwrap_or_default()
                .iter()
                .filter_map(|unit| unit.as_ref().ok())
                .flat_map(|unit| of_unit(index, unit))
                .collect::<Vec<_>>(),
            // Each unit is looked at and dropped: a file is never held whole.
            input::Input::File { .. } => input.units(limits).map_or_else(
                |_| Vec::new(),
                |units| {
                    units
                        .filter_map(Result::ok)
                        .flat_map(|unit| of_unit(index, &unit))
                        .collect()
                },
            ),
        })
        .collect()
}

/// A document as the first pass over a batch leaves it: a lone object judged, or a list whose
/// items are judged after, a batch at a time.
enum Judged<'a> {
    One(Box<(ObjectReport, Option<InputError>)>),
    List(input::List<'a>),
}

/// Evaluates one object; an object whose pod spec Kubernetes could not read either is an input
/// error (reported once, with its field path), not a failure of every policy.
fn evaluate(
    pipeline: &Pipeline,
    options: CheckOptions,
    source: &str,
    document: Document,
    namespaces: &BTreeMap<String, BTreeMap<String, String>>,
) -> (ObjectReport, Option<InputError>) {
    let (mut report, error) = judge(pipeline, options.release, source, document, namespaces);
    if !options.keep_objects {
        report.object = Value::Null;
    }
    (report, error)
}

/// The name and labels of a Namespace manifest.
fn namespace_of(object: &Value) -> Option<(String, BTreeMap<String, String>)> {
    if object.get("kind").and_then(Value::as_str) != Some("Namespace") {
        return None;
    }
    let name = object.pointer("/metadata/name")?.as_str()?.to_owned();
    Some((name, initguard_core::matching::namespace_labels(object)))
}

fn judge(
    pipeline: &Pipeline,
    release: Release,
    source: &str,
    document: Document,
    namespaces: &BTreeMap<String, BTreeMap<String, String>>,
) -> (ObjectReport, Option<InputError>) {
    let text = |pointer: &str| {
        document
            .object
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let mut report = ObjectReport {
        source: source.to_owned(),
        document: document.number,
        item: document.item.as_ref().map(|item| item.index),
        list: document
            .item
            .as_ref()
            .map(|item| Arc::clone(&item.envelope)),
        line: document.line,
        kind: text("/kind").unwrap_or_default(),
        name: text("/metadata/name").unwrap_or_default(),
        namespace: text("/metadata/namespace"),
        verdict: Verdict::Skipped,
        code: None,
        reason: None,
        findings: Vec::new(),
        patch: None,
        duration: std::time::Duration::ZERO,
        object: Value::Null,
        source_index: document.source,
    };
    let mut request = if report.kind == "AdmissionReview" {
        let review = Review::from_value(&document.object);
        report.object = document.object;
        match review {
            Ok(review) => {
                let request = review.request;
                report.kind = format!("AdmissionReview({})", request.facts.kind.kind);
                report.name.clone_from(&request.facts.name);
                report.namespace.clone_from(&request.facts.namespace);
                request
            }
            Err(error) => {
                report.refuse(400, REVIEW_UNREADABLE, None, error.to_string());
                return (report, None);
            }
        }
    } else {
        let request = Request::create(document.object);
        let Some(kind) = request.workload_kind() else {
            let lookalike = WorkloadKind::ALL
                .iter()
                .any(|kind| kind.as_str() == report.kind);
            report.reason = Some(if lookalike {
                format!(
                    "{} of API group {:?} is not the Kubernetes {}: its pod spec is not read",
                    report.kind, request.facts.kind.group, report.kind
                )
            } else {
                format!("{} has no pod spec", report.kind)
            });
            report.object = request.into_object().unwrap_or_default();
            return (report, None);
        };
        let api_version = match request.facts.kind.group.as_str() {
            "" => request.facts.kind.version.clone(),
            group => format!("{group}/{}", request.facts.kind.version),
        };
        if let Err(not_served) = kind.served_in(&api_version, release) {
            let path = Some("apiVersion".to_owned());
            report.refuse(404, VERSION_NOT_SERVED, path, not_served.to_string());
            report.object = request.into_object().unwrap_or_default();
            return (report, None);
        }
        request
    };
    if let Err(error) = request.workload() {
        let unreadable = InputError::Unreadable {
            path: source.to_owned(),
            line: report.line,
            document: report.document,
            object: format!("{} {}", report.kind, report.name),
            error,
        };
        report.reason = Some("its pod spec cannot be read (see the input errors)".to_owned());
        if report.object.is_null() {
            report.object = request.into_object().unwrap_or_default();
        }
        return (report, Some(unreadable));
    }
    if let Some(namespace) = &request.facts.namespace {
        request.facts_mut().namespace_labels = namespaces.get(namespace).cloned();
    }
    let decision = pipeline.evaluate(&request, Phase::All);
    report.verdict = if decision.allowed() {
        Verdict::Allowed
    } else {
        Verdict::Denied
    };
    report.code = decision.denial.as_ref().map(|d| d.code);
    report.duration = decision.reports.iter().map(|r| r.duration).sum();
    for policy in &decision.reports {
        match &policy.result {
            Ok(outcome) => {
                let severity = match policy.mode {
                    Mode::Enforce => Severity::Error,
                    Mode::Warn => Severity::Warning,
                    Mode::Audit => Severity::Info,
                };
                let violations = outcome.violations.iter().map(|v| (v, severity));
                let warnings = outcome.warnings.iter().map(|w| (w, Severity::Warning));
                report
                    .findings
                    .extend(violations.chain(warnings).map(|(v, severity)| Finding {
                        policy: policy.name.clone(),
                        rule: (!v.rule.is_empty()).then(|| v.rule.to_string()),
                        severity,
                        path: v.path.clone(),
                        message: v.message.clone(),
                    }));
            }
            Err(error) => report.findings.push(Finding {
                policy: policy.name.clone(),
                rule: Some(POLICY_FAILED.id.to_owned()),
                severity: match policy.failure_policy {
                    FailurePolicy::Fail => Severity::Error,
                    FailurePolicy::Ignore => Severity::Warning,
                },
                path: None,
                message: format!("policy failed: {error}"),
            }),
        }
    }
    match decision.mutated {
        Some(mutated) => {
            report.object = mutated;
            report.patch = Some(decision.patch);
        }
        // A review's object is the review itself; a manifest's is the request's.
        None if report.object.is_null() => {
            report.object = request.into_object().unwrap_or_default();
        }
        None => {}
    }
    (report, None)
}

impl Checked {
    /// 0: all allowed; 1: a denial (or a warning, with `fail_on_warn`); 2: an input error.
    pub fn exit_code(&self, fail_on_warn: bool) -> u8 {
        if !self.input_errors.is_empty() {
            2
        } else if self.summary.denied > 0 || (fail_on_warn && self.summary.warnings > 0) {
            1
        } else {
            0
        }
    }
}

impl CheckReport {
    /// The objects of every source in their final form, grouped by source, in input order:
    /// mutated objects replaced, everything else as read.
    pub fn final_manifests(&self) -> Vec<(&str, Vec<Value>)> {
        let mut by_source: Vec<(&str, Vec<Value>)> = self
            .checked
            .source_names
            .iter()
            .map(|name| (name.as_str(), Vec::new()))
            .collect();
        let mut lists: BTreeMap<(usize, usize), usize> = BTreeMap::new();
        for report in &self.objects {
            let objects = &mut by_source[report.source_index].1;
            if report.item.is_none() {
                objects.push(report.object.clone());
                continue;
            }
            // Items of one List go back into that List, with its own kind and fields.
            let slot = *lists
                .entry((report.source_index, report.document))
                .or_insert_with(|| {
                    let mut list = report.list.as_deref().cloned().unwrap_or_default();
                    if let Value::Object(fields) = &mut list {
                        fields.insert("items".to_owned(), Value::Array(Vec::new()));
                    }
                    objects.push(list);
                    objects.len() - 1
                });
            if let Some(Value::Array(items)) = objects[slot].get_mut("items") {
                items.push(report.object.clone());
            }
        }
        by_source
    }
}

/// Where `--mutated DIR` writes a source: its own path below `folder`, so that no two inputs
/// meet in one file. A leading `/` or `./` is dropped and each `..` becomes `__`; stdin is
/// `stdin.yaml`.
pub fn mutated_path(folder: &Path, source: &str) -> PathBuf {
    if source == "-" {
        return folder.join("stdin.yaml");
    }
    let mut path = folder.to_path_buf();
    for component in Path::new(source).components() {
        match component {
            Component::Normal(name) => path.push(name),
            Component::ParentDir => path.push("__"),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    path
}
