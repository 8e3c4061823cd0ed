//! Running the webhook: bind, serve TLS connections, reload policies and certificates, and shut
//! down gracefully.

use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use initguard_core::Pipeline;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tower::ServiceExt as _;

use crate::app::{AppState, Limits, router};
use crate::connection::{Activity, ConnectionLimits, GuardedIo, Pressure, Wait};
use crate::tls::{self, TlsError, TlsSource};

/// Everything `serve` needs; tests build it directly.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub tls: TlsSource,
    pub limits: Limits,
    pub connections: ConnectionLimits,
    /// How often policy and certificate files are checked for changes.
    pub reload_interval: Duration,
    /// How long requests in flight may take to finish after a shutdown signal; connections
    /// without one close at once.
    pub shutdown_grace: Duration,
}

/// Where the policies come from, so that the server can reload them without knowing how they
/// are built (config file, built-ins, WASM modules).
pub trait PolicySource: Send + Sync + 'static {
    /// Builds the policy set; the error (the source's own type) says why it cannot be used.
    fn load(&self) -> Result<Pipeline, LoadError>;
    /// Files whose change triggers a reload.
    fn watched_files(&self) -> Vec<PathBuf>;
}

/// Why a [`PolicySource`] could not build its policies: each source has its own error type.
pub type LoadError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("policies: {0}")]
    Policies(LoadError),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot listen on {address}: {error}")]
    Bind {
        address: SocketAddr,
        error: std::io::Error,
    },
    #[error("cannot start the evaluation threads: {0}")]
    Threads(std::io::Error),
}

/// A bound server, ready to serve.
pub struct BoundServer {
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Arc<ArcSwap<rustls::ServerConfig>>,
    config: ServerConfig,
    policies: Arc<dyn PolicySource>,
    /// The CA bundle written for a generated certificate.
    pub ca_bundle: Option<PathBuf>,
}

impl std::fmt::Debug for BoundServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundServer")
            .field("listener", &self.listener)
            .field("ca_bundle", &self.ca_bundle)
            .finish_non_exhaustive()
    }
}

impl BoundServer {
    /// Loads policies and certificates and binds the port; any failure stops start-up.
    pub async fn bind(
        config: ServerConfig,
        policies: Arc<dyn PolicySource>,
    ) -> Result<Self, ServerError> {
        let pipeline = policies.load().map_err(ServerError::Policies)?;
        let (tls_config, ca_bundle) = match &config.tls {
            TlsSource::Files {
                cert,
                key,
                client_ca,
            } => (tls::load_files(cert, key, client_ca.as_deref())?, None),
            TlsSource::SelfSigned {
                names,
                ca_bundle_out,
            } => {
                let generated = tls::generate_certs(names, Duration::from_hours(365 * 24))
                    .map_err(TlsError::Generate)?;
                std::fs::write(ca_bundle_out, &generated.ca_cert_pem).map_err(|error| {
                    TlsError::WriteBundle {
                        path: ca_bundle_out.display().to_string(),
                        error,
                    }
                })?;
                let config = tls::server_config(
                    generated.cert_pem.as_bytes(),
                    generated.key_pem.as_bytes(),
                    None,
                    "generated certificate",
                )?;
                (config, Some(ca_bundle_out.clone()))
            }
        };
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|error| ServerError::Bind {
                    address: config.listen,
                    error,
                })?;
        let state =
            Arc::new(AppState::new(pipeline, config.limits.clone()).map_err(ServerError::Threads)?);
        Ok(Self {
            listener,
            state,
            tls: Arc::new(ArcSwap::from_pointee(tls_config)),
            config,
            policies,
            ca_bundle,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The shared state, for tests and the metrics of a running server.
    pub fn state(&self) -> Arc<AppState> {
        Arc::clone(&self.state)
    }

    /// Serves until `shutdown` completes, then stops accepting, drains connections for up to
    /// the grace period and returns.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let Self {
            listener,
            state,
            tls,
            config,
            policies,
            ..
        } = self;
        let reloader = tokio::spawn(reload_loop(
            Arc::clone(&state),
            Arc::clone(&tls),
            config.clone(),
            policies,
        ));
        let limits = config.connections.clone();
        let max_connections = connection_cap(limits.max_connections);
        let (stopping, stop) = watch::channel(false);
        let shared = Arc::new(Connections {
            app: router(Arc::clone(&state)),
            builder: connection_builder(&limits, config.limits.max_header_bytes),
            permits: Arc::new(Semaphore::new(max_connections)),
            pressure: Pressure::default(),
            stop,
            limits,
            state: Arc::clone(&state),
        });
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!("accept failed: {error}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let acceptor = TlsAcceptor::from(tls.load_full());
            tokio::spawn(Arc::clone(&shared).serve(stream, peer, acceptor));
        }
        drop(listener);
        state.set_ready(false);
        reloader.abort();
        let _ = stopping.send(true);
        let open = max_connections - shared.permits.available_permits();
        tracing::info!(connections = open, "shutting down, draining connections");
        let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
        if tokio::time::timeout(config.shutdown_grace, shared.permits.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!(
                "connections still open after {:?}; closing them",
                config.shutdown_grace
            );
        }
    }
}

