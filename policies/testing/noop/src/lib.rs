//! Allows everything without reading the request: the floor of a WASM evaluation (a fresh
//! instance, the request copied in, an empty outcome copied out), for the benchmarks.

use initguard_policy::bindings::Guest;
use initguard_policy::bindings::initguard::policy::types::{Outcome, PolicyInfo};

pub struct Noop;

impl Guest for Noop {
    fn info() -> PolicyInfo {
        PolicyInfo { mutating: false }
    }

    fn validate_settings(_: String) -> Result<(), String> {
        Ok(())
    }

    fn evaluate(_: String, _: String) -> Result<Outcome, String> {
        Ok(Outcome {
            violations: Vec::new(),
            warnings: Vec::new(),
            patch: None,
        })
    }
}

initguard_policy::bindings::export_policy_world!(Noop with_types_in initguard_policy::bindings);
