//! Hostile clients over real TLS on 127.0.0.1: each bound of `ConnectionLimits` and `Limits`
//! holds, is counted, and a valid review is served after every attack.
//!
//! The bounds are set short (hundreds of milliseconds) so that the tests wait little; each
//! test asserts what a connection saw, not how long it took, except for the bound itself.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use initguard_core::{Mode, Outcome, Pipeline, Policy, PolicyError, Request as Review};
use initguard_server::tls::{client_config, service_names};
use initguard_server::{ConnectionLimits, Limits, PolicySource, ServerConfig, TlsSource};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::client::TlsStream;

const SHORT: Duration = Duration::from_millis(400);

/// Validity enforced and a policy that sleeps on pods named `slow`.
struct Policies;

/// Takes a second over pods named `slow`, to run a review past its deadline.
#[derive(Debug)]
struct Slow;

impl Policy for Slow {
    fn evaluate(&self, request: &Review) -> Result<Outcome, PolicyError> {
        if request.facts.name == "slow" {
            std::thread::sleep(Duration::from_secs(1));
        }
        Ok(Outcome::default())
    }
}

impl PolicySource for Policies {
    fn load(&self) -> Result<Pipeline, initguard_server::LoadError> {
        let mut entries = common::pipeline(Mode::Enforce).entries().to_vec();
        entries.push(common::entry("slow", Mode::Enforce, Arc::new(Slow)));
        Ok(Pipeline::new(entries))
    }

    fn watched_files(&self) -> Vec<std::path::PathBuf> {
        Vec::new()
    }
}

/// A server with the CA its clients trust.
struct Running {
    server: common::Running,
    ca: Vec<u8>,
}

impl std::ops::Deref for Running {
    type Target = common::Running;

    fn deref(&self) -> &common::Running {
        &self.server
    }
}

fn short_limits() -> (Limits, ConnectionLimits) {
    let limits = Limits {
        body_limit: 64 * 1024,
        body_timeout: SHORT,
        ..Limits::default()
    };
    let connections = ConnectionLimits {
        handshake_timeout: SHORT,
        header_timeout: SHORT,
        idle_timeout: SHORT * 2,
        write_timeout: SHORT,
        max_connections: 8,
        ..ConnectionLimits::default()
    };
    (limits, connections)
}

