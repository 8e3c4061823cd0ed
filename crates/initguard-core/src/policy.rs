//! The policy contract shared by native built-ins and WASM components.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::path::FieldPath;
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
}

/// What a policy found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub violations: Vec<Violation>,
    /// Advice that never denies, whatever the mode.
    pub warnings: Vec<String>,
    /// Changes to the object, relative to the object the policy was given.
    pub patch: Option<json_patch::Patch>,
}

/// One unmet rule, at one place in the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Stable id of the rule (`IG-V001`); WASM policies may leave it empty.
    pub rule: Cow<'static, str>,
    /// Field path in apiserver notation, when the violation is about one field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub message: String,
}

impl Violation {
    pub fn at(rule: &'static str, path: &FieldPath, message: impl Into<String>) -> Self {
        Self {
            rule: Cow::Borrowed(rule),
            path: Some(path.to_string()),
            message: message.into(),
        }
    }

    pub fn object(rule: &'static str, message: impl Into<String>) -> Self {
        Self {
            rule: Cow::Borrowed(rule),
            path: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{path}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A policy that could not give a verdict. Its `failurePolicy` decides what happens next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the object cannot be evaluated: {0}")]
    InvalidObject(String),
    #[error("the policy reported an error: {0}")]
    Reported(String),
    #[error("the policy trapped: {0}")]
    Trap(String),
    #[error("the policy ran past its deadline of {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("the policy exceeded its memory limit: {0}")]
    OutOfMemory(String),
    #[error("the policy returned a malformed outcome: {0}")]
    InvalidOutcome(String),
    #[error("the policy returned a patch that does not apply: {0}")]
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
