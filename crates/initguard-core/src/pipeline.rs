//! The pipeline: match, mutate in order, validate the final object, decide.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::matching::MatchRules;
use crate::policy::{FailurePolicy, Mode, Mutation, Outcome, Policy, PolicyError, Violation};
use crate::request::Request;

/// A policy with the settings that say when it runs and what its findings do.
#[derive(Debug, Clone)]
pub struct PolicyEntry {
    /// The name in config, unique in the pipeline; names the policy in messages and metrics.
    pub name: String,
    /// What its findings do: deny, warn, or only be recorded.
    pub mode: Mode,
    /// What a failure of the policy (no verdict) does.
    pub failure_policy: FailurePolicy,
    /// Which requests the policy runs on.
    pub rules: MatchRules,
    /// The policy itself.
    pub policy: Arc<dyn Policy>,
}

/// Which policies a call runs: the two webhooks of the apiserver, or both in order (`check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The mutating webhook: mutating policies only.
    Mutate,
    /// The validating webhook: validating policies only.
    Validate,
    /// Both, mutating first, as `initguard check` runs them.
    All,
}

impl Phase {
    fn runs(self, mutating: bool) -> bool {
        match self {
            Self::Mutate => mutating,
            Self::Validate => !mutating,
            Self::All => true,
        }
    }
}

/// An ordered set of policies.
#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    entries: Vec<PolicyEntry>,
}

/// What one policy did with one request.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PolicyReport {
    /// The policy's name in config.
    pub name: String,
    /// Its mode.
    pub mode: Mode,
    /// Its failure policy.
    pub failure_policy: FailurePolicy,
    /// Whether it is a mutating policy.
    pub mutating: bool,
    /// The policy's [`Policy::profile`].
    pub profile: Option<&'static str>,
    /// How long its evaluation took.
    pub duration: Duration,
    /// What it found, or why it gave no verdict.
    pub result: Result<Outcome, PolicyError>,
}

/// Why a request is denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// 403 for violations, 500 for a failed policy whose failurePolicy is Fail.
    pub code: u16,
    /// Each failed policy, then each violation, as `[policy/RULE] path: message`.
    pub reasons: Vec<String>,
}

impl Denial {
    /// Every reason, joined by `; `.
    pub fn message(&self) -> String {
        self.message_listing(usize::MAX)
    }

    /// The first `listed` reasons joined by `; `, and how many more there are: an answer stays
    /// readable, and bounded, however many containers break a rule.
    pub fn message_listing(&self, listed: usize) -> String {
        let shown = self.reasons.len().min(listed.max(1));
        let mut message = self.reasons[..shown].join("; ");
        if shown < self.reasons.len() {
            let more = self.reasons.len() - shown;
            let _ = write!(message, "; and {more} more");
        }
        message
    }
}

/// The verdict on one request.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Decision {
    /// Why the request is denied; `None` when it is allowed.
    pub denial: Option<Denial>,
    /// What the answer warns about, in the order the policies ran.
    pub warnings: Vec<Warning>,
    /// RFC 6902 diff between the object received and the final object; empty when unchanged.
    pub patch: json_patch::Patch,
    /// The final object, when a policy changed it.
    pub mutated: Option<Value>,
    /// Every policy that matched, in the order it ran.
    pub reports: Vec<PolicyReport>,
}

impl Decision {
    /// Whether the request is allowed.
    pub fn allowed(&self) -> bool {
        self.denial.is_none()
    }
}

impl Pipeline {
    /// A pipeline of `entries`, mutating ones running first whatever their place.
    pub fn new(entries: Vec<PolicyEntry>) -> Self {
        Self { entries }
    }

    /// The policies, in config order.
    pub fn entries(&self) -> &[PolicyEntry] {
        &self.entries
    }

    /// Runs the phase's policies on `request` and decides.
    pub fn evaluate(&self, request: &Request, phase: Phase) -> Decision {
        self.evaluate_until(request, phase, None)
    }

