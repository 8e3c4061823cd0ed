//! The Helm chart, rendered and linted by a real Helm v4 engine (helm-python-sdk from PyPI,
//! installed into a venv under the target folder on first use), with assertions on the
//! rendered objects, the schema, TLS in self-signed mode, and `initguard check` on the chart's
//! own workloads.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::support::workspace;

const HELM_SDK: &str = "helm-python-sdk==0.2.2";
const RELEASE: &str = "guard";
const NAMESPACE: &str = "initguard-system";

/// A Python with helm-python-sdk, made once and kept in the target folder.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("helm-venv");
        let python = venv.join("bin/python");
        let ready = venv.join(".installed");
        if !ready.exists() {
            let status = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .unwrap();
            assert!(status.success(), "python3 -m venv failed");
            let status = Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", HELM_SDK])
                .status()
                .unwrap();
            assert!(status.success(), "pip install {HELM_SDK} failed");
            std::fs::write(&ready, HELM_SDK).unwrap();
        }
        python
    })
}

fn helm(command: &str, values: &Value) -> Value {
    let output = Command::new(python())
        .arg(workspace().join("tests/chart/helm.py"))
        .args([
            command,
            workspace().join("charts/initguard").to_str().unwrap(),
            &values.to_string(),
            RELEASE,
            NAMESPACE,
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "helm.py {command}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Every rendered object, in template order.
fn render(values: &Value) -> Vec<Value> {
    let rendered = helm("render", values);
    let mut files: Vec<(&String, &Value)> = rendered.as_object().unwrap().iter().collect();
    files.sort_by_key(|(path, _)| path.as_str());
    files
        .into_iter()
        .filter(|(path, _)| {
            Path::new(path.as_str())
                .extension()
                .is_some_and(|e| e == "yaml")
        })
        .flat_map(|(_, text)| {
            serde_yaml_ng::Deserializer::from_str(text.as_str().unwrap())
                .map(|document| Value::deserialize(document).unwrap())
                .filter(|object| !object.is_null())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str) -> Option<&'a Value> {
    objects.iter().find(|o| o["kind"] == kind)
}

fn webhooks(objects: &[Value]) -> Vec<&Value> {
    [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ]
    .into_iter()
    .filter_map(|kind| find(objects, kind))
    .flat_map(|config| config["webhooks"].as_array().unwrap())
    .collect()
}

#[test]
fn default_install_points_webhooks_at_the_service_and_excludes_system_namespaces() {
    let objects = render(&json!({}));
    let deployment = find(&objects, "Deployment").unwrap();
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        find(&objects, "PodDisruptionBudget").unwrap()["spec"]["minAvailable"],
        1
    );
    let service = find(&objects, "Service").unwrap();
    assert_eq!(service["metadata"]["name"], "guard-initguard");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
        true
    );
    assert_eq!(
        pod["containers"][0]["readinessProbe"]["httpGet"]["path"],
        "/readyz"
    );
    assert!(pod["affinity"]["podAntiAffinity"].is_object());

    let hooks = webhooks(&objects);
    assert_eq!(
        hooks.len(),
        3,
        "two mutating (pod and namespace opt-in), one validating"
    );
    for hook in &hooks {
        let target = &hook["clientConfig"]["service"];
        assert_eq!(target["name"], "guard-initguard");
        assert_eq!(target["namespace"], NAMESPACE);
        assert_eq!(target["port"], 443);
        assert_eq!(hook["sideEffects"], "None");
        assert_eq!(hook["admissionReviewVersions"], json!(["v1"]));
        let excluded = &hook["namespaceSelector"]["matchExpressions"][0];
        assert_eq!(excluded["operator"], "NotIn");
        assert_eq!(
            excluded["values"],
            json!(["kube-system", "kube-node-lease", NAMESPACE])
        );
    }
    let (mutating, validating) = (&hooks[0], &hooks[2]);
    assert_eq!(mutating["clientConfig"]["service"]["path"], "/mutate");
    assert_eq!(
        hooks[1]["clientConfig"]["service"]["path"],
        "/mutate/namespace-label/initguard.dev/inject/enabled",
        "the namespace opt-in is named in the path, since reviews carry no namespace labels"
    );
    assert_eq!(mutating["failurePolicy"], "Ignore");
    assert_eq!(mutating["reinvocationPolicy"], "IfNeeded");
    assert_eq!(mutating["rules"][0]["operations"], json!(["CREATE"]));
    assert_eq!(validating["clientConfig"]["service"]["path"], "/validate");
    assert_eq!(validating["failurePolicy"], "Fail");
    assert_eq!(mutating["timeoutSeconds"], 5);
    let args = pod["containers"][0]["args"].as_array().unwrap();
    assert!(
        args.iter().any(|a| a == "--request-timeout=4500ms"),
        "the server answers before the webhooks' 5 s timeout: {args:?}"
    );
}

#[tokio::test]
async fn self_signed_ca_bundle_is_the_ca_of_the_serving_certificate() {
    let objects = render(&json!({}));
    let secret = find(&objects, "Secret").unwrap();
    let decode = |key: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(secret["data"][key].as_str().unwrap())
            .unwrap()
    };
    for hook in webhooks(&objects) {
        assert_eq!(hook["clientConfig"]["caBundle"], secret["data"]["ca.crt"]);
    }
    let dir = std::env::temp_dir().join(format!("initguard-chart-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tls.crt"), decode("tls.crt")).unwrap();
    std::fs::write(dir.join("tls.key"), decode("tls.key")).unwrap();
    let server =
        initguard_server::tls::load_files(&dir.join("tls.crt"), &dir.join("tls.key"), None)
            .unwrap();
    let client = initguard_server::tls::client_config(&decode("ca.crt")).unwrap();
    for name in [
        "guard-initguard.initguard-system.svc",
        "guard-initguard.initguard-system.svc.cluster.local",
    ] {
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let accepting = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let _ = acceptor.accept(tcp).await;
        });
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client.clone()));
        let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        let server_name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
        connector
            .connect(server_name, tcp)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        accepting.abort();
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn cert_manager_mode_uses_a_certificate_and_ca_injection() {
    let objects = render(&json!({"tls": {"mode": "cert-manager"}}));
    assert!(
        find(&objects, "Secret").is_none(),
        "cert-manager writes the Secret"
    );
    let certificate = find(&objects, "Certificate").unwrap();
    assert_eq!(certificate["spec"]["secretName"], "guard-initguard-tls");
    assert_eq!(
        certificate["spec"]["dnsNames"][2],
        "guard-initguard.initguard-system.svc"
    );
    assert_eq!(
        find(&objects, "Issuer").unwrap()["spec"]["selfSigned"],
        json!({})
    );
    for kind in [
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ] {
        let config = find(&objects, kind).unwrap();
        assert_eq!(
            config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            "initguard-system/guard-initguard"
        );
        assert!(
            config["webhooks"][0]["clientConfig"]
                .get("caBundle")
                .is_none()
        );
    }
    let own_issuer = render(
        &json!({"tls": {"mode": "cert-manager", "certManager": {"issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer"}}}}),
    );
    assert!(find(&own_issuer, "Issuer").is_none());
    assert_eq!(
        find(&own_issuer, "Certificate").unwrap()["spec"]["issuerRef"],
        json!({"name": "corp-ca", "kind": "ClusterIssuer"})
    );
}

