//! The announcement mail: the estimate and the plan turned into words.
//!
//! [`Facts`] gathers what the mail says: what moves and why (the plan's
//! `service` and `description`), when (a start and the time zones to show
//! it in), how long users are down (the simulated median), the window to
//! announce (a quantile of the simulated downtime, rollbacks included), the
//! chance of a rollback, what users notice (the `notice` of the steps inside
//! the downtime) and what follows (the `Manual` steps after it, the notices
//! of later steps). [`compose`] writes it as plain text or Markdown; figures
//! are rounded for people (to 5 minutes; the announced end up, never down).
//!
//! ```
//! use std::time::Duration;
//! use simulations::announce::{compose, Facts, Figures, Format};
//!
//! let start: jiff::Timestamp = "2026-12-01T14:00:00Z".parse().unwrap();
//! let facts = Facts {
//!     service: "www.example.org".into(),
//!     name: "web: old -> new".into(),
//!     description: None,
//!     start,
//!     zones: vec![("Europe/Berlin".into(), jiff::tz::TimeZone::get("Europe/Berlin").unwrap())],
//!     outage_begins: Duration::ZERO,
//!     figures: Figures {
//!         expected: Duration::from_secs(17 * 60),
//!         announced: Duration::from_secs(41 * 60),
//!         confidence: 0.95,
//!         rollback_probability: 0.02,
//!         open_outage_probability: 0.0,
//!         runs: 10_000,
//!         phase: None,
//!         fresh_expected: Duration::from_secs(17 * 60),
//!         journals: 0,
//!     },
//!     notices: vec!["The site is unavailable.".into()],
//!     follow_up: vec![],
//!     rollback_costs: vec![],
//!     outages: vec![],
//! };
//! let mail = compose(&facts, Format::Text);
//! assert!(mail.contains("about 15 minutes"));
//! assert!(mail.contains("14:00 to 14:45 UTC"));
//! assert!(mail.contains("15:00 to 15:45 CET"));
//! ```

use std::fmt::Write as _;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ZonedDateTime};
use plan_core::duration::format_duration;
use plan_core::{Diagnostic, Downtime, Entry, Plan, Rule};

use crate::{Estimate, Options, SimError, DEFAULT_SEED};

/// How the mail is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A plain-text mail, wrapped at 72 columns, `Subject:` first.
    Text,
    /// Markdown, for a ticket, a wiki or a mail client that renders it.
    Markdown,
}

/// The figures the estimate contributes.
#[derive(Clone, Debug, PartialEq)]
pub struct Figures {
    /// The median downtime (P50): what users should expect. Like
    /// `announced`, for the worst-placed user (whose resolver keeps the old
    /// address for the whole TTL).
    pub expected: Duration,
    /// The median downtime of a user whose client looks the name up
    /// afresh: most users are back this soon.
    pub fresh_expected: Duration,
    /// How many journals of earlier runs calibrated the estimate (0: the
    /// plan's own models).
    pub journals: usize,
    /// The downtime quantile at `confidence`, rollbacks included.
    pub announced: Duration,
    /// The confidence of `announced`, e.g. 0.95.
    pub confidence: f64,
    /// The share of runs that rolled back.
    pub rollback_probability: f64,
    /// The share of runs that stopped with users still down (halted, or
    /// rolled back to a point inside the downtime): their outage lasts until
    /// someone acts, longer than the figures say.
    pub open_outage_probability: f64,
    /// How many runs the estimate rests on.
    pub runs: u64,
    /// The phase simulated, or `None` for the whole plan.
    pub phase: Option<String>,
}

impl Figures {
    /// The figures of `estimate`, announcing its `confidence` quantile.
    pub fn from_estimate(
        estimate: &Estimate,
        confidence: f64,
        phase: Option<String>,
        journals: usize,
    ) -> Figures {
        Figures {
            expected: estimate.downtime.p50,
            fresh_expected: estimate.downtime_fresh.p50,
            journals,
            announced: estimate.downtime_quantile(confidence),
            confidence,
            rollback_probability: estimate.rollback_probability,
            open_outage_probability: estimate.open_outage_probability,
            runs: estimate.runs,
            phase,
        }
    }
}

