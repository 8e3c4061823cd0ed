//! Allows everything without reading the request: the floor of a WASM evaluation (a fresh
//! instance, the review handle and settings passed in, an empty outcome copied out), for the
//! benchmarks.

use initguard_policy::bindings::Guest;
use initguard_policy::bindings::initguard::policy::request::Review;
use initguard_policy::bindings::initguard::policy::types::{JsonNode, Outcome, PolicyInfo};

pub struct Noop;

impl Guest for Noop {
    fn info() -> PolicyInfo {
        PolicyInfo { mutating: false }
    }

    fn validate_settings(_: Vec<JsonNode>) -> Result<(), String> {
        Ok(())
    }

    fn evaluate(_: &Review, _: Vec<JsonNode>) -> Result<Outcome, String> {
        Ok(Outcome {
            violations: Vec::new(),
            warnings: Vec::new(),
            patch: Vec::new(),
        })
    }
}

initguard_policy::bindings::export_policy_world!(Noop with_types_in initguard_policy::bindings);
