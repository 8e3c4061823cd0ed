//! The AdmissionReview the webhook answers with.
//!
//! kube-core's `AdmissionResponse` serializes `patch` as a JSON array of numbers; the API
//! documents a base64 string, which is also a third of the size. This type writes the documented
//! wire form and keeps the other rules of the protocol in one place.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use crate::pipeline::{Decision, Warning};
use crate::request::ReviewVersion;

/// The apiserver shows warnings as-is; longer ones are cut to this many characters.
pub const MAX_WARNING_CHARS: usize = 120;
const TRUNCATION_MARKER: &str = "…";

/// A complete AdmissionReview response body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewResponse {
    api_version: &'static str,
    kind: &'static str,
    response: ResponseBody,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseBody {
    uid: String,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Status {
    code: u16,
    message: String,
    reason: &'static str,
}

impl ReviewResponse {
    /// The answer to a request, in the version it came in, spelling out at most `listed`
    /// reasons of a denial. The patch is included only when `with_patch` (the mutating
    /// endpoint) and non-empty, never as an empty patch.
    pub fn new(
        version: ReviewVersion,
        uid: &str,
        decision: &Decision,
        with_patch: bool,
        listed: usize,
    ) -> Self {
        let patch = (with_patch && !decision.patch.0.is_empty())
            .then(|| serde_json::to_vec(&decision.patch).map(|bytes| STANDARD.encode(bytes)))
            .and_then(Result::ok);
        let status = decision.denial.as_ref().map(|denial| Status {
            code: denial.code,
            message: denial.message_listing(listed),
            reason: if denial.code == 403 {
                "Forbidden"
            } else {
                "InternalError"
            },
        });
        Self {
            api_version: version.api_version(),
            kind: "AdmissionReview",
            response: ResponseBody {
                uid: uid.to_owned(),
                allowed: decision.allowed(),
                status,
                patch_type: patch.is_some().then_some("JSONPatch"),
                patch,
                warnings: bounded_warnings(&decision.warnings),
            },
        }
    }
}

/// The apiserver keeps at most this many characters of warnings per request: past it, it cuts
/// each to 256 and drops the rest (kubernetes/kubernetes
/// `staging/src/k8s.io/apiserver/pkg/endpoints/filters/warning.go`, `truncateAtTotalRunes`).
pub const MAX_WARNINGS_CHARS: usize = 4 * 1024;

/// The warnings as the apiserver would pass them on: duplicates dropped (its recorder dedupes
/// by text), each cut to [`MAX_WARNING_CHARS`], and no more than [`MAX_WARNINGS_CHARS`] in all,
/// the rest counted in a last warning.
fn bounded_warnings(warnings: &[Warning]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut kept = Vec::new();
    let mut chars = 0;
    let mut omitted = 0;
    for warning in warnings.iter().map(ToString::to_string) {
        if !seen.insert(warning.clone()) {
            continue;
        }
        let warning = truncate_warning(&warning);
        let length = warning.chars().count();
        if chars + length > MAX_WARNINGS_CHARS - MAX_WARNING_CHARS {
            omitted += 1;
            continue;
        }
        chars += length;
        kept.push(warning);
    }
    if omitted > 0 {
        kept.push(format!("and {omitted} more warnings"));
    }
    kept
}

fn truncate_warning(warning: &str) -> String {
    if warning.chars().count() <= MAX_WARNING_CHARS {
        return warning.to_owned();
    }
    let kept: String = warning
        .chars()
        .take(MAX_WARNING_CHARS - TRUNCATION_MARKER.chars().count())
        .collect();
    kept + TRUNCATION_MARKER
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Denial;
    use serde_json::json;

    fn decision(
        denial: Option<Denial>,
        patch: serde_json::Value,
        warnings: Vec<String>,
    ) -> Decision {
        Decision {
            denial,
            warnings: warnings
                .into_iter()
                .map(|message| Warning::Finding {
                    policy: "p".to_owned(),
                    violation: crate::Violation::message(message),
                })
                .collect(),
            patch: serde_json::from_value(patch).unwrap(),
            mutated: None,
            reports: Vec::new(),
        }
    }

    #[test]
    fn patch_is_base64_of_the_json_patch() {
        let d = decision(None, json!([{"op": "remove", "path": "/a"}]), vec![]);
        let wire =
            serde_json::to_value(ReviewResponse::new(ReviewVersion::V1, "u-1", &d, true, 100))
                .unwrap();
        assert_eq!(
            wire,
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {
                "uid": "u-1", "allowed": true, "patchType": "JSONPatch",
                "patch": STANDARD.encode(br#"[{"op":"remove","path":"/a"}]"#)}})
        );
        let validating = serde_json::to_value(ReviewResponse::new(
            ReviewVersion::V1Beta1,
            "u-1",
            &d,
            false,
            100,
        ))
        .unwrap();
        assert_eq!(
            validating,
            json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "response": {"uid": "u-1", "allowed": true}})
        );
    }

    #[test]
    fn denial_carries_code_and_message_and_long_warnings_are_cut() {
        let long = "w".repeat(300);
        let d = decision(
            Some(Denial {
                code: 403,
                reasons: vec!["no".into()],
            }),
            json!([]),
            vec![long, "short".into()],
        );
        let wire = serde_json::to_value(ReviewResponse::new(ReviewVersion::V1, "u", &d, true, 100))
            .unwrap();
        assert_eq!(wire["response"]["allowed"], false);
        assert_eq!(
            wire["response"]["status"],
            json!({"code": 403, "message": "no", "reason": "Forbidden"})
        );
        assert!(
            wire["response"].get("patch").is_none() && wire["response"].get("patchType").is_none()
        );
        let first = wire["response"]["warnings"][0].as_str().unwrap();
        assert_eq!(first.chars().count(), MAX_WARNING_CHARS);
        assert!(first.ends_with('…'));
        assert_eq!(wire["response"]["warnings"][1], "[p] short");
    }

    #[test]
    fn many_reasons_and_warnings_stay_bounded() {
        let reasons = (0..1000).map(|i| format!("reason {i}")).collect();
        let warnings: Vec<String> = (0..1000)
            .map(|i| format!("warning {i} {}", "w".repeat(100)))
            .chain(std::iter::repeat_n("same".to_owned(), 5))
            .collect();
        let d = decision(Some(Denial { code: 403, reasons }), json!([]), warnings);
        let wire =
            serde_json::to_value(ReviewResponse::new(ReviewVersion::V1, "u", &d, true, 3)).unwrap();
        assert_eq!(
            wire["response"]["status"]["message"],
            "reason 0; reason 1; reason 2; and 997 more"
        );
        let sent: Vec<&str> = wire["response"]["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect();
        let total: usize = sent.iter().map(|w| w.chars().count()).sum();
        assert!(total <= MAX_WARNINGS_CHARS, "{total}");
        assert_eq!(
            sent.last().copied(),
            Some(format!("and {} more warnings", 1001 - (sent.len() - 1)).as_str()),
            "the duplicates count once"
        );
    }
}