/// The phase whose runs decide the downtime: the one holding both the
/// `downtime: Begins` and the `Ends` step. Simulating only it leaves out
/// failures of earlier phases, which roll back before users are down and
/// would count as runs without downtime. `None` when the outage spans
/// phases (or the plan has none): then the whole plan is simulated.
pub fn downtime_phase(plan: &Plan) -> Option<&str> {
    let holds = |marker: Downtime| {
        plan.phases.iter().find(|p| {
            p.entries
                .iter()
                .any(|e| matches!(e, Entry::Step(s) if s.downtime == Some(marker) && s.pending()))
        })
    };
    match (holds(Downtime::Begins), holds(Downtime::Ends)) {
        (Some(b), Some(e)) if b.name == e.name => Some(&b.name),
        _ => None,
    }
}

/// How many runs the estimate behind `cutover check`'s window rule makes:
/// enough for the P95 to within about a percent, few enough to stay fast.
pub const CHECK_RUNS: u64 = 10_000;

/// The rules that need the estimate behind `cutover check` ([`CHECK_RUNS`]
/// runs, the default seed, the phase that holds the downtime), from one
/// simulation: `cutover::announced-window-short` (the announced window is
/// shorter than the P95 downtime) and `cutover::downtime-budget-short` (the
/// window's `downtime_budget` is at or below the P50 downtime: in half the
/// rehearsals or more users reach it, and the run rolls back).
pub fn estimate_rules(
    plan: &Plan,
    measured: Option<&crate::Measured>,
) -> Result<Vec<Diagnostic>, SimError> {
    let mut found = Vec::new();
    if !plan.steps().any(|s| s.pending() && s.downtime.is_some()) {
        return Ok(found);
    }
    let phase = downtime_phase(plan).map(str::to_owned);
    let options = Options {
        runs: CHECK_RUNS,
        seed: DEFAULT_SEED,
        phase,
        measured: measured.cloned(),
        ..Options::default()
    };
    let estimate = crate::estimate(plan, &options)?;
    let runs_of = options
        .phase
        .as_ref()
        .map_or("the plan".to_owned(), |p| format!("phase `{p}`"));
    if let (Some(budget), Some(span)) = (plan.window.downtime_budget, plan.window.budget_span) {
        let p50 = estimate.downtime.p50;
        if budget <= p50 {
            let whole = |d: Duration| format_duration(Duration::from_secs(d.as_secs()));
            found.push(
                Diagnostic::new(
                    Rule::DowntimeBudgetShort,
                    format!(
                        "the downtime budget of {} is at or below the simulated P50 downtime of {} ({} runs of {runs_of}): in half the rehearsals or more users reach it, and the run rolls back on its own ({:.0}% of runs roll back)",
                        whole(budget),
                        whole(p50),
                        crate::thousands(CHECK_RUNS),
                        estimate.rollback_probability * 100.0,
                    ),
                )
                .label(span, "the budget")
                .help("a budget gives up on a cutover that runs long: set it above the usual outage (`cutover simulate` shows the P50 and P95), or shorten the outage"),
            );
        }
    }
    let p95 = estimate.downtime.p95;
    if plan.window.announced >= p95 {
        return Ok(found);
    }
    let announced = format_duration(plan.window.announced);
    found.push(
        Diagnostic::new(
            Rule::AnnouncedWindowShort,
            format!(
                "the announced window of {announced} is shorter than the simulated P95 downtime of {} ({} runs of {}): in more than 1 run in 20, users are down for longer than announced",
                format_duration(Duration::from_secs(p95.as_secs())),
                crate::thousands(CHECK_RUNS),
                options.phase.as_ref().map_or("the plan".to_owned(), |p| format!("phase `{p}`")),
            ),
        )
        .label(plan.window.announced_span, format!("announced {announced}; the P95 downtime is {}", format_duration(Duration::from_secs(p95.as_secs()))))
        .help(format!(
            "announce at least {} (the P95, rollbacks included, rounded up), or shorten the outage; `cutover simulate` shows which steps drive the tail",
            format_duration(round_up(p95)),
        )),
    );
    Ok(found)
}

