//! The webhook over real TLS on 127.0.0.1 with a verifying client: h2 and http/1.1, mutation,
//! certificate rotation, policy reload under load, graceful shutdown.

use crate::common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use common::Running;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, Version};
use initguard_core::{Mode, Pipeline};
use initguard_server::tls::{client_config, generate_certs, service_names};
use initguard_server::{Limits, PolicySource, ServerConfig, TlsSource};
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Policies read from a file holding the validity mode (`enforce` or `warn`).
struct ModeFile(PathBuf);

impl PolicySource for ModeFile {
    fn load(&self) -> Result<Pipeline, initguard_server::LoadError> {
        match std::fs::read_to_string(&self.0)
            .map_err(|e| e.to_string())?
            .trim()
        {
            "enforce" => Ok(common::pipeline(Mode::Enforce)),
            "warn" => Ok(common::pipeline(Mode::Warn)),
            other => Err(format!("unknown mode {other:?}").into()),
        }
    }

    fn watched_files(&self) -> Vec<PathBuf> {
        vec![self.0.clone()]
    }
}

/// A config that names a module: the file holds a mode, or `module` to take the mode from the
/// `module` file beside it, which is then watched too, as a config's WASM modules are.
struct ConfigWithModule(PathBuf);

impl ConfigWithModule {
    fn module(&self) -> Option<PathBuf> {
        let text = std::fs::read_to_string(&self.0).ok()?;
        (text.trim() == "module").then(|| self.0.with_file_name("module"))
    }
}

impl PolicySource for ConfigWithModule {
    fn load(&self) -> Result<Pipeline, initguard_server::LoadError> {
        let file = self.module().unwrap_or_else(|| self.0.clone());
        ModeFile(file).load()
    }

    fn watched_files(&self) -> Vec<PathBuf> {
        std::iter::once(self.0.clone())
            .chain(self.module())
            .collect()
    }
}

fn scratch(name: &str) -> PathBuf {
    // Below the target folder, one per test and reused by the next run (every file in it is
    // written by the test): nothing piles up in $TMPDIR.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tls-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn start(tls: TlsSource, policies: Arc<dyn PolicySource>) -> Running {
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls,
        limits: Limits::default(),
        connections: initguard_server::ConnectionLimits::default(),
        reload_interval: Duration::from_millis(50),
        shutdown_grace: Duration::from_secs(5),
    };
    common::serve(config, policies).await
}

use common::{HttpsClient, client};

