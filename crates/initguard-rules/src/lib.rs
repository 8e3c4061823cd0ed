//! initguard's built-in native policies.
//!
//! Each built-in is a [`Policy`] built from its settings by [`builtin`]; each of its rules has a
//! stable id, a one-line summary and a failing and a passing example in [`RULES`], which
//! `initguard rules` prints and the tests evaluate.

pub mod hygiene;
pub mod init_steps;
pub mod pod_security;
pub mod quantity;
pub mod settings;
mod shell;
mod text;
pub mod validity;

use std::sync::Arc;

use initguard_core::Policy;
use serde_json::Value;

pub use settings::SettingsError;

/// Names of the built-in policies, as config spells them.
pub const BUILTINS: &[&str] = &[
    validity::NAME,
    hygiene::NAME,
    pod_security::NAME,
    init_steps::NAME,
];

/// A built-in that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuiltinError {
    #[error("unknown builtin {name:?}: expected one of {}", BUILTINS.join(", "))]
    Unknown { name: String },
    #[error("invalid settings: {0}")]
    Settings(#[from] SettingsError),
}

/// Builds the built-in policy `name` from its settings (`null` for the defaults).
pub fn builtin(name: &str, settings: &Value) -> Result<Arc<dyn Policy>, BuiltinError> {
    builtin_for(name, settings, initguard_core::release::LATEST)
}

/// As [`builtin`], for the Kubernetes `release` checked against: what a release setting's
/// `latest` means.
pub fn builtin_for(
    name: &str,
    settings: &Value,
    release: initguard_core::release::Release,
) -> Result<Arc<dyn Policy>, BuiltinError> {
    Ok(match name {
        validity::NAME => Arc::new(validity::InitContainerValidity::from_settings(
            settings, release,
        )?),
        hygiene::NAME => Arc::new(hygiene::InitContainerHygiene::from_settings(settings)?),
        pod_security::NAME => {
            Arc::new(pod_security::PodSecurity::from_settings(settings, release)?)
        }
        init_steps::NAME => Arc::new(init_steps::InitSteps::from_settings(settings)?),
        _ => {
            return Err(BuiltinError::Unknown {
                name: name.to_owned(),
            });
        }
    })
}

/// One rule of a built-in, documented by example.
#[derive(Debug, Clone, Copy)]
pub struct RuleDoc {
    pub id: &'static str,
    pub policy: &'static str,
    pub summary: &'static str,
    /// The Kubernetes releases the rule applies to, and where its behaviour changes between
    /// them (`all` when it does not depend on the release).
    pub releases: &'static str,
    /// Settings (YAML) under which the examples show the rule; empty for the defaults.
    pub settings: &'static str,
    /// A YAML stream: a Pod that breaks the rule, the same mistake in a workload, and a Pod
    /// that keeps it, in that order.
    pub examples: &'static str,
}

macro_rules! rule {
    ($id:expr, $policy:expr, $summary:expr, $releases:expr, $settings:expr) => {
        RuleDoc {
            id: $id,
            policy: $policy,
            summary: $summary,
            releases: $releases,
            settings: $settings,
            examples: include_str!(concat!("../../../tests/fixtures/rules/", $id, ".yaml")),
        }
    };
}

