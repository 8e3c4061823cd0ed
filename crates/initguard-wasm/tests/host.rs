//! The WASM host with real components built from `policies/`: the shipped policies, and
//! hostile ones that loop, hoard memory, panic, flood their output or lack the exports. Each
//! hostile case yields its specific error, and a normal evaluation right after succeeds.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use initguard_core::{
    FailurePolicy, MatchRules, Mode, Phase, Pipeline, Policy, PolicyEntry, PolicyError, Request,
};
use initguard_wasm::build::{build_components, component_path};
use initguard_wasm::{HostConfig, ModuleSpec, WasmError, WasmHost, WasmPolicy};
use serde_json::{Value, json};

/// Builds the policies workspace once per test binary, into the shared target folder.
fn components() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap()
            .join("policies");
        build_components(&workspace, &target).unwrap_or_else(|e| panic!("{e}"))
    })
}

fn host() -> &'static WasmHost {
    static HOST: OnceLock<WasmHost> = OnceLock::new();
    HOST.get_or_init(|| {
        let cache_dir = host_cache_dir();
        WasmHost::new(HostConfig {
            cache_dir: Some(cache_dir),
            max_instances: 32,
            max_memory: 128 << 20,
            tiered: true,
        })
        .unwrap()
    })
}

fn spec(crate_name: &str, settings: Value) -> ModuleSpec {
    ModuleSpec {
        name: crate_name.to_owned(),
        path: component_path(components(), crate_name),
        sha256: None,
        settings,
        timeout: Duration::from_millis(100),
        memory_limit: 32 << 20,
    }
}

fn load(crate_name: &str, settings: Value) -> WasmPolicy {
    host()
        .load(&spec(crate_name, settings))
        .unwrap_or_else(|e| panic!("{crate_name}: {e}"))
}

fn pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"}, "spec": {
        "initContainers": [{"name": "clone", "image": "alpine/git:2.45"}, {"name": "wait", "image": "registry.example.com/tools/wait:1"}],
        "containers": [{"name": "web", "image": "nginx:1.27"}]}})
}

/// A normal evaluation, to show the host is unaffected by what came before.
fn still_works() {
    let policy = load(
        "allowed-registries",
        json!({"registries": ["registry.example.com"]}),
    );
    let outcome = policy.evaluate(&Request::create(pod())).unwrap();
    assert_eq!(outcome.violations.len(), 1);
}

#[test]
fn allowed_registries_reports_paths_and_rule_ids() {
    let policy = load(
        "allowed-registries",
        json!({"registries": ["registry.example.com"]}),
    );
    assert!(!policy.mutating());
    let outcome = policy.evaluate(&Request::create(pod())).unwrap();
    assert_eq!(outcome.violations.len(), 1);
    let violation = &outcome.violations[0];
    assert_eq!(violation.rule, "REG-001");
    assert_eq!(
        violation.path.as_deref(),
        Some("spec.initContainers[0].image")
    );
    assert_eq!(
        violation.message,
        "image \"alpine/git:2.45\" (docker.io/alpine/git) is not from an allowed registry: registry.example.com"
    );
}

#[test]
fn reviews_from_the_apiserver_evaluate_alike() {
    let policy = load("require-image-digest", json!({}));
    let review = json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {
        "uid": "u", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"}, "name": "d", "namespace": "n",
        "operation": "UPDATE", "userInfo": {}, "object": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"initContainers": [{"name": "i", "image": "busybox:1.36"}], "containers": []}}}}}});
    let parsed = initguard_core::Review::from_slice(&serde_json::to_vec(&review).unwrap()).unwrap();
    let outcome = policy.evaluate(&parsed.request).unwrap();
    assert_eq!(
        outcome.violations[0].path.as_deref(),
        Some("spec.template.spec.initContainers[0].image")
    );
}

#[test]
fn mutating_policy_patches_through_the_pipeline() {
    let policy = load(
        "default-init-resources",
        json!({"requests": {"cpu": "10m"}, "limits": {}}),
    );
    assert!(policy.mutating());
    let pipeline = Pipeline::new(vec![PolicyEntry {
        name: "defaults".into(),
        mode: Mode::Enforce,
        failure_policy: FailurePolicy::Fail,
        rules: MatchRules::default(),
        policy: Arc::new(policy),
    }]);
    let decision = pipeline.evaluate(&Request::create(pod()), Phase::Mutate);
    assert!(decision.allowed());
    let mutated = decision.mutated.unwrap();
    assert_eq!(
        mutated["spec"]["initContainers"][1]["resources"],
        json!({"requests": {"cpu": "10m"}}),
        "an empty list of defaults adds nothing"
    );
    assert!(mutated["spec"]["containers"][0].get("resources").is_none());
}

