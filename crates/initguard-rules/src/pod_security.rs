//! `pod-security`: the Kubernetes Pod Security Standards, levels `baseline` and `restricted`,
//! pinned to a version of the standards, over init, app and ephemeral containers.
//!
//! Each check carries the name Pod Security Admission gives it and the version it appeared in;
//! a check that changed keeps every behaviour, chosen by the pinned version, so that pinning
//! `v1.24` here judges a pod exactly as a `v1.24` namespace label would. Messages follow PSA:
//! what is forbidden, then which pod fields or containers (`allowPrivilegeEscalation != false
//! (containers "a", "b" must set securityContext.allowPrivilegeEscalation=false)`).

use std::fmt;

use initguard_core::image::ImageRef;
use initguard_core::k8s_openapi::api::core::v1::{
    Capabilities, HTTPGetAction, LifecycleHandler, PodSecurityContext, Probe, SecurityContext,
    TCPSocketAction, Volume,
};
use initguard_core::request::Operation;
use initguard_core::{
    ContainerRef, FieldPath, Outcome, Policy, PolicyError, Request, Violation, Workload,
};
use serde::Deserialize;

use crate::SettingsError;

pub const NAME: &str = "pod-security";

/// The rules of this policy, documented by example (`initguard rules`).
pub const RULES: &[crate::RuleDoc] = &[
    rule!(
        "hostNamespaces",
        "baseline: pods use their own network, PID and IPC namespaces",
        "all",
        ""
    ),
    rule!(
        "privileged",
        "baseline: no privileged containers",
        "all",
        ""
    ),
    rule!(
        "capabilities_baseline",
        "baseline: containers add no capabilities beyond the runtime's defaults",
        "all (restricted: capabilities_restricted from v1.22)",
        ""
    ),
    rule!(
        "hostPathVolumes",
        "baseline: no hostPath volumes",
        "all (restricted: restrictedVolumes)",
        ""
    ),
    rule!(
        "hostPorts",
        "baseline: containers open no host ports",
        "all",
        ""
    ),
    rule!(
        "appArmorProfile",
        "baseline: AppArmor is not turned off (annotations, and fields from v1.30)",
        "all",
        ""
    ),
    rule!(
        "seLinuxOptions",
        "baseline: SELinux types limited to container types, no custom user or role",
        "all; container_engine_t from v1.31",
        ""
    ),
    rule!(
        "procMount",
        "baseline: /proc stays masked (relaxed for hostUsers: false pods from v1.35)",
        "all; hostUsers: false relaxed from v1.35",
        ""
    ),
    rule!(
        "seccompProfile_baseline",
        "baseline: seccomp is not turned off (annotations before v1.19, fields after)",
        "all; fields from v1.19",
        ""
    ),
    rule!(
        "sysctls",
        "baseline: only namespaced, safe sysctls (the list grows in v1.27, v1.29, v1.32, v1.37)",
        "all; more allowed from v1.27, v1.29, v1.32, v1.37",
        ""
    ),
    rule!(
        "windowsHostProcess",
        "baseline: no Windows HostProcess containers",
        "all",
        ""
    ),
    rule!(
        "hostProbesAndHostLifecycle",
        "baseline: probes and lifecycle hooks do not name a host (from v1.34)",
        "v1.34+",
        ""
    ),
    rule!(
        "restrictedVolumes",
        "restricted: only configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, projected and secret volumes",
        "all",
        "level: restricted"
    ),
    rule!(
        "runAsNonRoot",
        "restricted: the pod or every container sets runAsNonRoot: true (relaxed for hostUsers: false pods from v1.35)",
        "all; hostUsers: false relaxed from v1.35",
        "level: restricted"
    ),
    rule!(
        "allowPrivilegeEscalation",
        "restricted: containers set allowPrivilegeEscalation: false (from v1.8; Windows pods exempt from v1.25)",
        "v1.8+; Windows exempt from v1.25",
        "level: restricted"
    ),
    rule!(
        "seccompProfile_restricted",
        "restricted: the pod or every container sets seccomp RuntimeDefault or Localhost (from v1.19; Windows pods exempt from v1.25)",
        "v1.19+; Windows exempt from v1.25",
        "level: restricted"
    ),
    rule!(
        "capabilities_restricted",
        "restricted: containers drop ALL and add only NET_BIND_SERVICE (from v1.22; Windows pods exempt from v1.25)",
        "v1.22+; Windows exempt from v1.25",
        "level: restricted"
    ),
    rule!(
        "runAsUser",
        "restricted: no container runs as UID 0 (from v1.23; relaxed for hostUsers: false pods from v1.35)",
        "v1.23+; hostUsers: false relaxed from v1.35",
        "level: restricted"
    ),
    rule!(
        "procMount_restricted",
        "restricted: /proc stays masked, even in a user namespace (from v1.35)",
        "v1.35+",
        "level: restricted"
    ),
];

/// A version of the standards is the Kubernetes release that shipped it; `latest` is the
/// newest release this build knows.
pub use initguard_core::release::{LATEST, Release as Version};

/// A level of the standards. `privileged` is the absence of checks: leave the policy out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Baseline,
    Restricted,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::Restricted => "restricted",
        }
    }
}

/// Settings of `pod-security`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PodSecuritySettings {
    pub level: Level,
    /// `v1.N` or `latest`.
    pub version: String,
    pub exemptions: Exemptions,
}

