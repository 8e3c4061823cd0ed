//! Parity with kube-apiserver: every case in `tests/fixtures/apiserver/` is a manifest ported
//! from Kubernetes' own validation tests (kubernetes/kubernetes
//! `pkg/apis/core/validation/validation_test.go`, named in each file), the release it applies
//! to, and the apiserver's exact errors. `init-container-validity` must give exactly those
//! errors, in Pod form and, unless the case is about Pods only, in Deployment form (where every
//! path moves under `spec.template.spec`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use initguard_core::Request;
use initguard_core::release::Release;
use initguard_rules::builtin_for;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    /// The Kubernetes test table the cases are ported from.
    source: String,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Case {
    name: String,
    /// `v1.N` or `latest` (the default).
    #[serde(default = "latest")]
    release: String,
    /// A pod spec; `containers` defaults to one app container named `app`.
    #[serde(default)]
    spec: Option<Value>,
    /// A whole object, checked as it is instead of in Pod and Deployment form.
    #[serde(default)]
    object: Option<Value>,
    /// The apiserver's errors for the Pod (or the object), `path: message`, in its order.
    errors: Vec<String>,
    /// The errors for the Deployment form when they are not the Pod's moved under the
    /// template (checks the apiserver runs for Pods only).
    #[serde(default)]
    workload_errors: Option<Vec<String>>,
    /// Why the manifest's verdict differs from the Go test's, when it does (defaulting).
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

fn latest() -> String {
    "latest".to_owned()
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/apiserver")
}

fn fixtures() -> Vec<(String, Fixture)> {
    let mut files: Vec<_> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let fixture = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, fixture)
        })
        .collect()
}

fn pod(name: &str, spec: &Value) -> Value {
    let mut spec = spec.clone();
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "app", "image": "nginx:1.27"}]);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
}

fn deployment(pod: &Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": pod["metadata"]["name"]},
        "spec": {
            "selector": {"matchLabels": {"app": "parity"}},
            "template": {"metadata": {"labels": {"app": "parity"}}, "spec": pod["spec"]},
        },
    })
}

fn errors_of(release: Release, object: Value) -> Vec<String> {
    let policy = builtin_for("init-container-validity", &Value::Null, release).unwrap();
    policy
        .evaluate(&Request::create(object))
        .unwrap()
        .violations
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// The forms a case is checked in, each with the errors the apiserver gives it.
fn forms(case: &Case) -> Vec<(&'static str, Value, Vec<String>)> {
    if let Some(object) = &case.object {
        return vec![("object", object.clone(), case.errors.clone())];
    }
    let spec = case.spec.as_ref().expect("a case has a spec or an object");
    let pod = pod("parity", spec);
    let workload_errors = case.workload_errors.clone().unwrap_or_else(|| {
        case.errors
            .iter()
            .map(|e| {
                e.strip_prefix("spec.")
                    .map_or_else(|| e.clone(), |rest| format!("spec.template.spec.{rest}"))
            })
            .collect()
    });
    let deployment = deployment(&pod);
    vec![
        ("Pod", pod, case.errors.clone()),
        ("Deployment", deployment, workload_errors),
    ]
}

/// The number of ported cases, as the README's Rules section states it.
fn readme_count() -> Option<usize> {
    let readme = std::fs::read_to_string(fixtures_dir().join("../../../README.md")).unwrap();
    let marker = " cases ported from Kubernetes' validation tests";
    let end = readme.find(marker)?;
    let start = readme[..end].rfind(|c: char| !c.is_ascii_digit())? + 1;
    readme[start..end].parse().ok()
}

#[test]
fn every_ported_case_gets_the_apiservers_verdict() {
    let mut cases = 0;
    let mut checks = 0;
    let mut disagreements = String::new();
    for (file, fixture) in fixtures() {
        assert!(!fixture.source.is_empty(), "{file}: name the source table");
        for case in &fixture.cases {
            cases += 1;
            let release = Release::parse(&case.release)
                .unwrap_or_else(|e| panic!("{file}: {}: {e}", case.name));
            for (form, object, expected) in forms(case) {
                checks += 1;
                let found = errors_of(release, object);
                if found != expected {
                    let _ = writeln!(
                        disagreements,
                        "{file}: {} ({form}, {release}):\n  apiserver: {expected:#?}\n  initguard: {found:#?}",
                        case.name
                    );
                }
            }
        }
    }
    println!("apiserver parity: {cases} cases, {checks} checks");
    assert!(
        disagreements.is_empty(),
        "disagreements with the apiserver:\n{disagreements}"
    );
    assert_eq!(
        readme_count(),
        Some(cases),
        "the README's Rules section states how many cases are ported"
    );
}
