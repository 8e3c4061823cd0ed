//! Kubernetes releases, for rules and API versions that changed between them.

use std::fmt;

/// The newest release this build knows; `latest` means it.
pub const LATEST: Release = Release(37);

/// Text that does not name a release this build knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    #[error("{0:?} is not a version: expected v1.N or latest")]
    /// Not `v1.N` or `latest`.
    NotAVersion(String),
    #[error(
        "{0:?} is newer than the newest version this build knows ({LATEST}); use latest or an earlier version"
    )]
    /// A release newer than this build knows.
    Newer(String),
}

/// A Kubernetes minor release, `v1.N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Release(u32);

/// The newest release this build knows, as `latest` means when nothing says otherwise.
impl Default for Release {
    fn default() -> Self {
        LATEST
    }
}

impl Release {
    /// Release `v1.minor`.
    pub const fn new(minor: u32) -> Self {
        Self(minor)
    }

    /// `v1.0` to the newest release this build knows, or `latest`.
    pub fn parse(text: &str) -> Result<Self, ReleaseError> {
        Self::parse_relative(text, LATEST)
    }

    /// As [`Release::parse`], with `latest` meaning `latest`: the release checked against,
    /// which a policy's release setting follows unless it names its own.
    pub fn parse_relative(text: &str, latest: Release) -> Result<Self, ReleaseError> {
        if text == "latest" {
            return Ok(latest);
        }
        let minor = text
            .strip_prefix("v1.")
            .filter(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|m| m.parse::<u32>().ok())
            .ok_or_else(|| ReleaseError::NotAVersion(text.to_owned()))?;
        if minor > LATEST.0 {
            return Err(ReleaseError::Newer(text.to_owned()));
        }
        Ok(Self(minor))
    }

    /// The minor version: 30 for `v1.30`.
    pub fn minor(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v1.{}", self.0)
    }
}
