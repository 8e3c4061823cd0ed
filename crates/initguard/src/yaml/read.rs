//! Reading a manifest stream the way kubectl does.
//!
//! kubectl (`k8s.io/apimachinery/pkg/util/yaml`, `YAMLOrJSONDecoder`) treats a stream whose
//! first non-space character is `{` as a stream of JSON values; anything else it cuts into
//! documents at `---` lines (`YAMLReader.Read`), and converts each with sigs.k8s.io/yaml
//! (`YAMLToJSON`: goyaml.v2 decoding into `interface{}`, then JSON). This module does the same
//! over saphyr's event parser: the node tree and decoding follow goyaml.v2 `decode.go`
//! (`parser`, `(*decoder).mapping`, `merge`, `alias`, the excessive-aliasing guard), scalars
//! follow [`super::resolve`].

use std::collections::HashMap;

use rayon::prelude::*;
use saphyr_parser::{Event, Parser, ScalarStyle, ScanError};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

use super::resolve::{self, Scalar};

/// One document of a stream, with where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlDocument {
    /// 1-based position of the document in the stream, counting empty ones.
    pub number: usize,
    /// 1-based line of the document's first content.
    pub line: usize,
    pub value: Value,
}

/// One document of a stream whose JSON may not be parsed yet.
#[derive(Debug)]
pub struct LazyDocument<'a> {
    /// 1-based position of the document in the stream, counting empty ones.
    pub number: usize,
    /// 1-based line of the document's first content.
    pub line: usize,
    pub content: Content<'a>,
}

/// A document's content.
#[derive(Debug)]
pub enum Content<'a> {
    /// A YAML document, decoded.
    Tree(Value),
    /// A value of a JSON stream: its text, checked to be JSON but not parsed, so that the
    /// items of a large `List` can be parsed a few at a time.
    Json(&'a RawValue),
}

impl Content<'_> {
    /// The content as a tree.
    pub fn into_tree(self) -> Result<Value, String> {
        match self {
            Content::Tree(value) => Ok(value),
            Content::Json(raw) => json_tree(raw),
        }
    }
}

/// A checked JSON value parsed into a tree, failing as a JSON decoder does (serde_json's
/// nesting limit).
pub fn json_tree(raw: &RawValue) -> Result<Value, String> {
    serde_json::from_str(raw.get()).map_err(|e| format!("invalid JSON: {e}"))
}

/// A document that kubectl would refuse, located by line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct YamlError {
    /// 1-based position of the document in the stream.
    pub number: usize,
    /// 1-based line of the problem in the stream.
    pub line: usize,
    pub message: String,
}

/// Reads every document of `text` in order: JSON streams as JSON, anything else as YAML
/// documents (parsed in parallel). Empty and `null` documents are left out, as kubectl skips
/// them. A broken YAML document does not stop the others; a JSON stream stops at its first
/// syntax error, as a JSON decoder cannot resume.
pub fn read_stream(text: &str) -> Vec<Result<YamlDocument, YamlError>> {
    units(text)
        .into_par_iter()
        .flat_map_iter(|unit| unit.read())
        .collect()
}

/// A piece of a stream that is read on its own: one YAML document, a whole JSON stream (a
/// JSON decoder cannot resume after an error, so it is one piece), or a document kubectl
/// refuses unread (a bad separator, one over the size limit).
#[derive(Debug)]
pub struct Unit(UnitKind);

#[derive(Debug)]
enum UnitKind {
    Yaml(Chunk),
    Json(String),
    Broken(YamlError),
}

/// The pieces of `text`, in stream order, cut without parsing anything.
pub fn units(text: &str) -> Vec<Unit> {
    // Reading from memory cannot fail, and `text` is UTF-8.
    Units::new(text.as_bytes(), usize::MAX)
        .filter_map(Result::ok)
        .collect()
}

