//! SDK for initguard WebAssembly policies.
//!
//! A policy is one function over a typed request: the [`Request`] of `initguard-core`, with the
//! pod-template view ([`Request::workload`]) and apiserver field paths for every workload kind,
//! exactly as the built-in policies see it. A policy that looks only at container images can
//! read [`Request::images`] instead: names and images borrowed from the request, every other
//! field skipped, which makes the evaluation several times cheaper. Settings are a serde type; a settings error becomes
//! the component's `validate-settings` error, so a bad config is refused at load.
//!
//! ```ignore
//! use initguard_policy::{Error, Outcome, Policy, Request, Violation, export_policy};
//!
//! #[derive(Default, serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Settings { banned: Vec<String> }
//!
//! struct NoBannedImages;
//!
//! impl Policy for NoBannedImages {
//!     type Settings = Settings;
//!     fn evaluate(request: &Request, settings: &Settings) -> Result<Outcome, Error> {
//!         let mut outcome = Outcome::default();
//!         if let Some(workload) = request.workload()? {
//!             for container in workload.containers() { /* ... */ }
//!         }
//!         Ok(outcome)
//!     }
//! }
//!
//! export_policy!(NoBannedImages);
//! ```
//!
//! Policies are plain Rust: unit-test them natively with [`test::evaluate`], build them for
//! `wasm32-wasip2`, and load the `.wasm` with `module:` in initguard's config.
//!
//! # The contract
//!
//! The WIT package `initguard:policy` in `wit/policy.wit` is the single source for host and
//! guest. `evaluate` receives the whole AdmissionReview (`admission.k8s.io/v1`) as JSON; for
//! offline checks initguard builds the review of a CREATE. The outcome's violations deny under
//! `mode: enforce`, warn under `warn`, and are only logged under `audit`; warnings never deny;
//! a patch is an RFC 6902 JSON Patch against the request's object and is accepted only from
//! policies whose `info` says they mutate.

#![warn(missing_docs)]

pub use initguard_core::image::ImageRef;
pub use initguard_core::k8s_openapi;
pub use initguard_core::{
    self as core, ContainerImage, ContainerKind, FieldPath, ImageView, Mutation, Outcome, Request,
    Violation, Workload, WorkloadKind,
};
pub use json_patch;

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
/// policy meets: a pod spec that cannot be read, JSON that does not parse.
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

impl From<initguard_core::WorkloadError> for Error {
    fn from(error: initguard_core::WorkloadError) -> Self {
        Self(error.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Self(error.to_string())
    }
}

/// A policy: settings and one function over a request.
pub trait Policy {
    /// Settings from the config's `settings:` (JSON); `{}` or no settings give `Default`.
    type Settings: DeserializeOwned + Default;

    /// Whether the policy returns patches; mutating policies run before validating ones.
    const MUTATING: bool = false;

    /// Extra checks of settings beyond their type, run once at load.
    fn check_settings(_settings: &Self::Settings) -> Result<(), Error> {
        Ok(())
    }

