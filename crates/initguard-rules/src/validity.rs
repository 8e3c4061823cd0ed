//! `init-container-validity`: what kube-apiserver rejects in init containers, with its own
//! field paths and messages, so CI catches it before a deploy does.

use std::collections::{BTreeMap, HashSet};

use initguard_core::k8s_openapi::api::core::v1::{
    Container, EnvVarSource, ExecAction, GRPCAction, HTTPGetAction, LifecycleHandler, Probe,
    SleepAction, TCPSocketAction, VolumeMount,
};
use initguard_core::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use initguard_core::{
    ContainerKind, FieldPath, Outcome, Policy, PolicyError, Request, Violation, WorkloadKind,
};

use initguard_core::release::Release;
use serde::Deserialize;

use crate::quantity::{Quantity, Written};
use crate::settings::SettingsError;
use crate::text::{
    config_map_key_errors, dns1123_label_errors, dns1123_subdomain_errors, env_name_errors,
    http_header_name_errors, port_name_errors, qualified_name_errors, relaxed_env_name_errors,
};

pub const NAME: &str = "init-container-validity";

/// The rules of this policy, documented by example (`initguard rules`).
pub const RULES: &[crate::RuleDoc] = &[
    rule!(
        "IG-V001",
        "init container names are present, DNS-1123 labels of at most 63 characters",
        "all; DNS-1123 wording from v1.20; StatefulSet templates from v1.34",
        ""
    ),
    rule!(
        "IG-V002",
        "container names are unique across app, init and ephemeral containers",
        "all; StatefulSet templates from v1.34",
        ""
    ),
    rule!(
        "IG-V003",
        "init containers name an image (in a Pod without surrounding whitespace), with known pull and termination-message policies",
        "all; StatefulSet templates from v1.34",
        ""
    ),
    rule!(
        "IG-V004",
        "probes and lifecycle hooks only on sidecars (restartPolicy: Always), and well-formed there: one handler, valid ports, schemes, headers, sleeps and numbers",
        "all; sidecars from v1.29 (Forbidden wording from v1.28), sleep hooks from v1.30, zero sleep from v1.33",
        ""
    ),
    rule!(
        "IG-V005",
        "an init container's restartPolicy is Always or unset",
        "v1.29+",
        ""
    ),
    rule!(
        "IG-V006",
        "ports are in range, with known protocols, valid unique names and no host port twice",
        "all; StatefulSet templates from v1.34",
        ""
    ),
    rule!(
        "IG-V007",
        "resource names and quantities are valid (whole extended resources and hugepages), requests within limits, resize policies known",
        "all; resize policies from v1.33",
        ""
    ),
    rule!(
        "IG-V008",
        "volume mounts name a volume of the pod, use distinct mount paths and relative sub-paths",
        "all; StatefulSet claim templates from v1.34",
        ""
    ),
    rule!(
        "IG-V009",
        "env and envFrom names and prefixes are valid, each variable takes its value from one source",
        "all; relaxed names from v1.32",
        ""
    ),
];

pub const NAME_FORMAT: &str = "IG-V001";
pub const NAME_UNIQUE: &str = "IG-V002";
pub const IMAGE_REQUIRED: &str = "IG-V003";
pub const PROBES_AND_LIFECYCLE: &str = "IG-V004";
pub const RESTART_POLICY: &str = "IG-V005";
pub const PORTS: &str = "IG-V006";
pub const RESOURCES: &str = "IG-V007";
pub const VOLUME_MOUNTS: &str = "IG-V008";
pub const ENV_NAMES: &str = "IG-V009";

const SIDECAR_ONLY: &str =
    "Forbidden: may not be set for init containers without restartPolicy=Always";

/// The first release whose apiserver validates a StatefulSet's pod template:
/// kubernetes/kubernetes #131790 (`ValidatePodTemplateSpecForStatefulSet`); before it, only
/// the template's labels and annotations were.
const STATEFULSET_TEMPLATES_VALIDATED: Release = Release::new(34);

/// Settings of `init-container-validity`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ValiditySettings {
    /// The apiserver release whose verdict to give: `v1.N`, or `latest` (the release checked
    /// against).
    pub kubernetes_version: String,
}

impl Default for ValiditySettings {
    fn default() -> Self {
        Self {
            kubernetes_version: "latest".to_owned(),
        }
    }
}

#[derive(Debug, Default)]
pub struct InitContainerValidity {
    release: Release,
}

impl InitContainerValidity {
    /// `latest` is what `latest` in the settings means: the release checked against.
    pub fn from_settings(
        settings: &serde_json::Value,
        latest: Release,
    ) -> Result<Self, SettingsError> {
        let settings: ValiditySettings = crate::settings::parse(settings)?;
        let release = Release::parse_relative(&settings.kubernetes_version, latest)
            .map_err(|e| SettingsError::new(format!("kubernetesVersion: {e}")))?;
        Ok(Self { release })
    }
}