#[test]
fn settings_are_validated_at_load() {
    let error = host()
        .load(&spec("allowed-registries", json!({})))
        .unwrap_err();
    assert!(matches!(error, WasmError::Settings { .. }), "{error}");
    assert!(
        error
            .to_string()
            .ends_with("rejected its settings: registries: list at least one registry or prefix"),
        "{error}"
    );
    let error = host()
        .load(&spec(
            "allowed-registries",
            json!({"registries": ["a"], "apps": true}),
        ))
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("invalid settings: unknown field `apps`"),
        "{error}"
    );
}

#[test]
fn sha256_must_match() {
    let mut wrong = spec("require-image-digest", json!({}));
    wrong.sha256 = Some("00".repeat(32));
    let error = host().load(&wrong).unwrap_err();
    assert!(matches!(error, WasmError::Checksum { .. }), "{error}");
    let mut right = spec("require-image-digest", json!({}));
    right.sha256 = Some(
        initguard_wasm::sha256_of(&right.path)
            .unwrap()
            .to_uppercase(),
    );
    host().load(&right).unwrap();
}

#[test]
fn a_component_without_the_exports_is_refused() {
    let error = host()
        .load(&spec("hostile-wrong-exports", Value::Null))
        .unwrap_err();
    assert!(matches!(error, WasmError::Contract { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("does not implement initguard:policy@0.3.0: no export `evaluate`"),
        "{error}"
    );
    let error = host()
        .load(&spec("no-such-policy", Value::Null))
        .unwrap_err();
    assert!(matches!(error, WasmError::Read { .. }), "{error}");
}

#[test]
fn components_built_against_retired_contracts_are_refused_with_what_to_rebuild_against() {
    for (component, version) in [
        ("testing-contract-0-1", "0.1.0"),
        ("testing-contract-0-2", "0.2.0"),
    ] {
        let error = host().load(&spec(component, Value::Null)).unwrap_err();
        assert!(matches!(error, WasmError::Contract { .. }), "{error}");
        assert!(
            error.to_string().ends_with(&format!(
                "does not implement initguard:policy@0.3.0: it was built against \
                 initguard:policy@{version}; rebuild it with the initguard-policy SDK of this \
                 initguard, which speaks initguard:policy@0.3.0"
            )),
            "{error}"
        );
    }
    still_works();
}

/// An UPDATE from the apiserver, with labels, annotations, a user, an old object and every
/// kind of container, for the views.
fn update_review() -> Request {
    let object = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"},
                     "annotations": {"initguard.dev/inject": "wait-for-dns"}},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {
            "initContainers": [{"name": "clone", "image": "alpine/git:2.45", "command": ["git"],
                                "args": ["clone", "ünïcödé"], "imagePullPolicy": "IfNotPresent",
                                "resources": {"requests": {"cpu": "10m"}, "limits": {"memory": "1Gi"}}},
                               {"name": "proxy", "image": "envoy:1", "restartPolicy": "Always"}],
            "containers": [{"name": "web", "image": "nginx:1.27"}]}}}});
    let mut old = object.clone();
    old["metadata"]["labels"]["app"] = json!("old");
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-7", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "name": "web", "namespace": "shop", "operation": "UPDATE",
        "userInfo": {"username": "alice", "uid": "a-1", "groups": ["dev", "system:authenticated"]},
        "object": object, "oldObject": old, "dryRun": false}});
    initguard_core::Review::from_slice(&serde_json::to_vec(&review).unwrap())
        .unwrap()
        .request
}

