//! `init-steps` through the whole pipeline: injected pods pass every validating built-in
//! (PSS restricted included), a second pass changes nothing, re-invocation replaces instead of
//! adding, the docs' hand-written init containers have bounded equivalents, and conflicts deny.

use std::path::Path;

use initguard::config::{Config, Loader};
use initguard_core::{Decision, Phase, Pipeline, Request};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::support::workspace;

fn pipeline(yaml: &str) -> Pipeline {
    Config::from_yaml(yaml, "test")
        .unwrap()
        .pipeline("test", Path::new("."), &Loader::new())
        .unwrap()
}

/// init-steps, then every validating built-in enforced, PSS at restricted.
fn strict() -> Pipeline {
    pipeline(
        "policies:
  - {name: init-steps, builtin: init-steps}
  - {name: validity, builtin: init-container-validity}
  - {name: hygiene, builtin: init-container-hygiene}
  - {name: restricted, builtin: pod-security, settings: {level: restricted}}
",
    )
}

fn documents(relative: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(workspace().join(relative)).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .collect()
}

/// Every object in the init-steps fixtures that asks for steps and is well-formed.
fn injectable() -> Vec<Value> {
    let mut objects = Vec::new();
    let folders = [
        "tests/fixtures/init-steps",
        "tests/fixtures/init-steps/examples",
    ];
    for entry in folders
        .iter()
        .flat_map(|folder| std::fs::read_dir(workspace().join(folder)).unwrap())
    {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml")
            && !path.ends_with("malformed.yaml")
            && !path.ends_with("not-opted-in.yaml")
        {
            let relative = path
                .strip_prefix(workspace())
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            objects.extend(documents(&relative));
        }
    }
    assert!(objects.len() >= 15, "{}", objects.len());
    objects
}

fn evaluate(pipeline: &Pipeline, object: Value) -> Decision {
    pipeline.evaluate(&Request::create(object), Phase::All)
}

/// The object after the pipeline's mutations; the object must get some.
fn mutated(pipeline: &Pipeline, object: Value) -> Value {
    evaluate(pipeline, object)
        .mutated
        .expect("the pipeline mutates the object")
}

/// The first document of `tests/fixtures/init-steps/NAME.yaml`.
fn fixture(name: &str) -> Value {
    documents(&format!("tests/fixtures/init-steps/{name}.yaml"))[0].clone()
}

fn name(object: &Value) -> String {
    object["metadata"]["name"].as_str().unwrap().to_owned()
}

#[test]
fn injected_pods_pass_validity_hygiene_and_restricted() {
    let pipeline = strict();
    let mut injected = 0;
    for object in injectable() {
        let decision = evaluate(&pipeline, object.clone());
        injected += usize::from(decision.mutated.is_some());
        assert!(
            decision.allowed() && decision.warnings.is_empty(),
            "{}: {:?} {:?}",
            name(&object),
            decision.denial,
            decision.warnings
        );
    }
    // Every fixture but the Job template without annotations got its steps.
    assert_eq!(injected, injectable().len() - 1);
}

#[test]
fn a_second_pass_changes_nothing() {
    let pipeline = strict();
    let mut injected = 0;
    for object in injectable() {
        let first = evaluate(&pipeline, object.clone());
        let Some(mutated) = first.mutated else {
            continue;
        };
        injected += 1;
        let second = evaluate(&pipeline, mutated.clone());
        assert!(
            second.patch.0.is_empty(),
            "{}: the second pass patches {:?}",
            name(&object),
            second.patch
        );
        let mut patched = object.clone();
        json_patch::patch(&mut patched, &first.patch.0).unwrap();
        assert_eq!(patched, mutated, "{}", name(&object));
    }
    assert_eq!(injected, injectable().len() - 1);
}