async fn start(name: &str, limits: Limits, connections: ConnectionLimits) -> Running {
    let dir = std::env::temp_dir().join(format!("initguard-hostile-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_bundle = dir.join("ca.pem");
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: TlsSource::SelfSigned {
            names: service_names(None, None),
            ca_bundle_out: ca_bundle.clone(),
        },
        limits,
        connections,
        reload_interval: Duration::from_mins(1),
        shutdown_grace: Duration::from_secs(20),
    };
    let server = common::serve(config, Arc::new(Policies)).await;
    let ca = std::fs::read(&ca_bundle).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    Running { server, ca }
}

/// A TLS connection speaking `protocol` (ALPN), for writing raw requests.
async fn connect(server: &Running, protocol: &[u8]) -> TlsStream<tokio::net::TcpStream> {
    let mut config = client_config(&server.ca).unwrap();
    config.alpn_protocols = vec![protocol.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap()
}

/// Reads until the server closes the connection or `within` passes; whether it closed.
async fn closed_within(stream: &mut TlsStream<tokio::net::TcpStream>, within: Duration) -> bool {
    let mut buffer = [0u8; 4096];
    let until = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(until.into(), stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// What a raw HTTP/1.1 answer says: its status and its JSON body.
async fn read_answer(stream: &mut TlsStream<tokio::net::TcpStream>) -> (u16, Value) {
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Posts a valid review over a fresh HTTP/2 client and returns its status.
async fn review_status(
    server: &Running,
    http2: bool,
    path: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let client = common::client(&server.ca, http2);
    let request = Request::post(format!("https://localhost:{}{path}", server.address.port()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn served_after(server: &Running, attack: &str) {
    for http2 in [true, false] {
        let (status, body) =
            review_status(server, http2, "/validate", common::review("ok", false)).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "a valid review after {attack}: {body}"
        );
        assert_eq!(body["response"]["allowed"], true, "after {attack}");
    }
}

fn closed(server: &Running, reason: &str) -> u64 {
    let text = server.state.metrics.encode();
    let wanted = format!("initguard_connections_closed_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&wanted))
        .map_or(0, |count| count.trim().parse().unwrap())
}

const HEAD: &str =
    "POST /validate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n";

/// A client sending its head a byte at a time is closed at the header timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_heads_are_cut_at_the_header_timeout() {
    let server = start("slowloris", short_limits().0, short_limits().1).await;
    let mut slow = Vec::new();
    for _ in 0..4 {
        slow.push(connect(&server, b"http/1.1").await);
    }
    let started = Instant::now();
    let mut dripping = true;
    for byte in HEAD.bytes().take(30) {
        for stream in &mut slow {
            if stream.write_all(&[byte]).await.is_err() {
                dripping = false;
            }
        }
        if !dripping {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for stream in &mut slow {
        assert!(closed_within(stream, Duration::from_secs(2)).await);
    }
    // Without the bound the drip would go on for 1.5 s and every connection stay open.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(closed(&server, "header"), 4);
    served_after(&server, "slowloris").await;
}

/// A body that never ends gets 408 at the body timeout; a connection that says nothing is
/// closed at the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_bodies_and_silent_connections_are_bounded() {
    let server = start("endless", short_limits().0, short_limits().1).await;
    let mut endless = connect(&server, b"http/1.1").await;
    endless
        .write_all(format!("{HEAD}content-length: 5000\r\n\r\n{{\"apiVersion\"").as_bytes())
        .await
        .unwrap();
    let (status, body) = read_answer(&mut endless).await;
    assert_eq!(status, 408, "{body}");
    assert_eq!(body["code"], 408);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("did not arrive within")
    );

    let mut silent = connect(&server, b"h2").await;
    let started = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(3)).await);
    assert!(started.elapsed() >= (SHORT * 2).saturating_sub(Duration::from_millis(50)));
    assert!(closed(&server, "idle") >= 1);
    served_after(&server, "an endless body").await;
}

/// Over the cap, idle connections make room for a new client; connections all busy refuse it,
/// and the refusal is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_keeps_room_for_new_clients() {
    let (mut limits, mut connections) = short_limits();
    limits.body_timeout = Duration::from_mins(1);
    connections.max_connections = 4;
    connections.idle_timeout = Duration::from_mins(1);
    connections.header_timeout = Duration::from_mins(1);
    let server = start("cap", limits, connections).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(connect(&server, b"h2").await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    served_after(&server, "four idle connections at the cap").await;
    assert!(closed(&server, "evicted") >= 1);

    // Four requests in flight (heads sent, bodies not): nothing can make room.
    let mut busy = Vec::new();
    for _ in 0..4 {
        let mut stream = connect(&server, b"http/1.1").await;
        stream
            .write_all(format!("{HEAD}content-length: 1000\r\n\r\n{{").as_bytes())
            .await
            .unwrap();
        busy.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut config = client_config(&server.ca).unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    let refused = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect("localhost".try_into().unwrap(), tcp),
    )
    .await
    .unwrap();
    assert!(
        refused.is_err(),
        "a fifth client is refused while four are busy"
    );
    assert_eq!(closed(&server, "refused"), 1);
    drop(busy);
    tokio::time::sleep(Duration::from_millis(100)).await;
    served_after(&server, "four busy connections at the cap").await;
}

/// Over HTTP/2 and HTTP/1.1 alike, a body over the limit gets the JSON 413, also when the
/// client writes it all before reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_gets_the_json_413_over_both_protocols() {
    let server = start("too-large", short_limits().0, short_limits().1).await;
    let oversized = vec![b' '; 100 * 1024];
    for http2 in [true, false] {
        let (status, body) = review_status(&server, http2, "/validate", oversized.clone()).await;
        assert_eq!(
            status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "http2 {http2}: {body}"
        );
        assert_eq!(body["code"], 413);
    }
    let mut eager = connect(&server, b"http/1.1").await;
    let head = format!(
        "{HEAD}content-length: {}\r\nconnection: close\r\n\r\n",
        oversized.len()
    );
    eager.write_all(head.as_bytes()).await.unwrap();
    eager.write_all(&oversized).await.unwrap();
    let (status, body) = read_answer(&mut eager).await;
    assert_eq!((status, body["code"].as_u64()), (413, Some(413)));
    served_after(&server, "oversized bodies").await;
}

/// A client that never reads its answers is cut at the write timeout, and its answers freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_cut_at_the_write_timeout() {
    let server = start("slow-reader", short_limits().0, short_limits().1).await;
    let mut reader = connect(&server, b"http/1.1").await;
    let review = common::review("pipelined", true);
    let request = format!("{HEAD}content-length: {}\r\n\r\n", review.len());
    let mut pipelined = Vec::new();
    for _ in 0..200 {
        pipelined.extend_from_slice(request.as_bytes());
        pipelined.extend_from_slice(&review);
    }
    // Write requests, never read: the answers fill the socket buffers, then the server's
    // writes stall.
    let writer = tokio::spawn(async move { while reader.write_all(&pipelined).await.is_ok() {} });
    let deadline = Instant::now() + Duration::from_secs(20);
    while closed(&server, "write") == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        closed(&server, "write"),
        1,
        "{}",
        server.state.metrics.encode()
    );
    writer.abort();
    served_after(&server, "a client that does not read").await;
}

/// The apiserver's `?timeout=` shortens the deadline, and the evaluation stops with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apiservers_timeout_sets_the_deadline() {
    let server = start("timeout", Limits::default(), ConnectionLimits::default()).await;
    let mut pod = common::pod(false);
    pod["metadata"]["name"] = "slow".into();
    let mut review = common::review_value("admission.k8s.io/v1", "slow", pod);
    review["request"]["name"] = "slow".into();
    // Without the apiserver's deadline the server's own (9 s) would let the policy finish
    // its second and answer 200.
    let (status, body) = review_status(
        &server,
        true,
        "/validate?timeout=600ms",
        serde_json::to_vec(&review).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert!(body["error"].as_str().unwrap().contains("100ms"), "{body}");
    served_after(&server, "a review past the apiserver's timeout").await;
}

/// SIGTERM closes connections without a request in flight at once: the drain takes as long as
/// the reviews in flight, not the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_half_sent_requests_at_once() {
    let (limits, mut connections) = short_limits();
    connections.header_timeout = Duration::from_mins(1);
    connections.idle_timeout = Duration::from_mins(1);
    let server = start("drain", limits, connections).await;
    let mut half_sent = Vec::new();
    for _ in 0..5 {
        let mut stream = connect(&server, b"http/1.1").await;
        stream.write_all(&HEAD.as_bytes()[..20]).await.unwrap();
        half_sent.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let common::Running { stop, serving, .. } = server.server;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    for stream in &mut half_sent {
        assert!(closed_within(stream, Duration::from_secs(1)).await);
    }
}