/// Everything the announcement says.
#[derive(Clone, Debug)]
pub struct Facts {
    /// The service as users know it (`lists.wikimedia.org`).
    pub service: String,
    /// The plan's name.
    pub name: String,
    /// Why it moves, from the plan.
    pub description: Option<String>,
    /// When the window starts.
    pub start: Timestamp,
    /// Zones to show the times in besides UTC: (name as given, zone).
    pub zones: Vec<(String, TimeZone)>,
    /// How long after the start users lose the service (likely).
    pub outage_begins: Duration,
    /// From the estimate.
    pub figures: Figures,
    /// What users notice while they are down, in plan order.
    pub notices: Vec<String>,
    /// What follows the outage, in plan order.
    pub follow_up: Vec<String>,
    /// What a rollback would cost users: (the step's title, its `loses`),
    /// for the steps a rollback can undo.
    pub rollback_costs: Vec<(String, String)>,
    /// What users get instead of the service, outage by outage, in plan
    /// order ("read-only", "unavailable"): the `outage` of each
    /// `downtime: Begins` step.
    pub outages: Vec<String>,
}

impl Facts {
    /// The plan's part of the facts: what moves, what users notice while the
    /// outage lasts, what follows it. `outage_begins` is the likely time from
    /// the window start to the start of the `Begins` step (see
    /// [`crate::timeline`]).
    pub fn from_plan(
        plan: &Plan,
        start: Timestamp,
        zones: Vec<(String, TimeZone)>,
        outage_begins: Duration,
        figures: Figures,
    ) -> Facts {
        let (mut notices, mut follow_up) = (Vec::new(), Vec::new());
        let mut outages: Vec<String> = Vec::new();
        let mut stage = Stage::Before;
        for phase in &plan.phases {
            for entry in &phase.entries {
                let Entry::Step(step) = entry else { continue };
                if step.downtime == Some(Downtime::Begins) {
                    stage = Stage::Down;
                    if step.pending() {
                        outages.push(
                            step.outage
                                .clone()
                                .unwrap_or_else(|| crate::UNAVAILABLE.to_owned()),
                        );
                    }
                }
                if step.pending() {
                    match stage {
                        Stage::Before => {}
                        Stage::Down => notices.extend(step.notice.clone()),
                        // Only what users notice: a step's `notice`, never an
                        // operator's own work (a `Manual` prompt).
                        Stage::After => follow_up.extend(step.notice.clone()),
                    }
                }
                if step.downtime == Some(Downtime::Ends) {
                    stage = Stage::After;
                }
            }
        }
        dedup_in_order(&mut notices);
        dedup_in_order(&mut follow_up);
        let schedule = plan_core::machine::Schedule::new(plan, &Default::default());
        let rollback_costs = schedule
            .steps
            .iter()
            .filter(|s| !s.past_no_return && s.undoable)
            .filter_map(|s| plan.step(&s.id))
            .filter_map(|s| s.loses.clone().map(|l| (s.title.clone(), l)))
            .collect();
        Facts {
            service: plan.service.clone(),
            name: plan.name.clone(),
            description: plan.description.clone(),
            start,
            zones,
            outage_begins,
            figures,
            notices,
            follow_up,
            rollback_costs,
            outages,
        }
    }

