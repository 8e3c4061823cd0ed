//! The reader against what kubectl reads (each case checked with
//! `kubectl annotate --local -f FILE k=v -o json`), and the writer against the reader.

use std::fmt::Write as _;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{YamlDocument, read_stream, to_yaml};

fn read_one(text: &str) -> Value {
    let mut documents = read_stream(text);
    assert_eq!(documents.len(), 1, "{text:?}: {documents:?}");
    documents.remove(0).unwrap().value
}

fn read_error(text: &str) -> String {
    read_stream(text)
        .into_iter()
        .find_map(Result::err)
        .map_or_else(
            || panic!("{text:?} read without an error"),
            |e| e.to_string(),
        )
}

/// goyaml.v2 `decode.go` `(*decoder).merge` and `(*decoder).mapping`: entries apply in order
/// (an explicit key before `<<` is overwritten by the merge, one after it wins), and in a
/// sequence of merges the earlier mapping wins.
#[test]
fn merge_keys_apply_in_order() {
    let value = read_one(
        "base: &base {a: 1, b: 2}\nother: &other {b: 3, c: 4}\nspec:\n  before: 0\n  a: 9\n  <<: [*base, *other]\n  c: 5\nsingle:\n  a: 0\n  <<: *base\ninline:\n  <<: {x: 1}\n  x: 2\n",
    );
    assert_eq!(value["spec"], json!({"a": 1, "b": 2, "before": 0, "c": 5}));
    assert_eq!(value["single"], json!({"a": 1, "b": 2}));
    assert_eq!(value["inline"], json!({"x": 2}));
    assert!(read_error("a:\n  <<: 1\n").contains("map merge requires map or sequence of maps"));
    // A quoted `<<` is an ordinary key.
    assert_eq!(
        read_one("a:\n  \"<<\": {x: 1}\n")["a"],
        json!({"<<": {"x": 1}})
    );
}

/// An anchored init container merged into a second one keeps every field.
#[test]
fn merged_containers_keep_their_fields() {
    let value = read_one(
        "kind: Pod\nspec:\n  initContainers:\n  - &wait\n    name: wait-db\n    image: busybox:1.36\n    command: [sh, -c, 'until nslookup db; do sleep 2; done']\n  - <<: *wait\n    name: wait-cache\n",
    );
    assert_eq!(value["spec"]["initContainers"][1]["image"], "busybox:1.36");
    assert_eq!(value["spec"]["initContainers"][1]["name"], "wait-cache");
}

/// Keys become JSON keys as sigs.k8s.io/yaml `convertToJSONableObject` writes them; duplicate
/// keys: the last wins (`yaml.Unmarshal`, not strict).
#[test]
fn keys_and_duplicates() {
    let value = read_one("yes: 1\n12: 2\n1.5: 3\noff: 4\na: 1\na: 2\n");
    assert_eq!(
        value,
        json!({"true": 1, "12": 2, "1.5": 3, "false": 4, "a": 2})
    );
    assert!(read_error("~: 1\n").contains("unsupported map key"));
    assert!(read_error("[a]: 1\n").contains("invalid map key"));
}

