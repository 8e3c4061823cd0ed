//! The pod-spec view: one typed [`PodSpec`] for every kind of object that carries one, with the
//! apiserver path prefix under which its fields live.

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EphemeralContainer, Lifecycle, PodSpec, Probe, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::path::FieldPath;
use crate::release::Release;
use crate::view;
pub use crate::view::ContainerKind;

/// Every API version that served a workload kind: the kind, `group/version`, the first
/// release that served it and the first that no longer did.
const SERVED: &[(WorkloadKind, &str, u32, Option<u32>)] = &[
    (WorkloadKind::Pod, "v1", 0, None),
    (WorkloadKind::PodTemplate, "v1", 0, None),
    (WorkloadKind::ReplicationController, "v1", 0, None),
    (WorkloadKind::Deployment, "apps/v1", 9, None),
    (WorkloadKind::Deployment, "apps/v1beta2", 8, Some(16)),
    (WorkloadKind::Deployment, "apps/v1beta1", 6, Some(16)),
    (WorkloadKind::Deployment, "extensions/v1beta1", 2, Some(16)),
    (WorkloadKind::ReplicaSet, "apps/v1", 9, None),
    (WorkloadKind::ReplicaSet, "apps/v1beta2", 8, Some(16)),
    (WorkloadKind::ReplicaSet, "extensions/v1beta1", 2, Some(16)),
    (WorkloadKind::DaemonSet, "apps/v1", 9, None),
    (WorkloadKind::DaemonSet, "apps/v1beta2", 8, Some(16)),
    (WorkloadKind::DaemonSet, "extensions/v1beta1", 2, Some(16)),
    (WorkloadKind::StatefulSet, "apps/v1", 9, None),
    (WorkloadKind::StatefulSet, "apps/v1beta2", 8, Some(16)),
    (WorkloadKind::StatefulSet, "apps/v1beta1", 5, Some(16)),
    (WorkloadKind::Job, "batch/v1", 2, None),
    (WorkloadKind::CronJob, "batch/v1", 21, None),
    (WorkloadKind::CronJob, "batch/v1beta1", 8, Some(25)),
];

/// A workload in an API version its release does not serve: the apiserver answers 404 and
/// kubectl cannot map it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no matches for kind {:?} in version {:?}: Kubernetes {release} does not serve it{}{}",
    kind.as_str(),
    api_version,
    removed_in.map(|r| format!(" (removed in {r})")).unwrap_or_default(),
    instead.map(|v| format!("; use {v}")).unwrap_or_default()
)]
pub struct NotServed {
    /// The kind the object claims.
    pub kind: WorkloadKind,
    /// The `apiVersion` it is written in.
    pub api_version: String,
    /// The release checked against.
    pub release: Release,
    /// The release that stopped serving it, when it was served before.
    pub removed_in: Option<Release>,
    /// The `apiVersion` to use instead.
    pub instead: Option<&'static str>,
}

/// The kinds that carry a pod spec, and where they keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    /// A bare Pod.
    Pod,
    /// A PodTemplate.
    PodTemplate,
    /// An apps Deployment.
    Deployment,
    /// An apps ReplicaSet.
    ReplicaSet,
    /// An apps StatefulSet.
    StatefulSet,
    /// An apps DaemonSet.
    DaemonSet,
    /// A batch Job.
    Job,
    /// A batch CronJob (its job template's pod template).
    CronJob,
    /// A core ReplicationController.
    ReplicationController,
}

impl WorkloadKind {
    /// Every kind with a pod spec.
    pub const ALL: [Self; 9] = [
        Self::Pod,
        Self::PodTemplate,
        Self::Deployment,
        Self::ReplicaSet,
        Self::StatefulSet,
        Self::DaemonSet,
        Self::Job,
        Self::CronJob,
        Self::ReplicationController,
    ];

