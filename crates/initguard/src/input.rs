//! Reading manifests: files, folders, stdin; YAML streams, JSON, `kind: List`.

use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Deserialize;
use serde_json::Value;

/// One file (or stdin) as read.
#[derive(Debug)]
pub struct Source {
    /// The path as given or found, or `-` for stdin.
    pub name: String,
    pub text: String,
}

/// One object of a source, with where it stands.
#[derive(Debug, Clone)]
pub struct Document {
    pub source: usize,
    /// 1-based position of the document in its source.
    pub number: usize,
    /// 0-based position in a `kind: List`'s items.
    pub item: Option<usize>,
    /// 1-based line where the document starts.
    pub line: usize,
    pub object: Value,
}

/// An input that could not be read, located as precisely as the parser allows.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: document {document}: invalid YAML: {source}")]
    Yaml {
        path: String,
        document: usize,
        source: serde_yaml_ng::Error,
    },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
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
    #[error("{path}: no manifests (*.yaml, *.yml, *.json) found")]
    EmptyFolder { path: String },
}

const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// Reads every input: `-` is stdin, a folder is searched recursively in name order.
pub fn read_sources(inputs: &[PathBuf], stdin: &mut dyn Read) -> (Vec<Source>, Vec<InputError>) {
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for input in inputs {
        if input.as_os_str() == "-" {
            let mut text = String::new();
            match stdin.read_to_string(&mut text) {
                Ok(_) => sources.push(Source {
                    name: "-".to_owned(),
                    text,
                }),
                Err(source) => errors.push(InputError::Io {
                    path: "-".to_owned(),
                    source,
                }),
            }
            continue;
        }
        let mut files = Vec::new();
        if input.is_dir() {
            if let Err(source) = find_manifests(input, &mut files) {
                errors.push(InputError::Io {
                    path: input.display().to_string(),
                    source,
                });
            } else if files.is_empty() {
                errors.push(InputError::EmptyFolder {
                    path: input.display().to_string(),
                });
            }
        } else {
            files.push(input.clone());
        }
        for file in files {
            let name = file.display().to_string();
            match std::fs::read_to_string(&file) {
                Ok(text) => sources.push(Source { name, text }),
                Err(source) => errors.push(InputError::Io { path: name, source }),
            }
        }
    }
    (sources, errors)
}

fn find_manifests(folder: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(folder)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            find_manifests(&path, found)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e))
        {
            found.push(path);
        }
    }
    Ok(())
}

