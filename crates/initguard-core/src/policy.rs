//! The policy contract shared by native built-ins and WASM components.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::violation::Violation;

use crate::request::Request;

/// A rule evaluated against admission requests.
///
/// Implementations are shared between threads and must not keep per-request state: the same
/// instance answers concurrent requests.
pub trait Policy: Send + Sync + fmt::Debug {
    /// Whether this policy may return a patch. Mutating policies run first, in order, each on
    /// the result of the previous one; validating policies then see the final object.
    fn mutating(&self) -> bool {
        false
    }

    /// Evaluates one request. A broken rule or object is an `Err`, a rule that is not met is a
    /// violation in the `Ok` outcome.
    fn evaluate(&self, request: &Request) -> Result<Outcome, PolicyError>;

    /// The standard this policy applies, when several pipeline entries applying it act as one
    /// admission plugin: Pod Security Admission adds no warnings to a request its enforce
    /// level denies, so a warn entry of a profile says nothing once an enforce entry of the same
    /// profile denies.
    fn profile(&self) -> Option<&'static str> {
        None
    }
}

/// What a policy found. Built with [`Outcome::default`] and the `with_` constructors, so that
/// fields can be added without breaking policies.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Outcome {
    /// Unmet rules: they deny in enforce mode and warn in warn mode.
    pub violations: Vec<Violation>,
    /// Advice that never denies, whatever the mode: findings like violations, with a rule id
    /// and a path where the policy has them.
    pub warnings: Vec<Violation>,
    /// How the policy changed the object it was given; `None` when it did not.
    pub mutation: Option<Mutation>,
}

impl Outcome {
    /// An outcome that finds these violations.
    pub fn with_violations(violations: Vec<Violation>) -> Self {
        Self {
            violations,
            ..Self::default()
        }
    }

    /// An outcome that changes the object.
    pub fn with_mutation(mutation: Mutation) -> Self {
        Self {
            mutation: Some(mutation),
            ..Self::default()
        }
    }

    /// The same outcome, with these warnings too.
    #[must_use]
    pub fn and_warnings(mut self, warnings: Vec<Violation>) -> Self {
        self.warnings.extend(warnings);
        self
    }
}

/// A mutating policy's change to the object.
#[derive(Debug, Clone, PartialEq)]
pub enum Mutation {
    /// The whole changed object, as a native policy builds it.
    Object(serde_json::Value),
    /// RFC 6902 operations on the object it was given, as a WebAssembly policy returns them.
    Patch(json_patch::Patch),
}

/// A policy that could not give a verdict. Its `failurePolicy` decides what happens next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the object cannot be evaluated: {0}")]
    /// The object is not what the policy can read (a malformed pod spec).
    InvalidObject(String),
    #[error("the policy reported an error: {0}")]
    /// The policy said it cannot decide, and why.
    Reported(String),
    #[error("the policy trapped: {0}")]
    /// A WebAssembly policy trapped.
    Trap(String),
    #[error("the policy ran past its deadline of {}", humantime::format_duration(*.0))]
    /// A WebAssembly policy ran out of time.
    Timeout(Duration),
    #[error("the policy exceeded its memory limit: {0}")]
    /// A WebAssembly policy ran out of memory.
    OutOfMemory(String),
    #[error("the policy returned a malformed outcome: {0}")]
    /// A WebAssembly policy answered what is not an outcome.
    InvalidOutcome(String),
    #[error("the policy returned a patch that does not apply: {0}")]
    /// A policy's patch does not apply to the object it was given.
    InvalidPatch(String),
}

/// An object whose pod template cannot be read cannot be judged: a policy failure, handled by
/// the policy's failurePolicy.
impl From<crate::workload::WorkloadError> for PolicyError {
    fn from(error: crate::workload::WorkloadError) -> Self {
        Self::InvalidObject(error.to_string())
    }
}

/// What a violation does to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Violations deny the request.
    #[default]
    Enforce,
    /// Violations are returned as warnings.
    Warn,
    /// Violations are only logged and counted; patches are not applied.
    Audit,
}

impl Mode {
    /// The mode as config writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Warn => "warn",
            Self::Audit => "audit",
        }
    }
}

/// What a policy error does to the request, as in the webhook configuration's field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum FailurePolicy {
    /// Deny the request (code 500), naming the policy.
    #[default]
    Fail,
    /// Allow the request with a warning naming the policy.
    Ignore,
}
