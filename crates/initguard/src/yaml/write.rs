//! YAML that kubectl reads back to the same values.
//!
//! Block style, two-space indent, sequences not indented under their key (as `kubectl get -o
//! yaml` writes them). A string is written plain only when goyaml.v2 would read it back as that
//! string ([`super::resolve::resolve_untagged`] says so and nothing in it is YAML syntax);
//! other one-line text is single-quoted, multi-line text becomes a literal block where that is
//! exact, and anything else is double-quoted with escapes.

use std::fmt::Write as _;

use serde_json::Value;

use super::resolve::{Scalar, resolve_untagged};

/// One document, without a `---` line.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0, false),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0, false),
        other => {
            write_inline(&mut out, other, 0);
            out.push('\n');
        }
    }
    out
}

/// A stream: `---` before each document.
pub fn to_yaml_stream<'a>(values: impl IntoIterator<Item = &'a Value>) -> String {
    let mut out = String::new();
    for value in values {
        out.push_str("---\n");
        out.push_str(&to_yaml(value));
    }
    out
}

fn indent(out: &mut String, width: usize) {
    out.extend(std::iter::repeat_n(' ', width));
}

/// A mapping whose keys stand at `width`; with `inline`, the first key continues the current
/// line (after a sequence's `- `).
fn write_map(out: &mut String, map: &serde_json::Map<String, Value>, width: usize, inline: bool) {
    for (position, (key, value)) in map.iter().enumerate() {
        if position > 0 || !inline {
            indent(out, width);
        }
        write_string(out, key, None);
        out.push(':');
        match value {
            Value::Object(inner) if !inner.is_empty() => {
                out.push('\n');
                write_map(out, inner, width + 2, false);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                write_seq(out, items, width, false);
            }
            other => {
                out.push(' ');
                write_inline(out, other, width + 2);
                out.push('\n');
            }
        }
    }
}

fn write_seq(out: &mut String, items: &[Value], width: usize, inline: bool) {
    for (position, item) in items.iter().enumerate() {
        if position > 0 || !inline {
            indent(out, width);
        }
        out.push_str("- ");
        match item {
            Value::Object(inner) if !inner.is_empty() => write_map(out, inner, width + 2, true),
            Value::Array(inner) if !inner.is_empty() => write_seq(out, inner, width + 2, true),
            other => {
                write_inline(out, other, width + 2);
                out.push('\n');
            }
        }
    }
}

/// A scalar or an empty collection on the current line; a literal block's lines go at
/// `block_width`.
fn write_inline(out: &mut String, value: &Value, block_width: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_string(out, s, Some(block_width)),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

/// A string: plain, single-quoted (one line of printable text), as a literal block (values
/// only, `block_width` set), or double-quoted with escapes.
fn write_string(out: &mut String, text: &str, block_width: Option<usize>) {
    if is_plain_safe(text) {
        out.push_str(text);
    } else if text.chars().all(is_printable) {
        out.push('\'');
        out.push_str(&text.replace('\'', "''"));
        out.push('\'');
    } else if let Some(width) = block_width.filter(|_| is_literal_safe(text)) {
        write_literal(out, text, width);
    } else {
        write_double_quoted(out, text);
    }
}

/// Characters libyaml accepts unescaped in a stream and does not read as a line break
/// (`yaml_parser_update_buffer`'s printable check, without NEL, LS, PS and the BOM).
fn is_printable(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// Whether `text` written without quotes reads back as exactly `text`.
fn is_plain_safe(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    let second = text.chars().nth(1);
    let starts_ok = match first {
        // `-x` is plain; `-` alone or `- ` starts a sequence entry.
        '-' => second.is_some_and(|c| c != ' ') && !text.starts_with("---"),
        '?' | ':' | ',' | '[' | ']' | '{' | '}' | '#' | '&' | '*' | '!' | '|' | '>' | '\''
        | '"' | '%' | '@' | '`' | ' ' => false,
        _ => !text.starts_with("..."),
    };
    starts_ok
        && !text.ends_with([' ', ':'])
        && !text.contains(": ")
        && !text.contains(" #")
        && text.chars().all(is_printable)
        && text != "<<"
        && matches!(resolve_untagged(text), Scalar::String(_))
}

/// Whether `text` can be a literal block (`|`, `|-` or `|+`) that reads back exactly: several
/// lines of printable text without tabs, whose first line does not start with a space (the
/// indentation would be misread) and whose lines do not end in spaces (a line of spaces could
/// be read as an empty one).
fn is_literal_safe(text: &str) -> bool {
    text.contains('\n')
        && !text.starts_with([' ', '\n'])
        && text.chars().all(|c| c == '\n' || is_printable(c))
        && text.split('\n').all(|line| !line.ends_with(' '))
}

fn write_literal(out: &mut String, text: &str, width: usize) {
    let body = text.trim_end_matches('\n');
    let trailing = text.len() - body.len();
    out.push_str(match trailing {
        0 => "|-",
        1 => "|",
        _ => "|+",
    });
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            indent(out, width);
            out.push_str(line);
        }
    }
    // The caller ends the last content line; kept trailing line breaks are empty lines.
    for _ in 1..trailing.max(1) {
        out.push('\n');
    }
}

fn write_double_quoted(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_printable(c) => out.push(c),
            c if u32::from(c) <= 0xff => {
                let _ = write!(out, "\\x{:02X}", u32::from(c));
            }
            c if u32::from(c) <= 0xffff => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08X}", u32::from(c));
            }
        }
    }
    out.push('"');
}