/// Every rule of every built-in.
pub const RULES: &[RuleDoc] = &[
    rule!(
        "IG-V001",
        validity::NAME,
        "init container names are present, DNS-1123 labels of at most 63 characters",
        "all; DNS-1123 wording from v1.20; StatefulSet templates from v1.34",
        ""
    ),
    rule!(
        "IG-V002",
        validity::NAME,
        "container names are unique across app, init and ephemeral containers",
        "all; StatefulSet templates from v1.34",
        ""
    ),
    rule!(
        "IG-V003",
        validity::NAME,
        "init containers name an image (in a Pod without surrounding whitespace), with known pull and termination-message policies",
        "all; StatefulSet templates from v1.34",
        ""
    ),
    rule!(
        "IG-V004",
        validity::NAME,
        "probes and lifecycle hooks only on sidecars (restartPolicy: Always), and well-formed there: one handler, valid ports, schemes, headers, sleeps and numbers",
        "all; sidecars from v1.29 (Forbidden wording from v1.28), sleep hooks from v1.30, zero sleep from v1.33",
        ""
    ),
    rule!(
        "IG-V005",
        validity::NAME,
        "an init container's restartPolicy is Always or unset",
        "v1.29+",
        ""
    ),
    rule!(
        "IG-V006",
        validity::NAME,
        "ports are in range, with known protocols, valid unique names and no host port twice",
        "all; StatefulSet templates from v1.34",
        ""
    ),
    rule!(
        "IG-V007",
        validity::NAME,
        "resource names and quantities are valid (whole extended resources and hugepages), requests within limits, resize policies known",
        "all; resize policies from v1.33",
        ""
    ),
    rule!(
        "IG-V008",
        validity::NAME,
        "volume mounts name a volume of the pod, use distinct mount paths and relative sub-paths",
        "all; StatefulSet claim templates from v1.34",
        ""
    ),
    rule!(
        "IG-V009",
        validity::NAME,
        "env and envFrom names and prefixes are valid, each variable takes its value from one source",
        "all; relaxed names from v1.32",
        ""
    ),
    rule!(
        "IG-H001",
        hygiene::NAME,
        "images are pinned: a version tag other than latest, or a digest",
        "all",
        ""
    ),
    rule!(
        "IG-H002",
        hygiene::NAME,
        "images are pinned by digest (setting requireDigest)",
        "all",
        "requireDigest: true"
    ),
    rule!(
        "IG-H003",
        hygiene::NAME,
        "images come from allowed registries (setting allowedRegistries)",
        "all",
        "allowedRegistries: [registry.example.com]"
    ),
    rule!(
        "IG-H004",
        hygiene::NAME,
        "init containers set cpu and memory requests and limits",
        "all",
        ""
    ),
    rule!(
        "IG-H005",
        hygiene::NAME,
        "waits are bounded: no endless loops or sleeps without activeDeadlineSeconds",
        "all",
        ""
    ),
    rule!(
        "IG-H006",
        hygiene::NAME,
        "init containers do not inflate the pod's effective request beyond its app containers",
        "all",
        ""
    ),
    rule!(
        "IG-H007",
        hygiene::NAME,
        "hardened securityContext: not privileged, no escalation, non-root, drop ALL",
        "all",
        ""
    ),
    rule!(
        "IG-H008",
        hygiene::NAME,
        "at most maxInitContainers init containers (default 8)",
        "all",
        ""
    ),
    rule!(
        "IG-H009",
        hygiene::NAME,
        "warning: a bare pod with init containers and restartPolicy Never fails for good on one error",
        "all",
        ""
    ),
    rule!(
        "hostNamespaces",
        pod_security::NAME,
        "baseline: pods use their own network, PID and IPC namespaces",
        "all",
        ""
    ),
    rule!(
        "privileged",
        pod_security::NAME,
        "baseline: no privileged containers",
        "all",
        ""
    ),
    rule!(
        "capabilities_baseline",
        pod_security::NAME,
        "baseline: containers add no capabilities beyond the runtime's defaults",
        "all (restricted: capabilities_restricted from v1.22)",
        ""
    ),
    rule!(
        "hostPathVolumes",
        pod_security::NAME,
        "baseline: no hostPath volumes",
        "all (restricted: restrictedVolumes)",
        ""
    ),
    rule!(
        "hostPorts",
        pod_security::NAME,
        "baseline: containers open no host ports",
        "all",
        ""
    ),
    rule!(
        "appArmorProfile",
        pod_security::NAME,
        "baseline: AppArmor is not turned off (annotations, and fields from v1.30)",
        "all",
        ""
    ),
    rule!(
        "seLinuxOptions",
        pod_security::NAME,
        "baseline: SELinux types limited to container types, no custom user or role",
        "all; container_engine_t from v1.31",
        ""
    ),
    rule!(
        "procMount",
        pod_security::NAME,
        "baseline: /proc stays masked (relaxed for hostUsers: false pods from v1.35)",
        "all; hostUsers: false relaxed from v1.35",
        ""
    ),
    rule!(
        "seccompProfile_baseline",
        pod_security::NAME,
        "baseline: seccomp is not turned off (annotations before v1.19, fields after)",
        "all; fields from v1.19",
        ""
    ),
    rule!(
        "sysctls",
        pod_security::NAME,
        "baseline: only namespaced, safe sysctls (the list grows in v1.27, v1.29, v1.32, v1.37)",
        "all; more allowed from v1.27, v1.29, v1.32, v1.37",
        ""
    ),
    rule!(
        "windowsHostProcess",
        pod_security::NAME,
        "baseline: no Windows HostProcess containers",
        "all",
        ""
    ),
    rule!(
        "hostProbesAndHostLifecycle",
        pod_security::NAME,
        "baseline: probes and lifecycle hooks do not name a host (from v1.34)",
        "v1.34+",
        ""
    ),
    rule!(
        "restrictedVolumes",
        pod_security::NAME,
        "restricted: only configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected and secret volumes",
        "all",
        "level: restricted"
    ),
    rule!(
        "runAsNonRoot",
        pod_security::NAME,
        "restricted: the pod or every container sets runAsNonRoot: true (relaxed for hostUsers: false pods from v1.35)",
        "all; hostUsers: false relaxed from v1.35",
        "level: restricted"
    ),
    rule!(
        "allowPrivilegeEscalation",
        pod_security::NAME,
        "restricted: containers set allowPrivilegeEscalation: false (from v1.8; Windows pods exempt from v1.25)",
        "v1.8+; Windows exempt from v1.25",
        "level: restricted"
    ),
    rule!(
        "seccompProfile_restricted",
        pod_security::NAME,
        "restricted: the pod or every container sets seccomp RuntimeDefault or Localhost (from v1.19; Windows pods exempt from v1.25)",
        "v1.19+; Windows exempt from v1.25",
        "level: restricted"
    ),
    rule!(
        "capabilities_restricted",
        pod_security::NAME,
        "restricted: containers drop ALL and add only NET_BIND_SERVICE (from v1.22; Windows pods exempt from v1.25)",
        "v1.22+; Windows exempt from v1.25",
        "level: restricted"
    ),
    rule!(
        "runAsUser",
        pod_security::NAME,
        "restricted: no container runs as UID 0 (from v1.23; relaxed for hostUsers: false pods from v1.35)",
        "v1.23+; hostUsers: false relaxed from v1.35",
        "level: restricted"
    ),
    rule!(
        "procMount_restricted",
        pod_security::NAME,
        "restricted: /proc stays masked, even in a user namespace (from v1.35)",
        "v1.35+",
        "level: restricted"
    ),
    rule!(
        "IG-S001",
        init_steps::NAME,
        "init step annotations name known steps and options, with well-formed values",
        "all",
        ""
    ),
    rule!(
        "IG-S002",
        init_steps::NAME,
        "requested init steps fit the pod: no clashing container names, volumes or mount paths",
        "all",
        ""
    ),
];
