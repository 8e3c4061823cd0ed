//! Hostile: never returns from `evaluate`. initguard must stop it at the deadline.

use initguard_policy::{Error, Outcome, Policy, Request, export_policy};

pub struct Spin;

impl Policy for Spin {
    type Settings = ();

    fn evaluate(request: &Request<'_>, (): &()) -> Result<Outcome, Error> {
        let mut counter = request.name().len() as u64;
        loop {
            counter =
                std::hint::black_box(counter.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

export_policy!(Spin);
