//! The process's log output: JSON lines, or text for people.
//!
//! Logged values come from clients (a review's uid, name, namespace) and from files. In text
//! form a value holding a newline would start a new, forged log line, and escape sequences would
//! drive the reader's terminal; so every control character in a field is written escaped
//! (`\n`, `\u{1b}`), and colour is used only when stderr is a terminal. The JSON format escapes
//! by construction.

use std::fmt;
use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt as _;
use tracing_subscriber::fmt::format::{Writer, debug_fn};

use crate::cli::LogFormat;

/// Sends logs to stderr in `format`, filtered by `INITGUARD_LOG` (default `info`).
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("INITGUARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs
            .with_ansi(std::io::stderr().is_terminal())
            .fmt_fields(
                debug_fn(|writer: &mut Writer<'_>, field, value| {
                    let text = format!("{value:?}");
                    if field.name() == "message" {
                        write_escaped(writer, &text)
                    } else {
                        write!(writer, "{field}=")?;
                        write_escaped(writer, &text)
                    }
                })
                .delimited(" "),
            )
            .init(),
    }
}

/// `text` with every control character escaped, so that it stays on its line.
fn write_escaped(writer: &mut impl fmt::Write, text: &str) -> fmt::Result {
    for c in text.chars() {
        if c.is_control() {
            write!(writer, "{}", c.escape_default())?;
        } else {
            fmt::Write::write_char(writer, c)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_start_a_line_or_drive_a_terminal() {
        let mut out = String::new();
        write_escaped(
            &mut out,
            "uid\n2026-12-01T00:00:00Z ERROR forged\u{1b}[31m\r\t",
        )
        .unwrap();
        assert_eq!(
            out,
            "uid\\n2026-12-01T00:00:00Z ERROR forged\\u{1b}[31m\\r\\t"
        );
        assert!(!out.contains('\n') && !out.contains('\u{1b}'));
    }
}