impl Policy for InitContainerValidity {
    fn evaluate(&self, request: &Request) -> Result<Outcome, PolicyError> {
        let Some(workload) = request.workload()? else {
            return Ok(Outcome::default());
        };
        if workload.kind == WorkloadKind::StatefulSet
            && self.release < STATEFULSET_TEMPLATES_VALIDATED
        {
            return Ok(Outcome::default());
        }
        let mut volumes: HashSet<&str> = workload
            .spec
            .volumes
            .iter()
            .flatten()
            .map(|v| v.name.as_str())
            .collect();
        // kubernetes/kubernetes `pkg/apis/apps/validation/validation.go`
        // `ValidatePodTemplateSpecForStatefulSet` validates a StatefulSet's template with a
        // volume added for each of its `volumeClaimTemplates`, as the controller adds them to
        // every pod it creates.
        if workload.kind == WorkloadKind::StatefulSet {
            volumes.extend(claim_template_names(request));
        }
        let check = Check {
            release: self.release,
            // `validateContainersOnlyForPod`: the image whitespace check runs for Pods, not for
            // pod templates.
            pod: workload.kind == WorkloadKind::Pod,
            // `SetDefaults_PodSpec`: 30 seconds when unset.
            grace_period: workload.spec.termination_grace_period_seconds.unwrap_or(30),
            // `defaultHostNetworkPorts`: with the host's network, an unset host port is the
            // container port, for init containers too.
            host_network: workload.spec.host_network == Some(true),
            volumes,
            image_volumes: workload
                .spec
                .volumes
                .iter()
                .flatten()
                .filter(|v| v.image.is_some())
                .map(|v| v.name.as_str())
                .collect(),
        };
        let mut found = Vec::new();
        // `validateInitContainers`: names must be unique among regular and init containers.
        let mut names: HashSet<&str> = workload
            .app_containers()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        for (index, container) in workload.init_containers().iter().enumerate() {
            let path = workload.container_path(ContainerKind::Init, index);
            check.container(container, &path, &mut found);
            if names.contains(container.name.as_str()) {
                found.push(Violation::at(
                    NAME_UNIQUE,
                    &path.field("name"),
                    format!("Duplicate value: {:?}", container.name),
                ));
            } else if !container.name.is_empty() {
                names.insert(&container.name);
            }
            check.host_port_conflicts(
                container,
                &workload.container_path(ContainerKind::Init, 0),
                &mut found,
            );
            check.probes_and_lifecycle(container, &path, &mut found);
        }
        // `validateEphemeralContainers`: unique across every kind of container.
        let mut all_names: HashSet<&str> = workload
            .app_containers()
            .iter()
            .chain(workload.init_containers())
            .map(|c| c.name.as_str())
            .collect();
        for (index, container) in workload.ephemeral_containers().iter().enumerate() {
            if !all_names.insert(&container.name) {
                found.push(Violation::at(
                    NAME_UNIQUE,
                    &workload
                        .container_path(ContainerKind::Ephemeral, index)
                        .field("name"),
                    format!("Duplicate value: {:?}", container.name),
                ));
            }
        }
        Ok(Outcome::with_violations(found))
    }
}

/// What one review's init containers are checked against.
struct Check<'a> {
    release: Release,
    pod: bool,
    grace_period: i64,
    host_network: bool,
    volumes: HashSet<&'a str>,
    /// The volumes whose source is an OCI image, which take no sub-paths.
    image_volumes: HashSet<&'a str>,
}

/// The first release that serves sidecars (`restartPolicy: Always` on init containers):
/// the `SidecarContainers` gate is beta, on by default, from v1.29; at v1.28 (alpha, off) the
/// field is dropped before validation.
const SIDECARS: Release = Release::new(29);
/// From v1.28 probes and lifecycle of init containers are `Forbidden` with the sidecar
/// wording; before, `Invalid` ("must not be set for init containers").
const SIDECAR_WORDING: Release = Release::new(28);
/// `PodLifecycleSleepAction`: beta, on by default, from v1.30; dropped before.
const SLEEP_ACTION: Release = Release::new(30);
/// `PodLifecycleSleepActionAllowZero`: beta, on by default, from v1.33.
const SLEEP_ZERO: Release = Release::new(33);
/// `RelaxedEnvironmentVariableValidation`: beta, on by default, from v1.32.
const RELAXED_ENV_NAMES: Release = Release::new(32);
/// `InPlacePodVerticalScaling`: beta, on by default, from v1.33; before, `resizePolicy` is
/// dropped, and from then on init containers may have it (`AllowSidecarResizePolicy`).
const IN_PLACE_RESIZE: Release = Release::new(33);
/// `RecursiveReadOnlyMounts`: beta, on by default, from v1.31; dropped before.
const RECURSIVE_READ_ONLY: Release = Release::new(31);