async fn post(
    client: &HttpsClient,
    address: SocketAddr,
    path: &str,
    body: Vec<u8>,
) -> (StatusCode, Version, Value) {
    let request = Request::post(format!("https://localhost:{}{path}", address.port()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let (status, version) = (response.status(), response.version());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, version, serde_json::from_slice(&bytes).unwrap())
}

/// A server with a generated certificate and the mode-file policies in `enforce`; returns it,
/// the CA to trust, and the mode file.
async fn start_self_signed(name: &str) -> (Running, Vec<u8>, PathBuf) {
    let dir = scratch(name);
    let policies = dir.join("mode");
    std::fs::write(&policies, "enforce").unwrap();
    let (server, ca) = start_self_signed_with(name, Arc::new(ModeFile(policies.clone()))).await;
    (server, ca, policies)
}

/// A server with a generated certificate and `policies`; returns it and the CA to trust.
async fn start_self_signed_with(name: &str, policies: Arc<dyn PolicySource>) -> (Running, Vec<u8>) {
    let ca_bundle = scratch(name).join("ca.pem");
    let tls = TlsSource::SelfSigned {
        names: service_names(None, None),
        ca_bundle_out: ca_bundle.clone(),
    };
    let server = start(tls, policies).await;
    (server, std::fs::read(&ca_bundle).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_over_h2_and_http1_with_a_verifying_client() {
    let (server, ca, _) = start_self_signed("protocols").await;
    for (http2, version) in [(true, Version::HTTP_2), (false, Version::HTTP_11)] {
        let client = client(&ca, http2);
        let (status, got, body) = post(
            &client,
            server.address,
            "/validate?timeout=10s",
            common::review("d", true),
        )
        .await;
        assert_eq!((status, got), (StatusCode::OK, version));
        assert_eq!(body["response"]["allowed"], false);
        assert_eq!(body["response"]["status"]["code"], 403);

        let v1beta1 = serde_json::to_vec(&common::review_value(
            "admission.k8s.io/v1beta1",
            "b",
            common::pod(false),
        ))
        .unwrap();
        let (_, _, body) = post(&client, server.address, "/validate", v1beta1).await;
        assert_eq!(body["apiVersion"], "admission.k8s.io/v1beta1");
        assert_eq!(body["response"]["allowed"], true);

        let (_, _, body) = post(
            &client,
            server.address,
            "/mutate",
            common::review("m", false),
        )
        .await;
        let (_, pod) = common::patched_pod(&body["response"]);
        assert_eq!(
            pod["metadata"]["annotations"]["initguard.dev/checked~by"],
            "initguard"
        );
    }
    server.stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server.serving)
        .await
        .unwrap()
        .unwrap();
    let refused = tokio::net::TcpStream::connect(server.address).await;
    assert!(refused.is_err(), "no new connections after shutdown");
}

/// The DER of the certificate a fresh handshake presents.
async fn presented_certificate(address: SocketAddr, ca_pem: &[u8]) -> Vec<u8> {
    let config = client_config(ca_pem).unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let tls = connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn write_atomically(path: &Path, contents: &str) {
    let staging = path.with_extension("staging");
    std::fs::write(&staging, contents).unwrap();
    std::fs::rename(staging, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotation_keeps_requests_succeeding() {
    let dir = scratch("rotation");
    let names = service_names(None, None);
    let first = generate_certs(&names, Duration::from_hours(1)).unwrap();
    let second = generate_certs(&names, Duration::from_hours(1)).unwrap();
    let (cert, key, policies) = (dir.join("tls.crt"), dir.join("tls.key"), dir.join("mode"));
    std::fs::write(&cert, &first.cert_pem).unwrap();
    std::fs::write(&key, &first.key_pem).unwrap();
    std::fs::write(&policies, "enforce").unwrap();
    let tls = TlsSource::Files {
        cert: cert.clone(),
        key: key.clone(),
        client_ca: None,
    };
    let server = start(tls, Arc::new(ModeFile(policies))).await;
    let both_cas = format!("{}{}", first.ca_cert_pem, second.ca_cert_pem);
    let first_der = presented_certificate(server.address, first.ca_cert_pem.as_bytes()).await;

    let sent = Arc::new(AtomicUsize::new(0));
    let load = {
        let (client, sent, address) = (
            client(both_cas.as_bytes(), true),
            Arc::clone(&sent),
            server.address,
        );
        tokio::spawn(async move {
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(2) {
                let (status, _, body) =
                    post(&client, address, "/validate", common::review("r", false)).await;
                assert_eq!(status, StatusCode::OK);
                assert_eq!(body["response"]["allowed"], true);
                sent.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Key first, then certificate: a reload between the two fails and keeps the old pair.
    write_atomically(&key, &second.key_pem);
    write_atomically(&cert, &second.cert_pem);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let presented = presented_certificate(server.address, both_cas.as_bytes()).await;
        if presented != first_der {
            let again = presented_certificate(server.address, second.ca_cert_pem.as_bytes()).await;
            assert_eq!(again, presented, "the new certificate chains to the new CA");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    load.await.unwrap();
    assert!(
        sent.load(Ordering::Relaxed) > 10,
        "requests kept flowing during the rotation"
    );
    let metrics = server.state.metrics.encode();
    assert!(
        metrics.contains(r#"initguard_reloads_total{what="certificates",result="success"}"#),
        "{metrics}"
    );
    server.stop.send(()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_reload_under_concurrent_requests_loses_none() {
    let (server, ca, policies) = start_self_signed("reload").await;

    let answered = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (client, answered, address) = (
            client(&ca, worker % 2 == 0),
            Arc::clone(&answered),
            server.address,
        );
        workers.push(tokio::spawn(async move {
            for i in 0..100 {
                let (status, _, body) = post(
                    &client,
                    address,
                    "/validate",
                    common::review(&format!("{worker}-{i}"), true),
                )
                .await;
                assert_eq!(status, StatusCode::OK);
                assert_eq!(body["response"]["uid"], format!("{worker}-{i}"));
                answered.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    write_atomically(&policies, "warn");
    tokio::time::sleep(Duration::from_millis(200)).await;
    write_atomically(&policies, "not a mode");
    for worker in workers {
        worker.await.unwrap();
    }
    assert_eq!(answered.load(Ordering::Relaxed), 400);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, _, body) = post(
        &client(&ca, true),
        server.address,
        "/validate",
        common::review("last", true),
    )
    .await;
    assert_eq!(
        body["response"]["allowed"], true,
        "the failed reload kept the warn policies"
    );
    let metrics = server.state.metrics.encode();
    assert!(
        metrics.contains(r#"initguard_reloads_total{what="policies",result="success"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"initguard_reloads_total{what="policies",result="failure"} 1"#),
        "{metrics}"
    );
    server.stop.send(()).unwrap();
}

/// A module the config names only after a reload is watched from then on: changing it reloads
/// the policies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_added_to_the_config_is_watched() {
    let dir = scratch("added-module");
    let (config, module) = (dir.join("config"), dir.join("module"));
    std::fs::write(&config, "enforce").unwrap();
    std::fs::write(&module, "enforce").unwrap();
    let (server, ca) =
        start_self_signed_with("added-module", Arc::new(ConfigWithModule(config.clone()))).await;
    let allowed = || async {
        let (_, _, body) = post(
            &client(&ca, true),
            server.address,
            "/validate",
            common::review("probe", true),
        )
        .await;
        body["response"]["allowed"] == true
    };
    assert!(!allowed().await, "enforce denies the review");
    write_atomically(&config, "module");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!allowed().await, "the module says enforce too");
    write_atomically(&module, "warn");
    let mut waited = Duration::ZERO;
    while !allowed().await {
        assert!(
            waited < Duration::from_secs(5),
            "a change to the module named since start-up was never reloaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    server.stop.send(()).unwrap();
}

/// A client CA and a client certificate it signed, as the apiserver's admission kubeconfig
/// would present: (CA PEM, certificate PEM, key PEM).
fn client_identity() -> (String, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let mut params = CertificateParams::new(vec!["kube-apiserver".to_owned()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_pem, cert.pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_required_with_a_client_ca() {
    let dir = scratch("mtls");
    let names = service_names(None, None);
    let server_certs = generate_certs(&names, Duration::from_hours(1)).unwrap();
    let client_certs = client_identity();
    let (cert, key, client_ca, policies) = (
        dir.join("tls.crt"),
        dir.join("tls.key"),
        dir.join("client-ca.crt"),
        dir.join("mode"),
    );
    std::fs::write(&cert, &server_certs.cert_pem).unwrap();
    std::fs::write(&key, &server_certs.key_pem).unwrap();
    std::fs::write(&client_ca, &client_certs.0).unwrap();
    std::fs::write(&policies, "enforce").unwrap();
    let tls = TlsSource::Files {
        cert,
        key,
        client_ca: Some(client_ca),
    };
    let server = start(tls, Arc::new(ModeFile(policies))).await;

    let roots = {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(server_certs.ca_cert_pem.as_bytes()).unwrap())
            .unwrap();
        Arc::new(roots)
    };
    let builder = || {
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(Arc::clone(&roots))
    };
    let handshake = |config: rustls::ClientConfig| async move {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(server.address)
            .await
            .unwrap();
        let mut tls = connector
            .connect("localhost".try_into().unwrap(), tcp)
            .await?;
        // TLS 1.3 reports a refused client certificate on the first read.
        tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut response = String::new();
        tls.read_to_string(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    assert!(
        handshake(builder().with_no_client_auth()).await.is_err(),
        "no client certificate, no service"
    );
    let chain = vec![CertificateDer::from_pem_slice(client_certs.1.as_bytes()).unwrap()];
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(client_certs.2.as_bytes()).unwrap();
    let response = handshake(builder().with_client_auth_cert(chain, key).unwrap())
        .await
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    server.stop.send(()).unwrap();
}

/// A policy that takes its time, and says when it has started.
#[derive(Debug)]
struct Slow {
    started: Arc<tokio::sync::Notify>,
}

impl initguard_core::Policy for Slow {
    fn evaluate(
        &self,
        _: &initguard_core::Request,
    ) -> Result<initguard_core::Outcome, initguard_core::PolicyError> {
        self.started.notify_one();
        std::thread::sleep(Duration::from_millis(400));
        Ok(initguard_core::Outcome::default())
    }
}

struct SlowPolicies(Arc<tokio::sync::Notify>);

impl PolicySource for SlowPolicies {
    fn load(&self) -> Result<Pipeline, initguard_server::LoadError> {
        let slow = Slow {
            started: Arc::clone(&self.0),
        };
        Ok(Pipeline::new(vec![common::entry(
            "slow",
            Mode::Enforce,
            Arc::new(slow),
        )]))
    }

    fn watched_files(&self) -> Vec<PathBuf> {
        Vec::new()
    }
}

/// A shutdown signal while a review is being evaluated: the review is answered, then the server
/// stops and refuses new connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_reviews_in_flight() {
    let started = Arc::new(tokio::sync::Notify::new());
    let (server, ca) =
        start_self_signed_with("drain", Arc::new(SlowPolicies(Arc::clone(&started)))).await;
    let address = server.address;
    let in_flight = tokio::spawn(async move {
        let client = client(&ca, false);
        post(
            &client,
            address,
            "/validate",
            common::review("drain", false),
        )
        .await
    });
    tokio::time::timeout(Duration::from_secs(10), started.notified())
        .await
        .unwrap();
    let signalled = Instant::now();
    server.stop.send(()).unwrap();
    let (status, _, body) = in_flight.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["response"]["uid"], "drain");
    assert_eq!(body["response"]["allowed"], true);
    tokio::time::timeout(Duration::from_secs(10), server.serving)
        .await
        .unwrap()
        .unwrap();
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "stopped once the review was answered, well before the grace period ended"
    );
    let refused = tokio::net::TcpStream::connect(address).await;
    assert!(refused.is_err(), "no new connections after shutdown");
}
