//! Field paths in the apiserver's notation (`spec.initContainers[1].image`).
//!
//! Violations carry these paths so a user sees exactly what kube-apiserver would print, and
//! mutating policies convert them to RFC 6901 JSON pointers for patches.

use std::borrow::Cow;
use std::fmt;

/// Escapes one RFC 6901 reference token (`~` as `~0`, `/` as `~1`).
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Reads one RFC 6901 reference token back.
pub fn unescape_token(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A named field of an object: `.image`. Names from code are borrowed, so extending a
    /// path copies no strings.
    Field(Cow<'static, str>),
    /// A position in a list: `[1]`.
    Index(usize),
    /// A key of a map: `[initguard.dev/inject]`.
    Key(String),
}

/// A path from the object's root to one of its fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldPath {
    segments: Vec<Segment>,
}

/// A field path in apiserver notation that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid field path {path:?}: {reason}")]
pub struct ParsePathError {
    path: String,
    reason: &'static str,
}

impl FieldPath {
    /// The empty path: the object itself.
    pub fn root() -> Self {
        Self::default()
    }

    /// A path built from dotted field names, as used for the fixed prefixes of workload kinds.
    pub fn from_fields(fields: &[&'static str]) -> Self {
        Self {
            segments: fields
                .iter()
                .map(|f| Segment::Field(Cow::Borrowed(f)))
                .collect(),
        }
    }

    #[must_use]
    /// The path to the field `name` of this one.
    pub fn field(&self, name: impl Into<Cow<'static, str>>) -> Self {
        self.with(Segment::Field(name.into()))
    }

    #[must_use]
    /// The path to element `index` of this list.
    pub fn index(&self, index: usize) -> Self {
        self.with(Segment::Index(index))
    }

    #[must_use]
    /// The path to key `key` of this map (`labels[app]`).
    pub fn key(&self, key: &str) -> Self {
        self.with(Segment::Key(key.to_owned()))
    }

    fn with(&self, segment: Segment) -> Self {
        let mut segments = Vec::with_capacity(self.segments.len() + 1);
        segments.extend_from_slice(&self.segments);
        segments.push(segment);
        Self { segments }
    }

    /// The RFC 6901 JSON pointer of the same location (`/spec/initContainers/1/image`).
    pub fn to_json_pointer(&self) -> String {
        let mut pointer = String::new();
        for segment in &self.segments {
            pointer.push('/');
            match segment {
                Segment::Field(name) => pointer.push_str(&escape_token(name)),
                Segment::Key(key) => pointer.push_str(&escape_token(key)),
                Segment::Index(index) => pointer.push_str(&index.to_string()),
            }
        }
        pointer
    }

    /// Reads a path in apiserver notation, the inverse of `Display`.
    ///
    /// Field names may not contain `.` or `[`; map keys may contain anything but `]`.
    pub fn parse(text: &str) -> Result<Self, ParsePathError> {
        let error = |reason| ParsePathError {
            path: text.to_owned(),
            reason,
        };
        let mut segments = Vec::new();
        let mut rest = text;
        let mut expect_field = true;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('[') {
                let end = after.find(']').ok_or_else(|| error("unclosed '['"))?;
                let inner = &after[..end];
                let is_index = !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit());
                segments.push(if is_index {
                    Segment::Index(inner.parse().map_err(|_| error("index out of range"))?)
                } else {
                    Segment::Key(inner.to_owned())
                });
                rest = &after[end + 1..];
                expect_field = false;
                continue;
            }
            if !expect_field {
                rest = rest
                    .strip_prefix('.')
                    .ok_or_else(|| error("expected '.' or '['"))?;
            }
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            if end == 0 {
                return Err(error("empty field name"));
            }
            segments.push(Segment::Field(Cow::Owned(rest[..end].to_owned())));
            rest = &rest[end..];
            expect_field = false;
        }
        Ok(Self { segments })
    }
}

/// RFC 6901 escaping of one reference token.
impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Field(name) if position == 0 => f.write_str(name)?,
                Segment::Field(name) => write!(f, ".{name}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
                Segment::Key(key) => write!(f, "[{key}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn renders_apiserver_notation() {
        let path = FieldPath::from_fields(&["spec", "jobTemplate", "spec", "template", "spec"])
            .field("initContainers")
            .index(1)
            .field("image");
        assert_eq!(
            path.to_string(),
            "spec.jobTemplate.spec.template.spec.initContainers[1].image"
        );
        assert_eq!(
            path.to_json_pointer(),
            "/spec/jobTemplate/spec/template/spec/initContainers/1/image"
        );
    }

    #[test]
    fn escapes_map_keys_in_pointers() {
        let path = FieldPath::from_fields(&["metadata", "annotations"]).key("initguard.dev/a~b");
        assert_eq!(path.to_string(), "metadata.annotations[initguard.dev/a~b]");
        assert_eq!(
            path.to_json_pointer(),
            "/metadata/annotations/initguard.dev~1a~0b"
        );
    }

    #[test]
    fn rejects_malformed_paths() {
        assert!(FieldPath::parse("spec..image").is_err());
        assert!(FieldPath::parse("spec[0").is_err());
        assert!(FieldPath::parse("spec[0]image").is_err());
    }

    fn segment() -> impl Strategy<Value = Segment> {
        prop_oneof![
            "[a-zA-Z][a-zA-Z0-9_-]{0,12}".prop_map(|f| Segment::Field(Cow::Owned(f))),
            (0usize..10_000).prop_map(Segment::Index),
            // Map keys may hold anything but ']' and must not look like an index.
            "[a-z./~_-][a-zA-Z0-9./~_ -]{0,20}".prop_map(Segment::Key),
        ]
    }

    proptest! {
        #[test]
        fn display_and_parse_round_trip(
            first in "[a-zA-Z][a-zA-Z0-9]{0,8}",
            rest in proptest::collection::vec(segment(), 0..8),
        ) {
            let mut segments = vec![Segment::Field(Cow::Owned(first))];
            segments.extend(rest);
            let path = FieldPath { segments };
            let parsed = FieldPath::parse(&path.to_string()).expect("rendered path parses");
            prop_assert_eq!(parsed, path);
        }

        #[test]
        fn json_pointer_addresses_the_same_value(key in "[a-z0-9./~_-]{1,16}", index in 0usize..4) {
            let mut value = serde_json::json!({"spec": {"items": [{}, {}, {}, {}]}});
            value["spec"]["items"][index]["labels"] = serde_json::json!({ key.clone(): "x" });
            let path = FieldPath::from_fields(&["spec", "items"]).index(index).field("labels").key(&key);
            prop_assert_eq!(value.pointer(&path.to_json_pointer()), Some(&serde_json::json!("x")));
        }
    }
}
