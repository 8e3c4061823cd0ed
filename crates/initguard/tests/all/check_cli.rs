//! `initguard check` end to end: the real binary over the fixtures in `tests/fixtures`, with
//! stdout, stderr and the exit code compared to golden files in `tests/golden`.
//!
//! Refresh the golden files with `INITGUARD_BLESS=1 cargo test -p initguard --test check_cli`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::workspace;

/// Runs `initguard ARGS` in the workspace root and renders what a user would see.
fn run(args: &[&str], stdin: Option<&[u8]>) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_initguard"))
        .args(args)
        .current_dir(workspace())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or_default())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let mut rendered = format!(
        "$ initguard {}\nexit: {}\n",
        args.join(" "),
        output.status.code().unwrap_or(-1)
    );
    for (name, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        if !bytes.is_empty() {
            rendered.push_str("--- ");
            rendered.push_str(name);
            rendered.push('\n');
            rendered.push_str(&without_timings(&String::from_utf8_lossy(bytes)));
        }
    }
    rendered
}

/// JUnit's `time="0.000123"` attributes, which differ from run to run, as `time="…"`.
fn without_timings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(" time=\"") {
        let (before, after) = rest.split_at(at + " time=\"".len());
        out.push_str(before);
        let end = after.find('"').unwrap_or(after.len());
        out.push('…');
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Compares with `tests/golden/NAME.txt`, or rewrites it when `INITGUARD_BLESS` is set.
fn golden(name: &str, actual: &str) {
    let path = workspace().join("tests/golden").join(format!("{name}.txt"));
    if std::env::var_os("INITGUARD_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} is missing: run with INITGUARD_BLESS=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let diff = similar::TextDiff::from_lines(expected.as_str(), actual);
        panic!(
            "{name}: output differs from {} (INITGUARD_BLESS=1 refreshes it):\n{}",
            path.display(),
            diff.unified_diff()
                .context_radius(3)
                .header("expected", "actual")
        );
    }
}

fn check(name: &str, args: &[&str]) -> String {
    let mut full = vec!["check"];
    full.extend_from_slice(args);
    let rendered = run(&full, None);
    golden(name, &rendered);
    rendered
}

fn stdout_of(rendered: &str) -> &str {
    let stdout = rendered.split_once("--- stdout\n").unwrap().1;
    stdout
        .split_once("--- stderr\n")
        .map_or(stdout, |(out, _)| out)
}

/// Removed API versions are refused as kubectl refuses them, by the release checked against
/// (apimachinery `pkg/api/meta/errors.go`, `NoKindMatchError`: `no matches for kind %q in
/// version %q`), and a custom resource named like a workload is not read as one.
#[test]
fn api_versions_are_those_the_release_serves() {
    let latest = check("api-versions", &["tests/fixtures/versions"]);
    assert!(latest.contains("exit: 1"), "{latest}");
    for refused in [
        "no matches for kind \"DaemonSet\" in version \"extensions/v1beta1\"",
        "no matches for kind \"Deployment\" in version \"apps/v1beta2\"",
        "no matches for kind \"CronJob\" in version \"batch/v1beta1\"",
    ] {
        assert!(latest.contains(refused), "{refused}:\n{latest}");
    }
    assert!(
        latest.contains("SKIP Deployment custom"),
        "a deploy.example.com Deployment is not evaluated:\n{latest}"
    );
    let old = check(
        "api-versions-v1.15",
        &["tests/fixtures/versions", "--kubernetes-version", "v1.15"],
    );
    assert!(!old.contains("in version \"extensions/v1beta1\""), "{old}");
    assert!(
        old.contains("no matches for kind \"CronJob\" in version \"batch/v1\""),
        "{old}"
    );
    let bad = run(
        &[
            "check",
            "tests/fixtures/versions",
            "--kubernetes-version",
            "1.30",
        ],
        None,
    );
    assert!(
        bad.contains("exit: 2") && bad.contains("expected v1.N or latest"),
        "{bad}"
    );
}

/// `--kubernetes-version` is what `latest` means for the built-ins' release settings: before
/// v1.34 the apiserver did not validate a StatefulSet's pod template (kubernetes/kubernetes
/// `pkg/apis/apps/validation/validation.go`, `ValidatePodTemplateSpecForStatefulSet`, #131790),
/// so `init-container-validity` denies the same StatefulSet at v1.34 and not at v1.33.
#[test]
fn the_release_checked_against_is_what_latest_means() {
    let statefulset = b"apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  serviceName: db\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec:\n      initContainers:\n      - {name: seed, image: busybox:1.36, volumeMounts: [{name: cache, mountPath: /cache}]}\n      containers:\n      - {name: db, image: postgres:17}\n";
    let at = |release: &str| {
        run(
            &["check", "--kubernetes-version", release, "-"],
            Some(statefulset),
        )
    };
    let current = at("v1.34");
    assert!(
        current.contains("DENY StatefulSet db")
            && current.contains(r#"IG-V008 spec.template.spec.initContainers[0].volumeMounts[0].name: Not found: "cache""#),
        "{current}"
    );
    let before = at("v1.33");
    assert!(!before.contains("IG-V008"), "{before}");
    assert!(!before.contains("DENY"), "{before}");
}

/// IG-H007 restates four Pod Security checks; where pod-security reports them for a container,
/// hygiene does not repeat them, and as Pod Security Admission does (kubernetes/kubernetes
/// `staging/src/k8s.io/pod-security-admission/admission/admission.go`, `EvaluatePod`), an
/// object baseline denies gets no restricted warnings. A wrong value says it is wrong.
#[test]
fn findings_are_said_once_and_say_what_is_wrong() {
    let default = check("findings-once", &["tests/fixtures/findings"]);
    let (wrong, host_logs) = default.split_once("DENY Pod host-logs").unwrap();
    assert!(
        !wrong.contains("IG-H007"),
        "restricted says it already:\n{wrong}"
    );
    assert!(
        wrong.contains("allowPrivilegeEscalation != false (container \"setup\""),
        "{wrong}"
    );
    assert!(
        !host_logs.contains("[pod-security-restricted]"),
        "no restricted warnings on a denied object:\n{host_logs}"
    );
    assert!(
        host_logs
            .contains("IG-H007 spec.initContainers[0].securityContext.allowPrivilegeEscalation"),
        "hygiene still says it once:\n{host_logs}"
    );

    let hygiene_only = check(
        "findings-hygiene-only",
        &[
            "-c",
            "tests/fixtures/config/strict.yaml",
            "tests/fixtures/findings",
        ],
    );
    for said in [
        "securityContext.allowPrivilegeEscalation: Invalid value: true: must be false",
        "securityContext.runAsNonRoot: Invalid value: false: must be true",
        "securityContext.capabilities.drop: Invalid value: [\"NET_RAW\"]: must include \"ALL\"",
    ] {
        assert!(hygiene_only.contains(said), "{said}:\n{hygiene_only}");
    }
}

#[test]
fn docs_examples_text() {
    let out = check("examples-text", &["tests/fixtures/examples"]);
    assert!(out.contains("exit: 0"), "hygiene warns by default:\n{out}");
    assert!(
        out.contains("IG-H005 spec.initContainers[0].command: the `until` loop has no retry bound"),
        "{out}"
    );
}

#[test]
fn docs_examples_json() {
    let out = check("examples-json", &["tests/fixtures/examples", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_str(stdout_of(&out)).unwrap();
    assert_eq!(json["summary"]["objects"], 4);
    assert_eq!(json["summary"]["denied"], 0);
}

#[test]
fn every_rule_fixture_text_and_json() {
    let out = check("rules-text", &["crates/initguard-rules/src/examples"]);
    assert!(out.contains("exit: 1"), "validity fixtures are denied");
    for id in [
        "IG-V001", "IG-V004", "IG-V009", "IG-H001", "IG-H005", "IG-H009",
    ] {
        assert!(out.contains(id), "{id} missing");
    }
    assert!(out.contains(
        "error   IG-V004 spec.initContainers[0].livenessProbe: Forbidden: may not be set for init containers without restartPolicy=Always"
    ));
    check(
        "rules-json",
        &["crates/initguard-rules/src/examples", "-o", "json"],
    );
}

#[test]
fn junit_and_sarif() {
    let junit = check(
        "examples-junit",
        &[
            "tests/fixtures/examples",
            "crates/initguard-rules/src/examples/IG-V004.yaml",
            "-o",
            "junit",
        ],
    );
    assert!(junit.contains("<failure"), "{junit}");
    assert!(
        junit.contains("classname=\"tests/fixtures/examples/nginx-init-wget.yaml\" time="),
        "{junit}"
    );
    let sarif = check(
        "rules-sarif",
        &[
            "crates/initguard-rules/src/examples/IG-V004.yaml",
            "crates/initguard-rules/src/examples/IG-H009.yaml",
            "tests/fixtures/versions",
            "-o",
            "sarif",
        ],
    );
    let json: serde_json::Value = serde_json::from_str(stdout_of(&sarif)).unwrap();
    assert_eq!(json["version"], "2.1.0");
    let results = json["runs"][0]["results"].as_array().unwrap();
    let known: Vec<&str> = json["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for result in results {
        let rule = result["ruleId"].as_str().unwrap_or_default();
        assert!(known.contains(&rule), "no listed ruleId: {result:#}");
    }
    for rule in ["IG-V004", "IG-H009", "IG-E003"] {
        assert!(results.iter().any(|r| r["ruleId"] == rule), "{rule}");
    }
}

#[test]
fn fail_on_warn_turns_warnings_into_exit_1() {
    let out = run(
        &[
            "check",
            "tests/fixtures/examples/nginx-init-wget.yaml",
            "--fail-on-warn",
        ],
        None,
    );
    assert!(out.contains("exit: 1"), "{out}");
    let out = run(
        &["check", "tests/fixtures/examples/nginx-init-wget.yaml"],
        None,
    );
    assert!(out.contains("exit: 0"), "{out}");
}

#[test]
fn strict_config_namespace_selectors_and_audit() {
    let out = check(
        "strict-namespaces",
        &[
            "-c",
            "tests/fixtures/config/strict.yaml",
            "tests/fixtures/misc/namespaces.yaml",
        ],
    );
    assert!(
        out.contains("DENY Deployment shop/checkout"),
        "prod namespace is enforced:\n{out}"
    );
    assert!(
        out.contains("PASS Deployment staging/checkout"),
        "staging is not:\n{out}"
    );
}

#[test]
fn lists_reviews_and_skipped_kinds() {
    let out = check(
        "misc-text",
        &[
            "tests/fixtures/misc/list.yaml",
            "tests/fixtures/misc/admission-review.json",
        ],
    );
    assert!(out.contains("SKIP Service listed-svc"), "{out}");
    assert!(
        out.contains("DENY AdmissionReview(Deployment) team-a/api"),
        "{out}"
    );
}

#[test]
fn stdin_input() {
    let manifest =
        std::fs::read(workspace().join("crates/initguard-rules/src/examples/IG-V002.yaml"))
            .unwrap();
    let rendered = run(&["check", "-", "-o", "json"], Some(&manifest));
    golden("stdin-json", &rendered);
    assert!(rendered.contains("\"source\": \"-\""));
}

#[test]
fn bad_inputs_are_located_and_nothing_else_is_lost() {
    let out = check(
        "bad-inputs",
        &[
            "tests/fixtures/bad",
            "tests/fixtures/examples/webapl-probes.yaml",
            "no/such/file.yaml",
        ],
    );
    assert!(out.contains("exit: 2"), "{out}");
    assert!(
        out.contains("tests/fixtures/bad/broken.yaml:11: document 2: invalid YAML"),
        "{out}"
    );
    assert!(
        out.contains("tests/fixtures/bad/broken.json:4: document 1: invalid JSON"),
        "{out}"
    );
    assert!(
        out.contains("WARN Pod first-is-fine  tests/fixtures/bad/broken.yaml:1"),
        "documents before the error are kept:\n{out}"
    );
    assert!(
        out.contains("WARN Pod webapl"),
        "other files are still checked:\n{out}"
    );
    assert!(
        out.contains("no/such/file.yaml: No such file or directory"),
        "{out}"
    );
}

#[test]
fn config_errors_exit_2_with_the_key() {
    let out = check(
        "config-unknown-key",
        &[
            "-c",
            "tests/fixtures/config/unknown-key.yaml",
            "tests/fixtures/examples",
        ],
    );
    assert!(
        out.contains("exit: 2") && out.contains("unknown field `enforce`"),
        "{out}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = run(&["check"], None);
    assert!(out.contains("exit: 2"), "{out}");
    let out = run(&["check", "-o", "xml", "x.yaml"], None);
    assert!(
        out.contains("exit: 2") && out.contains("invalid value 'xml'"),
        "{out}"
    );
}

#[test]
fn mutated_manifests_keep_every_document() {
    let out = run(
        &[
            "check",
            "tests/fixtures/misc/list.yaml",
            "tests/fixtures/misc/namespaces.yaml",
            "--mutated",
            "-",
        ],
        None,
    );
    golden("mutated-stdout", &out);
    let stream = stdout_of(&out);
    assert_eq!(
        stream.matches("---\n").count(),
        5,
        "one List and four documents:\n{stream}"
    );

    let folder = std::env::temp_dir().join(format!("initguard-mutated-{}", std::process::id()));
    let out = run(
        &[
            "check",
            "tests/fixtures/misc/list.yaml",
            "--mutated",
            folder.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.contains("exit: 1"), "{out}");
    let written = std::fs::read_to_string(folder.join("tests/fixtures/misc/list.yaml")).unwrap();
    assert!(
        written.contains("kind: List") && written.contains("listed-svc"),
        "{written}"
    );
    std::fs::remove_dir_all(folder).unwrap();
}

/// Real-world shaped manifests (`tests/fixtures/yaml`) read as kubectl reads them: octal modes,
/// merge keys, a byte-order mark, `...` document ends; unquoted booleans where strings belong
/// are input errors naming the field, once. `--mutated` quotes every string a YAML 1.1 reader
/// would take for something else.
#[test]
fn yaml_is_read_and_written_as_kubectl_does() {
    let out = run(&["check", "tests/fixtures/yaml", "--mutated", "-"], None);
    golden("yaml-fidelity", &out);
    assert!(
        out.contains("exit: 2"),
        "the unquoted annotation is an input error:\n{out}"
    );
    for quoted in [
        "- 'no'",
        "value: '1_000'",
        "- '0x1F'",
        "value: '0400'",
        "value: 'on'",
        "sidecar.istio.io/inject: 'off'",
        "cluster-autoscaler.kubernetes.io/safe-to-evict: 'yes'",
        "defaultMode: 256",
        "kind: ConfigMapList",
        "resourceVersion: '4711'",
        "items: []\nkind: RoleList",
    ] {
        assert!(out.contains(quoted), "{quoted} missing:\n{out}");
    }
    assert_eq!(
        out.matches("metadata.annotations.prometheus.io/scrape")
            .count(),
        1,
        "one input error for the unreadable pod:\n{out}"
    );
}

/// `--mutated DIR` writes each input under its own path; two inputs that would meet in one
/// file are refused before anything is written.
#[test]
fn mutated_folders_keep_inputs_apart() {
    let folder = std::env::temp_dir().join(format!("initguard-apart-{}", std::process::id()));
    let out = run(
        &[
            "check",
            "tests/fixtures/yaml/etcd-defaultmode-octal.yaml",
            "./tests/fixtures/misc/list.yaml",
            "--mutated",
            folder.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.contains("exit: 1"), "{out}");
    for written in [
        "tests/fixtures/yaml/etcd-defaultmode-octal.yaml",
        "tests/fixtures/misc/list.yaml",
    ] {
        assert!(
            folder.join(written).is_file(),
            "{written} not written:\n{out}"
        );
    }
    std::fs::remove_dir_all(&folder).unwrap();

    // `w/../x.yaml` and `w/__/x.yaml` would both become `…/w/__/x.yaml`.
    let inputs = std::env::temp_dir().join(format!("initguard-clash-{}", std::process::id()));
    std::fs::create_dir_all(inputs.join("w/__")).unwrap();
    let pod = std::fs::read_to_string(workspace().join("tests/fixtures/yaml/byte-order-mark.yaml"))
        .unwrap();
    std::fs::write(inputs.join("x.yaml"), &pod).unwrap();
    std::fs::write(inputs.join("w/__/x.yaml"), &pod).unwrap();
    let up = format!("{}/w/../x.yaml", inputs.display());
    let down = format!("{}/w/__/x.yaml", inputs.display());
    let out = run(
        &["check", &up, &down, "--mutated", folder.to_str().unwrap()],
        None,
    );
    assert!(
        out.contains("exit: 2") && out.contains("would both be written to"),
        "{out}"
    );
    assert!(!folder.exists(), "nothing is written:\n{out}");
    // The same file named twice is written once.
    let out = run(
        &["check", &down, &down, "--mutated", folder.to_str().unwrap()],
        None,
    );
    assert!(out.contains("exit: 0"), "{out}");
    std::fs::remove_dir_all(&folder).unwrap();
    std::fs::remove_dir_all(&inputs).unwrap();
}

/// Golden injected manifests for every step, combinations, workloads and the rewritten docs
/// examples, as `--mutated` writes them; malformed annotations deny, opted-out pods pass as is.
#[test]
fn init_steps_are_injected_into_pods_and_templates() {
    let out = run(
        &[
            "check",
            "tests/fixtures/init-steps",
            "tests/fixtures/init-steps/examples",
            "--mutated",
            "-",
        ],
        None,
    );
    golden("init-steps-mutated", &out);
    assert!(
        out.contains("exit: 1"),
        "only malformed.yaml is denied:\n{out}"
    );
}

#[test]
fn rules_command_lists_and_shows() {
    let out = run(&["rules"], None);
    golden("rules-list", &out);
    let out = run(&["rules", "ig-v004"], None);
    assert!(
        out.contains("IG-V004 (init-container-validity)") && out.contains("livenessProbe"),
        "{out}"
    );
    let out = run(&["rules", "IG-X999"], None);
    assert!(
        out.contains("exit: 2") && out.contains("no rule \"IG-X999\""),
        "{out}"
    );
}

/// Endless and special inputs are refused or skipped, each said once, and every other input is
/// still checked.
#[cfg(unix)]
#[test]
fn endless_and_special_inputs_cannot_stall_check() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("special-inputs");
    let _ = std::fs::remove_dir_all(&dir);
    let folder = dir.join("manifests");
    std::fs::create_dir_all(folder.join("nested")).unwrap();
    std::fs::copy(
        workspace().join("tests/fixtures/examples/nginx-init-wget.yaml"),
        folder.join("nested/pod.yaml"),
    )
    .unwrap();
    std::os::unix::fs::symlink(".", folder.join("nested/again")).unwrap();
    std::os::unix::fs::symlink("..", folder.join("nested/up")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", folder.join("zero.yaml")).unwrap();
    let made = Command::new("mkfifo")
        .arg(folder.join("pipe.yaml"))
        .status()
        .unwrap();
    assert!(made.success());
    let pod = workspace().join("tests/fixtures/examples/myapp-pod-wait-for-services.yaml");

    let out = run(
        &[
            "check",
            "/dev/zero",
            folder.to_str().unwrap(),
            pod.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.contains("exit: 2"), "{out}");
    assert!(
        out.contains("ERROR /dev/zero: a device, not a regular file: it may never end; pipe it to - to read it"),
        "{out}"
    );
    assert!(
        out.contains("zero.yaml: a device, not a regular file"),
        "{out}"
    );
    assert!(
        out.contains("pipe.yaml: a FIFO, not a regular file"),
        "{out}"
    );
    assert!(
        out.contains("a folder already searched (a symlink cycle)"),
        "{out}"
    );
    assert_eq!(
        out.matches("WARN Pod init-demo").count(),
        1,
        "the pod behind the cycles is read once:\n{out}"
    );
    assert!(
        out.contains("WARN Pod myapp-pod"),
        "the other input is checked:\n{out}"
    );

    let big = run(
        &[
            "check",
            "--max-input-size",
            "100",
            pod.to_str().unwrap(),
            "-",
        ],
        Some(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: small}\n"),
    );
    assert!(big.contains("exit: 2"), "{big}");
    assert!(
        big.contains("larger than the limit of 100 bytes (--max-input-size)"),
        "{big}"
    );
    assert!(
        big.contains("SKIP ConfigMap small"),
        "stdin is still read:\n{big}"
    );

    // Stdin's size is known only as it is read: the documents before the limit are checked.
    let endless = run(
        &["check", "--max-input-size", "100", "-"],
        Some(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: small}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: second, labels: {a: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}}\n"),
    );
    assert!(endless.contains("exit: 2"), "{endless}");
    assert!(
        endless.contains("-: larger than the limit of 100 bytes (--max-input-size)"),
        "{endless}"
    );
    assert!(endless.contains("SKIP ConfigMap small"), "{endless}");

    let document = run(
        &["check", "--max-document-size", "100", "-"],
        Some(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: small}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: large}\ndata: {a: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}\n"),
    );
    assert!(document.contains("exit: 2"), "{document}");
    assert!(
        document.contains("-:5: document 2: the document is 148 bytes, more than the limit of 100 (--max-document-size)"),
        "{document}"
    );
    assert!(document.contains("SKIP ConfigMap small"), "{document}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// The JSON report is written as objects are judged, `summary` last; with no object at all it
/// is still one JSON document.
#[test]
fn a_json_report_without_objects_is_still_json() {
    let out = run(
        &["check", "-o", "json", "tests/fixtures/no-such-file.yaml"],
        None,
    );
    assert!(out.contains("exit: 2"), "{out}");
    let json: serde_json::Value = serde_json::from_str(stdout_of(&out)).unwrap();
    assert_eq!(json["objects"], serde_json::json!([]));
    assert_eq!(json["summary"]["input_errors"], 1);
    assert!(
        json["input_errors"][0]
            .as_str()
            .unwrap()
            .starts_with("tests/fixtures/no-such-file.yaml: No such file")
    );
}
