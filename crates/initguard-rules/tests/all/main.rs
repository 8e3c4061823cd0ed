//! The built-in policies' integration tests, in one binary: parity with kube-apiserver on
//! Kubernetes' own validation tables, Pod Security at every version, the documented rules'
//! examples, and the init steps' scripts run in a shell.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod apiserver;
mod init_step_scripts;
mod pod_security;
mod rule_examples;
