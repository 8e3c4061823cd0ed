//! Which requests a policy sees: kinds, operations, namespaces and label selectors.
//!
//! The apiserver does not send namespace labels with a review. Without them, a namespace
//! selector is evaluated against `kubernetes.io/metadata.name`, the one label the apiserver
//! sets on every namespace; offline, `check` supplies the labels of Namespace manifests.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::request::{Operation, Request};

/// The label the apiserver puts on every namespace: its own name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A policy's match rules. Empty lists match everything, except `kinds`, whose default is
/// every kind that carries a pod spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MatchRules {
    /// Object kinds (`Pod`, `Deployment`, …) or `*` for any kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT`; by default CREATE and UPDATE.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<Operation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    /// Namespaces the policy runs in; empty for all.
    pub namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    /// Namespaces the policy never runs in.
    pub exclude_namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Labels the request's namespace must have.
    pub namespace_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Labels the object must have.
    pub object_selector: Option<LabelSelector>,
}

/// A label selector that cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}.matchExpressions[{index}]: {reason}")]
pub struct SelectorError {
    field: &'static str,
    index: usize,
    reason: String,
}

impl MatchRules {
    /// Checks the selectors once at load, so evaluation never meets a bad operator.
    pub fn validate(&self) -> Result<(), SelectorError> {
        for (field, selector) in [
            ("namespaceSelector", &self.namespace_selector),
            ("objectSelector", &self.object_selector),
        ] {
            let expressions = selector
                .as_ref()
                .and_then(|s| s.match_expressions.as_deref());
            for (index, expression) in expressions.unwrap_or_default().iter().enumerate() {
                let has_values = expression.values.as_ref().is_some_and(|v| !v.is_empty());
                let reason = match (expression.operator.as_str(), has_values) {
                    ("In" | "NotIn", false) => "operator In and NotIn need values".to_owned(),
                    ("Exists" | "DoesNotExist", true) => {
                        "operator Exists and DoesNotExist take no values".to_owned()
                    }
                    ("In" | "NotIn" | "Exists" | "DoesNotExist", _) => continue,
                    (other, _) => format!(
                        "unknown operator {other:?}: expected In, NotIn, Exists or DoesNotExist"
                    ),
                };
                return Err(SelectorError {
                    field,
                    index,
                    reason,
                });
            }
        }
        Ok(())
    }

    /// Whether the policy runs on `request`.
    pub fn matches(&self, request: &Request) -> bool {
        self.matches_kind(request)
            && self.matches_operation(&request.facts.operation)
            && self.matches_namespace(request)
            && self
                .object_selector
                .as_ref()
                .is_none_or(|selector| selector_matches(selector, |key| request.object_label(key)))
    }

    fn matches_kind(&self, request: &Request) -> bool {
        if self.kinds.is_empty() {
            return request.workload_kind().is_some();
        }
        self.kinds
            .iter()
            .any(|k| k == "*" || *k == request.facts.kind.kind)
    }

    fn matches_operation(&self, operation: &Operation) -> bool {
        if self.operations.is_empty() {
            return matches!(operation, Operation::Create | Operation::Update);
        }
        self.operations.contains(operation)
    }

    fn matches_namespace(&self, request: &Request) -> bool {
        let namespace = request.facts.namespace.as_deref().unwrap_or_default();
        if !self.namespaces.is_empty() && !self.namespaces.iter().any(|n| n == namespace) {
            return false;
        }
        if self.exclude_namespaces.iter().any(|n| n == namespace) {
            return false;
        }
        let Some(selector) = &self.namespace_selector else {
            return true;
        };
        match &request.facts.namespace_labels {
            Some(labels) => selector_matches(selector, |key| labels.get(key).map(String::as_str)),
            None => selector_matches(selector, |key| {
                (key == NAMESPACE_NAME_LABEL).then_some(namespace)
            }),
        }
    }
}

