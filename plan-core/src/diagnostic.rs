//! Problems found in a plan, as miette diagnostics that point into the file.
//!
//! Every problem has a stable [`Rule`] code (`cutover::unknown-host`, ...),
//! a severity, labelled spans and a hint on how to fix it. The loader and the
//! verifier collect all of them in one pass; the CLI renders them.

use std::fmt;
use std::sync::Arc;

use miette::{LabeledSpan, SourceCode};

use crate::span::Span;

/// The text of a plan file and the name it is shown under.
#[derive(Clone, Debug)]
pub struct Source {
    name: String,
    text: Arc<str>,
    /// For an excerpt: the 0-based line and column where it starts in the
    /// file, so reported positions stay those of the file.
    origin: Option<(usize, usize)>,
}

impl Source {
    /// A source named `name` (usually the path as the user typed it).
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> Self {
        Source {
            name: name.into(),
            text: text.into(),
            origin: None,
        }
    }

    /// The name shown in diagnostics.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text behind `span`, or "" when the span is out of range.
    pub fn slice(&self, span: Span) -> &str {
        self.text.get(span.offset..span.end()).unwrap_or("")
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = self.text.get(..offset).unwrap_or(&self.text);
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }
}

/// `text` with the characters a terminal would not show as they are
/// escaped (`\u{202e}`): controls (but newline and tab), bidirectional
/// overrides and isolates, zero-width characters and the byte-order mark.
/// A plan value quoted in a message can then never reorder or hide what
/// the operator reads.
pub fn visible(text: &str) -> String {
    let hidden = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
    };
    if !text.chars().any(hidden) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if hidden(c) {
                format!("\\u{{{:x}}}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// How bad a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look; the plan is still valid.
    Warning,
    /// The plan is invalid and will not run.
    Error,
}

macro_rules! rules {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $severity:ident; )*) => {
        /// Every rule the loader and the verifier check, with its stable code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Rule {
            $( $(#[$doc])* $variant, )*
        }

        impl Rule {
            /// All rules, in documentation order.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant),*];

            /// The stable code, e.g. `cutover::unknown-host`.
            pub fn code(self) -> &'static str {
                match self { $(Rule::$variant => concat!("cutover::", $code),)* }
            }

            /// How bad a breach of this rule is.
            pub fn severity(self) -> Severity {
                match self { $(Rule::$variant => Severity::$severity,)* }
            }
        }
    };
}