    /// The workload an API group and kind name, if it carries a pod spec. The group counts: a
    /// custom resource that happens to be called `Deployment` is not apps' Deployment.
    pub fn of(group: &str, kind: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|candidate| candidate.as_str() == kind && candidate.groups().contains(&group))
    }

    /// The API groups that have served the kind, in some version.
    fn groups(self) -> &'static [&'static str] {
        match self {
            Self::Pod | Self::PodTemplate | Self::ReplicationController => &[""],
            Self::Deployment | Self::ReplicaSet | Self::DaemonSet => &["apps", "extensions"],
            Self::StatefulSet => &["apps"],
            Self::Job | Self::CronJob => &["batch"],
        }
    }

    /// Whether Kubernetes `release` serves the kind in `api_version` (`apps/v1`), by default:
    /// the release's API as the Kubernetes deprecation guide lists removals (v1.16: the
    /// `extensions/v1beta1`, `apps/v1beta1` and `apps/v1beta2` workloads; v1.25:
    /// `batch/v1beta1` CronJob). Alpha versions are never served by default.
    pub fn served_in(self, api_version: &str, release: Release) -> Result<(), NotServed> {
        let versions = SERVED.iter().filter(|(kind, ..)| *kind == self);
        let current = |(_, _, from, until): &&(Self, &str, u32, Option<u32>)| {
            *from <= release.minor() && until.is_none_or(|until| release.minor() < until)
        };
        if versions
            .clone()
            .any(|entry| entry.1 == api_version && current(&entry))
        {
            return Ok(());
        }
        let removed_in = versions
            .clone()
            .find(|(_, version, ..)| *version == api_version)
            .and_then(|(.., until)| *until)
            .filter(|until| *until <= release.minor())
            .map(Release::new);
        let instead = versions
            .filter(current)
            .map(|(_, version, ..)| *version)
            .next();
        Err(NotServed {
            kind: self,
            api_version: api_version.to_owned(),
            release,
            removed_in,
            instead,
        })
    }

    /// The kind as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pod => "Pod",
            Self::PodTemplate => "PodTemplate",
            Self::Deployment => "Deployment",
            Self::ReplicaSet => "ReplicaSet",
            Self::StatefulSet => "StatefulSet",
            Self::DaemonSet => "DaemonSet",
            Self::Job => "Job",
            Self::CronJob => "CronJob",
            Self::ReplicationController => "ReplicationController",
        }
    }

    /// Where the pod template lives; empty for a Pod, which is its own template.
    fn template_fields(self) -> &'static [&'static str] {
        match self {
            Self::Pod => &[],
            Self::PodTemplate => &["template"],
            Self::CronJob => &["spec", "jobTemplate", "spec", "template"],
            Self::Deployment
            | Self::ReplicaSet
            | Self::StatefulSet
            | Self::DaemonSet
            | Self::Job
            | Self::ReplicationController => &["spec", "template"],
        }
    }

    /// The path of the pod template's `metadata` (the object's own for a Pod).
    pub fn metadata_path(self) -> FieldPath {
        FieldPath::from_fields(self.template_fields()).field("metadata")
    }

    /// The path of the pod spec: `spec`, `spec.template.spec`, `spec.jobTemplate.spec.template.spec`.
    pub fn spec_path(self) -> FieldPath {
        FieldPath::from_fields(self.template_fields()).field("spec")
    }
}

/// An object's pod template, typed, with the paths of its parts.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The kind of the object holding the template.
    pub kind: WorkloadKind,
    /// The pod template's metadata (labels and annotations of the pods to be created).
    pub metadata: ObjectMeta,
    /// The pod spec.
    pub spec: PodSpec,
    spec_path: FieldPath,
}

/// An object whose pod template does not have the shape of a Kubernetes pod spec.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{path}: {message}")]
pub struct WorkloadError {
    /// Where in the object the spec stops making sense.
    pub path: FieldPath,
    /// What is wrong there.
    pub message: String,
}

impl Workload {
    /// Reads the pod template of `object`, a `kind`; `Ok(None)` when the object has no
    /// template yet.
    pub fn from_object(kind: WorkloadKind, object: &Value) -> Result<Option<Self>, WorkloadError> {
        match read_template::<Template, _>(kind, object) {
            Ok(template) => Ok(Self::new(kind, template)),
            Err(_) => Err(trace(kind, object)),
        }
    }

    /// Reads the pod template straight from the object's JSON text, as the webhook receives
    /// it: one pass over the bytes, without building a JSON tree first.
    pub fn from_json(kind: WorkloadKind, json: &str) -> Result<Option<Self>, WorkloadError> {
        match read_template::<Template, _>(kind, &mut serde_json::Deserializer::from_str(json)) {
            Ok(template) => Ok(Self::new(kind, template)),
            Err(_) => Err(trace(kind, &mut serde_json::Deserializer::from_str(json))),
        }
    }

