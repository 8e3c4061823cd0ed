//! Reading manifests: files, folders, stdin; YAML streams, JSON, `kind: List`.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::yaml;

/// One file (or stdin) to read.
#[derive(Debug, Clone)]
pub enum Input {
    Stdin,
    File {
        /// The path as given or found.
        name: String,
        path: PathBuf,
    },
}

/// One object of a source, with where it stands.
#[derive(Debug, Clone)]
pub struct Document {
    pub source: usize,
    /// 1-based position of the document in its source.
    pub number: usize,
    /// Where the object stands in a `kind: *List`, if it was one of its items.
    pub item: Option<ListItem>,
    /// 1-based line where the document starts.
    pub line: usize,
    pub object: Value,
}

/// An item of a `kind: *List`.
#[derive(Debug, Clone)]
pub struct ListItem {
    /// 0-based position in the list's items.
    pub index: usize,
    /// The list without its items (`apiVersion`, `kind`, `metadata`), shared by every item.
    pub envelope: Arc<Value>,
}

/// An input that could not be read, located as precisely as the parser allows.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Broken YAML or JSON, or a document kubectl would refuse to read.
    #[error("{path}:{line}: document {document}: {message}")]
    Syntax {
        path: String,
        line: usize,
        document: usize,
        message: String,
    },
    #[error(
        "{path}:{line}: document {document}: expected a Kubernetes object (a mapping with `kind`), found {found}"
    )]
    NotAnObject {
        path: String,
        document: usize,
        line: usize,
        found: &'static str,
    },
    /// A document whose pod spec does not have the types Kubernetes gives it (the apiserver
    /// would refuse to decode it).
    #[error("{path}:{line}: document {document}: {object}: {error}")]
    Unreadable {
        path: String,
        line: usize,
        document: usize,
        object: String,
        error: initguard_core::WorkloadError,
    },
    #[error("{path}: no manifests (*.yaml, *.yml, *.json) found")]
    EmptyFolder { path: String },
    #[error("{path}: {what}, not a regular file: it may never end; pipe it to - to read it")]
    NotAFile { path: String, what: &'static str },
    #[error("{path}: larger than the limit of {limit} bytes (--max-input-size)")]
    TooLarge { path: String, limit: u64 },
}

const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// How much `check` reads: bounds that keep an endless or enormous input from taking the
/// process down with it, while every other input is still checked.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// Bytes of one input (a file, or stdin).
    pub max_input_bytes: u64,
    /// Bytes of one YAML document.
    pub max_document_bytes: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_input_bytes: 1 << 30,
            max_document_bytes: 64 << 20,
        }
    }
}

/// The inputs named: the files to read (a folder's in name order), what could not be opened
/// or searched, and what a folder walk passed over (with why).
#[derive(Debug, Default)]
pub struct Found {
    pub inputs: Vec<Input>,
    pub errors: Vec<InputError>,
    pub skipped: Vec<String>,
}

/// Finds every input: `-` is stdin, a folder is searched recursively in name order, visiting
/// each real folder once (symlink cycles are cut) and only regular files. A special file (FIFO,
/// device, socket) named as an input is refused: it may never end; give it as `-`.
pub fn find_inputs(paths: &[PathBuf]) -> Found {
    let mut found = Found::default();
    for path in paths {
        if path.as_os_str() == "-" {
            found.inputs.push(Input::Stdin);
            continue;
        }
        let name = path.display().to_string();
        let metadata = match std::fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(source) => {
                found.errors.push(InputError::Io { path: name, source });
                continue;
            }
        };
        if metadata.is_dir() {
            let mut files = Vec::new();
            let mut walk = Walk {
                files: &mut files,
                skipped: &mut found.skipped,
                visited: Vec::new(),
            };
            if let Err(source) = walk.folder(path) {
                found.errors.push(InputError::Io { path: name, source });
            } else if files.is_empty() {
                found.errors.push(InputError::EmptyFolder { path: name });
            }
            found
                .inputs
                .extend(files.into_iter().map(|file| Input::File {
                    name: file.display().to_string(),
                    path: file,
                }));
        } else if metadata.is_file() {
            found.inputs.push(Input::File {
                name,
                path: path.clone(),
            });
        } else {
            found.errors.push(InputError::NotAFile {
                path: name,
                what: file_kind(&metadata),
            });
        }
    }
    found
}

/// The units of one input, read as they are needed.
pub type Units<'a> = Box<dyn Iterator<Item = Result<yaml::Unit, InputError>> + 'a>;