/// The pieces of a stream as it is read, so that memory holds one document at a time, not
/// the stream: a document longer than `max_document_bytes` is counted, not kept, and becomes
/// an error. A JSON stream is kept whole (it is one piece).
#[derive(Debug)]
pub struct Units<R> {
    reader: R,
    started: bool,
    done: bool,
    splitter: Splitter,
    /// The line being read; at most the document limit of it is kept.
    line: Vec<u8>,
    ready: std::collections::VecDeque<Unit>,
    /// The stream's length, when known: a JSON stream is read into a buffer of that size at
    /// once (grown by doubling, a large one would briefly need three times its size).
    expected_bytes: usize,
}

impl<R: std::io::BufRead> Units<R> {
    pub fn new(reader: R, max_document_bytes: usize) -> Self {
        Self {
            reader,
            started: false,
            done: false,
            splitter: Splitter {
                max_bytes: max_document_bytes,
                number: 1,
                first_line: 1,
                lines: 0,
                content: false,
                separated: false,
                text: Vec::new(),
                bytes: 0,
            },
            line: Vec::new(),
            ready: std::collections::VecDeque::new(),
            expected_bytes: 0,
        }
    }

    /// Says how long the stream is (a file's size), so that a JSON stream is read without
    /// growing its buffer.
    #[must_use]
    pub fn expecting(mut self, bytes: u64) -> Self {
        self.expected_bytes = usize::try_from(bytes).unwrap_or(0);
        self
    }

    /// `YAMLOrJSONDecoder`'s sniff: a stream whose first non-space character is `{` is JSON.
    /// libyaml (and so goyaml.v2) skips a UTF-8 byte-order mark at the start of the input.
    fn start(&mut self) -> std::io::Result<()> {
        const BOM: &[u8] = b"\xEF\xBB\xBF";
        self.started = true;
        let mut head = Vec::new();
        while head.len() < BOM.len() {
            match self.reader.fill_buf()?.first() {
                Some(&byte) if byte == BOM[head.len()] => head.push(byte),
                _ => break,
            }
            self.reader.consume(1);
        }
        if !head.is_empty() && head != BOM {
            // Not a byte-order mark: text, and not JSON.
            self.line = head;
            return Ok(());
        }
        let mut prefix = Vec::new();
        loop {
            let buffer = self.reader.fill_buf()?;
            let blank = buffer
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
            let next = buffer.get(blank).copied();
            prefix.extend_from_slice(&buffer[..blank]);
            self.reader.consume(blank);
            match next {
                // The buffer was all blank: read on.
                None if blank > 0 => {}
                Some(b'{') => {
                    let mut text = prefix;
                    text.reserve(self.expected_bytes.saturating_sub(text.len()));
                    self.reader.read_to_end(&mut text)?;
                    let text = String::from_utf8(text).map_err(|e| {
                        std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error())
                    })?;
                    self.ready.push_back(Unit(UnitKind::Json(text)));
                    self.done = true;
                    return Ok(());
                }
                _ => break,
            }
        }
        // The blank prefix is the start of the YAML stream's first lines.
        let mut lines = prefix.split_inclusive(|&b| b == b'\n').peekable();
        while let Some(line) = lines.next() {
            if lines.peek().is_none() && !line.ends_with(b"\n") {
                self.line.extend_from_slice(line);
            } else {
                self.splitter.line(line, line.len(), &mut self.ready);
            }
        }
        Ok(())
    }

    /// Reads one line into `self.line` (keeping at most the document limit of it) and hands
    /// it to the splitter; `false` at the end of the stream.
    fn next_line(&mut self) -> std::io::Result<bool> {
        let mut length = self.line.len();
        loop {
            let buffer = self.reader.fill_buf()?;
            if buffer.is_empty() {
                break;
            }
            let (taken, ends) = match memchr::memchr(b'\n', buffer) {
                Some(end) => (end + 1, true),
                None => (buffer.len(), false),
            };
            let room = self.splitter.max_bytes.saturating_sub(self.line.len());
            self.line.extend_from_slice(&buffer[..taken.min(room)]);
            length += taken;
            self.reader.consume(taken);
            if ends {
                break;
            }
        }
        if length == 0 {
            return Ok(false);
        }
        self.splitter.line(&self.line, length, &mut self.ready);
        self.line.clear();
        Ok(true)
    }
}

