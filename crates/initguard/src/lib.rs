//! The `initguard` command: config loading, `check`, and the command line that ties them to
//! the engine in `initguard-core` and the built-ins in `initguard-rules`.

pub mod certs;
pub mod check;
pub mod cli;
pub mod config;
pub mod input;
pub mod logging;
pub mod output;
pub mod policy_new;
pub mod policy_tests;
pub mod yaml;
