//! Compiled components cached on disk, keyed by the module's SHA-256 and the engine's
//! compatibility hash, so a restart or a config reload loads machine code instead of compiling.
//!
//! # Trust
//!
//! A cached artifact is native code that wasmtime loads without verifying it (`deserialize` is
//! `unsafe` for that reason): whoever can write the cache can run code as initguard. So the
//! cache is used only when no one else can write it. The folder is created private (0700) and,
//! like each artifact, must be owned by the process's user and writable by no group or other
//! user; an artifact must be a regular file (no symlink), and its bytes must match the SHA-256
//! recorded beside it when it was written, which catches a torn write or a flipped bit. A cache
//! that fails any of these is not read (the module is compiled, and the reason logged); an
//! artifact that fails is replaced. A user who can write as initguard's user could change the
//! binary itself: the cache adds no new way in.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The cached component for the module `digest`, when there is one that can be trusted.
pub fn lookup(engine: &Engine, digest: &str, cache_dir: Option<&Path>) -> Option<Component> {
    let entry = entry(engine, digest, cache_dir?)?;
    match cached(engine, &entry) {
        Ok(component) => component,
        Err(why) => {
            tracing::warn!(entry = %entry.display(), "cached component not used, recompiling: {why}");
            None
        }
    }
}

/// Compiles `bytes`, storing the machine code in the cache when there is one.
pub fn compile(
    engine: &Engine,
    bytes: &[u8],
    digest: &str,
    cache_dir: Option<&Path>,
) -> Result<Component, String> {
    let component = Component::new(engine, bytes).map_err(|e| format!("{e:#}"))?;
    if let Some(entry) = cache_dir.and_then(|dir| entry(engine, digest, dir))
        && let Err(error) = store(&entry, &component)
    {
        tracing::warn!(entry = %entry.display(), "cannot cache the compiled component: {error}");
    }
    Ok(component)
}

/// Where the artifact of `digest` for `engine` lives in `dir`; `None` when the folder cannot
/// be trusted (the reason is logged).
fn entry(engine: &Engine, digest: &str, dir: &Path) -> Option<PathBuf> {
    if let Err(why) = private_folder(dir) {
        tracing::warn!(cache = %dir.display(), "not using the compiled-module cache: {why}");
        return None;
    }
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    Some(dir.join(format!("{digest}-{:016x}.cwasm", hasher.finish())))
}

/// The recorded SHA-256 of an artifact.
fn checksum_path(entry: &Path) -> PathBuf {
    entry.with_extension("cwasm.sha256")
}

/// The cached component at `entry`; `None` when there is none.
fn cached(engine: &Engine, entry: &Path) -> Result<Option<Component>, String> {
    let metadata = match std::fs::symlink_metadata(entry) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.to_string()),
    };
    if !metadata.is_file() {
        return Err("not a regular file".to_owned());
    }
    private(&metadata)?;
    let artifact = std::fs::read(entry).map_err(|e| e.to_string())?;
    let recorded = std::fs::read_to_string(checksum_path(entry))
        .map_err(|e| format!("no recorded checksum: {e}"))?;
    let actual = hex::encode(Sha256::digest(&artifact));
    if recorded.trim() != actual {
        return Err(format!(
            "its SHA-256 is {actual}, not the {} recorded when it was written",
            recorded.trim()
        ));
    }
    // SAFETY: the bytes are what `Component::serialize` wrote into a folder and file only this
    // user can write (checked above), matching the checksum written with them; the name holds
    // the engine's compatibility hash, and wasmtime checks the header and refuses artifacts
    // from another version or configuration.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize(engine, &artifact) };
    component.map(Some).map_err(|e| format!("{e:#}"))
}

/// Creates `dir` private if it is missing, and checks that only this user can write it.
fn private_folder(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(|e| e.to_string())?;
    }
    let metadata = std::fs::metadata(dir).map_err(|e| e.to_string())?;
    if !metadata.is_dir() {
        return Err("not a folder".to_owned());
    }
    private(&metadata)
}

/// Owned by this process's user and writable by no one else.
#[cfg(unix)]
fn private(metadata: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt as _;
    let user = rustix::process::geteuid().as_raw();
    if metadata.uid() != user {
        return Err(format!(
            "owned by user {}, not by this process's user {user}",
            metadata.uid()
        ));
    }
    if metadata.mode() & 0o022 != 0 {
        return Err(format!(
            "mode {:o} lets other users write it",
            metadata.mode() & 0o777
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn private(_: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}

fn store(entry: &Path, component: &Component) -> Result<(), String> {
    let bytes = component.serialize().map_err(|e| format!("{e:#}"))?;
    let checksum = hex::encode(Sha256::digest(&bytes));
    // Write then rename, so a concurrent reader never sees half a file; the checksum goes
    // first, so an artifact is never there without one.
    let write = |path: &Path, contents: &[u8]| {
        let staging = path.with_extension(format!("{}.tmp", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        std::io::Write::write_all(&mut options.open(&staging)?, contents)?;
        std::fs::rename(&staging, path)
    };
    write(&checksum_path(entry), checksum.as_bytes()).map_err(|e| e.to_string())?;
    write(entry, &bytes).map_err(|e| e.to_string())
}