/// How long a new client waits for an idle connection to make room at the cap.
const ROOM_WAIT: Duration = Duration::from_secs(1);
/// File descriptors kept for what is not a connection: config, modules, certificates, logs.
const RESERVED_FILES: u64 = 64;

/// The connection cap the process can keep: the configured one, lowered to what the open-file
/// limit leaves (raised to its hard limit first), so that accepting never fails for want of a
/// descriptor and eviction, not the kernel, decides who waits.
fn connection_cap(configured: usize) -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            limit = getrlimit(Resource::Nofile);
        }
    }
    let Some(files) = limit.current else {
        return configured.max(1);
    };
    let room = usize::try_from(files.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX);
    if room < configured {
        tracing::warn!(
            configured,
            open_file_limit = files,
            "the open-file limit allows only {room} connections"
        );
    }
    configured.min(room).max(1)
}

/// hyper's own limits sit above the application's (`max_header_bytes`), so that a head over the
/// limit gets the documented JSON answer (431) rather than hyper's empty one; hyper's refuse
/// only the absurd.
fn connection_builder(
    limits: &ConnectionLimits,
    max_header_bytes: usize,
) -> auto::Builder<TokioExecutor> {
    let transport_header_bytes =
        u32::try_from(max_header_bytes.saturating_mul(4)).unwrap_or(u32::MAX);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().max_headers(1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(transport_header_bytes)
        .max_pending_accept_reset_streams(limits.max_reset_streams)
        .max_local_error_reset_streams(limits.max_reset_streams);
    builder
}

/// What every connection task shares.
struct Connections {
    app: axum::Router,
    builder: auto::Builder<TokioExecutor>,
    permits: Arc<Semaphore>,
    pressure: Pressure,
    stop: watch::Receiver<bool>,
    limits: ConnectionLimits,
    state: Arc<AppState>,
}

/// Why a connection ended, as the metric's reason.
enum Closed {
    Served,
    Timeout(Wait),
    Evicted,
    Shutdown,
}

impl Connections {
    /// Takes a place under the cap, asking idle connections to make room if there is none.
    async fn place(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
            return Some(permit);
        }
        self.pressure.raise();
        tokio::time::timeout(ROOM_WAIT, Arc::clone(&self.permits).acquire_owned())
            .await
            .ok()?
            .ok()
    }

    async fn serve(self: Arc<Self>, stream: TcpStream, peer: SocketAddr, acceptor: TlsAcceptor) {
        let metrics = &self.state.metrics;
        let Some(_permit) = self.place().await else {
            metrics.record_connection_closed("refused");
            return tracing::warn!(%peer, "connection refused: at the connection cap");
        };
        metrics.connections_open.inc();
        let stream = match tokio::time::timeout(
            self.limits.handshake_timeout,
            acceptor.accept(stream),
        )
        .await
        {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(error)) => {
                tracing::debug!(%peer, "TLS handshake failed: {error}");
                None
            }
            Err(_) => {
                metrics.record_connection_closed(Wait::Handshake.reason());
                tracing::debug!(%peer, "TLS handshake timed out");
                None
            }
        };
        if let Some(stream) = stream {
            match self.serve_tls(stream, peer).await {
                Closed::Served => {}
                Closed::Timeout(wait) => metrics.record_connection_closed(wait.reason()),
                Closed::Evicted => metrics.record_connection_closed("evicted"),
                Closed::Shutdown => metrics.record_connection_closed("shutdown"),
            }
        }
        metrics.connections_open.dec();
    }

    async fn serve_tls(&self, stream: TlsStream<TcpStream>, peer: SocketAddr) -> Closed {
        // HTTP/2 reads control frames between requests, so only HTTP/1.1 bytes start a head.
        let reads_heads = stream.get_ref().1.alpn_protocol() != Some(b"h2".as_slice());
        let activity = Activity::new();
        let io = GuardedIo::new(stream, activity.clone(), self.limits.write_timeout);
        let service = {
            let app = self.app.clone();
            let activity = activity.clone();
            hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let in_flight = activity.begin();
                let response = app.clone().oneshot(request);
                async move {
                    let response = response.await;
                    drop(in_flight);
                    response
                }
            })
        };
        let connection = self.builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        let mut stop = self.stop.clone();
        let mut draining = *stop.borrow();
        loop {
            let wait = activity.deadline(&self.limits, reads_heads);
            // With a request in flight there is no deadline here; look again when it may be over.
            let wake = wait.map_or_else(
                || tokio::time::Instant::now() + self.limits.header_timeout,
                |(deadline, _)| deadline,
            );
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        if activity.write_stalled() {
                            return Closed::Timeout(Wait::Write);
                        }
                        tracing::debug!(%peer, "connection ended: {error}");
                    }
                    return Closed::Served;
                }
                () = tokio::time::sleep_until(wake) => {
                    if let Some((deadline, wait)) = activity.deadline(&self.limits, reads_heads)
                        && tokio::time::Instant::now() >= deadline
                    {
                        tracing::debug!(%peer, "connection closed: {} timeout", wait.reason());
                        return Closed::Timeout(wait);
                    }
                }
                () = self.pressure.raised(), if !draining => {
                    if activity.is_idle() {
                        return Closed::Evicted;
                    }
                }
                _ = stop.changed(), if !draining => {
                    if activity.is_idle() {
                        return Closed::Shutdown;
                    }
                    connection.as_mut().graceful_shutdown();
                    draining = true;
                }
            }
        }
    }
}