fn init_names(object: &Value, template: &str) -> Vec<String> {
    object
        .pointer(&format!("{template}/initContainers"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn steps_run_in_catalog_order_before_the_pods_own_unless_placed_after() {
    let every = mutated(&strict(), fixture("every-step"));
    assert_eq!(
        init_names(&every, "/spec"),
        [
            "initguard-wait-for-dns",
            "initguard-wait-for-tcp",
            "initguard-wait-for-http",
            "initguard-delay",
            "initguard-git-clone",
            "initguard-fetch",
            "initguard-render-config",
            "initguard-register"
        ]
    );
    let combination = mutated(&strict(), fixture("combination"));
    assert_eq!(
        init_names(&combination, "/spec"),
        [
            "initguard-wait-for-dns",
            "initguard-wait-for-tcp",
            "initguard-git-clone",
            "migrate",
            "initguard-register"
        ]
    );
    // The pod's own volume of that name is reused, not duplicated.
    let volumes = combination["spec"]["volumes"].as_array().unwrap();
    assert_eq!(volumes.len(), 1, "{volumes:?}");
}

#[test]
fn changed_annotations_replace_what_was_injected() {
    let pipeline = strict();
    let original = fixture("git-clone");
    let mut injected = mutated(&pipeline, original.clone());
    assert_eq!(injected["spec"]["volumes"].as_array().unwrap().len(), 1);
    let annotations = injected["metadata"]["annotations"].as_object_mut().unwrap();
    annotations.retain(|key, _| !key.starts_with("initguard.dev/git-clone"));
    annotations.insert("initguard.dev/delay".to_owned(), json!("10s"));
    let replaced = mutated(&pipeline, injected);
    assert_eq!(init_names(&replaced, "/spec"), ["initguard-delay"]);
    assert!(replaced["spec"].get("volumes").is_none(), "{replaced:#}");
    assert!(
        replaced["spec"]["containers"][0]
            .get("volumeMounts")
            .is_none(),
        "{replaced:#}"
    );
    assert_eq!(
        replaced["metadata"]["annotations"]["initguard.dev/injected"],
        json!(r#"{"containers":["initguard-delay"]}"#)
    );

    // With every step annotation gone, the pod is back to what its author wrote.
    let mut bare = replaced;
    bare["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("initguard.dev/delay");
    let restored = mutated(&pipeline, bare);
    let mut expected = original;
    let annotations = expected["metadata"]["annotations"].as_object_mut().unwrap();
    annotations.retain(|key, _| !key.starts_with("initguard.dev/git-clone"));
    assert_eq!(restored, expected);
}

#[test]
fn patches_escape_annotation_keys_and_create_missing_lists() {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web",
            "labels": {"initguard.dev/inject": "enabled"},
            "annotations": {"example.com/a~b": "kept", "initguard.dev/wait-for-dns": "db"}
        },
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}
    });
    let decision = evaluate(&strict(), pod.clone());
    let ops = serde_json::to_value(&decision.patch).unwrap();
    let paths: Vec<&str> = ops
        .as_array()
        .unwrap()
        .iter()
        .map(|op| op["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"/metadata/annotations/initguard.dev~1injected"),
        "{paths:?}"
    );
    assert!(paths.contains(&"/spec/initContainers"), "{paths:?}");
    let mut patched = pod;
    json_patch::patch(&mut patched, &decision.patch.0).unwrap();
    assert_eq!(
        patched["metadata"]["annotations"]["example.com/a~b"],
        "kept"
    );
    assert_eq!(init_names(&patched, "/spec"), ["initguard-wait-for-dns"]);
}

#[test]
fn the_namespace_label_opts_in_every_pod_and_pods_are_injected_only_at_create() {
    let pipeline = strict();
    let mut pod = fixture("not-opted-in");
    assert!(evaluate(&pipeline, pod.clone()).patch.0.is_empty());
    let mut request = Request::create(pod.clone());
    request.facts_mut().namespace_labels = Some(
        [("initguard.dev/inject".to_owned(), "enabled".to_owned())]
            .into_iter()
            .collect(),
    );
    let decision = pipeline.evaluate(&request, Phase::All);
    assert_eq!(
        init_names(decision.mutated.as_ref().unwrap(), "/spec"),
        ["initguard-wait-for-dns"]
    );

    pod["metadata"]["labels"] = json!({"initguard.dev/inject": "enabled"});
    let mut update = Request::create(pod);
    update.facts_mut().operation = initguard_core::request::Operation::Update;
    assert!(pipeline.evaluate(&update, Phase::All).patch.0.is_empty());
}

#[test]
fn the_docs_examples_rewritten_get_equivalent_bounded_steps() {
    let pipeline = strict();
    let hygiene = pipeline_hygiene();
    let cases = [
        (
            "myapp-pod-wait-for-services",
            vec![("TARGET", "myservice"), ("TARGET", "mydb")],
        ),
        (
            "init-container-git-clone",
            vec![("GIT_REPO", "https://github.com/moby/moby.git")],
        ),
        (
            "nginx-init-wget",
            vec![("FETCH_URL", "http://info.cern.ch")],
        ),
    ];
    for (example, targets) in cases {
        let original = documents(&format!("tests/fixtures/examples/{example}.yaml"))[0].clone();
        let rewritten = fixture(&format!("examples/{example}"));
        let injected = mutated(&pipeline, rewritten);
        let containers = injected["spec"]["initContainers"].as_array().unwrap();
        assert_eq!(
            containers.len(),
            original["spec"]["initContainers"].as_array().unwrap().len(),
            "{example}"
        );
        for (container, (variable, value)) in containers.iter().zip(targets) {
            let env = container["env"].as_array().unwrap();
            assert!(
                env.iter()
                    .any(|e| e["name"] == variable && e["value"] == value),
                "{example}: {variable}={value} missing in {env:?}"
            );
        }
        // The hand-written waits are unbounded; the injected ones are not.
        let unbounded = |object: Value| {
            let decision = evaluate(&hygiene, object);
            decision
                .warnings
                .iter()
                .any(|w| w.to_string().contains("IG-H005"))
                || decision
                    .denial
                    .is_some_and(|d| d.message().contains("IG-H005"))
        };
        if example.starts_with("myapp") {
            assert!(unbounded(original), "{example}");
        }
        assert!(!unbounded(injected), "{example}");
    }
}

fn pipeline_hygiene() -> Pipeline {
    pipeline("policies:\n  - {name: hygiene, builtin: init-container-hygiene}\n")
}

#[test]
fn conflicts_deny_with_the_reason() {
    let pipeline = strict();
    let denial = |object: Value| {
        evaluate(&pipeline, object)
            .denial
            .map(|d| d.message())
            .unwrap_or_default()
    };
    let failing = documents("crates/initguard-rules/src/examples/IG-S002.yaml");
    assert!(
        denial(failing[0].clone()).contains(
            "volume \"html\" exists with another source; the step needs an emptyDir, ephemeral or persistentVolumeClaim volume it can write"
        ),
        "{}",
        denial(failing[0].clone())
    );
    assert!(
        denial(failing[1].clone())
            .contains("the pod already has a container named \"initguard-git-clone\""),
        "{}",
        denial(failing[1].clone())
    );
    let mut two_volumes = fixture("fetch");
    two_volumes["spec"]["containers"] = json!([
        {"name": "a", "image": "nginx:1.27", "volumeMounts": [{"name": "x", "mountPath": "/usr/share/nginx/html"}]},
        {"name": "b", "image": "nginx:1.27", "volumeMounts": [{"name": "y", "mountPath": "/usr/share/nginx/html"}]}
    ]);
    two_volumes["spec"]["volumes"] =
        json!([{"name": "x", "emptyDir": {}}, {"name": "y", "emptyDir": {}}]);
    assert!(
        denial(two_volumes.clone()).contains("containers \"a\" and \"b\" mount different volumes (\"x\", \"y\") at /usr/share/nginx/html"),
        "{}",
        denial(two_volumes)
    );
}

#[test]
fn admins_add_steps_override_images_and_disable_built_ins() {
    let pipeline = pipeline(
        r#"policies:
  - name: init-steps
    builtin: init-steps
    settings:
      disabled: [git-clone]
      steps:
        - name: wait-for-dns
          image: registry.example.com/mirror/busybox:1.36.1
          allowImageOverride: true
        - name: wait-for-kafka
          image: registry.example.com/tools/kcat:1.7.1
          command: [kcat, -b, "$(INITGUARD_VALUE)", -L]
          timeout: 90s
          mountPath: /var/run/kafka
"#,
    );
    let pod = |annotations: Value| {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "labels": {"initguard.dev/inject": "enabled"}, "annotations": annotations},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}
        })
    };
    let injected = mutated(
        &pipeline,
        pod(json!({
            "initguard.dev/wait-for-kafka": "kafka:9092",
            "initguard.dev/wait-for-dns": "db",
            "initguard.dev/wait-for-dns-image": "registry.example.com/mirror/busybox:1.37.0"
        })),
    );
    let containers = injected["spec"]["initContainers"].as_array().unwrap();
    assert_eq!(
        containers[0]["image"],
        "registry.example.com/mirror/busybox:1.37.0"
    );
    let kafka = &containers[1];
    assert_eq!(kafka["name"], "initguard-wait-for-kafka");
    assert_eq!(
        kafka["command"],
        json!([
            "timeout",
            "$(INITGUARD_TIMEOUT)",
            "kcat",
            "-b",
            "$(INITGUARD_VALUE)",
            "-L"
        ])
    );
    assert!(
        kafka["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "INITGUARD_TIMEOUT" && e["value"] == "90")
    );
    assert_eq!(
        injected["spec"]["containers"][0]["volumeMounts"],
        json!([{"name": "initguard-wait-for-kafka", "mountPath": "/var/run/kafka", "readOnly": true}])
    );
    let denied = evaluate(
        &pipeline,
        pod(json!({"initguard.dev/git-clone": "https://example.com/x.git"})),
    );
    assert!(
        denied
            .denial
            .unwrap()
            .message()
            .contains("initguard.dev/git-clone: this step is disabled in this cluster")
    );
}

