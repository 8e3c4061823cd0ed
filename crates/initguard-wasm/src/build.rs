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
    #[error("the {TARGET} target is not installed, and rustup cannot be run to add it")]
    Rustup(#[source] std::io::Error),
    #[error(
        "the {TARGET} target is not installed, and `rustup target add {TARGET}` failed:\n{stderr}"
    )]
    AddTarget { stderr: String },
    /// Cargo ran and failed; what it printed says why.
    #[error("cargo in {} failed:\n{stderr}", dir.display())]
    Failed { dir: PathBuf, stderr: String },
    #[error("cargo metadata printed no metadata")]
    Metadata(#[source] serde_json::Error),
}

/// Runs cargo with `args` in `dir`; the error carries what cargo printed.
fn cargo(dir: &Path, args: &[&std::ffi::OsStr]) -> Result<Vec<u8>, BuildError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(dir)
        .args(args)
        // The outer build's settings are for the host, not for the guest.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    run(&mut command)
        .map_err(BuildError::Spawn)?
        .map_err(|stderr| BuildError::Failed {
            dir: dir.to_owned(),
            stderr,
        })
}

/// What `command` printed to stdout, or to stderr when it failed.
fn run(command: &mut Command) -> std::io::Result<Result<Vec<u8>, String>> {
    let output = command.output()?;
    Ok(if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    })
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
    let built = cargo(manifest_dir, &args);
    if let Err(BuildError::Failed { stderr, .. }) = &built
        && target_missing(stderr)
    {
        add_target(manifest_dir)?;
        cargo(manifest_dir, &args)?;
    } else {
        built?;
    }
    Ok(target_dir.join(TARGET).join("release"))
}

/// Whether rustc failed for want of the target's standard library.
fn target_missing(stderr: &str) -> bool {
    stderr.contains(&format!("the `{TARGET}` target may not be installed"))
}

/// Adds the target to the toolchain cargo runs with. rustup installs the targets
/// `rust-toolchain.toml` lists with the toolchain, but not into a toolchain that was already
/// there, as on a machine that has Rust 1.95 without `wasm32-wasip2`.
fn add_target(dir: &Path) -> Result<(), BuildError> {
    run(Command::new("rustup")
        .current_dir(dir)
        .args(["target", "add", TARGET]))
    .map_err(BuildError::Rustup)?
    .map_err(|stderr| BuildError::AddTarget { stderr })?;
    Ok(())
}

/// The component a crate named `name` builds to in `components` (`my-policy` → `my_policy.wasm`).
pub fn component_path(components: &Path, name: &str) -> PathBuf {
    components.join(format!("{}.wasm", name.replace('-', "_")))
}

/// A policy crate: its package name and its folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub dir: PathBuf,
}

/// The policy crates at `manifest_dir`, as cargo reports them: the crate itself, or every
/// member of a workspace whose root is not a crate (`policies/`).
pub fn packages(manifest_dir: &Path) -> Result<Vec<Package>, BuildError> {
    let args = ["metadata", "--no-deps", "--format-version", "1"].map(std::ffi::OsStr::new);
    let metadata = cargo(manifest_dir, &args)?;
    let metadata: serde_json::Value =
        serde_json::from_slice(&metadata).map_err(BuildError::Metadata)?;
    let packages: Vec<Package> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|package| {
            let name = package["name"].as_str()?.to_owned();
            let manifest = Path::new(package["manifest_path"].as_str()?);
            Some(Package {
                name,
                dir: manifest.parent()?.to_owned(),
            })
        })
        .collect();
    // cargo lists every member of the enclosing workspace; a crate folder means that crate.
    let own = manifest_dir.canonicalize().map_err(BuildError::Spawn)?;
    match packages.iter().find(|p| p.dir == own) {
        Some(own) => Ok(vec![own.clone()]),
        None => Ok(packages),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rustc's E0463 for a target without its standard library, verbatim as rustc 1.95
    /// printed it in a policy build on a machine whose toolchain lacked the target.
    #[test]
    fn a_missing_target_is_told_from_other_build_failures() {
        let missing = "error[E0463]: can't find crate for `std`\n  |\n  = note: the \
            `wasm32-wasip2` target may not be installed\n  = help: consider downloading the \
            target with `rustup target add wasm32-wasip2`\n";
        assert!(target_missing(missing));
        let other = "error[E0425]: cannot find value `x` in this scope\n";
        assert!(!target_missing(other));
        let another_target = missing.replace("wasm32-wasip2", "wasm32-wasip1");
        assert!(!target_missing(&another_target));
    }
}
