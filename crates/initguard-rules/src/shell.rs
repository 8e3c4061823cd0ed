//! A conservative reading of init container commands for waits that never end.
//!
//! Commands are read as a shell reads them, far enough to tell code from text: a shell's
//! `-c` script is split into words with quotes, escapes, comments and here-documents
//! honoured, so a comment saying "until" or a quoted `while true` is not a loop. Then it looks
//! for the shapes that the Kubernetes docs and most hand-written init containers use
//! (`until nslookup …; do sleep 2; done`, `while true`, `sleep infinity`, `tail -f /dev/null`)
//! and for the marks of a bound (`timeout`, a counter compared in a test, a `for` over a range,
//! arithmetic).

/// One word of a command, and whether any of it was quoted (quoted words are never keywords).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Word {
    text: String,
    quoted: bool,
}

impl Word {
    fn is(&self, keyword: &str) -> bool {
        !self.quoted && self.text == keyword
    }
}

/// A here-document opened on the current line: its body starts on the next one.
#[derive(Debug)]
struct Heredoc {
    /// Empty until the word after `<<` is read.
    delimiter: String,
    /// `<<-`: the body's lines may be indented with tabs.
    strip_tabs: bool,
}

/// The words read so far and the one being read.
#[derive(Debug, Default)]
struct Lexer {
    words: Vec<Word>,
    current: String,
    quoted: bool,
    started: bool,
    heredocs: Vec<Heredoc>,
    /// How many words there were at the last `<<`: the next word is its delimiter.
    delimiter_at: Option<usize>,
}

impl Lexer {
    /// Ends the current word, if one was started; the word after `<<` becomes the pending
    /// here-document's delimiter instead of a command word.
    fn finish_word(&mut self) {
        if self.started {
            let word = Word {
                text: std::mem::take(&mut self.current),
                quoted: self.quoted,
            };
            match (self.delimiter_at.take(), self.heredocs.last_mut()) {
                (Some(_), Some(heredoc)) => heredoc.delimiter = word.text,
                _ => self.words.push(word),
            }
        }
        self.quoted = false;
        self.started = false;
    }

    fn push(&mut self, c: char) {
        self.started = true;
        self.current.push(c);
    }
}

/// Splits a shell script into words; operators (`;`, `&`, `|`, `(`, `)`, newlines) end words
/// and are left out. Comments and here-document bodies are skipped; `$(` and `$((` stay part
/// of their word, so arithmetic is seen.
fn words(script: &str) -> Vec<Word> {
    let chars: Vec<char> = script.chars().collect();
    let mut lexer = Lexer::default();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '(' if lexer.current.ends_with('$') || lexer.current.ends_with("$(") => {
                lexer.push('(');
            }
            ' ' | '\t' | ';' | '&' | '|' | '(' | ')' => lexer.finish_word(),
            '\n' => {
                lexer.finish_word();
                i = skip_heredocs(&chars, i + 1, &mut lexer.heredocs);
                continue;
            }
            '#' if !lexer.started => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            '<' if chars.get(i + 1) == Some(&'<') && chars.get(i + 2) != Some(&'<') => {
                lexer.finish_word();
                i += 2;
                let strip_tabs = chars.get(i) == Some(&'-');
                if strip_tabs {
                    i += 1;
                }
                lexer.delimiter_at = Some(lexer.words.len());
                lexer.heredocs.push(Heredoc {
                    delimiter: String::new(),
                    strip_tabs,
                });
                continue;
            }
            quote @ ('\'' | '"') => {
                lexer.started = true;
                lexer.quoted = true;
                i += 1;
                while i < chars.len() && chars[i] != quote {
                    if quote == '"' && chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    lexer.current.push(chars[i]);
                    i += 1;
                }
            }
            '\\' => {
                lexer.started = true;
                lexer.quoted = true;
                if let Some(next) = chars.get(i + 1) {
                    if *next != '\n' {
                        lexer.current.push(*next);
                    }
                    i += 1;
                }
            }
            c => lexer.push(c),
        }
        i += 1;
    }
    lexer.finish_word();
    lexer.words
}

/// Skips the bodies of the here-documents opened on the line that just ended; returns where
/// the next line of code starts.
fn skip_heredocs(chars: &[char], mut at: usize, pending: &mut Vec<Heredoc>) -> usize {
    for heredoc in pending.drain(..) {
        while at < chars.len() {
            let end = chars[at..]
                .iter()
                .position(|c| *c == '\n')
                .map_or(chars.len(), |p| at + p);
            let line: String = chars[at..end].iter().collect();
            at = end + 1;
            let line = if heredoc.strip_tabs {
                line.trim_start_matches('\t')
            } else {
                &line
            };
            if line == heredoc.delimiter {
                break;
            }
        }
    }
    at.min(chars.len())
}

