//! Hostile: panics (a trap, with panic = "abort").

use initguard_policy::{Error, Outcome, Policy, Request, export_policy};

pub struct Panic;

impl Policy for Panic {
    type Settings = ();

    fn evaluate(request: &Request<'_>, (): &()) -> Result<Outcome, Error> {
        println!("about to panic on {}", request.name());
        panic!("this policy always panics");
    }
}

export_policy!(Panic);
