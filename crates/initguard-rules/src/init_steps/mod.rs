//! `init-steps`: standard, hardened, bounded init containers injected on request.
//!
//! A pod opts in with the label `initguard.dev/inject: enabled` (or its namespace does) and asks
//! for steps with `initguard.dev/<step>` annotations; each step becomes one init container per
//! item of its annotation, from the catalog in [`catalog`] or from steps the cluster's
//! configuration adds. The grammar of the annotations is in [`grammar`], the change to the pod
//! in [`inject`]. The policy never bakes pod facts into commands: the pod's name, namespace and
//! IP reach each step through the downward API, and every parameter through the environment.

pub mod catalog;
mod container;
mod grammar;
mod inject;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use initguard_core::request::Operation;
use initguard_core::{Mutation, Outcome, Policy, PolicyError, Request, Violation, WorkloadKind};
use serde::Deserialize;

use crate::SettingsError;
use crate::text::is_dns1123_label;
use catalog::{BUILTIN_STEPS, BuiltinStep, Resources, option};

pub const NAME: &str = "init-steps";

/// The rules of this policy, documented by example (`initguard rules`).
pub const RULES: &[crate::RuleDoc] = &[
    rule!(
        "IG-S001",
        "init step annotations name known steps and options, with well-formed values",
        "all",
        ""
    ),
    rule!(
        "IG-S002",
        "requested init steps fit the pod: no clashing container names, volumes or mount paths",
        "all",
        ""
    ),
];

/// IG-S001: step annotations name known steps and are well-formed.
pub const ANNOTATIONS: &str = "IG-S001";
/// IG-S002: the steps fit the pod: no clashing containers, volumes or mount paths.
pub const FITS_THE_POD: &str = "IG-S002";

/// The prefix of every annotation the policy reads or writes.
pub const ANNOTATION_PREFIX: &str = "initguard.dev/";
/// The opt-in label, on the pod or its namespace, with the value [`OPT_IN_VALUE`].
pub const OPT_IN_LABEL: &str = "initguard.dev/inject";
pub const OPT_IN_VALUE: &str = "enabled";
/// The record of what was injected, so a second pass replaces it instead of adding to it.
pub const STATUS_ANNOTATION: &str = "initguard.dev/injected";

/// Where injected steps go among the pod's own init containers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    #[default]
    Before,
    After,
}

/// Settings of `init-steps`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct InitStepsSettings {
    /// Where steps go unless their own settings say otherwise.
    pub placement: Placement,
    /// Built-in steps pods may not ask for.
    pub disabled: Vec<String>,
    /// Changes to built-in steps, and steps of the cluster's own, by name.
    pub steps: Vec<StepSettings>,
}

/// One step's settings: for a built-in, what to change; for a new step, its definition
/// (`image` and `command` required).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct StepSettings {
    pub name: String,
    pub image: Option<String>,
    /// A new step's command. It reads the annotation's value from `INITGUARD_VALUE` and its
    /// time bound from `INITGUARD_TIMEOUT` (seconds); Kubernetes expands `$(INITGUARD_VALUE)`.
    pub command: Option<Vec<String>>,
    /// A new step's command bounds its own run time; otherwise it runs under `timeout`.
    pub bounded: bool,
    /// A new step's shared emptyDir, mounted into it and into the app containers.
    pub mount_path: Option<String>,
    pub resources: Option<Resources>,
    #[serde(default, with = "initguard_core::duration::option")]
    pub timeout: Option<Duration>,
    #[serde(default, with = "initguard_core::duration::option")]
    pub max_timeout: Option<Duration>,
    #[serde(default, with = "initguard_core::duration::option")]
    pub interval: Option<Duration>,
    pub placement: Option<Placement>,
    /// Pods may pick another image with `initguard.dev/<step>-image`.
    pub allow_image_override: bool,
}

/// What a step runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Builtin(BuiltinStep),
    Custom {
        command: Vec<String>,
        bounded: bool,
        mount_path: Option<String>,
    },
}

/// A step as this cluster runs it: the catalog's definition with the configuration applied.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub action: Action,
    pub image: String,
    pub allow_image_override: bool,
    pub resources: Resources,
    pub timeout: Duration,
    pub max_timeout: Duration,
    pub interval: Duration,
    pub placement: Placement,
}