impl Check<'_> {
    /// `validateContainerCommon`, in its order, for the fields this rule covers.
    fn container(&self, container: &Container, path: &FieldPath, found: &mut Vec<Violation>) {
        let name_path = path.field("name");
        if container.name.is_empty() {
            found.push(Violation::at(NAME_FORMAT, &name_path, "Required value"));
        } else {
            for message in dns1123_label_errors(&container.name, self.release) {
                found.push(Violation::at(
                    NAME_FORMAT,
                    &name_path,
                    format!("Invalid value: {:?}: {message}", container.name),
                ));
            }
        }
        self.image(container, path, found);
        check_termination_message_policy(container, path, found);
        check_ports(container, path, found);
        self.env(container, path, found);
        self.env_from(container, path, found);
        self.volume_mounts(container, path, found);
        check_pull_policy(container, path, found);
        check_resources(container, path, found);
        if self.release >= IN_PLACE_RESIZE {
            check_resize_policy(container, path, found);
        }
        if self.release >= SIDECARS {
            check_restart_policy(container, path, found);
        }
    }

    fn image(&self, container: &Container, path: &FieldPath, found: &mut Vec<Violation>) {
        let path = || path.field("image");
        match container.image.as_deref() {
            None | Some("") => {
                found.push(Violation::at(IMAGE_REQUIRED, &path(), "Required value"));
            }
            Some(image) if self.pod && image.trim() != image => found.push(Violation::at(
                IMAGE_REQUIRED,
                &path(),
                format!("Invalid value: {image:?}: must not have leading or trailing whitespace"),
            )),
            Some(_) => {}
        }
    }

    /// `ValidateEnv`: relaxed names (printable ASCII but `=`) from v1.32, C-like names before;
    /// then where the value comes from (`validateEnvVarValueFrom`).
    fn env(&self, container: &Container, path: &FieldPath, found: &mut Vec<Violation>) {
        for (index, var) in container.env.iter().flatten().enumerate() {
            let path = path.field("env").index(index);
            if var.name.is_empty() {
                found.push(Violation::at(
                    ENV_NAMES,
                    &path.field("name"),
                    "Required value",
                ));
            } else {
                self.env_name(&var.name, &path.field("name"), found);
            }
            if let Some(source) = &var.value_from {
                value_from(
                    source,
                    var.value.as_deref(),
                    &path.field("valueFrom"),
                    found,
                );
            }
        }
    }

    fn env_name(&self, name: &str, path: &FieldPath, found: &mut Vec<Violation>) {
        let messages = if self.release >= RELAXED_ENV_NAMES {
            relaxed_env_name_errors(name)
        } else {
            env_name_errors(name)
        };
        for message in messages {
            found.push(Violation::at(
                ENV_NAMES,
                path,
                format!("Invalid value: {name:?}: {message}"),
            ));
        }
    }

    /// `ValidateEnvFrom`: the prefix is an env var name, and exactly one of a ConfigMap or a
    /// Secret is named (as a DNS subdomain that may end in `-`).
    fn env_from(&self, container: &Container, path: &FieldPath, found: &mut Vec<Violation>) {
        let list = path.field("envFrom");
        for (index, source) in container.env_from.iter().flatten().enumerate() {
            let path = list.index(index);
            if let Some(prefix) = source.prefix.as_deref().filter(|p| !p.is_empty()) {
                self.env_name(prefix, &path.field("prefix"), found);
            }
            let refs = [
                (
                    "configMapRef",
                    source.config_map_ref.as_ref().map(|r| r.name.as_str()),
                ),
                (
                    "secretRef",
                    source.secret_ref.as_ref().map(|r| r.name.as_str()),
                ),
            ];
            let mut sources = 0;
            for (field, name) in refs {
                let Some(name) = name else { continue };
                sources += 1;
                let path = path.field(field).field("name");
                if name.is_empty() {
                    found.push(Violation::at(ENV_NAMES, &path, "Required value"));
                    continue;
                }
                // `NameIsDNSSubdomain(name, prefix: true)` masks one trailing dash.
                let masked = name
                    .strip_suffix('-')
                    .map_or_else(|| name.to_owned(), |n| format!("{n}a"));
                for message in dns1123_subdomain_errors(&masked) {
                    found.push(Violation::at(
                        ENV_NAMES,
                        &path,
                        format!("Invalid value: {name:?}: {message}"),
                    ));
                }
            }
            match sources {
                0 => found.push(Violation::at(
                    ENV_NAMES,
                    &list,
                    "Invalid value: \"\": must specify one of: `configMapRef` or `secretRef`",
                )),
                1 => {}
                _ => found.push(Violation::at(
                    ENV_NAMES,
                    &list,
                    "Invalid value: \"\": may not have more than one field specified at a time",
                )),
            }
        }
    }

    /// kubernetes/kubernetes `pkg/apis/core/validation/validation.go` `ValidateVolumeMounts`,
    /// check for check in its order: an empty name is both required and not found, and a
    /// repeated mount path is not unique even when empty. Its subPath and subPathExpr errors
    /// are reported on the list's path (`fldPath.Child("subPath")`), not the mount's, and so
    /// are they here.
    fn volume_mounts(&self, container: &Container, path: &FieldPath, found: &mut Vec<Violation>) {
        let list = path.field("volumeMounts");
        let mut mount_paths = HashSet::new();
        for (index, mount) in container.volume_mounts.iter().flatten().enumerate() {
            let path = || list.index(index);
            let mut report = |field: &'static str, message: String| {
                found.push(Violation::at(VOLUME_MOUNTS, &path().field(field), message));
            };
            if mount.name.is_empty() {
                report("name", "Required value".to_owned());
            }
            if !self.volumes.contains(mount.name.as_str()) {
                report("name", format!("Not found: {:?}", mount.name));
            }
            if mount.mount_path.is_empty() {
                report("mountPath", "Required value".to_owned());
            }
            if !mount_paths.insert(mount.mount_path.as_str()) {
                report(
                    "mountPath",
                    format!("Invalid value: {:?}: must be unique", mount.mount_path),
                );
            }
            let sub_path = mount.sub_path.as_deref().filter(|p| !p.is_empty());
            let expression = mount.sub_path_expr.as_deref().filter(|p| !p.is_empty());
            if self.image_volumes.contains(mount.name.as_str()) {
                if let Some(sub_path) = sub_path {
                    report(
                        "subPath",
                        format!("Invalid value: {sub_path:?}: not allowed in image volume sources"),
                    );
                }
                if let Some(expression) = expression {
                    report(
                        "subPathExpr",
                        format!(
                            "Invalid value: {expression:?}: not allowed in image volume sources"
                        ),
                    );
                }
            }
            if let Some(sub_path) = sub_path {
                check_local_descending_path(sub_path, &list.field("subPath"), found);
            }
            if let Some(expression) = expression {
                if sub_path.is_some() {
                    found.push(Violation::at(
                        VOLUME_MOUNTS,
                        &path().field("subPathExpr"),
                        format!(
                            "Invalid value: {expression:?}: subPathExpr and subPath are mutually exclusive"
                        ),
                    ));
                }
                check_local_descending_path(expression, &list.field("subPathExpr"), found);
            }
            let privileged = container
                .security_context
                .as_ref()
                .and_then(|sc| sc.privileged)
                == Some(true);
            check_mount_propagation(mount, privileged, &list.field("mountPropagation"), found);
            if self.release >= RECURSIVE_READ_ONLY {
                check_recursive_read_only(mount, &list.field("recursiveReadOnly"), found);
            }
        }
    }

    /// kubernetes/kubernetes `pkg/apis/core/validation/validation.go` `validateInitContainers`:
    /// "Check for port conflicts in init containers individually since init containers run
    /// one-by-one" (`checkHostPortConflicts([]core.Container{ctr}, fldPath)`). The list of one
    /// puts every conflict under index 0 (`AccumulateUniqueHostPorts`), whatever the
    /// container's own index: `first` is that path. A port's protocol is defaulted to TCP
    /// before validation.
    fn host_port_conflicts(
        &self,
        container: &Container,
        first: &FieldPath,
        found: &mut Vec<Violation>,
    ) {
        let mut seen = HashSet::new();
        for (index, port) in container.ports.iter().flatten().enumerate() {
            let host_port = match port.host_port.unwrap_or(0) {
                0 if self.host_network => port.container_port,
                host_port => host_port,
            };
            if host_port == 0 {
                continue;
            }
            let key = format!(
                "{}/{}/{host_port}",
                port.protocol.as_deref().unwrap_or("TCP"),
                port.host_ip.as_deref().unwrap_or_default()
            );
            if !seen.insert(key.clone()) {
                found.push(Violation::at(
                    PORTS,
                    &first.field("ports").index(index).field("hostPort"),
                    format!("Duplicate value: {key:?}"),
                ));
            }
        }
    }

    /// `validateInitContainers`: a sidecar's lifecycle and probes are validated as an app
    /// container's are (`validateLifecycle`, `validateLivenessProbe`,
    /// `validateReadinessProbe`, `validateStartupProbe`); other init containers may not have
    /// them.
    fn probes_and_lifecycle(
        &self,
        container: &Container,
        path: &FieldPath,
        found: &mut Vec<Violation>,
    ) {
        let sidecar = self.release >= SIDECARS && initguard_core::workload::is_sidecar(container);
        let fields = [
            ("lifecycle", container.lifecycle.is_some()),
            ("livenessProbe", container.liveness_probe.is_some()),
            ("readinessProbe", container.readiness_probe.is_some()),
            ("startupProbe", container.startup_probe.is_some()),
        ];
        if !sidecar {
            for (field, present) in fields {
                if !present {
                    continue;
                }
                if self.release >= SIDECAR_WORDING {
                    found.push(Violation::at(
                        PROBES_AND_LIFECYCLE,
                        &path.field(field),
                        SIDECAR_ONLY,
                    ));
                } else if field != "startupProbe" {
                    // The value is the Go struct the apiserver prints with `%#v`.
                    found.push(Violation::at(
                        PROBES_AND_LIFECYCLE,
                        &path.field(field),
                        format!(
                            "Invalid value: core.{}{{...}}: must not be set for init containers",
                            if field == "lifecycle" {
                                "Lifecycle"
                            } else {
                                "Probe"
                            }
                        ),
                    ));
                }
            }
            return;
        }
        if let Some(lifecycle) = &container.lifecycle {
            let path = path.field("lifecycle");
            let hooks = [
                ("postStart", lifecycle.post_start.as_ref()),
                ("preStop", lifecycle.pre_stop.as_ref()),
            ];
            for (field, hook) in hooks {
                if let Some(hook) = hook {
                    self.handler(&Handler::of_hook(hook), &path.field(field), found);
                }
            }
        }
        let probes = [
            ("livenessProbe", container.liveness_probe.as_ref()),
            ("readinessProbe", container.readiness_probe.as_ref()),
            ("startupProbe", container.startup_probe.as_ref()),
        ];
        for (field, probe) in probes {
            if let Some(probe) = probe {
                self.probe(field, probe, &path.field(field), found);
            }
        }
    }

    /// `validateProbe`, then what each kind of probe adds. Zero timeouts, periods and
    /// thresholds are defaulted (`SetDefaults_Probe`) before validation.
    fn probe(&self, field: &str, probe: &Probe, path: &FieldPath, found: &mut Vec<Violation>) {
        self.handler(&Handler::of_probe(probe), path, found);
        let numbers = [
            ("initialDelaySeconds", probe.initial_delay_seconds),
            ("timeoutSeconds", probe.timeout_seconds),
            ("periodSeconds", probe.period_seconds),
            ("successThreshold", probe.success_threshold),
            ("failureThreshold", probe.failure_threshold),
        ];
        for (name, value) in numbers {
            if let Some(value) = value.filter(|v| *v < 0) {
                found.push(Violation::at(
                    PROBES_AND_LIFECYCLE,
                    &path.field(name),
                    format!("Invalid value: {value}: must be greater than or equal to 0"),
                ));
            }
        }
        if let Some(grace) = probe.termination_grace_period_seconds.filter(|g| *g <= 0) {
            found.push(Violation::at(
                PROBES_AND_LIFECYCLE,
                &path.field("terminationGracePeriodSeconds"),
                format!("Invalid value: {grace}: must be greater than 0"),
            ));
        }
        if field == "readinessProbe" {
            if let Some(grace) = probe.termination_grace_period_seconds {
                found.push(Violation::at(
                    PROBES_AND_LIFECYCLE,
                    &path.field("terminationGracePeriodSeconds"),
                    format!("Invalid value: {grace}: must not be set for readinessProbes"),
                ));
            }
        } else if let Some(threshold) = probe.success_threshold.filter(|t| *t != 0 && *t != 1) {
            found.push(Violation::at(
                PROBES_AND_LIFECYCLE,
                &path.field("successThreshold"),
                format!("Invalid value: {threshold}: must be 1"),
            ));
        }
    }

    /// `validateHandler`: exactly one handler, each extra one forbidden in turn, and the
    /// handler's own fields.
    fn handler(&self, handler: &Handler<'_>, path: &FieldPath, found: &mut Vec<Violation>) {
        let sleep = handler.sleep.filter(|_| self.release >= SLEEP_ACTION);
        let kinds = [
            ("exec", handler.exec.is_some()),
            ("httpGet", handler.http_get.is_some()),
            ("tcpSocket", handler.tcp_socket.is_some()),
            ("grpc", handler.grpc.is_some()),
            ("sleep", sleep.is_some()),
        ];
        let mut chosen = None;
        for (kind, present) in kinds {
            if !present {
                continue;
            }
            if chosen.is_some() {
                found.push(Violation::at(
                    PROBES_AND_LIFECYCLE,
                    &path.field(kind),
                    "Forbidden: may not specify more than 1 handler type",
                ));
            } else {
                chosen = Some(kind);
            }
        }
        let report = |found: &mut Vec<Violation>, field: FieldPath, message: String| {
            found.push(Violation::at(PROBES_AND_LIFECYCLE, &field, message));
        };
        match chosen {
            None => report(
                found,
                path.clone(),
                "Required value: must specify a handler type".to_owned(),
            ),
            Some("exec") => {
                let command = handler.exec.and_then(|e| e.command.as_ref());
                if command.is_none_or(Vec::is_empty) {
                    report(
                        found,
                        path.field("exec").field("command"),
                        "Required value".to_owned(),
                    );
                }
            }
            Some("httpGet") => {
                let Some(action) = handler.http_get else {
                    return;
                };
                let path = path.field("httpGet");
                for message in port_errors(&action.port) {
                    report(found, path.field("port"), message);
                }
                // `SetDefaults_HTTPGetAction` makes an empty scheme HTTP (and an empty path
                // `/`).
                if let Some(scheme) = action
                    .scheme
                    .as_deref()
                    .filter(|s| !s.is_empty() && !["HTTP", "HTTPS"].contains(s))
                {
                    report(
                        found,
                        path.field("scheme"),
                        unsupported(scheme, &["HTTP", "HTTPS"]),
                    );
                }
                for header in action.http_headers.iter().flatten() {
                    for message in http_header_name_errors(&header.name) {
                        report(
                            found,
                            path.field("httpHeaders"),
                            format!("Invalid value: {:?}: {message}", header.name),
                        );
                    }
                }
            }
            Some("tcpSocket") => {
                let Some(action) = handler.tcp_socket else {
                    return;
                };
                for message in port_errors(&action.port) {
                    report(found, path.field("tcpSocket").field("port"), message);
                }
            }
            Some("grpc") => {
                let Some(action) = handler.grpc else { return };
                if !(1..=65535).contains(&action.port) {
                    report(
                        found,
                        path.field("grpc").field("port"),
                        format!("Invalid value: {}: {PORT_RANGE}", action.port),
                    );
                }
            }
            Some(_) => {
                let Some(action) = sleep else { return };
                let (seconds, grace) = (action.seconds, self.grace_period);
                if self.release >= SLEEP_ZERO {
                    if seconds < 0 || seconds > grace {
                        report(
                            found,
                            path.field("sleep"),
                            format!(
                                "Invalid value: {seconds}: must be non-negative and less than terminationGracePeriodSeconds ({grace})"
                            ),
                        );
                    }
                } else if seconds <= 0 || seconds > grace {
                    report(
                        found,
                        path.field("sleep"),
                        format!(
                            "Invalid value: {seconds}: must be greater than 0 and less than terminationGracePeriodSeconds ({grace}). Enable AllowPodLifecycleSleepActionZeroValue feature gate for zero sleep."
                        ),
                    );
                }
            }
        }
    }
}

