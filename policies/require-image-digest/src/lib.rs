//! `require-image-digest`: init container images are pinned by digest (`@sha256:…`), except
//! images under an exempt prefix.

use initguard_policy::{
    ContainerKind, Error, ImageRef, Outcome, Policy, Request, Violation, export_policy,
};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// Image prefixes that need no digest, such as `registry.example.com/dev/`.
    #[serde(default)]
    pub exempt: Vec<String>,
}

pub struct RequireImageDigest;

impl Policy for RequireImageDigest {
    type Settings = Settings;

    fn evaluate(request: &Request<'_>, settings: &Settings) -> Result<Outcome, Error> {
        let mut outcome = Outcome::default();
        let containers = request.containers()?;
        let init_containers = containers
            .iter()
            .filter(|c| c.kind() == ContainerKind::Init);
        for container in init_containers {
            let Some(image) = container.image() else {
                continue;
            };
            let reference = ImageRef::parse(image);
            let exempt = settings
                .exempt
                .iter()
                .any(|prefix| image.starts_with(prefix.as_str()) || reference.is_from(prefix));
            if reference.digest.is_none() && !exempt {
                outcome.violations.push(Violation::new(
                    "DIG-001",
                    Some(container.field("image")),
                    format!(
                        "image {image:?} is not pinned by digest: use {}@sha256:<digest>",
                        reference.repository
                    ),
                ));
            }
        }
        Ok(outcome)
    }
}

export_policy!(RequireImageDigest);

#[cfg(test)]
mod tests {
    use super::*;
    use initguard_policy::test::evaluate;
    use serde_json::json;

    #[test]
    fn tags_need_digests_unless_exempt() {
        let pod = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": {"template": {"spec": {
            "initContainers": [
                {"name": "a", "image": "busybox:1.36"},
                {"name": "b", "image": "busybox@sha256:4f4a1a5ee1d1c1b8d0b7b6c1b0ab2f1c3f2c0e5c3c1fbf2f2b8c7a1d9e6c4b3a"},
                {"name": "c", "image": "registry.example.com/dev/tool:1"}],
            "containers": [{"name": "job", "image": "busybox:1.36"}]}}}});
        let outcome =
            evaluate::<RequireImageDigest>(pod, json!({"exempt": ["registry.example.com/dev/"]}))
                .unwrap();
        let paths: Vec<_> = outcome
            .violations
            .iter()
            .map(|v| v.path.clone().unwrap())
            .collect();
        assert_eq!(paths, ["spec.template.spec.initContainers[0].image"]);
    }
}
