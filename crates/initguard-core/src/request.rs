//! Admission requests: parsed once from an `AdmissionReview` (v1 or v1beta1) with kube-core's
//! types, or built for an offline manifest, then viewed by every policy.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_core::admission::AdmissionRequest;
pub use kube_core::admission::Operation;
pub use kube_core::gvk::{GroupVersionKind, GroupVersionResource};
use kube_core::{DynamicResourceScope, Resource};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::workload::{Workload, WorkloadError, WorkloadKind};

/// The `admission.k8s.io` versions the apiserver speaks; a response uses the request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReviewVersion {
    /// `admission.k8s.io/v1`.
    V1,
    /// `admission.k8s.io/v1beta1`, which the apiserver still sends when a webhook asks for it.
    V1Beta1,
}

impl ReviewVersion {
    /// The `apiVersion` of reviews of this version.
    pub fn api_version(self) -> &'static str {
        match self {
            Self::V1 => "admission.k8s.io/v1",
            Self::V1Beta1 => "admission.k8s.io/v1beta1",
        }
    }
}

/// Why a body is not an AdmissionReview this server can answer.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("request body is not a valid AdmissionReview: {0}")]
    /// The body is not JSON, or not shaped like a review.
    Json(#[from] serde_json::Error),
    #[error("request body is not a valid AdmissionReview: expected a JSON object")]
    /// The body is JSON, but not an object.
    NotAnObject,
    #[error(
        "unsupported apiVersion {0:?}: expected admission.k8s.io/v1 or admission.k8s.io/v1beta1"
    )]
    /// An `apiVersion` that is not an AdmissionReview version initguard answers.
    UnsupportedVersion(String),
    #[error("unsupported kind {0:?}: expected AdmissionReview")]
    /// A `kind` other than `AdmissionReview`.
    WrongKind(String),
    #[error("AdmissionReview has no request")]
    /// A review without a `request`.
    MissingRequest,
    #[error("AdmissionReview request has an empty uid")]
    /// A request without a `uid`, which the answer must echo.
    EmptyUid,
}

/// A parsed AdmissionReview: the version to answer in and the request.
#[derive(Debug)]
pub struct Review {
    /// The version the review came in, which the answer uses too.
    pub version: ReviewVersion,
    /// The request.
    pub request: Request,
}

impl Review {
    /// Parses an AdmissionReview body, checking what kube-core leaves to the caller: the body
    /// and its objects are JSON objects, nested no deeper than serde_json's limit, with
    /// metadata of the right shape.
    pub fn from_slice(body: &[u8]) -> Result<Self, ReviewError> {
        // serde reads a struct from a JSON array too; a review is always an object.
        if body
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b != b'{')
        {
            return Err(ReviewError::NotAnObject);
        }
        let review = Self::from_envelope(serde_json::from_slice(body)?)?;
        let request = &review.request;
        for object in request
            .object
            .as_deref()
            .into_iter()
            .chain(&request.facts.old_object)
        {
            object.check()?;
        }
        Ok(review)
    }

    /// Accepts an AdmissionReview already read as JSON (from a manifest file, say).
    pub fn from_value(value: &Value) -> Result<Self, ReviewError> {
        Self::from_slice(&serde_json::to_vec(value)?)
    }

    fn from_envelope(review: Envelope) -> Result<Self, ReviewError> {
        if review.kind != "AdmissionReview" {
            return Err(ReviewError::WrongKind(review.kind));
        }
        let version = match review.api_version.as_str() {
            "admission.k8s.io/v1" => ReviewVersion::V1,
            "admission.k8s.io/v1beta1" => ReviewVersion::V1Beta1,
            _ => return Err(ReviewError::UnsupportedVersion(review.api_version)),
        };
        let request = review.request.ok_or(ReviewError::MissingRequest)?;
        if request.uid.is_empty() {
            return Err(ReviewError::EmptyUid);
        }
        Ok(Self {
            version,
            request: Request::from_admission(request),
        })
    }
}

/// The outside of an AdmissionReview around kube-core's request type.
///
/// kube-core's `AdmissionReview` and `DynamicObject` use `#[serde(flatten)]`, which makes serde
/// buffer and re-read the whole body; this envelope and [`RawObject`] read it once.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    api_version: String,
    kind: String,
    request: Option<AdmissionRequest<RawObject>>,
}

