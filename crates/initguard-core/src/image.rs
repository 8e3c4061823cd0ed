//! Container image references: `[registry/]repository[:tag][@digest]`, with Docker's default registry.

/// The parts of an image reference that pinning and registry rules look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// Everything before the tag and digest, as written.
    pub repository: &'a str,
    /// The tag after `:`, if any (`1.36` in `busybox:1.36`).
    pub tag: Option<&'a str>,
    /// The digest after `@`, if any (`sha256:…`).
    pub digest: Option<&'a str>,
}

/// Why a reference does not pin the image it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpinned {
    /// Neither a tag nor a digest: the registry's `latest`, whatever it is today.
    NoTag,
    /// The floating `latest` tag.
    Latest,
}

impl<'a> ImageRef<'a> {
    /// Why the reference does not pin its image; `None` when a digest or a version tag
    /// (any tag but `latest`) does.
    pub fn unpinned(&self) -> Option<Unpinned> {
        match (self.tag, self.digest) {
            (None, None) => Some(Unpinned::NoTag),
            (Some("latest"), None) => Some(Unpinned::Latest),
            _ => None,
        }
    }

    /// Splits a reference as written in a pod spec; it never fails, as the apiserver accepts any text.
    pub fn parse(image: &'a str) -> Self {
        let (named, digest) = match image.split_once('@') {
            Some((named, digest)) => (named, Some(digest)),
            None => (image, None),
        };
        let name_start = named.rfind('/').map_or(0, |slash| slash + 1);
        let (repository, tag) = match named[name_start..].rfind(':') {
            Some(colon) => (
                &named[..name_start + colon],
                Some(&named[name_start + colon + 1..]),
            ),
            None => (named, None),
        };
        Self {
            repository,
            tag,
            digest,
        }
    }

    /// The repository with the registry Docker assumes: `busybox` is
    /// `docker.io/library/busybox`, `alpine/git` is `docker.io/alpine/git`.
    pub fn full_repository(&self) -> String {
        let first = self.repository.split('/').next().unwrap_or_default();
        let has_registry = self.repository.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost");
        if has_registry {
            self.repository.to_owned()
        } else if self.repository.contains('/') {
            format!("docker.io/{}", self.repository)
        } else {
            format!("docker.io/library/{}", self.repository)
        }
    }

    /// Whether the image comes from `prefix`: a registry (`registry.example.com`), or a path
    /// in one (`docker.io/library/`), matched on whole path components.
    pub fn is_from(&self, prefix: &str) -> bool {
        let full = self.full_repository();
        if prefix.ends_with('/') {
            full.starts_with(prefix)
        } else {
            full == prefix
                || full
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_tags_digests_and_registry_ports() {
        let cases = [
            ("busybox", "busybox", None, None),
            ("busybox:1.36", "busybox", Some("1.36"), None),
            (
                "localhost:5000/tools/git",
                "localhost:5000/tools/git",
                None,
                None,
            ),
            (
                "localhost:5000/tools/git:2.4",
                "localhost:5000/tools/git",
                Some("2.4"),
                None,
            ),
            (
                "alpine/git@sha256:abc",
                "alpine/git",
                None,
                Some("sha256:abc"),
            ),
            (
                "ghcr.io/a/b:1@sha256:abc",
                "ghcr.io/a/b",
                Some("1"),
                Some("sha256:abc"),
            ),
        ];
        for (image, repository, tag, digest) in cases {
            assert_eq!(
                ImageRef::parse(image),
                ImageRef {
                    repository,
                    tag,
                    digest
                },
                "{image}"
            );
        }
    }

    #[test]
    fn registries_follow_docker_defaults() {
        assert_eq!(
            ImageRef::parse("busybox").full_repository(),
            "docker.io/library/busybox"
        );
        assert_eq!(
            ImageRef::parse("alpine/git").full_repository(),
            "docker.io/alpine/git"
        );
        assert_eq!(
            ImageRef::parse("k8s.gcr.io/busybox").full_repository(),
            "k8s.gcr.io/busybox"
        );
        assert!(ImageRef::parse("busybox:1").is_from("docker.io"));
        assert!(ImageRef::parse("busybox:1").is_from("docker.io/library/"));
        assert!(!ImageRef::parse("alpine/git").is_from("docker.io/library/"));
        assert!(!ImageRef::parse("registry.example.com.evil/x").is_from("registry.example.com"));
    }
}
