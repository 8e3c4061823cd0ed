//! initguard's built-in native policies.
//!
//! Each built-in is a [`Policy`] built from its settings by [`builtin`]; each of its rules has a
//! stable id, a one-line summary and a failing and a passing example in [`rules`], which
//! `initguard rules` prints and the tests evaluate.

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
    /// that keeps it, in that order (`src/examples/<id>.yaml`).
    pub examples: &'static str,
}

/// A [`RuleDoc`] of the policy `NAME` in scope, with its examples from
/// `src/examples/<id>.yaml`.
macro_rules! rule {
    ($id:literal, $summary:expr, $releases:expr, $settings:expr) => {
        $crate::RuleDoc {
            id: $id,
            policy: NAME,
            summary: $summary,
            releases: $releases,
            settings: $settings,
            examples: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/src/examples/",
                $id,
                ".yaml"
            )),
        }
    };
}

pub mod hygiene;
pub mod init_steps;
pub mod pod_security;
pub mod quantity;
pub mod settings;
mod shell;
mod text;
pub mod validity;

/// Every rule of every built-in, each policy's in the order it documents them.
pub fn rules() -> impl Iterator<Item = &'static RuleDoc> {
    validity::RULES
        .iter()
        .chain(hygiene::RULES)
        .chain(pod_security::RULES)
        .chain(init_steps::RULES)
}