    /// As [`Self::evaluate`], but runs no policy once `deadline` has passed: the caller has
    /// answered already (504), and the thread is wanted for the next review.
    pub fn evaluate_until(
        &self,
        request: &Request,
        phase: Phase,
        deadline: Option<Instant>,
    ) -> Decision {
        let mut reports = Vec::new();
        // The request as the mutating policies so far have left it; the one received stays
        // as it is, to diff against at the end.
        let mut changed: Option<Request> = None;

        let mutating = self.entries.iter().filter(|e| e.policy.mutating());
        let validating = self.entries.iter().filter(|e| !e.policy.mutating());
        for entry in mutating.chain(validating) {
            if !phase.runs(entry.policy.mutating()) {
                continue;
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                break;
            }
            let current = changed.as_ref().unwrap_or(request);
            if !entry.rules.matches(current) {
                continue;
            }
            let started = Instant::now();
            let mut result = entry.policy.evaluate(current);
            let mutation = match &mut result {
                Ok(outcome) if entry.mode != Mode::Audit => outcome.mutation.take(),
                _ => None,
            };
            if let Some(mutation) = mutation
                && let Err(error) = mutate(&mut changed, request, mutation)
            {
                result = Err(error);
            }
            reports.push(PolicyReport {
                name: entry.name.clone(),
                mode: entry.mode,
                failure_policy: entry.failure_policy,
                mutating: entry.policy.mutating(),
                profile: entry.policy.profile(),
                duration: started.elapsed(),
                result,
            });
        }
        leave_out_repeats(&mut reports);

        // One diff, at the end, and only when a policy changed the object.
        let (patch, mutated) = match changed.and_then(Request::into_object) {
            Some(last) => {
                let patch = request.object().map_or_else(
                    || json_patch::Patch(Vec::new()),
                    |original| crate::patch::diff(original, &last),
                );
                let mutated = (!patch.0.is_empty()).then_some(last);
                (patch, mutated)
            }
            None => (json_patch::Patch(Vec::new()), None),
        };
        let (denial, warnings) = decide(&reports);
        Decision {
            denial,
            warnings,
            patch,
            mutated,
            reports,
        }
    }
}

/// Puts the request after `mutation` in `changed`; every request of the chain shares the
/// facts of the one received. A patch applies in place to the object the pipeline owns
/// already; the object received is copied only for the first patch. A patch that does not
/// apply leaves the object as it was (`json_patch::patch` undoes what it applied).
fn mutate(
    changed: &mut Option<Request>,
    received: &Request,
    mutation: Mutation,
) -> Result<(), PolicyError> {
    let object = match mutation {
        Mutation::Object(object) => object,
        Mutation::Patch(patch) => {
            let owned = changed.is_some();
            let mut object = match changed.take() {
                Some(request) => request.into_object(),
                None => received.object().cloned(),
            }
            .unwrap_or(Value::Null);
            if let Err(error) = json_patch::patch(&mut object, &patch.0) {
                *changed = owned.then(|| received.with_object(object));
                return Err(PolicyError::InvalidPatch(error.to_string()));
            }
            object
        }
    };
    *changed = Some(received.with_object(object));
    Ok(())
}

/// How much a finding of a report weighs: a denial over a warning over a record.
fn weight(report: &PolicyReport) -> u8 {
    match report.mode {
        Mode::Enforce => 2,
        Mode::Warn => 1,
        Mode::Audit => 0,
    }
}

/// Removes the findings a user would otherwise read twice:
///
/// - A profile's warn entries say nothing once an enforce entry of the same profile denies, as
///   Pod Security Admission "avoid[s] adding warnings to a request we're already going to reject
///   with an error" (kubernetes/kubernetes
///   `staging/src/k8s.io/pod-security-admission/admission/admission.go`, `EvaluatePod`).
/// - A finding that restates another policy's rule for the same containers is left out when that
///   rule reports them at least as severely (IG-H007 beside Pod Security's restricted checks).
fn leave_out_repeats(reports: &mut [PolicyReport]) {
    let denying: Vec<&str> = reports
        .iter()
        .filter(|r| r.mode == Mode::Enforce)
        .filter(|r| r.result.as_ref().is_ok_and(|o| !o.violations.is_empty()))
        .filter_map(|r| r.profile)
        .collect();
    for report in reports.iter_mut() {
        if report.mode == Mode::Warn
            && report.profile.is_some_and(|p| denying.contains(&p))
            && let Ok(outcome) = &mut report.result
        {
            outcome.violations.clear();
            outcome.warnings.clear();
        }
    }
    let restating = |report: &PolicyReport| {
        report
            .result
            .as_ref()
            .is_ok_and(|o| o.violations.iter().any(|v| v.restates.is_some()))
    };
    // The common case, on every review: nothing restates anything, and nothing is allocated.
    if !reports.iter().any(restating) {
        return;
    }
    let restated: Vec<Vec<bool>> = reports
        .iter()
        .enumerate()
        .map(|(index, report)| {
            let Ok(outcome) = &report.result else {
                return Vec::new();
            };
            outcome
                .violations
                .iter()
                .map(|violation| {
                    violation.restates.is_some()
                        && reports.iter().enumerate().any(|(other_index, other)| {
                            other_index != index
                                && weight(other) >= weight(report)
                                && other.result.as_ref().is_ok_and(|o| {
                                    o.violations.iter().any(|w| violation.restated_by(w))
                                })
                        })
                })
                .collect()
        })
        .collect();
    for (report, restated) in reports.iter_mut().zip(restated) {
        if let Ok(outcome) = &mut report.result
            && restated.contains(&true)
        {
            let mut flags = restated.into_iter();
            outcome
                .violations
                .retain(|_| !flags.next().unwrap_or(false));
        }
    }
}