impl Default for PodSecuritySettings {
    fn default() -> Self {
        Self {
            level: Level::Baseline,
            version: "latest".to_owned(),
            exemptions: Exemptions::default(),
        }
    }
}

/// What the standards do not apply to. Namespaces, users and runtime classes exempt the whole
/// request, as in Pod Security Admission; images exempt the containers that run them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Exemptions {
    pub namespaces: Vec<String>,
    pub usernames: Vec<String>,
    pub runtime_classes: Vec<String>,
    /// Registries or repository prefixes (`registry.example.com/node-agents/`).
    pub images: Vec<String>,
}

#[derive(Debug)]
pub struct PodSecurity {
    version: Version,
    exemptions: Exemptions,
    checks: Vec<&'static Check>,
}

impl PodSecurity {
    /// `latest` is what `version: latest` means: the release checked against, as Pod Security
    /// Admission's `latest` is the newest its apiserver knows.
    pub fn new(settings: PodSecuritySettings, latest: Version) -> Result<Self, SettingsError> {
        let version = Version::parse_relative(&settings.version, latest)
            .map_err(|e| SettingsError::new(format!("version: {e}")))?;
        if let Some(empty) = settings.exemptions.images.iter().position(String::is_empty) {
            return Err(SettingsError::new(format!(
                "exemptions.images[{empty}]: an empty prefix would exempt every image"
            )));
        }
        Ok(Self {
            version,
            checks: checks_for(settings.level, version),
            exemptions: settings.exemptions,
        })
    }

    pub fn from_settings(
        settings: &serde_json::Value,
        latest: Version,
    ) -> Result<Self, SettingsError> {
        Self::new(crate::settings::parse(settings)?, latest)
    }

    fn exempts_request(&self, request: &Request) -> bool {
        let listed = |list: &[String], value: Option<&str>| {
            value.is_some_and(|v| !v.is_empty() && list.iter().any(|item| item == v))
        };
        listed(
            &self.exemptions.namespaces,
            request.facts.namespace.as_deref(),
        ) || listed(
            &self.exemptions.usernames,
            request.facts.user_info.username.as_deref(),
        )
    }

    fn exempts_image(&self, image: Option<&str>) -> bool {
        let Some(image) = image.filter(|_| !self.exemptions.images.is_empty()) else {
            return false;
        };
        let reference = ImageRef::parse(image);
        self.exemptions
            .images
            .iter()
            .any(|prefix| reference.is_from(prefix))
    }
}

impl Policy for PodSecurity {
    fn profile(&self) -> Option<&'static str> {
        Some(NAME)
    }

    fn evaluate(&self, request: &Request) -> Result<Outcome, PolicyError> {
        if self.exempts_request(request) {
            return Ok(Outcome::default());
        }
        let Some(workload) = request.workload()? else {
            return Ok(Outcome::default());
        };
        let runtime_class = workload.spec.runtime_class_name.as_deref();
        if runtime_class.is_some_and(|rc| self.exemptions.runtime_classes.iter().any(|e| e == rc))
            || (request.facts.operation == Operation::Update
                && pod_template_unchanged(request, workload))
        {
            return Ok(Outcome::default());
        }
        let pod = PodView {
            workload,
            containers: workload
                .containers()
                .filter(|c| !self.exempts_image(c.image))
                .collect(),
            version: self.version.minor(),
        };
        let violations = self
            .checks
            .iter()
            .filter_map(|check| {
                let finding = (check.run)(&pod)?;
                let path = match finding.paths.as_slice() {
                    [only] => only.clone(),
                    _ => workload.spec_path().clone(),
                };
                Some(
                    Violation::at(
                        check.id,
                        &path,
                        format!("{} ({})", finding.reason, finding.detail),
                    )
                    .for_containers(finding.containers),
                )
            })
            .collect();
        Ok(Outcome::with_violations(violations))
    }
}

/// An update that leaves the pod template alone cannot make it less secure; Pod Security
/// Admission lets such updates through so that labelling an old pod never fails.
fn pod_template_unchanged(request: &Request, workload: &Workload) -> bool {
    match request.old_workload() {
        Ok(Some(old)) => {
            old.spec == workload.spec && old.metadata.annotations == workload.metadata.annotations
        }
        _ => false,
    }
}

/// One check of the standards, in one level, from one version on.
#[derive(Debug)]
struct Check {
    /// The name Pod Security Admission gives the check.
    id: &'static str,
    level: Level,
    /// The first minor version the check is part of.
    since: u32,
    /// For a baseline check: the version from which a stricter restricted check takes its
    /// place in the restricted level.
    replaced_in_restricted_from: Option<u32>,
    run: fn(&PodView<'_>) -> Option<Finding>,
}

/// The checks the level and version apply, in the order of [`CHECKS`].
fn checks_for(level: Level, version: Version) -> Vec<&'static Check> {
    CHECKS
        .iter()
        .filter(|c| c.level <= level && c.since <= version.minor())
        .filter(|c| {
            level == Level::Baseline
                || c.replaced_in_restricted_from
                    .is_none_or(|from| version.minor() < from)
        })
        .collect()
}

/// The id, level and first version of every check, as `(id, level, v1.N)`.
pub fn check_table() -> impl Iterator<Item = (&'static str, Level, Version)> {
    CHECKS
        .iter()
        .map(|c| (c.id, c.level, Version::new(c.since)))
}