const PORT_RANGE: &str = "must be between 1 and 65535, inclusive";

/// `commonHandler`: the handler fields of a probe or a lifecycle hook.
struct Handler<'a> {
    exec: Option<&'a ExecAction>,
    http_get: Option<&'a HTTPGetAction>,
    tcp_socket: Option<&'a TCPSocketAction>,
    grpc: Option<&'a GRPCAction>,
    sleep: Option<&'a SleepAction>,
}

impl<'a> Handler<'a> {
    fn of_probe(probe: &'a Probe) -> Self {
        Self {
            exec: probe.exec.as_ref(),
            http_get: probe.http_get.as_ref(),
            tcp_socket: probe.tcp_socket.as_ref(),
            grpc: probe.grpc.as_ref(),
            sleep: None,
        }
    }

    fn of_hook(hook: &'a LifecycleHandler) -> Self {
        Self {
            exec: hook.exec.as_ref(),
            http_get: hook.http_get.as_ref(),
            tcp_socket: hook.tcp_socket.as_ref(),
            grpc: None,
            sleep: hook.sleep.as_ref(),
        }
    }
}

/// `ValidatePortNumOrName`.
fn port_errors(port: &IntOrString) -> Vec<String> {
    match port {
        IntOrString::Int(number) if !(1..=65535).contains(number) => {
            vec![format!("Invalid value: {number}: {PORT_RANGE}")]
        }
        IntOrString::Int(_) => Vec::new(),
        IntOrString::String(name) => port_name_errors(name)
            .into_iter()
            .map(|message| format!("Invalid value: {name:?}: {message}"))
            .collect(),
    }
}