/// An object of a review, kept as the JSON text the apiserver sent. Policies read typed views
/// straight from the text; a JSON tree is built only when a policy asks for one (mutations).
#[derive(Debug, Clone)]
struct RawObject {
    json: Box<RawValue>,
    /// kube-core's [`Resource`] bound asks for metadata by reference; initguard reads it
    /// lazily through [`Request::object_meta`] instead, so this stays empty.
    unread_metadata: ObjectMeta,
}

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = Box::<RawValue>::deserialize(deserializer)?;
        if !json.get().starts_with('{') {
            return Err(serde::de::Error::custom(
                "object: expected a Kubernetes object (a JSON object)",
            ));
        }
        Ok(Self {
            json,
            unread_metadata: ObjectMeta::default(),
        })
    }
}

/// The metadata of an object's JSON text, in one pass that also holds the rest of the object
/// to serde_json's recursion limit.
///
/// Raw values are not held to that limit (serde_json skips them without counting), yet a
/// policy may build a tree of any part of the object later, so the depth is bounded here, on
/// receipt, where the error can say what is wrong. Visiting the other fields rather than
/// skipping them costs about what skipping does, and saves a separate scan for the depth.
fn read_metadata(json: &str) -> Result<ObjectMeta, serde_json::Error> {
    serde_json::from_str::<MetadataAndTheRest>(json).map(|read| read.0.unwrap_or_default())
}

/// The top-level fields of an object: `metadata` typed, every other one visited as
/// [`Nested`].
struct MetadataAndTheRest(Option<ObjectMeta>);

impl<'de> Deserialize<'de> for MetadataAndTheRest {
    fn deserialize<D: serde::Deserializer<'de>>(object: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(field_identifier, rename_all = "lowercase")]
        enum Field {
            Metadata,
            #[serde(other)]
            Other,
        }

        struct Fields;

        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = MetadataAndTheRest;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a Kubernetes object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut fields: A,
            ) -> Result<Self::Value, A::Error> {
                let mut metadata = None;
                while let Some(field) = fields.next_key()? {
                    match field {
                        Field::Metadata if metadata.is_some() => {
                            return Err(serde::de::Error::duplicate_field("metadata"));
                        }
                        Field::Metadata => {
                            metadata = Some(fields.next_value::<Option<ObjectMeta>>()?);
                        }
                        Field::Other => {
                            fields.next_value::<Nested>()?;
                        }
                    }
                }
                Ok(MetadataAndTheRest(metadata.flatten()))
            }
        }

        object.deserialize_map(Fields)
    }
}

/// Any JSON value, visited only so that serde_json counts the arrays and objects it holds
/// against its recursion limit.
#[derive(Clone, Copy)]
struct Nested;

impl<'de> Deserialize<'de> for Nested {
    fn deserialize<D: serde::Deserializer<'de>>(value: D) -> Result<Self, D::Error> {
        value.deserialize_any(Nested)
    }
}

impl<'de> serde::de::Visitor<'de> for Nested {
    type Value = Self;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<Self, A::Error> {
        while items.next_element::<Self>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut entries: A) -> Result<Self, A::Error> {
        while entries
            .next_entry::<serde::de::IgnoredAny, Self>()?
            .is_some()
        {}
        Ok(self)
    }
}

/// The deepest an object may nest: serde_json's recursion limit, which refuses the 128th
/// level of arrays and objects.
const MAX_DEPTH: usize = 127;

impl Serialize for RawObject {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(serializer)
    }
}

impl Resource for RawObject {
    type DynamicType = ();
    type Scope = DynamicResourceScope;