    /// Evaluates one request. Broken input is an `Err` (a policy failure, handled by the
    /// failurePolicy); a rule that is not met is a violation in the outcome.
    fn evaluate(request: &Request, settings: &Self::Settings) -> Result<Outcome, Error>;
}

/// Reads settings JSON; empty text or `null` mean the defaults.
pub fn parse_settings<P: Policy>(settings: &str) -> Result<P::Settings, Error> {
    let trimmed = settings.trim();
    let parsed = if trimmed.is_empty() || trimmed == "null" {
        P::Settings::default()
    } else {
        serde_json::from_str(trimmed).map_err(|e| format!("invalid settings: {e}"))?
    };
    P::check_settings(&parsed)?;
    Ok(parsed)
}

/// Runs a policy on a review's JSON: what the component's `evaluate` does, callable natively.
/// A changed object comes back as the patch the component returns.
pub fn evaluate_review<P: Policy>(review_json: &str, settings: &str) -> Result<Outcome, Error> {
    let settings = parse_settings::<P>(settings)?;
    // The host checked the review when it received it; reading it again lean saves the
    // policy a pass over the object.
    let review = initguard_core::Review::from_checked_slice(review_json.as_bytes())
        .map_err(|e| Error::new(e.to_string()))?;
    let mut outcome = P::evaluate(&review.request, &settings)?;
    if let Some(Mutation::Object(changed)) = &outcome.mutation {
        outcome.mutation = patch_to(&review.request, changed);
    }
    Ok(outcome)
}

/// The mutation that turns the request's object into `changed`, as a patch; `None` when they
/// are the same.
pub fn patch_to(request: &Request, changed: &serde_json::Value) -> Option<Mutation> {
    let original = request.object()?;
    let patch = initguard_core::patch::diff(original, changed);
    (!patch.0.is_empty()).then_some(Mutation::Patch(patch))
}

/// Writes to initguard's log from inside a policy.
pub fn log(level: bindings::initguard::policy::host::Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    bindings::initguard::policy::host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

#[doc(hidden)]
pub mod glue {
    use super::{Mutation, Policy, bindings};
    use bindings::initguard::policy::types::{
        Outcome as WitOutcome, PolicyInfo, Violation as WitViolation,
    };

    pub fn info<P: Policy>() -> PolicyInfo {
        PolicyInfo {
            mutating: P::MUTATING,
        }
    }

    pub fn validate_settings<P: Policy>(settings: &str) -> Result<(), String> {
        super::parse_settings::<P>(settings)
            .map(drop)
            .map_err(|e| e.0)
    }

    pub fn evaluate<P: Policy>(request: &str, settings: &str) -> Result<WitOutcome, String> {
        let outcome = super::evaluate_review::<P>(request, settings).map_err(|e| e.0)?;
        // `evaluate_review` hands back every mutation as a patch.
        let patch = match outcome.mutation {
            Some(Mutation::Patch(patch)) => {
                Some(serde_json::to_string(&patch).map_err(|e| e.to_string())?)
            }
            Some(Mutation::Object(_)) | None => None,
        };
        Ok(WitOutcome {
            violations: outcome
                .violations
                .into_iter()
                .map(|v| WitViolation {
                    rule: (!v.rule.is_empty()).then(|| v.rule.into_owned()),
                    path: v.path,
                    message: v.message,
                })
                .collect(),
            // The 0.1 contract carries warnings as text: the rule id leads, as in a denial.
            warnings: outcome
                .warnings
                .into_iter()
                .map(|w| match w.rule.as_ref() {
                    "" => w.to_string(),
                    rule => format!("{rule} {w}"),
                })
                .collect(),
            patch,
        })
    }
}

/// Exports a [`Policy`] as the component's `initguard:policy` world.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        #[doc(hidden)]
        pub struct __InitguardExport;

        impl $crate::bindings::Guest for __InitguardExport {
            fn info() -> $crate::bindings::initguard::policy::types::PolicyInfo {
                $crate::glue::info::<$policy>()
            }
            fn validate_settings(settings: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                $crate::glue::validate_settings::<$policy>(&settings)
            }
            fn evaluate(
                request: ::std::string::String,
                settings: ::std::string::String,
            ) -> ::std::result::Result<$crate::bindings::initguard::policy::types::Outcome, ::std::string::String> {
                $crate::glue::evaluate::<$policy>(&request, &settings)
            }
        }

        $crate::bindings::export_policy_world!(__InitguardExport with_types_in $crate::bindings);
    };
}

/// Helpers for native unit tests of policies.
pub mod test {
    use super::Policy;
    use initguard_core::Outcome;
    use serde_json::Value;

    /// Evaluates `policy` on a CREATE of `object` with `settings` (JSON), as initguard would.
    pub fn evaluate<P: Policy>(object: Value, settings: Value) -> Result<Outcome, super::Error> {
        let request = initguard_core::Request::create(object);
        super::evaluate_review::<P>(request.review_json(), &settings.to_string())
    }
}
