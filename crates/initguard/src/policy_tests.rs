//! `initguard policy test`: YAML test suites for WASM policies.
//!
//! A suite names a module and its cases; each case gives a manifest (inline `object`, a
//! `manifest` file, or an AdmissionReview `review` file), settings, and what to expect:
//!
//! ```yaml
//! module: ../target/wasm32-wasip2/release/my_policy.wasm   # relative to this file
//! cases:
//!   - name: a floating tag is denied
//!     manifest: pods/latest.yaml
//!     settings: {allowLatest: false}
//!     expect:
//!       allowed: false
//!       violations:                 # a number, or a list matched in order
//!         - path: spec.initContainers[0].image
//!           message: "floating tag"  # a regular expression
//!           rule: TAG-001
//!       warnings: 0
//!   - name: bad settings are refused at load
//!     object: {apiVersion: v1, kind: Pod, ...}
//!     settings: {allowLatest: maybe}
//!     expect:
//!       loadError: "invalid type"       # a regular expression
//!   - name: defaults are filled in
//!     object: {apiVersion: v1, kind: Pod, ...}
//!     expect:
//!       patched: golden/defaults.yaml  # the object after mutation; INITGUARD_BLESS=1 writes it
//! ```
//!
//! The policy runs in `enforce` mode with `failurePolicy: Fail`, mutate then validate, as in
//! `check`; a policy error is a denial whose message says so.
//!
//! `manifest`, `review` and `patched` files are read as `check` reads manifests (kubectl's
//! YAML: see [`crate::yaml`]); the suite file itself, with inline `object`s and `settings`, is
//! read like the config file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use initguard_core::{
    FailurePolicy, MatchRules, Mode, Phase, Pipeline, PolicyEntry, Request, Review,
};
use initguard_wasm::{ModuleSpec, WasmHost};
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use crate::yaml;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Suite {
    /// The component, relative to the suite; by default the crate the suite belongs to.
    module: Option<PathBuf>,
    #[serde(default = "default_timeout", with = "initguard_core::duration")]
    timeout: Duration,
    cases: Vec<Case>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(1)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Case {
    name: String,
    object: Option<Value>,
    manifest: Option<PathBuf>,
    review: Option<PathBuf>,
    #[serde(default)]
    settings: Value,
    #[serde(default)]
    expect: Expect,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Expect {
    /// The module must refuse to load (bad settings), with a message matching this regex.
    load_error: Option<String>,
    allowed: Option<bool>,
    violations: Option<ExpectedViolations>,
    warnings: Option<usize>,
    patched: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ExpectedViolations {
    Count(usize),
    Each(Vec<ExpectedViolation>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedViolation {
    path: Option<String>,
    message: Option<String>,
    rule: Option<String>,
}

/// What a run of one or more suites found.
#[derive(Debug, Default)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub report: String,
}

/// Runs the suite file at `path`, or every `*.yaml` suite under a folder's `tests/`. A folder
/// that is a crate is built first (into `$CARGO_TARGET_DIR`, or its own `target/`), and its
/// component is what suites without `module:` test; a folder that is a workspace of policy
/// crates (`policies/`) is built once, and every member's suites run against its component,
/// in one summary.
pub fn run(path: &Path, host: &WasmHost) -> Result<Summary, String> {
    let mut summary = Summary::default();
    // A suite in a crate's `tests/` tests that crate's component.
    let absolute = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let suite_of_crate = absolute
        .parent()
        .filter(|tests| tests.file_name().is_some_and(|name| name == "tests"))
        .and_then(Path::parent)
        .filter(|krate| path.is_file() && krate.join("Cargo.toml").is_file());
    if let Some(krate) = suite_of_crate {
        let built = build(krate)?;
        let component = built.packages.first().map(|p| built.component(p));
        run_suite(path, host, component.as_deref(), &mut summary)?;
    } else if path.join("Cargo.toml").is_file() {
        let built = build(path)?;
        let mut tested = false;
        for package in &built.packages {
            let component = built.component(package);
            for suite in suites_in(&package.dir)? {
                tested = true;
                run_suite(&suite, host, Some(&component), &mut summary)?;
            }
        }
        if !tested {
            return Err(format!("{}: no test suites (tests/*.yaml)", path.display()));
        }
    } else if path.is_dir() {
        let suites = suites_in(path)?;
        if suites.is_empty() {
            return Err(format!("{}: no test suites (tests/*.yaml)", path.display()));
        }
        for suite in suites {
            run_suite(&suite, host, None, &mut summary)?;
        }
    } else {
        run_suite(path, host, None, &mut summary)?;
    }
    let _ = writeln!(
        summary.report,
        "\ntest result: {}. {} passed, {} failed",
        if summary.failed == 0 { "ok" } else { "FAILED" },
        summary.passed,
        summary.failed
    );
    Ok(summary)
}

/// A policy crate or workspace, built.
struct Built {
    components: PathBuf,
    packages: Vec<initguard_wasm::build::Package>,
}

impl Built {
    fn component(&self, package: &initguard_wasm::build::Package) -> PathBuf {
        initguard_wasm::build::component_path(&self.components, &package.name)
    }
}

/// Builds the crate or workspace at `dir` into `$CARGO_TARGET_DIR`, or its own `target/`.
fn build(dir: &Path) -> Result<Built, String> {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| dir.join("target"), PathBuf::from);
    let with_causes = |e| format!("{:#}", anyhow::Error::new(e));
    let components = initguard_wasm::build::build_components(dir, &target).map_err(with_causes)?;
    let packages = initguard_wasm::build::packages(dir).map_err(with_causes)?;
    Ok(Built {
        components,
        packages,
    })
}

/// The suites in a folder's `tests/`, in name order; none when it has no `tests/`.
fn suites_in(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let folder = dir.join("tests");
    if !folder.is_dir() {
        return Ok(Vec::new());
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(&folder)
        .map_err(|e| format!("{}: {e}", folder.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    found.sort();
    Ok(found)
}

fn run_suite(
    path: &Path,
    host: &WasmHost,
    built: Option<&Path>,
    summary: &mut Summary,
) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let suite: Suite =
        serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let module = match (&suite.module, built) {
        (Some(module), _) => base.join(module),
        (None, Some(built)) => built.to_owned(),
        (None, None) => {
            return Err(format!(
                "{}: no module: name one, or test the policy's crate folder",
                path.display()
            ));
        }
    };
    let _ = writeln!(
        summary.report,
        "running {} cases from {}",
        suite.cases.len(),
        path.display()
    );
    for case in &suite.cases {
        match run_case(case, &suite, &module, base, host) {
            Ok(()) => {
                summary.passed += 1;
                let _ = writeln!(summary.report, "case {} ... ok", case.name);
            }
            Err(problems) => {
                summary.failed += 1;
                let _ = writeln!(summary.report, "case {} ... FAILED", case.name);
                for problem in problems.lines() {
                    let _ = writeln!(summary.report, "    {problem}");
                }
            }
        }
    }
    Ok(())
}

/// A manifest, review or golden file, read as `check` (and kubectl) reads manifests.
fn read_manifest(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    first_document(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The first document, as `check` reads it; the documents after it are not parsed.
fn first_document(text: &str) -> Result<Value, String> {
    let mut documents = yaml::units(text).into_iter().flat_map(|unit| unit.read());
    match documents.next() {
        Some(Ok(document)) => Ok(document.value),
        Some(Err(error)) => Err(error.to_string()),
        None => Err("no document".to_owned()),
    }
}

fn request_of(case: &Case, base: &Path) -> Result<Request, String> {
    match (&case.object, &case.manifest, &case.review) {
        (Some(object), None, None) => Ok(Request::create(object.clone())),
        (None, Some(manifest), None) => Ok(Request::create(read_manifest(&base.join(manifest))?)),
        (None, None, Some(review)) => {
            let value = read_manifest(&base.join(review))?;
            Ok(Review::from_value(&value)
                .map_err(|e| e.to_string())?
                .request)
        }
        _ => Err("give exactly one of object, manifest or review".to_owned()),
    }
}

fn run_case(
    case: &Case,
    suite: &Suite,
    module: &Path,
    base: &Path,
    host: &WasmHost,
) -> Result<(), String> {
    let spec = ModuleSpec {
        name: "policy".to_owned(),
        path: module.to_owned(),
        sha256: None,
        settings: case.settings.clone(),
        timeout: suite.timeout,
        memory_limit: 64 << 20,
    };
    let loaded = host.load(&spec);
    let policy = match (loaded, &case.expect.load_error) {
        (Ok(policy), None) => policy,
        (Err(error), None) => return Err(error.to_string()),
        (Ok(_), Some(pattern)) => {
            return Err(format!(
                "expected the module to refuse to load with /{pattern}/, it loaded"
            ));
        }
        (Err(error), Some(pattern)) => {
            let regex = Regex::new(pattern).map_err(|e| format!("bad loadError regex: {e}"))?;
            let message = error.to_string();
            return if regex.is_match(&message) {
                Ok(())
            } else {
                Err(format!("load error {message:?} does not match /{pattern}/"))
            };
        }
    };
    let pipeline = Pipeline::new(vec![PolicyEntry {
        name: "policy".to_owned(),
        mode: Mode::Enforce,
        failure_policy: FailurePolicy::Fail,
        rules: MatchRules {
            kinds: vec!["*".to_owned()],
            ..MatchRules::default()
        },
        policy: Arc::new(policy),
    }]);
    let request = request_of(case, base)?;
    let decision = pipeline.evaluate(&request, Phase::All);
    let mut problems = Vec::new();
    let expect = &case.expect;
    if let Some(allowed) = expect.allowed
        && decision.allowed() != allowed
    {
        let why = decision
            .denial
            .as_ref()
            .map(|d| format!(": {}", d.message()))
            .unwrap_or_default();
        problems.push(format!(
            "expected allowed: {allowed}, got {}{why}",
            decision.allowed()
        ));
    }
    let violations: Vec<_> = decision
        .reports
        .iter()
        .filter_map(|r| r.result.as_ref().ok())
        .flat_map(|o| o.violations.iter())
        .collect();
    match &expect.violations {
        Some(ExpectedViolations::Count(count)) if *count != violations.len() => {
            problems.push(format!(
                "expected {count} violations, got {}: {violations:?}",
                violations.len()
            ));
        }
        Some(ExpectedViolations::Each(expected)) => {
            if expected.len() != violations.len() {
                problems.push(format!(
                    "expected {} violations, got {}",
                    expected.len(),
                    violations.len()
                ));
            }
            for (index, (want, got)) in expected.iter().zip(&violations).enumerate() {
                if want.path.is_some() && want.path != got.path {
                    problems.push(format!(
                        "violation {index}: expected path {:?}, got {:?}",
                        want.path, got.path
                    ));
                }
                if let Some(rule) = want.rule.as_deref().filter(|r| *r != got.rule) {
                    problems.push(format!(
                        "violation {index}: expected rule {rule:?}, got {:?}",
                        got.rule
                    ));
                }
                if let Some(pattern) = &want.message {
                    let regex = Regex::new(pattern)
                        .map_err(|e| format!("violation {index}: bad message regex: {e}"))?;
                    if !regex.is_match(&got.message) {
                        problems.push(format!(
                            "violation {index}: message {:?} does not match /{pattern}/",
                            got.message
                        ));
                    }
                }
            }
        }
        _ => {}
    }
    if let Some(count) = expect.warnings.filter(|c| *c != decision.warnings.len()) {
        let warnings: Vec<String> = decision.warnings.iter().map(ToString::to_string).collect();
        problems.push(format!(
            "expected {count} warnings, got {}: {warnings:?}",
            decision.warnings.len(),
        ));
    }
    if let Some(golden) = &expect.patched {
        let actual = decision
            .mutated
            .clone()
            .or_else(|| request.object().cloned())
            .unwrap_or_default();
        if let Err(problem) = compare_golden(&base.join(golden), &actual) {
            problems.push(problem);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Compares the patched object with a YAML golden file; `INITGUARD_BLESS` rewrites it.
fn compare_golden(path: &Path, actual: &Value) -> Result<(), String> {
    let rendered = yaml::to_yaml(actual);
    if std::env::var_os("INITGUARD_BLESS").is_some() {
        return std::fs::write(path, &rendered).map_err(|e| format!("{}: {e}", path.display()));
    }
    let expected = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: {e} (INITGUARD_BLESS=1 writes it)", path.display()))?;
    let expected_value =
        first_document(&expected).map_err(|e| format!("{}: {e}", path.display()))?;
    if &expected_value == actual {
        return Ok(());
    }
    let diff = similar::TextDiff::from_lines(expected.as_str(), rendered.as_str());
    Err(format!(
        "patched object differs from {}:\n{}",
        path.display(),
        diff.unified_diff()
            .context_radius(2)
            .header("expected", "actual")
    ))
}
