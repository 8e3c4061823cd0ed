//! Every documented rule fires on its failing examples, in Pod and workload form, at paths under
//! the workload's pod-spec or pod-metadata prefix, and stays quiet on its passing example.

use initguard_core::{Outcome, Request};
use initguard_rules::{RuleDoc, builtin, rules};
use serde::Deserialize;
use serde_json::Value;

fn documents(rule: &RuleDoc) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(rule.examples)
        .map(|document| Value::deserialize(document).unwrap_or_else(|e| panic!("{}: {e}", rule.id)))
        .collect()
}

fn evaluate(rule: &RuleDoc, object: Value) -> Outcome {
    let settings: Value = if rule.settings.is_empty() {
        Value::Null
    } else {
        serde_yaml_ng::from_str(rule.settings).unwrap()
    };
    let policy = builtin(rule.policy, &settings).unwrap();
    policy.evaluate(&Request::create(object)).unwrap()
}

/// Messages of the rule: its violations and its warnings.
fn findings(rule: &RuleDoc, outcome: &Outcome) -> Vec<String> {
    outcome
        .violations
        .iter()
        .chain(&outcome.warnings)
        .filter(|v| v.rule == rule.id)
        .map(ToString::to_string)
        .collect()
}

#[test]
fn every_rule_has_examples_that_fail_and_pass() {
    for rule in rules() {
        let docs = documents(rule);
        assert_eq!(docs.len(), 3, "{}: examples are fail, fail, pass", rule.id);
        for failing in &docs[..2] {
            let kind = failing["kind"].as_str().unwrap();
            let request = Request::create(failing.clone());
            let workload_kind = request.workload_kind().unwrap();
            let spec = workload_kind.spec_path().to_string();
            let metadata = workload_kind.metadata_path().to_string();
            let found = findings(rule, &evaluate(rule, failing.clone()));
            assert!(
                !found.is_empty(),
                "{} does not fire on its failing {kind}",
                rule.id
            );
            for message in found {
                assert!(
                    message.starts_with(&format!("{spec}."))
                        || message.starts_with(&format!("{metadata}.")),
                    "{}: {message:?} is not under {spec} or {metadata}",
                    rule.id
                );
            }
        }
        let found = findings(rule, &evaluate(rule, docs[2].clone()));
        assert!(
            found.is_empty(),
            "{} fires on its passing example: {found:?}",
            rule.id
        );
    }
}

#[test]
fn ids_are_unique_and_policies_exist() {
    let mut ids: Vec<&str> = rules().map(|r| r.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), rules().count());
    for rule in rules() {
        assert!(
            initguard_rules::BUILTINS.contains(&rule.policy),
            "{}",
            rule.id
        );
    }
}
