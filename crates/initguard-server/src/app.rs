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
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use initguard_core::matching::NAMESPACE_NAME_LABEL;
use initguard_core::request::Operation;
use initguard_core::{Phase, Pipeline, Review, ReviewError, ReviewResponse};

use crate::evaluator::{EvaluationError, Evaluator};
use crate::metrics::Metrics;

/// Limits that protect the server from its clients.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body accepted; larger ones get 413.
    pub body_limit: usize,
    /// Deadline for answering one review, below the apiserver's webhook timeout.
    pub request_timeout: Duration,
    /// Time a client has to send the whole body, from its head.
    pub body_timeout: Duration,
    /// Largest request head: URI and headers together (431 or 414 beyond it).
    pub max_header_bytes: usize,
    /// JSON objects (`{` outside strings) one review may hold: the typed pod spec costs far
    /// more memory than its text (an empty container is 2 bytes of JSON and a kilobyte or two
    /// typed), so this, not the body size, bounds the memory of one evaluation.
    pub max_objects: usize,
    /// Violations spelled out in one denial; the rest are counted (`and 12 more`).
    pub max_listed_violations: usize,
    /// Evaluation threads: reviews evaluated at once, off the async reactor.
    pub evaluation_threads: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_limit: 8 * 1024 * 1024,
            request_timeout: Duration::from_secs(9),
            body_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_objects: 20_000,
            max_listed_violations: 100,
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
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            let allowed = if matches!(uri.path(), "/healthz" | "/readyz" | "/metrics") {
                "GET"
            } else {
                "POST"
            };
            let message = format!(
                "method {method} is not allowed on {}: use {allowed}",
                uri.path()
            );
            let mut response = error(StatusCode::METHOD_NOT_ALLOWED, &message);
            response
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static(allowed));
            response
        })
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            bounded_head,
        ))
        .with_state(state)
}

/// Refuses a request head over the limit with the documented JSON body, before any handler:
/// hyper's own limits are set higher, so that only this answers a merely large head.
async fn bounded_head(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let limit = state.limits.max_header_bytes;
    // The URI's length as sent, without writing it out.
    let target = request.uri();
    let uri = target.path_and_query().map_or(0, |p| p.as_str().len())
        + target.authority().map_or(0, |a| a.as_str().len())
        + target.scheme_str().map_or(0, |scheme| scheme.len() + 3);
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    let refuse = |status: StatusCode, reason: &'static str, message: String| {
        state.metrics.record_bad_request("any", reason);
        error(status, &message)
    };
    if uri > limit {
        return refuse(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request URI is {uri} bytes, more than the limit of {limit}"),
        );
    }
    if uri + headers > limit {
        return refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request head is {} bytes, more than the limit of {limit}",
                uri + headers
            ),
        );
    }
    next.run(request).await
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
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    review(state, Phase::Validate, &uri, headers, body).await
}

async fn mutate(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    review(state, Phase::Mutate, &uri, headers, body).await
}

/// The namespace label named by a `/namespace-label/KEY/VALUE` endpoint.
///
/// An AdmissionReview does not carry its namespace's labels. A webhook whose
/// `namespaceSelector` requires a label can post to `/mutate/namespace-label/KEY/VALUE` (or
/// `/validate/...`), and policies that match on that label, such as the `init-steps` opt-in,
/// then see it: `/mutate/namespace-label/initguard.dev/inject/enabled`. Webhook paths allow only
/// DNS-subdomain segments, so the value is the last segment and the key is everything before;
/// the path is read as it is, without percent-decoding.
fn namespace_label(path: &str) -> Result<Option<(String, String)>, String> {
    let Some((_, label)) = path.split_once("/namespace-label/") else {
        return Ok(None);
    };
    label
        .rsplit_once('/')
        .filter(|(key, value)| !key.is_empty() && !value.is_empty())
        .map(|(key, value)| Some((key.to_owned(), value.to_owned())))
        .ok_or_else(|| format!("namespace-label/{label}: expected namespace-label/KEY/VALUE"))
}

/// The apiserver's own deadline for the call, from its `?timeout=10s`, with room to answer.
fn apiserver_deadline(uri: &Uri) -> Option<Duration> {
    let timeout = uri
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("timeout="))?;
    let timeout = go_duration(timeout)?;
    Some(timeout.saturating_sub(ANSWER_MARGIN).max(MIN_DEADLINE))
}

/// A duration as Go's `time.Duration.String` writes it (`10s`, `1m30s`, `1.5s`, `300ms`): the
/// form the apiserver's REST client puts in `?timeout=`.
fn go_duration(text: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += number * seconds;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total)
        .ok()
        .filter(|_| !text.is_empty())
}