const CHECKS: &[Check] = &[
    baseline("hostNamespaces", 0, None, host_namespaces),
    baseline("privileged", 0, None, privileged),
    baseline("capabilities_baseline", 0, Some(22), capabilities_baseline),
    baseline("hostPathVolumes", 0, Some(0), host_path_volumes),
    baseline("hostPorts", 0, None, host_ports),
    baseline("appArmorProfile", 0, None, app_armor_profile),
    baseline("seLinuxOptions", 0, None, se_linux_options),
    baseline("procMount", 0, Some(35), proc_mount_baseline),
    baseline(
        "seccompProfile_baseline",
        0,
        Some(19),
        seccomp_profile_baseline,
    ),
    baseline("sysctls", 0, None, sysctls),
    baseline("windowsHostProcess", 0, None, windows_host_process),
    baseline(
        "hostProbesAndHostLifecycle",
        34,
        None,
        host_probes_and_lifecycle,
    ),
    restricted("restrictedVolumes", 0, restricted_volumes),
    restricted("runAsNonRoot", 0, run_as_non_root),
    restricted("allowPrivilegeEscalation", 8, allow_privilege_escalation),
    restricted("seccompProfile_restricted", 19, seccomp_profile_restricted),
    restricted("capabilities_restricted", 22, capabilities_restricted),
    restricted("runAsUser", 23, run_as_user),
    restricted("procMount_restricted", 35, proc_mount_restricted),
];

/// A baseline check from minor version `since`, replaced in the restricted level from
/// `replaced_in_restricted_from` by a stricter check.
const fn baseline(
    id: &'static str,
    since: u32,
    replaced_in_restricted_from: Option<u32>,
    run: fn(&PodView<'_>) -> Option<Finding>,
) -> Check {
    Check {
        id,
        level: Level::Baseline,
        since,
        replaced_in_restricted_from,
        run,
    }
}

/// A restricted check from minor version `since`.
const fn restricted(
    id: &'static str,
    since: u32,
    run: fn(&PodView<'_>) -> Option<Finding>,
) -> Check {
    Check {
        id,
        level: Level::Restricted,
        since,
        replaced_in_restricted_from: None,
        run,
    }
}

/// Windows pods are exempt from the Linux-only restricted checks from this version on.
const WINDOWS_EXEMPT_FROM: u32 = 25;
/// Pods in a user namespace (`hostUsers: false`) get relaxed checks from this version on.
const USER_NAMESPACE_RELAXED_FROM: u32 = 35;

/// The pod as the checks see it: containers run by exempt images are left out.
struct PodView<'a> {
    workload: &'a Workload,
    containers: Vec<ContainerRef<'a>>,
    version: u32,
}

impl<'a> PodView<'a> {
    fn pod_context(&self) -> Option<&'a PodSecurityContext> {
        self.workload.spec.security_context.as_ref()
    }

    fn pod_context_path(&self, field: &'static str) -> FieldPath {
        self.workload
            .spec_path()
            .field("securityContext")
            .field(field)
    }

    fn container_path(&self, container: &ContainerRef<'_>) -> FieldPath {
        self.workload
            .container_path(container.kind, container.index)
    }

    fn context_path(&self, container: &ContainerRef<'_>, field: &'static str) -> FieldPath {
        self.container_path(container)
            .field("securityContext")
            .field(field)
    }

    fn annotations(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.workload
            .metadata
            .annotations
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn annotation_path(&self, key: &str) -> FieldPath {
        self.workload
            .kind
            .metadata_path()
            .field("annotations")
            .key(key)
    }

    /// `spec.os.name: windows`, exempt from Linux-only restricted checks from v1.25.
    fn windows_exempt(&self) -> bool {
        self.version >= WINDOWS_EXEMPT_FROM
            && self
                .workload
                .spec
                .os
                .as_ref()
                .is_some_and(|os| os.name == "windows")
    }

    /// `hostUsers: false`: root in the pod is not root on the node, so from v1.35 the checks
    /// about running as root and unmasking /proc relax.
    fn user_namespace_relaxed(&self) -> bool {
        self.version >= USER_NAMESPACE_RELAXED_FROM && self.workload.spec.host_users == Some(false)
    }
}

/// What one check found: PSA's short reason and its detail, and where.
struct Finding {
    reason: &'static str,
    detail: String,
    paths: Vec<FieldPath>,
    /// The containers the detail names, so that a rule restating this check can defer to it.
    containers: Vec<String>,
}

impl Finding {
    fn new(reason: &'static str, detail: String, paths: Vec<FieldPath>) -> Self {
        Self {
            reason,
            detail,
            paths,
            containers: Vec::new(),
        }
    }

    fn naming(mut self, containers: &[&str]) -> Self {
        self.containers = containers.iter().map(|&c| c.to_owned()).collect();
        self
    }
}

/// The containers, and possibly the pod, that set a field badly.
#[derive(Default)]
struct Setters<'a> {
    pod: bool,
    containers: Vec<&'a str>,
    paths: Vec<FieldPath>,
}

impl<'a> Setters<'a> {
    fn pod(&mut self, path: FieldPath) {
        self.pod = true;
        self.paths.push(path);
    }

    fn container(&mut self, name: &'a str, path: FieldPath) {
        if !self.containers.contains(&name) {
            self.containers.push(name);
        }
        self.paths.push(path);
    }

    fn is_empty(&self) -> bool {
        !self.pod && self.containers.is_empty()
    }