#[test]
fn bad_settings_are_refused_with_the_setting_named() {
    let error = |settings: &str| {
        Config::from_yaml(
            &format!("policies:\n  - name: s\n    builtin: init-steps\n    settings: {settings}\n"),
            "test.yaml",
        )
        .unwrap()
        .pipeline("test.yaml", Path::new("."), &Loader::new())
        .unwrap_err()
        .to_string()
    };
    assert_eq!(
        error("{disabled: [git-clon]}"),
        "test.yaml: policies[0] (s): settings.disabled[0]: \"git-clon\" is not a built-in step: expected one of wait-for-dns, wait-for-tcp, wait-for-http, delay, git-clone, fetch, render-config, register"
    );
    assert_eq!(
        error("{steps: [{name: wait-for-dns, image: busybox}]}"),
        "test.yaml: policies[0] (s): settings.steps[0]: image: \"busybox\" is not pinned: give a version tag other than latest, or a digest"
    );
    assert_eq!(
        error("{steps: [{name: my-step, image: 'x:1'}]}"),
        "test.yaml: policies[0] (s): settings.steps[0]: \"my-step\" is not a built-in step, so it needs a command"
    );
    assert_eq!(
        error("{steps: [{name: delay, timeout: 1h}]}"),
        "test.yaml: policies[0] (s): settings.steps[0]: timeout: 1h must be more than zero and at most maxTimeout (10m)"
    );
    assert_eq!(
        error("{steps: [{name: fetch, timeout: soon}]}"),
        "test.yaml: policies[0] (s): settings.steps[0].timeout: \"soon\" is not a duration such as 250ms or 2s: expected number at 0"
    );
}

