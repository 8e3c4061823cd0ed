//! What a policy reads of a pod spec without the Kubernetes types: the fields of containers
//! that policies commonly look at, owned and plain. WebAssembly policies get these from the
//! host, which builds them from the pod template it has parsed for every policy; natively they
//! come from [`crate::Workload::views`], so a policy sees the same in both.

use crate::path::FieldPath;

/// The three lists of containers a pod spec holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ContainerKind {
    /// `initContainers`.
    #[default]
    Init,
    /// `containers`.
    App,
    /// `ephemeralContainers`.
    Ephemeral,
}

impl ContainerKind {
    /// The pod spec field holding containers of this kind.
    pub fn field_name(self) -> &'static str {
        match self {
            Self::Init => "initContainers",
            Self::App => "containers",
            Self::Ephemeral => "ephemeralContainers",
        }
    }
}

/// The fields of one container that policies commonly read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Container {
    /// Which list the container is in.
    pub kind: ContainerKind,
    /// Its index in that list.
    pub index: usize,
    /// Its path in apiserver notation: `spec.template.spec.initContainers[0]`.
    pub path: String,
    /// Its name.
    pub name: String,
    /// Its image, as written.
    pub image: Option<String>,
    /// `imagePullPolicy`, as written.
    pub image_pull_policy: Option<String>,
    /// `restartPolicy`: `Always` makes an init container a sidecar.
    pub restart_policy: Option<String>,
    /// The entrypoint.
    pub command: Vec<String>,
    /// Its arguments.
    pub args: Vec<String>,
    /// Resource requests, by resource name, with quantities as written.
    pub requests: Vec<(String, String)>,
    /// Resource limits, likewise.
    pub limits: Vec<(String, String)>,
}

impl Container {
    /// The path of one of the container's fields: `spec.initContainers[0].image`.
    pub fn field(&self, name: &str) -> String {
        format!("{}.{name}", self.path)
    }

    /// The JSON pointer of the container (`/spec/initContainers/0`), for patches.
    pub fn pointer(&self) -> String {
        // The host writes paths of fields and indices only, which always parse.
        FieldPath::parse(&self.path)
            .map(|path| path.to_json_pointer())
            .unwrap_or_default()
    }
}
