//! Findings of policies: what built-in and WebAssembly policies report, and what a denial or a
//! warning says.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use crate::path::FieldPath;

/// One unmet rule, at one place in the object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Violation {
    /// Stable id of the rule (`IG-V001`); WASM policies may leave it empty.
    pub rule: Cow<'static, str>,
    /// Field path in apiserver notation, when the violation is about one field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// What is wrong, and where useful how to fix it.
    pub message: String,
    /// The containers the finding names, when it names several in one message (a Pod
    /// Security check lists every container that fails it).
    #[serde(skip)]
    pub containers: Vec<String>,
    /// The rule this finding says again in its own words, for the containers it names: the
    /// pipeline leaves it out when that rule already reports them at least as severely.
    #[serde(skip)]
    pub restates: Option<&'static str>,
}

impl Violation {
    /// A violation of `rule` (empty when the policy names none) at `path` (in apiserver
    /// notation; `None` for the whole object).
    pub fn new(
        rule: impl Into<Cow<'static, str>>,
        path: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            rule: rule.into(),
            path,
            message: message.into(),
            ..Self::default()
        }
    }

    /// The same violation, naming the containers it is about (so that another policy's finding
    /// about the same containers can stand for it).
    #[must_use]
    pub fn for_containers(mut self, containers: Vec<String>) -> Self {
        self.containers = containers;
        self
    }

    /// A violation of `rule` at `path`.
    pub fn at(rule: &'static str, path: &FieldPath, message: impl Into<String>) -> Self {
        Self {
            rule: Cow::Borrowed(rule),
            path: Some(path.to_string()),
            message: message.into(),
            ..Self::default()
        }
    }

    /// A violation of `rule` about the object as a whole.
    pub fn object(rule: &'static str, message: impl Into<String>) -> Self {
        Self {
            rule: Cow::Borrowed(rule),
            message: message.into(),
            ..Self::default()
        }
    }

    /// A finding of no particular rule or field, as a 0.1 WASM policy's warnings are.
    pub fn message(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Self::default()
        }
    }

    /// Marks this finding, about `container`, as a restatement of `rule`.
    #[must_use]
    pub fn restating(mut self, rule: &'static str, container: &str) -> Self {
        self.restates = Some(rule);
        self.containers = vec![container.to_owned()];
        self
    }

    /// Whether this finding is `other`'s rule said again about containers `other` names.
    #[cfg(feature = "kubernetes")]
    pub(crate) fn restated_by(&self, other: &Self) -> bool {
        self.restates.is_some_and(|rule| other.rule == rule)
            && !self.containers.is_empty()
            && self.containers.iter().all(|c| other.containers.contains(c))
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