    fn kind((): &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn group((): &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn version((): &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn plural((): &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn meta(&self) -> &ObjectMeta {
        &self.unread_metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.unread_metadata
    }
}

/// What every policy sees of one admission request: the facts of the request, shared by every
/// policy of the chain, and the object as the policies before it left it.
///
/// Cloning shares both (a WebAssembly policy's store holds a clone while it runs): what is
/// parsed of the object on first use is parsed once for every policy.
#[derive(Debug, Clone)]
pub struct Request {
    /// The request's facts; shared, never copied, as mutating policies change the object.
    pub facts: Arc<Facts>,
    object: Option<Arc<Object>>,
}

/// What an admission request says that no policy changes: who asks to do what to which
/// object, and the object as it was before an UPDATE.
#[derive(Debug, Clone)]
pub struct Facts {
    /// The request's id, echoed in the answer.
    pub uid: String,
    /// The kind of the object.
    pub kind: GroupVersionKind,
    /// The resource the request is about.
    pub resource: GroupVersionResource,
    /// What the user asks to do.
    pub operation: Operation,
    /// The object's namespace; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// The object's name; may be empty on CREATE with `generateName`.
    pub name: String,
    /// Who asks.
    pub user_info: UserInfo,
    /// Whether nothing will be persisted (`kubectl --dry-run=server`, and offline checks).
    pub dry_run: bool,
    /// Labels of the request's namespace when known (offline from Namespace manifests). The
    /// apiserver does not send them; see [`crate::matching`] for what applies then.
    pub namespace_labels: Option<BTreeMap<String, String>>,
    old_object: Option<Object>,
}

/// An object of a request: its body as received, its metadata and pod template typed on first
/// use and shared by every policy that reads them.
#[derive(Debug, Clone)]
struct Object {
    metadata: OnceLock<ObjectMeta>,
    workload: OnceLock<Result<Option<Workload>, WorkloadError>>,
    /// The containers table every WebAssembly policy of the request reads, built once.
    views: OnceLock<Result<crate::view::Containers, WorkloadError>>,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    /// JSON text from a review; the tree is built on first use.
    Json {
        json: Box<RawValue>,
        tree: OnceLock<Value>,
    },
    Tree(Value),
}

impl Object {
    fn from_value(value: Value) -> Self {
        Self {
            metadata: OnceLock::new(),
            workload: OnceLock::new(),
            views: OnceLock::new(),
            body: Body::Tree(value),
        }
    }

    fn from_raw(raw: RawObject) -> Self {
        Self {
            metadata: OnceLock::new(),
            workload: OnceLock::new(),
            views: OnceLock::new(),
            body: Body::Json {
                json: raw.json,
                tree: OnceLock::new(),
            },
        }
    }

    fn read_metadata(&self) -> Result<ObjectMeta, serde_json::Error> {
        match &self.body {
            Body::Json { json, .. } => read_metadata(json.get()),
            Body::Tree(value) => value
                .get("metadata")
                .map(ObjectMeta::deserialize)
                .transpose()
                .map(Option::unwrap_or_default),
        }
    }

    /// The typed metadata; an object whose metadata does not parse has none (a review that
    /// went through [`Review::from_slice`] never has such an object).
    fn metadata(&self) -> &ObjectMeta {
        self.metadata
            .get_or_init(|| self.read_metadata().unwrap_or_default())
    }

    /// What [`Review::from_slice`] checks of a received object: its depth, and its metadata,
    /// which is kept.
    fn check(&self) -> Result<(), ReviewError> {
        let invalid = |message: String| ReviewError::Json(serde::de::Error::custom(message));
        let metadata = self.read_metadata().map_err(|e| {
            let message = e.to_string();
            match message.strip_prefix("recursion limit exceeded") {
                Some(at) => invalid(format!("object: nested deeper than {MAX_DEPTH} levels{at}")),
                None => invalid(format!("object.metadata: {message}")),
            }
        })?;
        let _ = self.metadata.set(metadata);
        Ok(())
    }

    fn value(&self) -> &Value {
        match &self.body {
            Body::Tree(value) => value,
            // The text is valid JSON within serde_json's depth limit, so this parse succeeds.
            Body::Json { json, tree } => {
                tree.get_or_init(|| serde_json::from_str(json.get()).unwrap_or(Value::Null))
            }
        }
    }

    fn json_at(&self, pointer: &str) -> Option<String> {
        if let (Body::Json { json, .. }, "") = (&self.body, pointer) {
            return Some(json.get().to_owned());
        }
        self.value().pointer(pointer).map(Value::to_string)
    }

    /// The typed pod template of an object of `kind`, read from the text as received.
    fn views(&self, kind: WorkloadKind) -> Result<crate::view::Containers, WorkloadError> {
        self.views
            .get_or_init(|| {
                Ok(self
                    .workload(kind)?
                    .map(Workload::views)
                    .transpose()?
                    .unwrap_or_default())
            })
            .clone()
    }

    fn workload(&self, kind: WorkloadKind) -> Result<Option<&Workload>, WorkloadError> {
        let cached = self.workload.get_or_init(|| match &self.body {
            Body::Tree(value) => Workload::from_object(kind, value),
            Body::Json { json, .. } => Workload::from_json(kind, json.get()),
        });
        match cached {
            Ok(workload) => Ok(workload.as_ref()),
            Err(error) => Err(error.clone()),
        }
    }
}

impl Request {
    /// A CREATE of `object` as the apiserver would send it, for offline evaluation.
    pub fn create(object: Value) -> Self {
        let kind = gvk_of(&object);
        // Every kind with a pod spec is named in the plural by adding an `s`.
        let resource = GroupVersionResource::gvr(
            &kind.group,
            &kind.version,
            &format!("{}s", kind.kind.to_lowercase()),
        );
        let object = Object::from_value(object);
        let facts = Facts {
            uid: OFFLINE_UID.to_owned(),
            kind,
            resource,
            operation: Operation::Create,
            // Like kubectl, an object without a namespace is created in "default".
            namespace: Some(
                object
                    .metadata()
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".to_owned()),
            ),
            name: object.metadata().name.clone().unwrap_or_default(),
            user_info: UserInfo::default(),
            dry_run: true,
            namespace_labels: None,
            old_object: None,
        };
        Self {
            facts: Arc::new(facts),
            object: Some(Arc::new(object)),
        }
    }

    fn from_admission(request: AdmissionRequest<RawObject>) -> Self {
        let facts = Facts {
            uid: request.uid,
            kind: request.kind,
            resource: request.resource,
            operation: request.operation,
            namespace: request.namespace,
            name: request.name,
            user_info: request.user_info,
            dry_run: request.dry_run,
            namespace_labels: None,
            old_object: request.old_object.map(Object::from_raw),
        };
        Self {
            facts: Arc::new(facts),
            object: request.object.map(|raw| Arc::new(Object::from_raw(raw))),
        }
    }

    /// The same request about a changed object: what the next policy in the chain sees after
    /// a mutating policy has run. The facts are shared, not copied.
    #[must_use]
    pub fn with_object(&self, object: Value) -> Self {
        Self {
            facts: Arc::clone(&self.facts),
            object: Some(Arc::new(Object::from_value(object))),
        }
    }

    /// The facts, to change before the request is shared (offline, the labels of the
    /// request's namespace).
    pub fn facts_mut(&mut self) -> &mut Facts {
        Arc::make_mut(&mut self.facts)
    }

    /// The object as JSON (absent on DELETE).
    pub fn object(&self) -> Option<&Value> {
        self.object.as_deref().map(Object::value)
    }

    /// Takes the object out of the request, as JSON.
    pub fn into_object(self) -> Option<Value> {
        // The object is shared only with clones of the request, which a policy's evaluation
        // holds no longer than it runs.
        let object = Arc::try_unwrap(self.object?).unwrap_or_else(|shared| (*shared).clone());
        Some(match object.body {
            Body::Tree(value) => value,
            Body::Json { json, tree } => tree
                .into_inner()
                .unwrap_or_else(|| serde_json::from_str(json.get()).unwrap_or(Value::Null)),
        })
    }

    /// The object before an UPDATE or DELETE.
    pub fn old_object(&self) -> Option<&Value> {
        self.facts.old_object.as_ref().map(Object::value)
    }

    /// The object's metadata, typed.
    pub fn object_meta(&self) -> Option<&ObjectMeta> {
        self.object.as_deref().map(Object::metadata)
    }

    /// The typed pod template of the object, read on first use and shared by all policies.
    ///
    /// `Ok(None)` for kinds without a pod spec; an error when the spec is malformed.
    pub fn workload(&self) -> Result<Option<&Workload>, WorkloadError> {
        match (&self.object, self.workload_kind()) {
            (Some(object), Some(kind)) => object.workload(kind),
            _ => Ok(None),
        }
    }

    /// The workload kind the request is about, by API group and kind.
    pub fn workload_kind(&self) -> Option<WorkloadKind> {
        WorkloadKind::of(&self.facts.kind.group, &self.facts.kind.kind)
    }

    /// The typed pod template of the object before an UPDATE, read on first use and shared
    /// like [`Self::workload`].
    pub fn old_workload(&self) -> Result<Option<&Workload>, WorkloadError> {
        match (&self.facts.old_object, self.workload_kind()) {
            (Some(object), Some(kind)) => object.workload(kind),
            _ => Ok(None),
        }
    }

    /// The containers of the object's pod template as plain views, in the order of
    /// [`Workload::containers`]: what WebAssembly policies read. Empty for kinds without a
    /// pod spec.
    /// The table is built once per request and copied (a text and a layout) for each caller.
    pub fn container_views(&self) -> Result<crate::view::Containers, WorkloadError> {
        match (&self.object, self.workload_kind()) {
            (Some(object), Some(kind)) => object.views(kind),
            _ => Ok(crate::view::Containers::default()),
        }
    }

    /// The subtree of the object at an RFC 6901 `pointer` as JSON text (`""` for the whole
    /// object, copied as received when it came as text): what a WebAssembly policy reads of
    /// the object beyond the views.
    pub fn object_json(&self, pointer: &str) -> Option<String> {
        Object::json_at(self.object.as_deref()?, pointer)
    }

    /// The same as [`Self::object_json`], of the object before an UPDATE or DELETE.
    pub fn old_object_json(&self, pointer: &str) -> Option<String> {
        Object::json_at(self.facts.old_object.as_ref()?, pointer)
    }

    /// An annotation of the object itself.
    pub fn object_annotation(&self, key: &str) -> Option<&str> {
        self.object_meta()?
            .annotations
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }

    /// A label of the object itself, for object selectors.
    pub fn object_label(&self, key: &str) -> Option<&str> {
        self.object_meta()?
            .labels
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }
}

/// The uid of requests built offline; the apiserver's are UUIDs.
pub const OFFLINE_UID: &str = "00000000-0000-0000-0000-000000000000";

/// Reads the group, version and kind of a manifest.
fn gvk_of(object: &Value) -> GroupVersionKind {
    let text = |field: &str| {
        object
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let (group, version) = text("apiVersion")
        .split_once('/')
        .unwrap_or(("", text("apiVersion")));
    GroupVersionKind::gvk(group, version, text("kind"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn review(api_version: &str, request: Value) -> Vec<u8> {
        serde_json::to_vec(
            &json!({"apiVersion": api_version, "kind": "AdmissionReview", "request": request}),
        )
        .unwrap()
    }

    fn pod_request() -> Value {
        json!({
            "uid": "u-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "p", "namespace": "ns", "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}},
                       "spec": {"initContainers": [{"name": "i", "image": "busybox:1.36"}], "containers": []}},
            "dryRun": true
        })
    }

    #[test]
    fn parses_v1_and_v1beta1_keeping_the_object_as_sent() {
        for (api_version, version) in [
            ("admission.k8s.io/v1", ReviewVersion::V1),
            ("admission.k8s.io/v1beta1", ReviewVersion::V1Beta1),
        ] {
            let parsed = Review::from_slice(&review(api_version, pod_request())).unwrap();
            assert_eq!(parsed.version, version);
            let request = parsed.request;
            assert_eq!(
                (
                    request.facts.uid.as_str(),
                    request.facts.kind.kind.as_str(),
                    request.facts.name.as_str()
                ),
                ("u-1", "Pod", "p")
            );
            assert_eq!(request.facts.operation, Operation::Create);
            assert_eq!(request.facts.namespace.as_deref(), Some("ns"));
            assert_eq!(request.facts.user_info.username.as_deref(), Some("alice"));
            assert!(request.facts.dry_run);
            assert_eq!(request.object(), Some(&pod_request()["object"]));
            assert_eq!(
                request.workload().unwrap().unwrap().init_containers()[0].name,
                "i"
            );
        }
    }

    #[test]
    fn refuses_what_is_not_a_review() {
        let error = |body: &[u8]| Review::from_slice(body).unwrap_err().to_string();
        assert!(error(b"{").starts_with("request body is not a valid AdmissionReview: EOF"));
        assert_eq!(
            error(&review("admission.k8s.io/v2", pod_request())),
            "unsupported apiVersion \"admission.k8s.io/v2\": expected admission.k8s.io/v1 or admission.k8s.io/v1beta1"
        );
        let wrong_kind =
            serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "Pod"}))
                .unwrap();
        assert_eq!(
            error(&wrong_kind),
            "unsupported kind \"Pod\": expected AdmissionReview"
        );
        let no_request = serde_json::to_vec(
            &json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
        )
        .unwrap();
        assert_eq!(error(&no_request), "AdmissionReview has no request");
        let mut empty_uid = pod_request();
        empty_uid["uid"] = json!("");
        assert_eq!(
            error(&review("admission.k8s.io/v1", empty_uid)),
            "AdmissionReview request has an empty uid"
        );
        let mut numeric_uid = pod_request();
        numeric_uid["uid"] = json!(7);
        assert!(
            error(&review("admission.k8s.io/v1", numeric_uid))
                .contains("invalid type: integer `7`, expected a string")
        );
    }

    /// An object may nest as deep as serde_json will build a tree of (127 levels), checked on
    /// receipt in the same pass that reads the metadata; deeper is refused with where it is.
    #[test]
    fn objects_are_held_to_serde_jsons_depth_on_receipt() {
        let nested = |levels: usize| {
            // The object itself and `spec` are two levels; the rest are arrays.
            let arrays = levels - 2;
            let text = format!(
                r#"{{"uid":"u","kind":{{"group":"","version":"v1","kind":"Pod"}},"resource":{{"group":"","version":"v1","resource":"pods"}},"operation":"CREATE","userInfo":{{}},"object":{{"metadata":{{"name":"p"}},"spec":{{"x":{}"[{{\"]"{}}}}}}}"#,
                "[".repeat(arrays),
                "]".repeat(arrays)
            );
            format!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{text}}}"#
            )
        };
        let deepest = Review::from_slice(nested(MAX_DEPTH).as_bytes()).unwrap();
        assert_eq!(
            deepest
                .request
                .object_meta()
                .and_then(|m| m.name.as_deref()),
            Some("p")
        );
        // `object()` builds the tree, and gives `null` if serde_json refuses the text: at 128
        // levels, which the byte scan this replaced let through, it did.
        assert!(
            deepest.request.object().unwrap()["spec"]["x"].is_array(),
            "the deepest object accepted builds as a tree"
        );
        let error = Review::from_slice(nested(MAX_DEPTH + 1).as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("object: nested deeper than 127 levels at line 1 column "),
            "{error}"
        );
    }

    /// The pass that reads the metadata says what is wrong with it, as the derived reader it
    /// replaced did, and the fields it only visits are never an error.
    #[test]
    fn metadata_errors_name_the_metadata() {
        let error = |object: &str| {
            let text = format!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u","kind":{{"group":"","version":"v1","kind":"Pod"}},"resource":{{"group":"","version":"v1","resource":"pods"}},"operation":"CREATE","userInfo":{{}},"object":{object}}}}}"#
            );
            Review::from_slice(text.as_bytes())
                .map(drop)
                .map_err(|e| e.to_string())
        };
        let labels = error(r#"{"metadata":{"labels":[1]}}"#).unwrap_err();
        assert!(
            labels.contains("object.metadata: invalid type: sequence, expected a map"),
            "{labels}"
        );
        let twice = error(r#"{"metadata":{},"spec":{},"metadata":{}}"#).unwrap_err();
        assert!(
            twice.contains("object.metadata: duplicate field `metadata`"),
            "{twice}"
        );
        assert_eq!(
            error(r#"{"spec":{"a":[1,-2,3.5e9,true,null,"\u00e9\"",{"":{}}]},"metadata":null}"#),
            Ok(())
        );
    }
}
