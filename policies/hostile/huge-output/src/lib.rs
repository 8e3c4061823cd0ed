//! Hostile: returns an outcome of several megabytes. initguard must refuse it.

use initguard_policy::{Error, Outcome, Policy, Request, Violation, export_policy};

pub struct HugeOutput;

impl Policy for HugeOutput {
    type Settings = ();

    fn evaluate(_: &Request<'_>, (): &()) -> Result<Outcome, Error> {
        let message = "x".repeat(64 * 1024);
        let violations = (0..64)
            .map(|_| Violation::object("HUGE", message.clone()))
            .collect();
        Ok(Outcome::with_violations(violations))
    }
}

export_policy!(HugeOutput);
