//! Rendering diagnostics for people (miette) and for programs (JSON).

use std::io::{IsTerminal, Write};

use miette::{GraphicalReportHandler, GraphicalTheme};
use plan_core::{Diagnostic, Diagnostics, Severity};
use serde::Serialize;

/// Whether to use colour on stderr: a terminal, and `NO_COLOR` unset.
fn color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Renders each diagnostic as a miette report with the labelled source.
pub fn diagnostics_text(diagnostics: &Diagnostics, out: &mut dyn Write) -> std::io::Result<()> {
    let theme = if color() {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_context_lines(1);
    for diagnostic in diagnostics.iter() {
        let mut text = String::new();
        if handler
            .render_report(&mut text, &diagnostic.for_display())
            .is_err()
        {
            text = format!("{}: {}\n", diagnostic.rule(), diagnostic.message());
        }
        writeln!(out, "{text}")?;
    }
    Ok(())
}

/// One diagnostic as JSON.
#[derive(Serialize)]
pub struct JsonDiagnostic<'a> {
    code: &'static str,
    severity: Severity,
    message: &'a str,
    file: Option<String>,
    line: Option<usize>,
    column: Option<usize>,
    labels: Vec<JsonLabel<'a>>,
    help: Option<&'a str>,
}

/// A labelled span as JSON: byte offset and length into the file.
#[derive(Serialize)]
pub struct JsonLabel<'a> {
    offset: usize,
    length: usize,
    text: &'a str,
}

impl<'a> From<&'a Diagnostic> for JsonDiagnostic<'a> {
    fn from(d: &'a Diagnostic) -> Self {
        let location = d.location();
        JsonDiagnostic {
            code: d.rule().code(),
            severity: d.severity(),
            message: d.message(),
            file: location.as_ref().map(|l| l.0.clone()),
            line: location.as_ref().map(|l| l.1),
            column: location.as_ref().map(|l| l.2),
            labels: d
                .labels()
                .iter()
                .map(|l| JsonLabel {
                    offset: l.span.offset,
                    length: l.span.len,
                    text: &l.text,
                })
                .collect(),
            help: d.help_text(),
        }
    }
}

/// "1 error", "2 warnings".
pub fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}