#[test]
fn existing_secret_mode_mounts_it_and_uses_the_given_ca() {
    let values =
        json!({"tls": {"mode": "existing-secret", "existingSecret": "my-tls", "caBundle": "Q0EK"}});
    let objects = render(&values);
    assert!(find(&objects, "Secret").is_none());
    let volumes = &find(&objects, "Deployment").unwrap()["spec"]["template"]["spec"]["volumes"];
    assert!(
        volumes
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["secret"]["secretName"] == "my-tls")
    );
    for hook in webhooks(&objects) {
        assert_eq!(hook["clientConfig"]["caBundle"], "Q0EK");
    }
}

#[test]
fn values_combinations() {
    let values = json!({
        "replicaCount": 3,
        "webhooks": {"validating": {"enabled": false}, "mutating": {"failurePolicy": "Fail", "timeoutSeconds": 3}, "excludeNamespaces": ["kube-system"]},
        "podDisruptionBudget": {"minAvailable": 2},
        "wasmModules": {"volume": {"configMap": {"name": "policies"}}}
    });
    let objects = render(&values);
    assert_eq!(find(&objects, "Deployment").unwrap()["spec"]["replicas"], 3);
    assert_eq!(
        find(&objects, "PodDisruptionBudget").unwrap()["spec"]["minAvailable"],
        2
    );
    assert!(find(&objects, "ValidatingWebhookConfiguration").is_none());
    let hooks = webhooks(&objects);
    assert_eq!(hooks[0]["failurePolicy"], "Fail");
    assert_eq!(hooks[0]["timeoutSeconds"], 3);
    let args =
        &find(&objects, "Deployment").unwrap()["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(
        args.as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--request-timeout=2500ms"),
        "derived from the shorter timeoutSeconds: {args}"
    );
    assert_eq!(
        hooks[0]["namespaceSelector"]["matchExpressions"][0]["values"],
        json!(["kube-system", NAMESPACE])
    );
    let pod = &find(&objects, "Deployment").unwrap()["spec"]["template"]["spec"];
    assert!(
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["configMap"]["name"] == "policies")
    );
}

