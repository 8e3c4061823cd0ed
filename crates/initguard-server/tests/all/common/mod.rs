//! Shared pieces of the server tests: real built-in policies, a mutating test policy, and
//! AdmissionReview bodies.

use std::sync::Arc;

use initguard_core::{
    FailurePolicy, MatchRules, Mode, Mutation, Outcome, Pipeline, Policy, PolicyEntry, PolicyError,
    Request,
};
use serde_json::{Value, json};

/// Adds the annotation `initguard.dev/checked~by: initguard` to every pod, to exercise patches
/// and RFC 6901 escaping.
#[derive(Debug)]
pub struct Annotate;

impl Policy for Annotate {
    fn mutating(&self) -> bool {
        true
    }

    fn evaluate(&self, request: &Request) -> Result<Outcome, PolicyError> {
        let Some(original) = request.object() else {
            return Ok(Outcome::default());
        };
        let mut object = original.clone();
        let metadata = object
            .as_object_mut()
            .unwrap()
            .entry("metadata")
            .or_insert_with(|| json!({}));
        let annotations = metadata
            .as_object_mut()
            .unwrap()
            .entry("annotations")
            .or_insert_with(|| json!({}));
        annotations["initguard.dev/checked~by"] = json!("initguard");
        Ok(Outcome::with_mutation(Mutation::Object(object)))
    }
}

pub fn entry(name: &str, mode: Mode, policy: Arc<dyn Policy>) -> PolicyEntry {
    PolicyEntry {
        name: name.into(),
        mode,
        failure_policy: FailurePolicy::Fail,
        rules: MatchRules::default(),
        policy,
    }
}

/// Validity enforced, hygiene as warnings, and the annotating mutator.
pub fn pipeline(validity_mode: Mode) -> Pipeline {
    let null = Value::Null;
    Pipeline::new(vec![
        entry(
            "init-container-validity",
            validity_mode,
            initguard_rules::builtin("init-container-validity", &null).unwrap(),
        ),
        entry(
            "init-container-hygiene",
            Mode::Warn,
            initguard_rules::builtin("init-container-hygiene", &null).unwrap(),
        ),
        entry("annotate", Mode::Enforce, Arc::new(Annotate)),
    ])
}

/// A pod whose init container breaks IG-V004 when `bad`.
pub fn pod(bad: bool) -> Value {
    let mut init = json!({"name": "wait", "image": "busybox:1.36"});
    if bad {
        init["livenessProbe"] = json!({"exec": {"command": ["true"]}});
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"},
           "spec": {"initContainers": [init], "containers": [{"name": "web", "image": "nginx:1.27"}]}})
}

pub fn review_value(api_version: &str, uid: &str, object: Value) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "web",
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": object,
            "dryRun": false
        }
    })
}

pub fn review(uid: &str, bad: bool) -> Vec<u8> {
    serde_json::to_vec(&review_value("admission.k8s.io/v1", uid, pod(bad))).unwrap()
}

/// Decodes the base64 JSON Patch of a mutating response; returns it and [`pod`]`(false)` with
/// it applied.
pub fn patched_pod(response: &Value) -> (json_patch::Patch, Value) {
    patched(response, pod(false))
}

/// Decodes the base64 JSON Patch of a mutating response; returns it and `object` with it
/// applied.
pub fn patched(response: &Value, mut object: Value) -> (json_patch::Patch, Value) {
    use base64::Engine as _;
    let patch = base64::engine::general_purpose::STANDARD
        .decode(response["patch"].as_str().unwrap())
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&patch).unwrap();
    json_patch::patch(&mut object, &patch.0).unwrap();
    (patch, object)
}

/// A server bound on 127.0.0.1 and serving until `stop` is sent.
pub struct Running {
    pub address: std::net::SocketAddr,
    pub state: Arc<initguard_server::AppState>,
    pub stop: tokio::sync::oneshot::Sender<()>,
    pub serving: tokio::task::JoinHandle<()>,
}

/// Binds `config` (its `listen` on port 0 for a free one) and serves it in the background.
pub async fn serve(
    config: initguard_server::ServerConfig,
    policies: Arc<dyn initguard_server::PolicySource>,
) -> Running {
    let server = initguard_server::BoundServer::bind(config, policies)
        .await
        .unwrap();
    let address = server.local_addr().unwrap();
    let state = server.state();
    let (stop, stop_signal) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async move {
        let _ = stop_signal.await;
    }));
    Running {
        address,
        state,
        stop,
        serving,
    }
}

pub type HttpsClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<axum::body::Bytes>,
>;

/// A client that trusts only `ca_pem`, speaking HTTP/2 or HTTP/1.1.
pub fn client(ca_pem: &[u8], http2: bool) -> HttpsClient {
    let config = initguard_server::tls::client_config(ca_pem).unwrap();
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only();
    let connector = if http2 {
        builder.enable_http2().build()
    } else {
        builder.enable_http1().build()
    };
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(http2)
        .build(connector)
}