    /// `reason (pod and containers "a" PREDICATE)`, or nothing when nobody set the field badly.
    fn finding(self, reason: &'static str, predicate: &str) -> Option<Finding> {
        if self.is_empty() {
            return None;
        }
        let detail = format!("{} {predicate}", self.phrase("and"));
        Some(Finding::new(reason, detail, self.paths).naming(&self.containers))
    }

    /// `pod`, `container "a"`, `pod and containers "a", "b"`, joined by `conjunction`.
    fn phrase(&self, conjunction: &str) -> String {
        let containers = (!self.containers.is_empty()).then(|| containers_phrase(&self.containers));
        match (self.pod, containers) {
            (true, Some(c)) => format!("pod {conjunction} {c}"),
            (true, None) => "pod".to_owned(),
            (false, Some(c)) => c,
            (false, None) => String::new(),
        }
    }
}

/// `container "a"` or `containers "a", "b"`.
fn containers_phrase(names: &[&str]) -> String {
    format!(
        "{} {}",
        plural(names.len(), "container", "containers"),
        join_quoted(names)
    )
}

fn plural<'s>(count: usize, one: &'s str, many: &'s str) -> &'s str {
    if count == 1 { one } else { many }
}

/// `"a", "b"`.
fn join_quoted<T: fmt::Display>(items: &[T]) -> String {
    let mut joined = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            joined.push_str(", ");
        }
        joined.push('"');
        joined.push_str(&item.to_string());
        joined.push('"');
    }
    joined
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

fn context<'a>(container: &ContainerRef<'a>) -> Option<&'a SecurityContext> {
    container.security_context
}

fn host_namespaces(pod: &PodView<'_>) -> Option<Finding> {
    let spec = &pod.workload.spec;
    let mut found = Vec::new();
    let mut paths = Vec::new();
    for (set, field) in [
        (spec.host_network, "hostNetwork"),
        (spec.host_pid, "hostPID"),
        (spec.host_ipc, "hostIPC"),
    ] {
        if set == Some(true) {
            found.push(format!("{field}=true"));
            paths.push(pod.workload.spec_path().field(field));
        }
    }
    if found.is_empty() {
        return None;
    }
    Some(Finding::new("host namespaces", found.join(", "), paths))
}

fn privileged(pod: &PodView<'_>) -> Option<Finding> {
    let mut setters = Setters::default();
    for c in &pod.containers {
        if context(c).and_then(|sc| sc.privileged) == Some(true) {
            setters.container(c.name, pod.context_path(c, "privileged"));
        }
    }
    setters.finding("privileged", "must not set securityContext.privileged=true")
}

/// The capabilities a container runtime grants by default, which baseline lets a container add.
const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn capabilities<'a>(container: &ContainerRef<'a>) -> Option<&'a Capabilities> {
    context(container).and_then(|sc| sc.capabilities.as_ref())
}

/// Containers that add capabilities outside `allowed`, and the capabilities they add.
fn adding_beyond<'a>(pod: &PodView<'a>, allowed: &[&str]) -> (Setters<'a>, Vec<&'a str>) {
    let mut setters = Setters::default();
    let mut added = Vec::new();
    for c in &pod.containers {
        let Some(add) = capabilities(c).and_then(|caps| caps.add.as_deref()) else {
            continue;
        };
        for (i, capability) in add.iter().enumerate() {
            if !allowed.contains(&capability.as_str()) {
                setters.container(
                    c.name,
                    pod.context_path(c, "capabilities").field("add").index(i),
                );
                push_unique(&mut added, capability.as_str());
            }
        }
    }
    (setters, added)
}

fn capabilities_baseline(pod: &PodView<'_>) -> Option<Finding> {
    let (setters, added) = adding_beyond(pod, BASELINE_CAPABILITIES);
    setters.finding(
        "non-default capabilities",
        &format!(
            "must not include {} in securityContext.capabilities.add",
            join_quoted(&added)
        ),
    )
}

fn host_path_volumes(pod: &PodView<'_>) -> Option<Finding> {
    let mut names = Vec::new();
    let mut paths = Vec::new();
    for (i, volume) in pod.workload.spec.volumes.iter().flatten().enumerate() {
        if volume.host_path.is_some() {
            names.push(volume.name.as_str());
            paths.push(
                pod.workload
                    .spec_path()
                    .field("volumes")
                    .index(i)
                    .field("hostPath"),
            );
        }
    }
    if names.is_empty() {
        return None;
    }
    Some(Finding::new(
        "hostPath volumes",
        format!(
            "{} {}",
            plural(names.len(), "volume", "volumes"),
            join_quoted(&names)
        ),
        paths,
    ))
}

fn host_ports(pod: &PodView<'_>) -> Option<Finding> {
    let mut setters = Setters::default();
    let mut ports = Vec::new();
    for c in &pod.containers {
        for (i, port) in c.ports.iter().enumerate() {
            if let Some(host_port) = port.host_port.filter(|p| *p != 0) {
                setters.container(
                    c.name,
                    pod.container_path(c)
                        .field("ports")
                        .index(i)
                        .field("hostPort"),
                );
                push_unique(&mut ports, host_port);
            }
        }
    }
    if setters.is_empty() {
        return None;
    }
    let many = setters.containers.len() > 1;
    let ports = ports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    Some(Finding::new(
        "hostPort",
        format!(
            "{} {} {} {ports}",
            setters.phrase("and"),
            if many { "use" } else { "uses" },
            plural(setters.paths.len(), "hostPort", "hostPorts"),
        ),
        setters.paths,
    ))
}