/// The names of a StatefulSet's `volumeClaimTemplates`.
fn claim_template_names(request: &Request) -> impl Iterator<Item = &str> {
    request
        .object()
        .and_then(|object| object.pointer("/spec/volumeClaimTemplates"))
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|claim| claim.pointer("/metadata/name")?.as_str())
}

fn check_restart_policy(container: &Container, path: &FieldPath, found: &mut Vec<Violation>) {
    if let Some(policy) = container
        .restart_policy
        .as_deref()
        .filter(|p| *p != "Always")
    {
        found.push(Violation::at(
            RESTART_POLICY,
            &path.field("restartPolicy"),
            unsupported(policy, &["Always"]),
        ));
    }
}

/// `validateEnvVarValueFrom`: exactly one source, and no `value` beside it; the key
/// selectors name a ConfigMap or Secret and a key.
fn value_from(
    source: &EnvVarSource,
    value: Option<&str>,
    path: &FieldPath,
    found: &mut Vec<Violation>,
) {
    let mut report = |path: FieldPath, message: String| {
        found.push(Violation::at(ENV_NAMES, &path, message));
    };
    let mut sources = 0;
    if let Some(field_ref) = &source.field_ref {
        sources += 1;
        if field_ref.field_path.is_empty() {
            report(
                path.field("fieldRef").field("fieldPath"),
                "Required value".to_owned(),
            );
        }
    }
    if let Some(resource_ref) = &source.resource_field_ref {
        sources += 1;
        let path = path.field("resourceFieldRef");
        let resource = resource_ref.resource.as_str();
        if resource.is_empty() {
            report(path.field("resource"), "Required value".to_owned());
        } else if !DOWNWARD_API_RESOURCES.contains(&resource)
            && !resource.starts_with("limits.hugepages-")
            && !resource.starts_with("requests.hugepages-")
        {
            report(
                path.field("resource"),
                unsupported(resource, DOWNWARD_API_RESOURCES),
            );
        }
    }
    let selectors = [
        (
            "configMapKeyRef",
            source
                .config_map_key_ref
                .as_ref()
                .map(|s| (s.name.as_str(), s.key.as_str())),
        ),
        (
            "secretKeyRef",
            source
                .secret_key_ref
                .as_ref()
                .map(|s| (s.name.as_str(), s.key.as_str())),
        ),
    ];
    for (field, selector) in selectors {
        let Some((name, key)) = selector else {
            continue;
        };
        sources += 1;
        let path = path.field(field);
        for message in dns1123_subdomain_errors(name) {
            report(
                path.field("name"),
                format!("Invalid value: {name:?}: {message}"),
            );
        }
        if key.is_empty() {
            report(path.field("key"), "Required value".to_owned());
        } else {
            for message in config_map_key_errors(key) {
                report(
                    path.field("key"),
                    format!("Invalid value: {key:?}: {message}"),
                );
            }
        }
    }
    // `fileKeyRef` (EnvFiles) is counted, so that it is never taken for a missing source.
    sources += usize::from(source.file_key_ref.is_some());
    if sources == 0 {
        report(path.clone(), "Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`".to_owned());
    } else if value.is_some_and(|v| !v.is_empty()) {
        report(
            path.clone(),
            "Invalid value: \"\": may not be specified when `value` is not empty".to_owned(),
        );
    } else if sources > 1 {
        report(
            path.clone(),
            "Invalid value: \"\": may not have more than one field specified at a time".to_owned(),
        );
    }
}

/// `validContainerResourceFieldPathExpressions`, sorted as `sets.List` prints them.
const DOWNWARD_API_RESOURCES: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