impl<R: std::io::BufRead> Iterator for Units<R> {
    type Item = std::io::Result<Unit>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(unit) = self.ready.pop_front() {
                return Some(Ok(unit));
            }
            if self.done {
                return None;
            }
            let read = if self.started {
                self.next_line()
            } else {
                self.start().map(|()| true)
            };
            match read {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    self.ready.extend(self.splitter.finish());
                }
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
            }
        }
    }
}

/// `YAMLReader.Read`, a line at a time: a line that starts with `---` ends a document when
/// the rest of it is blank or a comment, and is an error (`invalid Yaml document separator`)
/// otherwise. A separator before any content (only comments or blank lines so far) starts the
/// first document rather than ending an empty one.
#[derive(Debug)]
struct Splitter {
    max_bytes: usize,
    /// 1-based position of the document being read.
    number: usize,
    /// 1-based line where it starts.
    first_line: usize,
    /// Lines read so far.
    lines: usize,
    content: bool,
    separated: bool,
    /// The document's text so far, while it is within the limit.
    text: Vec<u8>,
    /// The document's length so far.
    bytes: usize,
}

impl Splitter {
    /// Takes one line (`line` is its first bytes, `length` its whole length).
    fn line(&mut self, line: &[u8], length: usize, ready: &mut std::collections::VecDeque<Unit>) {
        self.lines += 1;
        let text = String::from_utf8_lossy(line);
        if let Some(rest) = text.strip_prefix("---") {
            if self.content || self.separated {
                ready.push_back(self.take());
                self.number += 1;
            }
            let rest = rest.trim();
            if !rest.is_empty() && !rest.starts_with('#') {
                ready.push_back(Unit(UnitKind::Broken(YamlError {
                    number: self.number,
                    line: self.lines,
                    message: format!("invalid Yaml document separator: {rest}"),
                })));
            }
            self.text.clear();
            self.bytes = 0;
            self.first_line = self.lines + 1;
            self.content = false;
            self.separated = true;
            return;
        }
        if !self.content {
            let trimmed = text.trim();
            self.content = !trimmed.is_empty() && !trimmed.starts_with('#');
        }
        self.bytes += length;
        if self.bytes <= self.max_bytes {
            self.text.extend_from_slice(line);
        } else {
            self.text = Vec::new();
        }
    }

    /// The document read so far, as a unit.
    fn take(&mut self) -> Unit {
        let (number, line) = (self.number, self.first_line);
        let broken = |message: String| {
            Unit(UnitKind::Broken(YamlError {
                number,
                line,
                message,
            }))
        };
        if self.bytes > self.max_bytes {
            return broken(format!(
                "the document is {} bytes, more than the limit of {} (--max-document-size)",
                self.bytes, self.max_bytes
            ));
        }
        match String::from_utf8(std::mem::take(&mut self.text)) {
            Ok(text) => Unit(UnitKind::Yaml(Chunk {
                number,
                first_line: line,
                text,
            })),
            Err(error) => broken(format!("not UTF-8 text: {}", error.utf8_error())),
        }
    }

    /// The last document, if the stream did not end at a separator.
    fn finish(&mut self) -> Option<Unit> {
        (self.bytes > 0).then(|| self.take())
    }
}

impl Unit {
    /// The unit's text, for a cheap look before parsing it.
    pub fn text(&self) -> &str {
        match &self.0 {
            UnitKind::Yaml(chunk) => &chunk.text,
            UnitKind::Json(text) => text,
            UnitKind::Broken(_) => "",
        }
    }

    /// The unit's documents (none for an empty or `null` one).
    pub fn read(&self) -> Vec<Result<YamlDocument, YamlError>> {
        self.read_lazily()
            .into_iter()
            .map(|document| {
                let document = document?;
                let value = document.content.into_tree().map_err(|message| YamlError {
                    number: document.number,
                    line: document.line,
                    message,
                })?;
                Ok(YamlDocument {
                    number: document.number,
                    line: document.line,
                    value,
                })
            })
            .collect()
    }

