//! `initguard policy new NAME`: a policy crate that builds for wasm32-wasip2 and passes its own
//! tests as generated.

use std::path::{Path, PathBuf};

const TEMPLATES: [(&str, &str); 6] = [
    (
        "Cargo.toml",
        include_str!("../templates/policy/Cargo.toml.in"),
    ),
    ("src/lib.rs", include_str!("../templates/policy/lib.rs.in")),
    (
        "tests/cases.yaml",
        include_str!("../templates/policy/cases.yaml.in"),
    ),
    (
        "README.md",
        include_str!("../templates/policy/README.md.in"),
    ),
    (
        "rust-toolchain.toml",
        include_str!("../templates/policy/rust-toolchain.toml.in"),
    ),
    (
        ".cargo/config.toml",
        include_str!("../templates/policy/cargo-config.toml.in"),
    ),
];

/// Where the SDK sits in this source tree, for the generated path dependency.
pub fn default_sdk_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../initguard-policy")
}

/// Writes the crate `name` under `parent`; refuses to touch an existing folder.
pub fn scaffold(parent: &Path, name: &str, sdk: &Path) -> Result<PathBuf, String> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.as_bytes()[0].is_ascii_lowercase()
        && !name.ends_with('-');
    if !valid {
        return Err(format!(
            "{name:?} is not a crate name: use lower-case letters, digits and '-', starting with a letter"
        ));
    }
    let root = parent.join(name);
    if root.exists() {
        return Err(format!("{} already exists", root.display()));
    }
    let sdk = std::fs::canonicalize(sdk).map_err(|e| format!("SDK at {}: {e}", sdk.display()))?;
    let type_name: String = name
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    for (file, template) in TEMPLATES {
        let text = template
            .replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{type}}", &type_name)
            .replace("{{sdk}}", &sdk.display().to_string());
        let path = root.join(file);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(root)
}
