//! Fitting requested steps into a pod: containers placed, volumes added only when missing,
//! app containers given the shared mounts, and a record of it all so the next pass starts from
//! the pod as its author wrote it.

use std::collections::BTreeMap;

use initguard_core::k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, EmptyDirVolumeSource, PodSpec, Volume, VolumeMount,
};
use initguard_core::{FieldPath, Workload};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::grammar::{Requested, SharedVolume, TEMPLATE_DIR};
use super::{Placement, STATUS_ANNOTATION};

/// Why the steps cannot go into this pod.
#[derive(Debug)]
pub enum Refusal {
    /// The pod and the steps clash; the path is where to look.
    Conflict(FieldPath, String),
    /// The object is not a pod spec the policy can change.
    Object(String),
}

/// What one pass added, kept in [`STATUS_ANNOTATION`].
#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Record {
    containers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    volumes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    mounts: Vec<RecordedMount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RecordedMount {
    container: String,
    volume: String,
    mount_path: String,
}

/// The object with the previous pass's additions taken out and `requested` put in.
pub fn apply(
    object: &Value,
    workload: &Workload,
    requested: &[Requested],
) -> Result<Value, Refusal> {
    let metadata_path = workload.kind.metadata_path();
    let status_path = metadata_path.field("annotations").key(STATUS_ANNOTATION);
    let previous = match workload
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(STATUS_ANNOTATION))
    {
        Some(text) => serde_json::from_str::<Record>(text).map_err(|e| {
            Refusal::Conflict(
                status_path.clone(),
                format!("{STATUS_ANNOTATION} is not a record initguard wrote ({e}): remove it and the containers it lists"),
            )
        })?,
        None => Record::default(),
    };
    let mut mutated = object.clone();
    let spec_json = mutated
        .pointer_mut(&workload.spec_path().to_json_pointer())
        .and_then(Value::as_object_mut)
        .ok_or_else(|| Refusal::Object(format!("{} is not an object", workload.spec_path())))?;
    // The plan is made against the pod as its author wrote it: the typed spec already read,
    // unless a previous pass's additions had to be taken out first.
    let stripped;
    let spec = if previous == Record::default() {
        &workload.spec
    } else {
        strip(spec_json, &previous);
        stripped = serde_json::from_value::<PodSpec>(Value::Object(spec_json.clone()))
            .map_err(|e| Refusal::Object(format!("{}: {e}", workload.spec_path())))?;
        &stripped
    };
    let plan = Plan::new(spec, workload.spec_path(), requested)?;
    plan.write(spec_json)?;
    let metadata = ensure_object(&mut mutated, &metadata_path.to_json_pointer())?;
    if plan.record == Record::default() {
        if let Some(annotations) = metadata
            .get_mut("annotations")
            .and_then(Value::as_object_mut)
        {
            annotations.remove(STATUS_ANNOTATION);
        }
    } else {
        let annotations = metadata
            .entry("annotations")
            .or_insert_with(|| Value::Object(serde_json::Map::new()))
            .as_object_mut()
            .ok_or_else(|| {
                Refusal::Object(format!("{metadata_path}.annotations is not an object"))
            })?;
        let record =
            serde_json::to_string(&plan.record).map_err(|e| Refusal::Object(e.to_string()))?;
        annotations.insert(STATUS_ANNOTATION.to_owned(), Value::String(record));
    }
    Ok(mutated)
}

/// The object at `pointer`, created (with its parents) when missing.
fn ensure_object<'v>(
    root: &'v mut Value,
    pointer: &str,
) -> Result<&'v mut serde_json::Map<String, Value>, Refusal> {
    let mut current = root;
    for token in pointer.split('/').skip(1) {
        let key = initguard_core::path::unescape_token(token);
        current = current
            .as_object_mut()
            .ok_or_else(|| Refusal::Object(format!("{pointer} is not inside an object")))?
            .entry(key)
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
    }
    current
        .as_object_mut()
        .ok_or_else(|| Refusal::Object(format!("{pointer} is not an object")))
}

fn named(value: &Value, names: &[String]) -> bool {
    value
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| names.iter().any(|x| x == n))
}

