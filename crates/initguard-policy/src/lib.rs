//! SDK for initguard WebAssembly policies.
//!
//! A policy is one function over a typed [`Request`]: the request's facts (kind, operation,
//! namespace, user, …), the object's labels and annotations, the pod spec's [`Container`]s
//! with their apiserver field paths under every workload kind's prefix, and any subtree of the
//! object as JSON text. In WebAssembly these are the host's `review` resource: the host has
//! read the AdmissionReview once for every policy, and each call copies only what it returns.
//! The containers arrive as one [`Containers`] table (a text and offsets into it) whose
//! [`Container`]s borrow their strings: reading them allocates nothing in the guest.
//! Natively (`cargo test`) the same views are backed by initguard's own parsed request, so a
//! policy's tests see what it sees in the cluster.
//!
//! Settings are a serde type. The host checks them once, at load (`validate-settings`), and
//! hands them to each evaluation as typed values, not text to parse again.
//!
//! ```ignore
//! use initguard_policy::{ContainerKind, Error, Outcome, Policy, Request, Violation, export_policy};
//!
//! #[derive(Default, serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Settings { banned: Vec<String> }
//!
//! struct NoBannedImages;
//!
//! impl Policy for NoBannedImages {
//!     type Settings = Settings;
//!     fn evaluate(request: &Request<'_>, settings: &Settings) -> Result<Outcome, Error> {
//!         let mut outcome = Outcome::default();
//!         for container in &request.containers()? {
//!             if container.image().is_some_and(|i| settings.banned.iter().any(|b| b == i)) {
//!                 let path = container.field("image");
//!                 outcome.violations.push(Violation::new("BAN-001", Some(path), "banned"));
//!             }
//!         }
//!         Ok(outcome)
//!     }
//! }
//!
//! export_policy!(NoBannedImages);
//! ```
//!
//! A guest built with this crate compiles neither k8s-openapi nor serde_json. A policy that
//! needs the whole object typed enables the `full` feature, for [`Request::object_as`] and
//! [`Request::workload`], and pays for both in build time and in each evaluation.
//!
//! The contract, `initguard:policy@0.3.0`, is `wit/policy.wit`, the single source of host and
//! guest bindings; see this crate's README for its versioning.

#![warn(missing_docs)]

pub use initguard_core::image::ImageRef;
pub use initguard_core::operation::PatchOp;
pub use initguard_core::tree::Tree;
pub use initguard_core::view::{Container, Containers};
pub use initguard_core::{self as core, ContainerKind, FieldPath, Violation};
pub use request::{GroupVersionKind, Operation, Request, UserInfo};

pub mod json;
mod request;
#[cfg(not(target_arch = "wasm32"))]
pub mod test;

#[doc(hidden)]
#[allow(
    clippy::all,
    clippy::pedantic,
    unsafe_code,
    missing_debug_implementations,
    missing_docs
)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "policy",
        pub_export_macro: true,
        export_macro_name: "export_policy_world",
        default_bindings_module: "initguard_policy::bindings",
    });
}

use serde::de::DeserializeOwned;

/// Why a policy gives no verdict, or why its settings cannot be used: what initguard reports
/// (a failed policy, which its `failurePolicy` handles; settings refused at load).
///
/// Made from a message (`Err("registries: list one".into())`), or with `?` from the errors a
/// policy meets, such as a pod spec that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    /// An error saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// What the error says.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Self(message.to_owned())
    }
}

#[cfg(any(feature = "full", not(target_arch = "wasm32")))]
impl From<initguard_core::WorkloadError> for Error {
    fn from(error: initguard_core::WorkloadError) -> Self {
        Self(error.to_string())
    }
}

#[cfg(any(feature = "full", not(target_arch = "wasm32")))]
impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Self(error.to_string())
    }
}

/// What a policy found in one request. Built with [`Outcome::default`] or the `with_`
/// constructors, so that fields can be added without breaking policies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outcome {
    /// Unmet rules: they deny under `mode: enforce`, warn under `warn`, are logged under
    /// `audit`.
    pub violations: Vec<Violation>,
    /// Advice that never denies, with a rule id and path where the policy has them.
    pub warnings: Vec<Violation>,
    /// Operations on the request's object, applied in order; only mutating policies may
    /// return any.
    pub patch: Vec<PatchOp>,
}

impl Outcome {
    /// An outcome that finds these violations.
    pub fn with_violations(violations: Vec<Violation>) -> Self {
        Self {
            violations,
            ..Self::default()
        }
    }