/// The words of a container's command and arguments: a shell's `-c` script is read as a
/// script, every other argument is one word.
fn command_words(argv: &[&str]) -> Vec<Word> {
    let is_shell = argv.first().is_some_and(|program| {
        let name = program.rsplit('/').next().unwrap_or(program);
        matches!(name, "sh" | "bash" | "ash" | "dash" | "zsh" | "ksh")
    });
    let mut found = Vec::new();
    let mut script_next = false;
    for arg in argv {
        if script_next {
            found.extend(words(arg));
            script_next = false;
            continue;
        }
        if is_shell && arg.starts_with('-') && !arg.starts_with("--") && arg.contains('c') {
            script_next = true;
        }
        found.push(Word {
            text: (*arg).to_owned(),
            quoted: false,
        });
    }
    found
}

/// Why the command `argv` may never terminate, or `None` when it looks bounded.
pub fn unbounded_reason(argv: &[&str]) -> Option<&'static str> {
    let words = command_words(argv);
    let has = |keyword: &str| words.iter().any(|w| w.is(keyword));
    let has_pair = |a: &str, b: &str| {
        words
            .windows(2)
            .any(|w| w[0].is(a) && w[1].text == b && !w[1].quoted)
    };
    if has("timeout") {
        return None;
    }
    if has_pair("sleep", "infinity") || has_pair("sleep", "inf") {
        return Some("`sleep infinity` never returns");
    }
    if words
        .windows(3)
        .any(|w| w[0].is("tail") && w[1].is("-f") && w[2].text == "/dev/null")
    {
        return Some("`tail -f /dev/null` never returns");
    }
    let loop_found = words.windows(2).find_map(|pair| {
        if pair[0].is("until") {
            Some("the `until` loop has no retry bound")
        } else if pair[0].is("while") && ["true", ":", "[", "sleep"].iter().any(|k| pair[1].is(k)) {
            Some("the `while` loop has no retry bound")
        } else {
            None
        }
    })?;
    let counted = words.iter().any(|w| {
        !w.quoted
            && (matches!(
                w.text.as_str(),
                "-lt" | "-le" | "-gt" | "-ge" | "-eq" | "seq"
            ) || w.text.starts_with("{1..")
                || w.text.contains("$(("))
    });
    (!counted).then_some(loop_found)
}

#[cfg(test)]
mod tests {
    use super::unbounded_reason;

    fn sh(script: &str) -> Option<&'static str> {
        unbounded_reason(&["sh", "-c", script])
    }

    #[test]
    fn flags_endless_waits() {
        for script in [
            "until nslookup myservice; do echo waiting; sleep 2; done",
            "while true; do curl -f http://db && break; sleep 1; done",
            "while :; do sleep 5; done",
            "set -e\n# wait for the db\nuntil nc -z db 5432\ndo sleep 1\ndone",
        ] {
            assert!(sh(script).is_some(), "{script}");
        }
        assert!(unbounded_reason(&["sleep", "infinity"]).is_some());
        assert!(unbounded_reason(&["tail", "-f", "/dev/null"]).is_some());
        assert!(
            unbounded_reason(&["/bin/bash", "-ec", "until [ -f /ready ]; do sleep 1; done"])
                .is_some()
        );
    }

    #[test]
    fn names_the_loop_it_found() {
        assert_eq!(
            sh("while true; do sleep 1; done"),
            Some("the `while` loop has no retry bound")
        );
        assert_eq!(
            sh("until nslookup db; do sleep 1; done"),
            Some("the `until` loop has no retry bound")
        );
    }

    /// An arithmetic counter alone is a bound.
    #[test]
    fn arithmetic_is_a_bound() {
        assert_eq!(
            sh("until nslookup db || [ $((n=n+1)) = 30 ]; do sleep 1; done"),
            None
        );
    }

    #[test]
    fn accepts_bounded_waits() {
        for script in [
            "for i in {1..100}; do sleep 1; if nslookup myservice; then exit 0; fi; done; exit 1",
            "n=0; until nslookup db; do n=$((n+1)); [ $n -ge 30 ] && exit 1; sleep 2; done",
        ] {
            assert_eq!(sh(script), None, "{script}");
        }
        for argv in [
            &[
                "timeout",
                "60",
                "sh",
                "-c",
                "until nslookup db; do sleep 2; done",
            ][..],
            &[
                "git",
                "clone",
                "https://github.com/moby/moby.git",
                "/work-dir/moby",
            ],
            &["sleep", "60"],
            &["wget", "-O", "/work-dir/index.html", "http://info.cern.ch"],
        ] {
            assert_eq!(unbounded_reason(argv), None, "{argv:?}");
        }
    }

    #[test]
    fn comments_quotes_and_heredocs_are_not_code() {
        for script in [
            "# retry until the service answers\nnslookup db",
            "echo 'until ready'; nslookup db",
            "echo \"while true\" > /tmp/x",
            "cat <<EOF > /etc/app.conf\nwhile true\nuntil done\nEOF\nnslookup db",
            "cat <<-'END'\n\tuntil\n\tEND\ntrue",
            "echo waiting \\until",
        ] {
            assert_eq!(sh(script), None, "{script:?}");
        }
        // A space after `<<` is allowed.
        assert_eq!(sh("cat << 'EOF' > /x\nuntil\nEOF\nnslookup db"), None);
        // Code after a here-document is still read.
        assert!(sh("cat <<EOF\nx\nEOF\nuntil nslookup db; do sleep 1; done").is_some());
    }
}
