//! `init-container-hygiene`: practices that keep init containers from blocking, bloating or
//! weakening a pod. Each check can be switched off or tuned in settings.

use std::collections::BTreeMap;

use initguard_core::k8s_openapi::api::core::v1::{Container, PodSecurityContext};
use initguard_core::{
    ContainerKind, FieldPath, Outcome, Policy, PolicyError, Request, Violation, Workload,
};
use serde::Deserialize;

use crate::quantity::Quantity;
use crate::shell::unbounded_reason;
use initguard_core::image::{ImageRef, Unpinned};

pub const NAME: &str = "init-container-hygiene";

/// The rules of this policy, documented by example (`initguard rules`).
pub const RULES: &[crate::RuleDoc] = &[
    rule!(
        "IG-H001",
        "images are pinned: a version tag other than latest, or a digest",
        "all",
        ""
    ),
    rule!(
        "IG-H002",
        "images are pinned by digest (setting requireDigest)",
        "all",
        "requireDigest: true"
    ),
    rule!(
        "IG-H003",
        "images come from allowed registries (setting allowedRegistries)",
        "all",
        "allowedRegistries: [registry.example.com]"
    ),
    rule!(
        "IG-H004",
        "init containers set cpu and memory requests and limits",
        "all",
        ""
    ),
    rule!(
        "IG-H005",
        "waits are bounded: no endless loops or sleeps without activeDeadlineSeconds",
        "all",
        ""
    ),
    rule!(
        "IG-H006",
        "init containers do not inflate the pod's effective request beyond its app containers",
        "all",
        ""
    ),
    rule!(
        "IG-H007",
        "hardened securityContext: not privileged, no escalation, non-root, drop ALL",
        "all",
        ""
    ),
    rule!(
        "IG-H008",
        "at most maxInitContainers init containers (default 8)",
        "all",
        ""
    ),
    rule!(
        "IG-H009",
        "warning: a bare pod with init containers and restartPolicy Never fails for good on one error",
        "all",
        ""
    ),
];

pub const IMAGE_PINNED: &str = "IG-H001";
pub const IMAGE_DIGEST: &str = "IG-H002";
pub const IMAGE_REGISTRY: &str = "IG-H003";
pub const RESOURCES_SET: &str = "IG-H004";
pub const BOUNDED_EXECUTION: &str = "IG-H005";
pub const EFFECTIVE_REQUEST: &str = "IG-H006";
pub const SECURITY_CONTEXT: &str = "IG-H007";
pub const MAX_INIT_CONTAINERS: &str = "IG-H008";
pub const RESTART_NEVER: &str = "IG-H009";

/// Settings of `init-container-hygiene`; every field has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct HygieneSettings {
    /// IG-H001: images carry a tag other than `latest`, or a digest.
    pub pinned_images: bool,
    /// IG-H002: images carry a digest.
    pub require_digest: bool,
    /// IG-H003: registries or repository prefixes images must come from; empty allows any.
    pub allowed_registries: Vec<String>,
    /// IG-H004: resources every init container must request.
    pub required_requests: Vec<String>,
    /// IG-H004: resources every init container must limit.
    pub required_limits: Vec<String>,
    /// IG-H005: no endless waits unless the pod has `activeDeadlineSeconds`.
    pub bounded_execution: bool,
    /// IG-H006: the init peak may be at most this many times the app containers' requests.
    pub max_init_request_ratio: Option<f64>,
    /// IG-H006: absolute ceilings on the init peak, by resource.
    pub max_init_request: BTreeMap<String, String>,
    /// IG-H007: not privileged, no escalation, non-root, all capabilities dropped.
    pub hardened_security_context: bool,
    /// IG-H008: at most this many init containers.
    pub max_init_containers: Option<usize>,
    /// IG-H009: warn when a bare pod with init containers has `restartPolicy: Never`.
    pub warn_restart_policy_never: bool,
}

impl Default for HygieneSettings {
    fn default() -> Self {
        Self {
            pinned_images: true,
            require_digest: false,
            allowed_registries: Vec::new(),
            required_requests: vec!["cpu".into(), "memory".into()],
            required_limits: vec!["cpu".into(), "memory".into()],
            bounded_execution: true,
            max_init_request_ratio: Some(1.0),
            max_init_request: BTreeMap::new(),
            hardened_security_context: true,
            max_init_containers: Some(8),
            warn_restart_policy_never: true,
        }
    }
}

#[derive(Debug)]
pub struct InitContainerHygiene {
    settings: HygieneSettings,
    max_init_request: Vec<(String, Quantity)>,
}