    /// The announced end: the start, the time to the outage and the
    /// announced downtime, rounded up to the minute (to 5 minutes from ten
    /// minutes on).
    pub fn end(&self) -> Timestamp {
        let length = round_up_clock(self.outage_begins + self.figures.announced);
        let secs = i64::try_from(length.as_secs()).unwrap_or(i64::MAX);
        self.start
            .checked_add(SignedDuration::from_secs(secs))
            .unwrap_or(self.start)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Stage {
    Before,
    Down,
    After,
}

fn dedup_in_order(items: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    items.retain(|i| seen.insert(i.clone()));
}

/// The step lengths are rounded to in the mail, by their size: 5 seconds
/// under a minute, a minute under ten, then 5 minutes. A 21 s outage is
/// "about 20 seconds", not "about 5 minutes".
fn grain(secs: u64) -> u64 {
    match secs {
        0..60 => 5,
        60..600 => 60,
        _ => 300,
    }
}

/// Rounded to the nearest step of its size (see [`grain`]), at least one.
pub fn round_near(d: Duration) -> Duration {
    let secs = d.as_secs() + u64::from(d.subsec_millis() >= 500);
    let g = grain(secs);
    let grains = (secs + g / 2) / g;
    // Rounding up may cross into the next size: 57 s is "about 1 minute".
    Duration::from_secs(grains.max(1) * g)
}

/// Rounded up to the step of its size (see [`grain`]), at least one.
pub fn round_up(d: Duration) -> Duration {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    let g = grain(secs);
    Duration::from_secs(secs.div_ceil(g).max(1) * g)
}

/// A length of the window for the clock: rounded up to a whole minute, or
/// to 5 minutes from ten minutes on (times of day are said to the minute).
fn round_up_clock(d: Duration) -> Duration {
    let secs = round_up(d).as_secs();
    let g = if secs < 600 { 60 } else { 300 };
    Duration::from_secs(secs.div_ceil(g).max(1) * g)
}

/// "20 seconds", "35 minutes", "1 hour", "1 hour 30 minutes".
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    let plural = |n: u64, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    if secs < 60 {
        return plural(secs, "second");
    }
    let minutes = secs / 60;
    let (h, m) = (minutes / 60, minutes % 60);
    match (h, m) {
        (0, m) => plural(m, "minute"),
        (h, 0) => plural(h, "hour"),
        (h, m) => format!("{} {}", plural(h, "hour"), plural(m, "minute")),
    }
}

/// "95 of 100", "99 of 100", "999 of 1,000": the confidence as a count.
pub fn confidence_words(confidence: f64) -> String {
    for whole in [100u32, 1_000, 10_000] {
        let part = confidence * f64::from(whole);
        if (part - part.round()).abs() < 1e-6 {
            return format!("{} of {}", part.round(), crate::thousands(u64::from(whole)));
        }
    }
    format!("{:.1} of 100", confidence * 100.0)
}

/// "about 3 in 100", "less than 1 in 100", "about 1 in 200".
fn chance_words(p: f64) -> String {
    if p <= 0.0 {
        "none".to_owned()
    } else if p < 0.001 {
        "less than 1 in 1,000".to_owned()
    } else if p < 0.01 {
        format!(
            "about 1 in {}",
            crate::thousands(((1.0 / p) / 10.0).round() as u64 * 10)
        )
    } else {
        format!("about {} in 100", (p * 100.0).round())
    }
}

/// One zone's view of the window.
struct ZoneTimes {
    /// "UTC", "CET (Europe/Berlin, UTC+01:00)", or across a clock change
    /// "(Europe/Berlin, UTC+02:00, then UTC+01:00)".
    label: String,
    /// "14:00".
    start: String,
    /// "15:35", with its date when that is another day.
    end: String,
    /// "Tuesday 1 December 2026".
    date: String,
    /// "CET", "UTC" at the start.
    abbreviation: String,
    /// The same at the end.
    end_abbreviation: String,
}

impl ZoneTimes {
    fn clock_changes(&self) -> bool {
        self.abbreviation != self.end_abbreviation
    }

    /// The start, with its abbreviation when the clock changes in between.
    fn from(&self) -> String {
        if self.clock_changes() {
            format!("{} {}", self.start, self.abbreviation)
        } else {
            self.start.clone()
        }
    }

