//! `pod-security` against the standards: for every check and every version boundary, a pod
//! that breaks it and one that keeps it, walked through every version from v1.0 to v1.37.
//!
//! Each case starts from a pod that meets `restricted` at every version and changes one thing,
//! so a case's expected findings are exactly the checks it names, in the versions it names.

use std::ops::Range;

use initguard_core::{Outcome, Policy, Request};
use initguard_rules::pod_security::{LATEST, Level, PodSecurity, Version, check_table};
use serde_json::{Value, json};

const EVERY_VERSION: Range<u32> = 0..LATEST_MINOR + 1;
const LATEST_MINOR: u32 = 37;

/// A pod that meets `restricted` at every version of the standards.
fn compliant_pod() -> Value {
    let hardened = json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "initContainers": [{"name": "init", "image": "busybox:1.36", "securityContext": hardened}],
            "containers": [{"name": "app", "image": "nginx:1.27", "securityContext": hardened}],
            "volumes": [{"name": "work", "emptyDir": {}}]
        }
    })
}

fn policy(level: Level, version: u32) -> PodSecurity {
    PodSecurity::from_settings(
        &json!({"level": level.as_str(), "version": format!("v1.{version}")}),
        LATEST,
    )
    .unwrap()
}

fn evaluate(policy: &PodSecurity, pod: Value) -> Outcome {
    policy.evaluate(&Request::create(pod)).unwrap()
}

fn fired(outcome: &Outcome) -> Vec<String> {
    outcome
        .violations
        .iter()
        .map(|v| v.rule.to_string())
        .collect()
}

/// One change to the compliant pod, and the checks it trips, by version.
struct Case {
    name: &'static str,
    level: Level,
    change: fn(&mut Value),
    fires: &'static [(&'static str, Range<u32>)],
}

const B: Level = Level::Baseline;
const R: Level = Level::Restricted;

fn init_context(pod: &mut Value) -> &mut Value {
    &mut pod["spec"]["initContainers"][0]["securityContext"]
}

fn app_context(pod: &mut Value) -> &mut Value {
    &mut pod["spec"]["containers"][0]["securityContext"]
}

fn pod_context(pod: &mut Value) -> &mut Value {
    &mut pod["spec"]["securityContext"]
}

fn windows(pod: &mut Value) {
    pod["spec"]["os"] = json!({"name": "windows"});
}

fn user_namespace(pod: &mut Value) {
    pod["spec"]["hostUsers"] = json!(false);
}

fn remove(value: &mut Value, key: &str) {
    value.as_object_mut().unwrap().remove(key);
}