#[test]
fn the_review_resource_shows_what_the_sdk_shows_natively() {
    let settings = json!({"keys": ["app", "initguard.dev/inject", "none"],
        "pointers": ["/metadata/labels", "/spec/template/spec/initContainers/0/args", "/none", ""]});
    for request in [update_review(), Request::create(pod())] {
        let in_wasm = load("testing-echo", settings.clone())
            .evaluate(&request)
            .unwrap();
        let native =
            initguard_policy::test::evaluate_request::<testing_echo::Echo>(&request, &settings)
                .unwrap();
        assert!(in_wasm.warnings.len() > 10, "{:?}", in_wasm.warnings);
        assert_eq!(in_wasm.warnings, native.warnings);
    }
    let seen: Vec<_> = load("testing-echo", settings)
        .evaluate(&update_review())
        .unwrap()
        .warnings
        .into_iter()
        .map(|w| w.message)
        .collect();
    for expected in [
        "uid u-7",
        "kind apps/v1/Deployment",
        "operation Operation::Update",
        "user alice a-1 [\"dev\", \"system:authenticated\"]",
        "dry-run false",
        "pod spec Some(\"spec.template.spec\")",
        "label app Some(\"web\")",
        "annotation initguard.dev/inject Some(\"wait-for-dns\")",
        "label none None",
        "object /metadata/labels Some(\"{\\\"app\\\":\\\"web\\\"}\")",
        "old object /metadata/labels Some(\"{\\\"app\\\":\\\"old\\\"}\")",
        "object /none None",
    ] {
        assert!(
            seen.iter().any(|s| s == expected),
            "{expected:?} in {seen:#?}"
        );
    }
    let containers: Vec<_> = seen.iter().filter(|s| s.starts_with("Container")).collect();
    assert_eq!(containers.len(), 3, "{containers:#?}");
    assert!(
        containers[0].contains("path: \"spec.template.spec.initContainers[0]\"")
            && containers[0].contains("requests: [(\"cpu\", \"10m\")]")
            && containers[0].contains("limits: [(\"memory\", \"1Gi\")]")
            && containers[0].contains("command: [\"git\"]")
            // Spans count bytes: a multi-byte string in the middle must come back whole.
            && containers[0].contains("args: [\"clone\", \"ünïcödé\"]"),
        "{}",
        containers[0]
    );
    assert!(containers[1].contains("restart_policy: Some(\"Always\")"));
}

#[test]
fn nothing_a_policy_keeps_survives_into_the_next_evaluation() {
    let policy = Arc::new(load("testing-remembers", Value::Null));
    let request = Request::create(pod());
    for _ in 0..20 {
        let outcome = policy.evaluate(&request).unwrap();
        assert_eq!(outcome.warnings, [], "a fresh instance has no memory");
    }
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let policy = Arc::clone(&policy);
            std::thread::spawn(move || {
                let request = Request::create(pod());
                (0..20).all(|_| policy.evaluate(&request).unwrap().warnings.is_empty())
            })
        })
        .collect();
    for worker in workers {
        assert!(
            worker.join().unwrap(),
            "no state is shared between threads either"
        );
    }
}

#[test]
fn an_endless_loop_stops_at_the_deadline() {
    let policy = load("hostile-spin", Value::Null);
    let started = Instant::now();
    let error = policy.evaluate(&Request::create(pod())).unwrap_err();
    let took = started.elapsed();
    assert_eq!(error, PolicyError::Timeout(Duration::from_millis(100)));
    assert!(took < Duration::from_millis(600), "stopped after {took:?}");
    still_works();
}

#[test]
fn a_memory_bomb_stops_at_the_limit() {
    let policy = load("hostile-memory-bomb", Value::Null);
    let error = policy.evaluate(&Request::create(pod())).unwrap_err();
    assert_eq!(
        error,
        PolicyError::OutOfMemory(format!(
            "linear memory may not grow past {} bytes",
            32 << 20
        ))
    );
    still_works();
}

#[test]
fn a_panic_is_a_trap() {
    let policy = load("hostile-panic", Value::Null);
    let error = policy.evaluate(&Request::create(pod())).unwrap_err();
    assert!(
        matches!(&error, PolicyError::Trap(message) if message.contains("unreachable")),
        "{error}"
    );
    still_works();
}

#[test]
fn a_huge_outcome_is_refused() {
    let policy = load("hostile-huge-output", Value::Null);
    let error = policy.evaluate(&Request::create(pod())).unwrap_err();
    assert!(
        matches!(&error, PolicyError::InvalidOutcome(message) if message.contains("more than the 1048576 allowed")),
        "{error}"
    );
    still_works();
}

