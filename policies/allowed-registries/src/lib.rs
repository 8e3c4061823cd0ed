//! `allowed-registries`: container images come from a configured list of registries or
//! repository prefixes. Init containers always; app and ephemeral containers on request.

use initguard_policy::{
    ContainerKind, Error, ImageRef, Outcome, Policy, Request, Violation, export_policy,
};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// Registries (`registry.example.com`) or prefixes (`docker.io/library/`); required.
    #[serde(default)]
    pub registries: Vec<String>,
    /// Check app containers too.
    #[serde(default)]
    pub app_containers: bool,
    /// Check ephemeral (debug) containers too.
    #[serde(default)]
    pub ephemeral_containers: bool,
}

pub struct AllowedRegistries;

impl Policy for AllowedRegistries {
    type Settings = Settings;

    fn check_settings(settings: &Settings) -> Result<(), Error> {
        if settings.registries.is_empty() {
            return Err("registries: list at least one registry or prefix".into());
        }
        Ok(())
    }

    fn evaluate(request: &Request<'_>, settings: &Settings) -> Result<Outcome, Error> {
        let mut outcome = Outcome::default();
        for container in &request.containers()? {
            let checked = match container.kind() {
                ContainerKind::Init => true,
                ContainerKind::App => settings.app_containers,
                ContainerKind::Ephemeral => settings.ephemeral_containers,
            };
            let Some(image) = container.image().filter(|_| checked) else {
                continue;
            };
            let reference = ImageRef::parse(image);
            if !settings.registries.iter().any(|r| reference.is_from(r)) {
                outcome.violations.push(Violation::new(
                    "REG-001",
                    Some(container.field("image")),
                    format!(
                        "image {image:?} ({}) is not from an allowed registry: {}",
                        reference.full_repository(),
                        settings.registries.join(", ")
                    ),
                ));
            }
        }
        Ok(outcome)
    }
}

export_policy!(AllowedRegistries);

#[cfg(test)]
mod tests {
    use super::*;
    use initguard_policy::test::evaluate;
    use serde_json::json;

    fn pod() -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
            "initContainers": [{"name": "a", "image": "registry.example.com/tools/git:2"}, {"name": "b", "image": "busybox:1.36"}],
            "containers": [{"name": "app", "image": "nginx:1.27"}]}})
    }

    #[test]
    fn init_containers_from_other_registries_are_violations() {
        let outcome =
            evaluate::<AllowedRegistries>(pod(), json!({"registries": ["registry.example.com"]}))
                .unwrap();
        let paths: Vec<_> = outcome
            .violations
            .iter()
            .map(|v| v.path.clone().unwrap())
            .collect();
        assert_eq!(paths, ["spec.initContainers[1].image"]);
    }

    #[test]
    fn app_containers_on_request() {
        let settings = json!({"registries": ["registry.example.com"], "appContainers": true});
        let outcome = evaluate::<AllowedRegistries>(pod(), settings).unwrap();
        assert_eq!(outcome.violations.len(), 2);
    }

    #[test]
    fn settings_are_checked() {
        use initguard_policy::test::settings;
        assert!(settings::<AllowedRegistries>(&json!({})).is_err());
        assert!(
            settings::<AllowedRegistries>(&json!({"registries": ["a"], "x": 1}))
                .unwrap_err()
                .message()
                .contains("unknown field `x`")
        );
    }
}
