//! Durations as config and settings write them (`250ms`, `2s`, `1m30s`), read with serde:
//! `#[serde(with = "initguard_core::duration")]`, or `initguard_core::duration::option` for an
//! optional one.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

fn parse<E: serde::de::Error>(text: &str) -> Result<Duration, E> {
    humantime::parse_duration(text).map_err(|e| {
        E::custom(format!(
            "{text:?} is not a duration such as 250ms or 2s: {e}"
        ))
    })
}

/// Reads a duration.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    parse(&String::deserialize(deserializer)?)
}

/// An optional duration: absent or `null` is `None`.
pub mod option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    /// Reads an optional duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| super::parse(&text))
            .transpose()
    }
}