    /// As [`Unit::read`], leaving JSON documents as checked text.
    pub fn read_lazily(&self) -> Vec<Result<LazyDocument<'_>, YamlError>> {
        match &self.0 {
            UnitKind::Json(text) => read_json(text),
            UnitKind::Broken(error) => vec![Err(error.clone())],
            UnitKind::Yaml(chunk) => chunk
                .parse()
                .transpose()
                .into_iter()
                .map(|document| {
                    document.map(|document| LazyDocument {
                        number: document.number,
                        line: document.line,
                        content: Content::Tree(document.value),
                    })
                })
                .collect(),
        }
    }
}

fn read_json(text: &str) -> Vec<Result<LazyDocument<'_>, YamlError>> {
    let mut documents = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
    let mut number = 0;
    // Lines are counted from the end of the previous value, so the stream is scanned once.
    let (mut counted_to, mut line) = (0, 1);
    loop {
        let start = stream.byte_offset();
        let value_start = start + (text[start..].len() - text[start..].trim_start().len());
        line += text[counted_to..value_start].matches('\n').count();
        counted_to = value_start;
        match stream.next() {
            None => break,
            Some(Ok(raw)) => {
                number += 1;
                if raw.get() != "null" {
                    documents.push(Ok(LazyDocument {
                        number,
                        line,
                        content: Content::Json(raw),
                    }));
                }
            }
            Some(Err(error)) => {
                documents.push(Err(YamlError {
                    number: number + 1,
                    line: error.line(),
                    message: format!("invalid JSON: {error}"),
                }));
                break;
            }
        }
    }
    documents
}

/// One document's text, cut out of the stream.
#[derive(Debug)]
struct Chunk {
    number: usize,
    /// 1-based line of the chunk's first line in the stream.
    first_line: usize,
    text: String,
}

/// A node of one document, as goyaml.v2's parser builds them.
#[derive(Debug)]
enum Node {
    Scalar {
        value: String,
        plain: bool,
        tag: Option<String>,
    },
    Sequence(Vec<usize>),
    /// Keys and values, alternating.
    Mapping(Vec<usize>),
    Alias(usize),
}

#[derive(Debug)]
struct Tree {
    nodes: Vec<Node>,
    /// 1-based stream line of each node.
    lines: Vec<usize>,
}

impl Chunk {
    fn error(&self, line_in_chunk: usize, message: impl Into<String>) -> YamlError {
        YamlError {
            number: self.number,
            line: self.first_line + line_in_chunk.saturating_sub(1),
            message: message.into(),
        }
    }

    fn scan_error(&self, error: &ScanError) -> YamlError {
        self.error(
            error.marker().line(),
            format!("invalid YAML: {}", error.info()),
        )
    }

    /// The chunk's first document as JSON, or `None` when it has none (or it is `null`).
    fn parse(&self) -> Result<Option<YamlDocument>, YamlError> {
        let mut text = std::borrow::Cow::Borrowed(self.text.as_str());
        let mut reread = 0;
        let tree = loop {
            match self.tree(&text) {
                Ok(tree) => break tree,
                Err(error) => match tab_after_colon(&text, &error) {
                    Some(fixed) if reread + text.len() <= TAB_REPAIR_BUDGET => {
                        reread += text.len();
                        text = std::borrow::Cow::Owned(fixed);
                    }
                    _ => return Err(self.scan_error(&error)),
                },
            }
        };
        let Some(tree) = tree else {
            return Ok(None);
        };
        let mut decoder = Decoder {
            tree: &tree,
            decodes: 0,
            aliased: 0,
            alias_depth: 0,
            active_aliases: Vec::new(),
            depth: 0,
        };
        let value = decoder.value(0).map_err(|(line, message)| YamlError {
            number: self.number,
            line,
            message: format!("invalid YAML: {message}"),
        })?;
        Ok((!value.is_null()).then(|| YamlDocument {
            number: self.number,
            line: tree.lines[0],
            value,
        }))
    }