const APP_ARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

fn app_armor_profile(pod: &PodView<'_>) -> Option<Finding> {
    let mut forbidden = Vec::new();
    let mut paths = Vec::new();
    for (key, value) in pod.annotations() {
        if key.starts_with(APP_ARMOR_ANNOTATION_PREFIX)
            && !(value.is_empty() || value == "runtime/default" || value.starts_with("localhost/"))
        {
            forbidden.push(format!("{key}={value:?}"));
            paths.push(pod.annotation_path(key));
        }
    }
    let allowed_type = |t: &str| t == "RuntimeDefault" || t == "Localhost";
    if let Some(profile) = pod
        .pod_context()
        .and_then(|sc| sc.app_armor_profile.as_ref())
        .filter(|p| !allowed_type(&p.type_))
    {
        forbidden.push(format!(
            "pod securityContext.appArmorProfile.type={:?}",
            profile.type_
        ));
        paths.push(pod.pod_context_path("appArmorProfile").field("type"));
    }
    for c in &pod.containers {
        if let Some(profile) = context(c)
            .and_then(|sc| sc.app_armor_profile.as_ref())
            .filter(|p| !allowed_type(&p.type_))
        {
            forbidden.push(format!(
                "container {:?} securityContext.appArmorProfile.type={:?}",
                c.name, profile.type_
            ));
            paths.push(pod.context_path(c, "appArmorProfile").field("type"));
        }
    }
    if forbidden.is_empty() {
        return None;
    }
    Some(Finding::new(
        if forbidden.len() == 1 {
            "forbidden AppArmor profile"
        } else {
            "forbidden AppArmor profiles"
        },
        forbidden.join(", "),
        paths,
    ))
}

fn se_linux_options(pod: &PodView<'_>) -> Option<Finding> {
    let allowed_types: &[&str] = if pod.version >= 31 {
        &[
            "",
            "container_t",
            "container_init_t",
            "container_kvm_t",
            "container_engine_t",
        ]
    } else {
        &["", "container_t", "container_init_t", "container_kvm_t"]
    };
    let mut setters = Setters::default();
    let mut forbidden = Vec::new();
    let inspect = |options: &initguard_core::k8s_openapi::api::core::v1::SELinuxOptions,
                   path: FieldPath,
                   forbidden: &mut Vec<String>|
     -> Vec<FieldPath> {
        let mut bad = Vec::new();
        if let Some(t) = options
            .type_
            .as_deref()
            .filter(|t| !allowed_types.contains(t))
        {
            push_unique(forbidden, format!("type {t:?}"));
            bad.push(path.field("type"));
        }
        if let Some(user) = options.user.as_deref().filter(|u| !u.is_empty()) {
            push_unique(forbidden, format!("user {user:?}"));
            bad.push(path.field("user"));
        }
        if let Some(role) = options.role.as_deref().filter(|r| !r.is_empty()) {
            push_unique(forbidden, format!("role {role:?}"));
            bad.push(path.field("role"));
        }
        bad
    };
    if let Some(options) = pod
        .pod_context()
        .and_then(|sc| sc.se_linux_options.as_ref())
    {
        for path in inspect(
            options,
            pod.pod_context_path("seLinuxOptions"),
            &mut forbidden,
        ) {
            setters.pod(path);
        }
    }
    for c in &pod.containers {
        if let Some(options) = context(c).and_then(|sc| sc.se_linux_options.as_ref()) {
            for path in inspect(
                options,
                pod.context_path(c, "seLinuxOptions"),
                &mut forbidden,
            ) {
                setters.container(c.name, path);
            }
        }
    }
    setters.finding(
        "seLinuxOptions",
        &format!(
            "set forbidden securityContext.seLinuxOptions: {}",
            forbidden.join("; ")
        ),
    )
}

/// Containers that unmask /proc.
fn proc_mount(pod: &PodView<'_>) -> Option<Finding> {
    let mut setters = Setters::default();
    let mut values = Vec::new();
    for c in &pod.containers {
        if let Some(mount) = context(c)
            .and_then(|sc| sc.proc_mount.as_deref())
            .filter(|m| *m != "Default")
        {
            setters.container(c.name, pod.context_path(c, "procMount"));
            push_unique(&mut values, mount);
        }
    }
    setters.finding(
        "procMount",
        &format!(
            "must not set securityContext.procMount to {}",
            join_quoted(&values)
        ),
    )
}

fn proc_mount_baseline(pod: &PodView<'_>) -> Option<Finding> {
    if pod.user_namespace_relaxed() {
        return None;
    }
    proc_mount(pod)
}

/// Restricted keeps /proc masked even in a user namespace.
fn proc_mount_restricted(pod: &PodView<'_>) -> Option<Finding> {
    proc_mount(pod)
}

/// The seccomp field's versions: before v1.19, profiles were set by annotation.
const SECCOMP_FIELDS_FROM: u32 = 19;
const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_ANNOTATION_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

fn seccomp_type_allowed(profile_type: &str) -> bool {
    profile_type == "RuntimeDefault" || profile_type == "Localhost"
}