impl Input {
    /// The path as given or found, or `-` for stdin.
    pub fn name(&self) -> &str {
        match self {
            Input::Stdin => "-",
            Input::File { name, .. } => name,
        }
    }

    /// Opens a file and reads it a document at a time; a file larger than the input limit is
    /// refused before it is read. Stdin is read by [`stdin_units`].
    pub fn units(&self, limits: ReadLimits) -> Result<Units<'static>, InputError> {
        let Input::File { name, path } = self else {
            return Ok(Box::new(std::iter::empty()));
        };
        let io = |source| InputError::Io {
            path: name.clone(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        if size > limits.max_input_bytes {
            return Err(InputError::TooLarge {
                path: name.clone(),
                limit: limits.max_input_bytes,
            });
        }
        Ok(read_units(name.clone(), file, size, limits))
    }

    /// Whether the input's text contains `word`, read a block at a time without keeping it.
    pub fn mentions(&self, word: &str, limits: ReadLimits) -> bool {
        let Input::File { path, .. } = self else {
            return true;
        };
        let Ok(file) = std::fs::File::open(path) else {
            return false;
        };
        let finder = memchr::memmem::Finder::new(word.as_bytes());
        let mut reader = std::io::Read::take(file, limits.max_input_bytes);
        let mut block = vec![0; READ_BUFFER];
        // The end of the previous block, so that a word split across two blocks is found.
        let mut kept = 0;
        loop {
            let read = match reader.read(&mut block[kept..]) {
                Ok(0) | Err(_) => return false,
                Ok(read) => read,
            };
            let filled = kept + read;
            if finder.find(&block[..filled]).is_some() {
                return true;
            }
            kept = (word.len() - 1).min(filled);
            block.copy_within(filled - kept..filled, 0);
        }
    }
}

/// Stdin read a document at a time; it stops with an error where it passes the input limit.
pub fn stdin_units(stdin: &mut dyn std::io::Read, limits: ReadLimits) -> Units<'_> {
    read_units("-".to_owned(), stdin, 0, limits)
}

/// `size` is the input's length if known, else 0.
fn read_units<'a>(
    name: String,
    reader: impl std::io::Read + 'a,
    size: u64,
    limits: ReadLimits,
) -> Units<'a> {
    let limited = Limited {
        inner: reader,
        left: limits.max_input_bytes,
    };
    let units = yaml::Units::new(
        std::io::BufReader::with_capacity(READ_BUFFER, limited),
        limits.max_document_bytes,
    )
    .expecting(size);
    let limit = limits.max_input_bytes;
    Box::new(units.map(move |unit| {
        unit.map_err(|source| {
            if source
                .get_ref()
                .is_some_and(<dyn std::error::Error + Send + Sync>::is::<OverLimit>)
            {
                InputError::TooLarge {
                    path: name.clone(),
                    limit,
                }
            } else {
                InputError::Io {
                    path: name.clone(),
                    source,
                }
            }
        })
    }))
}

/// Bytes read from an input at a time.
const READ_BUFFER: usize = 1 << 20;

/// A reader that fails once more than `left` bytes have come: more is an error, not a
/// truncation.
struct Limited<R> {
    inner: R,
    left: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("larger than the input limit")]
struct OverLimit;

impl<R: std::io::Read> std::io::Read for Limited<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // At the limit: the stream must end here.
            let mut probe = [0];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::other(OverLimit)),
            };
        }
        let most = usize::try_from(self.left).map_or(buffer.len(), |left| left.min(buffer.len()));
        let read = self.inner.read(&mut buffer[..most])?;
        self.left -= read as u64;
        Ok(read)
    }
}

/// What a file that is neither a regular file nor a folder is.
fn file_kind(metadata: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        let kind = metadata.file_type();
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
    }
    let _ = metadata;
    "not a regular file"
}

/// A folder walk that visits each real folder once.
struct Walk<'a> {
    files: &'a mut Vec<PathBuf>,
    skipped: &'a mut Vec<String>,
    /// The folders entered, by what they are (device and inode), not by the path that led there.
    visited: Vec<(u64, u64)>,
}