/// A cheap change detector: the contents of each file hashed, missing files included.
fn fingerprint(paths: &[PathBuf]) -> u64 {
    let mut hasher = DefaultHasher::new();
    for path in paths {
        path.hash(&mut hasher);
        std::fs::read(path).ok().hash(&mut hasher);
    }
    hasher.finish()
}

fn tls_files(source: &TlsSource) -> Vec<PathBuf> {
    match source {
        TlsSource::Files {
            cert,
            key,
            client_ca,
        } => {
            let mut files = vec![cert.clone(), key.clone()];
            files.extend(client_ca.clone());
            files
        }
        TlsSource::SelfSigned { .. } => Vec::new(),
    }
}

/// Polls policy and certificate files. A change rebuilds what changed; a failed rebuild keeps
/// the previous set, is logged and counted, and is retried on the next change.
async fn reload_loop(
    state: Arc<AppState>,
    tls: Arc<ArcSwap<rustls::ServerConfig>>,
    config: ServerConfig,
    policies: Arc<dyn PolicySource>,
) {
    let mut policy_files = policies.watched_files();
    let cert_files = tls_files(&config.tls);
    let mut policy_print = fingerprint(&policy_files);
    let mut cert_print = fingerprint(&cert_files);
    let mut ticks = tokio::time::interval(config.reload_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let (watched, certs) = (policy_files.clone(), cert_files.clone());
        let Ok((new_policy_print, new_cert_print)) =
            tokio::task::spawn_blocking(move || (fingerprint(&watched), fingerprint(&certs))).await
        else {
            continue;
        };
        if new_policy_print != policy_print {
            policy_print = new_policy_print;
            let source = Arc::clone(&policies);
            // The source may name other files now (a module added to the config): from this
            // reload on, those are watched.
            let reloaded = tokio::task::spawn_blocking(move || {
                let loaded = source.load();
                let files = source.watched_files();
                let print = fingerprint(&files);
                (loaded, files, print)
            })
            .await;
            let reloaded = reloaded.map(|(loaded, files, print)| {
                if files != policy_files {
                    policy_print = print;
                    policy_files = files;
                }
                loaded
            });
            match reloaded {
                Ok(Ok(pipeline)) => {
                    state.replace_pipeline(pipeline);
                    state.metrics.record_reload("policies", true);
                    tracing::info!("policies reloaded");
                }
                Ok(Err(error)) => {
                    state.metrics.record_reload("policies", false);
                    tracing::error!("policy reload failed, keeping the previous policies: {error}");
                }
                Err(error) => tracing::error!("policy reload panicked: {error}"),
            }
        }
        if new_cert_print != cert_print {
            cert_print = new_cert_print;
            if let TlsSource::Files {
                cert,
                key,
                client_ca,
            } = &config.tls
            {
                match tls::load_files(cert, key, client_ca.as_deref()) {
                    Ok(server_config) => {
                        tls.store(Arc::new(server_config));
                        state.metrics.record_reload("certificates", true);
                        tracing::info!("certificates reloaded");
                    }
                    Err(error) => {
                        state.metrics.record_reload("certificates", false);
                        tracing::error!(
                            "certificate reload failed, keeping the previous certificate: {error}"
                        );
                    }
                }
            }
        }
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}