impl Step {
    fn options(&self) -> &'static [&'static str] {
        match &self.action {
            Action::Builtin(step) => step.options(),
            Action::Custom { .. } => &[option::TIMEOUT, option::IMAGE, option::PLACEMENT],
        }
    }
}

const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct InitSteps {
    /// Every step pods may ask for, in the order they run.
    steps: Vec<Step>,
    /// Built-in steps the configuration turned off, so a pod asking for one learns why.
    disabled: HashSet<String>,
}

impl InitSteps {
    pub fn new(settings: InitStepsSettings) -> Result<Self, SettingsError> {
        let mut disabled = HashSet::new();
        for (i, name) in settings.disabled.iter().enumerate() {
            if BuiltinStep::from_name(name).is_none() {
                return Err(SettingsError::new(format!(
                    "disabled[{i}]: {name:?} is not a built-in step: expected one of {}",
                    builtin_names()
                )));
            }
            disabled.insert(name.clone());
        }
        let mut steps: Vec<Step> = BUILTIN_STEPS
            .iter()
            .filter(|s| !disabled.contains(s.name()))
            .map(|&s| Step {
                name: s.name().to_owned(),
                action: Action::Builtin(s),
                image: s.default_image().to_owned(),
                allow_image_override: false,
                resources: s.default_resources(),
                timeout: s.default_timeout(),
                max_timeout: s.default_max_timeout(),
                interval: DEFAULT_INTERVAL,
                placement: settings.placement,
            })
            .collect();
        let mut seen = HashSet::new();
        for (i, configured) in settings.steps.into_iter().enumerate() {
            let at = |message: String| SettingsError::new(format!("steps[{i}]: {message}"));
            if !seen.insert(configured.name.clone()) {
                return Err(at(format!("{:?} is configured twice", configured.name)));
            }
            if disabled.contains(&configured.name) {
                return Err(at(format!(
                    "{:?} is both configured and disabled",
                    configured.name
                )));
            }
            let step = if let Some(builtin) = steps.iter_mut().find(|s| s.name == configured.name) {
                override_builtin(builtin, configured).map_err(at)?;
                builtin.clone()
            } else {
                let step = custom_step(configured, settings.placement).map_err(at)?;
                steps.push(step.clone());
                step
            };
            check_step(&step).map_err(at)?;
        }
        Ok(Self { steps, disabled })
    }

    pub fn from_settings(settings: &serde_json::Value) -> Result<Self, SettingsError> {
        Self::new(crate::settings::parse(settings)?)
    }

    fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }
}