impl Walk<'_> {
    fn folder(&mut self, folder: &Path) -> std::io::Result<()> {
        let identity = identity(&std::fs::metadata(folder)?);
        if self.visited.contains(&identity) {
            self.skipped.push(format!(
                "{}: a folder already searched (a symlink cycle)",
                folder.display()
            ));
            return Ok(());
        }
        self.visited.push(identity);
        let mut entries: Vec<PathBuf> = std::fs::read_dir(folder)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for path in entries {
            // Follows symlinks: a link to a folder is searched, a dangling link is reported.
            let metadata = match std::fs::metadata(&path) {
                Ok(metadata) => metadata,
                Err(error) => {
                    self.skipped.push(format!("{}: {error}", path.display()));
                    continue;
                }
            };
            if metadata.is_dir() {
                self.folder(&path)?;
                continue;
            }
            let manifest = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.contains(&e));
            if !manifest {
                continue;
            }
            if metadata.is_file() {
                self.files.push(path);
            } else {
                self.skipped.push(format!(
                    "{}: {}, not a regular file: give it as - to read it",
                    path.display(),
                    file_kind(&metadata)
                ));
            }
        }
        Ok(())
    }
}

#[cfg(unix)]
fn identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    (metadata.dev(), metadata.ino())
}

/// Without inode numbers, every folder counts as new (cycles are not detected).
#[cfg(not(unix))]
fn identity(_: &std::fs::Metadata) -> (u64, u64) {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    (0, NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// The objects of one document: itself, or the items of a `kind: *List`.
#[derive(Debug)]
pub enum Objects<'a> {
    One(Document),
    List(List<'a>),
}

/// A `kind: *List` with items, handing them out a batch at a time so that a large list (the
/// `kubectl get -o json` of a cluster) is never one tree: a JSON list's items stay text until
/// their batch is parsed.
#[derive(Debug)]
pub struct List<'a> {
    source: usize,
    name: &'a str,
    number: usize,
    line: usize,
    envelope: Arc<Value>,
    items: Items<'a>,
    next: usize,
}

#[derive(Debug)]
enum Items<'a> {
    Trees(std::vec::IntoIter<Value>),
    Json(Vec<&'a RawValue>),
}

impl List<'_> {
    /// The next `n` items (fewer at the end, none when every item has been handed out); an
    /// item whose JSON cannot be parsed is an input error.
    pub fn next_batch(&mut self, n: usize) -> Vec<Result<Document, InputError>> {
        let (first, source, number, line) = (self.next, self.source, self.number, self.line);
        let (envelope, name) = (&self.envelope, self.name);
        let document = |index: usize, object: Value| Document {
            source,
            number,
            item: Some(ListItem {
                index,
                envelope: Arc::clone(envelope),
            }),
            line,
            object,
        };
        let batch: Vec<_> = match &mut self.items {
            Items::Trees(items) => items
                .take(n)
                .enumerate()
                .map(|(offset, object)| Ok(document(first + offset, object)))
                .collect(),
            Items::Json(items) => {
                let end = items.len().min(first + n);
                items[first..end]
                    .par_iter()
                    .enumerate()
                    .map(|(offset, raw)| {
                        yaml::json_tree(raw)
                            .map(|object| document(first + offset, object))
                            .map_err(|message| InputError::Syntax {
                                path: name.to_owned(),
                                line,
                                document: number,
                                message: format!("items[{}]: {message}", first + offset),
                            })
                    })
                    .collect()
            }
        };
        self.next += batch.len();
        batch
    }

    /// Every item, in batches of `n`.
    pub fn batches(mut self, n: usize) -> impl Iterator<Item = Vec<Result<Document, InputError>>> {
        std::iter::from_fn(move || Some(self.next_batch(n)).filter(|batch| !batch.is_empty()))
    }
}

/// The objects of one document of source `index`, named `name`.
pub fn objects_of<'a>(
    index: usize,
    name: &'a str,
    document: Result<yaml::LazyDocument<'a>, yaml::YamlError>,
) -> Result<Objects<'a>, InputError> {
    let document = document.map_err(|error| InputError::Syntax {
        path: name.to_owned(),
        line: error.line,
        document: error.number,
        message: error.message,
    })?;
    let yaml::LazyDocument {
        number,
        line,
        content,
    } = document;
    let syntax = |message: String| InputError::Syntax {
        path: name.to_owned(),
        line,
        document: number,
        message,
    };
    let (object, json_items) = match content {
        yaml::Content::Json(raw) => match json_fields(raw) {
            Some(fields) => split_json_list(fields).map_err(syntax)?,
            None => (yaml::json_tree(raw).map_err(syntax)?, None),
        },
        yaml::Content::Tree(value) => (value, None),
    };
    let found = match &object {
        Value::Object(map) if map.get("kind").is_some_and(Value::is_string) => None,
        Value::Object(_) => Some("a mapping without `kind`"),
        Value::Array(_) => Some("a sequence"),
        _ => Some("a scalar"),
    };
    if let Some(found) = found {
        return Err(InputError::NotAnObject {
            path: name.to_owned(),
            document: number,
            line,
            found,
        });
    }
    let list = |envelope: Value, items: Items<'a>| {
        Objects::List(List {
            source: index,
            name,
            number,
            line,
            envelope: Arc::new(envelope),
            items,
            next: 0,
        })
    };
    if let Some(items) = json_items {
        return Ok(list(object, Items::Json(items)));
    }
    let mut object = object;
    if is_list(&object)
        && let Some(Value::Array(items)) = object.get_mut("items").map(Value::take)
    {
        return Ok(list(object, Items::Trees(items.into_iter())));
    }
    Ok(Objects::One(Document {
        source: index,
        number,
        item: None,
        line,
        object,
    }))
}

