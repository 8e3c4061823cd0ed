//! `init-container-validity`: what kube-apiserver rejects in init containers, with its own
//! field paths and messages, so CI catches it before a deploy does.

use std::collections::HashSet;

use initguard_core::k8s_openapi::api::core::v1::{Container, Lifecycle, LifecycleHandler, Probe};
use initguard_core::{
    ContainerKind, FieldPath, Outcome, Policy, PolicyError, Request, Violation, Workload,
    WorkloadKind,
};

use initguard_core::release::Release;
use serde::Deserialize;

use crate::quantity::{Quantity, ResourceList};
use crate::settings::SettingsError;
use crate::text::{is_dns1123_label, port_name_errors};

pub const NAME: &str = "init-container-validity";

pub const NAME_FORMAT: &str = "IG-V001";
pub const NAME_UNIQUE: &str = "IG-V002";
pub const IMAGE_REQUIRED: &str = "IG-V003";
pub const PROBES_AND_LIFECYCLE: &str = "IG-V004";
pub const RESTART_POLICY: &str = "IG-V005";
pub const PORTS: &str = "IG-V006";
pub const RESOURCES: &str = "IG-V007";
pub const VOLUME_MOUNTS: &str = "IG-V008";
pub const ENV_NAMES: &str = "IG-V009";

const DNS1123_LABEL_MESSAGE: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
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
        let mut found = Vec::new();
        check_names(workload, &mut found);
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
        // `validateContainersOnlyForPod`: the image whitespace check runs for Pods, not for
        // pod templates.
        let pod = workload.kind == WorkloadKind::Pod;
        for (index, container) in workload.init_containers().iter().enumerate() {
            let path = workload.container_path(ContainerKind::Init, index);
            check_image(container, &path, pod, &mut found);
            check_probes_and_lifecycle(container, &path, &mut found);
            check_restart_policy(container, &path, &mut found);
            check_ports(container, &path, &mut found);
            check_host_port_conflicts(
                container,
                &workload.container_path(ContainerKind::Init, 0),
                &mut found,
            );
            check_resources(container, &path, &mut found);
            check_volume_mounts(container, &path, &volumes, &mut found);
            check_env(container, &path, &mut found);
        }
        Ok(Outcome {
            violations: found,
            ..Outcome::default()
        })
    }
}

