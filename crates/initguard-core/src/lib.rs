//! The admission model of initguard.
//!
//! One AdmissionReview flows through here the same way in the webhook, in `initguard check` and
//! in policy tests: a [`request::Request`] with its typed [`workload::Workload`] view, matched
//! and evaluated by the [`pipeline::Pipeline`] of [`policy::Policy`]s, and answered with a
//! [`response::ReviewResponse`]. This crate does no I/O, so it also builds for `wasm32-wasip2`.
//!
//! Without its default `kubernetes` feature the crate is the part a WebAssembly policy needs:
//! [`Violation`]s, [`FieldPath`]s, [`image`] references, the [`view`] of containers and the
//! settings [`tree`], with no Kubernetes types and no JSON parser to compile.

#![warn(missing_docs)]

pub mod image;
pub mod operation;
pub mod path;
pub mod tree;
pub mod view;
pub mod violation;

#[cfg(feature = "kubernetes")]
pub mod duration;
#[cfg(feature = "kubernetes")]
pub mod matching;
#[cfg(feature = "kubernetes")]
pub mod patch;
#[cfg(feature = "kubernetes")]
pub mod pipeline;
#[cfg(feature = "kubernetes")]
pub mod policy;
#[cfg(feature = "kubernetes")]
pub mod release;
#[cfg(feature = "kubernetes")]
pub mod request;
#[cfg(feature = "kubernetes")]
pub mod response;
#[cfg(feature = "kubernetes")]
pub mod workload;

pub use path::FieldPath;
pub use view::ContainerKind;
pub use violation::Violation;

#[cfg(feature = "kubernetes")]
pub use k8s_openapi;
#[cfg(feature = "kubernetes")]
pub use matching::MatchRules;
#[cfg(feature = "kubernetes")]
pub use pipeline::{Decision, Denial, Phase, Pipeline, PolicyEntry, PolicyReport, Warning};
#[cfg(feature = "kubernetes")]
pub use policy::{FailurePolicy, Mode, Mutation, Outcome, Policy, PolicyError};
#[cfg(feature = "kubernetes")]
pub use request::{Request, Review, ReviewError, ReviewVersion};
#[cfg(feature = "kubernetes")]
pub use response::ReviewResponse;
#[cfg(feature = "kubernetes")]
pub use workload::{ContainerRef, NotServed, Workload, WorkloadError, WorkloadKind};