    /// The end, likewise.
    fn until(&self) -> String {
        if self.clock_changes() {
            format!("{} {}", self.end, self.end_abbreviation)
        } else {
            self.end.clone()
        }
    }
}

fn zone_times(name: Option<&str>, tz: &TimeZone, start: Timestamp, end: Timestamp) -> ZoneTimes {
    let (s, e): (ZonedDateTime, ZonedDateTime) = (
        start.to_zoned_datetime(tz.clone()),
        end.to_zoned_datetime(tz.clone()),
    );
    let abbreviation = s.strftime("%Z").to_string();
    let end_abbreviation = e.strftime("%Z").to_string();
    let label = match name {
        None => "UTC".to_owned(),
        Some(name) if abbreviation == end_abbreviation => {
            format!("{abbreviation} ({name}, UTC{})", s.strftime("%:z"))
        }
        Some(name) => format!(
            "({name}, UTC{}, then UTC{})",
            s.strftime("%:z"),
            e.strftime("%:z")
        ),
    };
    let end = if e.date() == s.date() {
        e.strftime("%H:%M").to_string()
    } else if e.year() == s.year() {
        e.strftime("%A %-d %B %H:%M").to_string()
    } else {
        // Across new year's eve: the end's date says its year too.
        e.strftime("%A %-d %B %Y %H:%M").to_string()
    };
    ZoneTimes {
        label,
        start: s.strftime("%H:%M").to_string(),
        end,
        date: s.strftime("%A %-d %B %Y").to_string(),
        abbreviation,
        end_abbreviation,
    }
}

/// Writes the announcement.
pub fn compose(facts: &Facts, format: Format) -> String {
    let end = facts.end();
    let utc = zone_times(None, &TimeZone::UTC, facts.start, end);
    let zones: Vec<ZoneTimes> = facts
        .zones
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "UTC" | "Etc/UTC" | "Z"))
        .map(|(name, tz)| zone_times(Some(name), tz, facts.start, end))
        .collect();
    let f = &facts.figures;
    let expected = human(round_near(f.expected));
    let window = human(round_up(f.announced));

    let subject = format!(
        "Maintenance: {} on {}, {} to {} UTC (expected downtime about {expected})",
        facts.service, utc.date, utc.start, utc.end
    );
    // Plan names often repeat the service ("lists.wikimedia.org: sodium -> fermium").
    let name = facts
        .name
        .strip_prefix(&facts.service)
        .map_or(facts.name.as_str(), |rest| {
            rest.trim_start_matches([':', ' '])
        });
    let what = format!("{} moves: {name}.", facts.service);
    let when_utc = format!("{}, from {} to {} UTC", utc.date, utc.start, utc.end);
    let when_zones: Vec<String> = zones
        .iter()
        .map(|z| {
            let date = if z.date == utc.date {
                String::new()
            } else {
                format!("{}, ", z.date)
            };
            format!("{date}from {} to {} {}", z.from(), z.until(), z.label)
        })
        .collect();
    let rollbacks = if f.rollback_probability > 0.0 {
        format!(
            ", counting the rehearsals in which the move failed and was rolled back ({})",
            chance_words(f.rollback_probability)
        )
    } else {
        "; none of them had to roll back".to_owned()
    };
    let mut kinds = facts.outages.clone();
    kinds.dedup();
    let state = if kinds.is_empty() {
        crate::UNAVAILABLE.to_owned()
    } else {
        kinds.join(", then ")
    };
    let mut length = format!(
        "We expect {} to be {state} for about {expected}. Please allow for up to {window}, until {} UTC{}: in {} simulated rehearsals of this plan users were down for {window} or less{rollbacks}.",
        facts.service,
        utc.end,
        zones.iter().map(|z| format!(" / {} {}", z.end, z.end_abbreviation)).collect::<String>(),
        confidence_words(f.confidence),
    );
    let fresh = human(round_near(f.fresh_expected));
    if fresh != expected {
        length.push_str(&format!(
            " Most users will be back sooner, after about {fresh}: these times allow for devices that keep the old address of {} until its DNS entry expires.",
            facts.service
        ));
    }
    for (title, loses) in &facts.rollback_costs {
        length.push_str(&format!(
            " Should the move be rolled back after the step \"{title}\", {loses} would be lost."
        ));
    }
    if f.open_outage_probability > 0.0 {
        length.push_str(&format!(
            " In {} rehearsals the move stopped part-way with {} still down, for the team to finish or undo by hand; then the outage lasts longer.",
            chance_words(f.open_outage_probability),
            facts.service,
        ));
    }
    let notices: Vec<&str> = facts.notices.iter().map(String::as_str).collect();
    let mut follow: Vec<String> = facts.follow_up.clone();
    follow.push(format!(
        "We will announce here when {} is back and the work is over.",
        facts.service
    ));
    let scope = match &f.phase {
        Some(phase) => format!("phase `{phase}` of the plan"),
        None => "the plan".to_owned(),
    };
    let calibrated = match f.journals {
        0 => String::new(),
        1 => ", calibrated with what one journal of an earlier run measured".to_owned(),
        n => format!(", calibrated with what {n} journals of earlier runs measured"),
    };
    let basis = format!(
        "(Estimated with cutover from {} simulated runs of {scope} \"{}\"{calibrated}; lengths rounded to 5 seconds under a minute, to the minute under ten, else to 5 minutes.)",
        crate::thousands(f.runs),
        facts.name
    );

    let mut out = String::new();
    match format {
        Format::Text => {
            let _ = writeln!(out, "Subject: {subject}\n");
            paragraph(&mut out, &what);
            if let Some(why) = &facts.description {
                paragraph(&mut out, why);
            }
            let _ = writeln!(out, "When:");
            let _ = writeln!(out, "  {when_utc}");
            for z in &when_zones {
                let _ = writeln!(out, "  {z}");
            }
            out.push('\n');
            paragraph(&mut out, &length);
            if !notices.is_empty() {
                let _ = writeln!(out, "What you will notice:");
                for n in &notices {
                    bullet(&mut out, n);
                }
                out.push('\n');
            }
            let _ = writeln!(out, "Afterwards:");
            for item in &follow {
                bullet(&mut out, item);
            }
            out.push('\n');
            paragraph(&mut out, &basis);
        }
        Format::Markdown => {
            let _ = writeln!(out, "**Subject:** {subject}\n");
            let _ = writeln!(out, "{what}\n");
            if let Some(why) = &facts.description {
                let _ = writeln!(out, "{why}\n");
            }
            let _ = writeln!(out, "## When\n");
            let _ = writeln!(out, "| time zone | date | from | until |");
            let _ = writeln!(out, "|---|---|---|---|");
            for z in std::iter::once(&utc).chain(&zones) {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    z.label,
                    z.date,
                    z.from(),
                    z.until()
                );
            }
            let _ = writeln!(out, "\n## How long\n");
            let _ = writeln!(out, "{length}\n");
            if !notices.is_empty() {
                let _ = writeln!(out, "## What you will notice\n");
                for n in &notices {
                    let _ = writeln!(out, "- {n}");
                }
                out.push('\n');
            }
            let _ = writeln!(out, "## Afterwards\n");
            for item in &follow {
                let _ = writeln!(out, "- {item}");
            }
            let _ = writeln!(
                out,
                "\n_{}_",
                basis.trim_start_matches('(').trim_end_matches(')')
            );
        }
    }
    out
}

