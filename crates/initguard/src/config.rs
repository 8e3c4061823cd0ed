//! The config file: which policies run, with which settings, modes and match rules.

use std::collections::HashSet;
use std::path::Path;

use initguard_core::{FailurePolicy, MatchRules, Mode, Pipeline, PolicyEntry};
use serde::Deserialize;
use serde_json::Value;

/// The config used when none is given.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.yaml");

/// The whole config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub policies: Vec<PolicyConfig>,
}

/// One policy of the pipeline. A policy may appear more than once with different names.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyConfig {
    /// Unique in the file; names the policy in messages, reports and metrics.
    pub name: String,
    /// The built-in policy to run (see `initguard rules`).
    pub builtin: String,
    #[serde(default)]
    pub settings: Value,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub failure_policy: FailurePolicy,
    #[serde(default, rename = "match")]
    pub match_rules: MatchRules,
}

/// A config that cannot be used, with where the problem is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{source_name}: {error}")]
    Syntax {
        source_name: String,
        error: serde_yaml_ng::Error,
    },
    #[error("{source_name}: policies[{index}] ({name}): {reason}")]
    Policy {
        source_name: String,
        index: usize,
        name: String,
        reason: String,
    },
}

impl Config {
    /// Parses config text; `source_name` (a path, or "embedded default") prefixes errors.
    pub fn from_yaml(text: &str, source_name: &str) -> Result<Self, ConfigError> {
        let config: Self = serde_yaml_ng::from_str(text).map_err(|error| ConfigError::Syntax {
            source_name: source_name.to_owned(),
            error,
        })?;
        let mut names = HashSet::new();
        for (index, policy) in config.policies.iter().enumerate() {
            let error = |reason: String| ConfigError::Policy {
                source_name: source_name.to_owned(),
                index,
                name: policy.name.clone(),
                reason,
            };
            if policy.name.is_empty() {
                return Err(error("name: must not be empty".to_owned()));
            }
            if !names.insert(policy.name.as_str()) {
                return Err(error(
                    "name: another policy has this name already".to_owned(),
                ));
            }
            policy
                .match_rules
                .validate()
                .map_err(|e| error(format!("match.{e}")))?;
        }
        Ok(config)
    }

    /// Reads the config file at `path`, or the embedded default when `None`.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            None => Self::from_yaml(DEFAULT_CONFIG, "embedded default config"),
            Some(path) => {
                let name = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
                    path: name.clone(),
                    error,
                })?;
                Self::from_yaml(&text, &name)
            }
        }
    }

    /// Builds every policy; a bad builtin name or setting fails with the policy named.
    pub fn pipeline(&self, source_name: &str) -> Result<Pipeline, ConfigError> {
        let entries =
            self.policies
                .iter()
                .enumerate()
                .map(|(index, config)| {
                    let policy = initguard_rules::builtin(&config.builtin, &config.settings)
                        .map_err(|e| ConfigError::Policy {
                            source_name: source_name.to_owned(),
                            index,
                            name: config.name.clone(),
                            reason: match e {
                                initguard_rules::BuiltinError::Settings(e) => {
                                    format!("settings.{e}")
                                }
                                unknown @ initguard_rules::BuiltinError::Unknown { .. } => {
                                    format!("builtin: {unknown}")
                                }
                            },
                        })?;
                    Ok(PolicyEntry {
                        name: config.name.clone(),
                        mode: config.mode,
                        failure_policy: config.failure_policy,
                        rules: config.match_rules.clone(),
                        policy,
                    })
                })
                .collect::<Result<_, _>>()?;
        Ok(Pipeline::new(entries))
    }
}

/// Loads the config at `path` (or the default) and builds its pipeline.
pub fn load_pipeline(path: Option<&Path>) -> Result<Pipeline, ConfigError> {
    let source_name = path.map_or_else(
        || "embedded default config".to_owned(),
        |p| p.display().to_string(),
    );
    Config::load(path)?.pipeline(&source_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        match Config::from_yaml(text, "test.yaml").and_then(|c| c.pipeline("test.yaml")) {
            Ok(_) => panic!("config should be refused:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn default_config_builds() {
        let pipeline = load_pipeline(None).unwrap();
        let names: Vec<_> = pipeline
            .entries()
            .iter()
            .map(|e| (e.name.as_str(), e.mode))
            .collect();
        assert_eq!(
            names,
            [
                ("init-container-validity", Mode::Enforce),
                ("init-container-hygiene", Mode::Warn)
            ]
        );
    }

    #[test]
    fn unknown_keys_name_the_key_and_line() {
        let message =
            error("policies:\n  - name: a\n    builtin: init-container-validity\n    mdoe: warn\n");
        assert!(
            message.starts_with("test.yaml: policies[0]: unknown field `mdoe`"),
            "{message}"
        );
        assert!(message.contains("line 4"), "{message}");
        let message = error("policy: []\n");
        assert!(message.contains("unknown field `policy`"), "{message}");
    }

    #[test]
    fn wrong_types_and_values_are_located() {
        let message = error(
            "policies:\n  - name: a\n    builtin: init-container-validity\n    mode: block\n",
        );
        assert!(message.contains("policies[0].mode: unknown variant `block`, expected one of `enforce`, `warn`, `audit`"), "{message}");
        assert!(message.contains("line 4"), "{message}");
    }

    #[test]
    fn builtin_names_and_settings_are_checked() {
        assert_eq!(
            error("policies:\n  - name: a\n    builtin: no-such-rule\n"),
            "test.yaml: policies[0] (a): builtin: unknown builtin \"no-such-rule\": expected one of init-container-validity, init-container-hygiene"
        );
        assert_eq!(
            error(
                "policies:\n  - name: h\n    builtin: init-container-hygiene\n    settings: {maxInitContainers: many}\n"
            ),
            "test.yaml: policies[0] (h): settings.maxInitContainers: invalid type: string \"many\", expected usize"
        );
        let message = error(
            "policies:\n  - name: h\n    builtin: init-container-hygiene\n    settings: {pinImages: true}\n",
        );
        assert!(
            message.starts_with(
                "test.yaml: policies[0] (h): settings.pinImages: unknown field `pinImages`"
            ),
            "{message}"
        );
        assert_eq!(
            error(
                "policies:\n  - name: v\n    builtin: init-container-validity\n    settings: {strict: true}\n"
            ),
            "test.yaml: policies[0] (v): settings.strict: unknown field `strict`, there are no fields"
        );
    }

    #[test]
    fn names_are_unique_and_selectors_valid() {
        let twice = "policies:\n  - {name: a, builtin: init-container-validity}\n  - {name: a, builtin: init-container-hygiene}\n";
        assert_eq!(
            error(twice),
            "test.yaml: policies[1] (a): name: another policy has this name already"
        );
        let selector = "policies:\n  - name: a\n    builtin: init-container-validity\n    match: {objectSelector: {matchExpressions: [{key: x, operator: Is}]}}\n";
        assert!(
            error(selector)
                .contains("match.objectSelector.matchExpressions[0]: unknown operator \"Is\"")
        );
    }

    #[test]
    fn a_policy_may_appear_twice_with_different_settings() {
        let text = "policies:\n  - {name: strict, builtin: init-container-hygiene, settings: {requireDigest: true}, match: {namespaces: [prod]}}\n  - {name: relaxed, builtin: init-container-hygiene, mode: audit}\n";
        let pipeline = Config::from_yaml(text, "t").unwrap().pipeline("t").unwrap();
        assert_eq!(pipeline.entries().len(), 2);
    }
}