/// `field.NotSupported`: the value and the values the field takes, each quoted.
fn unsupported(value: &str, supported: &[&str]) -> String {
    let supported: Vec<String> = supported.iter().map(|v| format!("{v:?}")).collect();
    format!(
        "Unsupported value: {value:?}: supported values: {}",
        supported.join(", ")
    )
}

/// `validateContainerCommon`: the policy is defaulted to `File` when empty.
fn check_termination_message_policy(
    container: &Container,
    path: &FieldPath,
    found: &mut Vec<Violation>,
) {
    if let Some(policy) = container
        .termination_message_policy
        .as_deref()
        .filter(|p| !p.is_empty() && !["File", "FallbackToLogsOnError"].contains(p))
    {
        found.push(Violation::at(
            IMAGE_REQUIRED,
            &path.field("terminationMessagePolicy"),
            unsupported(policy, &["File", "FallbackToLogsOnError"]),
        ));
    }
}

/// `validateResizePolicy`: each resource once, cpu or memory, with a known restart policy
/// (the pod's own restart policy is `Always` unless set).
fn check_resize_policy(container: &Container, path: &FieldPath, found: &mut Vec<Violation>) {
    let list = path.field("resizePolicy");
    let mut seen = HashSet::new();
    let mut report = |path: &FieldPath, message: String| {
        found.push(Violation::at(RESOURCES, path, message));
    };
    for (index, policy) in container.resize_policy.iter().flatten().enumerate() {
        let resource = policy.resource_name.as_str();
        if !seen.insert(resource) {
            report(&list.index(index), format!("Duplicate value: {resource:?}"));
        }
        match resource {
            "cpu" | "memory" => {}
            "" => report(&list, "Required value".to_owned()),
            other => report(&list, unsupported(other, &["cpu", "memory"])),
        }
        match policy.restart_policy.as_str() {
            "NotRequired" | "RestartContainer" => {}
            "" => report(&list, "Required value".to_owned()),
            other => report(
                &list,
                unsupported(other, &["NotRequired", "RestartContainer"]),
            ),
        }
    }
}

/// `validatePullPolicy`; an empty policy is defaulted before validation.
fn check_pull_policy(container: &Container, path: &FieldPath, found: &mut Vec<Violation>) {
    if let Some(policy) = container
        .image_pull_policy
        .as_deref()
        .filter(|p| !p.is_empty() && !["Always", "IfNotPresent", "Never"].contains(p))
    {
        found.push(Violation::at(
            IMAGE_REQUIRED,
            &path.field("imagePullPolicy"),
            unsupported(policy, &["Always", "IfNotPresent", "Never"]),
        ));
    }
}

fn check_ports(container: &Container, path: &FieldPath, found: &mut Vec<Violation>) {
    let mut names = HashSet::new();
    for (index, port) in container.ports.iter().flatten().enumerate() {
        let path = || path.field("ports").index(index);
        // `validateContainerPorts`: an invalid name is not also a duplicate.
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            let messages = port_name_errors(name);
            for message in &messages {
                found.push(Violation::at(
                    PORTS,
                    &path().field("name"),
                    format!("Invalid value: {name:?}: {message}"),
                ));
            }
            if messages.is_empty() && !names.insert(name) {
                found.push(Violation::at(
                    PORTS,
                    &path().field("name"),
                    format!("Duplicate value: {name:?}"),
                ));
            }
        }
        if port.container_port == 0 {
            found.push(Violation::at(
                PORTS,
                &path().field("containerPort"),
                "Required value",
            ));
        } else if !(1..=65535).contains(&port.container_port) {
            found.push(Violation::at(
                PORTS,
                &path().field("containerPort"),
                format!("Invalid value: {}: {PORT_RANGE}", port.container_port),
            ));
        }
        if let Some(host_port) = port
            .host_port
            .filter(|p| *p != 0 && !(1..=65535).contains(p))
        {
            found.push(Violation::at(
                PORTS,
                &path().field("hostPort"),
                format!("Invalid value: {host_port}: {PORT_RANGE}"),
            ));
        }
        if let Some(protocol) = port
            .protocol
            .as_deref()
            .filter(|p| !["TCP", "UDP", "SCTP"].contains(p))
        {
            found.push(Violation::at(
                PORTS,
                &path().field("protocol"),
                unsupported(protocol, &["SCTP", "TCP", "UDP"]),
            ));
        }
    }
}

/// kubernetes/kubernetes `pkg/apis/core/validation/validation.go`
/// `ValidateContainerResourceRequirements` (`validateResourceRequirements` with
/// `validateContainerResourceName`): every limit, then every request, then the hugepages
/// rule. Quantities are printed as the apiserver prints them (`Quantity.String`).
fn check_resources(container: &Container, path: &FieldPath, found: &mut Vec<Violation>) {
    let Some(resources) = &container.resources else {
        return;
    };
    let path = path.field("resources");
    let limits_path = path.field("limits");
    let requests_path = path.field("requests");
    let mut report = |path: &FieldPath, message: String| {
        found.push(Violation::at(RESOURCES, path, message));
    };
    let (mut compute, mut hugepages) = (false, false);
    let mut limits = BTreeMap::new();
    for (name, quantity) in resources.limits.iter().flatten() {
        let key_path = limits_path.key(name);
        if let Some(value) = check_quantity(name, &quantity.0, &key_path, &mut report) {
            limits.insert(name.as_str(), value);
        }
        hugepages |= is_hugepages(name);
        compute |= matches!(name.as_str(), "cpu" | "memory");
    }
    for (name, quantity) in resources.requests.iter().flatten() {
        let key_path = requests_path.key(name);
        let value = check_quantity(name, &quantity.0, &key_path, &mut report);
        let overcommit = is_native(name) && !is_hugepages(name);
        match (value, resources.limits.as_ref().and_then(|l| l.get(name))) {
            (Some(request), Some(_)) => {
                if let Some(limit) = limits.get(name.as_str()) {
                    if request.value != limit.value && !overcommit {
                        report(
                            &requests_path,
                            format!(
                                "Invalid value: \"{request}\": must be equal to {name} limit of {limit}"
                            ),
                        );
                    } else if request.value > limit.value {
                        report(
                            &requests_path,
                            format!(
                                "Invalid value: \"{request}\": must be less than or equal to {name} limit of {limit}"
                            ),
                        );
                    }
                }
            }
            (_, None) if !overcommit => report(
                &limits_path,
                "Required value: Limit must be set for non overcommitable resources".to_owned(),
            ),
            _ => {}
        }
        hugepages |= is_hugepages(name);
        compute |= matches!(name.as_str(), "cpu" | "memory");
    }
    if hugepages && !compute {
        report(
            &path,
            "Forbidden: HugePages require cpu or memory".to_owned(),
        );
    }
}