fn seccomp_profile_baseline(pod: &PodView<'_>) -> Option<Finding> {
    if pod.version < SECCOMP_FIELDS_FROM {
        let mut forbidden = Vec::new();
        let mut paths = Vec::new();
        for (key, value) in pod.annotations() {
            if (key == SECCOMP_POD_ANNOTATION
                || key.starts_with(SECCOMP_CONTAINER_ANNOTATION_PREFIX))
                && value == "unconfined"
            {
                forbidden.push(format!("{key}={value:?}"));
                paths.push(pod.annotation_path(key));
            }
        }
        if forbidden.is_empty() {
            return None;
        }
        return Some(Finding::new(
            "seccompProfile",
            format!("forbidden annotations {}", forbidden.join(", ")),
            paths,
        ));
    }
    let mut setters = Setters::default();
    let mut types = Vec::new();
    if let Some(profile) = pod
        .pod_context()
        .and_then(|sc| sc.seccomp_profile.as_ref())
        .filter(|p| !seccomp_type_allowed(&p.type_))
    {
        setters.pod(pod.pod_context_path("seccompProfile").field("type"));
        push_unique(&mut types, profile.type_.as_str());
    }
    for c in &pod.containers {
        if let Some(profile) = context(c)
            .and_then(|sc| sc.seccomp_profile.as_ref())
            .filter(|p| !seccomp_type_allowed(&p.type_))
        {
            setters.container(c.name, pod.context_path(c, "seccompProfile").field("type"));
            push_unique(&mut types, profile.type_.as_str());
        }
    }
    setters.finding(
        "seccompProfile",
        &format!(
            "must not set securityContext.seccompProfile.type to {}",
            join_quoted(&types)
        ),
    )
}

/// The sysctls baseline allows, by the version that added them: namespaced, and unable to
/// touch the node or other pods.
const SAFE_SYSCTLS: &[(&str, u32)] = &[
    ("kernel.shm_rmid_forced", 0),
    ("net.ipv4.ip_local_port_range", 0),
    ("net.ipv4.ip_unprivileged_port_start", 0),
    ("net.ipv4.tcp_syncookies", 0),
    ("net.ipv4.ping_group_range", 0),
    ("net.ipv4.ip_local_reserved_ports", 27),
    ("net.ipv4.tcp_keepalive_time", 29),
    ("net.ipv4.tcp_fin_timeout", 29),
    ("net.ipv4.tcp_keepalive_intvl", 29),
    ("net.ipv4.tcp_keepalive_probes", 29),
    ("net.ipv4.tcp_rmem", 32),
    ("net.ipv4.tcp_wmem", 32),
    // kubernetes/kubernetes #138389.
    ("net.ipv4.tcp_slow_start_after_idle", 37),
    ("net.ipv4.tcp_notsent_lowat", 37),
];

fn sysctls(pod: &PodView<'_>) -> Option<Finding> {
    let sysctls = pod.pod_context().and_then(|sc| sc.sysctls.as_deref())?;
    let mut forbidden = Vec::new();
    let mut paths = Vec::new();
    for (i, sysctl) in sysctls.iter().enumerate() {
        let safe = SAFE_SYSCTLS
            .iter()
            .any(|(name, since)| *name == sysctl.name && *since <= pod.version);
        if !safe {
            push_unique(&mut forbidden, sysctl.name.as_str());
            paths.push(pod.pod_context_path("sysctls").index(i).field("name"));
        }
    }
    if forbidden.is_empty() {
        return None;
    }
    Some(Finding::new(
        "forbidden sysctls",
        forbidden.join(", "),
        paths,
    ))
}

fn windows_host_process(pod: &PodView<'_>) -> Option<Finding> {
    let mut setters = Setters::default();
    let host_process = |options: Option<
        &initguard_core::k8s_openapi::api::core::v1::WindowsSecurityContextOptions,
    >| options.and_then(|o| o.host_process) == Some(true);
    if host_process(pod.pod_context().and_then(|sc| sc.windows_options.as_ref())) {
        setters.pod(pod.pod_context_path("windowsOptions").field("hostProcess"));
    }
    for c in &pod.containers {
        if host_process(context(c).and_then(|sc| sc.windows_options.as_ref())) {
            setters.container(
                c.name,
                pod.context_path(c, "windowsOptions").field("hostProcess"),
            );
        }
    }
    setters.finding(
        "hostProcess",
        "must not set securityContext.windowsOptions.hostProcess=true",
    )
}

/// The handlers of a container that can name a host: its probes and lifecycle hooks, with
/// the fields that hold them.
fn host_handlers<'a>(
    container: &ContainerRef<'a>,
) -> impl Iterator<
    Item = (
        &'static str,
        Option<&'a HTTPGetAction>,
        Option<&'a TCPSocketAction>,
    ),
> {
    let probe = |p: Option<&'a Probe>| p.map(|p| (p.http_get.as_ref(), p.tcp_socket.as_ref()));
    let hook =
        |h: Option<&'a LifecycleHandler>| h.map(|h| (h.http_get.as_ref(), h.tcp_socket.as_ref()));
    let lifecycle = container.lifecycle;
    [
        ("livenessProbe", probe(container.probes[0])),
        ("readinessProbe", probe(container.probes[1])),
        ("startupProbe", probe(container.probes[2])),
        (
            "lifecycle.postStart",
            hook(lifecycle.and_then(|l| l.post_start.as_ref())),
        ),
        (
            "lifecycle.preStop",
            hook(lifecycle.and_then(|l| l.pre_stop.as_ref())),
        ),
    ]
    .into_iter()
    .filter_map(|(field, handler)| handler.map(|(http, tcp)| (field, http, tcp)))
}

