//! Hostile: grows its memory without bound. initguard must stop it at the memory limit.

use initguard_policy::{Error, Outcome, Policy, Request, export_policy};

pub struct MemoryBomb;

impl Policy for MemoryBomb {
    type Settings = ();

    fn evaluate(_: &Request<'_>, (): &()) -> Result<Outcome, Error> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

export_policy!(MemoryBomb);