/// Kept from the apiserver's `?timeout=` to send the answer before it gives up.
const ANSWER_MARGIN: Duration = Duration::from_millis(500);
/// The shortest deadline a review gets, whatever the apiserver asks.
const MIN_DEADLINE: Duration = Duration::from_millis(100);

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

/// Why a body was not read.
enum BodyError {
    TooLarge,
    Unreadable(String),
}

/// Reads the body up to `limit` bytes. Past the limit it keeps reading, and drops, as much
/// again, so that a client that sends its whole body before reading gets the 413 rather than
/// a reset connection or stream.
async fn read_body(mut body: Body, limit: usize) -> Result<Bytes, BodyError> {
    use http_body_util::BodyExt as _;
    // The frames as they came: a body in one frame (the usual case) is never copied.
    let mut frames: Vec<Bytes> = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Unreadable(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > limit.saturating_mul(2) {
            return Err(BodyError::TooLarge);
        }
        if seen <= limit {
            frames.push(data);
        }
    }
    if seen > limit {
        return Err(BodyError::TooLarge);
    }
    Ok(match frames.len() {
        0 => Bytes::new(),
        1 => frames.swap_remove(0),
        _ => Bytes::from(frames.concat()),
    })
}

async fn review(
    state: Arc<AppState>,
    phase: Phase,
    uri: &Uri,
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
    let namespace_label = match namespace_label(uri.path()) {
        Ok(label) => label,
        Err(message) => return refuse(StatusCode::NOT_FOUND, "path", &message),
    };
    // Borrowed, so a well-formed review costs no allocation here; a value that is not text
    // reads as itself escaped, in the message that refuses it.
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .unwrap_or_default()
    };
    let content_type = text(header::CONTENT_TYPE);
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        let message = format!("unsupported content type {content_type:?}: send application/json");
        return refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "content_type", &message);
    }
    let encoding = text(header::CONTENT_ENCODING);
    if !encoding.is_empty() && !encoding.eq_ignore_ascii_case("identity") {
        let message = format!(
            "unsupported content encoding {encoding:?}: send the review uncompressed, as the apiserver does"
        );
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content_encoding",
            &message,
        );
    }
    let limit = state.limits.body_limit;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let too_large = || format!("request body is larger than the limit of {limit} bytes");
    // Too much to be worth reading and dropping: refuse on the promise alone.
    if declared.is_some_and(|length| length > (limit as u64).saturating_mul(2)) {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "too_large", &too_large());
    }
    let body_timeout = state.limits.body_timeout;
    let bytes = match tokio::time::timeout(body_timeout, read_body(body, limit)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(BodyError::TooLarge)) => {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, "too_large", &too_large());
        }
        Ok(Err(BodyError::Unreadable(e))) => {
            let message = format!("cannot read the request body: {e}");
            return refuse(StatusCode::BAD_REQUEST, "body", &message);
        }
        Err(_) => {
            let message = format!("the request body did not arrive within {body_timeout:?}");
            return refuse(StatusCode::REQUEST_TIMEOUT, "body_timeout", &message);
        }
    };
    let objects = json_objects(&bytes);
    if objects > state.limits.max_objects {
        let message = format!(
            "the review holds {objects} JSON objects, more than the {} initguard evaluates in one review",
            state.limits.max_objects
        );
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "too_many_objects", &message);
    }
    let timeout = apiserver_deadline(uri).map_or(state.limits.request_timeout, |apiserver| {
        apiserver.min(state.limits.request_timeout)
    });
    let deadline = started + timeout;
    let work = {
        let state = Arc::clone(&state);
        move || evaluate(&state, phase, &bytes, namespace_label, started, deadline)
    };
    let answered = tokio::time::timeout_at(deadline.into(), state.evaluator.run(work))
        .await
        .map_err(|_| NoAnswer::Deadline)
        .and_then(|ran| ran.map_err(NoAnswer::Evaluator))
        .and_then(|evaluated| evaluated.map_err(NoAnswer::Review));
    match answered {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(NoAnswer::Review(unreadable)) => refuse(
            StatusCode::BAD_REQUEST,
            "invalid_review",
            &unreadable.to_string(),
        ),
        Err(NoAnswer::Evaluator(failed)) => {
            tracing::error!(endpoint, "evaluation failed: {failed}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "evaluation failed unexpectedly; see the server log",
            )
        }
        Err(NoAnswer::Deadline) => {
            let message = format!("evaluation exceeded the request deadline of {timeout:?}");
            refuse(StatusCode::GATEWAY_TIMEOUT, "deadline", &message)
        }
    }
}

/// Why a review gets no verdict.
#[derive(Debug)]
enum NoAnswer {
    /// The request's deadline passed first (504).
    Deadline,
    /// The evaluation thread could not run the review (500).
    Evaluator(EvaluationError),
    /// The body is not a review initguard can read (400).
    Review(Unreadable),
}