#[test]
fn placement_is_configured_for_all_steps_and_per_step() {
    let pipeline = pipeline(
        "policies:
  - name: init-steps
    builtin: init-steps
    settings:
      placement: after
      steps: [{name: wait-for-dns, placement: before}]
",
    );
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web",
            "labels": {"initguard.dev/inject": "enabled"},
            "annotations": {"initguard.dev/delay": "5s", "initguard.dev/wait-for-dns": "db"}
        },
        "spec": {
            "initContainers": [{"name": "migrate", "image": "registry.example.com/migrate:2.4.1"}],
            "containers": [{"name": "app", "image": "nginx:1.27"}]
        }
    });
    let injected = mutated(&pipeline, pod);
    assert_eq!(
        init_names(&injected, "/spec"),
        ["initguard-wait-for-dns", "migrate", "initguard-delay"]
    );
}

/// The answer's patch is minimal: every operation of an injection is an `add` (of the status
/// annotation, each injected init container at its index, each volume and each mount), so one
/// step before a pod's own init containers does not rewrite them. The operations of each
/// fixture are as many as the things it adds.
#[test]
fn injections_are_patched_with_one_add_per_thing_added() {
    let pipeline = pipeline("policies:\n  - {name: init-steps, builtin: init-steps}\n");
    for object in injectable() {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or("?")
            .to_owned();
        let decision = evaluate(&pipeline, object.clone());
        let Some(mutated) = decision.mutated else {
            continue;
        };
        let patch = serde_json::to_value(&decision.patch).unwrap();
        let ops = patch.as_array().unwrap();
        assert!(ops.iter().all(|op| op["op"] == "add"), "{name}: {patch:#}");
        let spec = |value: &Value| {
            if value["kind"] == "Pod" {
                value["spec"].clone()
            } else if value["kind"] == "CronJob" {
                value["spec"]["jobTemplate"]["spec"]["template"]["spec"].clone()
            } else {
                value["spec"]["template"]["spec"].clone()
            }
        };
        let (before, after) = (spec(&object), spec(&mutated));
        let count = |spec: &Value, list: &str| spec[list].as_array().map_or(0, Vec::len);
        // A list the object did not have is added whole; otherwise each new entry is added.
        let added = |list: &str| match (count(&before, list), count(&after, list)) {
            (_, 0) => 0,
            (0, _) => 1,
            (old, new) => new - old,
        };
        let mounts: usize = after["containers"]
            .as_array()
            .unwrap()
            .iter()
            .zip(before["containers"].as_array().unwrap())
            .map(|(new, old)| {
                let (old, new) = (count(old, "volumeMounts"), count(new, "volumeMounts"));
                match (old, new) {
                    (_, 0) => 0,
                    (0, _) => 1,
                    (old, new) => new - old,
                }
            })
            .sum();
        let expected = 1 + added("initContainers") + added("volumes") + mounts;
        assert_eq!(ops.len(), expected, "{name}: {patch:#}");
    }
}