rules! {
    /// The file cannot be read as a plan at all (I/O, size, encoding).
    Unreadable = "unreadable", Error;
    /// The RON text is malformed, or a value has the wrong type or an unknown field.
    Syntax = "syntax", Error;
    /// A value is malformed: a duration, address, time, name or number.
    InvalidValue = "invalid-value", Error;
    /// A step, phase, host or rollback point name is used twice.
    DuplicateId = "duplicate-id", Error;
    /// A step names a host the plan does not declare.
    UnknownHost = "unknown-host", Error;
    /// A step names a DNS record the plan does not declare.
    UnknownRecord = "unknown-record", Error;
    /// `after` names a step that does not exist.
    UnknownStep = "unknown-step", Error;
    /// A command uses `{{name}}` but no such variable is defined.
    UnknownVariable = "unknown-variable", Error;
    /// `--set` or `CUTOVER_VAR_*` names a variable the plan does not define.
    UnknownSetting = "unknown-setting", Error;
    /// Variables whose values refer to each other in a cycle.
    VariableCycle = "variable-cycle", Error;
    /// A DNS step is used but the plan has no `dns` section.
    NoDns = "no-dns", Error;
    /// `after` names a step in a later phase.
    AfterLaterPhase = "after-later-phase", Error;
    /// The `after` relation has a cycle.
    AfterCycle = "after-cycle", Error;
    /// A step that can change something has no revert.
    MissingRevert = "missing-revert", Error;
    /// A revert or check kind that cannot be used with this action.
    IncompatibleRevert = "incompatible", Error;
    /// An irreversible step comes before the point of no return.
    IrreversibleBeforePointOfNoReturn = "irreversible-before-point-of-no-return", Error;
    /// A rollback point after the point of no return can never be rolled back to.
    RollbackPointAfterPointOfNoReturn = "rollback-point-after-point-of-no-return", Error;
    /// More than one point of no return.
    SecondPointOfNoReturn = "second-point-of-no-return", Error;
    /// Downtime begins and never ends.
    DowntimeNeverEnds = "downtime-never-ends", Error;
    /// Downtime ends before it begins, or begins twice.
    DowntimeOrder = "downtime-order", Error;
    /// A record is switched sooner after a TTL change than the old TTL allows.
    TtlNotExpired = "ttl-not-expired", Error;
    /// A deadline is below the step's minimum duration.
    DeadlineBelowMinimum = "deadline-below-minimum", Error;
    /// Phases are not in the order of their anchors.
    PhaseOrder = "phase-order", Error;
    /// A `Verify` step has no check.
    VerifyWithoutCheck = "verify-without-check", Error;
    /// Exploring every single and double fault found a run that does not end safely.
    UnsafeRun = "unsafe-run", Error;
    /// A step inside the downtime window has no check.
    MissingCheck = "missing-check", Warning;
    /// A record with a long TTL is switched: users may see the old address for that long.
    LongTtlSwitch = "long-ttl-switch", Warning;
    /// A rollback can undo a step whose revert loses what users did since (`loses`).
    LossyRevert = "lossy-revert", Warning;
    /// The plan has no step to run.
    NothingToRun = "nothing-to-run", Warning;
    /// A `{{name}}` in a variable's value that never expands: no such
    /// variable, or a malformed placeholder; the value keeps it as written.
    NeverExpands = "never-expands", Warning;
    /// The announced window is shorter than the simulated P95 downtime (`cutover check` adds it; see the `simulations` crate).
    AnnouncedWindowShort = "announced-window-short", Warning;
    /// The downtime budget is at or below the simulated P50 downtime: most runs would roll back on their own.
    DowntimeBudgetShort = "downtime-budget-short", Warning;
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One labelled place in the file.
#[derive(Clone, Debug)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What about it (may be empty).
    pub text: String,
}

/// One problem in a plan.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    rule: Rule,
    message: String,
    labels: Vec<Label>,
    help: Option<String>,
    source: Option<Source>,
}

impl Diagnostic {
    /// A problem breaking `rule`.
    pub fn new(rule: Rule, message: impl Into<String>) -> Self {
        Diagnostic {
            rule,
            message: visible(&message.into()),
            labels: Vec::new(),
            help: None,
            source: None,
        }
    }

    /// Points at `span` with `text`.
    pub fn label(mut self, span: Span, text: impl Into<String>) -> Self {
        let text = visible(&text.into());
        self.labels.push(Label { span, text });
        self
    }