/// A finding that does not deny.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Warning {
    /// A policy's warning, or its violation in warn mode.
    Finding {
        /// The policy's name in config.
        policy: String,
        /// What it found.
        violation: Violation,
    },
    /// A policy gave no verdict, and its `failurePolicy: Ignore` let the request through.
    PolicyFailed {
        /// The policy's name in config.
        policy: String,
        /// Why it gave no verdict.
        error: PolicyError,
    },
}

/// The text the apiserver shows: `[policy/RULE] path: message`, or why the policy failed.
impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Finding { policy, violation } => f.write_str(&describe(policy, violation)),
            Self::PolicyFailed { policy, error } => {
                write!(f, "policy {policy} failed: {error} (ignored)")
            }
        }
    }
}

/// Turns the reports into a denial and warnings, as DESIGN.md sets out: enforce violations
/// deny (403), warn violations warn, audit only reports; a failed policy denies (500) under
/// `Fail` and warns under `Ignore`.
fn decide(reports: &[PolicyReport]) -> (Option<Denial>, Vec<Warning>) {
    let mut denied = Vec::new();
    let mut failed = Vec::new();
    let mut warnings = Vec::new();
    for report in reports {
        match &report.result {
            Ok(outcome) => {
                let finding = |violation: &Violation| Warning::Finding {
                    policy: report.name.clone(),
                    violation: violation.clone(),
                };
                warnings.extend(outcome.warnings.iter().map(finding));
                match report.mode {
                    Mode::Enforce => {
                        denied.extend(outcome.violations.iter().map(|v| describe(&report.name, v)));
                    }
                    Mode::Warn => warnings.extend(outcome.violations.iter().map(finding)),
                    Mode::Audit => {}
                }
            }
            Err(error) => match report.failure_policy {
                FailurePolicy::Fail => {
                    failed.push(format!("policy {} failed: {error}", report.name));
                }
                FailurePolicy::Ignore => warnings.push(Warning::PolicyFailed {
                    policy: report.name.clone(),
                    error: error.clone(),
                }),
            },
        }
    }
    let denial = if !failed.is_empty() {
        failed.extend(denied);
        Some(Denial {
            code: 500,
            reasons: failed,
        })
    } else if !denied.is_empty() {
        Some(Denial {
            code: 403,
            reasons: denied,
        })
    } else {
        None
    };
    (denial, warnings)
}