/// A resource's name and quantity (`validateContainerResourceName`,
/// `ValidateResourceQuantityValue`, `validateResourceQuantityHugePageValue`); the quantity
/// when it parses.
fn check_quantity(
    name: &str,
    text: &str,
    path: &FieldPath,
    report: &mut impl FnMut(&FieldPath, String),
) -> Option<Written> {
    for message in container_resource_name_errors(name) {
        report(path, format!("Invalid value: {name:?}: {message}"));
    }
    let value = match Written::parse(text) {
        Ok(value) => value,
        Err(error) => {
            report(path, format!("Invalid value: {text:?}: {error}"));
            return None;
        }
    };
    if value.value.is_negative() {
        report(
            path,
            format!("Invalid value: \"{value}\": must be greater than or equal to 0"),
        );
    }
    // The apiserver prints this value as a Go struct (`%#v` of a `resource.Quantity`); its
    // text stands in for it.
    if is_integer_resource(name) && value.value.ceil_millis() % 1000 != 0 {
        report(
            path,
            format!("Invalid value: \"{value}\": must be an integer"),
        );
    }
    if is_hugepages(name) && !hugepages_divisible(name, value.value) {
        report(
            path,
            format!(
                "Invalid value: \"{value}\": {value} is not positive integer multiple of {name}"
            ),
        );
    }
    Some(value)
}

/// kubernetes/kubernetes `pkg/apis/core/helper/helpers.go`: the object counts of
/// `IsIntegerResourceName` (extended resources are integers too), which are standard
/// resources as well.
const OBJECT_COUNTS: &[&str] = &[
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
];

/// The rest of `IsStandardResourceName`'s list (hugepages aside).
const STANDARD_QUANTITIES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "storage",
    "requests.storage",
];

fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

/// `IsNativeResource`: unprefixed, or in the `kubernetes.io/` namespace.
fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// `IsExtendedResourceName`.
fn is_extended(name: &str) -> bool {
    !is_native(name)
        && !name.starts_with("requests.")
        && qualified_name_errors(&format!("requests.{name}")).is_empty()
}

fn is_integer_resource(name: &str) -> bool {
    OBJECT_COUNTS.contains(&name) || is_extended(name)
}

/// `validateContainerResourceName` (after `validateResourceName`).
fn container_resource_name_errors(name: &str) -> Vec<String> {
    let mut errors = qualified_name_errors(name);
    let unprefixed = !name.contains('/');
    let standard = STANDARD_QUANTITIES.contains(&name)
        || OBJECT_COUNTS.contains(&name)
        || is_hugepages(name)
        || name.starts_with("requests.hugepages-");
    if errors.is_empty() && unprefixed && !standard {
        errors.push("must be a standard resource type or fully qualified".to_owned());
    }
    if unprefixed {
        if !matches!(name, "cpu" | "memory" | "ephemeral-storage") && !is_hugepages(name) {
            errors.push("must be a standard resource for containers".to_owned());
        }
    } else if !is_native(name) && !is_extended(name) {
        errors.push("doesn't follow extended resource name standard".to_owned());
    }
    errors
}

/// `IsHugePageResourceValueDivisible`: the page size (after `hugepages-`) is a positive whole
/// quantity that divides the value (both rounded up to whole units).
fn hugepages_divisible(name: &str, value: Quantity) -> bool {
    let Ok(page) = Quantity::parse(&name["hugepages-".len()..]) else {
        return false;
    };
    page > Quantity::ZERO
        && page.ceil_millis() % 1000 == 0
        && value.ceil_units() % page.ceil_units() == 0
}

/// `validateMountPropagation`: a known mode, and Bidirectional only for privileged containers.
fn check_mount_propagation(
    mount: &VolumeMount,
    privileged: bool,
    path: &FieldPath,
    found: &mut Vec<Violation>,
) {
    let Some(mode) = mount.mount_propagation.as_deref() else {
        return;
    };
    if !["Bidirectional", "HostToContainer", "None"].contains(&mode) {
        found.push(Violation::at(
            VOLUME_MOUNTS,
            path,
            unsupported(mode, &["Bidirectional", "HostToContainer", "None"]),
        ));
    }
    if mode == "Bidirectional" && !privileged {
        found.push(Violation::at(
            VOLUME_MOUNTS,
            path,
            "Forbidden: Bidirectional mount propagation is available only to privileged containers",
        ));
    }
}

/// `validateMountRecursiveReadOnly`: recursive read-only needs a read-only mount without
/// propagation.
fn check_recursive_read_only(mount: &VolumeMount, path: &FieldPath, found: &mut Vec<Violation>) {
    let Some(mode) = mount.recursive_read_only.as_deref() else {
        return;
    };
    let mut report = |message: String| found.push(Violation::at(VOLUME_MOUNTS, path, message));
    match mode {
        "Disabled" => {}
        "Enabled" | "IfPossible" => {
            if mount.read_only != Some(true) {
                report("Forbidden: may only be specified when readOnly is true".to_owned());
            }
            if mount
                .mount_propagation
                .as_deref()
                .is_some_and(|m| m != "None")
            {
                report(
                    "Forbidden: may only be specified when mountPropagation is None or not specified"
                        .to_owned(),
                );
            }
        }
        other => report(unsupported(other, &["Disabled", "Enabled", "IfPossible"])),
    }
}

