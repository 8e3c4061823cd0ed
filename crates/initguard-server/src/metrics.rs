//! Prometheus metrics: reviews by endpoint, operation, kind and verdict; per-policy evaluation
//! counts, latency and errors; bad requests; reloads; the evaluation queue.

use std::collections::HashMap;
use std::time::Duration;

use arc_swap::ArcSwap;

use initguard_core::Decision;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReviewLabels {
    pub endpoint: &'static str,
    pub operation: String,
    pub kind: String,
    pub verdict: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BadRequestLabels {
    pub endpoint: &'static str,
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    pub policy: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyResultLabels {
    pub policy: String,
    /// `pass`, `violation` or `error`.
    pub result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `policies` or `certificates`.
    pub what: &'static str,
    /// `success` or `failure`.
    pub result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionLabels {
    /// `refused` (at the cap), `handshake`, `header`, `idle`, `write` (timeouts), `evicted`
    /// (idle, closed for a waiting client) or `shutdown` (idle at shutdown).
    pub reason: &'static str,
}

fn latency_histogram() -> Histogram {
    // 10 µs to about 5 s.
    Histogram::new(exponential_buckets(0.000_01, 2.5, 15))
}

/// Every metric the server exports, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub reviews: Family<ReviewLabels, Counter>,
    pub review_duration: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    pub bad_requests: Family<BadRequestLabels, Counter>,
    pub policy_evaluations: Family<PolicyResultLabels, Counter>,
    pub policy_duration: Family<PolicyLabels, Histogram, fn() -> Histogram>,
    pub policy_errors: Family<PolicyLabels, Counter>,
    pub reloads: Family<ReloadLabels, Counter>,
    /// Reviews read and waiting for an evaluation thread, and the threads: set when scraped.
    pub evaluations_waiting: Gauge,
    pub evaluation_threads: Gauge,
    /// Client connections open, and those refused at the connection cap or closed by a
    /// timeout, by which one.
    pub connections_open: Gauge,
    pub connections_closed: Family<ConnectionLabels, Counter>,
    /// Each policy's metric handles, looked up by name without a lock or an allocation; a
    /// policy seen for the first time (after a reload) is added once.
    policies: ArcSwap<HashMap<String, PolicyHandles>>,
}

/// One policy's counters and histogram, shared with the families that export them.
#[derive(Debug, Clone)]
struct PolicyHandles {
    pass: Counter,
    violation: Counter,
    error: Counter,
    errors: Counter,
    duration: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("initguard");
        let reviews = Family::default();
        let review_duration = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let bad_requests = Family::default();
        let policy_evaluations = Family::default();
        let policy_duration = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let policy_errors = Family::default();
        let reloads = Family::default();
        let evaluations_waiting = Gauge::default();
        let evaluation_threads = Gauge::default();
        let connections_open = Gauge::default();
        let connections_closed = Family::default();
        registry.register(
            "connections_open",
            "Client connections open",
            connections_open.clone(),
        );
        registry.register(
            "connections_closed",
            "Client connections the server refused or closed, by reason",
            connections_closed.clone(),
        );
        registry.register("reviews", "AdmissionReviews answered", reviews.clone());
        registry.register(
            "review_duration_seconds",
            "Time to answer an AdmissionReview",
            review_duration.clone(),
        );
        registry.register(
            "bad_requests",
            "Requests refused before evaluation",
            bad_requests.clone(),
        );
        registry.register(
            "policy_evaluations",
            "Policy evaluations by result",
            policy_evaluations.clone(),
        );
        registry.register(
            "policy_evaluation_duration_seconds",
            "Time one policy took on one review",
            policy_duration.clone(),
        );
        registry.register(
            "policy_errors",
            "Policies that failed to give a verdict",
            policy_errors.clone(),
        );
        registry.register(
            "reloads",
            "Reloads of policies and certificates",
            reloads.clone(),
        );
        registry.register(
            "evaluations_waiting",
            "Reviews waiting for an evaluation thread",
            evaluations_waiting.clone(),
        );
        registry.register(
            "evaluation_threads",
            "Threads evaluating reviews",
            evaluation_threads.clone(),
        );
        Self {
            registry,
            reviews,
            review_duration,
            bad_requests,
            policy_evaluations,
            policy_duration,
            policy_errors,
            reloads,
            evaluations_waiting,
            evaluation_threads,
            connections_open,
            connections_closed,
            policies: ArcSwap::default(),
        }
    }

    pub fn record_connection_closed(&self, reason: &'static str) {
        self.connections_closed
            .get_or_create(&ConnectionLabels { reason })
            .inc();
    }

    /// Records with the handles of policy `name`, registering them on first sight.
    fn with_policy(&self, name: &str, record: impl FnOnce(&PolicyHandles)) {
        if let Some(handles) = self.policies.load().get(name) {
            record(handles);
            return;
        }
        let result = |result| {
            self.policy_evaluations
                .get_or_create(&PolicyResultLabels {
                    policy: name.to_owned(),
                    result,
                })
                .clone()
        };
        let labels = PolicyLabels {
            policy: name.to_owned(),
        };
        let handles = PolicyHandles {
            pass: result("pass"),
            violation: result("violation"),
            error: result("error"),
            errors: self.policy_errors.get_or_create(&labels).clone(),
            duration: self.policy_duration.get_or_create(&labels).clone(),
        };
        record(&handles);
        self.policies.rcu(|known| {
            let mut known = HashMap::clone(known);
            known.insert(name.to_owned(), handles.clone());
            known
        });
    }

    /// Records one answered review and what each policy did in it.
    pub fn record_review(
        &self,
        endpoint: &'static str,
        operation: &str,
        kind: &str,
        decision: &Decision,
        took: Duration,
    ) {
        let verdict = if decision.allowed() {
            "allowed"
        } else {
            "denied"
        };
        self.reviews
            .get_or_create(&ReviewLabels {
                endpoint,
                operation: operation.to_owned(),
                kind: kind.to_owned(),
                verdict,
            })
            .inc();
        self.review_duration
            .get_or_create(&EndpointLabels { endpoint })
            .observe(took.as_secs_f64());
        for report in &decision.reports {
            self.with_policy(&report.name, |handles| {
                match &report.result {
                    Ok(outcome) if outcome.violations.is_empty() => handles.pass.inc(),
                    Ok(_) => handles.violation.inc(),
                    Err(_) => {
                        handles.errors.inc();
                        handles.error.inc()
                    }
                };
                handles.duration.observe(report.duration.as_secs_f64());
            });
        }
    }

    pub fn record_bad_request(&self, endpoint: &'static str, reason: &'static str) {
        self.bad_requests
            .get_or_create(&BadRequestLabels { endpoint, reason })
            .inc();
    }

    pub fn record_reload(&self, what: &'static str, ok: bool) {
        self.reloads
            .get_or_create(&ReloadLabels {
                what,
                result: if ok { "success" } else { "failure" },
            })
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
