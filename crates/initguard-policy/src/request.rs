//! The request a policy judges: one type over two backends. In WebAssembly every accessor is a
//! call to the host's `review` resource; natively it reads initguard's own parsed request, so
//! that a policy's `cargo test` sees what the cluster shows it.

use initguard_core::view::Containers;

use crate::Error;
pub use crate::bindings::initguard::policy::request::{GroupVersionKind, Operation, UserInfo};

#[cfg(target_arch = "wasm32")]
type Backend<'a> = &'a crate::bindings::initguard::policy::request::Review;
#[cfg(not(target_arch = "wasm32"))]
type Backend<'a> = &'a initguard_core::Request;

/// The admission request under review.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    backend: Backend<'a>,
}

#[cfg(target_arch = "wasm32")]
impl<'a> Request<'a> {
    #[doc(hidden)]
    pub fn of_review(review: Backend<'a>) -> Self {
        Self { backend: review }
    }

    /// The request's id.
    pub fn uid(&self) -> String {
        self.backend.uid()
    }

    /// The kind of the object.
    pub fn kind(&self) -> GroupVersionKind {
        self.backend.kind()
    }

    /// What the user asks to do.
    pub fn operation(&self) -> Operation {
        self.backend.operation()
    }

    /// The object's namespace; `None` for cluster-scoped objects.
    pub fn namespace(&self) -> Option<String> {
        self.backend.namespace()
    }

    /// The object's name; empty on a CREATE with `generateName`.
    pub fn name(&self) -> String {
        self.backend.name()
    }

    /// Who asks.
    pub fn user(&self) -> UserInfo {
        self.backend.user()
    }

    /// Whether nothing will be persisted (`--dry-run=server`, and offline checks).
    pub fn dry_run(&self) -> bool {
        self.backend.dry_run()
    }

    /// A label of the object.
    pub fn label(&self, key: &str) -> Option<String> {
        self.backend.label(key)
    }

    /// An annotation of the object.
    pub fn annotation(&self, key: &str) -> Option<String> {
        self.backend.annotation(key)
    }

    /// Where the pod spec is, in apiserver notation (`spec.template.spec`); `None` for kinds
    /// without one.
    pub fn pod_spec_path(&self) -> Option<String> {
        self.backend.pod_spec_path()
    }

    /// Every container of the pod spec (init, then app, then ephemeral); empty for kinds
    /// without one, an error when the pod spec is malformed.
    pub fn containers(&self) -> Result<Containers, Error> {
        let table = self.backend.containers().map_err(Error::new)?;
        Containers::from_parts(table.text, table.layout).map_err(|e| Error::new(e.to_string()))
    }

    /// The subtree of the object at an RFC 6901 pointer (`""`: the whole object) as JSON
    /// text; `None` where nothing is. Only what is asked for is copied.
    pub fn object(&self, pointer: &str) -> Option<String> {
        self.backend.object(pointer)
    }

    /// The same, of the object before an UPDATE or DELETE.
    pub fn old_object(&self, pointer: &str) -> Option<String> {
        self.backend.old_object(pointer)
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl<'a> Request<'a> {
    /// The request backed by initguard's own parsed request, as in a native test.
    pub fn native(request: &'a initguard_core::Request) -> Self {
        Self { backend: request }
    }

    /// The request's id.
    pub fn uid(&self) -> String {
        self.backend.facts.uid.clone()
    }

    /// The kind of the object.
    pub fn kind(&self) -> GroupVersionKind {
        let kind = &self.backend.facts.kind;
        GroupVersionKind {
            group: kind.group.clone(),
            version: kind.version.clone(),
            kind: kind.kind.clone(),
        }
    }

    /// What the user asks to do.
    pub fn operation(&self) -> Operation {
        use initguard_core::request::Operation as Op;
        match self.backend.facts.operation {
            Op::Create => Operation::Create,
            Op::Update => Operation::Update,
            Op::Delete => Operation::Delete,
            Op::Connect => Operation::Connect,
        }
    }

    /// The object's namespace; `None` for cluster-scoped objects.
    pub fn namespace(&self) -> Option<String> {
        self.backend.facts.namespace.clone()
    }

    /// The object's name; empty on a CREATE with `generateName`.
    pub fn name(&self) -> String {
        self.backend.facts.name.clone()
    }

    /// Who asks.
    pub fn user(&self) -> UserInfo {
        let user = &self.backend.facts.user_info;
        UserInfo {
            username: user.username.clone().unwrap_or_default(),
            uid: user.uid.clone().unwrap_or_default(),
            groups: user.groups.clone().unwrap_or_default(),
        }
    }

    /// Whether nothing will be persisted (`--dry-run=server`, and offline checks).
    pub fn dry_run(&self) -> bool {
        self.backend.facts.dry_run
    }

    /// A label of the object.
    pub fn label(&self, key: &str) -> Option<String> {
        self.backend.object_label(key).map(str::to_owned)
    }

    /// An annotation of the object.
    pub fn annotation(&self, key: &str) -> Option<String> {
        self.backend.object_annotation(key).map(str::to_owned)
    }

    /// Where the pod spec is, in apiserver notation (`spec.template.spec`); `None` for kinds
    /// without one.
    pub fn pod_spec_path(&self) -> Option<String> {
        Some(self.backend.workload_kind()?.spec_path().to_string())
    }

    /// Every container of the pod spec (init, then app, then ephemeral); empty for kinds
    /// without one, an error when the pod spec is malformed.
    pub fn containers(&self) -> Result<Containers, Error> {
        Ok(self.backend.container_views()?)
    }

    /// The subtree of the object at an RFC 6901 pointer (`""`: the whole object) as JSON
    /// text; `None` where nothing is. Only what is asked for is copied.
    pub fn object(&self, pointer: &str) -> Option<String> {
        self.backend.object_json(pointer)
    }

    /// The same, of the object before an UPDATE or DELETE.
    pub fn old_object(&self, pointer: &str) -> Option<String> {
        self.backend.old_object_json(pointer)
    }
}

#[cfg(feature = "full")]
impl Request<'_> {
    /// The subtree of the object at `pointer`, typed: for fields the views do not offer.
    pub fn object_as<T: serde::de::DeserializeOwned>(
        &self,
        pointer: &str,
    ) -> Result<Option<T>, Error> {
        self.object(pointer)
            .map(|json| serde_json::from_str(&json))
            .transpose()
            .map_err(Error::from)
    }

    /// The object's pod template with the typed k8s-openapi `PodSpec`; `None` for kinds
    /// without one.
    pub fn workload(&self) -> Result<Option<initguard_core::Workload>, Error> {
        let kind = self.kind();
        let (Some(kind), Some(json)) = (
            initguard_core::WorkloadKind::of(&kind.group, &kind.kind),
            self.object(""),
        ) else {
            return Ok(None);
        };
        Ok(initguard_core::Workload::from_json(kind, &json)?)
    }
}
