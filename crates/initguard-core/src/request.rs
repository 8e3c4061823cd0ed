//! Admission requests: parsed once from an `AdmissionReview` (v1 or v1beta1) with kube-core's
//! types, or built for an offline manifest, then viewed by every policy.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use k8s_openapi::api::authentication::v1::UserInfo;
use kube_core::DynamicObject;
pub use kube_core::admission::Operation;
use kube_core::admission::{AdmissionRequest, AdmissionReview};
pub use kube_core::gvk::GroupVersionKind;
use serde_json::{Map, Value};

use crate::workload::{Workload, WorkloadError};

/// The `admission.k8s.io` versions the apiserver speaks; a response uses the request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReviewVersion {
    V1,
    V1Beta1,
}

impl ReviewVersion {
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
    Json(#[from] serde_json::Error),
    #[error(
        "unsupported apiVersion {0:?}: expected admission.k8s.io/v1 or admission.k8s.io/v1beta1"
    )]
    UnsupportedVersion(String),
    #[error("unsupported kind {0:?}: expected AdmissionReview")]
    WrongKind(String),
    #[error("AdmissionReview has no request")]
    MissingRequest,
    #[error("AdmissionReview request has an empty uid")]
    EmptyUid,
}

/// A parsed AdmissionReview: the version to answer in and the request.
#[derive(Debug)]
pub struct Review {
    pub version: ReviewVersion,
    pub request: Request,
}

impl Review {
    /// Parses an AdmissionReview body, checking what kube-core leaves to the caller.
    pub fn from_slice(body: &[u8]) -> Result<Self, ReviewError> {
        let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body)?;
        Self::from_review(review)
    }

    /// Accepts an AdmissionReview already read as JSON (from a manifest file, say).
    pub fn from_value(value: Value) -> Result<Self, ReviewError> {
        let review: AdmissionReview<DynamicObject> = serde_json::from_value(value)?;
        Self::from_review(review)
    }

    fn from_review(review: AdmissionReview<DynamicObject>) -> Result<Self, ReviewError> {
        if review.types.kind != "AdmissionReview" {
            return Err(ReviewError::WrongKind(review.types.kind));
        }
        let version = match review.types.api_version.as_str() {
            "admission.k8s.io/v1" => ReviewVersion::V1,
            "admission.k8s.io/v1beta1" => ReviewVersion::V1Beta1,
            _ => return Err(ReviewError::UnsupportedVersion(review.types.api_version)),
        };
        let request: AdmissionRequest<DynamicObject> =
            review.try_into().map_err(|_| ReviewError::MissingRequest)?;
        if request.uid.is_empty() {
            return Err(ReviewError::EmptyUid);
        }
        Ok(Self {
            version,
            request: Request::from_admission(request),
        })
    }
}

/// What every policy sees of one admission request.
#[derive(Debug)]
pub struct Request {
    pub uid: String,
    pub kind: GroupVersionKind,
    pub operation: Operation,
    pub namespace: Option<String>,
    pub name: String,
    pub user_info: UserInfo,
    pub object: Option<Value>,
    pub old_object: Option<Value>,
    pub dry_run: bool,
    /// Labels of the request's namespace when known (offline from Namespace manifests). The
    /// apiserver does not send them; see [`crate::matching`] for what applies then.
    pub namespace_labels: Option<BTreeMap<String, String>>,
    workload: OnceLock<Result<Option<Workload>, WorkloadError>>,
}

impl Request {
    /// A CREATE of `object` as the apiserver would send it, for offline evaluation.
    pub fn create(object: Value) -> Self {
        let kind = gvk_of(&object);
        let metadata = object.get("metadata");
        let text = |field: &str| {
            metadata
                .and_then(|m| m.get(field))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Self {
            uid: String::new(),
            kind,
            operation: Operation::Create,
            // Like kubectl, an object without a namespace is created in "default".
            namespace: Some(text("namespace").unwrap_or_else(|| "default".to_owned())),
            name: text("name").unwrap_or_default(),
            user_info: UserInfo::default(),
            object: Some(object),
            old_object: None,
            dry_run: true,
            namespace_labels: None,
            workload: OnceLock::new(),
        }
    }

    fn from_admission(request: AdmissionRequest<DynamicObject>) -> Self {
        Self {
            uid: request.uid,
            kind: request.kind,
            operation: request.operation,
            namespace: request.namespace,
            name: request.name,
            user_info: request.user_info,
            object: request.object.map(dynamic_to_value),
            old_object: request.old_object.map(dynamic_to_value),
            dry_run: request.dry_run,
            namespace_labels: None,
            workload: OnceLock::new(),
        }
    }

    /// The same request about a changed object: what the next policy in the chain sees after
    /// a mutating policy has run.
    #[must_use]
    pub fn with_object(&self, object: Value) -> Self {
        Self {
            uid: self.uid.clone(),
            kind: self.kind.clone(),
            operation: self.operation.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            user_info: self.user_info.clone(),
            object: Some(object),
            old_object: self.old_object.clone(),
            dry_run: self.dry_run,
            namespace_labels: self.namespace_labels.clone(),
            workload: OnceLock::new(),
        }
    }

    /// The typed pod template of the object, read on first use and shared by all policies.
    ///
    /// `Ok(None)` for kinds without a pod spec; an error when the spec is malformed.
    pub fn workload(&self) -> Result<Option<&Workload>, WorkloadError> {
        let cached = self.workload.get_or_init(|| match &self.object {
            Some(object) => Workload::from_object(&self.kind.kind, object),
            None => Ok(None),
        });
        match cached {
            Ok(workload) => Ok(workload.as_ref()),
            Err(error) => Err(error.clone()),
        }
    }

    /// Labels of the object itself, for object selectors.
    pub fn object_labels(&self) -> Option<&Map<String, Value>> {
        self.object
            .as_ref()?
            .get("metadata")?
            .get("labels")?
            .as_object()
    }
}

/// Rebuilds the object as the apiserver sent it: kube-core splits off type and metadata.
fn dynamic_to_value(object: DynamicObject) -> Value {
    let mut map = match object.data {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    if let Some(types) = object.types {
        map.insert("apiVersion".to_owned(), Value::String(types.api_version));
        map.insert("kind".to_owned(), Value::String(types.kind));
    }
    // ObjectMeta always serializes to JSON.
    if let Ok(metadata) = serde_json::to_value(object.metadata) {
        map.insert("metadata".to_owned(), metadata);
    }
    Value::Object(map)
}

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