/// `[policy/RULE] path: message`, the form used in denials and warnings.
pub fn describe(policy: &str, violation: &Violation) -> String {
    if violation.rule.is_empty() {
        format!("[{policy}] {violation}")
    } else {
        format!("[{policy}/{}] {violation}", violation.rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warnings(decision: &Decision) -> Vec<String> {
        decision.warnings.iter().map(ToString::to_string).collect()
    }
    use crate::path::FieldPath;
    use crate::workload::Workload;
    use serde_json::json;

    /// Denies pods whose first init container has no image.
    #[derive(Debug)]
    struct NeedsImage;

    impl Policy for NeedsImage {
        fn evaluate(&self, request: &Request) -> Result<Outcome, PolicyError> {
            let workload = request.workload()?;
            let mut outcome = Outcome::default();
            for (index, container) in workload
                .map(Workload::init_containers)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                if container.image.is_none() {
                    let path = FieldPath::from_fields(&["spec", "initContainers"])
                        .index(index)
                        .field("image");
                    outcome
                        .violations
                        .push(Violation::at("T-1", &path, "Required value"));
                }
            }
            Ok(outcome)
        }
    }

    /// Sets the first init container's image.
    #[derive(Debug)]
    struct SetsImage;

    impl Policy for SetsImage {
        fn mutating(&self) -> bool {
            true
        }
        fn evaluate(&self, _: &Request) -> Result<Outcome, PolicyError> {
            let patch = serde_json::from_value(json!([{"op": "add", "path": "/spec/initContainers/0/image", "value": "busybox:1.36"}])).unwrap();
            Ok(Outcome::with_mutation(Mutation::Patch(patch)))
        }
    }

    #[derive(Debug)]
    struct Broken;

    impl Policy for Broken {
        fn evaluate(&self, _: &Request) -> Result<Outcome, PolicyError> {
            Err(PolicyError::Trap("unreachable executed".into()))
        }
    }

    fn entry(
        name: &str,
        mode: Mode,
        failure_policy: FailurePolicy,
        policy: Arc<dyn Policy>,
    ) -> PolicyEntry {
        PolicyEntry {
            name: name.into(),
            mode,
            failure_policy,
            rules: MatchRules::default(),
            policy,
        }
    }

    fn pod_without_image() -> Request {
        Request::create(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "init"}], "containers": [{"name": "app", "image": "app:1"}]}}),
        )
    }

    #[test]
    fn enforce_denies_with_every_path_warn_warns_audit_reports() {
        let request = pod_without_image();
        let enforce = Pipeline::new(vec![entry(
            "needs-image",
            Mode::Enforce,
            FailurePolicy::Fail,
            Arc::new(NeedsImage),
        )]);
        let decision = enforce.evaluate(&request, Phase::All);
        assert_eq!(
            decision.denial,
            Some(Denial {
                code: 403,
                reasons: vec![
                    "[needs-image/T-1] spec.initContainers[0].image: Required value".into()
                ]
            })
        );

        let warn = Pipeline::new(vec![entry(
            "needs-image",
            Mode::Warn,
            FailurePolicy::Fail,
            Arc::new(NeedsImage),
        )]);
        let decision = warn.evaluate(&request, Phase::All);
        assert!(decision.allowed());
        assert_eq!(
            warnings(&decision),
            ["[needs-image/T-1] spec.initContainers[0].image: Required value"]
        );

        let audit = Pipeline::new(vec![entry(
            "needs-image",
            Mode::Audit,
            FailurePolicy::Fail,
            Arc::new(NeedsImage),
        )]);
        let decision = audit.evaluate(&request, Phase::All);
        assert!(decision.allowed() && decision.warnings.is_empty());
        assert_eq!(
            decision.reports[0]
                .result
                .as_ref()
                .unwrap()
                .violations
                .len(),
            1
        );
    }

    #[test]
    fn validators_see_the_mutated_object_and_the_patch_is_the_diff() {
        let pipeline = Pipeline::new(vec![
            entry(
                "needs-image",
                Mode::Enforce,
                FailurePolicy::Fail,
                Arc::new(NeedsImage),
            ),
            entry(
                "sets-image",
                Mode::Enforce,
                FailurePolicy::Fail,
                Arc::new(SetsImage),
            ),
        ]);
        let request = pod_without_image();
        let decision = pipeline.evaluate(&request, Phase::All);
        assert!(decision.allowed(), "{:?}", decision.denial);
        assert_eq!(
            decision.reports[0].name, "sets-image",
            "mutating policies run first"
        );
        assert_eq!(
            serde_json::to_value(&decision.patch).unwrap(),
            json!([{"op": "add", "path": "/spec/initContainers/0/image", "value": "busybox:1.36"}])
        );
        let mut patched = request.object().cloned().unwrap();
        json_patch::patch(&mut patched, &decision.patch.0).unwrap();
        assert_eq!(Some(patched), decision.mutated);

        let validate_only = pipeline.evaluate(&request, Phase::Validate);
        assert!(!validate_only.allowed());
        assert!(validate_only.patch.0.is_empty());
    }

    /// Stands for one level of a standard: reports `CHECK` for container `app`.
    #[derive(Debug)]
    struct Standard;

    impl Policy for Standard {
        fn profile(&self) -> Option<&'static str> {
            Some("standard")
        }
        fn evaluate(&self, _: &Request) -> Result<Outcome, PolicyError> {
            Ok(Outcome {
                violations: vec![Violation {
                    containers: vec!["app".into()],
                    ..Violation::object("CHECK", "containers \"app\" must comply")
                }],
                ..Outcome::default()
            })
        }
    }

    /// Says `CHECK` again for container `app`, and something of its own.
    #[derive(Debug)]
    struct Restates;

    impl Policy for Restates {
        fn evaluate(&self, _: &Request) -> Result<Outcome, PolicyError> {
            Ok(Outcome {
                violations: vec![
                    Violation::object("R-1", "app must comply").restating("CHECK", "app"),
                    Violation::object("R-1", "init must comply").restating("CHECK", "init"),
                    Violation::object("R-2", "something else"),
                ],
                ..Outcome::default()
            })
        }
    }

    fn rules_of(decision: &Decision) -> Vec<(String, Vec<String>)> {
        decision
            .reports
            .iter()
            .map(|r| {
                let outcome = r.result.as_ref().unwrap();
                (
                    r.name.clone(),
                    outcome
                        .violations
                        .iter()
                        .map(|v| v.message.clone())
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn a_restatement_defers_to_an_as_severe_report_of_its_rule() {
        let request = pod_without_image();
        let pipeline = |restating: Mode, standard: Mode| {
            Pipeline::new(vec![
                entry(
                    "restates",
                    restating,
                    FailurePolicy::Fail,
                    Arc::new(Restates),
                ),
                entry(
                    "standard",
                    standard,
                    FailurePolicy::Fail,
                    Arc::new(Standard),
                ),
            ])
        };
        let both_warn = pipeline(Mode::Warn, Mode::Warn).evaluate(&request, Phase::All);
        assert_eq!(
            rules_of(&both_warn)[0].1,
            ["init must comply", "something else"],
            "the container the standard names is left to it; the others stay"
        );
        let stricter = pipeline(Mode::Enforce, Mode::Warn).evaluate(&request, Phase::All);
        assert_eq!(
            rules_of(&stricter)[0].1.len(),
            3,
            "a denial is never dropped for a warning"
        );
        assert!(!stricter.allowed());
    }

    /// Pod Security Admission "avoid[s] adding warnings to a request we're already going to
    /// reject with an error": kubernetes/kubernetes
    /// `staging/src/k8s.io/pod-security-admission/admission/admission.go`, `EvaluatePod`.
    #[test]
    fn a_profile_that_denies_adds_no_warnings() {
        let request = pod_without_image();
        let pipeline = Pipeline::new(vec![
            entry(
                "baseline",
                Mode::Enforce,
                FailurePolicy::Fail,
                Arc::new(Standard),
            ),
            entry(
                "restricted",
                Mode::Warn,
                FailurePolicy::Fail,
                Arc::new(Standard),
            ),
            entry(
                "other",
                Mode::Warn,
                FailurePolicy::Fail,
                Arc::new(NeedsImage),
            ),
        ]);
        let decision = pipeline.evaluate(&request, Phase::All);
        assert_eq!(
            decision.denial.as_ref().unwrap().message(),
            "[baseline/CHECK] containers \"app\" must comply"
        );
        assert_eq!(
            warnings(&decision),
            ["[other/T-1] spec.initContainers[0].image: Required value"],
            "other policies still warn"
        );
    }

    #[test]
    fn failure_policy_decides_errors() {
        let request = pod_without_image();
        let fail = Pipeline::new(vec![entry(
            "broken",
            Mode::Enforce,
            FailurePolicy::Fail,
            Arc::new(Broken),
        )]);
        let denial = fail.evaluate(&request, Phase::All).denial.unwrap();
        assert_eq!(denial.code, 500);
        assert_eq!(
            denial.message(),
            "policy broken failed: the policy trapped: unreachable executed"
        );

        let ignore = Pipeline::new(vec![entry(
            "broken",
            Mode::Enforce,
            FailurePolicy::Ignore,
            Arc::new(Broken),
        )]);
        let decision = ignore.evaluate(&request, Phase::All);
        assert!(decision.allowed());
        assert_eq!(
            warnings(&decision),
            ["policy broken failed: the policy trapped: unreachable executed (ignored)"]
        );
    }
}
