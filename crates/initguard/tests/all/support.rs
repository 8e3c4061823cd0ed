//! What the integration tests share.

use std::path::{Path, PathBuf};

/// The repository's root, where the fixtures, goldens and policies are.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}
