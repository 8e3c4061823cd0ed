//! Building policy crates into components, for `initguard policy` and for tests that load the
//! policies they build.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target policies are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// A policy crate that cannot be built, or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    #[error("cannot run cargo")]
    Spawn(#[source] std::io::Error),
    /// Cargo ran and failed; what it printed says why.
    #[error("cargo in {} failed:\n{stderr}", dir.display())]
    Failed { dir: PathBuf, stderr: String },
    #[error("cargo read-manifest printed no manifest")]
    Manifest(#[source] serde_json::Error),
    #[error("{}: no package name", .0.display())]
    NoName(PathBuf),
}

/// Runs cargo with `args` in `dir`; the error carries what cargo printed.
fn cargo(dir: &Path, args: &[&std::ffi::OsStr]) -> Result<Vec<u8>, BuildError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(dir)
        .args(args)
        // The outer build's settings are for the host, not for the guest.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .map_err(BuildError::Spawn)?;
    if !output.status.success() {
        return Err(BuildError::Failed {
            dir: dir.to_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(output.stdout)
}

/// Runs `cargo build --release --target wasm32-wasip2` for the crate or workspace at
/// `manifest_dir` into `target_dir`, and returns the folder holding the `.wasm` files. A
/// relative `target_dir` is relative to the current directory, not to the crate (cargo runs in
/// the crate's folder).
pub fn build_components(manifest_dir: &Path, target_dir: &Path) -> Result<PathBuf, BuildError> {
    let target_dir = std::path::absolute(target_dir).map_err(BuildError::Spawn)?;
    let args = [
        "build",
        "--release",
        "--quiet",
        "--target",
        TARGET,
        "--target-dir",
    ]
    .map(std::ffi::OsStr::new);
    let mut args = args.to_vec();
    args.push(target_dir.as_os_str());
    cargo(manifest_dir, &args)?;
    Ok(target_dir.join(TARGET).join("release"))
}

/// The component a crate named `name` builds to in `components` (`my-policy` → `my_policy.wasm`).
pub fn component_path(components: &Path, name: &str) -> PathBuf {
    components.join(format!("{}.wasm", name.replace('-', "_")))
}

/// The name of the package whose manifest is in `manifest_dir`, as cargo reports it.
pub fn package_name(manifest_dir: &Path) -> Result<String, BuildError> {
    let manifest = cargo(manifest_dir, &[std::ffi::OsStr::new("read-manifest")])?;
    let manifest: serde_json::Value =
        serde_json::from_slice(&manifest).map_err(BuildError::Manifest)?;
    manifest["name"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| BuildError::NoName(manifest_dir.to_owned()))
}
