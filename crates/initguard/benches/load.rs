//! Load harness: starts `initguard serve` with generated certificates and drives
//! AdmissionReviews over TLS with keep-alive connections at several concurrencies, reporting
//! reviews/s, p50, p99, errors and the server's CPU time per review.
//!
//! `cargo bench -p initguard --bench load` (`INITGUARD_LOAD_SECONDS`, default 5, sets the
//! measured time per step; `INITGUARD_LOAD_SCENARIOS=floor,a` and
//! `INITGUARD_LOAD_CONCURRENCY=64` run a subset, to profile one step;
//! `INITGUARD_LOAD_SERVER_ARGS=--max-concurrency=8` passes arguments to every server). The load
//! generator shares the machine with the server, as the numbers in BENCHMARKS.md say.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use initguard_server::tls::{client_config, generate_certs, service_names};
use initguard_wasm::build::build_components;

const CONCURRENCIES: [usize; 3] = [1, 16, 64];

struct Scenario {
    /// What `INITGUARD_LOAD_SCENARIOS` calls it.
    key: &'static str,
    name: &'static str,
    /// Config text; `None` for the embedded default. `{components}` stands for the folder of
    /// the built policy components.
    config: Option<String>,
    /// The keys of the steps this one's rate and p99 are compared with, at the same
    /// concurrency, when the run measured them.
    against: &'static [&'static str],
}

const BUILTINS: &str = "  - {name: init-container-validity, builtin: init-container-validity}\n  - {name: init-container-hygiene, builtin: init-container-hygiene, mode: warn}\n";
const ONE_WASM: &str = "  - {name: allowed-registries, module: '{components}/allowed_registries.wasm', settings: {registries: [registry.example.com, docker.io]}}\n";
const TWO_WASM: &str = "  - {name: require-image-digest, module: '{components}/require_image_digest.wasm', mode: warn}\n";

fn scenarios() -> [Scenario; 5] {
    [
        Scenario {
            key: "floor",
            name: "no-op floor (no policies: parse, allow)",
            config: Some("policies: []\n".to_owned()),
            against: &[],
        },
        Scenario {
            key: "a",
            name: "(a) built-ins (embedded default config)",
            config: None,
            against: &["floor"],
        },
        // What a WASM policy itself costs under load is (b) less this: the same built-ins.
        Scenario {
            key: "b0",
            name: "(b0) the built-ins of (b) alone",
            config: Some(format!("policies:\n{BUILTINS}")),
            against: &["floor"],
        },
        Scenario {
            key: "b",
            name: "(b) built-ins + 1 WASM policy",
            config: Some(format!("policies:\n{BUILTINS}{ONE_WASM}")),
            against: &["floor", "b0"],
        },
        Scenario {
            key: "c",
            name: "(c) built-ins + 2 WASM policies",
            config: Some(format!("policies:\n{BUILTINS}{ONE_WASM}{TWO_WASM}")),
            against: &["floor", "b0"],
        },
    ]
}

struct Step {
    reviews: usize,
    errors: usize,
    seconds: f64,
    p50: Duration,
    p99: Duration,
    cpu_per_review: Duration,
}

impl Step {
    fn rate(&self) -> f64 {
        self.reviews as f64 / self.seconds
    }
}

/// One step of a run, kept for the ratios printed at its end.
struct Measured {
    key: &'static str,
    against: &'static [&'static str],
    concurrency: usize,
    step: Step,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// User plus system CPU time of a process, from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    // After the command name: state is field 3, utime 14 and stime 15 (1-based, whole line).
    let ticks: u64 = fields.get(11).and_then(|t| t.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|t| t.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn start_server(dir: &Path, components: &Path, scenario: &Scenario, address: SocketAddr) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_initguard"));
    command
        .arg("serve")
        .args(["--listen", &address.to_string()])
        .arg("--tls-cert")
        .arg(dir.join("tls.crt"))
        .arg("--tls-key")
        .arg(dir.join("tls.key"))
        .args(env_list("INITGUARD_LOAD_SERVER_ARGS").unwrap_or_default())
        .env("INITGUARD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(config) = &scenario.config {
        let path = dir.join("config.yaml");
        std::fs::write(
            &path,
            config.replace("{components}", &components.display().to_string()),
        )
        .unwrap();
        command.arg("-c").arg(path);
    }
    command.spawn().expect("start initguard serve")
}

type HttpsClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

fn client(ca_pem: &[u8]) -> HttpsClient {
    let config = client_config(ca_pem).unwrap();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1)
        .build(connector)
}

async fn review(client: &HttpsClient, url: &str, body: &Bytes) -> bool {
    let request = hyper::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))
        .unwrap();
    match client.request(request).await {
        Ok(response) => {
            let ok = response.status() == hyper::StatusCode::OK;
            ok && response.into_body().collect().await.is_ok()
        }
        Err(_) => false,
    }
}

