//! The HTTP application: `router()` with the admission endpoints, health and metrics.
//!
//! The handlers only move bytes and map errors to statuses; verdicts come from the pipeline.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use initguard_core::matching::NAMESPACE_NAME_LABEL;
use initguard_core::request::Operation;
use initguard_core::{Phase, Pipeline, Review, ReviewResponse};

use crate::evaluator::Evaluator;
use crate::metrics::Metrics;

/// Limits that protect the server from its clients.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body accepted; larger ones get 413.
    pub body_limit: usize,
    /// Deadline for answering one review, below the apiserver's webhook timeout.
    pub request_timeout: Duration,
    /// Evaluation threads: reviews evaluated at once, off the async reactor.
    pub evaluation_threads: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_limit: 8 * 1024 * 1024,
            request_timeout: Duration::from_secs(9),
            // Two per core: measured best under load (BENCHMARKS.md), and a policy running to
            // its deadline holds only one of them.
            evaluation_threads: std::thread::available_parallelism()
                .map_or(4, |cores| cores.get() * 2),
        }
    }
}

/// What every request handler shares.
#[derive(Debug)]
pub struct AppState {
    pipeline: ArcSwap<Pipeline>,
    ready: AtomicBool,
    pub metrics: Metrics,
    limits: Limits,
    evaluator: Evaluator,
}

impl AppState {
    /// A ready server state running `pipeline`, with its evaluation threads started.
    ///
    /// # Errors
    /// When the operating system refuses the evaluation threads.
    pub fn new(pipeline: Pipeline, limits: Limits) -> std::io::Result<Self> {
        Ok(Self {
            pipeline: ArcSwap::from_pointee(pipeline),
            ready: AtomicBool::new(true),
            metrics: Metrics::new(),
            evaluator: Evaluator::start(limits.evaluation_threads)?,
            limits,
        })
    }

    /// Swaps in a new policy set; requests in flight finish with the one they started with.
    pub fn replace_pipeline(&self, pipeline: Pipeline) {
        self.pipeline.store(Arc::new(pipeline));
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }
}

/// The webhook's routes; tests call it without sockets.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .route("/validate/namespace-label/{*label}", post(validate))
        .route("/mutate/namespace-label/{*label}", post(mutate))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such endpoint: use /validate, /mutate, /healthz, /readyz or /metrics",
            )
        })
        .with_state(state)
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        "ready".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "policies not loaded").into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let gauge = |count: usize| i64::try_from(count).unwrap_or(i64::MAX);
    let metrics = &state.metrics;
    metrics
        .evaluations_waiting
        .set(gauge(state.evaluator.waiting()));
    metrics
        .evaluation_threads
        .set(gauge(state.evaluator.threads()));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn validate(
    State(state): State<Arc<AppState>>,
    label: Option<Path<String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    review(state, Phase::Validate, label, headers, body).await
}

async fn mutate(
    State(state): State<Arc<AppState>>,
    label: Option<Path<String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    review(state, Phase::Mutate, label, headers, body).await
}

/// The namespace label named by a `/namespace-label/KEY/VALUE` endpoint.
///
/// An AdmissionReview does not carry its namespace's labels. A webhook whose
/// `namespaceSelector` requires a label can post to `/mutate/namespace-label/KEY/VALUE` (or
/// `/validate/...`), and policies that match on that label, such as the `init-steps` opt-in,
/// then see it: `/mutate/namespace-label/initguard.dev/inject/enabled`. Webhook paths allow only
/// DNS-subdomain segments, so the value is the last segment and the key is everything before.
fn namespace_label(label: Option<Path<String>>) -> Result<Option<(String, String)>, String> {
    let Some(Path(label)) = label else {
        return Ok(None);
    };
    label
        .rsplit_once('/')
        .filter(|(key, value)| !key.is_empty() && !value.is_empty())
        .map(|(key, value)| Some((key.to_owned(), value.to_owned())))
        .ok_or_else(|| format!("namespace-label/{label}: expected namespace-label/KEY/VALUE"))
}

