//! `default-init-resources` (mutating): fills missing cpu and memory requests and limits of
//! init containers from settings; values already set are left alone.

use std::collections::BTreeMap;

use initguard_policy::core::path::escape_token;
use initguard_policy::{
    Container, ContainerKind, Error, Outcome, PatchOp, Policy, Request, export_policy, json,
};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Settings {
    /// Requests to set where missing, by resource name.
    pub requests: BTreeMap<String, String>,
    /// Limits to set where missing, by resource name.
    pub limits: BTreeMap<String, String>,
}

impl Default for Settings {
    fn default() -> Self {
        let pair = |cpu: &str, memory: &str| {
            BTreeMap::from([
                ("cpu".to_owned(), cpu.to_owned()),
                ("memory".to_owned(), memory.to_owned()),
            ])
        };
        Self {
            requests: pair("50m", "64Mi"),
            limits: pair("500m", "256Mi"),
        }
    }
}

pub struct DefaultInitResources;

impl Policy for DefaultInitResources {
    type Settings = Settings;
    const MUTATING: bool = true;

    fn evaluate(request: &Request<'_>, settings: &Settings) -> Result<Outcome, Error> {
        let mut patch = Vec::new();
        for container in &request.containers()? {
            if container.kind() == ContainerKind::Init {
                fill(request, container, settings, &mut patch);
            }
        }
        Ok(Outcome::with_patch(patch))
    }
}

/// Adds what `container` lacks of the defaults: the whole `resources` when it has none, a
/// whole list when it has no `requests` or `limits`, else each missing quantity.
fn fill(
    request: &Request<'_>,
    container: Container<'_>,
    settings: &Settings,
    patch: &mut Vec<PatchOp>,
) {
    let resources = format!("{}/resources", container.pointer());
    let lists = [
        ("requests", &settings.requests, container.requests()),
        ("limits", &settings.limits, container.limits()),
    ];
    let missing = lists.map(|(field, defaults, present)| {
        let missing: Vec<(&String, &String)> = defaults
            .iter()
            .filter(|(name, _)| !present.clone().any(|(set, _)| set == name.as_str()))
            .collect();
        (field, missing)
    });
    let quantities = |missing: &[(&String, &String)]| {
        json::object(
            missing
                .iter()
                .map(|(name, quantity)| (name, json::string(quantity))),
        )
    };
    if request.object(&resources).is_none() {
        let lists = missing
            .iter()
            .filter(|(_, missing)| !missing.is_empty())
            .map(|(field, missing)| (field, quantities(missing)));
        patch.push(PatchOp::Add {
            path: resources,
            value: json::object(lists),
        });
        return;
    }
    for (field, missing) in missing.iter().filter(|(_, missing)| !missing.is_empty()) {
        let list = format!("{resources}/{field}");
        match request.object(&list) {
            None => patch.push(PatchOp::Add {
                path: list,
                value: quantities(missing),
            }),
            Some(text) if text.starts_with('{') => {
                patch.extend(missing.iter().map(|(name, quantity)| PatchOp::Add {
                    path: format!("{list}/{}", escape_token(name)),
                    value: json::string(quantity),
                }));
            }
            // Not an object (`null`): nothing to fill in.
            Some(_) => {}
        }
    }
}

export_policy!(DefaultInitResources);

#[cfg(test)]
mod tests {
    use super::*;
    use initguard_policy::test::evaluate;
    use serde_json::json;

    #[test]
    fn fills_only_what_is_missing() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
            "initContainers": [{"name": "a", "image": "busybox:1.36", "resources": {"requests": {"cpu": "1"}}}, {"name": "b", "image": "busybox:1.36"}],
            "containers": [{"name": "app", "image": "nginx:1.27"}]}});
        let outcome = evaluate::<DefaultInitResources>(pod.clone(), json!({})).unwrap();
        let patched = initguard_policy::test::apply(&pod, &outcome.patch).unwrap();
        let first = &patched["spec"]["initContainers"][0]["resources"];
        assert_eq!(first["requests"], json!({"cpu": "1", "memory": "64Mi"}));
        assert_eq!(first["limits"], json!({"cpu": "500m", "memory": "256Mi"}));
        assert_eq!(
            patched["spec"]["initContainers"][1]["resources"]["requests"]["cpu"],
            "50m"
        );
        assert!(
            patched["spec"]["containers"][0].get("resources").is_none(),
            "app containers are left alone"
        );
    }

    #[test]
    fn complete_pods_are_not_patched() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
            "initContainers": [{"name": "a", "image": "busybox:1.36", "resources": {
                "requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}}],
            "containers": [{"name": "app", "image": "nginx:1.27"}]}});
        assert_eq!(
            evaluate::<DefaultInitResources>(pod, json!({}))
                .unwrap()
                .patch,
            []
        );
    }
}