const CASES: &[Case] = &[
    // hostNamespaces
    Case {
        name: "hostNetwork, hostPID and hostIPC",
        level: B,
        change: |p| {
            p["spec"]["hostNetwork"] = json!(true);
            p["spec"]["hostPID"] = json!(true);
            p["spec"]["hostIPC"] = json!(true);
        },
        fires: &[("hostNamespaces", EVERY_VERSION)],
    },
    Case {
        name: "host namespaces set false",
        level: B,
        change: |p| p["spec"]["hostNetwork"] = json!(false),
        fires: &[],
    },
    // privileged
    Case {
        name: "privileged init container",
        level: B,
        change: |p| init_context(p)["privileged"] = json!(true),
        fires: &[("privileged", EVERY_VERSION)],
    },
    Case {
        name: "privileged ephemeral container",
        level: B,
        change: |p| {
            p["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": "busybox:1.36", "securityContext": {"privileged": true}}]);
        },
        fires: &[("privileged", EVERY_VERSION)],
    },
    Case {
        name: "privileged false",
        level: B,
        change: |p| init_context(p)["privileged"] = json!(false),
        fires: &[],
    },
    // capabilities_baseline / capabilities_restricted
    Case {
        name: "adds NET_ADMIN (baseline)",
        level: B,
        change: |p| init_context(p)["capabilities"]["add"] = json!(["NET_ADMIN"]),
        fires: &[("capabilities_baseline", EVERY_VERSION)],
    },
    Case {
        name: "adds NET_ADMIN (restricted: replaced from v1.22)",
        level: R,
        change: |p| init_context(p)["capabilities"]["add"] = json!(["NET_ADMIN"]),
        fires: &[
            ("capabilities_baseline", 0..22),
            ("capabilities_restricted", 22..38),
        ],
    },
    Case {
        name: "adds CHOWN, a default capability",
        level: B,
        change: |p| init_context(p)["capabilities"]["add"] = json!(["CHOWN"]),
        fires: &[],
    },
    Case {
        name: "adds CHOWN under restricted",
        level: R,
        change: |p| init_context(p)["capabilities"]["add"] = json!(["CHOWN"]),
        fires: &[("capabilities_restricted", 22..38)],
    },
    Case {
        name: "does not drop ALL",
        level: R,
        change: |p| remove(init_context(p), "capabilities"),
        fires: &[("capabilities_restricted", 22..38)],
    },
    Case {
        name: "does not drop ALL, windows pod",
        level: R,
        change: |p| {
            windows(p);
            remove(init_context(p), "capabilities");
        },
        fires: &[("capabilities_restricted", 22..25)],
    },
    Case {
        name: "drops ALL, adds NET_BIND_SERVICE",
        level: R,
        change: |p| init_context(p)["capabilities"]["add"] = json!(["NET_BIND_SERVICE"]),
        fires: &[],
    },
    // hostPathVolumes / restrictedVolumes
    Case {
        name: "hostPath volume (baseline)",
        level: B,
        change: |p| {
            p["spec"]["volumes"][0] = json!({"name": "logs", "hostPath": {"path": "/var/log"}});
        },
        fires: &[("hostPathVolumes", EVERY_VERSION)],
    },
    Case {
        name: "hostPath volume (restricted)",
        level: R,
        change: |p| {
            p["spec"]["volumes"][0] = json!({"name": "logs", "hostPath": {"path": "/var/log"}});
        },
        fires: &[("restrictedVolumes", EVERY_VERSION)],
    },
    Case {
        name: "nfs volume under baseline",
        level: B,
        change: |p| {
            p["spec"]["volumes"][0] =
                json!({"name": "share", "nfs": {"server": "nfs.local", "path": "/"}});
        },
        fires: &[],
    },
    Case {
        name: "nfs volume under restricted",
        level: R,
        change: |p| {
            p["spec"]["volumes"][0] =
                json!({"name": "share", "nfs": {"server": "nfs.local", "path": "/"}});
        },
        fires: &[("restrictedVolumes", EVERY_VERSION)],
    },
    Case {
        name: "allowed volume types",
        level: R,
        change: |p| {
            p["spec"]["volumes"] = json!([
                {"name": "a", "configMap": {"name": "cfg"}},
                {"name": "b", "secret": {"secretName": "s"}},
                {"name": "c", "projected": {"sources": []}},
                {"name": "d", "downwardAPI": {}},
                {"name": "e", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "f", "csi": {"driver": "x"}},
                {"name": "g", "ephemeral": {}},
                {"name": "h"}
            ]);
        },
        fires: &[],
    },
    // hostPorts
    Case {
        name: "hostPort",
        level: B,
        change: |p| {
            p["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "hostPort": 8080}]);
        },
        fires: &[("hostPorts", EVERY_VERSION)],
    },
    Case {
        name: "hostPort 0",
        level: B,
        change: |p| {
            p["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "hostPort": 0}]);
        },
        fires: &[],
    },
    // appArmorProfile
    Case {
        name: "AppArmor annotation unconfined",
        level: B,
        change: |p| {
            p["metadata"]["annotations"] =
                json!({"container.apparmor.security.beta.kubernetes.io/init": "unconfined"});
        },
        fires: &[("appArmorProfile", EVERY_VERSION)],
    },
    Case {
        name: "AppArmor field Unconfined",
        level: B,
        change: |p| init_context(p)["appArmorProfile"] = json!({"type": "Unconfined"}),
        fires: &[("appArmorProfile", EVERY_VERSION)],
    },
    Case {
        name: "AppArmor runtime/default and Localhost",
        level: B,
        change: |p| {
            p["metadata"]["annotations"] =
                json!({"container.apparmor.security.beta.kubernetes.io/app": "runtime/default"});
            pod_context(p)["appArmorProfile"] =
                json!({"type": "Localhost", "localhostProfile": "k8s-web"});
        },
        fires: &[],
    },
    // seLinuxOptions
    Case {
        name: "SELinux type spc_t",
        level: B,
        change: |p| pod_context(p)["seLinuxOptions"] = json!({"type": "spc_t"}),
        fires: &[("seLinuxOptions", EVERY_VERSION)],
    },
    Case {
        name: "SELinux type container_engine_t, allowed from v1.31",
        level: B,
        change: |p| init_context(p)["seLinuxOptions"] = json!({"type": "container_engine_t"}),
        fires: &[("seLinuxOptions", 0..31)],
    },
    Case {
        name: "SELinux user",
        level: B,
        change: |p| init_context(p)["seLinuxOptions"] = json!({"user": "system_u"}),
        fires: &[("seLinuxOptions", EVERY_VERSION)],
    },
    Case {
        name: "SELinux container_t with a level",
        level: B,
        change: |p| {
            init_context(p)["seLinuxOptions"] =
                json!({"type": "container_t", "level": "s0:c123,c456"});
        },
        fires: &[],
    },
    // procMount / procMount_restricted
    Case {
        name: "procMount Unmasked",
        level: B,
        change: |p| init_context(p)["procMount"] = json!("Unmasked"),
        fires: &[("procMount", EVERY_VERSION)],
    },
    Case {
        name: "procMount Unmasked in a user namespace (baseline relaxes from v1.35)",
        level: B,
        change: |p| {
            user_namespace(p);
            init_context(p)["procMount"] = json!("Unmasked");
        },
        fires: &[("procMount", 0..35)],
    },
    Case {
        name: "procMount Unmasked in a user namespace (restricted keeps it)",
        level: R,
        change: |p| {
            user_namespace(p);
            init_context(p)["procMount"] = json!("Unmasked");
        },
        fires: &[("procMount", 0..35), ("procMount_restricted", 35..38)],
    },
    Case {
        name: "procMount Default",
        level: R,
        change: |p| init_context(p)["procMount"] = json!("Default"),
        fires: &[],
    },
    // seccompProfile_baseline / seccompProfile_restricted
    Case {
        name: "seccomp annotation unconfined (read before v1.19)",
        level: B,
        change: |p| {
            p["metadata"]["annotations"] =
                json!({"seccomp.security.alpha.kubernetes.io/pod": "unconfined"});
        },
        fires: &[("seccompProfile_baseline", 0..19)],
    },
    Case {
        name: "seccomp container annotation unconfined",
        level: B,
        change: |p| {
            p["metadata"]["annotations"] =
                json!({"container.seccomp.security.alpha.kubernetes.io/init": "unconfined"});
        },
        fires: &[("seccompProfile_baseline", 0..19)],
    },
    Case {
        name: "seccomp field Unconfined (read from v1.19)",
        level: B,
        change: |p| init_context(p)["seccompProfile"] = json!({"type": "Unconfined"}),
        fires: &[("seccompProfile_baseline", 19..38)],
    },
    Case {
        name: "seccomp field Unconfined under restricted",
        level: R,
        change: |p| init_context(p)["seccompProfile"] = json!({"type": "Unconfined"}),
        fires: &[("seccompProfile_restricted", 19..38)],
    },
    Case {
        name: "no seccomp profile",
        level: R,
        change: |p| remove(pod_context(p), "seccompProfile"),
        fires: &[("seccompProfile_restricted", 19..38)],
    },
    Case {
        name: "no seccomp profile, windows pod",
        level: R,
        change: |p| {
            windows(p);
            remove(pod_context(p), "seccompProfile");
        },
        fires: &[("seccompProfile_restricted", 19..25)],
    },
    Case {
        name: "seccomp per container instead of per pod",
        level: R,
        change: |p| {
            remove(pod_context(p), "seccompProfile");
            init_context(p)["seccompProfile"] = json!({"type": "RuntimeDefault"});
            app_context(p)["seccompProfile"] =
                json!({"type": "Localhost", "localhostProfile": "web.json"});
        },
        fires: &[],
    },
    // sysctls
    Case {
        name: "unsafe sysctl",
        level: B,
        change: |p| {
            pod_context(p)["sysctls"] = json!([{"name": "kernel.msgmax", "value": "65536"}]);
        },
        fires: &[("sysctls", EVERY_VERSION)],
    },
    Case {
        name: "sysctl allowed from v1.27",
        level: B,
        change: |p| {
            pod_context(p)["sysctls"] =
                json!([{"name": "net.ipv4.ip_local_reserved_ports", "value": "30000"}]);
        },
        fires: &[("sysctls", 0..27)],
    },
    Case {
        name: "sysctl allowed from v1.29",
        level: B,
        change: |p| {
            pod_context(p)["sysctls"] =
                json!([{"name": "net.ipv4.tcp_keepalive_time", "value": "600"}]);
        },
        fires: &[("sysctls", 0..29)],
    },
    Case {
        name: "sysctl allowed from v1.32",
        level: B,
        change: |p| {
            pod_context(p)["sysctls"] =
                json!([{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"}]);
        },
        fires: &[("sysctls", 0..32)],
    },
    // kubernetes/kubernetes #138389 (v1.37): `sysctlsAllowedV1Dot37` in
    // pod-security-admission `policy/check_sysctls.go`.
    Case {
        name: "sysctls allowed from v1.37",
        level: B,
        change: |p| {
            pod_context(p)["sysctls"] = json!([
                {"name": "net.ipv4.tcp_slow_start_after_idle", "value": "0"},
                {"name": "net.ipv4.tcp_notsent_lowat", "value": "16384"},
            ]);
        },
        fires: &[("sysctls", 0..37)],
    },
    Case {
        name: "safe sysctls since v1.0",
        level: B,
        change: |p| {
            pod_context(p)["sysctls"] = json!([
                {"name": "kernel.shm_rmid_forced", "value": "1"},
                {"name": "net.ipv4.ip_unprivileged_port_start", "value": "80"}
            ]);
        },
        fires: &[],
    },
    // windowsHostProcess
    Case {
        name: "hostProcess container",
        level: B,
        change: |p| init_context(p)["windowsOptions"] = json!({"hostProcess": true}),
        fires: &[("windowsHostProcess", EVERY_VERSION)],
    },
    Case {
        name: "hostProcess pod",
        level: B,
        change: |p| pod_context(p)["windowsOptions"] = json!({"hostProcess": true}),
        fires: &[("windowsHostProcess", EVERY_VERSION)],
    },
    Case {
        name: "hostProcess false",
        level: B,
        change: |p| pod_context(p)["windowsOptions"] = json!({"hostProcess": false}),
        fires: &[],
    },
    // hostProbesAndHostLifecycle
    Case {
        name: "probe host (from v1.34)",
        level: B,
        change: |p| {
            p["spec"]["containers"][0]["livenessProbe"] =
                json!({"httpGet": {"host": "10.0.0.1", "port": 8080}});
        },
        fires: &[("hostProbesAndHostLifecycle", 34..38)],
    },
    Case {
        name: "sidecar lifecycle tcpSocket host (from v1.34)",
        level: B,
        change: |p| {
            p["spec"]["initContainers"][0]["restartPolicy"] = json!("Always");
            p["spec"]["initContainers"][0]["lifecycle"] =
                json!({"preStop": {"tcpSocket": {"host": "metadata.internal", "port": 80}}});
        },
        fires: &[("hostProbesAndHostLifecycle", 34..38)],
    },
    Case {
        name: "probe without host",
        level: B,
        change: |p| {
            p["spec"]["containers"][0]["readinessProbe"] =
                json!({"httpGet": {"host": "", "port": 8080}});
        },
        fires: &[],
    },
    // runAsNonRoot
    Case {
        name: "runAsNonRoot unset",
        level: R,
        change: |p| remove(pod_context(p), "runAsNonRoot"),
        fires: &[("runAsNonRoot", EVERY_VERSION)],
    },
    Case {
        name: "runAsNonRoot false on a container",
        level: R,
        change: |p| init_context(p)["runAsNonRoot"] = json!(false),
        fires: &[("runAsNonRoot", EVERY_VERSION)],
    },
    Case {
        name: "runAsNonRoot unset in a user namespace (relaxed from v1.35)",
        level: R,
        change: |p| {
            user_namespace(p);
            remove(pod_context(p), "runAsNonRoot");
        },
        fires: &[("runAsNonRoot", 0..35)],
    },
    Case {
        name: "runAsNonRoot on every container instead of the pod",
        level: R,
        change: |p| {
            remove(pod_context(p), "runAsNonRoot");
            init_context(p)["runAsNonRoot"] = json!(true);
            app_context(p)["runAsNonRoot"] = json!(true);
        },
        fires: &[],
    },
    // allowPrivilegeEscalation
    Case {
        name: "allowPrivilegeEscalation unset (from v1.8)",
        level: R,
        change: |p| remove(init_context(p), "allowPrivilegeEscalation"),
        fires: &[("allowPrivilegeEscalation", 8..38)],
    },
    Case {
        name: "allowPrivilegeEscalation true, windows pod (exempt from v1.25)",
        level: R,
        change: |p| {
            windows(p);
            init_context(p)["allowPrivilegeEscalation"] = json!(true);
        },
        fires: &[("allowPrivilegeEscalation", 8..25)],
    },
    // runAsUser
    Case {
        name: "runAsUser 0 on a container (from v1.23)",
        level: R,
        change: |p| init_context(p)["runAsUser"] = json!(0),
        fires: &[("runAsUser", 23..38)],
    },
    Case {
        name: "runAsUser 0 on the pod",
        level: R,
        change: |p| pod_context(p)["runAsUser"] = json!(0),
        fires: &[("runAsUser", 23..38)],
    },
    Case {
        name: "runAsUser 0 in a user namespace (relaxed from v1.35)",
        level: R,
        change: |p| {
            user_namespace(p);
            init_context(p)["runAsUser"] = json!(0);
        },
        fires: &[("runAsUser", 23..35)],
    },
    Case {
        name: "runAsUser 1000",
        level: R,
        change: |p| pod_context(p)["runAsUser"] = json!(1000),
        fires: &[],
    },
];

#[test]
fn the_compliant_pod_meets_both_levels_at_every_version() {
    for version in EVERY_VERSION {
        for level in [B, R] {
            let found = fired(&evaluate(&policy(level, version), compliant_pod()));
            assert!(found.is_empty(), "{level:?} v1.{version}: {found:?}");
        }
    }
}

#[test]
fn every_case_fires_exactly_its_checks_in_exactly_its_versions() {
    let mut failures = Vec::new();
    for case in CASES {
        let mut pod = compliant_pod();
        (case.change)(&mut pod);
        for version in EVERY_VERSION {
            let expected: Vec<&str> = case
                .fires
                .iter()
                .filter(|(_, versions)| versions.contains(&version))
                .map(|(check, _)| *check)
                .collect();
            let found = fired(&evaluate(&policy(case.level, version), pod.clone()));
            if found != expected {
                failures.push(format!(
                    "{} ({:?} v1.{version}): expected {expected:?}, found {found:?}",
                    case.name, case.level
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_check_and_boundary_has_a_failing_case() {
    for (check, level, since) in check_table() {
        let cases: Vec<&Case> = CASES
            .iter()
            .filter(|c| c.fires.iter().any(|(id, _)| *id == check))
            .collect();
        assert!(!cases.is_empty(), "{check} has no failing case");
        let first = cases
            .iter()
            .flat_map(|c| c.fires.iter())
            .filter(|(id, _)| *id == check)
            .map(|(_, versions)| versions.start)
            .min()
            .unwrap();
        assert_eq!(
            first,
            since.minor(),
            "{check} ({level:?}) is first seen at v1.{first}"
        );
    }
    let passing = CASES.iter().filter(|c| c.fires.is_empty()).count();
    assert!(passing >= 15, "only {passing} passing cases");
}

#[test]
fn messages_read_like_pod_security_admission() {
    let mut pod = compliant_pod();
    remove(init_context(&mut pod), "allowPrivilegeEscalation");
    remove(app_context(&mut pod), "allowPrivilegeEscalation");
    init_context(&mut pod)["capabilities"]["add"] = json!(["SYS_ADMIN", "NET_RAW"]);
    remove(pod_context(&mut pod), "runAsNonRoot");
    app_context(&mut pod)["runAsNonRoot"] = json!(false);
    pod["spec"]["hostNetwork"] = json!(true);
    pod["spec"]["volumes"] = json!([
        {"name": "logs", "hostPath": {"path": "/var/log"}},
        {"name": "share", "nfs": {"server": "nfs.local", "path": "/"}}
    ]);
    let outcome = evaluate(&policy(R, LATEST_MINOR), pod);
    let messages: Vec<String> = outcome.violations.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "spec.hostNetwork: host namespaces (hostNetwork=true)",
            "spec: restricted volume types (volumes \"logs\", \"share\" use restricted volume types \"hostPath\", \"nfs\")",
            "spec: runAsNonRoot != true (container \"app\" must not set securityContext.runAsNonRoot=false; pod or container \"init\" must set securityContext.runAsNonRoot=true)",
            "spec: allowPrivilegeEscalation != false (containers \"init\", \"app\" must set securityContext.allowPrivilegeEscalation=false)",
            "spec: unrestricted capabilities (container \"init\" must not include \"SYS_ADMIN\", \"NET_RAW\" in securityContext.capabilities.add)",
        ]
    );
}

#[test]
fn one_offender_is_reported_at_its_field_in_workloads_too() {
    let pod = compliant_pod();
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"template": {"metadata": pod["metadata"], "spec": pod["spec"]}}
    });
    let mut deployment = deployment;
    deployment["spec"]["template"]["spec"]["initContainers"][0]["securityContext"]["privileged"] =
        json!(true);
    let outcome = evaluate(&policy(B, LATEST_MINOR), deployment);
    assert_eq!(
        outcome.violations[0].to_string(),
        "spec.template.spec.initContainers[0].securityContext.privileged: privileged (container \"init\" must not set securityContext.privileged=true)"
    );
}

#[test]
fn exemptions_by_namespace_user_runtime_class_and_image() {
    let mut pod = compliant_pod();
    init_context(&mut pod)["privileged"] = json!(true);
    let exempt = |exemptions: Value| {
        let policy = PodSecurity::from_settings(
            &json!({"level": "baseline", "exemptions": exemptions}),
            LATEST,
        )
        .unwrap();
        let mut request = Request::create(pod.clone());
        request.facts_mut().user_info.username =
            Some("system:serviceaccount:ci:deployer".to_owned());
        fired(&policy.evaluate(&request).unwrap())
    };
    assert_eq!(exempt(json!({})), ["privileged"]);
    assert!(exempt(json!({"namespaces": ["shop"]})).is_empty());
    assert!(exempt(json!({"usernames": ["system:serviceaccount:ci:deployer"]})).is_empty());
    assert_eq!(exempt(json!({"usernames": ["alice"]})), ["privileged"]);
    assert!(exempt(json!({"images": ["docker.io/library/busybox"]})).is_empty());
    assert_eq!(
        exempt(json!({"images": ["docker.io/library/nginx"]})),
        ["privileged"]
    );
    assert_eq!(
        exempt(json!({"runtimeClasses": ["gvisor"]})),
        ["privileged"]
    );
    let mut sandboxed = pod.clone();
    sandboxed["spec"]["runtimeClassName"] = json!("gvisor");
    let policy = PodSecurity::from_settings(
        &json!({"exemptions": {"runtimeClasses": ["gvisor"]}}),
        LATEST,
    )
    .unwrap();
    assert!(fired(&evaluate(&policy, sandboxed)).is_empty());
}

#[test]
fn updates_that_leave_the_pod_template_alone_pass() {
    let mut pod = compliant_pod();
    init_context(&mut pod)["privileged"] = json!(true);
    let mut relabelled = pod.clone();
    relabelled["metadata"]["labels"] = json!({"team": "shop"});
    let review = |old: Value| {
        let review = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "0b7c5c5e-0000-4000-8000-000000000001",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "operation": "UPDATE",
                "namespace": "shop",
                "name": "web",
                "userInfo": {"username": "alice"},
                "object": relabelled,
                "oldObject": old
            }
        });
        initguard_core::Review::from_value(&review).unwrap().request
    };
    let policy = policy(B, LATEST_MINOR);
    assert!(fired(&policy.evaluate(&review(pod.clone())).unwrap()).is_empty());
    let mut compliant_before = pod;
    init_context(&mut compliant_before)["privileged"] = json!(false);
    assert_eq!(
        fired(&policy.evaluate(&review(compliant_before)).unwrap()),
        ["privileged"]
    );
}

#[test]
fn settings_errors_name_the_setting() {
    let error = |settings: Value| {
        PodSecurity::from_settings(&settings, LATEST)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        error(json!({"level": "privileged"})),
        "level: unknown variant `privileged`, expected `baseline` or `restricted`"
    );
    assert_eq!(
        error(json!({"version": "v1.38"})),
        "version: \"v1.38\" is newer than the newest version this build knows (v1.37); use latest or an earlier version"
    );
    assert_eq!(
        error(json!({"version": "1.30"})),
        "version: \"1.30\" is not a version: expected v1.N or latest"
    );
    assert_eq!(
        error(json!({"exemptions": {"image": ["x"]}})),
        "exemptions.image: unknown field `image`, expected one of `namespaces`, `usernames`, `runtimeClasses`, `images`"
    );
    assert_eq!(Version::parse("latest").unwrap(), LATEST);
    assert_eq!(LATEST.minor(), LATEST_MINOR);
}

#[test]
fn every_check_is_documented_with_examples() {
    for (check, level, _) in check_table() {
        let doc = initguard_rules::rules()
            .find(|rule| rule.id == check)
            .unwrap_or_else(|| panic!("{check} is not among the documented rules"));
        assert_eq!(doc.policy, initguard_rules::pod_security::NAME);
        let restricted = doc.settings.contains("restricted");
        assert_eq!(
            restricted,
            level == R,
            "{check}: settings {:?}",
            doc.settings
        );
    }
}

/// `version: latest` means the release checked against (`check --kubernetes-version`), as Pod
/// Security Admission's `latest` is the newest its own apiserver knows: `runAsUser` is
/// restricted from v1.23 (pod-security-admission `policy/check_runAsUser.go`).
#[test]
fn latest_is_the_release_checked_against() {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "root"},
        "spec": {"securityContext": {"runAsUser": 0},
                 "containers": [{"name": "app", "image": "nginx:1.27"}]},
    });
    let rules_at = |release: u32| -> Vec<String> {
        PodSecurity::from_settings(&json!({"level": "restricted"}), Version::new(release))
            .unwrap()
            .evaluate(&Request::create(pod.clone()))
            .unwrap()
            .violations
            .into_iter()
            .map(|v| v.rule.to_string())
            .collect()
    };
    assert!(!rules_at(22).contains(&"runAsUser".to_owned()));
    assert!(rules_at(23).contains(&"runAsUser".to_owned()));
}