#[test]
fn failure_policy_decides_what_a_broken_module_does() {
    for (failure_policy, allowed) in [(FailurePolicy::Fail, false), (FailurePolicy::Ignore, true)] {
        let pipeline = Pipeline::new(vec![PolicyEntry {
            name: "spin".into(),
            mode: Mode::Enforce,
            failure_policy,
            rules: MatchRules::default(),
            policy: Arc::new(load("hostile-spin", Value::Null)),
        }]);
        let decision = pipeline.evaluate(&Request::create(pod()), Phase::All);
        assert_eq!(decision.allowed(), allowed);
        let text = decision.denial.map_or_else(
            || decision.warnings.iter().map(ToString::to_string).collect(),
            |d| d.message(),
        );
        assert!(
            text.contains("policy spin failed: the policy ran past its deadline of 100ms"),
            "{text}"
        );
    }
}

#[test]
fn compiled_components_are_cached_by_content() {
    let cache = host_cache_dir();
    let untiered = || small_host(&cache, false);
    untiered()
        .load(&spec("require-image-digest", json!({})))
        .unwrap();
    let digest =
        initguard_wasm::sha256_of(&component_path(components(), "require-image-digest")).unwrap();
    let cached = std::fs::read_dir(&cache)
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with(&digest));
    assert!(cached, "no cache entry for {digest}");
    // A second engine, as after a restart, loads the machine code from disk.
    let policy = untiered()
        .load(&spec("require-image-digest", json!({})))
        .unwrap();
    assert_eq!(
        policy
            .evaluate(&Request::create(pod()))
            .unwrap()
            .violations
            .len(),
        2
    );
}

/// A cache whose artifact was changed, or that other users could write, is not loaded: the
/// module is compiled instead, and the artifact replaced or never written.
#[cfg(unix)]
#[test]
fn a_tampered_or_shared_cache_is_not_trusted() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = empty_cache("trust");
    let host = || small_host(&dir, false);
    let violations = |host: &WasmHost| {
        host.load(&spec("require-image-digest", json!({})))
            .unwrap()
            .evaluate(&Request::create(pod()))
            .unwrap()
            .violations
            .len()
    };
    let artifacts = || -> Vec<PathBuf> {
        std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(violations(&host()), 2);
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the cache folder is created private");
    let [artifact] = artifacts().try_into().unwrap();
    let written = std::fs::read(&artifact).unwrap();

    let mut tampered = written.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0xff;
    std::fs::write(&artifact, &tampered).unwrap();
    assert_eq!(violations(&host()), 2, "recompiled, not loaded");
    assert_ne!(
        std::fs::read(&artifact).unwrap(),
        tampered,
        "the tampered artifact is replaced"
    );

    std::fs::remove_file(&artifact).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(violations(&host()), 2);
    assert!(
        artifacts().is_empty(),
        "nothing is cached in a folder others can write"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A module missing from the cache runs baseline code at once and the optimising compiler's
/// once the background compile is done, with the same verdicts; its artifact is then cached,
/// so the next start loads optimised code directly.
#[test]
fn cold_modules_start_on_baseline_code_and_tier_up() {
    let dir = empty_cache("tiers");
    let host = || small_host(&dir, true);
    let verdict = |policy: &WasmPolicy| {
        policy
            .evaluate(&Request::create(pod()))
            .unwrap()
            .violations
            .iter()
            .map(|v| (v.path.clone(), v.message.clone()))
            .collect::<Vec<_>>()
    };
    let cold = host();
    let policy = cold.load(&spec("require-image-digest", json!({}))).unwrap();
    assert!(
        !policy.optimized(),
        "nothing was cached: baseline code first"
    );
    let baseline = verdict(&policy);
    assert_eq!(baseline.len(), 2);
    // The background compile takes seconds; the bound only keeps a broken tier-up from
    // hanging the test.
    let waited = Instant::now();
    while !policy.optimized() {
        assert!(
            waited.elapsed() < Duration::from_mins(5),
            "no tier-up after {:?}",
            waited.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(verdict(&policy), baseline);
    drop((policy, cold));

    let warm = host()
        .load(&spec("require-image-digest", json!({})))
        .unwrap();
    assert!(warm.optimized(), "the optimised artifact was cached");
    assert_eq!(verdict(&warm), baseline);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A host of a few instances over the cache folder `dir`.
fn small_host(dir: &Path, tiered: bool) -> WasmHost {
    WasmHost::new(HostConfig {
        cache_dir: Some(dir.to_owned()),
        max_instances: 4,
        max_memory: 64 << 20,
        tiered,
    })
    .unwrap()
}

/// A cache folder of this test's own, empty.
fn empty_cache(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("wasm-cache-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Kept between runs, so later test runs load compiled policies instead of compiling them.
fn host_cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasm-cache")
}
