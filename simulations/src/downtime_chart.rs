//! The downtime distribution of an [`Estimate`] drawn as a histogram in SVG,
//! with plotters: the share of runs per downtime bin (minutes), the median
//! (P50) and P95 as labelled vertical lines, P99 in grey. Runs without any
//! downtime (they stopped before users lost the service) are a grey bar at
//! 0, labelled.
//! The SVG comes back as a string; writing it is the caller's business.

use std::time::Duration;

use plan_core::duration::format_duration;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::{Estimate, SimError};

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 560;
/// How many bars the distribution is drawn with.
const BARS: usize = 60;
const FONT: &str = "sans-serif";
const BAR: RGBColor = RGBColor(60, 110, 170);
const MEDIAN: RGBColor = RGBColor(30, 130, 70);
const P95: RGBColor = RGBColor(200, 55, 45);
const TEXT: RGBColor = RGBColor(40, 40, 40);
const MUTED: RGBColor = RGBColor(110, 110, 110);

/// Draws the downtime histogram of `estimate`; `title` names the plan.
pub fn svg(estimate: &Estimate, title: &str) -> Result<String, SimError> {
    let minutes = |d: Duration| d.as_secs_f64() / 60.0;
    let q = &estimate.downtime;
    // A few extreme runs would squeeze the rest into a corner: the axis ends
    // a little past P99.9 and the longest run is named in the caption.
    let p999 = estimate.downtime_quantile(0.999);
    let x_end = minutes(q.max.min(p999.mul_f64(1.15)).max(q.p95.mul_f64(1.1))).max(1.0);
    let width = x_end / BARS as f64;
    let mut counts = vec![0u64; BARS + 1];
    let mut zero = 0;
    for (start, end, n) in estimate.downtime_histogram.bins() {
        if start.is_zero() && end <= Duration::from_millis(1) {
            zero += n;
        }
        let middle = (minutes(start) + minutes(end)) / 2.0;
        counts[((middle / width) as usize).min(BARS)] += n;
    }
    let off_chart = counts[BARS];
    let runs = estimate.runs.max(1) as f64;
    let shares: Vec<f64> = counts[..BARS]
        .iter()
        .map(|&n| 100.0 * n as f64 / runs)
        .collect();
    let y_end = shares.iter().copied().fold(0.0, f64::max).max(0.1) * 1.18;

    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        root.draw(&Text::new(
            format!("{title} — simulated downtime"),
            (20, 14),
            (FONT, 20).into_font().color(&TEXT),
        ))
        .map_err(plot_error)?;
        let mut about = format!(
            "{} runs, seed {} · rollback in {:.1}% of runs · mean {}",
            crate::thousands(estimate.runs),
            estimate.seed,
            100.0 * estimate.rollback_probability,
            format_duration(round_s(q.mean))
        );
        if !estimate.scenarios.is_empty() {
            about.push_str(&format!(" · scenarios: {}", estimate.scenarios.join(", ")));
        }
        if off_chart > 0 {
            about.push_str(&format!(
                " · longest {} (off the chart)",
                format_duration(round_s(q.max))
            ));
        }
        root.draw(&Text::new(
            about,
            (20, 42),
            (FONT, 14).into_font().color(&MUTED),
        ))
        .map_err(plot_error)?;

        let mut chart = ChartBuilder::on(&root)
            .margin_top(70)
            .margin_right(30)
            .margin_left(12)
            .margin_bottom(10)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..x_end, 0.0..y_end)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .x_labels(12)
            .y_labels(8)
            .x_desc("downtime (minutes)")
            .y_desc("share of runs (%)")
            .x_label_formatter(&|m| {
                if m.fract() == 0.0 {
                    format!("{m:.0}")
                } else {
                    format!("{m:.1}")
                }
            })
            .y_label_formatter(&|p| format!("{p:.1}"))
            .label_style((FONT, 13).into_font().color(&TEXT))
            .axis_desc_style((FONT, 14).into_font().color(&TEXT))
            .draw()
            .map_err(plot_error)?;
        chart
            .draw_series(
                shares
                    .iter()
                    .enumerate()
                    .filter(|(_, &s)| s > 0.0)
                    .map(|(i, &s)| {
                        let x0 = i as f64 * width;
                        let colour = if i == 0 && zero > 0 {
                            MUTED.mix(0.6)
                        } else {
                            BAR.mix(0.85)
                        };
                        Rectangle::new([(x0, 0.0), (x0 + width * 0.92, s)], colour.filled())
                    }),
            )
            .map_err(plot_error)?;
        if zero > 0 {
            let text = format!(
                "← {:.1}% of runs: no downtime (stopped before users were affected)",
                100.0 * zero as f64 / runs
            );
            chart
                .draw_series(std::iter::once(Text::new(
                    text,
                    (width * 1.1, shares[0]),
                    (FONT, 13)
                        .into_font()
                        .color(&MUTED)
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                )))
                .map_err(plot_error)?;
        }

        let lines = [
            (q.p50, "P50", MEDIAN, 0.96, MEDIAN.stroke_width(2)),
            (q.p95, "P95", P95, 0.88, P95.stroke_width(2)),
            (q.p99, "P99", MUTED, 0.80, MUTED.stroke_width(1)),
        ];
        for (at, name, colour, height, style) in lines {
            let x = minutes(at);
            if x > x_end {
                continue;
            }
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x, 0.0), (x, y_end)],
                    style,
                )))
                .map_err(plot_error)?;
            // Labels sit right of their line, or left of it near the right edge.
            let right = x < x_end * 0.8;
            let anchor = Pos::new(if right { HPos::Left } else { HPos::Right }, VPos::Center);
            let label = format!(" {name} {} ", label(at));
            chart
                .draw_series(std::iter::once(Text::new(
                    label,
                    (x, y_end * height),
                    (FONT, 14).into_font().color(&colour).pos(anchor),
                )))
                .map_err(plot_error)?;
        }
        root.present().map_err(plot_error)?;
    }
    Ok(out)
}

fn plot_error(e: impl std::fmt::Display) -> SimError {
    SimError::Plot(e.to_string())
}

/// A quantile for a label: to the second below 10 minutes, else to the minute.
fn label(d: Duration) -> String {
    if d < Duration::from_secs(600) {
        format_duration(round_s(d))
    } else {
        format_duration(Duration::from_secs(
            60 * (d.as_secs_f64() / 60.0).round() as u64,
        ))
    }
}

/// Rounded to whole seconds, for labels.
fn round_s(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs_f64().round() as u64)
}
