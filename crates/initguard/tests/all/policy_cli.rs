//! `initguard policy new|test` and WASM policies in `check`, with the real binary and the
//! components built from `policies/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use initguard_wasm::build::{build_components, component_path};
use serde_json::Value;

use crate::support::workspace;

/// The target folder the policies are built into, shared by every test binary.
fn policies_target() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("policies")
}

fn initguard(args: &[&str], cwd: &Path) -> (i32, String) {
    let (code, stdout, stderr) = initguard_apart(args, cwd);
    (code, format!("{stdout}{stderr}"))
}

/// `to` as a path relative to `from`.
fn relative(from: &Path, to: &Path) -> PathBuf {
    let (from, to) = (from.canonicalize().unwrap(), to.canonicalize().unwrap());
    let common = from
        .components()
        .zip(to.components())
        .take_while(|(a, b)| a == b)
        .count();
    let ups = from.components().count() - common;
    std::iter::repeat_n(Path::new(".."), ups)
        .map(Path::to_path_buf)
        .chain(
            to.components()
                .skip(common)
                .map(|c| PathBuf::from(c.as_os_str())),
        )
        .collect()
}

/// As [`initguard`], with `CARGO_TARGET_DIR` set to `target` (relative to `cwd`).
fn initguard_in(args: &[&str], cwd: &Path, target: &Path) -> (i32, String) {
    let (code, stdout, stderr) = initguard_with(args, cwd, target);
    (code, format!("{stdout}{stderr}"))
}

/// Runs `initguard ARGS` in `cwd`: its exit code, stdout and stderr (logs) apart.
fn initguard_apart(args: &[&str], cwd: &Path) -> (i32, String, String) {
    initguard_with(args, cwd, &policies_target())
}

/// Runs `initguard ARGS` in `cwd`, building policies into `target`.
fn initguard_with(args: &[&str], cwd: &Path, target: &Path) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_initguard"))
        .args(args)
        .current_dir(cwd)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn shipped_policy_suites_pass() {
    for policy in [
        "allowed-registries",
        "require-image-digest",
        "default-init-resources",
    ] {
        let (code, out) = initguard(
            &["policy", "test", &format!("policies/{policy}")],
            &workspace(),
        );
        assert_eq!(code, 0, "{policy}:\n{out}");
        assert!(
            out.contains("test result: ok.") && out.contains(" 0 failed"),
            "{policy}:\n{out}"
        );
    }
}

/// `policy test policies` on the workspace of policies builds it once and runs every member's
/// suites, with one summary.
#[test]
fn a_workspace_of_policies_is_built_once_and_every_member_tested() {
    let (code, out) = initguard(&["policy", "test", "policies"], &workspace());
    assert_eq!(code, 0, "{out}");
    for policy in [
        "allowed-registries",
        "require-image-digest",
        "default-init-resources",
    ] {
        assert!(
            out.contains(&format!("policies/{policy}/tests/cases.yaml")),
            "{policy}: {out}"
        );
    }
    assert_eq!(out.matches("test result: ok.").count(), 1, "{out}");
}