fn host_probes_and_lifecycle(pod: &PodView<'_>) -> Option<Finding> {
    let mut setters = Setters::default();
    let mut hosts = Vec::new();
    for c in &pod.containers {
        for (field, http, tcp) in host_handlers(c) {
            let mut handler_path = pod.container_path(c);
            for part in field.split('.') {
                handler_path = handler_path.field(part);
            }
            let http_host = http.and_then(|h| h.host.as_deref()).map(|h| (h, "httpGet"));
            let tcp_host = tcp
                .and_then(|t| t.host.as_deref())
                .map(|h| (h, "tcpSocket"));
            for (host, action) in http_host.into_iter().chain(tcp_host) {
                if !host.is_empty() {
                    setters.container(c.name, handler_path.field(action).field("host"));
                    push_unique(&mut hosts, host);
                }
            }
        }
    }
    if setters.is_empty() {
        return None;
    }
    Some(Finding::new(
        "probe or lifecycle host",
        format!(
            "{} {} probe or lifecycle host {}",
            setters.phrase("and"),
            if setters.containers.len() == 1 {
                "uses"
            } else {
                "use"
            },
            join_quoted(&hosts)
        ),
        setters.paths,
    ))
}

/// The volume sources restricted allows: ones that cannot reach the node or outside storage
/// directly.
const RESTRICTED_VOLUME_TYPES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// The source a volume uses, as the API names it; a volume with none is an emptyDir, as the
/// apiserver defaults it.
fn volume_type(volume: &Volume) -> &'static str {
    let sources: [(bool, &'static str); 30] = [
        (
            volume.aws_elastic_block_store.is_some(),
            "awsElasticBlockStore",
        ),
        (volume.azure_disk.is_some(), "azureDisk"),
        (volume.azure_file.is_some(), "azureFile"),
        (volume.cephfs.is_some(), "cephfs"),
        (volume.cinder.is_some(), "cinder"),
        (volume.config_map.is_some(), "configMap"),
        (volume.csi.is_some(), "csi"),
        (volume.downward_api.is_some(), "downwardAPI"),
        (volume.empty_dir.is_some(), "emptyDir"),
        (volume.ephemeral.is_some(), "ephemeral"),
        (volume.fc.is_some(), "fc"),
        (volume.flex_volume.is_some(), "flexVolume"),
        (volume.flocker.is_some(), "flocker"),
        (volume.gce_persistent_disk.is_some(), "gcePersistentDisk"),
        (volume.git_repo.is_some(), "gitRepo"),
        (volume.glusterfs.is_some(), "glusterfs"),
        (volume.host_path.is_some(), "hostPath"),
        (volume.image.is_some(), "image"),
        (volume.iscsi.is_some(), "iscsi"),
        (volume.nfs.is_some(), "nfs"),
        (
            volume.persistent_volume_claim.is_some(),
            "persistentVolumeClaim",
        ),
        (
            volume.photon_persistent_disk.is_some(),
            "photonPersistentDisk",
        ),
        (volume.portworx_volume.is_some(), "portworxVolume"),
        (volume.projected.is_some(), "projected"),
        (volume.quobyte.is_some(), "quobyte"),
        (volume.rbd.is_some(), "rbd"),
        (volume.scale_io.is_some(), "scaleIO"),
        (volume.secret.is_some(), "secret"),
        (volume.storageos.is_some(), "storageos"),
        (volume.vsphere_volume.is_some(), "vsphereVolume"),
    ];
    sources
        .into_iter()
        .find_map(|(set, name)| set.then_some(name))
        .unwrap_or("emptyDir")
}

fn restricted_volumes(pod: &PodView<'_>) -> Option<Finding> {
    let mut names = Vec::new();
    let mut types = Vec::new();
    let mut paths = Vec::new();
    for (i, volume) in pod.workload.spec.volumes.iter().flatten().enumerate() {
        let source = volume_type(volume);
        if !RESTRICTED_VOLUME_TYPES.contains(&source) {
            names.push(volume.name.as_str());
            push_unique(&mut types, source);
            paths.push(
                pod.workload
                    .spec_path()
                    .field("volumes")
                    .index(i)
                    .field(source),
            );
        }
    }
    if names.is_empty() {
        return None;
    }
    let many = names.len() > 1;
    Some(Finding::new(
        "restricted volume types",
        format!(
            "{} {} {} restricted volume {} {}",
            plural(names.len(), "volume", "volumes"),
            join_quoted(&names),
            if many { "use" } else { "uses" },
            plural(types.len(), "type", "types"),
            join_quoted(&types)
        ),
        paths,
    ))
}

/// Joins the parts of a finding that has several kinds of offenders.
fn joined_detail(parts: &[Option<String>]) -> String {
    parts
        .iter()
        .flatten()
        .cloned()
        .collect::<Vec<_>>()
        .join("; ")
}

/// A field the pod may set for all its containers or each container for itself: `explicit`
/// set it badly, `implicit` leave it to a pod that does not set it well either.
fn pod_or_containers(
    reason: &'static str,
    explicit: Setters<'_>,
    explicit_must: &str,
    implicit: Setters<'_>,
    implicit_must: &str,
) -> Option<Finding> {
    if explicit.is_empty() && implicit.is_empty() {
        return None;
    }
    let detail = joined_detail(&[
        (!explicit.is_empty()).then(|| format!("{} {explicit_must}", explicit.phrase("and"))),
        (!implicit.is_empty())
            .then(|| format!("pod or {} {implicit_must}", implicit.phrase("and"))),
    ]);
    let mut containers = explicit.containers;
    containers.extend(implicit.containers);
    let mut paths = explicit.paths;
    // Every implicit offender is fixed at one place: the pod's own setting.
    paths.extend(implicit.paths.into_iter().next());
    Some(Finding::new(reason, detail, paths).naming(&containers))
}