/// `YAMLReader.Read` (k8s.io/apimachinery/pkg/util/yaml/decoder.go): `---` lines split
/// documents, a comment may follow, anything else is `invalid Yaml document separator`;
/// `...` ends a document and what follows it in the same chunk is not read.
#[test]
fn documents_split_as_kubectl_splits_them() {
    let documents = read_stream("kind: A\n--- # second\nkind: B\n---x\nkind: C\n");
    let summary: Vec<_> = documents
        .iter()
        .map(|d| match d {
            Ok(d) => format!("{} {} {}", d.number, d.line, d.value["kind"]),
            Err(e) => format!("{} {e}", e.number),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "1 1 \"A\"",
            "2 3 \"B\"",
            "3 line 4: invalid Yaml document separator: x",
            "3 5 \"C\""
        ]
    );
    let documents = read_stream("kind: A\n...\nkind: ignored\n---\n# c\nkind: B\n...\n");
    let lines: Vec<_> = documents
        .into_iter()
        .map(|d| {
            let YamlDocument {
                number,
                line,
                value,
            } = d.unwrap();
            (number, line, value["kind"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(lines, [(1, 1, "A".to_owned()), (2, 6, "B".to_owned())]);
}

#[test]
fn byte_order_mark_and_json_streams() {
    assert_eq!(read_one("\u{feff}kind: Pod\n"), json!({"kind": "Pod"}));
    let documents = read_stream("{\"kind\": \"A\"}\n\n{\"kind\": \"B\"}");
    let lines: Vec<_> = documents.iter().map(|d| d.as_ref().unwrap().line).collect();
    assert_eq!(lines, [1, 3]);
}

/// goyaml.v2's excessive-aliasing guard (`allowedAliasRatio`): a billion-laughs document fails
/// quickly instead of expanding.
#[test]
fn alias_bombs_are_refused() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..9 {
        let refs = vec![format!("*a{}", level - 1); 10].join(", ");
        let _ = writeln!(text, "a{level}: &a{level} [{refs}]");
    }
    assert!(read_error(&text).contains("document contains excessive aliasing"));
    // decode.go `(*decoder).alias`: an anchor used inside its own value.
    assert_eq!(
        read_error("a: &x [*x]\n"),
        "line 1: invalid YAML: anchor value contains itself"
    );
}

#[test]
fn tabs_and_syntax_errors_name_their_line() {
    assert_eq!(read_one("a:\t1\nb: x\ty\n"), json!({"a": 1, "b": "x\ty"}));
    // Many of them are repaired, one by one.
    let mut many = String::new();
    for i in 0..500 {
        let _ = writeln!(many, "k{i}:\tv{i}");
    }
    assert_eq!(read_one(&many)["k499"], "v499");
    // Only the tab saphyr stopped at is repaired: a quoted `:`-tab keeps its tab.
    assert_eq!(read_one("'k:\tq':\t\tv\n"), json!({"k:\tq": "v"}));
    let error = read_error("kind: Pod\nmetadata:\n\tname: t\n");
    assert!(error.starts_with("line 3: invalid YAML"), "{error}");
    assert!(read_error("a: .inf\n").contains("json: unsupported value: +Inf"));
}

/// Nesting is bounded (serde_json's limit of 128), also when aliases build it, so no document
/// can exhaust a thread's stack; the limit is reported with its line.
#[test]
fn nesting_is_bounded() {
    // The document's map and 126 sequences: as deep as serde_json reads JSON, and the webhook
    // an object; one more is refused by both.
    let deepest = format!("kind: Pod\nx: {}{}\n", "[".repeat(126), "]".repeat(126));
    assert!(read_stream(&deepest)[0].is_ok());
    let json = format!(r#"{{"x": {}{}}}"#, "[".repeat(126), "]".repeat(126));
    assert!(serde_json::from_str::<Value>(&json).is_ok());
    let deeper = format!("kind: Pod\nx: {}{}\n", "[".repeat(127), "]".repeat(127));
    assert!(read_error(&deeper).contains("nest deeper than 127 levels"));
    let json = format!(r#"{{"x": {}{}}}"#, "[".repeat(127), "]".repeat(127));
    assert!(serde_json::from_str::<Value>(&json).is_err());
    // saphyr bounds flow nesting itself; block nesting is bounded by the decoder.
    let flow = format!(
        "kind: Pod\nx: {}{}\n",
        "[".repeat(200_000),
        "]".repeat(200_000)
    );
    assert!(read_error(&flow).contains("recursion limit exceeded"));
    let block = format!("kind: Pod\nx:\n{}y\n", "- ".repeat(5_000));
    assert!(
        read_error(&block)
            .contains("line 3: invalid YAML: collections nest deeper than 127 levels")
    );
    let mut chain = String::from("a0: &a0 [x]\n");
    for level in 1..300 {
        let _ = writeln!(chain, "a{level}: &a{level} [*a{}]", level - 1);
    }
    let error = read_error(&chain);
    assert!(
        error.contains("nest deeper") || error.contains("excessive aliasing"),
        "{error}"
    );
}

/// A JSON stream numbers its objects and gives each the line it starts on.
#[test]
fn json_streams_count_lines_once() {
    let text = "{\"kind\": \"A\"}\n{\"kind\":\n \"B\"}\n\n\n{\"kind\": \"C\"}\n";
    let found: Vec<_> = read_stream(text)
        .into_iter()
        .map(|d| {
            let d = d.unwrap();
            (d.number, d.line)
        })
        .collect();
    assert_eq!(found, [(1, 1), (2, 2), (3, 6)]);
}

/// The strings a YAML 1.1 reader would take for something else, and the shapes of text that
/// YAML syntax gives meaning to.
fn ambiguous_string() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "off",
            "no",
            "yes",
            "on",
            "y",
            "n",
            "Y",
            "NO",
            "True",
            "~",
            "null",
            "",
            "1_000",
            "0400",
            "0x1F",
            "0o17",
            "0b101",
            "+12",
            "-0",
            "1e3",
            ".5",
            "1.",
            ".inf",
            "-.Inf",
            ".nan",
            "<<",
            "2001-12-14",
            "1:20",
            "---",
            "...",
            "- a",
            "-",
            "? x",
            ": x",
            "a: b",
            "a #b",
            "#c",
            "&a",
            "*a",
            "!tag",
            "|",
            ">",
            "'q'",
            "\"q\"",
            "%x",
            "@x",
            "`x",
            " lead",
            "trail ",
            "x:",
            "[a]",
            "{a}",
            "--appendonly",
            "::1",
            "a\tb",
            "line\nline",
            "two\n\n",
            "end\n",
            "\u{85}",
            "\u{2028}",
            "\u{feff}x",
            "\u{7f}",
            "é",
            "日本",
            "\r\n",
            "\\",
            "sh -c 'until nslookup db; do sleep 2; done'",
        ])
        .prop_map(str::to_owned),
        "[ -~\n\t]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(8).collect()),
    ]
}

fn arbitrary_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e12..1e12_f64).prop_map(super::read::float_json),
        ambiguous_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(ambiguous_string(), inner, 0..5)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// What `--mutated` writes, the kubectl-faithful reader reads back to the same values.
    #[test]
    fn written_yaml_reads_back_identically(map in prop::collection::btree_map(ambiguous_string(), arbitrary_value(), 1..6)) {
        let value = Value::Object(map.into_iter().collect());
        let text = to_yaml(&value);
        let documents = read_stream(&text);
        prop_assert_eq!(documents.len(), 1, "{}", text);
        let read = documents.into_iter().next().unwrap();
        prop_assert!(read.is_ok(), "{}\n{:?}", text, read);
        prop_assert_eq!(read.unwrap().value, value, "{}", text);
    }
}