fn builtin_names() -> String {
    BUILTIN_STEPS
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn override_builtin(step: &mut Step, configured: StepSettings) -> Result<(), String> {
    if configured.command.is_some() || configured.mount_path.is_some() || configured.bounded {
        return Err(format!(
            "{:?} is a built-in step: its command, mountPath and bounded cannot be changed",
            step.name
        ));
    }
    if let Some(image) = configured.image {
        step.image = image;
    }
    if let Some(resources) = configured.resources {
        step.resources = resources;
    }
    if let Some(timeout) = configured.timeout {
        step.timeout = timeout;
    }
    if let Some(max) = configured.max_timeout {
        step.max_timeout = max;
    }
    if let Some(interval) = configured.interval {
        step.interval = interval;
    }
    if let Some(placement) = configured.placement {
        step.placement = placement;
    }
    step.allow_image_override = configured.allow_image_override;
    Ok(())
}

/// The longest custom step name that still leaves room for `initguard-` and an item number in
/// a 63-character container name.
const MAX_STEP_NAME: usize = 40;

fn custom_step(configured: StepSettings, default_placement: Placement) -> Result<Step, String> {
    let name = configured.name;
    if name.len() > MAX_STEP_NAME || !is_dns1123_label(&name) || name == "injected" {
        return Err(format!(
            "name {name:?}: a step name is a DNS-1123 label of at most {MAX_STEP_NAME} characters, other than \"injected\""
        ));
    }
    if BUILTIN_STEPS
        .iter()
        .flat_map(|s| s.options().iter().map(move |o| format!("{}-{o}", s.name())))
        .any(|option| option == name)
    {
        return Err(format!(
            "name {name:?} reads as an option of a built-in step"
        ));
    }
    let image = configured
        .image
        .ok_or_else(|| format!("{name:?} is not a built-in step, so it needs an image"))?;
    let command = configured
        .command
        .filter(|c| !c.is_empty())
        .ok_or_else(|| format!("{name:?} is not a built-in step, so it needs a command"))?;
    let timeout = configured.timeout.unwrap_or(Duration::from_mins(5));
    Ok(Step {
        action: Action::Custom {
            command,
            bounded: configured.bounded,
            mount_path: configured.mount_path,
        },
        image,
        allow_image_override: configured.allow_image_override,
        resources: configured
            .resources
            .unwrap_or_else(|| BuiltinStep::WaitForDns.default_resources()),
        timeout,
        max_timeout: configured
            .max_timeout
            .unwrap_or(timeout.max(Duration::from_mins(20))),
        interval: configured.interval.unwrap_or(DEFAULT_INTERVAL),
        placement: configured.placement.unwrap_or(default_placement),
        name,
    })
}

/// What every step must be, built-in or not: pinned, bounded, with parseable resources.
fn check_step(step: &Step) -> Result<(), String> {
    grammar::check_image(&step.image).map_err(|e| format!("image: {e}"))?;
    if step.timeout.is_zero() || step.timeout > step.max_timeout {
        return Err(format!(
            "timeout: {} must be more than zero and at most maxTimeout ({})",
            humantime::format_duration(step.timeout),
            humantime::format_duration(step.max_timeout)
        ));
    }
    if step.interval.is_zero() || step.interval.subsec_nanos() != 0 {
        return Err("interval: must be a whole number of seconds, at least 1s".to_owned());
    }
    for (field, quantity) in [
        ("resources.requests.cpu", &step.resources.requests.cpu),
        ("resources.requests.memory", &step.resources.requests.memory),
        ("resources.limits.cpu", &step.resources.limits.cpu),
        ("resources.limits.memory", &step.resources.limits.memory),
    ] {
        crate::quantity::Quantity::parse(quantity)
            .map_err(|e| format!("{field}: {quantity:?}: {e}"))?;
    }
    if let Action::Custom {
        mount_path: Some(path),
        ..
    } = &step.action
    {
        grammar::check_mount_path(path).map_err(|e| format!("mountPath: {e}"))?;
    }
    Ok(())
}

impl Policy for InitSteps {
    fn mutating(&self) -> bool {
        true
    }

    fn evaluate(&self, request: &Request) -> Result<Outcome, PolicyError> {
        let Some(workload) = request.workload()? else {
            return Ok(Outcome::default());
        };
        // A pod's init containers cannot change once it exists; templates can.
        let acts = match workload.kind {
            WorkloadKind::Pod => request.facts.operation == Operation::Create,
            _ => matches!(
                request.facts.operation,
                Operation::Create | Operation::Update
            ),
        };
        let opted_in = |labels: Option<&BTreeMap<String, String>>| {
            labels
                .and_then(|l| l.get(OPT_IN_LABEL))
                .is_some_and(|v| v == OPT_IN_VALUE)
        };
        if !acts
            || !(opted_in(workload.metadata.labels.as_ref())
                || opted_in(request.facts.namespace_labels.as_ref()))
        {
            return Ok(Outcome::default());
        }
        let metadata_path = workload.kind.metadata_path();
        let requested = match grammar::read(self, workload, &metadata_path) {
            Ok(requested) => requested,
            Err(violations) => {
                return Ok(Outcome::with_violations(violations));
            }
        };
        let injected_before = workload
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(STATUS_ANNOTATION));
        if requested.is_empty() && !injected_before {
            // Nothing to add or take out: the JSON tree of the object is never built.
            return Ok(Outcome::default());
        }
        let object = request
            .object()
            .ok_or_else(|| PolicyError::InvalidObject("the request has no object".to_owned()))?;
        match inject::apply(object, workload, &requested) {
            Ok(mutated) if mutated == *object => Ok(Outcome::default()),
            Ok(mutated) => Ok(Outcome::with_mutation(Mutation::Object(mutated))),
            Err(inject::Refusal::Conflict(path, message)) => {
                Ok(Outcome::with_violations(vec![Violation::at(
                    FITS_THE_POD,
                    &path,
                    message,
                )]))
            }
            Err(inject::Refusal::Object(message)) => Err(PolicyError::InvalidObject(message)),
        }
    }
}
