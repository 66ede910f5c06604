//! The probe of a copy: rsync on both ends, the source, the room, what is
//! pending, the link's rate, and whether the copy fits its step.

use std::time::Duration;

use plan_core::duration::format_duration;
use plan_core::template::quote;
use plan_core::DurationModel;

use super::{
    last_lines, millis, seconds_text, Seen, StepProbe, DRY_RUN_DEADLINE, RATE_DEADLINE,
    RATE_SAMPLE_BYTES,
};
use crate::command::{ExitKind, ShellOutcome};
use crate::probe::{
    bytes_text, df_available, CopyMeasure, FindingKind as Kind, Probed,
    Severity::{Blocker, Fact, Warning},
};
use crate::rsync;

impl StepProbe<'_> {
    /// rsync on both ends, the source, the room at the destination, what
    /// is pending, and how fast the two hosts talk.
    pub(super) async fn copy(&self, seen: &mut Seen, probed: &mut Probed) {
        let step = self.step;
        let id = Some(step.id.as_str());
        let Ok((from, copy)) = crate::executor::copy::copy_of(self.ex, step) else {
            return;
        };
        let (to, path, dest) = (copy.to.name.as_str(), copy.path, copy.dest);
        let before = probed.count(Blocker);
        self.has_program(from, "rsync", "the copy", probed).await;
        if !rsync::is_daemon(dest) {
            self.has_program(to, "rsync", "the copy's receiving end", probed)
                .await;
        }
        let exists = format!("test -e {}", quote(path));
        if let Ok(out) = self.ex.look(Some(step), from, &exists).await {
            if !out.success() {
                probed.add(
                    Blocker,
                    Kind::MissingSource,
                    id,
                    Some(from),
                    format!("the source `{path}` does not exist on {from}"),
                );
            }
        }
        if probed.count(Blocker) > before {
            return;
        }
        if let Some(acting) = copy.acting_argument() {
            probed.add(
                Warning,
                Kind::NotProbeable,
                id,
                Some(from),
                format!(
                    "its argument `{acting}` acts even in a dry run, so what the copy has \
                     pending is not measured; give the step `probe: Run(\"...\")` to look \
                     at it another way"
                ),
            );
            return;
        }
        // The walk alone past the step's deadline: the copy would be too.
        let bound = step.deadline.unwrap_or(DRY_RUN_DEADLINE);
        let started = std::time::Instant::now();
        let dry = match self
            .ex
            .look_within(Some(step), from, &copy.probe_command(), bound)
            .await
        {
            Ok(out) => out,
            Err(e) => {
                probed.add(Blocker, Kind::HostUnreachable, id, Some(from), e);
                return;
            }
        };
        let scan = started.elapsed();
        let stats = match (&dry.status, rsync::parse_stats(&dry.output)) {
            (ExitKind::Exited(0), Some(stats)) => stats,
            (ExitKind::Exited(_), _) => {
                probed.add(
                    Blocker,
                    Kind::CopyRefused,
                    id,
                    Some(from),
                    format!(
                        "its dry run (`rsync --dry-run`) failed ({}): {}",
                        dry.status,
                        last_lines(&dry.output, 3)
                    ),
                );
                return;
            }
            (status, _) => {
                probed.add(
                    if step.deadline.is_some() {
                        Blocker
                    } else {
                        Warning
                    },
                    Kind::TransferTooLong,
                    id,
                    Some(from),
                    format!(
                        "its dry run alone did not finish within {} ({status}){}",
                        format_duration(bound),
                        if step.deadline.is_some() {
                            ": the copy would run past its deadline"
                        } else {
                            ""
                        }
                    ),
                );
                return;
            }
        };
        if let Some(room) = copy.room_command() {
            if let Ok(out) = self.ex.look(Some(step), to, &room).await {
                match df_available(&out.output) {
                    Some(free) if free < stats.bytes_transferred => probed.add(
                        Blocker,
                        Kind::NoRoom,
                        id,
                        Some(to),
                        format!(
                            "the destination has {} free on {to}, the copy has {} to write",
                            bytes_text(free),
                            bytes_text(stats.bytes_transferred)
                        ),
                    ),
                    Some(free) => probed.add(
                        Fact,
                        Kind::Room,
                        id,
                        Some(to),
                        format!("the destination has {} free", bytes_text(free)),
                    ),
                    None => {}
                }
            }
        }
        // One timed transfer per pair of hosts.
        let pair = (from.to_owned(), to.to_owned());
        let rate = match seen.rates.get(&pair) {
            Some(rate) => *rate,
            None => {
                let rate = self.rate(from, &copy).await;
                seen.rates.insert(pair, rate);
                rate
            }
        };
        let measure = CopyMeasure {
            step: step.id.clone(),
            files: stats.files_transferred,
            bytes: stats.bytes_transferred,
            total_bytes: stats.total_bytes,
            scan_millis: millis(scan),
            rate,
        };
        let expected = measure.expected();
        let mut message = format!(
            "{} files, {} pending (of {}); the dry run took {}",
            stats.files_transferred,
            bytes_text(stats.bytes_transferred),
            bytes_text(stats.total_bytes),
            seconds_text(scan)
        );
        match (rate, expected) {
            (Some((bytes, ms)), Some(expected)) => message.push_str(&format!(
                "; {from} -> {to} at {}/s: the copy should take about {}",
                bytes_text((bytes as f64 / (ms as f64 / 1000.0)) as u64),
                seconds_text(expected)
            )),
            _ => message.push_str("; the rate between the hosts could not be measured"),
        }
        probed.add(Fact, Kind::Transfer, id, Some(from), message);
        if let Some(expected) = expected {
            self.fits(expected, probed);
        }
        probed.copies.push(measure);
    }

    /// A timed stream of zeros from `from` to the copy's destination host,
    /// over the same remote shell, thrown away there by `dd`, whose own
    /// time (from its start on the destination to the stream's end) leaves
    /// the connection's setup out. `None` for a daemon or a copy with its
    /// own remote shell, or when the stream or `dd`'s report fails.
    async fn rate(&self, from: &str, copy: &rsync::Copy<'_>) -> Option<(u64, u64)> {
        let stream = copy.timed_stream(RATE_SAMPLE_BYTES)?;
        let out: ShellOutcome = self
            .ex
            .look_within(Some(self.step), from, &stream, RATE_DEADLINE)
            .await
            .ok()?;
        if !out.success() {
            return None;
        }
        let seconds = rsync::parse_dd(&out.output, RATE_SAMPLE_BYTES)?;
        let millis = (seconds * 1000.0).round() as u64;
        (millis > 0).then_some((RATE_SAMPLE_BYTES, millis))
    }

    /// Whether an expected copy time fits the step's model and deadline.
    fn fits(&self, expected: Duration, probed: &mut Probed) {
        let step = self.step;
        let id = Some(step.id.as_str());
        if let Some(deadline) = step.deadline {
            if expected > deadline {
                probed.add(
                    Blocker,
                    Kind::TransferTooLong,
                    id,
                    None,
                    format!(
                        "the copy should take about {}, past its deadline of {}: the run would \
                         cancel it and roll back",
                        seconds_text(expected),
                        format_duration(deadline)
                    ),
                );
                return;
            }
        }
        if let Some(longest) = longest(&step.duration) {
            if expected > longest {
                probed.add(
                    Warning,
                    Kind::TransferTooLong,
                    id,
                    None,
                    format!(
                        "the copy should take about {}, longer than the plan's longest ({}): \
                         the estimates are too short; `simulate --measured` with the probe's \
                         record uses the measurement",
                        seconds_text(expected),
                        format_duration(longest)
                    ),
                );
            }
        }
    }
}

/// The longest a duration model allows (a log-normal's 99th percentile).
fn longest(model: &DurationModel) -> Option<Duration> {
    match *model {
        DurationModel::Fixed(d) => Some(d),
        DurationModel::Uniform { max, .. } | DurationModel::Pert { max, .. } => Some(max),
        DurationModel::LogNormal { .. } => None,
    }
}