impl InitContainerHygiene {
    pub fn new(settings: HygieneSettings) -> Result<Self, crate::SettingsError> {
        if let Some(ratio) = settings
            .max_init_request_ratio
            .filter(|r| !(r.is_finite() && *r > 0.0))
        {
            return Err(crate::SettingsError::new(format!(
                "maxInitRequestRatio: must be a positive number, got {ratio}"
            )));
        }
        let max_init_request = settings
            .max_init_request
            .iter()
            .map(|(name, text)| {
                Quantity::parse(text)
                    .map(|q| (name.clone(), q))
                    .map_err(|e| {
                        crate::SettingsError::new(format!("maxInitRequest.{name}: {text:?}: {e}"))
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            settings,
            max_init_request,
        })
    }

    pub fn from_settings(settings: &serde_json::Value) -> Result<Self, crate::SettingsError> {
        Self::new(crate::settings::parse(settings)?)
    }
}

impl Policy for InitContainerHygiene {
    fn evaluate(&self, request: &Request) -> Result<Outcome, PolicyError> {
        let Some(workload) = request.workload()? else {
            return Ok(Outcome::default());
        };
        let mut outcome = Outcome::default();
        let found = &mut outcome.violations;
        let s = &self.settings;
        for (index, container) in workload.init_containers().iter().enumerate() {
            let path = workload.container_path(ContainerKind::Init, index);
            self.check_image(container, &path, found);
            self.check_resources(container, &path, found);
            if s.bounded_execution
                && workload.spec.active_deadline_seconds.is_none()
                && !initguard_core::workload::is_sidecar(container)
            {
                check_bounded(container, &path, found);
            }
            if s.hardened_security_context {
                check_security_context(
                    container,
                    workload.spec.security_context.as_ref(),
                    &path,
                    found,
                );
            }
        }
        self.check_effective_request(workload, found);
        let count = workload.init_containers().len();
        if let Some(max) = s.max_init_containers.filter(|max| count > *max) {
            found.push(Violation::at(
                MAX_INIT_CONTAINERS,
                &workload.spec_path().field("initContainers"),
                format!("Too many: {count}: must have at most {max} items"),
            ));
        }
        if s.warn_restart_policy_never && restarts_never(workload) {
            outcome.warnings.push(Violation::at(
                RESTART_NEVER,
                &workload.spec_path().field("restartPolicy"),
                "Never with init containers: one failed init container fails the pod for good",
            ));
        }
        Ok(outcome)
    }
}

impl InitContainerHygiene {
    fn check_image(&self, container: &Container, path: &FieldPath, found: &mut Vec<Violation>) {
        let Some(image) = container.image.as_deref().filter(|i| !i.is_empty()) else {
            return;
        };
        let path = || path.field("image");
        let reference = ImageRef::parse(image);
        let s = &self.settings;
        if s.pinned_images {
            match reference.unpinned() {
                Some(Unpinned::NoTag) => found.push(Violation::at(
                    IMAGE_PINNED,
                    &path(),
                    format!("image {image:?} has no tag: pin a version tag or a digest"),
                )),
                Some(Unpinned::Latest) => found.push(Violation::at(
                    IMAGE_PINNED,
                    &path(),
                    format!("image {image:?} uses the floating tag \"latest\": pin a version tag or a digest"),
                )),
                None => {}
            }
        }
        if s.require_digest && reference.digest.is_none() {
            found.push(Violation::at(
                IMAGE_DIGEST,
                &path(),
                format!(
                    "image {image:?} is not pinned by digest: use {}@sha256:<digest>",
                    reference.repository
                ),
            ));
        }
        if !s.allowed_registries.is_empty()
            && !s.allowed_registries.iter().any(|r| reference.is_from(r))
        {
            found.push(Violation::at(
                IMAGE_REGISTRY,
                &path(),
                format!(
                    "image {image:?} ({}) is not from an allowed registry: {}",
                    reference.full_repository(),
                    s.allowed_registries.join(", ")
                ),
            ));
        }
    }

    fn check_resources(&self, container: &Container, path: &FieldPath, found: &mut Vec<Violation>) {
        let resources = container.resources.as_ref();
        let lists = [
            (
                "requests",
                "request",
                &self.settings.required_requests,
                resources.and_then(|r| r.requests.as_ref()),
            ),
            (
                "limits",
                "limit",
                &self.settings.required_limits,
                resources.and_then(|r| r.limits.as_ref()),
            ),
        ];
        for (field, noun, required, set) in lists {
            let missing: Vec<&str> = required
                .iter()
                .filter(|name| !set.is_some_and(|set| set.contains_key(*name)))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                found.push(Violation::at(
                    RESOURCES_SET,
                    &path.field("resources").field(field),
                    format!("Required value: set a {} {noun}", missing.join(" and ")),
                ));
            }
        }
    }

    /// The scheduler reserves, for the pod's whole life, the larger of the app containers'
    /// requests (with sidecars) and the peak of the init phase: each init container's request
    /// plus the sidecars started before it.
    fn check_effective_request(&self, workload: &Workload, found: &mut Vec<Violation>) {
        let s = &self.settings;
        if s.max_init_request_ratio.is_none() && self.max_init_request.is_empty() {
            return;
        }
        let request_of = |container: &Container, resource: &str| {
            container
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get(resource))
                .and_then(|q| Quantity::parse(&q.0).ok())
                .unwrap_or_default()
        };
        let mut resources: Vec<&str> = vec!["cpu", "memory"];
        resources.extend(self.max_init_request.iter().map(|(name, _)| name.as_str()));
        resources.dedup();
        let path = workload.spec_path().field("initContainers");
        for resource in resources {
            let mut sidecars = Quantity::ZERO;
            let mut peak = Quantity::ZERO;
            for container in workload.init_containers() {
                let request = request_of(container, resource);
                peak = peak.max(request + sidecars);
                if initguard_core::workload::is_sidecar(container) {
                    sidecars = sidecars + request;
                }
            }
            let app: Quantity = workload
                .app_containers()
                .iter()
                .map(|c| request_of(c, resource))
                .sum::<Quantity>()
                + sidecars;
            if let Some(ratio) = s.max_init_request_ratio
                && !app.is_zero()
                && peak.ratio(app) > ratio
            {
                found.push(Violation::at(
                    EFFECTIVE_REQUEST,
                    &path,
                    format!(
                        "init containers raise the pod's effective {resource} request to {peak}, {:.1}x the {app} of its app containers (at most {ratio}x): the scheduler reserves the larger for the pod's whole life",
                        peak.ratio(app)
                    ),
                ));
            }
            if let Some((_, max)) = self
                .max_init_request
                .iter()
                .find(|(name, _)| name == resource)
                && peak > *max
            {
                found.push(Violation::at(
                    EFFECTIVE_REQUEST,
                    &path,
                    format!("init containers request up to {peak} {resource}, above the ceiling of {max}"),
                ));
            }
        }
    }
}

