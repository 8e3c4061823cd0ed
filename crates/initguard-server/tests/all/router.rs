//! The webhook's HTTP behaviour through `router()`, without sockets: protocol, bad input,
//! health and metrics.

use crate::common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use initguard_core::Mode;
use initguard_server::{AppState, Limits, router};
use serde_json::{Value, json};
use tower::ServiceExt;

fn state() -> Arc<AppState> {
    Arc::new(AppState::new(common::pipeline(Mode::Enforce), Limits::default()).unwrap())
}

async fn send(state: &Arc<AppState>, request: Request<Body>) -> (StatusCode, Value) {
    let response = router(Arc::clone(state)).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, body)
}

fn post(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

#[tokio::test]
async fn denies_with_every_path_and_echoes_uid_and_version() {
    let state = state();
    let (status, body) = send(
        &state,
        post("/validate?timeout=10s", common::review("uid-1", true)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(body["kind"], "AdmissionReview");
    let response = &body["response"];
    assert_eq!(response["uid"], "uid-1");
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    assert_eq!(
        response["status"]["message"],
        "[init-container-validity/IG-V004] spec.initContainers[0].livenessProbe: Forbidden: may not be set for init containers without restartPolicy=Always"
    );
    assert!(
        response.get("patch").is_none(),
        "the validating endpoint never patches"
    );
    for warning in response["warnings"].as_array().unwrap() {
        assert!(
            warning.as_str().unwrap().chars().count() <= 120,
            "{warning}"
        );
    }
}

#[tokio::test]
async fn answers_v1beta1_in_v1beta1() {
    let state = state();
    let body = serde_json::to_vec(&common::review_value(
        "admission.k8s.io/v1beta1",
        "b-1",
        common::pod(false),
    ))
    .unwrap();
    let (status, body) = send(&state, post("/validate", body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["apiVersion"], "admission.k8s.io/v1beta1");
    assert_eq!(body["response"]["allowed"], true);
}

#[tokio::test]
async fn mutate_returns_a_base64_json_patch_that_applies() {
    let state = state();
    let (status, body) = send(&state, post("/mutate", common::review("m-1", false))).await;
    assert_eq!(status, StatusCode::OK);
    let response = &body["response"];
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    let (patch, pod) = common::patched_pod(response);
    assert_eq!(
        pod["metadata"]["annotations"]["initguard.dev/checked~by"],
        "initguard"
    );
    assert_eq!(
        serde_json::to_value(&patch).unwrap()[0]["path"],
        "/metadata/annotations",
        "a pod without annotations gets the whole map"
    );
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let state = state();
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    assert_eq!(send(&state, get("/healthz")).await.0, StatusCode::OK);
    assert_eq!(send(&state, get("/readyz")).await.0, StatusCode::OK);
    state.set_ready(false);
    assert_eq!(
        send(&state, get("/readyz")).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    state.set_ready(true);

    for uid in ["a", "b", "c"] {
        send(&state, post("/validate", common::review(uid, true))).await;
    }
    send(&state, post("/mutate", common::review("d", false))).await;
    send(&state, post("/validate", "nope")).await;
    let (status, Value::String(text)) = send(&state, get("/metrics")).await else {
        panic!("metrics are text")
    };
    assert_eq!(status, StatusCode::OK);
    let sample = |line_start: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(line_start))
            .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        sample(
            r#"initguard_reviews_total{endpoint="validate",operation="CREATE",kind="Pod",verdict="denied"}"#
        ),
        3
    );
    assert_eq!(
        sample(
            r#"initguard_reviews_total{endpoint="mutate",operation="CREATE",kind="Pod",verdict="allowed"}"#
        ),
        1
    );
    assert_eq!(
        sample(r#"initguard_bad_requests_total{endpoint="validate",reason="invalid_review"}"#),
        1
    );
    assert_eq!(sample("initguard_evaluations_waiting "), 0);
    assert_eq!(
        sample("initguard_evaluation_threads ") as usize,
        Limits::default().evaluation_threads
    );
    assert_eq!(
        sample(
            r#"initguard_policy_evaluations_total{policy="init-container-validity",result="violation"}"#
        ),
        3
    );
    assert_eq!(
        sample(r#"initguard_policy_evaluations_total{policy="annotate",result="pass"}"#),
        1
    );
    assert_eq!(
        sample(
            r#"initguard_policy_evaluation_duration_seconds_count{policy="init-container-hygiene"}"#
        ),
        3
    );
    assert!(text.trim_end().ends_with("# EOF"));
}

/// A policy failure is a verdict (allowed: false, code 500), not a transport error.
#[tokio::test]
async fn malformed_object_is_a_policy_failure_verdict() {
    let state = state();
    let object = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {"containers": 3}});
    let body =
        serde_json::to_vec(&common::review_value("admission.k8s.io/v1", "p-1", object)).unwrap();
    let (status, body) = send(&state, post("/validate", body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["response"]["allowed"], false);
    assert_eq!(body["response"]["status"]["code"], 500);
    assert!(body["response"]["status"]["message"].as_str().unwrap().contains("policy init-container-validity failed: the object cannot be evaluated: spec.containers: invalid type"));
}

#[tokio::test]
async fn bad_requests_get_specific_errors_and_the_server_keeps_serving() {
    let state = Arc::new(
        AppState::new(
            common::pipeline(Mode::Enforce),
            Limits {
                body_limit: 1 << 20,
                max_header_bytes: 16 * 1024,
                ..Limits::default()
            },
        )
        .unwrap(),
    );
    let good = || common::review_value("admission.k8s.io/v1", "u", common::pod(false));
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut review = good();
        edit(&mut review);
        serde_json::to_vec(&review).unwrap()
    };
    let nested = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"x","object":{}{}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let deep_object = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"x","kind":{{"group":"","version":"v1","kind":"Pod"}},"resource":{{"group":"","version":"v1","resource":"pods"}},"operation":"CREATE","userInfo":{{}},"object":{{"spec":{{"x":{}{}}}}}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let mut invalid_utf8 = common::review("u", false);
    invalid_utf8.splice(20..20, [0xff, 0xfe]);
    let cases: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
        (
            "not JSON",
            post("/validate", "hello"),
            StatusCode::BAD_REQUEST,
            "not a valid AdmissionReview: expected a JSON object",
        ),
        (
            "broken JSON",
            post("/validate", "{\"apiVersion\": }"),
            StatusCode::BAD_REQUEST,
            "expected value at line 1 column 16",
        ),
        (
            "truncated",
            post("/validate", common::review("u", false)[..100].to_vec()),
            StatusCode::BAD_REQUEST,
            "EOF while parsing",
        ),
        (
            "empty body",
            post("/validate", ""),
            StatusCode::BAD_REQUEST,
            "EOF while parsing a value",
        ),
        (
            "a list",
            post("/validate", "[]"),
            StatusCode::BAD_REQUEST,
            "not a valid AdmissionReview: expected a JSON object",
        ),
        (
            "no request",
            post(
                "/validate",
                r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
            ),
            StatusCode::BAD_REQUEST,
            "AdmissionReview has no request",
        ),
        (
            "no uid",
            post(
                "/validate",
                with(&|r| {
                    r["request"].as_object_mut().unwrap().remove("uid");
                }),
            ),
            StatusCode::BAD_REQUEST,
            "missing field `uid`",
        ),
        (
            "numeric uid",
            post("/validate", with(&|r| r["request"]["uid"] = json!(42))),
            StatusCode::BAD_REQUEST,
            "invalid type: integer `42`, expected a string",
        ),
        (
            "empty uid",
            post("/validate", with(&|r| r["request"]["uid"] = json!(""))),
            StatusCode::BAD_REQUEST,
            "empty uid",
        ),
        (
            "wrong kind",
            post("/validate", with(&|r| r["kind"] = json!("Pod"))),
            StatusCode::BAD_REQUEST,
            "unsupported kind \"Pod\": expected AdmissionReview",
        ),
        (
            "unknown version",
            post(
                "/validate",
                with(&|r| r["apiVersion"] = json!("admission.k8s.io/v2")),
            ),
            StatusCode::BAD_REQUEST,
            "unsupported apiVersion \"admission.k8s.io/v2\"",
        ),
        (
            "no apiVersion",
            post(
                "/validate",
                with(&|r| {
                    r.as_object_mut().unwrap().remove("apiVersion");
                }),
            ),
            StatusCode::BAD_REQUEST,
            "missing field `apiVersion`",
        ),
        (
            "object not a map",
            post(
                "/validate",
                with(&|r| r["request"]["object"] = json!("pod")),
            ),
            StatusCode::BAD_REQUEST,
            "object: expected a Kubernetes object (a JSON object)",
        ),
        (
            "labels of the wrong type",
            post(
                "/validate",
                with(&|r| r["request"]["object"]["metadata"]["labels"] = json!([1])),
            ),
            StatusCode::BAD_REQUEST,
            "invalid type: sequence, expected a map",
        ),
        (
            "nested too deep inside the object",
            post("/validate", deep_object),
            StatusCode::BAD_REQUEST,
            "object: nested deeper than 127 levels at line 1 column",
        ),
        (
            "unknown operation",
            post(
                "/validate",
                with(&|r| r["request"]["operation"] = json!("PATCH")),
            ),
            StatusCode::BAD_REQUEST,
            "unknown variant `PATCH`",
        ),
        (
            "nested too deep",
            post("/validate", nested),
            StatusCode::BAD_REQUEST,
            "object: expected a Kubernetes object (a JSON object)",
        ),
        (
            "invalid UTF-8",
            post("/validate", invalid_utf8),
            StatusCode::BAD_REQUEST,
            "not a valid AdmissionReview",
        ),
        (
            "text/plain",
            Request::post("/validate")
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from(common::review("u", false)))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported content type \"text/plain\": send application/json",
        ),
        (
            "no content type",
            Request::post("/mutate")
                .body(Body::from(common::review("u", false)))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported content type \"\"",
        ),
        (
            "20 MiB body",
            post("/validate", vec![b' '; 20 << 20]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body is larger than the limit of 1048576 bytes",
        ),
        (
            "declared length over the limit",
            Request::post("/validate")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_LENGTH, "99999999")
                .body(Body::from("{}"))
                .unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than the limit",
        ),
        (
            "unknown path",
            post("/admit", common::review("u", false)),
            StatusCode::NOT_FOUND,
            "no such endpoint",
        ),
        (
            "GET on a review endpoint",
            Request::get("/validate").body(Body::empty()).unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method GET is not allowed on /validate: use POST",
        ),
        (
            "URI over the head limit",
            post(
                &format!("/validate?{}", "a".repeat(20_000)),
                common::review("u", false),
            ),
            StatusCode::URI_TOO_LONG,
            "the request URI is 20010 bytes, more than the limit of 16384",
        ),
        (
            "headers over the head limit",
            Request::post("/validate")
                .header(header::CONTENT_TYPE, "application/json")
                .header("x-padding", "p".repeat(20_000))
                .body(Body::from(common::review("u", false)))
                .unwrap(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "more than the limit of 16384",
        ),
        (
            "gzip body",
            Request::post("/validate")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_ENCODING, "gzip")
                .body(Body::from(vec![0x1f, 0x8b, 8, 0]))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported content encoding \"gzip\": send the review uncompressed",
        ),
        (
            "byte-order mark",
            post(
                "/validate",
                [b"\xEF\xBB\xBF".as_slice(), &common::review("u", false)].concat(),
            ),
            StatusCode::BAD_REQUEST,
            "the body starts with a UTF-8 byte-order mark",
        ),
        (
            "label path that is not KEY/VALUE",
            post("/validate/namespace-label/%ZZ", common::review("u", false)),
            StatusCode::NOT_FOUND,
            "namespace-label/%ZZ: expected namespace-label/KEY/VALUE",
        ),
    ];
    assert!(cases.len() >= 15);
    for (name, request, expected_status, expected_text) in cases {
        let (status, body) = send(&state, request).await;
        assert_eq!(status, expected_status, "{name}: {body}");
        let error = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no JSON error in {body}"));
        assert!(
            error.contains(expected_text),
            "{name}: {error:?} does not contain {expected_text:?}"
        );
        assert_eq!(body["code"], expected_status.as_u16(), "{name}");
        let (status, body) = send(&state, post("/validate", common::review("after", false))).await;
        assert_eq!(status, StatusCode::OK, "a good request after {name}");
        assert_eq!(body["response"]["allowed"], true, "after {name}");
    }
}

/// A 3 MB review of a pod with 1,000,000 empty init containers: small as text, gigabytes as
/// typed containers.
fn million_containers() -> Vec<u8> {
    let mut pod = common::pod(false);
    pod["spec"]["initContainers"] = Value::Array(vec![json!({}); 1_000_000]);
    serde_json::to_vec(&common::review_value("admission.k8s.io/v1", "big", pod)).unwrap()
}

/// The review's object count bounds its memory: refused at once, and the next one is served.
#[tokio::test]
async fn a_review_of_a_million_containers_is_refused_unparsed() {
    let state = state();
    let started = std::time::Instant::now();
    let (status, body) = send(&state, post("/validate", million_containers())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("the review holds 1000009 JSON objects, more than the 20000"),
        "{body}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let (status, _) = send(&state, post("/validate", common::review("after", false))).await;
    assert_eq!(status, StatusCode::OK);
}

/// However many violations a review has, the answer lists a bounded number and counts the rest.
#[tokio::test]
async fn a_denial_lists_a_bounded_number_of_violations() {
    let state = state();
    let mut pod = common::pod(false);
    pod["spec"]["initContainers"] = Value::Array(
        (0..5_000)
            .map(|i| json!({"name": format!("Init{i}"), "image": "busybox:1.36"}))
            .collect(),
    );
    let body =
        serde_json::to_vec(&common::review_value("admission.k8s.io/v1", "many", pod)).unwrap();
    let (status, answer) = send(&state, post("/validate", body)).await;
    assert_eq!(status, StatusCode::OK);
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert_eq!(
        message.matches("[init-container-validity/IG-V001]").count(),
        100
    );
    assert!(
        message.ends_with("; and 4900 more"),
        "{}",
        &message[message.len() - 80..]
    );
    let warnings: usize = answer["response"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().chars().count())
        .sum();
    assert!(
        warnings <= initguard_core::response::MAX_WARNINGS_CHARS,
        "{warnings}"
    );
}

/// The namespace-scoped webhook names the label its `namespaceSelector` requires in its path,
/// so the `init-steps` opt-in holds for pods that do not carry the label themselves.
#[tokio::test]
async fn namespace_labels_in_the_url_opt_pods_in() {
    let policy = initguard_rules::builtin("init-steps", &Value::Null).unwrap();
    let state = Arc::new(
        AppState::new(
            initguard_core::Pipeline::new(vec![common::entry("init-steps", Mode::Enforce, policy)]),
            Limits::default(),
        )
        .unwrap(),
    );
    let mut pod = common::pod(false);
    pod["metadata"]["annotations"] = json!({"initguard.dev/wait-for-dns": "db"});
    let body = || {
        serde_json::to_vec(&common::review_value(
            "admission.k8s.io/v1",
            "ns-1",
            pod.clone(),
        ))
        .unwrap()
    };
    let (status, plain) = send(&state, post("/mutate?timeout=10s", body())).await;
    assert_eq!(status, StatusCode::OK);
    assert!(plain["response"].get("patch").is_none(), "{plain}");

    let (status, opted_in) = send(
        &state,
        post(
            "/mutate/namespace-label/initguard.dev/inject/enabled?timeout=10s",
            body(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, patched) = common::patched(&opted_in["response"], pod.clone());
    assert_eq!(
        patched["spec"]["initContainers"][0]["name"],
        "initguard-wait-for-dns"
    );

    let (status, error) = send(&state, post("/mutate/namespace-label/enabled", body())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        error["error"],
        "namespace-label/enabled: expected namespace-label/KEY/VALUE"
    );
}

/// Holds its evaluation thread for a while on reviews whose uid starts with `slow`.
#[derive(Debug)]
struct SlowOnRequest;

impl initguard_core::Policy for SlowOnRequest {
    fn evaluate(
        &self,
        request: &initguard_core::Request,
    ) -> Result<initguard_core::Outcome, initguard_core::PolicyError> {
        if request.facts.uid.starts_with("slow") {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        Ok(initguard_core::Outcome::default())
    }
}

#[tokio::test]
async fn a_review_past_its_deadline_gets_504_and_later_reviews_are_answered() {
    let state = Arc::new(
        AppState::new(
            initguard_core::Pipeline::new(vec![common::entry(
                "slow",
                Mode::Enforce,
                Arc::new(SlowOnRequest),
            )]),
            Limits {
                request_timeout: std::time::Duration::from_millis(250),
                evaluation_threads: 1,
                ..Limits::default()
            },
        )
        .unwrap(),
    );
    let review = |uid: &str| common::review(uid, false);
    let (status, body) = send(&state, post("/validate", review("slow-late"))).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        body,
        json!({"error": "evaluation exceeded the request deadline of 250ms", "code": 504})
    );
    // The only thread is still busy with the slow review: this one waits in the queue past
    // its deadline too, and is dropped from the queue unevaluated.
    let (status, _) = send(&state, post("/validate", review("queued"))).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let (status, body) = send(&state, post("/validate", review("after"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["response"]["uid"], "after");
    assert_eq!(body["response"]["allowed"], true);
    let metrics = Request::get("/metrics").body(Body::empty()).unwrap();
    let (_, Value::String(metrics)) = send(&state, metrics).await else {
        panic!("metrics are text")
    };
    assert!(
        metrics
            .contains(r#"initguard_bad_requests_total{endpoint="validate",reason="deadline"} 2"#),
        "{metrics}"
    );
}