/// Takes out what a previous pass recorded, leaving everything else as it is.
fn strip(spec: &mut serde_json::Map<String, Value>, previous: &Record) {
    let mut retain = |field: &str, keep: &dyn Fn(&Value) -> bool| {
        if let Some(items) = spec.get_mut(field).and_then(Value::as_array_mut) {
            items.retain(|item| keep(item));
            if items.is_empty() {
                spec.remove(field);
            }
        }
    };
    retain("initContainers", &|c| !named(c, &previous.containers));
    retain("volumes", &|v| !named(v, &previous.volumes));
    let Some(containers) = spec.get_mut("containers").and_then(Value::as_array_mut) else {
        return;
    };
    for container in containers {
        let name = container
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let Some(mounts) = container
            .get_mut("volumeMounts")
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        mounts.retain(|m| {
            !previous.mounts.iter().any(|r| {
                r.container == name
                    && m.get("name").and_then(Value::as_str) == Some(r.volume.as_str())
                    && m.get("mountPath").and_then(Value::as_str) == Some(r.mount_path.as_str())
            })
        });
        if mounts.is_empty() {
            container.as_object_mut().map(|c| c.remove("volumeMounts"));
        }
    }
}

/// Volume sources a step may write into.
fn writable(volume: &Volume) -> bool {
    volume.empty_dir.is_some()
        || volume.ephemeral.is_some()
        || volume.persistent_volume_claim.is_some()
}

/// The changes to make, decided on the pod as its author wrote it.
struct Plan {
    before: Vec<Container>,
    after: Vec<Container>,
    volumes: Vec<Volume>,
    /// Mounts for app containers, by container index.
    app_mounts: Vec<(usize, VolumeMount)>,
    record: Record,
}

