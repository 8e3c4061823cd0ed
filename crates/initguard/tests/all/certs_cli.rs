//! `initguard certs`: files, permissions, renewal, webhook configurations, and a TLS client
//! holding only the CA trusting the serving certificate under every Service name.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use base64::Engine as _;
use initguard_server::tls::{client_config, load_files};
use serde::Deserialize;
use serde_json::Value;

fn certs(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_initguard"))
        .arg("certs")
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn scratch(name: &str) -> PathBuf {
    // Below the target folder, one per test, replaced on each run: nothing piles up in $TMPDIR.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("certs-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Completes a TLS handshake for `name` against a server using the files in `dir`, with a
/// client that trusts only `dir/ca.crt`.
async fn handshake(dir: &Path, name: &str) -> Result<(), String> {
    let server = load_files(&dir.join("tls.crt"), &dir.join("tls.key"), None).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let accepting = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let _ = acceptor.accept(tcp).await;
    });
    let client = client_config(&std::fs::read(dir.join("ca.crt")).unwrap()).unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let server_name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
    let result = connector
        .connect(server_name, tcp)
        .await
        .map(drop)
        .map_err(|e| e.to_string());
    accepting.abort();
    result
}

#[tokio::test]
async fn every_service_name_verifies_with_only_the_ca() {
    let dir = scratch("names");
    let (code, _, err) = certs(&[
        "--service",
        "guard",
        "--namespace",
        "ops",
        "--out-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    for name in [
        "guard",
        "guard.ops",
        "guard.ops.svc",
        "guard.ops.svc.cluster.local",
        "localhost",
        "127.0.0.1",
    ] {
        handshake(&dir, name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let wrong = handshake(&dir, "guard.other.svc").await.unwrap_err();
    assert!(
        wrong.contains("NotValidForName") || wrong.contains("not valid for name"),
        "{wrong}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[cfg(unix)]
#[test]
fn keys_are_private_and_files_are_not_overwritten() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("files");
    let out = dir.to_str().unwrap();
    assert_eq!(certs(&["--out-dir", out]).0, 0);
    for (file, mode) in [
        ("ca.key", 0o600),
        ("tls.key", 0o600),
        ("ca.crt", 0o644),
        ("tls.crt", 0o644),
    ] {
        let actual = std::fs::metadata(dir.join(file))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(actual, mode, "{file}");
    }
    let (code, _, err) = certs(&["--out-dir", out]);
    assert_eq!(code, 2);
    assert!(err.contains("ca.crt exists: pass --force"), "{err}");
    let before = std::fs::read(dir.join("ca.crt")).unwrap();
    assert_eq!(certs(&["--out-dir", out, "--force"]).0, 0);
    assert_ne!(
        before,
        std::fs::read(dir.join("ca.crt")).unwrap(),
        "--force makes a new CA"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn renewal_keeps_the_ca_and_the_ca_bundle_valid() {
    let dir = scratch("renew");
    let out = dir.to_str().unwrap();
    assert_eq!(certs(&["--out-dir", out]).0, 0);
    let (ca, serving) = (
        std::fs::read(dir.join("ca.crt")).unwrap(),
        std::fs::read(dir.join("tls.crt")).unwrap(),
    );
    let (code, _, err) = certs(&["--out-dir", out, "--renew"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(ca, std::fs::read(dir.join("ca.crt")).unwrap());
    assert_ne!(serving, std::fs::read(dir.join("tls.crt")).unwrap());
    handshake(&dir, "initguard.initguard-system.svc")
        .await
        .unwrap();
    let missing = scratch("renew-missing");
    let (code, _, err) = certs(&["--out-dir", missing.to_str().unwrap(), "--renew"]);
    assert_eq!(code, 2);
    assert!(err.contains("ca.crt"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn webhook_configurations_carry_the_ca_bundle() {
    let dir = scratch("webhooks");
    let print = || {
        certs(&[
            "--out-dir",
            dir.to_str().unwrap(),
            "--namespace",
            "guard",
            "--webhook-config",
        ])
    };
    let (code, out, err) = print();
    assert_eq!(code, 0, "{err}");
    let manifests: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&out)
        .map(|d| Value::deserialize(d).unwrap())
        .collect();
    assert_eq!(manifests.len(), 2);
    let ca = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(dir.join("ca.crt")).unwrap());
    let mutating = &manifests[0];
    assert_eq!(mutating["kind"], "MutatingWebhookConfiguration");
    let paths: Vec<&str> = mutating["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["clientConfig"]["service"]["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/mutate",
            "/mutate/namespace-label/initguard.dev/inject/enabled"
        ],
        "pods opted in only through their namespace are named in the path"
    );
    for webhook in mutating["webhooks"].as_array().unwrap() {
        assert_eq!(webhook["clientConfig"]["caBundle"], ca.as_str());
        assert_eq!(webhook["failurePolicy"], "Ignore");
        assert_eq!(webhook["reinvocationPolicy"], "IfNeeded");
        assert_eq!(webhook["sideEffects"], "None");
        let excluded = &webhook["namespaceSelector"]["matchExpressions"][0]["values"];
        assert_eq!(
            excluded,
            &serde_json::json!(["kube-system", "kube-node-lease", "guard"])
        );
    }
    let validating = &manifests[1]["webhooks"][0];
    assert_eq!(validating["failurePolicy"], "Fail");
    assert_eq!(validating["clientConfig"]["service"]["path"], "/validate");
    assert_eq!(validating["clientConfig"]["caBundle"], ca.as_str());

    // For a CA already there, printing needs neither --force nor --renew, and writes nothing.
    let files: Vec<Vec<u8>> = ["ca.crt", "ca.key", "tls.crt", "tls.key"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    let (code, again, err) = print();
    assert_eq!(code, 0, "{err}");
    assert_eq!(again, out, "the same configurations, for the same CA");
    for (file, before) in ["ca.crt", "ca.key", "tls.crt", "tls.key"].iter().zip(files) {
        assert_eq!(std::fs::read(dir.join(file)).unwrap(), before, "{file}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