/// Splits a source into objects. JSON is read as JSON (for its error positions), anything else
/// as a YAML stream; `kind: *List` objects are expanded into their items. Parsing stops at the
/// first syntax error, which is returned beside the documents read before it.
pub fn parse_source(index: usize, source: &Source) -> (Vec<Document>, Option<InputError>) {
    let mut documents = Vec::new();
    let mut push = |number: usize, line: usize, value: Value| -> Option<InputError> {
        let found = match &value {
            Value::Null => return None,
            Value::Object(map) if map.get("kind").is_some_and(Value::is_string) => None,
            Value::Object(_) => Some("a mapping without `kind`"),
            Value::Array(_) => Some("a sequence"),
            _ => Some("a scalar"),
        };
        if let Some(found) = found {
            return Some(InputError::NotAnObject {
                path: source.name.clone(),
                document: number,
                line,
                found,
            });
        }
        expand_list(index, number, line, value, &mut documents);
        None
    };
    let json_file = Path::new(&source.name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if json_file || source.text.trim_start().starts_with('{') {
        return match serde_json::from_str::<Value>(&source.text) {
            Ok(value) => {
                let error = push(1, 1, value);
                (documents, error)
            }
            Err(error) => (
                documents,
                Some(InputError::Json {
                    path: source.name.clone(),
                    source: error,
                }),
            ),
        };
    }
    // Documents are parsed in parallel; the serial stream parser, which knows absolute
    // positions, runs only when that fails, to report the syntax error exactly.
    let chunks = split_documents(&source.text);
    if let Some(chunks) = &chunks {
        let parsed: Option<Vec<Value>> = chunks
            .par_iter()
            .map(|(_, text)| {
                if has_content(text) {
                    serde_yaml_ng::from_str(text).ok()
                } else {
                    Some(Value::Null)
                }
            })
            .collect();
        if let Some(values) = parsed {
            for (position, ((line, _), value)) in chunks.iter().zip(values).enumerate() {
                if let Some(error) = push(position + 1, *line, value) {
                    return (documents, Some(error));
                }
            }
            return (documents, None);
        }
    }
    let lines: Vec<usize> = chunks
        .map(|c| c.iter().map(|(line, _)| *line).collect())
        .unwrap_or_default();
    for (position, document) in serde_yaml_ng::Deserializer::from_str(&source.text).enumerate() {
        let number = position + 1;
        match Value::deserialize(document) {
            Ok(value) => {
                if let Some(error) = push(number, lines.get(position).copied().unwrap_or(1), value)
                {
                    return (documents, Some(error));
                }
            }
            Err(error) => {
                return (
                    documents,
                    Some(InputError::Yaml {
                        path: source.name.clone(),
                        document: number,
                        source: error,
                    }),
                );
            }
        }
    }
    (documents, None)
}

fn expand_list(
    source: usize,
    number: usize,
    line: usize,
    mut value: Value,
    documents: &mut Vec<Document>,
) {
    let is_list = value
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"))
        && value.get("items").is_some_and(Value::is_array);
    if !is_list {
        documents.push(Document {
            source,
            number,
            item: None,
            line,
            object: value,
        });
        return;
    }
    if let Some(Value::Array(items)) = value.get_mut("items").map(Value::take) {
        for (item, object) in items.into_iter().enumerate() {
            documents.push(Document {
                source,
                number,
                item: Some(item),
                line,
                object,
            });
        }
    }
}

fn has_content(chunk: &str) -> bool {
    chunk.lines().any(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    })
}

/// Splits a YAML stream at its `---` markers into (first line, text) per document, as the
/// YAML parser would count them; `None` for streams this split cannot mirror exactly (content
/// on a marker line, directives, `...` ends), which are then parsed as one stream.
fn split_documents(text: &str) -> Option<Vec<(usize, &str)>> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    let mut after_marker = false;
    let first_content_line = |chunk: &str, from: usize| {
        chunk
            .lines()
            .position(|l| {
                let t = l.trim();
                !t.is_empty() && !t.starts_with('#')
            })
            .map_or(from, |i| from + i)
    };
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        if bare.starts_with('%') || bare == "..." {
            return None;
        }
        if bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t") {
            if !bare[3..].trim().is_empty() && !bare[3..].trim().starts_with('#') {
                return None;
            }
            let chunk = &text[start..offset];
            if after_marker || has_content(chunk) {
                chunks.push((first_content_line(chunk, start_line), chunk));
            }
            start = offset + line.len();
            start_line = index + 2;
            after_marker = true;
        }
        offset += line.len();
    }
    let chunk = &text[start..];
    if after_marker || has_content(chunk) {
        chunks.push((first_content_line(chunk, start_line), chunk));
    }
    Some(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, text: &str) -> (Vec<Document>, Option<String>) {
        let (docs, error) = parse_source(
            0,
            &Source {
                name: name.into(),
                text: text.into(),
            },
        );
        (docs, error.map(|e| e.to_string()))
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
            docs.iter().map(|d| d.item).collect::<Vec<_>>(),
            [Some(0), Some(1)]
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
            error.starts_with("bad.yaml: document 2: invalid YAML:"),
            "{error}"
        );
        assert!(
            error.contains("line 4") || error.contains("line 5"),
            "{error}"
        );

        let (_, error) = parse("bad.json", "{\n  \"kind\": \"Pod\",\n  \"spec\": }\n");
        let error = error.unwrap();
        assert!(
            error.starts_with("bad.json: invalid JSON:") && error.contains("line 3 column 11"),
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
