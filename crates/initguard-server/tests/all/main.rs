//! The server's integration tests, in one binary: the router without sockets, the TLS server
//! on 127.0.0.1 with a verifying client, and hostile clients; `common` holds the policies,
//! reviews and clients they share.

#![allow(clippy::unwrap_used)]

mod common;
mod hostile;
mod router;
mod tls;
