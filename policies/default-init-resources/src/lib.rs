//! `default-init-resources` (mutating): fills missing cpu and memory requests and limits of
//! init containers from settings; values already set are left alone.

use std::collections::BTreeMap;

use initguard_policy::{Error, Outcome, Policy, Request, export_policy, patch_to};
use serde::Deserialize;
use serde_json::{Value, json};

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

    fn evaluate(request: &Request, settings: &Settings) -> Result<Outcome, Error> {
        let mut outcome = Outcome::default();
        let Some(workload) = request.workload()? else {
            return Ok(outcome);
        };
        let Some(object) = request.object() else {
            return Ok(outcome);
        };
        let mut changed = object.clone();
        let pointer = workload
            .spec_path()
            .field("initContainers")
            .to_json_pointer();
        let Some(Value::Array(containers)) = changed.pointer_mut(&pointer) else {
            return Ok(outcome);
        };
        for container in containers.iter_mut() {
            let Some(container) = container.as_object_mut() else {
                continue;
            };
            let resources = container.entry("resources").or_insert_with(|| json!({}));
            let Some(resources) = resources.as_object_mut() else {
                continue;
            };
            for (field, defaults) in [
                ("requests", &settings.requests),
                ("limits", &settings.limits),
            ] {
                let list = resources.entry(field).or_insert_with(|| json!({}));
                let Some(list) = list.as_object_mut() else {
                    continue;
                };
                for (name, quantity) in defaults {
                    list.entry(name.clone()).or_insert_with(|| json!(quantity));
                }
            }
        }
        outcome.mutation = patch_to(request, &changed);
        Ok(outcome)
    }
}

export_policy!(DefaultInitResources);

#[cfg(test)]
mod tests {
    use super::*;
    use initguard_policy::test::evaluate;

    #[test]
    fn fills_only_what_is_missing() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
            "initContainers": [{"name": "a", "image": "busybox:1.36", "resources": {"requests": {"cpu": "1"}}}, {"name": "b", "image": "busybox:1.36"}],
            "containers": [{"name": "app", "image": "nginx:1.27"}]}});
        let outcome = evaluate::<DefaultInitResources>(pod.clone(), json!({})).unwrap();
        let mut patched = pod;
        let Some(initguard_policy::Mutation::Patch(patch)) = outcome.mutation else {
            panic!("the pod is patched");
        };
        initguard_policy::json_patch::patch(&mut patched, &patch.0).unwrap();
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
                .mutation,
            None
        );
    }
}