/// `validateLocalDescendingPath` and `validatePathNoBacksteps`: relative, and no `..` element
/// (one error however many).
fn check_local_descending_path(target: &str, path: &FieldPath, found: &mut Vec<Violation>) {
    if target.starts_with('/') {
        found.push(Violation::at(
            VOLUME_MOUNTS,
            path,
            format!("Invalid value: {target:?}: must be a relative path"),
        ));
    }
    if target.split('/').any(|part| part == "..") {
        found.push(Violation::at(
            VOLUME_MOUNTS,
            path,
            format!("Invalid value: {target:?}: must not contain '..'"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn violations(object: serde_json::Value) -> Vec<String> {
        violations_in(initguard_core::release::LATEST, object)
    }

    fn violations_in(release: Release, object: serde_json::Value) -> Vec<String> {
        InitContainerValidity { release }
            .evaluate(&Request::create(object))
            .unwrap()
            .violations
            .iter()
            .map(|v| format!("{} {v}", v.rule))
            .collect()
    }

    /// kubernetes/kubernetes `pkg/apis/core/validation/validation.go`
    /// `validateContainersOnlyForPod`, called from `ValidatePod` alone: a Deployment whose
    /// template pads an image is accepted; the same Pod is not.
    #[test]
    fn image_whitespace_is_checked_for_pods_only() {
        let spec = json!({
            "initContainers": [{"name": "setup", "image": " busybox:1.36"}],
            "containers": [{"name": "app", "image": "nginx:1.27"}],
        });
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": spec}},
        });
        assert_eq!(violations(deployment), Vec::<String>::new());
        let pod =
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": spec});
        assert_eq!(
            violations(pod),
            [
                r#"IG-V003 spec.initContainers[0].image: Invalid value: " busybox:1.36": must not have leading or trailing whitespace"#
            ]
        );
    }

    /// kubernetes/kubernetes `pkg/apis/apps/validation/validation.go`
    /// `ValidatePodTemplateSpecForStatefulSet`: a StatefulSet's template is validated with a
    /// volume for each `volumeClaimTemplates` entry (the Kubernetes docs' `web` StatefulSet
    /// mounts `www` this way); a name that is neither is still not found.
    #[test]
    fn statefulset_templates_mount_their_claim_templates() {
        let statefulset = |mount: &str| {
            json!({
                "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
                "spec": {
                    "serviceName": "nginx",
                    "selector": {"matchLabels": {"app": "nginx"}},
                    "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {
                        "initContainers": [{"name": "seed", "image": "busybox:1.36",
                            "volumeMounts": [{"name": mount, "mountPath": "/usr/share/nginx/html"}]}],
                        "containers": [{"name": "nginx", "image": "nginx:1.27"}],
                    }},
                    "volumeClaimTemplates": [{"metadata": {"name": "www"},
                        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
                },
            })
        };
        assert_eq!(violations(statefulset("www")), Vec::<String>::new());
        assert_eq!(
            violations(statefulset("cache")),
            [
                r#"IG-V008 spec.template.spec.initContainers[0].volumeMounts[0].name: Not found: "cache""#
            ]
        );
        // Before v1.34 (kubernetes/kubernetes #131790) the apiserver did not validate the
        // template's pod spec at all.
        assert_eq!(
            violations_in(Release::new(33), statefulset("cache")),
            Vec::<String>::new()
        );
        assert_eq!(
            violations_in(Release::new(34), statefulset("cache")).len(),
            1
        );
    }

    /// `validateInitContainers` checks host ports of each init container alone, and reports a
    /// conflict under `initContainers[0]` (`checkHostPortConflicts([]core.Container{ctr},
    /// fldPath)`); two init containers may use the same host port, as they run one at a time.
    #[test]
    fn host_ports_conflict_within_one_init_container_only() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ports"},
            "spec": {
                "initContainers": [
                    {"name": "first", "image": "busybox:1.36", "ports": [{"containerPort": 80, "hostPort": 8080}]},
                    {"name": "second", "image": "busybox:1.36", "ports": [
                        {"containerPort": 80, "hostPort": 8080},
                        {"containerPort": 81, "hostPort": 8080, "protocol": "UDP"},
                        {"containerPort": 82, "hostPort": 8080, "protocol": "TCP"},
                    ]},
                ],
                "containers": [{"name": "app", "image": "nginx:1.27"}],
            },
        });
        assert_eq!(
            violations(pod),
            [r#"IG-V006 spec.initContainers[0].ports[2].hostPort: Duplicate value: "TCP//8080""#]
        );
    }

    /// `ValidateVolumeMounts`: subPath and subPathExpr relative and without `..`, reported on
    /// the list's path as the apiserver does; the two are mutually exclusive.
    #[test]
    fn sub_paths_descend_and_exclude_each_other() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "mounts"},
            "spec": {
                "volumes": [{"name": "work", "emptyDir": {}}],
                "initContainers": [{"name": "fetch", "image": "busybox:1.36", "volumeMounts": [
                    {"name": "work", "mountPath": "/a", "subPath": "/etc"},
                    {"name": "work", "mountPath": "/b", "subPath": "x/../../y"},
                    {"name": "work", "mountPath": "/c", "subPath": "ok", "subPathExpr": "$(POD)"},
                    {"name": "", "mountPath": "/d"},
                ]}],
                "containers": [{"name": "app", "image": "nginx:1.27"}],
            },
        });
        assert_eq!(
            violations(pod),
            [
                r#"IG-V008 spec.initContainers[0].volumeMounts.subPath: Invalid value: "/etc": must be a relative path"#,
                r#"IG-V008 spec.initContainers[0].volumeMounts.subPath: Invalid value: "x/../../y": must not contain '..'"#,
                r#"IG-V008 spec.initContainers[0].volumeMounts[2].subPathExpr: Invalid value: "$(POD)": subPathExpr and subPath are mutually exclusive"#,
                "IG-V008 spec.initContainers[0].volumeMounts[3].name: Required value",
                r#"IG-V008 spec.initContainers[0].volumeMounts[3].name: Not found: """#,
            ]
        );
    }

    #[test]
    fn the_release_is_a_setting_and_latest_is_the_one_checked_against() {
        let at = |settings: serde_json::Value| {
            InitContainerValidity::from_settings(&settings, Release::new(30)).map(|v| v.release)
        };
        assert_eq!(at(serde_json::Value::Null), Ok(Release::new(30)));
        assert_eq!(
            at(json!({"kubernetesVersion": "v1.34"})),
            Ok(Release::new(34))
        );
        assert_eq!(
            at(json!({"kubernetesVersion": "1.34"}))
                .unwrap_err()
                .to_string(),
            r#"kubernetesVersion: "1.34" is not a version: expected v1.N or latest"#
        );
        assert!(
            at(json!({"version": "v1.34"})).is_err(),
            "unknown keys are refused"
        );
    }
}
