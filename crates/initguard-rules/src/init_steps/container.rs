//! The container of one injected step: its image and command, bounded by its timeout,
//! hardened to Pod Security's restricted level, with small requests and limits.

use std::collections::BTreeMap;

use initguard_core::k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvVar, EnvVarSource, ObjectFieldSelector, ResourceRequirements,
    SeccompProfile, SecurityContext,
};
use initguard_core::k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::catalog::{CpuMemory, Resources};
use super::grammar::Options;
use super::{Action, Step};

/// The user every injected container runs as: not root, in no image's passwd.
const RUN_AS: i64 = 65532;

/// The container of one item: the step's image and command, bounded, hardened, small.
pub(super) fn container(
    step: &Step,
    options: &Options,
    name: String,
    item_env: Vec<EnvVar>,
) -> Container {
    let command = match &step.action {
        Action::Builtin(builtin) => vec!["/bin/sh".to_owned(), "-c".to_owned(), builtin.script()],
        Action::Custom {
            command,
            bounded: true,
            ..
        } => command.clone(),
        Action::Custom { command, .. } => ["timeout", "$(INITGUARD_TIMEOUT)"]
            .iter()
            .map(|s| (*s).to_owned())
            .chain(command.iter().cloned())
            .collect(),
    };
    let mut vars = vec![
        env("INITGUARD_STEP", &step.name),
        env(
            "INITGUARD_TIMEOUT",
            &options.timeout.as_secs().max(1).to_string(),
        ),
        env(
            "INITGUARD_INTERVAL",
            &options.interval.as_secs().max(1).to_string(),
        ),
        field_env("POD_NAME", "metadata.name"),
        field_env("POD_NAMESPACE", "metadata.namespace"),
        field_env("POD_IP", "status.podIP"),
    ];
    for var in item_env {
        match vars.iter_mut().find(|v| v.name == var.name) {
            Some(existing) => *existing = var,
            None => vars.push(var),
        }
    }
    Container {
        name,
        image: Some(options.image.clone()),
        command: Some(command),
        env: Some(vars),
        resources: Some(resources(&step.resources)),
        security_context: Some(hardened()),
        termination_message_policy: Some("FallbackToLogsOnError".to_owned()),
        ..Container::default()
    }
}

pub(super) fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        value_from: None,
    }
}

/// A pod fact from the downward API, read when the container starts: on CREATE the pod may
/// not even have its name yet.
fn field_env(name: &str, field: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: field.to_owned(),
            }),
            ..EnvVarSource::default()
        }),
    }
}

fn resources(resources: &Resources) -> ResourceRequirements {
    let pair = |p: &CpuMemory| {
        BTreeMap::from([
            ("cpu".to_owned(), Quantity(p.cpu.clone())),
            ("memory".to_owned(), Quantity(p.memory.clone())),
        ])
    };
    ResourceRequirements {
        requests: Some(pair(&resources.requests)),
        limits: Some(pair(&resources.limits)),
        ..ResourceRequirements::default()
    }
}

/// What PSS restricted asks of a container, and a read-only root: steps write only to the
/// volumes they are given.
fn hardened() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: None,
        }),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS),
        run_as_group: Some(RUN_AS),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            localhost_profile: None,
        }),
        ..SecurityContext::default()
    }
}