fn check_bounded(container: &Container, path: &FieldPath, found: &mut Vec<Violation>) {
    let command = container.command.as_deref().unwrap_or_default();
    let args = container.args.as_deref().unwrap_or_default();
    let words: Vec<&str> = command.iter().chain(args).map(String::as_str).collect();
    if let Some(reason) = unbounded_reason(&words) {
        let field = if command.is_empty() {
            "args"
        } else {
            "command"
        };
        found.push(Violation::at(
            BOUNDED_EXECUTION,
            &path.field(field),
            format!("{reason} and the pod sets no activeDeadlineSeconds: add a retry bound or `timeout`, or the pod may wait forever"),
        ));
    }
}

/// Each control is one Pod Security Standards check (`privileged` in baseline, the others in
/// restricted) asked of every init container, so each finding names the check it restates.
fn check_security_context(
    container: &Container,
    pod: Option<&PodSecurityContext>,
    path: &FieldPath,
    found: &mut Vec<Violation>,
) {
    let context = container.security_context.as_ref();
    let path = || path.field("securityContext");
    let name = container.name.as_str();
    if context.and_then(|c| c.privileged) == Some(true) {
        found.push(
            Violation::at(
                SECURITY_CONTEXT,
                &path().field("privileged"),
                "Invalid value: true: init containers must not run privileged",
            )
            .restating("privileged", name),
        );
    }
    let escalation = match context.and_then(|c| c.allow_privilege_escalation) {
        Some(false) => None,
        Some(true) => Some("Invalid value: true: must be false"),
        None => Some("Required value: must be false"),
    };
    if let Some(message) = escalation {
        found.push(
            Violation::at(
                SECURITY_CONTEXT,
                &path().field("allowPrivilegeEscalation"),
                message,
            )
            .restating("allowPrivilegeEscalation", name),
        );
    }
    let own = context.and_then(|c| c.run_as_non_root);
    let non_root = match (own, pod.and_then(|p| p.run_as_non_root)) {
        (Some(true), _) | (None, Some(true)) => None,
        (Some(false), _) => Some("Invalid value: false: must be true".to_owned()),
        (None, Some(false)) => {
            Some("Required value: must be true (the pod's securityContext sets false)".to_owned())
        }
        (None, None) => {
            Some("Required value: must be true, here or in the pod's securityContext".to_owned())
        }
    };
    if let Some(message) = non_root {
        found.push(
            Violation::at(SECURITY_CONTEXT, &path().field("runAsNonRoot"), message)
                .restating("runAsNonRoot", name),
        );
    }
    let drop = context
        .and_then(|c| c.capabilities.as_ref())
        .and_then(|c| c.drop.as_ref());
    let drop_message = match drop {
        Some(drop) if drop.iter().any(|d| d == "ALL") => None,
        Some(drop) if !drop.is_empty() => Some(format!(
            "Invalid value: {}: must include \"ALL\"",
            serde_json::Value::from(drop.clone())
        )),
        _ => Some("Required value: must include \"ALL\"".to_owned()),
    };
    if let Some(message) = drop_message {
        found.push(
            Violation::at(
                SECURITY_CONTEXT,
                &path().field("capabilities").field("drop"),
                message,
            )
            .restating("capabilities_restricted", name),
        );
    }
}

/// A bare pod (one no controller will replace) that never restarts and has regular init
/// containers. Jobs retry with new pods, so their templates are left alone.
fn restarts_never(workload: &Workload) -> bool {
    let owned = workload
        .metadata
        .owner_references
        .as_ref()
        .is_some_and(|refs| !refs.is_empty());
    workload.kind == initguard_core::WorkloadKind::Pod
        && !owned
        && workload.spec.restart_policy.as_deref() == Some("Never")
        && workload
            .init_containers()
            .iter()
            .any(|c| !initguard_core::workload::is_sidecar(c))
}