    /// Says how to fix it.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(visible(&help.into()));
        self
    }

    /// The rule broken.
    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// Error or warning.
    pub fn severity(&self) -> Severity {
        self.rule.severity()
    }

    /// The one-line message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The labelled places.
    pub fn labels(&self) -> &[Label] {
        &self.labels
    }

    /// The hint, if any.
    pub fn help_text(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// A copy fit for a terminal: when a labelled line is very long or holds
    /// control characters (minified or binary input), the source is cropped
    /// to a window around the first label so the report stays one screen.
    pub fn for_display(&self) -> Diagnostic {
        const MAX_LINE: usize = 160;
        const CONTEXT: usize = 60;
        let (Some(source), Some(first)) = (&self.source, self.labels.first()) else {
            return self.clone();
        };
        let text = source.text();
        let line_of = |offset: usize| {
            let offset = offset.min(text.len());
            let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
            let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
            (start, end)
        };
        let unfit = |(start, end): (usize, usize)| {
            end - start > MAX_LINE
                || text[start..end]
                    .chars()
                    .any(|c| c.is_control() && c != '\t')
        };
        if !self.labels.iter().any(|l| unfit(line_of(l.span.offset))) {
            return self.clone();
        }
        let (line_start, line_end) = line_of(first.span.offset);
        let floor = |mut i: usize| {
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        let start = floor(first.span.offset.saturating_sub(CONTEXT).max(line_start));
        let end = floor((first.span.offset + first.span.len.min(CONTEXT) + CONTEXT).min(line_end));
        // Same byte length, so the labels' offsets still fit.
        let window: String = text[start..end]
            .chars()
            .map(|c| {
                if c.is_control() && c != '\t' {
                    "?".repeat(c.len_utf8())
                } else {
                    c.to_string()
                }
            })
            .collect();
        let (line, col) = source.line_col(start);
        // Positions stay the file's (see `origin`), so the name stays too.
        let name = source.name().to_owned();
        let labels = self
            .labels
            .iter()
            .filter(|l| l.span.offset >= start && l.span.offset <= end)
            .map(|l| {
                let offset = l.span.offset - start;
                let len = l.span.len.min(end.saturating_sub(l.span.offset));
                Label {
                    span: Span::new(offset, len),
                    text: l.text.clone(),
                }
            })
            .collect();
        let mut excerpt = Source::new(name, window);
        excerpt.origin = Some((line - 1, col - 1));
        Diagnostic {
            labels,
            source: Some(excerpt),
            ..self.clone()
        }
    }

    /// `file:line:col` of the first label, for one-line and JSON output.
    pub fn location(&self) -> Option<(String, usize, usize)> {
        let source = self.source.as_ref()?;
        let label = self.labels.first()?;
        let (line, col) = source.line_col(label.span.offset);
        Some((source.name().to_owned(), line, col))
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.rule.code()))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.rule.severity() {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source
            .as_ref()
            .filter(|_| !self.labels.is_empty())
            .map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.labels.iter().enumerate().map(|(i, l)| {
            let text = (!l.text.is_empty()).then(|| l.text.clone());
            if i == 0 {
                LabeledSpan::new_primary_with_span(text, l.span)
            } else {
                LabeledSpan::new_with_span(text, l.span)
            }
        })))
    }
}

impl SourceCode for Source {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let contents = self
            .text
            .read_span(span, context_lines_before, context_lines_after)?;
        let (line, column) = match self.origin {
            Some((line, column)) if contents.line() == 0 => (line, column + contents.column()),
            Some((line, _)) => (line + contents.line(), contents.column()),
            None => (contents.line(), contents.column()),
        };
        Ok(Box::new(
            miette::MietteSpanContents::new_named(
                self.name.clone(),
                contents.data(),
                *contents.span(),
                line,
                column,
                contents.line_count(),
            )
            .with_language("ron"),
        ))
    }
}

/// All problems found in one plan, errors and warnings.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    /// Adds a problem found outside plan-core (e.g. by rehearsal); call
    /// [`Diagnostics::attach`] afterwards to tie it to the plan's text.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    /// Ties every problem without a source to `source`, and sorts them by
    /// their place in the file.
    pub fn attach(&mut self, source: &Source) {
        for d in &mut self.0 {
            if d.source.is_none() {
                d.source = Some(source.clone());
            }
        }
        // Stable order: by position in the file, errors and warnings interleaved.
        self.0
            .sort_by_key(|d| d.labels.first().map_or(usize::MAX, |l| l.span.offset));
    }

    /// Keeps only the errors.
    pub fn retain_errors(&mut self) {
        self.0.retain(|d| d.severity() == Severity::Error);
    }

    /// Whether any problem is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity() == Severity::Error)
    }

    /// How many errors.
    pub fn error_count(&self) -> usize {
        self.0
            .iter()
            .filter(|d| d.severity() == Severity::Error)
            .count()
    }

    /// How many warnings.
    pub fn warning_count(&self) -> usize {
        self.0
            .iter()
            .filter(|d| d.severity() == Severity::Warning)
            .count()
    }

    /// Iterates over the problems, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