    /// The node tree of the first document; what follows a `...` in the same chunk is ignored,
    /// as `yaml.Unmarshal` reads one document.
    fn tree(&self, text: &str) -> Result<Option<Tree>, ScanError> {
        let mut tree = Tree {
            nodes: Vec::new(),
            lines: Vec::new(),
        };
        let mut anchors: HashMap<usize, usize> = HashMap::new();
        let mut open: Vec<usize> = Vec::new();
        for event in Parser::new_from_str(text) {
            let (event, span) = event?;
            let line = self.first_line + span.start.line().saturating_sub(1);
            let (node, anchor, opens) = match event {
                Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => continue,
                Event::StreamEnd | Event::DocumentEnd => break,
                Event::SequenceEnd | Event::MappingEnd => {
                    open.pop();
                    continue;
                }
                Event::Scalar(value, style, anchor, tag) => (
                    Node::Scalar {
                        value: value.into_owned(),
                        plain: style == ScalarStyle::Plain,
                        tag: tag.map(|t| long_tag(&t.handle, &t.suffix)),
                    },
                    anchor,
                    false,
                ),
                Event::SequenceStart(anchor, _) => (Node::Sequence(Vec::new()), anchor, true),
                Event::MappingStart(anchor, _) => (Node::Mapping(Vec::new()), anchor, true),
                Event::Alias(anchor) => match anchors.get(&anchor) {
                    Some(target) => (Node::Alias(*target), 0, false),
                    None => {
                        return Err(ScanError::new_str(span.start, "unknown anchor referenced"));
                    }
                },
            };
            let index = tree.nodes.len();
            tree.nodes.push(node);
            tree.lines.push(line);
            if anchor != 0 {
                anchors.insert(anchor, index);
            }
            if let Some(parent) = open.last() {
                match &mut tree.nodes[*parent] {
                    Node::Sequence(children) | Node::Mapping(children) => children.push(index),
                    Node::Scalar { .. } | Node::Alias(_) => {}
                }
            }
            if opens {
                open.push(index);
            }
        }
        Ok((!tree.nodes.is_empty()).then_some(tree))
    }
}

/// saphyr wants a space after a mapping's `:` where libyaml, and so kubectl, also takes a tab
/// (`a:\tb`). It reports that with its position just after the tabs; those tabs are replaced
/// by spaces, which changes no value and no position, and the chunk is parsed again. Each
/// repair re-reads the document, so their number is bounded by [`TAB_REPAIR_BUDGET`] bytes of
/// re-reading (thousands for a manifest of a few KB); past it the error is reported as saphyr
/// found it.
fn tab_after_colon(text: &str, error: &ScanError) -> Option<String> {
    if !error
        .info()
        .contains("':' must be followed by a valid YAML whitespace")
    {
        return None;
    }
    let at = text
        .char_indices()
        .nth(error.marker().index())
        .map_or(text.len(), |(at, _)| at);
    let before = text[..at].trim_end_matches('\t');
    if before.len() == at || !before.ends_with(':') {
        return None;
    }
    let mut fixed = String::with_capacity(text.len());
    fixed.push_str(before);
    fixed.extend(std::iter::repeat_n(' ', at - before.len()));
    fixed.push_str(&text[at..]);
    Some(fixed)
}

/// How many bytes one document may be re-read for `:`-tab repairs (see [`tab_after_colon`]).
const TAB_REPAIR_BUDGET: usize = 64 << 20;

/// How deeply collections may nest once aliases are expanded: serde_json's own limit for JSON
/// input (it refuses the 128th level), so that a document is refused alike in either syntax and
/// by the webhook, and no hostile nesting can exhaust a thread's stack while decoding (or later
/// dropping) the value.
const MAX_DEPTH: usize = 127;

/// The long form of a tag, as goyaml.v2 compares them (`tag:yaml.org,2002:int`, `!local`).
fn long_tag(handle: &str, suffix: &str) -> String {
    if handle == "!!" {
        format!("tag:yaml.org,2002:{suffix}")
    } else {
        format!("{handle}{suffix}")
    }
}