/// Evaluates a label selector over a label lookup. `matchLabels` and every expression must hold.
pub fn selector_matches<'a>(
    selector: &LabelSelector,
    label: impl Fn(&str) -> Option<&'a str>,
) -> bool {
    let labels_match = selector.match_labels.as_ref().is_none_or(|wanted| {
        wanted
            .iter()
            .all(|(key, value)| label(key) == Some(value.as_str()))
    });
    labels_match
        && selector
            .match_expressions
            .as_deref()
            .unwrap_or_default()
            .iter()
            .all(|expression| {
                let value = label(&expression.key);
                let listed = |v: &str| {
                    expression
                        .values
                        .as_ref()
                        .is_some_and(|values| values.iter().any(|x| x == v))
                };
                match expression.operator.as_str() {
                    "In" => value.is_some_and(listed),
                    "NotIn" => !value.is_some_and(listed),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
}

/// Labels of a Namespace manifest, for offline namespace selectors.
pub fn namespace_labels(namespace: &Value) -> BTreeMap<String, String> {
    let name = namespace
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut labels: BTreeMap<String, String> = namespace
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    labels.insert(NAMESPACE_NAME_LABEL.to_owned(), name.to_owned());
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(yaml: Value) -> MatchRules {
        let rules: MatchRules = serde_json::from_value(yaml).unwrap();
        rules.validate().unwrap();
        rules
    }

    fn pod(namespace: &str, labels: Value) -> Request {
        Request::create(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": namespace, "labels": labels}, "spec": {"containers": []}}),
        )
    }

    #[test]
    fn default_rules_match_workloads_on_create_and_update() {
        let rules = MatchRules::default();
        assert!(rules.matches(&pod("default", json!({}))));
        let config_map = Request::create(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
        );
        assert!(!rules.matches(&config_map));
        let mut delete = pod("default", json!({}));
        delete.facts_mut().operation = Operation::Delete;
        assert!(!rules.matches(&delete));
    }

    #[test]
    fn namespaces_by_name_and_selector() {
        let only_apps = rules(json!({"namespaces": ["apps"]}));
        assert!(only_apps.matches(&pod("apps", json!({}))));
        assert!(!only_apps.matches(&pod("other", json!({}))));
        let not_system = rules(json!({"excludeNamespaces": ["kube-system"]}));
        assert!(!not_system.matches(&pod("kube-system", json!({}))));

        let by_name = rules(
            json!({"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}]}}),
        );
        assert!(by_name.matches(&pod("apps", json!({}))));
        assert!(!by_name.matches(&pod("kube-system", json!({}))));

        let by_label = rules(json!({"namespaceSelector": {"matchLabels": {"team": "a"}}}));
        let mut request = pod("apps", json!({}));
        assert!(!by_label.matches(&request), "unknown labels do not match");
        request.facts_mut().namespace_labels = Some(namespace_labels(
            &json!({"metadata": {"name": "apps", "labels": {"team": "a"}}}),
        ));
        assert!(by_label.matches(&request));
    }

    #[test]
    fn object_selector_operators() {
        let selector = rules(json!({"objectSelector": {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "edge"]},
            {"key": "legacy", "operator": "DoesNotExist"},
            {"key": "env", "operator": "NotIn", "values": ["dev"]},
            {"key": "team", "operator": "Exists"}
        ]}}));
        assert!(selector.matches(&pod(
            "d",
            json!({"app": "web", "tier": "edge", "team": "x"})
        )));
        assert!(!selector.matches(&pod(
            "d",
            json!({"app": "web", "tier": "back", "team": "x"})
        )));
        assert!(!selector.matches(&pod(
            "d",
            json!({"app": "web", "tier": "edge", "team": "x", "legacy": "1"})
        )));
        assert!(!selector.matches(&pod(
            "d",
            json!({"app": "web", "tier": "edge", "team": "x", "env": "dev"})
        )));
        assert!(!selector.matches(&pod("d", json!({"app": "web", "tier": "edge"}))));
    }

    #[test]
    fn bad_selectors_are_refused_at_load() {
        let bad: MatchRules = serde_json::from_value(json!({"objectSelector": {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]}})).unwrap();
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "objectSelector.matchExpressions[0]: unknown operator \"Equals\": expected In, NotIn, Exists or DoesNotExist"
        );
        let no_values: MatchRules = serde_json::from_value(
            json!({"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}),
        )
        .unwrap();
        assert!(no_values.validate().is_err());
    }
}
