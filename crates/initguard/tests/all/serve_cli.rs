//! `initguard serve` as the README runs it: the embedded default policies, a certificate
//! generated at start, a verifying client over TLS on 127.0.0.1, one JSON log line per review,
//! and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// The server, and its stderr line by line.
struct Serving {
    child: Child,
    lines: Receiver<String>,
}

impl Serving {
    fn start(ca_bundle: &std::path::Path, log_format: &str) -> Self {
        Self::start_with(ca_bundle, log_format, |command| command)
    }

    /// As [`Serving::start`], with more arguments or environment set by `more`.
    fn start_with(
        ca_bundle: &std::path::Path,
        log_format: &str,
        more: impl FnOnce(&mut Command) -> &mut Command,
    ) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_initguard"));
        command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                log_format,
            ])
            .arg("--ca-bundle-out")
            .arg(ca_bundle)
            .env("INITGUARD_LOG", "info");
        let mut child = more(&mut command)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The address the server says it listens on, once it has also said where the CA went.
    fn address(&self) -> SocketAddr {
        let address = self.wait_for("its address", |line| {
            line.strip_prefix("initguard: listening on https://")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        });
        self.wait_for("where the CA went", |line| {
            line.contains("CA bundle written to").then_some(())
        });
        address
    }

    /// The next stderr line that `pick` accepts, within 30 s.
    fn wait_for<T>(&self, what: &str, pick: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(found) = pick(&line) {
                        return found;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    panic!("initguard serve never logged {what}")
                }
            }
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

type HttpsClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// An HTTP/1.1 client that trusts only the CA the server wrote.
fn verifying_client(ca_bundle: &std::path::Path) -> HttpsClient {
    let tls = initguard_server::tls::client_config(&std::fs::read(ca_bundle).unwrap()).unwrap();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

/// A review from the shared fixtures, and what its log line must say.
struct Fixture {
    path: &'static str,
    uid: &'static str,
    kind: &'static str,
    namespace: &'static str,
    name: &'static str,
    operation: &'static str,
    verdict: &'static str,
}

/// The benchmarks' realistic pod, which every default policy allows, and the docs-style
/// Deployment whose init container has a probe, which validity denies.
const FIXTURES: [Fixture; 2] = [
    Fixture {
        path: "tests/fixtures/bench/pod-review.json",
        uid: "0c9a8d74-9cb7-44dd-b98e-09fd62def2f4",
        kind: "Pod",
        namespace: "shop",
        name: "shop-frontend-0",
        operation: "CREATE",
        verdict: "allowed",
    },
    Fixture {
        path: "tests/fixtures/misc/admission-review.json",
        uid: "705ab4f5-6393-11e8-b7cc-42010a800002",
        kind: "Deployment",
        namespace: "team-a",
        name: "api",
        operation: "UPDATE",
        verdict: "denied",
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_over_tls_logs_each_review_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("initguard-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_bundle = dir.join("ca.pem");
    let mut server = Serving::start(&ca_bundle, "json");
    let address = server.address();

    let client = verifying_client(&ca_bundle);
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for fixture in &FIXTURES {
        let body = std::fs::read(workspace.join(fixture.path)).unwrap();
        let request = hyper::Request::post(format!(
            "https://localhost:{}/validate?timeout=10s",
            address.port()
        ))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
        let response = client.request(request).await.unwrap();
        assert_eq!(response.status(), hyper::StatusCode::OK);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let answer: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(answer["response"]["uid"], fixture.uid);
        assert_eq!(
            answer["response"]["allowed"],
            fixture.verdict == "allowed",
            "{answer}"
        );
        if fixture.verdict == "denied" {
            assert_eq!(answer["response"]["status"]["code"], 403);
        }

        let fields = server.wait_for("a review line", |line| {
            let entry: Value = serde_json::from_str(line).ok()?;
            (entry["fields"]["uid"] == fixture.uid).then(|| entry["fields"].clone())
        });
        assert_eq!(fields["message"], "review");
        assert_eq!(fields["kind"], fixture.kind);
        assert_eq!(fields["namespace"], fixture.namespace);
        assert_eq!(fields["name"], fixture.name);
        assert_eq!(fields["operation"], fixture.operation);
        assert_eq!(fields["verdict"], fixture.verdict);
        assert!(fields["duration_us"].is_u64(), "{fields}");
    }

    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "initguard serve ignored SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A client's values cannot forge log lines or colour the log: in the text format every control
/// character of a logged value is escaped, and no colour is written to a pipe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_cannot_be_forged() {
    let dir = std::env::temp_dir().join(format!("initguard-serve-text-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_bundle = dir.join("ca.pem");
    let server = Serving::start(&ca_bundle, "text");
    let address = server.address();
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut review: Value = serde_json::from_slice(
        &std::fs::read(workspace.join("tests/fixtures/bench/pod-review.json")).unwrap(),
    )
    .unwrap();
    let forged = "uid-1\n2026-12-01T00:00:00.000000Z ERROR initguard: forged \u{1b}[31mred";
    review["request"]["uid"] = forged.into();
    let client = verifying_client(&ca_bundle);
    let request = hyper::Request::post(format!("https://localhost:{}/validate", address.port()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(&review).unwrap())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), hyper::StatusCode::OK);
    let line = server.wait_for("the review line", |line| {
        line.contains("uid=uid-1").then(|| line.to_owned())
    });
    assert!(
        line.contains(
            r"uid=uid-1\n2026-12-01T00:00:00.000000Z ERROR initguard: forged \u{1b}[31mred"
        ),
        "{line}"
    );
    assert!(
        !line.contains('\u{1b}'),
        "no escape sequence reaches the log: {line:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// A new pod of the chart starts with an empty compile cache (an emptyDir) and a 512 MiB memory
/// limit. With the shipped policies it is ready on baseline code, optimises one module at a
/// time in the background, and its peak memory over all of it stays well under the limit
/// (before tiering and `opt-level = "s"`, one such start peaked at 1.1 GB).
#[cfg(target_os = "linux")]
#[test]
fn a_cold_start_with_the_shipped_policies_stays_within_the_charts_memory() {
    use initguard_wasm::build::{build_components, component_path};
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let scratch = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cold-start");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("policies");
    let components = build_components(&workspace.join("policies"), &target).unwrap();
    let module = |name: &str| component_path(&components, name).display().to_string();
    let config = scratch.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "policies:\n\
             \x20 - {{name: init-container-validity, builtin: init-container-validity}}\n\
             \x20 - {{name: allowed-registries, module: {}, settings: {{registries: [docker.io]}}, mode: warn}}\n\
             \x20 - {{name: require-image-digest, module: {}, mode: warn}}\n\
             \x20 - {{name: default-init-resources, module: {}}}\n",
            module("allowed-registries"),
            module("require-image-digest"),
            module("default-init-resources"),
        ),
    )
    .unwrap();
    let server = Serving::start_with(&scratch.join("ca.pem"), "json", |command| {
        command
            .arg("--config")
            .arg(&config)
            .env("XDG_CACHE_HOME", scratch.join("cache"))
    });
    server.address();
    for _ in 0..3 {
        server.wait_for("a module's tier-up", |line| {
            line.contains("optimised code of the module in use")
                .then_some(())
        });
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .unwrap();
    assert!(
        peak_kib < 400 << 10,
        "peak RSS {} MiB over a cold start, against the chart's limit of 512 MiB",
        peak_kib >> 10
    );
}
