//! `cutover timeline PLAN [--svg FILE] [--phase NAME]`: the plan at its
//! likely durations, as a Gantt chart (SVG) or as text.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use plan_core::duration::format_duration;
use simulations::gantt;
use simulations::timeline::{self, MarkerKind, PhaseTimeline, Timeline};

use crate::{exit_codes, CliError, PlanArgs};

/// Arguments of `cutover timeline`.
#[derive(Debug, Args)]
pub struct TimelineArgs {
    #[command(flatten)]
    plan: PlanArgs,
    /// Write the Gantt chart as SVG to this file instead of printing it as text
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Draw only this phase
    #[arg(long, value_name = "NAME")]
    phase: Option<String>,
}

/// Width of the text chart's bar column.
const BAR_COLUMNS: usize = 48;

/// Lays out the plan; writes the SVG, or prints the chart as text.
pub fn cmd_timeline(
    args: &TimelineArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<u8, CliError> {
    let plan = args.plan.load_to_show(stderr)?;
    let timeline = timeline::layout(&plan, args.phase.as_deref())?;
    match &args.svg {
        Some(path) => {
            let svg = gantt::svg(&timeline)?;
            std::fs::write(path, svg)
                .map_err(CliError::io(format!("cannot write {}", path.display())))?;
            writeln!(stdout, "wrote {}", path.display())?;
            for phase in &timeline.phases {
                writeln!(
                    stdout,
                    "  phase `{}`: likely {}, critical path {}",
                    phase.name,
                    format_duration(phase.length),
                    phase.critical_path.join(" -> ")
                )?;
            }
        }
        None => text(&timeline, stdout)?,
    }
    Ok(exit_codes::OK)
}

/// `12m30s` as `12:30`, `1h5m` as `1:05:00`: starts line up in a column.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The timeline as text: per phase, one line per step with its start, its
/// length and a bar; `*` marks the critical path, `~` the settle wait.
fn text(timeline: &Timeline, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{}: likely timeline (* critical path, ~ settle, times from the phase start)",
        timeline.plan
    )?;
    for phase in &timeline.phases {
        writeln!(out)?;
        phase_text(phase, timeline, out)?;
    }
    Ok(())
}

fn phase_text(
    phase: &PhaseTimeline,
    timeline: &Timeline,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "phase `{}` ({}): likely {}",
        phase.name,
        gantt::anchor_text(phase.at, timeline.window_start),
        format_duration(phase.length)
    )?;
    let span = phase
        .downtime
        .map_or(phase.length, |d| d.over().max(phase.length))
        .max(Duration::from_secs(1));
    let column = |d: Duration| {
        let c = (d.as_secs_f64() / span.as_secs_f64() * BAR_COLUMNS as f64).round() as usize;
        c.min(BAR_COLUMNS)
    };
    let width = phase
        .bars
        .iter()
        .map(|b| b.id.chars().count() + b.number.to_string().len() + 1)
        .max()
        .unwrap_or(0);
    // Markers go before the first step that starts at or after them.
    let mut markers = phase.markers.iter().peekable();
    for bar in &phase.bars {
        while let Some(marker) = markers.next_if(|m| m.at <= bar.start) {
            marker_line(marker.kind, &marker.text, marker.at, width, out)?;
        }
        let (start, work, end) = (
            column(bar.start),
            column(bar.start + bar.work),
            column(bar.end()),
        );
        let mut cells = String::new();
        cells.push_str(&" ".repeat(start));
        cells.push_str(&"#".repeat((work - start).max(1)));
        cells.push_str(&"~".repeat(end.saturating_sub(work.max(start + 1))));
        let mut length = format_duration(bar.work);
        if !bar.settle.is_zero() {
            length.push_str(&format!("+{}", format_duration(bar.settle)));
        }
        let down = match bar.downtime {
            Some(plan_core::Downtime::Begins) => "  <- users down from here",
            Some(plan_core::Downtime::Ends) => "  <- service back after this (and the TTL)",
            None => "",
        };
        writeln!(
            out,
            "  {:>8}  {:<10} {} {:<width$}  |{:<BAR_COLUMNS$}|{down}",
            clock(bar.start),
            length,
            if bar.critical { '*' } else { ' ' },
            format!("{} {}", bar.number, bar.id),
            cells,
        )?;
    }
    for marker in markers {
        marker_line(marker.kind, &marker.text, marker.at, width, out)?;
    }
    if let Some(down) = phase.downtime {
        let mut line = format!(
            "  users down from {} to {}: likely {}",
            clock(down.begins),
            clock(down.over()),
            format_duration(down.over().saturating_sub(down.begins))
        );
        if !down.ttl.is_zero() {
            line.push_str(&format!(", the {} TTL included", format_duration(down.ttl)));
        }
        if down.continues {
            line.push_str("; the outage goes on into the next phase");
        }
        writeln!(out, "{line}")?;
    }
    writeln!(out, "  critical path: {}", phase.critical_path.join(" -> "))
}

