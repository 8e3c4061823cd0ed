//! initguard's TLS admission webhook.
//!
//! [`router`] is the HTTP application (tests call it without sockets); [`BoundServer`] binds it
//! behind rustls with certificate and policy reloads and graceful shutdown. Verdicts come from
//! `initguard-core`'s pipeline; this crate only moves bytes, measures and logs.

pub mod app;
pub mod connection;
pub mod evaluator;
pub mod metrics;
pub mod server;
pub mod tls;

pub use app::{AppState, Limits, router};
pub use connection::ConnectionLimits;
pub use server::{
    BoundServer, LoadError, PolicySource, ServerConfig, ServerError, shutdown_signal,
};
pub use tls::TlsSource;
