//! initguard's integration tests, in one binary (wasmtime's layout: one link of wasmtime,
//! hyper and rustls instead of one per file): each module drives the built `initguard` or its
//! library end to end, and `support` holds what they share.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod certs_cli;
mod chart;
mod check_cli;
mod init_steps;
mod policy_cli;
mod readme;
mod serve_cli;
mod support;
