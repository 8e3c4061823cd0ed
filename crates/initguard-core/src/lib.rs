//! The admission model of initguard.
//!
//! One AdmissionReview flows through here the same way in the webhook, in `initguard check` and
//! in policy tests: a [`request::Request`] with its typed [`workload::Workload`] view, matched
//! and evaluated by the [`pipeline::Pipeline`] of [`policy::Policy`]s, and answered with a
//! [`response::ReviewResponse`]. This crate does no I/O, so it also builds for `wasm32-wasip2`,
//! where the policy SDK reuses its views.

#![warn(missing_docs)]

pub mod duration;
pub mod image;
pub mod matching;
pub mod patch;
pub mod path;
pub mod pipeline;
pub mod policy;
pub mod release;
pub mod request;
pub mod response;
pub mod workload;

pub use k8s_openapi;
pub use matching::MatchRules;
pub use path::FieldPath;
pub use pipeline::{Decision, Denial, Phase, Pipeline, PolicyEntry, PolicyReport, Warning};
pub use policy::{FailurePolicy, Mode, Mutation, Outcome, Policy, PolicyError, Violation};
pub use request::{Request, Review, ReviewError, ReviewVersion};
pub use response::ReviewResponse;
pub use workload::{
    ContainerImage, ContainerKind, ContainerRef, ImageView, NotServed, Workload, WorkloadError,
    WorkloadKind,
};