    fn new(kind: WorkloadKind, template: Option<Template>) -> Option<Self> {
        let template = template?;
        Some(Self {
            kind,
            metadata: template.metadata.unwrap_or_default(),
            spec: template.spec?,
            spec_path: kind.spec_path(),
        })
    }

    /// The path of the pod spec in the object (`spec`, `spec.template.spec`, …).
    pub fn spec_path(&self) -> &FieldPath {
        &self.spec_path
    }

    /// The init containers, in the order they run.
    pub fn init_containers(&self) -> &[Container] {
        self.spec.init_containers.as_deref().unwrap_or_default()
    }

    /// The app containers.
    pub fn app_containers(&self) -> &[Container] {
        &self.spec.containers
    }

    /// The ephemeral containers (only Pods have them).
    pub fn ephemeral_containers(&self) -> &[EphemeralContainer] {
        self.spec
            .ephemeral_containers
            .as_deref()
            .unwrap_or_default()
    }

    /// Every container of the pod, init containers first, then app, then ephemeral: the order
    /// in which the apiserver validates them and the kubelet starts them.
    pub fn containers(&self) -> impl Iterator<Item = ContainerRef<'_>> {
        let init = self
            .init_containers()
            .iter()
            .enumerate()
            .map(|(index, c)| ContainerRef::of_container(ContainerKind::Init, index, c));
        let app = self
            .app_containers()
            .iter()
            .enumerate()
            .map(|(index, c)| ContainerRef::of_container(ContainerKind::App, index, c));
        let ephemeral = self
            .ephemeral_containers()
            .iter()
            .enumerate()
            .map(|(index, c)| ContainerRef {
                kind: ContainerKind::Ephemeral,
                index,
                name: &c.name,
                image: c.image.as_deref(),
                security_context: c.security_context.as_ref(),
                ports: c.ports.as_deref().unwrap_or_default(),
                probes: [&c.liveness_probe, &c.readiness_probe, &c.startup_probe]
                    .map(Option::as_ref),
                lifecycle: c.lifecycle.as_ref(),
            });
        init.chain(app).chain(ephemeral)
    }

    /// The path of a container: `spec.initContainers[2]`.
    pub fn container_path(&self, kind: ContainerKind, index: usize) -> FieldPath {
        self.spec_path.field(kind.field_name()).index(index)
    }
    /// Every container as the [`view::Containers`] table WebAssembly policies read, in the
    /// order of [`Self::containers`]. An error only when the containers' text outgrows the
    /// table's `u32` offsets (4 GiB).
    pub fn views(&self) -> Result<view::Containers, WorkloadError> {
        fn resources(
            list: Option<&std::collections::BTreeMap<String, Quantity>>,
        ) -> impl Iterator<Item = (&str, &str)> {
            list.into_iter()
                .flatten()
                .map(|(name, quantity)| (name.as_str(), quantity.0.as_str()))
        }
        let mut table = view::ContainersBuilder::default();
        // `Container` and `EphemeralContainer` are distinct types with these fields in common.
        macro_rules! push {
            ($kind:expr, $list:expr) => {
                for (index, c) in $list.iter().enumerate() {
                    let requirements = c.resources.as_ref();
                    table.push(
                        &view::Fields {
                            kind: $kind,
                            index,
                            path: &self.container_path($kind, index),
                            name: &c.name,
                            image: c.image.as_deref(),
                            image_pull_policy: c.image_pull_policy.as_deref(),
                            restart_policy: c.restart_policy.as_deref(),
                            command: c.command.as_deref().unwrap_or_default(),
                            args: c.args.as_deref().unwrap_or_default(),
                        },
                        resources(requirements.and_then(|r| r.requests.as_ref())),
                        resources(requirements.and_then(|r| r.limits.as_ref())),
                    );
                }
            };
        }
        push!(ContainerKind::Init, self.init_containers());
        push!(ContainerKind::App, self.app_containers());
        push!(ContainerKind::Ephemeral, self.ephemeral_containers());
        table.finish().ok_or_else(|| WorkloadError {
            path: self.spec_path.clone(),
            message: "the containers hold more than 4 GiB of text".to_owned(),
        })
    }
}

