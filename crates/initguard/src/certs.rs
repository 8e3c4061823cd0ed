//! `initguard certs`: a CA and a serving certificate for the webhook's Service, written as PEM
//! files, renewable from the same CA, and the webhook configurations that trust it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use initguard_server::tls::{generate_certs, renew_serving_cert, service_names};
use serde_json::{Value, json};

/// What `initguard certs` writes, by file name.
pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const TLS_CERT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";

#[derive(Debug, Clone)]
pub struct CertsRequest {
    pub service: String,
    pub namespace: String,
    pub out_dir: PathBuf,
    pub validity: Duration,
    /// Replace existing files.
    pub force: bool,
    /// Sign a new serving certificate with the CA already in `out_dir`.
    pub renew: bool,
}

/// Every name the Service answers to, plus loopback for port-forwarded checks.
pub fn names(service: &str, namespace: &str) -> Vec<String> {
    service_names(Some(service), Some(namespace))
}

/// Writes the files and returns the CA certificate (PEM).
pub fn write(request: &CertsRequest) -> Result<String, String> {
    let dir = &request.out_dir;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let names = names(&request.service, &request.namespace);
    if request.renew {
        let read = |file: &str| {
            std::fs::read_to_string(dir.join(file))
                .map_err(|e| format!("{}: {e}", dir.join(file).display()))
        };
        let (ca_cert, ca_key) = (read(CA_CERT)?, read(CA_KEY)?);
        let (cert, key) = renew_serving_cert(&ca_cert, &ca_key, &names, request.validity)
            .map_err(|e| e.to_string())?;
        // Renewing replaces the serving pair by design; the CA stays.
        write_file(&dir.join(TLS_CERT), &cert, 0o644, true)?;
        write_file(&dir.join(TLS_KEY), &key, 0o600, true)?;
        return Ok(ca_cert);
    }
    if !request.force {
        for file in [CA_CERT, CA_KEY, TLS_CERT, TLS_KEY] {
            if dir.join(file).exists() {
                return Err(format!(
                    "{} exists: pass --force to replace it, or --renew to keep the CA",
                    dir.join(file).display()
                ));
            }
        }
    }
    let generated = generate_certs(&names, request.validity).map_err(|e| e.to_string())?;
    write_file(
        &dir.join(CA_CERT),
        &generated.ca_cert_pem,
        0o644,
        request.force,
    )?;
    write_file(
        &dir.join(CA_KEY),
        &generated.ca_key_pem,
        0o600,
        request.force,
    )?;
    write_file(
        &dir.join(TLS_CERT),
        &generated.cert_pem,
        0o644,
        request.force,
    )?;
    write_file(&dir.join(TLS_KEY), &generated.key_pem, 0o600, request.force)?;
    Ok(generated.ca_cert_pem)
}

/// Writes `contents` with `mode` from the start, so a key is never readable by others.
fn write_file(path: &Path, contents: &str, mode: u32, replace: bool) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if replace {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        // An existing file keeps its old mode on open; set it.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    file.write_all(contents.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Where the namespace-scoped mutating webhook posts, naming the label its selector requires
/// (see the server's `/mutate/namespace-label/KEY/VALUE`), as the chart's does.
pub const NAMESPACE_OPT_IN_PATH: &str = "/mutate/namespace-label/initguard.dev/inject/enabled";

/// The CA certificate already in `out_dir`, for printing the webhook configurations without
/// writing anything.
pub fn existing_ca(out_dir: &Path) -> Option<String> {
    std::fs::read_to_string(out_dir.join(CA_CERT)).ok()
}

/// The Mutating- and ValidatingWebhookConfiguration for the Service, trusting `ca_pem`.
///
/// Mutation is opt-in by the pod label or the namespace label `initguard.dev/inject: enabled`
/// (two webhooks, as selectors cannot say "or"); both exclude kube-system, kube-node-lease and
/// initguard's own namespace. Mutation fails open, validation fails closed.
pub fn webhook_configurations(service: &str, namespace: &str, ca_pem: &str) -> Vec<Value> {
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let client = |path: &str| json!({"service": {"name": service, "namespace": namespace, "path": path, "port": 443}, "caBundle": ca_bundle});
    let not_system = json!({"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "kube-node-lease", namespace]});
    let opt_in = json!({"key": "initguard.dev/inject", "operator": "In", "values": ["enabled"]});
    let pods_on_create = json!([{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"], "scope": "Namespaced"}]);
    let mutating = |name: &str, path: &str, namespace_selector: Value, object_selector: Value| {
        json!({
            "name": name,
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Ignore",
            "reinvocationPolicy": "IfNeeded",
            "timeoutSeconds": 5,
            "clientConfig": client(path),
            "rules": pods_on_create,
            "namespaceSelector": namespace_selector,
            "objectSelector": object_selector,
        })
    };
    vec![
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": service},
            "webhooks": [
                mutating("pods.mutate.initguard.dev", "/mutate", json!({"matchExpressions": [not_system]}), json!({"matchExpressions": [opt_in]})),
                // A review carries no namespace labels: this hook names its opt-in in the path.
                mutating("namespaces.mutate.initguard.dev", NAMESPACE_OPT_IN_PATH, json!({"matchExpressions": [not_system, opt_in]}), json!({})),
            ],
        }),
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": service},
            "webhooks": [{
                "name": "validate.initguard.dev",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "timeoutSeconds": 5,
                "clientConfig": client("/validate"),
                "namespaceSelector": {"matchExpressions": [not_system]},
                "rules": [
                    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["pods", "podtemplates", "replicationcontrollers"], "scope": "Namespaced"},
                    {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["deployments", "replicasets", "statefulsets", "daemonsets"], "scope": "Namespaced"},
                    {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["jobs", "cronjobs"], "scope": "Namespaced"},
                ],
            }],
        }),
    ]
}