fn endpoint(phase: Phase) -> &'static str {
    match phase {
        Phase::Mutate => "mutate",
        Phase::Validate | Phase::All => "validate",
    }
}

/// A JSON error body: `{"error": "...", "code": 400}`.
fn error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({"error": message, "code": status.as_u16()});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn review(
    state: Arc<AppState>,
    phase: Phase,
    label: Option<Path<String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let endpoint = endpoint(phase);
    let refuse = |status: StatusCode, reason: &'static str, message: &str| {
        state.metrics.record_bad_request(endpoint, reason);
        tracing::warn!(endpoint, status = status.as_u16(), reason, "{message}");
        error(status, message)
    };
    let namespace_label = match namespace_label(label) {
        Ok(label) => label,
        Err(message) => return refuse(StatusCode::NOT_FOUND, "path", &message),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        let message = format!("unsupported content type {content_type:?}: send application/json");
        return refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "content_type", &message);
    }
    let limit = state.limits.body_limit;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let too_large = format!("request body is larger than the limit of {limit} bytes");
    if declared.is_some_and(|length| length > limit as u64) {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "too_large", &too_large);
    }
    let bytes: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(e) if is_length_limit(&e) => {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, "too_large", &too_large);
        }
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "body",
                &format!("cannot read the request body: {e}"),
            );
        }
    };
    let work = {
        let state = Arc::clone(&state);
        move || evaluate(&state, phase, &bytes, namespace_label, started)
    };
    match tokio::time::timeout(state.limits.request_timeout, state.evaluator.run(work)).await {
        Ok(Ok(Ok(body))) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Ok(Ok(Err(message))) => refuse(StatusCode::BAD_REQUEST, "invalid_review", &message),
        Ok(Err(failed)) => {
            tracing::error!(endpoint, "evaluation failed: {failed}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "evaluation failed unexpectedly; see the server log",
            )
        }
        Err(_) => {
            let message = format!(
                "evaluation exceeded the request deadline of {:?}",
                state.limits.request_timeout
            );
            refuse(StatusCode::GATEWAY_TIMEOUT, "deadline", &message)
        }
    }
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = current.source();
    }
    false
}

/// Parses, evaluates and answers one review: the blocking part of a request.
fn evaluate(
    state: &AppState,
    phase: Phase,
    body: &[u8],
    namespace_label: Option<(String, String)>,
    started: Instant,
) -> Result<Vec<u8>, String> {
    let mut review = Review::from_slice(body).map_err(|e| e.to_string())?;
    if let Some((key, value)) = namespace_label {
        let name = review.request.namespace.clone().unwrap_or_default();
        review
            .request
            .namespace_labels
            .get_or_insert_with(|| BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), name)]))
            .insert(key, value);
    }
    let request = &review.request;
    let pipeline = state.pipeline.load();
    let decision = pipeline.evaluate(request, phase);
    let response = ReviewResponse::new(
        review.version,
        &request.uid,
        &decision,
        phase == Phase::Mutate,
    );
    let body = serde_json::to_vec(&response).map_err(|e| e.to_string())?;
    let took = started.elapsed();
    let operation = match request.operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    };
    state.metrics.record_review(
        endpoint(phase),
        operation,
        &request.kind.kind,
        &decision,
        took,
    );
    tracing::info!(
        uid = %request.uid,
        kind = %request.kind.kind,
        namespace = request.namespace.as_deref().unwrap_or(""),
        name = %request.name,
        operation,
        endpoint = endpoint(phase),
        verdict = if decision.allowed() { "allowed" } else { "denied" },
        warnings = decision.warnings.len(),
        patch_operations = decision.patch.0.len(),
        duration_us = took.as_micros() as u64,
        "review"
    );
    for report in decision
        .reports
        .iter()
        .filter(|r| r.mode == initguard_core::Mode::Audit)
    {
        if let Ok(outcome) = &report.result {
            for violation in &outcome.violations {
                tracing::info!(uid = %request.uid, policy = %report.name, rule = %violation.rule, "audit: {violation}");
            }
        }
    }
    Ok(body)
}