/// The pieces of `text` as read through a buffer of `capacity` bytes: what each holds, or its
/// error.
fn pieces(text: &str, capacity: usize, max_document_bytes: usize) -> Vec<Result<String, String>> {
    super::Units::new(
        std::io::BufReader::with_capacity(capacity, text.as_bytes()),
        max_document_bytes,
    )
    .map(|unit| {
        let unit = unit.unwrap();
        match unit.read().into_iter().next() {
            Some(Err(error)) => Err(error.to_string()),
            _ => Ok(unit.text().to_owned()),
        }
    })
    .collect()
}

/// Reading a stream as it arrives cuts it where reading it whole does (`YAMLReader.Read`),
/// whatever the reads' sizes: a byte-order mark, blank lines before JSON, separators with
/// comments, a bad separator, a last line without a newline.
#[test]
fn streams_cut_alike_whatever_the_read_size() {
    let texts = [
        "\u{feff}kind: A\n---\nkind: B\n",
        "\n\n  \n{\"kind\": \"A\"}\n{\"kind\": \"B\"}",
        "# c\n---\nkind: A\n--- # two\nkind: B\n---x\nkind: C",
        "kind: A\n...\nkind: ignored\n---\n\n",
        "   \n\t\nkind: A\n",
    ];
    for text in texts {
        let whole: Vec<_> = super::units(text)
            .iter()
            .map(|unit| match unit.read().into_iter().next() {
                Some(Err(error)) => Err(error.to_string()),
                _ => Ok(unit.text().to_owned()),
            })
            .collect();
        for capacity in [1, 2, 3, 7, 64, 1 << 16] {
            assert_eq!(
                pieces(text, capacity, usize::MAX),
                whole,
                "{text:?} read {capacity} bytes at a time"
            );
        }
    }
}

/// A document over the limit is counted, not kept (one line of it may be a whole file), and
/// the documents after it are read.
#[test]
fn a_document_over_the_limit_is_an_error_and_the_next_is_read() {
    let text = format!(
        "kind: A\n---\nkind: B\ndata: {}\n---\nkind: C\n",
        "x".repeat(10_000)
    );
    let found = pieces(&text, 64, 100);
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(found[0], Ok("kind: A\n".to_owned()));
    assert_eq!(
        found[1],
        Err(
            "line 3: the document is 10015 bytes, more than the limit of 100 (--max-document-size)"
                .to_owned()
        )
    );
    assert_eq!(found[2], Ok("kind: C\n".to_owned()));
}