impl Plan {
    fn new(
        spec: &PodSpec,
        spec_path: &FieldPath,
        requested: &[Requested],
    ) -> Result<Self, Refusal> {
        let mut plan = Self {
            before: Vec::new(),
            after: Vec::new(),
            volumes: Vec::new(),
            app_mounts: Vec::new(),
            record: Record::default(),
        };
        let taken: Vec<&str> = spec
            .init_containers
            .iter()
            .flatten()
            .chain(&spec.containers)
            .map(|c| c.name.as_str())
            .chain(
                spec.ephemeral_containers
                    .iter()
                    .flatten()
                    .map(|c| c.name.as_str()),
            )
            .collect();
        let mut resolved: BTreeMap<&str, String> = BTreeMap::new();
        for request in requested {
            let conflict = |message: String| Refusal::Conflict(request.annotation.clone(), message);
            let mut container = request.container.clone();
            if taken.contains(&container.name.as_str()) {
                return Err(conflict(format!(
                    "the pod already has a container named {:?}: rename it, or drop the annotation",
                    container.name
                )));
            }
            let mut mounts = Vec::new();
            for shared in &request.shared {
                let volume = if let Some(volume) = resolved.get(shared.mount_path.as_str()) {
                    volume.clone()
                } else {
                    let volume = plan.share(spec, spec_path, shared).map_err(conflict)?;
                    resolved.insert(&shared.mount_path, volume.clone());
                    volume
                };
                mounts.push(mount(&volume, &shared.mount_path, false));
            }
            if let Some(config_map) = &request.templates {
                let name = "initguard-render-config-templates";
                let templates = Volume {
                    name: name.to_owned(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: config_map.clone(),
                        ..ConfigMapVolumeSource::default()
                    }),
                    ..Volume::default()
                };
                let same_config_map = |existing: &Volume| {
                    existing
                        .config_map
                        .as_ref()
                        .is_some_and(|c| &c.name == config_map)
                };
                plan.ensure_volume(
                    spec,
                    spec_path,
                    templates,
                    same_config_map,
                    "the ConfigMap it names",
                )
                .map_err(conflict)?;
                mounts.push(mount(name, TEMPLATE_DIR, true));
            }
            container.volume_mounts = (!mounts.is_empty()).then_some(mounts);
            plan.record.containers.push(container.name.clone());
            match request.placement {
                Placement::Before => plan.before.push(container),
                Placement::After => plan.after.push(container),
            }
        }
        Ok(plan)
    }

    /// The volume a step shares with the app containers at `shared.mount_path`: the one they
    /// already mount there, or `shared.name`, added when missing and mounted into them.
    fn share(
        &mut self,
        spec: &PodSpec,
        spec_path: &FieldPath,
        shared: &SharedVolume,
    ) -> Result<String, String> {
        let path = shared.mount_path.as_str();
        let mut mounted_there: Vec<(&str, &str)> = Vec::new();
        for container in &spec.containers {
            for m in container.volume_mounts.iter().flatten() {
                if m.mount_path == path {
                    mounted_there.push((container.name.as_str(), m.name.as_str()));
                }
            }
        }
        let volume = match mounted_there.as_slice() {
            [] => shared.name.clone(),
            [(first_container, first), rest @ ..] => {
                if let Some((other_container, other)) = rest.iter().find(|(_, v)| v != first) {
                    return Err(format!(
                        "containers {first_container:?} and {other_container:?} mount different volumes ({first:?}, {other:?}) at {path}: the step cannot tell which to write"
                    ));
                }
                (*first).to_owned()
            }
        };
        let scratch = Volume {
            name: volume.clone(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        };
        self.ensure_volume(
            spec,
            spec_path,
            scratch,
            writable,
            "an emptyDir, ephemeral or persistentVolumeClaim volume it can write",
        )?;
        for (index, container) in spec.containers.iter().enumerate() {
            let has_mount = container
                .volume_mounts
                .iter()
                .flatten()
                .any(|m| m.mount_path == path);
            if !has_mount {
                self.app_mounts.push((index, mount(&volume, path, true)));
                self.record.mounts.push(RecordedMount {
                    container: container.name.clone(),
                    volume: volume.clone(),
                    mount_path: path.to_owned(),
                });
            }
        }
        Ok(volume)
    }

    /// Makes sure the pod has a volume named as `wanted`: the pod's own when it `fits`, else
    /// `wanted`, added once; a volume of that name that does not fit is a clash, and the error
    /// says what the step `needs`.
    fn ensure_volume(
        &mut self,
        spec: &PodSpec,
        spec_path: &FieldPath,
        wanted: Volume,
        fits: impl Fn(&Volume) -> bool,
        needs: &str,
    ) -> Result<(), String> {
        let name = wanted.name.as_str();
        if let Some((index, existing)) = spec
            .volumes
            .iter()
            .flatten()
            .enumerate()
            .find(|(_, v)| v.name == name)
        {
            return if fits(existing) {
                Ok(())
            } else {
                Err(format!(
                    "{}: volume {name:?} exists with another source; the step needs {needs}",
                    spec_path.field("volumes").index(index),
                ))
            };
        }
        if !self.volumes.iter().any(|v| v.name == name) {
            self.record.volumes.push(name.to_owned());
            self.volumes.push(wanted);
        }
        Ok(())
    }

    fn write(&self, spec: &mut serde_json::Map<String, Value>) -> Result<(), Refusal> {
        let to_values = |containers: &[Container]| {
            containers
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Refusal::Object(e.to_string()))
        };
        if !self.before.is_empty() || !self.after.is_empty() {
            let own = spec
                .remove("initContainers")
                .and_then(|v| match v {
                    Value::Array(items) => Some(items),
                    _ => None,
                })
                .unwrap_or_default();
            let mut all = to_values(&self.before)?;
            all.extend(own);
            all.extend(to_values(&self.after)?);
            spec.insert("initContainers".to_owned(), Value::Array(all));
        }
        if !self.volumes.is_empty() {
            let volumes = spec
                .entry("volumes")
                .or_insert_with(|| Value::Array(Vec::new()))
                .as_array_mut()
                .ok_or_else(|| Refusal::Object("spec.volumes is not a list".to_owned()))?;
            for volume in &self.volumes {
                volumes.push(
                    serde_json::to_value(volume).map_err(|e| Refusal::Object(e.to_string()))?,
                );
            }
        }
        for (index, volume_mount) in &self.app_mounts {
            let container = spec
                .get_mut("containers")
                .and_then(|c| c.get_mut(*index))
                .and_then(Value::as_object_mut)
                .ok_or_else(|| Refusal::Object("spec.containers changed shape".to_owned()))?;
            let mounts = container
                .entry("volumeMounts")
                .or_insert_with(|| Value::Array(Vec::new()))
                .as_array_mut()
                .ok_or_else(|| Refusal::Object("volumeMounts is not a list".to_owned()))?;
            mounts.push(
                serde_json::to_value(volume_mount).map_err(|e| Refusal::Object(e.to_string()))?,
            );
        }
        Ok(())
    }
}

fn mount(volume: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: volume.to_owned(),
        mount_path: path.to_owned(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}
