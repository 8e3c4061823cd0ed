//! Compiled components cached on disk, keyed by the module's SHA-256 and the engine's
//! compatibility hash, so a restart or a config reload loads machine code instead of compiling.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

use wasmtime::Engine;
use wasmtime::component::Component;

/// The component for `bytes`, from the cache when possible; a broken or missing cache entry is
/// rebuilt, and a cache that cannot be written is only logged.
pub fn component(
    engine: &Engine,
    bytes: &[u8],
    digest: &str,
    cache_dir: Option<&Path>,
) -> Result<Component, String> {
    let Some(dir) = cache_dir else {
        return Component::new(engine, bytes).map_err(|e| format!("{e:#}"));
    };
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let entry = dir.join(format!("{digest}-{:016x}.cwasm", hasher.finish()));
    if entry.is_file() {
        // SAFETY: the file was written by `Component::serialize` of an engine with the same
        // compatibility hash (it is in the name), into initguard's own cache directory, and is
        // looked up by the SHA-256 of the module it was compiled from. wasmtime checks the
        // header and refuses artifacts from another version or configuration.
        #[allow(unsafe_code)]
        match unsafe { Component::deserialize_file(engine, &entry) } {
            Ok(component) => return Ok(component),
            Err(error) => {
                tracing::warn!(entry = %entry.display(), "cached component unusable, recompiling: {error:#}");
            }
        }
    }
    let component = Component::new(engine, bytes).map_err(|e| format!("{e:#}"))?;
    if let Err(error) = store(dir, &entry, &component) {
        tracing::warn!(entry = %entry.display(), "cannot cache the compiled component: {error}");
    }
    Ok(component)
}

fn store(dir: &Path, entry: &Path, component: &Component) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let bytes = component.serialize().map_err(|e| format!("{e:#}"))?;
    // Write then rename, so a concurrent reader never sees half a file.
    let staging = entry.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::write(&staging, bytes).map_err(|e| e.to_string())?;
    std::fs::rename(&staging, entry).map_err(|e| e.to_string())
}
