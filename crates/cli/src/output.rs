//! Presentation: a table on a terminal, one JSON document with `--output json`; colour only on a
//! terminal and never with `NO_COLOR`; errors with their name, message and fix.

use std::io::IsTerminal;

use ossnap_core::Error;
use serde_json::{json, Value};

use crate::args::OutputMode;
use crate::exit::{fix, Exit};

/// What a command found: the same facts for people (`text`) and for scripts (`json`).
#[derive(Debug)]
pub struct Report {
    pub json: Value,
    pub text: String,
    pub exit: Exit,
}

/// Whether to colour a stream.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    color: bool,
}

impl Style {
    /// Colour when `terminal` and `NO_COLOR` is unset or empty (no-color.org).
    pub fn new(terminal: bool) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        Style {
            color: terminal && !no_color,
        }
    }

    pub fn stdout() -> Style {
        Style::new(std::io::stdout().is_terminal())
    }

    pub fn stderr() -> Style {
        Style::new(std::io::stderr().is_terminal())
    }

    /// `text` in the colour its leading word calls for (PASS green, WARN yellow, FAIL red, ...).
    pub fn status(&self, text: &str) -> String {
        let code = match text.split_whitespace().next().unwrap_or_default() {
            "PASS" | "SUCCESS" | "kept" => "32",
            "WARN" | "IN_PROGRESS" | "NOT" | "skipped" => "33",
            "FAIL" | "FAILED" | "PARTIAL" | "INCOMPATIBLE" | "deleted" | "error" => "31",
            _ => return text.to_string(),
        };
        self.paint(text, code)
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint(text, "1")
    }

    fn paint(&self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// Columns padded to their widest cell; status words coloured after padding.
pub fn table(style: Style, headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| {
                let pad = width.saturating_sub(cell.chars().count());
                format!("{}{}", style.status(cell), " ".repeat(pad))
            })
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut text = style.bold(&line(headers.iter().map(|h| h.to_string()).collect()));
    text.push('\n');
    for row in rows {
        text.push_str(&line(row.clone()));
        text.push('\n');
    }
    text
}

/// `name: value` lines, the names aligned.
pub fn fields(style: Style, pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(name, value)| format!("{:width$}  {}\n", name, style.status(value)))
        .collect()
}

pub fn print(mode: OutputMode, report: &Report) {
    match mode {
        OutputMode::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report.json).expect("a JSON value prints")
        ),
        OutputMode::Table => print!("{}", report.text),
    }
}

/// The error as the functions report it (its name and message) and its fix: on stdout as the
/// one JSON document with `--output json`, else on stderr.
pub fn print_error(mode: OutputMode, error: &Error) -> Exit {
    let kind = error.kind();
    match mode {
        OutputMode::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "error": {"type": kind.name(), "message": error.message(), "fix": fix(kind)}
            }))
            .expect("a JSON value prints")
        ),
        OutputMode::Table => {
            let style = Style::stderr();
            eprintln!(
                "{} {}: {}\n  fix: {}",
                style.status("error"),
                style.bold(kind.name()),
                error.message(),
                fix(kind)
            );
        }
    }
    Exit::for_error(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_without_colour() {
        let style = Style { color: false };
        let text = table(
            style,
            &["NAME", "STATE"],
            &[
                vec!["a-long-name".into(), "SUCCESS".into()],
                vec!["b".into(), "FAILED".into()],
            ],
        );
        assert_eq!(
            text,
            "NAME         STATE\na-long-name  SUCCESS\nb            FAILED\n"
        );
    }

    #[test]
    fn colour_wraps_status_words_only() {
        let style = Style { color: true };
        assert_eq!(style.status("PASS"), "\x1b[32mPASS\x1b[0m");
        assert_eq!(style.status("ossnap-1"), "ossnap-1");
    }
}