/// goyaml.v2 `decode.go`'s alias guard: `alias_ratio_range_low`, `alias_ratio_range_high` and
/// `allowedAliasRatio`.
fn allowed_alias_ratio(decodes: usize) -> f64 {
    const LOW: usize = 400_000;
    const HIGH: usize = 4_000_000;
    if decodes <= LOW {
        0.99
    } else if decodes >= HIGH {
        0.10
    } else {
        0.99 - 0.89 * ((decodes - LOW) as f64 / (HIGH - LOW) as f64)
    }
}

type DecodeError = (usize, String);

struct Decoder<'t> {
    tree: &'t Tree,
    decodes: usize,
    aliased: usize,
    alias_depth: usize,
    active_aliases: Vec<usize>,
    /// Collections open around the node being decoded.
    depth: usize,
}

impl Decoder<'_> {
    fn fail(&self, index: usize, message: impl Into<String>) -> DecodeError {
        (self.tree.lines[index], message.into())
    }

    /// `(*decoder).unmarshal`'s count: alias expansion may not dominate a large document.
    fn count(&mut self, index: usize) -> Result<(), DecodeError> {
        self.decodes += 1;
        if self.alias_depth > 0 {
            self.aliased += 1;
        }
        if self.aliased > 100
            && self.decodes > 1000
            && self.aliased as f64 / self.decodes as f64 > allowed_alias_ratio(self.decodes)
        {
            return Err(self.fail(index, "document contains excessive aliasing"));
        }
        Ok(())
    }

    fn enter_alias(&mut self, index: usize) -> Result<usize, DecodeError> {
        let Node::Alias(target) = self.tree.nodes[index] else {
            return Ok(index);
        };
        if self.active_aliases.contains(&index) {
            return Err(self.fail(index, "anchor value contains itself"));
        }
        self.active_aliases.push(index);
        self.alias_depth += 1;
        Ok(target)
    }

    fn leave_alias(&mut self) {
        self.active_aliases.pop();
        self.alias_depth -= 1;
    }

    fn value(&mut self, index: usize) -> Result<Value, DecodeError> {
        self.count(index)?;
        match &self.tree.nodes[index] {
            Node::Alias(_) => {
                let target = self.enter_alias(index)?;
                let value = self.value(target);
                self.leave_alias();
                value
            }
            Node::Scalar { value, plain, tag } => {
                let scalar = resolve::resolve(value, *plain, tag.as_deref())
                    .map_err(|e| self.fail(index, e.message))?;
                json_scalar(scalar).map_err(|message| self.fail(index, message))
            }
            Node::Sequence(items) => {
                self.enter_collection(index)?;
                let items = items
                    .iter()
                    .map(|item| self.value(*item))
                    .collect::<Result<Vec<_>, _>>();
                self.depth -= 1;
                items.map(Value::Array)
            }
            Node::Mapping(entries) => {
                self.enter_collection(index)?;
                let mut map = Map::new();
                let filled = self.mapping_into(entries, &mut map);
                self.depth -= 1;
                filled.map(|()| Value::Object(map))
            }
        }
    }

    fn enter_collection(&mut self, index: usize) -> Result<(), DecodeError> {
        if self.depth == MAX_DEPTH {
            return Err(self.fail(
                index,
                format!("collections nest deeper than {MAX_DEPTH} levels"),
            ));
        }
        self.depth += 1;
        Ok(())
    }

    /// `(*decoder).mapping` into a map: entries in order, later keys overwrite earlier ones,
    /// and a merge key merges where it stands.
    fn mapping_into(
        &mut self,
        entries: &[usize],
        map: &mut Map<String, Value>,
    ) -> Result<(), DecodeError> {
        for pair in entries.chunks(2) {
            let [key, value] = *pair else {
                continue;
            };
            if self.is_merge(key) {
                self.merge(value, map)?;
                continue;
            }
            let key = self.key(key)?;
            let value = self.value(value)?;
            map.insert(key, value);
        }
        Ok(())
    }

    /// `isMerge`: a plain (or `!!merge`-tagged) `<<` key.
    fn is_merge(&self, index: usize) -> bool {
        matches!(&self.tree.nodes[index], Node::Scalar { value, plain, tag }
            if value == "<<" && ((*plain && tag.is_none()) || tag.as_deref() == Some("tag:yaml.org,2002:merge")))
    }

    /// `(*decoder).merge`: a mapping, an alias of one, or a sequence of those (earlier ones
    /// take precedence, so they are merged last).
    fn merge(&mut self, index: usize, map: &mut Map<String, Value>) -> Result<(), DecodeError> {
        const WANT_MAP: &str = "map merge requires map or sequence of maps as the value";
        match &self.tree.nodes[index] {
            Node::Sequence(items) => {
                for item in items.iter().rev() {
                    self.merge_mapping(*item, map, WANT_MAP)?;
                }
                Ok(())
            }
            Node::Mapping(_) | Node::Alias(_) => self.merge_mapping(index, map, WANT_MAP),
            Node::Scalar { .. } => Err(self.fail(index, WANT_MAP)),
        }
    }

    fn merge_mapping(
        &mut self,
        index: usize,
        map: &mut Map<String, Value>,
        want_map: &str,
    ) -> Result<(), DecodeError> {
        let target = match self.tree.nodes[index] {
            Node::Alias(target) => target,
            _ => index,
        };
        let Node::Mapping(entries) = &self.tree.nodes[target] else {
            return Err(self.fail(index, want_map));
        };
        self.count(index)?;
        if target == index {
            return self.mapping_into(entries, map);
        }
        self.enter_alias(index)?;
        let merged = self
            .count(target)
            .and_then(|()| self.mapping_into(entries, map));
        self.leave_alias();
        merged
    }

    /// A map key as sigs.k8s.io/yaml `convertToJSONableObject` turns it into a JSON key.
    fn key(&mut self, index: usize) -> Result<String, DecodeError> {
        self.count(index)?;
        let target = self.enter_alias(index)?;
        let key = match &self.tree.nodes[target] {
            Node::Scalar { value, plain, tag } => {
                match resolve::resolve(value, *plain, tag.as_deref())
                    .map_err(|e| self.fail(index, e.message))?
                {
                    Scalar::String(s) => Ok(s),
                    Scalar::Bool(b) => Ok(b.to_string()),
                    Scalar::Int(i) => Ok(i.to_string()),
                    Scalar::Uint(u) => Ok(u.to_string()),
                    Scalar::Float(f) => Ok(resolve::float_key(f)),
                    Scalar::Null => Err(self.fail(index, "unsupported map key: null")),
                    Scalar::BigInt(_) => Err(self.fail(
                        index,
                        format!("unsupported map key of type: *big.Int, key: {value}"),
                    )),
                }
            }
            Node::Sequence(_) => Err(self.fail(index, "invalid map key: a sequence")),
            Node::Mapping(_) => Err(self.fail(index, "invalid map key: a mapping")),
            Node::Alias(_) => Err(self.fail(index, "invalid map key: an alias of an alias")),
        };
        if target != index {
            self.leave_alias();
        }
        key
    }
}

/// A resolved scalar as JSON, as `json.Marshal` writes it and a JSON decoder reads it back:
/// a whole float is an integer (`1.0` is written `1`), NaN and infinities are errors.
fn json_scalar(scalar: Scalar) -> Result<Value, String> {
    Ok(match scalar {
        Scalar::Null => Value::Null,
        Scalar::Bool(b) => Value::Bool(b),
        Scalar::Int(i) => Value::from(i),
        Scalar::Uint(u) => Value::from(u),
        Scalar::String(s) => Value::String(s),
        Scalar::BigInt(f) | Scalar::Float(f) => {
            if !f.is_finite() {
                let spelled = if f.is_nan() {
                    "NaN"
                } else if f > 0.0 {
                    "+Inf"
                } else {
                    "-Inf"
                };
                return Err(format!("json: unsupported value: {spelled}"));
            }
            float_json(f)
        }
    })
}

/// A float as the JSON number Go writes for it, read back: whole values in the int64 range are
/// integers.
pub(crate) fn float_json(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.2e18 {
        Value::from(f as i64)
    } else {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}