/// Names are required, DNS-1123 labels, and unique across app, init and ephemeral containers;
/// like the apiserver, a duplicate is reported on the later entry in that order.
fn check_names(workload: &Workload, found: &mut Vec<Violation>) {
    let mut seen = HashSet::new();
    let app = workload
        .app_containers()
        .iter()
        .map(|c| (ContainerKind::App, c.name.as_str()));
    let init = workload
        .init_containers()
        .iter()
        .map(|c| (ContainerKind::Init, c.name.as_str()));
    let ephemeral = workload
        .ephemeral_containers()
        .iter()
        .map(|c| (ContainerKind::Ephemeral, c.name.as_str()));
    let mut positions = [0usize; 3];
    for (kind, name) in app.chain(init).chain(ephemeral) {
        let slot = kind as usize;
        let index = positions[slot];
        positions[slot] += 1;
        let path = || workload.container_path(kind, index).field("name");
        if name.is_empty() {
            if kind == ContainerKind::Init {
                found.push(Violation::at(NAME_FORMAT, &path(), "Required value"));
            }
            continue;
        }
        if !seen.insert(name) {
            found.push(Violation::at(
                NAME_UNIQUE,
                &path(),
                format!("Duplicate value: {name:?}"),
            ));
        } else if kind == ContainerKind::Init {
            if name.len() > 63 {
                found.push(Violation::at(
                    NAME_FORMAT,
                    &path(),
                    format!("Invalid value: {name:?}: must be no more than 63 characters"),
                ));
            }
            if !is_dns1123_label(name) {
                found.push(Violation::at(
                    NAME_FORMAT,
                    &path(),
                    format!("Invalid value: {name:?}: {DNS1123_LABEL_MESSAGE}"),
                ));
            }
        }
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

fn check_image(container: &Container, path: &FieldPath, pod: bool, found: &mut Vec<Violation>) {
    let path = || path.field("image");
    match container.image.as_deref() {
        None | Some("") => found.push(Violation::at(IMAGE_REQUIRED, &path(), "Required value")),
        Some(image) if pod && image.trim() != image => found.push(Violation::at(
            IMAGE_REQUIRED,
            &path(),
            format!("Invalid value: {image:?}: must not have leading or trailing whitespace"),
        )),
        Some(_) => {}
    }
}

fn check_probes_and_lifecycle(container: &Container, path: &FieldPath, found: &mut Vec<Violation>) {
    let sidecar = initguard_core::workload::is_sidecar(container);
    let probes = [
        ("livenessProbe", container.liveness_probe.as_ref(), true),
        ("readinessProbe", container.readiness_probe.as_ref(), false),
        ("startupProbe", container.startup_probe.as_ref(), true),
    ];
    for (field, probe, success_must_be_one) in probes {
        let Some(probe) = probe else { continue };
        let probe_path = path.field(field);
        if sidecar {
            check_probe(probe, &probe_path, success_must_be_one, found);
        } else {
            found.push(Violation::at(
                PROBES_AND_LIFECYCLE,
                &probe_path,
                SIDECAR_ONLY,
            ));
        }
    }
    if let Some(lifecycle) = &container.lifecycle {
        if sidecar {
            check_lifecycle(lifecycle, &path.field("lifecycle"), found);
        } else {
            found.push(Violation::at(
                PROBES_AND_LIFECYCLE,
                &path.field("lifecycle"),
                SIDECAR_ONLY,
            ));
        }
    }
}

fn check_probe(
    probe: &Probe,
    path: &FieldPath,
    success_must_be_one: bool,
    found: &mut Vec<Violation>,
) {
    let handlers = [
        ("exec", probe.exec.is_some()),
        ("httpGet", probe.http_get.is_some()),
        ("tcpSocket", probe.tcp_socket.is_some()),
        ("grpc", probe.grpc.is_some()),
    ];
    check_handlers(&handlers, path, found);
    let numbers = [
        ("initialDelaySeconds", probe.initial_delay_seconds),
        ("timeoutSeconds", probe.timeout_seconds),
        ("periodSeconds", probe.period_seconds),
        ("successThreshold", probe.success_threshold),
        ("failureThreshold", probe.failure_threshold),
    ];
    for (field, value) in numbers {
        if let Some(value) = value.filter(|v| *v < 0) {
            found.push(Violation::at(
                PROBES_AND_LIFECYCLE,
                &path.field(field),
                format!("Invalid value: {value}: must be greater than or equal to 0"),
            ));
        }
    }
    if let Some(threshold) = probe
        .success_threshold
        .filter(|t| success_must_be_one && *t != 1 && *t >= 0)
    {
        found.push(Violation::at(
            PROBES_AND_LIFECYCLE,
            &path.field("successThreshold"),
            format!("Invalid value: {threshold}: must be 1"),
        ));
    }
}

fn check_lifecycle(lifecycle: &Lifecycle, path: &FieldPath, found: &mut Vec<Violation>) {
    let hooks = [
        ("postStart", lifecycle.post_start.as_ref()),
        ("preStop", lifecycle.pre_stop.as_ref()),
    ];
    for (field, handler) in hooks {
        let Some(handler) = handler else { continue };
        let handlers = handler_kinds(handler);
        check_handlers(&handlers, &path.field(field), found);
    }
}

fn handler_kinds(handler: &LifecycleHandler) -> [(&'static str, bool); 4] {
    [
        ("exec", handler.exec.is_some()),
        ("httpGet", handler.http_get.is_some()),
        ("tcpSocket", handler.tcp_socket.is_some()),
        ("sleep", handler.sleep.is_some()),
    ]
}

fn check_handlers(handlers: &[(&'static str, bool)], path: &FieldPath, found: &mut Vec<Violation>) {
    let mut set = handlers
        .iter()
        .filter(|(_, present)| *present)
        .map(|(name, _)| *name);
    match (set.next(), set.next()) {
        (None, _) => found.push(Violation::at(
            PROBES_AND_LIFECYCLE,
            path,
            "Required value: must specify a handler type",
        )),
        (Some(_), Some(extra)) => found.push(Violation::at(
            PROBES_AND_LIFECYCLE,
            &path.field(extra),
            "Forbidden: may not specify more than 1 handler type",
        )),
        (Some(_), None) => {}
    }
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
            format!("Unsupported value: {policy:?}: supported values: \"Always\""),
        ));
    }
}

/// kubernetes/kubernetes `pkg/apis/core/validation/validation.go` `validateInitContainers`:
/// "Check for port conflicts in init containers individually since init containers run
/// one-by-one" (`checkHostPortConflicts([]core.Container{ctr}, fldPath)`). The list of one
/// puts every conflict under index 0 (`AccumulateUniqueHostPorts`), whatever the container's
/// own index: `first` is that path. A port's protocol is defaulted to TCP before validation.
fn check_host_port_conflicts(container: &Container, first: &FieldPath, found: &mut Vec<Violation>) {
    let mut seen = HashSet::new();
    for (index, port) in container.ports.iter().flatten().enumerate() {
        let Some(host_port) = port.host_port.filter(|p| *p != 0) else {
            continue;
        };
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

fn check_ports(container: &Container, path: &FieldPath, found: &mut Vec<Violation>) {
    let mut names = HashSet::new();
    for (index, port) in container.ports.iter().flatten().enumerate() {
        let path = || path.field("ports").index(index);
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            for message in port_name_errors(name) {
                found.push(Violation::at(
                    PORTS,
                    &path().field("name"),
                    format!("Invalid value: {name:?}: {message}"),
                ));
            }
            if !names.insert(name) {
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
                format!(
                    "Invalid value: {}: must be between 1 and 65535, inclusive",
                    port.container_port
                ),
            ));
        }
        if let Some(host_port) = port
            .host_port
            .filter(|p| *p != 0 && !(1..=65535).contains(p))
        {
            found.push(Violation::at(
                PORTS,
                &path().field("hostPort"),
                format!("Invalid value: {host_port}: must be between 1 and 65535, inclusive"),
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
                format!(
                    "Unsupported value: {protocol:?}: supported values: \"SCTP\", \"TCP\", \"UDP\""
                ),
            ));
        }
    }
}

fn check_resources(container: &Container, path: &FieldPath, found: &mut Vec<Violation>) {
    let Some(resources) = &container.resources else {
        return;
    };
    let path = path.field("resources");
    let requests = parse_quantities(&path.field("requests"), resources.requests.as_ref(), found);
    let limits = parse_quantities(&path.field("limits"), resources.limits.as_ref(), found);
    for (name, text, request) in requests {
        let exceeded = limits
            .iter()
            .find(|(limit_name, _, limit)| *limit_name == name && request > *limit);
        if let Some((_, limit_text, _)) = exceeded {
            found.push(Violation::at(
                RESOURCES,
                &path.field("requests"),
                format!("Invalid value: {text:?}: must be less than or equal to {name} limit of {limit_text}"),
            ));
        }
    }
}

/// The valid quantities of a resource list, reporting the others.
fn parse_quantities<'a>(
    path: &FieldPath,
    list: Option<&'a ResourceList>,
    found: &mut Vec<Violation>,
) -> Vec<(&'a str, &'a str, Quantity)> {
    let mut values = Vec::new();
    for (name, quantity) in list.into_iter().flatten() {
        let text = quantity.0.as_str();
        match Quantity::parse(text) {
            Ok(value) if value.is_negative() => found.push(Violation::at(
                RESOURCES,
                &path.key(name),
                format!("Invalid value: {text:?}: must be greater than or equal to 0"),
            )),
            Ok(value) => values.push((name.as_str(), text, value)),
            Err(error) => found.push(Violation::at(
                RESOURCES,
                &path.key(name),
                format!("Invalid value: {text:?}: {error}"),
            )),
        }
    }
    values
}

/// kubernetes/kubernetes `pkg/apis/core/validation/validation.go` `ValidateVolumeMounts`, check
/// for check in its order: an empty name is both required and not found, and a repeated
/// mount path is not unique even when empty. Its subPath and subPathExpr errors are reported
/// on the list's path (`fldPath.Child("subPath")`), not the mount's, and so are they here.
fn check_volume_mounts(
    container: &Container,
    path: &FieldPath,
    volumes: &HashSet<&str>,
    found: &mut Vec<Violation>,
) {
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
        if !volumes.contains(mount.name.as_str()) {
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
        if let Some(sub_path) = sub_path {
            check_local_descending_path(sub_path, &list.field("subPath"), found);
        }
        if let Some(expression) = mount.sub_path_expr.as_deref().filter(|p| !p.is_empty()) {
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

fn check_env(container: &Container, path: &FieldPath, found: &mut Vec<Violation>) {
    for (index, var) in container.env.iter().flatten().enumerate() {
        let path = || path.field("env").index(index).field("name");
        if var.name.is_empty() {
            found.push(Violation::at(ENV_NAMES, &path(), "Required value"));
        } else if !var
            .name
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'=')
        {
            found.push(Violation::at(
                ENV_NAMES,
                &path(),
                format!(
                    "Invalid value: {:?}: a valid environment variable name must consist only of printable ASCII characters other than '='",
                    var.name
                ),
            ));
        }
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