#[test]
fn the_schema_rejects_bad_values_with_the_key() {
    let cases = [
        (json!({"replicaCount": "two"}), "replicaCount"),
        (json!({"tls": {"mode": "manual"}}), "mode"),
        (
            json!({"tls": {"mode": "existing-secret", "existingSecret": "x"}}),
            "caBundle",
        ),
        (
            json!({"webhooks": {"validating": {"failurePolicy": "Maybe"}}}),
            "failurePolicy",
        ),
        (json!({"replicas": 2}), "replicas"),
    ];
    for (values, key) in cases {
        let result = helm("schema", &values);
        assert_eq!(result["ok"], false, "{values} passed the schema");
        assert!(
            result["error"].as_str().unwrap().contains(key),
            "{values}: {}",
            result["error"]
        );
    }
    assert_eq!(helm("schema", &json!({}))["ok"], true);
}

#[test]
fn lint_is_clean() {
    let report = helm("lint", &json!({}));
    let errors: Vec<&Value> = report["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["severity"].as_u64() >= Some(2))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        report["errors"].as_array().is_none_or(Vec::is_empty),
        "{report}"
    );
}

#[test]
fn the_charts_own_workloads_pass_initguard_check() {
    let objects = render(&json!({}));
    let dir = std::env::temp_dir().join(format!("initguard-chart-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut manifests = String::new();
    for object in &objects {
        manifests.push_str(
            "---
",
        );
        manifests.push_str(&serde_yaml_ng::to_string(object).unwrap());
    }
    std::fs::write(dir.join("chart.yaml"), manifests).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_initguard"))
        .arg("check")
        .arg(dir.join("chart.yaml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("PASS Deployment initguard-system/guard-initguard"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_charts_config_is_the_embedded_default() {
    let objects = render(&json!({}));
    let config_map = find(&objects, "ConfigMap").unwrap();
    let rendered: Value =
        serde_yaml_ng::from_str(config_map["data"]["config.yaml"].as_str().unwrap()).unwrap();
    let embedded: Value =
        serde_yaml_ng::from_str(include_str!("../../src/default-config.yaml")).unwrap();
    assert_eq!(rendered, embedded);
}