/// The pod template of a Pod: its own metadata and spec.
#[derive(Deserialize)]
struct Template {
    metadata: Option<ObjectMeta>,
    spec: Option<PodSpec>,
}

/// `template` at the top (PodTemplate) or under `spec` (Deployment and the like).
#[derive(Deserialize)]
struct HasTemplate<T> {
    template: Option<T>,
}

#[derive(Deserialize)]
struct HasSpecTemplate<T> {
    spec: Option<HasTemplate<T>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HasJobTemplate<T> {
    job_template: Option<HasSpecTemplate<T>>,
}

#[derive(Deserialize)]
struct CronJobShape<T> {
    spec: Option<HasJobTemplate<T>>,
}

/// Reads only the template of a `kind` object; every other field is skipped unparsed.
fn read_template<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    kind: WorkloadKind,
    object: D,
) -> Result<Option<T>, D::Error> {
    Ok(match kind {
        WorkloadKind::Pod => Some(T::deserialize(object)?),
        WorkloadKind::PodTemplate => HasTemplate::<T>::deserialize(object)?.template,
        WorkloadKind::CronJob => CronJobShape::<T>::deserialize(object)?
            .spec
            .and_then(|s| s.job_template)
            .and_then(|j| j.spec)
            .and_then(|s| s.template),
        WorkloadKind::Deployment
        | WorkloadKind::ReplicaSet
        | WorkloadKind::StatefulSet
        | WorkloadKind::DaemonSet
        | WorkloadKind::Job
        | WorkloadKind::ReplicationController => HasSpecTemplate::<T>::deserialize(object)?
            .spec
            .and_then(|s| s.template),
    })
}

/// Reads the template again with path tracing, after a failed read, for an error at the field
/// that does not fit (`spec.template.spec.containers[0].ports`).
fn trace<'de, D: Deserializer<'de>>(kind: WorkloadKind, object: D) -> WorkloadError {
    let traced = match kind {
        WorkloadKind::Pod => serde_path_to_error::deserialize::<_, Template>(object).map(drop),
        WorkloadKind::PodTemplate => {
            serde_path_to_error::deserialize::<_, HasTemplate<Template>>(object).map(drop)
        }
        WorkloadKind::CronJob => {
            serde_path_to_error::deserialize::<_, CronJobShape<Template>>(object).map(drop)
        }
        WorkloadKind::Deployment
        | WorkloadKind::ReplicaSet
        | WorkloadKind::StatefulSet
        | WorkloadKind::DaemonSet
        | WorkloadKind::Job
        | WorkloadKind::ReplicationController => {
            serde_path_to_error::deserialize::<_, HasSpecTemplate<Template>>(object).map(drop)
        }
    };
    let Err(error) = traced else {
        return WorkloadError {
            path: kind.spec_path(),
            message: "the pod template does not parse".to_owned(),
        };
    };
    let mut path = FieldPath::root();
    for segment in error.path() {
        path = match segment {
            serde_path_to_error::Segment::Seq { index } => path.index(*index),
            serde_path_to_error::Segment::Map { key } => path.field(key.clone()),
            serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => {
                path
            }
        };
    }
    WorkloadError {
        path,
        message: error.into_inner().to_string(),
    }
}

/// The fields every kind of container shares, for rules that look at all of them.
#[derive(Debug, Clone, Copy)]
pub struct ContainerRef<'a> {
    /// Which list the container is in.
    pub kind: ContainerKind,
    /// Its index in that list.
    pub index: usize,
    /// Its name.
    pub name: &'a str,
    /// Its image, as written.
    pub image: Option<&'a str>,
    /// Its security context.
    pub security_context: Option<&'a SecurityContext>,
    /// Its ports.
    pub ports: &'a [ContainerPort],
    /// Liveness, readiness and startup probes, in that order.
    pub probes: [Option<&'a Probe>; 3],
    /// Its lifecycle hooks.
    pub lifecycle: Option<&'a Lifecycle>,
}

impl<'a> ContainerRef<'a> {
    fn of_container(kind: ContainerKind, index: usize, c: &'a Container) -> Self {
        Self {
            kind,
            index,
            name: &c.name,
            image: c.image.as_deref(),
            security_context: c.security_context.as_ref(),
            ports: c.ports.as_deref().unwrap_or_default(),
            probes: [&c.liveness_probe, &c.readiness_probe, &c.startup_probe].map(Option::as_ref),
            lifecycle: c.lifecycle.as_ref(),
        }
    }
}

