//! JSON text for patch values, written without a JSON library: a patch's value is JSON text
//! (see [`crate::PatchOp`]), and most values a policy adds are strings or flat objects.

use std::fmt::Write as _;

/// `text` as a JSON string, quoted and escaped.
pub fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON object of `fields`, whose values are JSON text already (from [`string`], or
/// another [`object`]).
pub fn object<K: AsRef<str>, V: AsRef<str>>(fields: impl IntoIterator<Item = (K, V)>) -> String {
    let mut out = String::from("{");
    for (i, (key, value)) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&string(key.as_ref()));
        out.push(':');
        out.push_str(value.as_ref());
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_a_json_parser_reads_back() {
        let tricky = "a\"b\\c\nd\u{1}é/";
        let text = object([("k\"", string(tricky)), ("n", object([("x", "1")]))]);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["k\""], tricky);
        assert_eq!(value["n"]["x"], 1);
        assert_eq!(object(Vec::<(&str, &str)>::new()), "{}");
    }
}
