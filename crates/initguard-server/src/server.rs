//! Running the webhook: bind, serve TLS connections, reload policies and certificates, and shut
//! down gracefully.

use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use initguard_core::Pipeline;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::app::{AppState, Limits, router};
use crate::tls::{self, TlsError, TlsSource};

/// Everything `serve` needs; tests build it directly.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub tls: TlsSource,
    pub limits: Limits,
    /// How often policy and certificate files are checked for changes.
    pub reload_interval: Duration,
    /// How long in-flight requests may take to finish after a shutdown signal.
    pub shutdown_grace: Duration,
}

/// Where the policies come from, so that the server can reload them without knowing how they
/// are built (config file, built-ins, WASM modules).
pub trait PolicySource: Send + Sync + 'static {
    /// Builds the policy set; the error says why it cannot be used.
    fn load(&self) -> Result<Pipeline, String>;
    /// Files whose change triggers a reload.
    fn watched_files(&self) -> Vec<PathBuf>;
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("policies: {0}")]
    Policies(String),
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
        let app = router(Arc::clone(&state));
        let graceful = GracefulShutdown::new();
        let builder = auto::Builder::new(TokioExecutor::new());
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
            let service = TowerToHyperService::new(app.clone());
            let watcher = graceful.watcher();
            let builder = builder.clone();
            tokio::spawn(async move {
                let stream =
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(error)) => {
                            return tracing::debug!(%peer, "TLS handshake failed: {error}");
                        }
                        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                    };
                let connection =
                    builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                if let Err(error) = watcher.watch(connection.into_owned()).await {
                    tracing::debug!(%peer, "connection ended: {error}");
                }
            });
        }
        drop(listener);
        state.set_ready(false);
        reloader.abort();
        tracing::info!(
            connections = graceful.count(),
            "shutting down, draining connections"
        );
        if tokio::time::timeout(config.shutdown_grace, graceful.shutdown())
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
    let policy_files = policies.watched_files();
    let cert_files = tls_files(&config.tls);
    let mut policy_print = fingerprint(&policy_files);
    let mut cert_print = fingerprint(&cert_files);
    let mut ticks = tokio::time::interval(config.reload_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let (policy_files, cert_files) = (policy_files.clone(), cert_files.clone());
        let Ok((new_policy_print, new_cert_print)) = tokio::task::spawn_blocking(move || {
            (fingerprint(&policy_files), fingerprint(&cert_files))
        })
        .await
        else {
            continue;
        };
        if new_policy_print != policy_print {
            policy_print = new_policy_print;
            let source = Arc::clone(&policies);
            match tokio::task::spawn_blocking(move || source.load()).await {
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