/// A `kind: *List` with items becomes one object per item, each holding the list's other
/// fields so that `--mutated` writes the list back as it was; an empty list stays one object.
fn is_list(object: &Value) -> bool {
    object
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(is_list_kind)
        && object
            .get("items")
            .and_then(Value::as_array)
            .is_some_and(|items| !items.is_empty())
}

/// kubectl's list kinds: `List`, and any `*List` (`PodList`, `ConfigMapList`).
fn is_list_kind(kind: &str) -> bool {
    kind.ends_with("List")
}

/// The top-level fields of a JSON object, their values unparsed; `None` for anything else.
fn json_fields(raw: &RawValue) -> Option<Vec<(String, &RawValue)>> {
    struct Fields;
    impl<'de> serde::de::Visitor<'de> for Fields {
        type Value = Vec<(String, &'de RawValue)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut fields = Vec::new();
            while let Some(field) = map.next_entry()? {
                fields.push(field);
            }
            Ok(fields)
        }
    }
    let mut reader = serde_json::Deserializer::from_str(raw.get());
    serde::Deserializer::deserialize_map(&mut reader, Fields).ok()
}

/// A JSON object from its fields, parsed as a JSON decoder would (a later duplicate key wins),
/// except that the items of a `kind: *List` are left as text and returned beside it.
fn split_json_list(
    fields: Vec<(String, &RawValue)>,
) -> Result<(Value, Option<Vec<&RawValue>>), String> {
    let listed = fields
        .iter()
        .rev()
        .find(|(key, _)| key == "kind")
        .and_then(|(_, kind)| serde_json::from_str::<&str>(kind.get()).ok())
        .is_some_and(is_list_kind);
    let items = fields
        .iter()
        .rev()
        .find(|(key, _)| key == "items")
        .filter(|_| listed)
        .and_then(|(_, items)| serde_json::from_str::<Vec<&RawValue>>(items.get()).ok())
        .filter(|items| !items.is_empty());
    let mut object = Map::new();
    for (key, raw) in fields {
        if items.is_some() && key == "items" {
            continue;
        }
        object.insert(key, yaml::json_tree(raw)?);
    }
    Ok((Value::Object(object), items))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The objects of `text` and its first input error, as `check` reads them.
    fn parse(name: &str, text: &str) -> (Vec<Document>, Option<String>) {
        let mut documents = Vec::new();
        let mut errors = Vec::new();
        for unit in yaml::units(text) {
            for document in unit.read_lazily() {
                match objects_of(0, name, document) {
                    Ok(Objects::One(document)) => documents.push(document),
                    Ok(Objects::List(list)) => {
                        for item in list.batches(2).flatten() {
                            match item {
                                Ok(document) => documents.push(document),
                                Err(error) => errors.push(error),
                            }
                        }
                    }
                    Err(error) => errors.push(error),
                }
            }
        }
        (documents, errors.first().map(ToString::to_string))
    }

    #[test]
    fn yaml_streams_number_documents_and_lines() {
        let text = "# header\napiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\n---\n# c\nkind: Pod\nmetadata: {name: b}\n";
        let (docs, error) = parse("f.yaml", text);
        assert_eq!(error, None);
        let found: Vec<_> = docs
            .iter()
            .map(|d| {
                (
                    d.number,
                    d.line,
                    d.object["metadata"]["name"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(found, [(1, 2, "a"), (3, 8, "b")]);
    }

    #[test]
    fn leading_marker_starts_the_first_document() {
        let (docs, _) = parse("f.yaml", "---\nkind: Pod\n---\nkind: Pod\n");
        assert_eq!(
            docs.iter().map(|d| (d.number, d.line)).collect::<Vec<_>>(),
            [(1, 2), (2, 4)]
        );
    }

    #[test]
    fn lists_expand_into_items() {
        let (docs, _) = parse(
            "l.yaml",
            "kind: List\nitems:\n- {kind: Pod, metadata: {name: a}}\n- {kind: Pod, metadata: {name: b}}\n",
        );
        assert_eq!(
            docs.iter()
                .map(|d| d.item.as_ref().map(|i| i.index))
                .collect::<Vec<_>>(),
            [Some(0), Some(1)]
        );
    }

    /// `kubectl get -o json` writes `items` before `kind`; the list is still found, its items
    /// parsed a batch at a time, its other fields kept for `--mutated`, and a duplicate key
    /// decided as a JSON decoder does (the last one wins).
    #[test]
    fn json_lists_hand_out_items_whatever_the_key_order() {
        let text = r#"{"apiVersion": "v1", "items": [{"kind": "Pod", "metadata": {"name": "a"}},
            {"kind": "Pod", "metadata": {"name": "b"}}, {"kind": "Pod", "metadata": {"name": "c"}}],
            "kind": "PodList", "metadata": {"resourceVersion": "7"}}"#;
        let (docs, error) = parse("l.json", text);
        assert_eq!(error, None);
        let names: Vec<_> = docs
            .iter()
            .map(|d| {
                (
                    d.item.as_ref().unwrap().index,
                    d.object["metadata"]["name"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(names, [(0, "a"), (1, "b"), (2, "c")]);
        let envelope = &docs[0].item.as_ref().unwrap().envelope;
        assert_eq!(
            **envelope,
            serde_json::json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "7"}})
        );

        let (docs, _) = parse(
            "d.json",
            r#"{"kind": "Pod", "items": [{"kind": "Pod"}], "kind": "PodList"}"#,
        );
        assert_eq!(docs.len(), 1, "the last kind wins");
        assert!(docs[0].item.is_some());
        let (docs, _) = parse(
            "d.json",
            r#"{"kind": "PodList", "items": [{"kind": "Pod"}], "kind": "Pod"}"#,
        );
        assert_eq!(docs.len(), 1);
        assert!(
            docs[0].item.is_none(),
            "not a list: one object with its items"
        );
        assert_eq!(docs[0].object["items"][0]["kind"], "Pod");
        let (docs, _) = parse("e.json", r#"{"kind": "PodList", "items": []}"#);
        assert!(docs[0].item.is_none(), "an empty list stays one object");
    }

    /// An item a JSON decoder cannot read (here, nested past serde_json's limit of 128) is an
    /// input error naming the item; the other items are still read.
    #[test]
    fn an_unreadable_json_item_is_an_input_error() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let text = format!(
            r#"{{"kind": "List", "items": [{{"kind": "Pod"}}, {{"kind": "Pod", "x": {deep}}}]}}"#
        );
        let (docs, error) = parse("deep.json", &text);
        assert_eq!(docs.len(), 1);
        let error = error.unwrap();
        assert!(
            error.starts_with(
                "deep.json:1: document 1: items[1]: invalid JSON: recursion limit exceeded"
            ),
            "{error}"
        );
    }

    #[test]
    fn syntax_errors_name_file_document_and_line() {
        let (docs, error) = parse(
            "bad.yaml",
            "kind: Pod\n---\nkind: Pod\nmetadata: {name: [\n",
        );
        assert_eq!(docs.len(), 1);
        let error = error.unwrap();
        assert!(
            error.starts_with("bad.yaml:4: document 2: invalid YAML:")
                || error.starts_with("bad.yaml:5: document 2: invalid YAML:"),
            "{error}"
        );

        let (_, error) = parse("bad.json", "{\n  \"kind\": \"Pod\",\n  \"spec\": }\n");
        let error = error.unwrap();
        assert!(
            error.starts_with("bad.json:3: document 1: invalid JSON:")
                && error.contains("line 3 column 11"),
            "{error}"
        );
    }

    #[test]
    fn non_objects_are_input_errors() {
        let (_, error) = parse("s.yaml", "kind: Pod\n---\n- a\n- b\n");
        assert_eq!(
            error.unwrap(),
            "s.yaml:3: document 2: expected a Kubernetes object (a mapping with `kind`), found a sequence"
        );
        let (_, error) = parse("m.yaml", "name: x\n");
        assert!(error.unwrap().contains("found a mapping without `kind`"));
    }
}
