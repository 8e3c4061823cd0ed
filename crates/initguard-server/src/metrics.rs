//! Prometheus metrics: reviews by endpoint, operation, kind and verdict; per-policy evaluation
//! counts, latency and errors; bad requests; reloads.

use std::time::Duration;

use initguard_core::Decision;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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
        Self {
            registry,
            reviews,
            review_duration,
            bad_requests,
            policy_evaluations,
            policy_duration,
            policy_errors,
            reloads,
        }
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
            let result = match &report.result {
                Ok(outcome) if outcome.violations.is_empty() => "pass",
                Ok(_) => "violation",
                Err(_) => {
                    self.policy_errors
                        .get_or_create(&PolicyLabels {
                            policy: report.name.clone(),
                        })
                        .inc();
                    "error"
                }
            };
            self.policy_evaluations
                .get_or_create(&PolicyResultLabels {
                    policy: report.name.clone(),
                    result,
                })
                .inc();
            self.policy_duration
                .get_or_create(&PolicyLabels {
                    policy: report.name.clone(),
                })
                .observe(report.duration.as_secs_f64());
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