fn run_as_non_root(pod: &PodView<'_>) -> Option<Finding> {
    if pod.user_namespace_relaxed() {
        return None;
    }
    let pod_setting = pod.pod_context().and_then(|sc| sc.run_as_non_root);
    let mut explicit = Setters::default();
    let mut implicit = Setters::default();
    if pod_setting == Some(false) {
        explicit.pod(pod.pod_context_path("runAsNonRoot"));
    }
    for c in &pod.containers {
        match context(c).and_then(|sc| sc.run_as_non_root) {
            Some(false) => explicit.container(c.name, pod.context_path(c, "runAsNonRoot")),
            None if pod_setting != Some(true) => {
                implicit.container(c.name, pod.pod_context_path("runAsNonRoot"));
            }
            _ => {}
        }
    }
    pod_or_containers(
        "runAsNonRoot != true",
        explicit,
        "must not set securityContext.runAsNonRoot=false",
        implicit,
        "must set securityContext.runAsNonRoot=true",
    )
}

fn allow_privilege_escalation(pod: &PodView<'_>) -> Option<Finding> {
    if pod.windows_exempt() {
        return None;
    }
    let mut setters = Setters::default();
    for c in &pod.containers {
        if context(c).and_then(|sc| sc.allow_privilege_escalation) != Some(false) {
            setters.container(c.name, pod.context_path(c, "allowPrivilegeEscalation"));
        }
    }
    setters.finding(
        "allowPrivilegeEscalation != false",
        "must set securityContext.allowPrivilegeEscalation=false",
    )
}

fn seccomp_profile_restricted(pod: &PodView<'_>) -> Option<Finding> {
    if pod.windows_exempt() {
        return None;
    }
    let pod_type = pod
        .pod_context()
        .and_then(|sc| sc.seccomp_profile.as_ref())
        .map(|p| p.type_.as_str());
    let pod_valid = pod_type.is_some_and(seccomp_type_allowed);
    let mut explicit = Setters::default();
    let mut implicit = Setters::default();
    let mut bad_types = Vec::new();
    if let Some(t) = pod_type.filter(|t| !seccomp_type_allowed(t)) {
        explicit.pod(pod.pod_context_path("seccompProfile").field("type"));
        push_unique(&mut bad_types, t);
    }
    for c in &pod.containers {
        match context(c).and_then(|sc| sc.seccomp_profile.as_ref()) {
            Some(p) if seccomp_type_allowed(&p.type_) => {}
            Some(p) => {
                explicit.container(c.name, pod.context_path(c, "seccompProfile").field("type"));
                push_unique(&mut bad_types, p.type_.as_str());
            }
            None if !pod_valid => {
                implicit.container(c.name, pod.pod_context_path("seccompProfile").field("type"));
            }
            None => {}
        }
    }
    pod_or_containers(
        "seccompProfile",
        explicit,
        &format!(
            "must not set securityContext.seccompProfile.type to {}",
            join_quoted(&bad_types)
        ),
        implicit,
        "must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
    )
}

fn capabilities_restricted(pod: &PodView<'_>) -> Option<Finding> {
    if pod.windows_exempt() {
        return None;
    }
    let mut missing_drop = Setters::default();
    for c in &pod.containers {
        let drops_all = capabilities(c)
            .and_then(|caps| caps.drop.as_deref())
            .is_some_and(|drop| drop.iter().any(|d| d == "ALL"));
        if !drops_all {
            missing_drop.container(c.name, pod.context_path(c, "capabilities").field("drop"));
        }
    }
    let (adding, added) = adding_beyond(pod, &["NET_BIND_SERVICE"]);
    if missing_drop.is_empty() && adding.is_empty() {
        return None;
    }
    let detail = joined_detail(&[
        (!missing_drop.is_empty()).then(|| {
            format!(
                "{} must set securityContext.capabilities.drop=[\"ALL\"]",
                missing_drop.phrase("and")
            )
        }),
        (!adding.is_empty()).then(|| {
            format!(
                "{} must not include {} in securityContext.capabilities.add",
                adding.phrase("and"),
                join_quoted(&added)
            )
        }),
    ]);
    let mut containers = missing_drop.containers;
    containers.extend(adding.containers);
    let mut paths = missing_drop.paths;
    paths.extend(adding.paths);
    Some(Finding::new("unrestricted capabilities", detail, paths).naming(&containers))
}

fn run_as_user(pod: &PodView<'_>) -> Option<Finding> {
    if pod.user_namespace_relaxed() {
        return None;
    }
    let mut setters = Setters::default();
    if pod.pod_context().and_then(|sc| sc.run_as_user) == Some(0) {
        setters.pod(pod.pod_context_path("runAsUser"));
    }
    for c in &pod.containers {
        if context(c).and_then(|sc| sc.run_as_user) == Some(0) {
            setters.container(c.name, pod.context_path(c, "runAsUser"));
        }
    }
    setters.finding("runAsUser=0", "must not set runAsUser=0")
}