    /// An outcome that changes the object with these operations.
    pub fn with_patch(patch: Vec<PatchOp>) -> Self {
        Self {
            patch,
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

/// A policy: settings and one function over a request.
pub trait Policy {
    /// Settings from the config's `settings:`; none (or `null`) gives `Default`.
    type Settings: DeserializeOwned + Default;

    /// Whether the policy returns patches; mutating policies run before validating ones.
    const MUTATING: bool = false;

    /// Extra checks of settings beyond their type, run once at load.
    fn check_settings(_settings: &Self::Settings) -> Result<(), Error> {
        Ok(())
    }

    /// Evaluates one request. Broken input is an `Err` (a policy failure, handled by the
    /// failurePolicy); a rule that is not met is a violation in the outcome.
    fn evaluate(request: &Request<'_>, settings: &Self::Settings) -> Result<Outcome, Error>;
}

/// Reads settings as `validate-settings` does; `null` (no settings) means the defaults.
pub fn parse_settings<P: Policy>(settings: &Tree) -> Result<P::Settings, Error> {
    let parsed = match settings.0.first() {
        None | Some(initguard_core::tree::Node::Null) => P::Settings::default(),
        Some(_) => settings
            .deserialize()
            .map_err(|e| format!("invalid settings: {e}"))?,
    };
    P::check_settings(&parsed)?;
    Ok(parsed)
}

/// Writes to initguard's log from inside a policy (natively, to stderr).
pub fn log(level: bindings::initguard::policy::host::Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    bindings::initguard::policy::host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

#[doc(hidden)]
#[cfg(target_arch = "wasm32")]
pub mod glue {
    use super::{Policy, Request, bindings};
    use bindings::initguard::policy::request::Review;
    use bindings::initguard::policy::types::{
        Finding, FromOp, JsonNode, Outcome as WitOutcome, PatchOp as WitPatchOp, PolicyInfo,
        ValueOp,
    };
    use initguard_core::operation::PatchOp;
    use initguard_core::tree::{Node, Tree};

    pub fn info<P: Policy>() -> PolicyInfo {
        PolicyInfo {
            mutating: P::MUTATING,
        }
    }

    fn tree(nodes: Vec<JsonNode>) -> Tree {
        Tree(
            nodes
                .into_iter()
                .map(|node| match node {
                    JsonNode::Null => Node::Null,
                    JsonNode::Boolean(b) => Node::Boolean(b),
                    JsonNode::Integer(i) => Node::Integer(i),
                    JsonNode::Float(f) => Node::Float(f),
                    JsonNode::Text(s) => Node::Text(s),
                    JsonNode::Array(items) => Node::Array(items),
                    JsonNode::Object(fields) => Node::Object(fields),
                })
                .collect(),
        )
    }

    pub fn validate_settings<P: Policy>(settings: Vec<JsonNode>) -> Result<(), String> {
        super::parse_settings::<P>(&tree(settings))
            .map(drop)
            .map_err(|e| e.0)
    }

    pub fn evaluate<P: Policy>(
        review: &Review,
        settings: Vec<JsonNode>,
    ) -> Result<WitOutcome, String> {
        let settings = super::parse_settings::<P>(&tree(settings)).map_err(|e| e.0)?;
        let outcome = P::evaluate(&Request::of_review(review), &settings).map_err(|e| e.0)?;
        let finding = |v: initguard_core::Violation| Finding {
            rule: (!v.rule.is_empty()).then(|| v.rule.into_owned()),
            path: v.path,
            message: v.message,
        };
        Ok(WitOutcome {
            violations: outcome.violations.into_iter().map(finding).collect(),
            warnings: outcome.warnings.into_iter().map(finding).collect(),
            patch: outcome
                .patch
                .into_iter()
                .map(|op| match op {
                    PatchOp::Add { path, value } => WitPatchOp::Add(ValueOp { path, value }),
                    PatchOp::Remove { path } => WitPatchOp::Remove(path),
                    PatchOp::Replace { path, value } => {
                        WitPatchOp::Replace(ValueOp { path, value })
                    }
                    PatchOp::Move { from, path } => WitPatchOp::Move(FromOp { from, path }),
                    PatchOp::Copy { from, path } => WitPatchOp::Copy(FromOp { from, path }),
                    PatchOp::Test { path, value } => WitPatchOp::Test(ValueOp { path, value }),
                })
                .collect(),
        })
    }
}

/// Exports a [`Policy`] as the component's `initguard:policy` world (in WebAssembly builds;
/// natively it expands to nothing, and the policy is run by [`test`]).
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        pub struct __InitguardExport;

        #[cfg(target_arch = "wasm32")]
        impl $crate::bindings::Guest for __InitguardExport {
            fn info() -> $crate::bindings::initguard::policy::types::PolicyInfo {
                $crate::glue::info::<$policy>()
            }
            fn validate_settings(
                settings: ::std::vec::Vec<$crate::bindings::initguard::policy::types::JsonNode>,
            ) -> ::std::result::Result<(), ::std::string::String> {
                $crate::glue::validate_settings::<$policy>(settings)
            }
            fn evaluate(
                review: &$crate::bindings::initguard::policy::request::Review,
                settings: ::std::vec::Vec<$crate::bindings::initguard::policy::types::JsonNode>,
            ) -> ::std::result::Result<
                $crate::bindings::initguard::policy::types::Outcome,
                ::std::string::String,
            > {
                $crate::glue::evaluate::<$policy>(review, settings)
            }
        }

        #[cfg(target_arch = "wasm32")]
        $crate::bindings::export_policy_world!(__InitguardExport with_types_in $crate::bindings);
    };
}