/// A body that is not an AdmissionReview initguard can read.
#[derive(Debug, thiserror::Error)]
enum Unreadable {
    #[error(
        "the body starts with a UTF-8 byte-order mark, which JSON does not allow: send the review without it"
    )]
    ByteOrderMark,
    #[error(transparent)]
    Review(#[from] ReviewError),
    #[error(transparent)]
    Encode(#[from] serde_json::Error),
}

/// The byte-order mark some editors put first; JSON forbids it (RFC 8259, section 8.1).
const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

/// Parses, evaluates and answers one review: the blocking part of a request.
fn evaluate(
    state: &AppState,
    phase: Phase,
    body: &[u8],
    namespace_label: Option<(String, String)>,
    started: Instant,
    deadline: Instant,
) -> Result<Vec<u8>, Unreadable> {
    if body.starts_with(BYTE_ORDER_MARK) {
        return Err(Unreadable::ByteOrderMark);
    }
    let mut review = Review::from_slice(body)?;
    if let Some((key, value)) = namespace_label {
        let name = review.request.facts.namespace.clone().unwrap_or_default();
        review
            .request
            .facts_mut()
            .namespace_labels
            .get_or_insert_with(|| BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), name)]))
            .insert(key, value);
    }
    let request = &review.request;
    let pipeline = state.pipeline.load();
    let decision = pipeline.evaluate_until(request, phase, Some(deadline));
    let response = ReviewResponse::new(
        review.version,
        &request.facts.uid,
        &decision,
        phase == Phase::Mutate,
        state.limits.max_listed_violations,
    );
    let body = serde_json::to_vec(&response)?;
    let took = started.elapsed();
    let operation = match request.facts.operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    };
    state.metrics.record_review(
        endpoint(phase),
        operation,
        &request.facts.kind.kind,
        &decision,
        took,
    );
    tracing::info!(
        uid = %request.facts.uid,
        kind = %request.facts.kind.kind,
        namespace = request.facts.namespace.as_deref().unwrap_or(""),
        name = %request.facts.name,
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
                tracing::info!(uid = %request.facts.uid, policy = %report.name, rule = %violation.rule, "audit: {violation}");
            }
        }
    }
    Ok(body)
}

/// The JSON objects in `body`: its `{` outside strings, so that braces in a string (an
/// annotation holding JSON, a script) do not count. Not a parse: malformed JSON is left to the
/// parser, which says what is wrong.
fn json_objects(body: &[u8]) -> usize {
    let mut objects = 0;
    let mut at = 0;
    while let Some(found) = memchr::memchr2(b'{', b'"', &body[at..]) {
        at += found;
        if body[at] == b'{' {
            objects += 1;
            at += 1;
            continue;
        }
        // A string: its end is the next quote that no backslash escapes.
        at += 1;
        loop {
            match memchr::memchr2(b'"', b'\\', &body[at..]) {
                Some(end) if body[at + end] == b'"' => {
                    at += end + 1;
                    break;
                }
                Some(escape) => at += escape + 2,
                None => return objects,
            }
            if at >= body.len() {
                return objects;
            }
        }
    }
    objects
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's `time.Duration.String` forms, as the apiserver's REST client writes `?timeout=`.
    #[test]
    fn reads_go_durations() {
        assert_eq!(go_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(go_duration("300ms"), Some(Duration::from_millis(300)));
        for bad in ["", "10", "s", "10x", "-1s"] {
            assert_eq!(go_duration(bad), None, "{bad}");
        }
        let uri: Uri = "/validate?timeout=5s".parse().unwrap();
        assert_eq!(apiserver_deadline(&uri), Some(Duration::from_millis(4500)));
        let uri: Uri = "/validate?timeout=50ms".parse().unwrap();
        assert_eq!(apiserver_deadline(&uri), Some(MIN_DEADLINE));
    }

    /// Braces in strings are text, not objects: an annotation holding an object's JSON (as
    /// `kubectl.kubernetes.io/last-applied-configuration` does) does not count twice.
    #[test]
    fn objects_are_counted_outside_strings() {
        assert_eq!(json_objects(br#"{"a": {"b": {}}}"#), 3);
        assert_eq!(
            json_objects(br#"{"a": "{{{", "b": "\"{", "c": "\\", "d": {}}"#),
            2
        );
        assert_eq!(
            json_objects(br#"{"a": "x\"#),
            1,
            "an unterminated string ends the count"
        );
        assert_eq!(
            json_objects(b"\"\\"),
            0,
            "a trailing backslash is not read past"
        );
        assert_eq!(json_objects(b""), 0);
    }
}
