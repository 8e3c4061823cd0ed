//! Reading a built-in's settings: typed, unknown keys refused, errors naming the key.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Settings that do not fit the built-in; the message names the offending key's path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SettingsError {
    message: String,
}

impl SettingsError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Deserializes settings, where `null` (no `settings:` key) means all defaults.
pub fn parse<T: DeserializeOwned + Default>(settings: &Value) -> Result<T, SettingsError> {
    if settings.is_null() {
        return Ok(T::default());
    }
    serde_path_to_error::deserialize(settings).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." {
            SettingsError::new(inner.to_string())
        } else {
            SettingsError::new(format!("{path}: {inner}"))
        }
    })
}

/// The settings of a built-in that has none: only `{}` is accepted.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}