fn marker_line(
    kind: MarkerKind,
    text: &str,
    at: Duration,
    width: usize,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let what = match kind {
        MarkerKind::RollbackPoint => format!("rollback point `{text}`"),
        MarkerKind::PointOfNoReturn => format!("point of no return: {text}"),
    };
    writeln!(
        out,
        "  {:>8}  {:<10}   {:-<width$}  {what}",
        clock(at),
        "",
        ""
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use plan_core::{load_str, Settings, Source};

    fn mailman() -> plan_core::Plan {
        let text = include_str!("../../../examples/mailman.ron");
        load_str(Source::new("mailman.ron", text), &Settings::default())
            .plan
            .expect("the example is valid")
    }

    #[test]
    fn window_phase_follows_after_and_barriers() {
        let timeline = timeline::layout(&mailman(), Some("window")).expect("window has steps");
        let [phase] = timeline.phases.as_slice() else {
            panic!("one phase")
        };
        let bar = |id: &str| phase.bars.iter().find(|b| b.id == id).expect(id);
        let min = |m: u64| Duration::from_secs(60 * m);
        // ttl-10s 1m, hold-mail 30s + 10m settle, stop-mailman 30s.
        assert_eq!(bar("hold-mail").start, min(1));
        assert_eq!(bar("stop-mailman").start, min(11) + Duration::from_secs(30));
        // The two rsyncs run side by side after stop-mailman.
        assert_eq!(bar("final-rsync").start, bar("rsync-exim-spool").start);
        // test-mails waits for the longer one (the barrier `data-copied` too).
        assert_eq!(bar("test-mails").start, bar("final-rsync").end());
        assert!(bar("final-rsync").critical && !bar("rsync-exim-spool").critical);
        let data_copied = phase
            .markers
            .iter()
            .find(|m| m.text == "data-copied")
            .expect("marker");
        assert_eq!(data_copied.at, bar("final-rsync").end());
        let down = phase.downtime.expect("the window has the outage");
        assert_eq!(down.begins, bar("hold-mail").start);
        assert_eq!(down.ends, bar("switch-ip").end());
        assert_eq!(down.ttl, Duration::from_secs(10));
        assert_eq!(
            phase.critical_path.first().map(String::as_str),
            Some("ttl-10s")
        );
        assert_eq!(
            phase.critical_path.last().map(String::as_str),
            Some("ttl-1h")
        );
    }

    #[test]
    fn every_phase_with_work_left_is_drawn() {
        let timeline = timeline::layout(&mailman(), None).expect("steps to run");
        let names: Vec<&str> = timeline.phases.iter().map(|p| p.name.as_str()).collect();
        // `prep` is all done but row 12, "write this plan", in progress.
        assert_eq!(
            names,
            [
                "prep",
                "preparation",
                "day-before",
                "window",
                "decommission"
            ]
        );
        assert_eq!(timeline.phases[0].bars.len(), 1);
        let svg = gantt::svg(&timeline).expect("draws");
        assert!(
            svg.starts_with("<svg") && svg.contains("final-rsync") && svg.contains("data-copied")
        );
    }

    #[test]
    fn unknown_phase_is_an_error() {
        let e = timeline::layout(&mailman(), Some("nope")).expect_err("no such phase");
        assert!(e.to_string().contains("`window`"), "{e}");
    }
}
