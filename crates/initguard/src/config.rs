//! The config file: which policies run, with which settings, modes and match rules.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use initguard_core::release::Release;
use initguard_core::{FailurePolicy, MatchRules, Mode, Pipeline, Policy, PolicyEntry};
use initguard_wasm::{HostConfig, ModuleSpec, WasmHost};
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

/// One policy of the pipeline: a built-in or a WASM module. A policy may appear more than
/// once with different names.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyConfig {
    /// Unique in the file; names the policy in messages, reports and metrics.
    pub name: String,
    /// The built-in policy to run (see `initguard rules`).
    pub builtin: Option<String>,
    /// A WebAssembly component implementing `initguard:policy`; relative paths are relative to
    /// the config file.
    pub module: Option<PathBuf>,
    /// The module's expected SHA-256 (hex); a mismatch refuses to load.
    pub sha256: Option<String>,
    /// Deadline of one evaluation of a module (default 250ms).
    #[serde(default, with = "initguard_core::duration::option")]
    pub timeout: Option<Duration>,
    /// Linear memory one instance of a module may use (default 64Mi; suffixes Ki, Mi, Gi).
    pub memory_limit: Option<String>,
    #[serde(default)]
    pub settings: Value,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub failure_policy: FailurePolicy,
    #[serde(default, rename = "match")]
    pub match_rules: MatchRules,
}

const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);
const DEFAULT_MEMORY_LIMIT: usize = 64 << 20;

/// Bytes from `64Mi`, `512Ki`, `1Gi` or a plain number, as Kubernetes writes memory sizes.
pub fn parse_size(text: &str) -> Option<usize> {
    let (number, factor) = [("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)]
        .into_iter()
        .find_map(|(suffix, factor)| text.strip_suffix(suffix).map(|n| (n, factor)))
        .unwrap_or((text, 1));
    number.parse::<usize>().ok()?.checked_mul(factor)
}

fn parse_memory(text: &str) -> Result<usize, String> {
    parse_size(text)
        .filter(|n| *n >= 1 << 16)
        .ok_or_else(|| format!("{text:?} is not a memory size of at least 64Ki, such as 64Mi"))
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

    /// Builds every policy; a bad builtin, module or setting fails with the policy named.
    /// `base` is the folder relative module paths start from.
    pub fn pipeline(
        &self,
        source_name: &str,
        base: &Path,
        loader: &Loader,
    ) -> Result<Pipeline, ConfigError> {
        let entries = self
            .policies
            .iter()
            .enumerate()
            .map(|(index, config)| {
                let error = |reason: String| ConfigError::Policy {
                    source_name: source_name.to_owned(),
                    index,
                    name: config.name.clone(),
                    reason,
                };
                let policy = config.build(base, loader).map_err(error)?;
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

impl PolicyConfig {
    fn build(&self, base: &Path, loader: &Loader) -> Result<Arc<dyn Policy>, String> {
        match (&self.builtin, &self.module) {
            (Some(builtin), None) => {
                let module_only = [
                    ("sha256", self.sha256.is_some()),
                    ("timeout", self.timeout.is_some()),
                    ("memoryLimit", self.memory_limit.is_some()),
                ];
                if let Some((key, _)) = module_only.iter().find(|(_, set)| *set) {
                    return Err(format!("{key}: only modules take this key"));
                }
                initguard_rules::builtin_for(builtin, &self.settings, loader.release).map_err(|e| {
                    match e {
                        initguard_rules::BuiltinError::Settings(e) => format!("settings.{e}"),
                        unknown @ initguard_rules::BuiltinError::Unknown { .. } => {
                            format!("builtin: {unknown}")
                        }
                    }
                })
            }
            (None, Some(module)) => {
                let memory_limit = match &self.memory_limit {
                    Some(text) => parse_memory(text).map_err(|e| format!("memoryLimit: {e}"))?,
                    None => DEFAULT_MEMORY_LIMIT,
                };
                let spec = ModuleSpec {
                    name: self.name.clone(),
                    path: base.join(module),
                    sha256: self.sha256.clone(),
                    settings: self.settings.clone(),
                    timeout: self.timeout.unwrap_or(DEFAULT_TIMEOUT),
                    memory_limit,
                };
                let policy = loader
                    .wasm_host()?
                    .load(&spec)
                    .map_err(|e| format!("module: {e}"))?;
                Ok(Arc::new(policy))
            }
            (Some(_), Some(_)) => Err("set either builtin or module, not both".to_owned()),
            (None, None) => {
                Err("set builtin (see `initguard rules`) or module (a .wasm policy)".to_owned())
            }
        }
    }
}

/// Builds pipelines from config, keeping one WASM engine for every load and reload.
#[derive(Debug, Default)]
pub struct Loader {
    wasm: OnceLock<WasmHost>,
    /// What `latest` means in a built-in's release setting.
    release: Release,
}

impl Loader {
    pub fn new() -> Self {
        Self::default()
    }

    /// A loader for checking against `release`: every built-in release setting left at
    /// `latest` (Pod Security's `version`, `init-container-validity`'s `kubernetesVersion`)
    /// means it.
    pub fn for_release(release: Release) -> Self {
        Self {
            release,
            ..Self::default()
        }
    }

    /// The WASM host, created on first use so that configs without modules never pay for it.
    fn wasm_host(&self) -> Result<&WasmHost, String> {
        if let Some(host) = self.wasm.get() {
            return Ok(host);
        }
        let host = WasmHost::new(HostConfig::default()).map_err(|e| e.to_string())?;
        Ok(self.wasm.get_or_init(|| host))
    }

    /// Loads the config at `path` (or the embedded default) and builds its pipeline.
    pub fn load(&self, path: Option<&Path>) -> Result<Pipeline, ConfigError> {
        let source_name = path.map_or_else(
            || "embedded default config".to_owned(),
            |p| p.display().to_string(),
        );
        let base = path.and_then(Path::parent).unwrap_or(Path::new("."));
        Config::load(path)?.pipeline(&source_name, base, self)
    }
}

/// Loads the config at `path` (or the default) with a fresh loader.
pub fn load_pipeline(path: Option<&Path>) -> Result<Pipeline, ConfigError> {
    Loader::new().load(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        match Config::from_yaml(text, "test.yaml")
            .and_then(|c| c.pipeline("test.yaml", Path::new("."), &Loader::new()))
        {
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
                ("init-container-hygiene", Mode::Warn),
                ("pod-security-baseline", Mode::Enforce),
                ("pod-security-restricted", Mode::Warn),
                ("init-steps", Mode::Enforce),
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
            "test.yaml: policies[0] (a): builtin: unknown builtin \"no-such-rule\": expected one of init-container-validity, init-container-hygiene, pod-security, init-steps"
        );
        assert_eq!(
            error(
                "policies:\n  - name: pss\n    builtin: pod-security\n    settings: {version: v1.99}\n"
            ),
            "test.yaml: policies[0] (pss): settings.version: \"v1.99\" is newer than the newest version this build knows (v1.37); use latest or an earlier version"
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
            "test.yaml: policies[0] (v): settings.strict: unknown field `strict`, expected `kubernetesVersion`"
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
        let pipeline = Config::from_yaml(text, "t")
            .unwrap()
            .pipeline("t", Path::new("."), &Loader::new())
            .unwrap();
        assert_eq!(pipeline.entries().len(), 2);
    }
}