/// Whether an init container is a sidecar: it keeps running beside the app containers.
pub fn is_sidecar(container: &Container) -> bool {
    container.restart_policy.as_deref() == Some("Always")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_every_workload_kind_with_its_prefix() {
        let pod_spec = json!({"initContainers": [{"name": "init", "image": "busybox:1.36"}], "containers": [{"name": "app"}]});
        let template = json!({"metadata": {"labels": {"a": "b"}}, "spec": pod_spec});
        let cases = [
            (
                "Pod",
                json!({"metadata": {"labels": {"a": "b"}}, "spec": pod_spec}),
                "spec",
            ),
            (
                "PodTemplate",
                json!({"template": template}),
                "template.spec",
            ),
            (
                "Deployment",
                json!({"spec": {"template": template}}),
                "spec.template.spec",
            ),
            (
                "ReplicaSet",
                json!({"spec": {"template": template}}),
                "spec.template.spec",
            ),
            (
                "StatefulSet",
                json!({"spec": {"template": template}}),
                "spec.template.spec",
            ),
            (
                "DaemonSet",
                json!({"spec": {"template": template}}),
                "spec.template.spec",
            ),
            (
                "Job",
                json!({"spec": {"template": template}}),
                "spec.template.spec",
            ),
            (
                "ReplicationController",
                json!({"spec": {"template": template}}),
                "spec.template.spec",
            ),
            (
                "CronJob",
                json!({"spec": {"jobTemplate": {"spec": {"template": template}}}}),
                "spec.jobTemplate.spec.template.spec",
            ),
        ];
        for (kind, object, prefix) in cases {
            let workload = Workload::from_object(named(kind), &object)
                .unwrap()
                .unwrap();
            assert_eq!(workload.spec_path().to_string(), prefix, "{kind}");
            assert_eq!(workload.init_containers()[0].name, "init", "{kind}");
            assert_eq!(
                workload.metadata.labels.as_ref().unwrap()["a"],
                "b",
                "{kind}"
            );
            assert_eq!(
                workload
                    .container_path(ContainerKind::Init, 1)
                    .field("image")
                    .to_string(),
                format!("{prefix}.initContainers[1].image")
            );
            // The views WASM policies read: the same containers, from a tree and from text.
            let text = object.to_string();
            for workload in [
                Workload::from_object(named(kind), &object)
                    .unwrap()
                    .unwrap(),
                Workload::from_json(named(kind), &text).unwrap().unwrap(),
            ] {
                let views = workload.views().unwrap();
                let seen: Vec<_> = views
                    .iter()
                    .map(|c| (c.kind(), c.index(), c.path(), c.name(), c.image()))
                    .collect();
                assert_eq!(
                    seen,
                    [
                        (
                            ContainerKind::Init,
                            0,
                            format!("{prefix}.initContainers[0]").as_str(),
                            "init",
                            Some("busybox:1.36")
                        ),
                        (
                            ContainerKind::App,
                            0,
                            format!("{prefix}.containers[0]").as_str(),
                            "app",
                            None
                        )
                    ],
                    "{kind}"
                );
            }
        }
    }

    #[test]
    fn views_carry_the_common_fields_of_every_kind_of_container() {
        let text = r#"{"spec": {"initContainers": [{"name": "a", "image": "reg.example.com\/x:1",
            "restartPolicy": "Always", "command": ["sh"], "args": ["-c", "true"],
            "resources": {"requests": {"cpu": "10m"}, "limits": {"cpu": "1", "memory": "1Gi"}}}],
            "containers": [], "ephemeralContainers": [{"name": "d", "image": "busybox:1.36",
            "imagePullPolicy": "Never"}]}}"#;
        let views = Workload::from_json(WorkloadKind::Pod, text)
            .unwrap()
            .unwrap()
            .views()
            .unwrap();
        let [init, debug] = views.iter().collect::<Vec<_>>()[..] else {
            panic!("{views:?}");
        };
        assert_eq!(init.image(), Some("reg.example.com/x:1"));
        assert_eq!(init.restart_policy(), Some("Always"));
        assert_eq!((init.command().len(), init.args().len()), (1, 2));
        assert_eq!(init.requests().collect::<Vec<_>>(), [("cpu", "10m")]);
        assert_eq!(init.limits().len(), 2);
        assert_eq!(init.pointer(), "/spec/initContainers/0");
        assert_eq!(init.field("image"), "spec.initContainers[0].image");
        assert_eq!(
            (debug.kind(), debug.path()),
            (ContainerKind::Ephemeral, "spec.ephemeralContainers[0]")
        );
        assert_eq!(debug.image_pull_policy(), Some("Never"));
    }

    fn named(kind: &str) -> WorkloadKind {
        WorkloadKind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind)
            .unwrap()
    }

    #[test]
    fn other_kinds_have_no_workload() {
        assert_eq!(WorkloadKind::of("", "ConfigMap"), None);
        assert_eq!(
            WorkloadKind::of("example.com", "Deployment"),
            None,
            "a custom resource named Deployment is not apps' Deployment"
        );
        assert_eq!(WorkloadKind::of("apps", "Pod"), None);
        assert_eq!(
            WorkloadKind::of("extensions", "DaemonSet"),
            Some(WorkloadKind::DaemonSet)
        );
        assert!(
            Workload::from_object(WorkloadKind::Deployment, &json!({"spec": {}}))
                .unwrap()
                .is_none()
        );
    }

    /// Removals as the Kubernetes deprecation guide (kubernetes/website
    /// `content/en/docs/reference/using-api/deprecation-guide.md`) lists them, with kubectl's
    /// RESTMapper wording (apimachinery `pkg/api/meta/errors.go`, `NoKindMatchError.Error`).
    #[test]
    fn api_versions_are_served_by_release() {
        let latest = crate::release::LATEST;
        assert_eq!(WorkloadKind::DaemonSet.served_in("apps/v1", latest), Ok(()));
        assert_eq!(
            WorkloadKind::DaemonSet
                .served_in("extensions/v1beta1", latest)
                .unwrap_err()
                .to_string(),
            format!(
                "no matches for kind \"DaemonSet\" in version \"extensions/v1beta1\": Kubernetes {latest} does not serve it (removed in v1.16); use apps/v1"
            )
        );
        let v1_15 = Release::new(15);
        assert_eq!(
            WorkloadKind::Deployment.served_in("extensions/v1beta1", v1_15),
            Ok(())
        );
        assert_eq!(
            WorkloadKind::CronJob.served_in("batch/v1beta1", Release::new(24)),
            Ok(())
        );
        let cron = WorkloadKind::CronJob
            .served_in("batch/v1beta1", Release::new(25))
            .unwrap_err();
        assert_eq!(cron.removed_in, Some(Release::new(25)));
        assert_eq!(cron.instead, Some("batch/v1"));
        let early = WorkloadKind::CronJob
            .served_in("batch/v1", Release::new(20))
            .unwrap_err();
        assert_eq!(
            (early.removed_in, early.instead),
            (None, Some("batch/v1beta1")),
            "batch/v1 CronJob arrived in v1.21"
        );
        assert!(
            WorkloadKind::CronJob
                .served_in("batch/v2alpha1", latest)
                .is_err(),
            "alpha versions are off by default"
        );
        assert_eq!(WorkloadKind::Pod.served_in("v1", Release::new(0)), Ok(()));
    }

    #[test]
    fn json_and_tree_read_alike() {
        let object = json!({"spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}}});
        let from_tree = Workload::from_object(WorkloadKind::Deployment, &object)
            .unwrap()
            .unwrap();
        let from_json = Workload::from_json(WorkloadKind::Deployment, &object.to_string())
            .unwrap()
            .unwrap();
        assert_eq!(from_tree.spec, from_json.spec);
        assert_eq!(from_tree.metadata, from_json.metadata);
        let error = Workload::from_json(WorkloadKind::CronJob, r#"{"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": 5}]}}}}}}"#)
            .unwrap_err();
        assert_eq!(
            error.path.to_string(),
            "spec.jobTemplate.spec.template.spec.containers[0].name"
        );
    }

    #[test]
    fn malformed_spec_names_its_path() {
        let error = Workload::from_object(
            WorkloadKind::Deployment,
            &json!({"spec": {"template": {"spec": {"containers": 3}}}}),
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("spec.template.spec.containers: invalid type"),
            "{error}"
        );
    }
}