#[test]
fn a_failing_case_fails_the_run() {
    let dir = std::env::temp_dir().join(format!("initguard-suite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let components = build_components(&workspace().join("policies"), &policies_target()).unwrap();
    let suite = format!(
        "module: {}\ncases:\n  - name: expects the wrong thing\n    object: {{apiVersion: v1, kind: Pod, metadata: {{name: p}}, spec: {{initContainers: [{{name: i, image: 'busybox:1.36'}}], containers: []}}}}\n    expect: {{allowed: true, violations: 0}}\n",
        component_path(&components, "require-image-digest").display()
    );
    std::fs::write(dir.join("suite.yaml"), suite).unwrap();
    let (code, out) = initguard(
        &["policy", "test", dir.join("suite.yaml").to_str().unwrap()],
        &workspace(),
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("case expects the wrong thing ... FAILED"),
        "{out}"
    );
    assert!(out.contains("expected allowed: true, got false"), "{out}");
    assert!(
        out.contains("test result: FAILED. 0 passed, 1 failed"),
        "{out}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_new_policy_builds_and_passes_its_own_tests() {
    let dir = std::env::temp_dir().join(format!("initguard-new-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (code, out) = initguard(&["policy", "new", "demo-policy"], &dir);
    assert_eq!(code, 0, "{out}");
    let (code, out) = initguard(&["policy", "new", "demo-policy"], &dir);
    assert_eq!(code, 2, "refuses to overwrite: {out}");
    assert!(out.contains("already exists"), "{out}");
    let (code, out) = initguard(&["policy", "new", "Demo_Policy"], &dir);
    assert_eq!(code, 2, "{out}");

    // Every way to name the crate: from its parent, from inside, by absolute path, a suite
    // file, and with a target folder given relative to the current directory.
    let krate = dir.join("demo-policy");
    let absolute = krate.to_str().unwrap().to_owned();
    let forms: [(&[&str], &Path); 5] = [
        (&["policy", "test", "demo-policy"], &dir),
        (&["policy", "test", "./demo-policy/"], &dir),
        (&["policy", "test", "."], &krate),
        (&["policy", "test", &absolute], &workspace()),
        (&["policy", "test", "tests/cases.yaml"], &krate),
    ];
    for (args, cwd) in forms {
        let (code, out) = initguard(args, cwd);
        assert_eq!(code, 0, "{args:?} in {}: {out}", cwd.display());
        assert!(
            out.contains("test result: ok. 3 passed, 0 failed"),
            "{args:?}: {out}"
        );
    }
    let relative_target = relative(&dir, &policies_target());
    let (code, out) = initguard_in(&["policy", "test", "demo-policy"], &dir, &relative_target);
    assert_eq!(
        code,
        0,
        "CARGO_TARGET_DIR={}: {out}",
        relative_target.display()
    );
    assert!(
        !krate.join("demo-policy").exists() && !krate.join("target").exists(),
        "the build lands in the target folder named, once"
    );
    let native = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["test", "--quiet"])
        .current_dir(dir.join("demo-policy"))
        .env("CARGO_TARGET_DIR", policies_target())
        .output()
        .unwrap();
    assert!(
        native.status.success(),
        "cargo test in the new crate:\n{}",
        String::from_utf8_lossy(&native.stderr)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `check` with built-ins and WASM modules in one config reaches the verdicts and patches the
/// policies' own suites expect.
#[test]
fn check_mixes_builtins_and_wasm_like_the_suites() {
    let components = build_components(&workspace().join("policies"), &policies_target()).unwrap();
    let module = |name: &str| component_path(&components, name).display().to_string();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mixed");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "policies:\n\
         \x20 - {{name: init-container-validity, builtin: init-container-validity}}\n\
         \x20 - {{name: allowed-registries, module: '{}', settings: {{registries: [registry.example.com]}}}}\n\
         \x20 - {{name: require-image-digest, module: '{}', mode: warn, timeout: 500ms, memoryLimit: 32Mi}}\n\
         \x20 - {{name: default-init-resources, module: '{}'}}\n",
        module("allowed-registries"),
        module("require-image-digest"),
        module("default-init-resources"),
    );
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    let mutated = dir.join("mutated");
    let (code, out, logs) = initguard_apart(
        &[
            "check",
            "-c",
            dir.join("config.yaml").to_str().unwrap(),
            "-o",
            "json",
            "--mutated",
            mutated.to_str().unwrap(),
            "policies/allowed-registries/tests/pods/mixed-registries.yaml",
            "policies/allowed-registries/tests/pods/internal-cronjob.yaml",
            "policies/default-init-resources/tests/pods/bare-init.yaml",
        ],
        &workspace(),
    );
    assert_eq!(code, 1, "{out}{logs}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let findings = |index: usize, policy: &str| -> Vec<String> {
        report["objects"][index]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["policy"] == policy)
            .map(|f| {
                format!(
                    "{} {} {}",
                    f["severity"].as_str().unwrap(),
                    f["rule"].as_str().unwrap_or("-"),
                    f["path"].as_str().unwrap_or("-")
                )
            })
            .collect()
    };
    assert_eq!(report["objects"][0]["verdict"], "denied");
    assert_eq!(
        findings(0, "allowed-registries"),
        ["error REG-001 spec.initContainers[0].image"]
    );
    assert_eq!(findings(1, "allowed-registries"), Vec::<String>::new());
    assert_eq!(
        findings(1, "require-image-digest"),
        ["warning DIG-001 spec.jobTemplate.spec.template.spec.initContainers[0].image"]
    );
    assert_eq!(report["objects"][1]["verdict"], "allowed");

    let written = std::fs::read_to_string(
        mutated.join("policies/default-init-resources/tests/pods/bare-init.yaml"),
    )
    .unwrap();
    let written: Value = serde_yaml_ng::from_str(written.trim_start_matches("---\n")).unwrap();
    let golden = std::fs::read_to_string(
        workspace().join("policies/default-init-resources/tests/golden/bare-init-defaults.yaml"),
    )
    .unwrap();
    let golden: Value = serde_yaml_ng::from_str(&golden).unwrap();
    assert_eq!(
        written, golden,
        "check's mutation equals the suite's golden file"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn module_errors_fail_check_with_the_reason() {
    let dir = std::env::temp_dir().join(format!("initguard-badmodule-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let components = build_components(&workspace().join("policies"), &policies_target()).unwrap();
    let cases = [
        (
            format!(
                "{{name: m, module: '{}', sha256: '{}'}}",
                component_path(&components, "require-image-digest").display(),
                "ab".repeat(32)
            ),
            "config expects abab",
        ),
        (
            format!(
                "{{name: m, module: '{}'}}",
                component_path(&components, "allowed-registries").display()
            ),
            "rejected its settings: registries: list at least one",
        ),
        (
            "{name: m, module: missing.wasm}".to_owned(),
            "cannot read module",
        ),
        (
            "{name: m, builtin: init-container-validity, timeout: 1s}".to_owned(),
            "timeout: only modules take this key",
        ),
        (
            "{name: m}".to_owned(),
            "set builtin (see `initguard rules`) or module",
        ),
    ];
    for (policy, expected) in cases {
        std::fs::write(
            dir.join("config.yaml"),
            format!("policies:\n  - {policy}\n"),
        )
        .unwrap();
        let (code, out) = initguard(
            &[
                "check",
                "-c",
                dir.join("config.yaml").to_str().unwrap(),
                "tests/fixtures/examples",
            ],
            &workspace(),
        );
        assert_eq!(code, 2, "{policy}: {out}");
        assert!(out.contains(expected), "{policy}: {out}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
