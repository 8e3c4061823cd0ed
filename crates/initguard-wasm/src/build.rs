//! Building policy crates into components, for `initguard policy` and for tests that load the
//! policies they build.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target policies are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// Runs cargo with `args` in `dir`; the error carries what cargo printed.
fn cargo(dir: &Path, args: &[&std::ffi::OsStr]) -> Result<Vec<u8>, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(dir)
        .args(args)
        // The outer build's settings are for the host, not for the guest.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo in {} failed:\n{}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(output.stdout)
}

/// Runs `cargo build --release --target wasm32-wasip2` for the crate or workspace at
/// `manifest_dir` into `target_dir`, and returns the folder holding the `.wasm` files.
pub fn build_components(manifest_dir: &Path, target_dir: &Path) -> Result<PathBuf, String> {
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
pub fn package_name(manifest_dir: &Path) -> Result<String, String> {
    let manifest = cargo(manifest_dir, &[std::ffi::OsStr::new("read-manifest")])?;
    let manifest: serde_json::Value =
        serde_json::from_slice(&manifest).map_err(|e| e.to_string())?;
    manifest["name"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{}: no package name", manifest_dir.display()))
}
