//! A conservative reading of init container commands for waits that never end.
//!
//! This is not a shell parser: it looks for the shapes that the Kubernetes docs and most
//! hand-written init containers use (`until nslookup …; do sleep 2; done`, `while true`,
//! `sleep infinity`, `tail -f /dev/null`) and for the marks of a bound (`timeout`, a counter
//! compared in a test, a `for` over a range).

/// Why `script` may never terminate, or `None` when it looks bounded.
pub fn unbounded_reason(script: &str) -> Option<&'static str> {
    let words: Vec<&str> = script
        .split(|c: char| {
            c.is_whitespace() || c == ';' || c == '&' || c == '|' || c == '(' || c == ')'
        })
        .filter(|w| !w.is_empty())
        .collect();
    let has = |word: &str| words.contains(&word);
    let has_pair = |a: &str, b: &str| words.windows(2).any(|w| w[0] == a && w[1] == b);
    if has("timeout") {
        return None;
    }
    if has_pair("sleep", "infinity") || has_pair("sleep", "inf") {
        return Some("`sleep infinity` never returns");
    }
    if words
        .windows(3)
        .any(|w| w[0] == "tail" && w[1] == "-f" && w[2] == "/dev/null")
    {
        return Some("`tail -f /dev/null` never returns");
    }
    let endless_while = words
        .windows(2)
        .any(|w| w[0] == "while" && matches!(w[1], "true" | ":" | "[" | "sleep"));
    let until = has("until");
    if !(endless_while || until) {
        return None;
    }
    let counted = words
        .iter()
        .any(|w| matches!(*w, "-lt" | "-le" | "-gt" | "-ge" | "-eq" | "seq"))
        || words
            .iter()
            .any(|w| w.starts_with("{1..") || w.contains("$(("));
    if counted {
        return None;
    }
    Some(if until {
        "the `until` loop has no retry bound"
    } else {
        "the `while` loop has no retry bound"
    })
}

#[cfg(test)]
mod tests {
    use super::unbounded_reason;

    #[test]
    fn flags_endless_waits() {
        for script in [
            "sh -c until nslookup myservice; do echo waiting; sleep 2; done",
            "sh -c while true; do curl -f http://db && break; sleep 1; done",
            "sleep infinity",
            "tail -f /dev/null",
            "sh -c while :; do sleep 5; done",
        ] {
            assert!(unbounded_reason(script).is_some(), "{script}");
        }
    }

    #[test]
    fn accepts_bounded_waits() {
        for script in [
            "sh -c for i in {1..100}; do sleep 1; if nslookup myservice; then exit 0; fi; done; exit 1",
            "timeout 60 sh -c until nslookup db; do sleep 2; done",
            "sh -c n=0; until nslookup db; do n=$((n+1)); [ $n -ge 30 ] && exit 1; sleep 2; done",
            "git clone https://github.com/moby/moby.git /work-dir/moby",
            "sleep 60",
            "wget -O /work-dir/index.html http://info.cern.ch",
        ] {
            assert_eq!(unbounded_reason(script), None, "{script}");
        }
    }
}