/// Mail text width.
const WIDTH: usize = 72;

/// Words of `text` filled to [`WIDTH`], each line after `first` prefixed by `rest`.
fn fill(out: &mut String, text: &str, first: &str, rest: &str) {
    let mut line = first.to_owned();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = rest.to_owned();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

fn paragraph(out: &mut String, text: &str) {
    fill(out, text, "", "");
    out.push('\n');
}

fn bullet(out: &mut String, text: &str) {
    fill(out, text, "- ", "  ");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_for_people() {
        let m = |m: u64| Duration::from_secs(m * 60);
        let s = Duration::from_secs;
        assert_eq!(round_near(m(34) + s(40)), m(35));
        assert_eq!(round_near(m(2)), m(2));
        assert_eq!(round_near(s(21)), s(20));
        assert_eq!(round_near(s(4)), s(5));
        assert_eq!(round_near(s(58)), m(1));
        assert_eq!(round_near(m(4) + s(31)), m(5));
        assert_eq!(round_up(m(61)), m(65));
        assert_eq!(round_up(m(60)), m(60));
        assert_eq!(round_up(s(21)), s(25));
        assert_eq!(round_up(m(3) + s(1)), m(4));
        assert_eq!(round_up(Duration::ZERO), s(5));
        assert_eq!(round_up_clock(s(21)), m(1));
        assert_eq!(round_up_clock(m(12)), m(15));
        assert_eq!(human(s(20)), "20 seconds");
        assert_eq!(human(m(1)), "1 minute");
        assert_eq!(human(m(35)), "35 minutes");
        assert_eq!(human(m(60)), "1 hour");
        assert_eq!(human(m(95)), "1 hour 35 minutes");
        assert_eq!(human(m(125)), "2 hours 5 minutes");
        assert_eq!(confidence_words(0.95), "95 of 100");
        assert_eq!(confidence_words(0.999), "999 of 1,000");
        assert_eq!(chance_words(0.031), "about 3 in 100");
        assert_eq!(chance_words(0.005), "about 1 in 200");
    }

    fn facts(start: &str, zone: &str) -> Facts {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        Facts {
            service: "www.example.org".into(),
            name: "www.example.org: web1 -> web2".into(),
            description: Some("Moves the site to newer hardware.".into()),
            start: start.parse().expect("RFC 3339"),
            zones: vec![(zone.into(), TimeZone::get(zone).expect("known zone"))],
            outage_begins: minutes(5),
            figures: Figures {
                expected: minutes(22),
                announced: minutes(51),
                confidence: 0.95,
                rollback_probability: 0.0,
                open_outage_probability: 0.0,
                runs: 1_000,
                fresh_expected: minutes(22),
                journals: 0,
                phase: Some("window".into()),
            },
            notices: vec!["The site is down.".into()],
            follow_up: vec![],
            rollback_costs: vec![],
            outages: vec![],
        }
    }

    /// Issue 12, item 9: a window across new year's eve ended "Friday 1
    /// January 01:00", a year off for the reader.
    #[test]
    fn an_end_in_the_next_year_says_its_year() {
        let mut f = facts("2026-12-31T23:30:00Z", "UTC");
        f.figures.announced = Duration::from_secs(90 * 60);
        let mail = compose(&f, Format::Text);
        let words = mail.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            words.contains("from 23:30 to Friday 1 January 2027 01:05 UTC"),
            "{mail}"
        );
    }

    #[test]
    fn composes_from_facts() {
        let mail = compose(
            &facts("2026-12-01T14:00:00Z", "America/New_York"),
            Format::Text,
        );
        let words = mail.split_whitespace().collect::<Vec<_>>().join(" ");
        // 5 minutes to the outage, 51 minutes of it, rounded up: 15:00.
        assert!(
            mail.contains("Tuesday 1 December 2026, from 14:00 to 15:00 UTC"),
            "{mail}"
        );
        assert!(
            mail.contains("from 09:00 to 10:00 EST (America/New_York, UTC-05:00)"),
            "{mail}"
        );
        assert!(mail.contains("about 20 minutes"), "{mail}");
        assert!(
            words.contains("or less; none of them had to roll back."),
            "{mail}"
        );
        assert!(
            mail.contains("www.example.org moves: web1 -> web2."),
            "{mail}"
        );
        assert!(!mail.contains("stopped part-way"), "{mail}");
        assert!(words.contains("of phase `window` of the plan"), "{mail}");
    }

    #[test]
    fn a_window_across_the_clock_change_says_both_offsets() {
        // Berlin leaves summer time at 01:00 UTC on 25 October 2026.
        let mail = compose(
            &facts("2026-10-25T00:30:00Z", "Europe/Berlin"),
            Format::Text,
        );
        assert!(
            mail.contains(
                "from 02:30 CEST to 02:30 CET (Europe/Berlin, UTC+02:00, then UTC+01:00)"
            ),
            "{mail}"
        );
        assert!(mail.contains("until 01:30 UTC / 02:30 CET:"), "{mail}");
    }

    #[test]
    fn fills_at_72_columns() {
        let mut out = String::new();
        bullet(&mut out, &"word ".repeat(40));
        assert!(out.lines().all(|l| l.chars().count() <= WIDTH), "{out}");
        assert!(out.lines().skip(1).all(|l| l.starts_with("  ")));
    }
}