async fn wait_ready(client: &HttpsClient, address: SocketAddr) {
    let url = format!("https://localhost:{}/readyz", address.port());
    for _ in 0..200 {
        let request = hyper::Request::get(&url)
            .body(Full::new(Bytes::new()))
            .unwrap();
        if client
            .request(request)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("initguard serve did not become ready");
}

/// `concurrency` workers, each on its own keep-alive connection, for `seconds`.
async fn drive(
    ca: &[u8],
    address: SocketAddr,
    body: &Bytes,
    concurrency: usize,
    measure: Duration,
    pid: u32,
) -> Step {
    let url = format!("https://localhost:{}/validate?timeout=10s", address.port());
    let clients: Vec<HttpsClient> = (0..concurrency).map(|_| client(ca)).collect();
    // Warm up: open every connection and let the server settle.
    for client in &clients {
        assert!(
            review(client, &url, body).await,
            "the warm-up review failed"
        );
    }
    let cpu_before = cpu_time(pid);
    let started = Instant::now();
    let deadline = started + measure;
    let mut workers = Vec::new();
    for client in clients {
        let (url, body) = (url.clone(), body.clone());
        workers.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0usize);
            while Instant::now() < deadline {
                let sent = Instant::now();
                if review(&client, &url, &body).await {
                    latencies.push(sent.elapsed());
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for worker in workers {
        let (mut l, e) = worker.await.unwrap();
        latencies.append(&mut l);
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_time(pid).saturating_sub(cpu_before);
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let reviews = latencies.len();
    Step {
        reviews,
        errors,
        seconds,
        p50: at(0.50),
        p99: at(0.99),
        cpu_per_review: cpu.checked_div(reviews.max(1) as u32).unwrap_or_default(),
    }
}

/// The comma-separated list in the environment variable `name`, if set.
fn env_list(name: &str) -> Option<Vec<String>> {
    let value = std::env::var(name).ok()?;
    Some(value.split(',').map(|s| s.trim().to_owned()).collect())
}

fn main() {
    let seconds: u64 = std::env::var("INITGUARD_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let only_scenarios = env_list("INITGUARD_LOAD_SCENARIOS");
    let concurrencies: Vec<usize> = env_list("INITGUARD_LOAD_CONCURRENCY").map_or_else(
        || CONCURRENCIES.to_vec(),
        |list| {
            list.iter()
                .map(|c| c.parse().expect("INITGUARD_LOAD_CONCURRENCY: numbers"))
                .collect()
        },
    );
    let dir: PathBuf = std::env::temp_dir().join(format!("initguard-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let certs = generate_certs(&service_names(None, None), Duration::from_hours(1)).unwrap();
    std::fs::write(dir.join("tls.crt"), &certs.cert_pem).unwrap();
    std::fs::write(dir.join("tls.key"), &certs.key_pem).unwrap();
    let body = Bytes::from(
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/fixtures/bench/pod-review.json"),
        )
        .unwrap(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    println!(
        "review body: {} bytes; {seconds} s per step; HTTP/1.1 keep-alive, one connection per worker\n",
        body.len()
    );
    println!("| scenario | concurrency | reviews/s | p50 | p99 | errors | server CPU/review |");
    println!("|---|---|---|---|---|---|---|");
    let components = build_components(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies"),
        &Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap()
            .join("policies"),
    )
    .unwrap();
    let selected = scenarios().into_iter().filter(|scenario| {
        only_scenarios
            .as_ref()
            .is_none_or(|keys| keys.iter().any(|key| key == scenario.key))
    });
    let mut results: Vec<Measured> = Vec::new();
    for scenario in selected {
        let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut server = start_server(&dir, &components, &scenario, address);
        let pid = server.id();
        runtime.block_on(async {
            wait_ready(&client(certs.ca_cert_pem.as_bytes()), address).await;
            for &concurrency in &concurrencies {
                let step = drive(
                    certs.ca_cert_pem.as_bytes(),
                    address,
                    &body,
                    concurrency,
                    Duration::from_secs(seconds),
                    pid,
                )
                .await;
                println!(
                    "| {} | {concurrency} | {:.0} | {:.2} ms | {:.2} ms | {} | {:.1} µs |",
                    scenario.name,
                    step.rate(),
                    step.p50.as_secs_f64() * 1e3,
                    step.p99.as_secs_f64() * 1e3,
                    step.errors,
                    step.cpu_per_review.as_secs_f64() * 1e6,
                );
                results.push(Measured {
                    key: scenario.key,
                    against: scenario.against,
                    concurrency,
                    step,
                });
            }
        });
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let _ = server.wait();
    }
    let _ = std::fs::remove_dir_all(dir);
    print_ratios(&results);
}

/// Each step's rate and p99 against the steps its scenario names, at the same concurrency:
/// the ratios BENCHMARKS.md compares, all from this one run.
fn print_ratios(results: &[Measured]) {
    let rows: Vec<String> = results
        .iter()
        .flat_map(|measured| {
            measured.against.iter().filter_map(move |&base_key| {
                let base = results
                    .iter()
                    .find(|m| m.key == base_key && m.concurrency == measured.concurrency)?;
                Some(format!(
                    "| {} | {base_key} | {} | {:.2}× | {:.2}× |",
                    measured.key,
                    measured.concurrency,
                    measured.step.rate() / base.step.rate(),
                    measured.step.p99.as_secs_f64() / base.step.p99.as_secs_f64(),
                ))
            })
        })
        .collect();
    if !rows.is_empty() {
        println!("\n| step | against | concurrency | reviews/s ratio | p99 ratio |");
        println!("|---|---|---|---|---|");
        println!("{}", rows.join("\n"));
    }
}
