//! A [`Timeline`] drawn as a Gantt chart in SVG, with plotters.
//!
//! Each phase is a panel of its own with its own time axis (minutes from the
//! phase start; seconds under 2 minutes, hours past 10 hours), because
//! phases may be a day apart: one bar per pending step at its likely start,
//! the critical path in red, the settle wait in a paler shade, the downtime
//! shaded (propagation of the old TTL paler still), and rollback points
//! (green, dashed) and the point of no return (black) as
//! vertical lines with their names. The SVG comes back as a string; writing
//! it is the caller's business.

use std::time::Duration;

use plan_core::duration::{format_anchor, format_duration};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::timeline::{MarkerKind, PhaseTimeline, Timeline, TimelineError};

/// Width of the picture in pixels.
const WIDTH: u32 = 1200;
/// Height of one step row.
const ROW: u32 = 28;
/// Above the rows of a panel: its caption and the marker labels.
const PANEL_HEAD: u32 = 92;
/// Below the rows: the time axis and its description.
const PANEL_FOOT: u32 = 46;
/// Left of the plotting area: the step labels.
const LABEL_AREA: u32 = 330;
/// The title line at the top of the picture.
const TITLE: u32 = 40;
/// Step labels longer than this are cut with an ellipsis.
const MAX_LABEL: usize = 40;
/// Vertical distance between stacked labels above a panel.
const LABEL_STEP: i32 = 15;

const FONT: &str = "sans-serif";
const CRITICAL: RGBColor = RGBColor(200, 55, 45);
const NORMAL: RGBColor = RGBColor(60, 110, 170);
const DOWNTIME: RGBColor = RGBColor(245, 160, 40);
const ROLLBACK: RGBColor = RGBColor(30, 130, 70);
const NO_RETURN: RGBColor = RGBColor(20, 20, 20);
const TEXT: RGBColor = RGBColor(40, 40, 40);
const MUTED: RGBColor = RGBColor(110, 110, 110);

/// Draws `timeline` as an SVG document.
pub fn svg(timeline: &Timeline) -> Result<String, TimelineError> {
    let heights: Vec<u32> = timeline.phases.iter().map(panel_height).collect();
    let height = TITLE + heights.iter().sum::<u32>();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let title = format!("{} — likely timeline", timeline.plan);
        root.draw(&Text::new(
            title,
            (16, 12),
            (FONT, 20).into_font().color(&TEXT),
        ))
        .map_err(draw_error)?;
        let (_, mut rest) = root.split_vertically(TITLE);
        for (phase, &h) in timeline.phases.iter().zip(&heights) {
            let (panel, below) = rest.split_vertically(h);
            draw_phase(&panel, phase, timeline.window_start)?;
            rest = below;
        }
        root.present().map_err(draw_error)?;
    }
    Ok(out)
}

fn panel_height(phase: &PhaseTimeline) -> u32 {
    let rows = u32::try_from(phase.bars.len()).unwrap_or(u32::MAX / ROW);
    PANEL_HEAD + rows.max(1) * ROW + PANEL_FOOT
}

fn draw_error(e: impl std::fmt::Display) -> TimelineError {
    TimelineError::Draw(e.to_string())
}

/// The time axis's unit: seconds for short phases, hours for very long ones.
#[derive(Clone, Copy)]
enum Unit {
    Seconds,
    Minutes,
    Hours,
}

impl Unit {
    /// The unit that gives a phase of this length readable ticks.
    fn for_length(d: Duration) -> Unit {
        match d.as_secs() {
            0..120 => Unit::Seconds,
            120..36_000 => Unit::Minutes,
            _ => Unit::Hours,
        }
    }

    /// `d` in this unit.
    fn of(self, d: Duration) -> f64 {
        d.as_secs_f64()
            / match self {
                Unit::Seconds => 1.0,
                Unit::Minutes => 60.0,
                Unit::Hours => 3600.0,
            }
    }

    fn name(self) -> &'static str {
        match self {
            Unit::Seconds => "seconds",
            Unit::Minutes => "minutes",
            Unit::Hours => "hours",
        }
    }
}

/// "starts at the window start (2026-12-01 14:00 UTC)", "starts 1d before the window".
pub fn anchor_text(at: Option<i64>, window_start: Option<jiff::Timestamp>) -> String {
    let Some(at) = at else {
        return "unscheduled".to_owned();
    };
    let relative = match at {
        0 => "starts at the window start".to_owned(),
        s if s < 0 => format!(
            "starts {} before the window start",
            format_anchor(s).trim_start_matches('-')
        ),
        s => format!(
            "starts {} after the window start",
            format_anchor(s).trim_start_matches('+')
        ),
    };
    match window_start.and_then(|w| w.checked_add(jiff::SignedDuration::from_secs(at)).ok()) {
        Some(t) => format!("{relative} ({})", t.strftime("%Y-%m-%d %H:%M UTC")),
        None => relative,
    }
}

/// `"{number} {id}"`, cut to fit the label area.
fn step_label(number: u32, id: &str) -> String {
    let text = format!("{number}  {id}");
    if text.chars().count() <= MAX_LABEL {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_LABEL - 1).collect();
    cut.push('…');
    cut
}

fn draw_phase(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    phase: &PhaseTimeline,
    window_start: Option<jiff::Timestamp>,
) -> Result<(), TimelineError> {
    let rows = phase.bars.len().max(1);
    // Room right of the last bar for its duration text.
    let tail = phase
        .downtime
        .map_or(phase.length, |d| d.over().max(phase.length));
    let unit = Unit::for_length(tail);
    let x_of = |d: Duration| unit.of(d);
    let x_max = (x_of(tail) * 1.12).max(2.0);
    let y_top = rows as f64 - 0.5;

    let caption = format!(
        "phase `{}` · {}",
        phase.name,
        anchor_text(phase.at, window_start)
    );
    area.draw(&Text::new(
        caption,
        (16, 8),
        (FONT, 17).into_font().style(FontStyle::Bold).color(&TEXT),
    ))
    .map_err(draw_error)?;
    let mut summary = format!(
        "likely {} · critical path in red",
        format_duration(phase.length)
    );
    if phase.downtime.is_some() {
        summary.push_str(" · users down: shaded");
    }
    area.draw(&Text::new(
        summary,
        (16, 30),
        (FONT, 13).into_font().color(&MUTED),
    ))
    .map_err(draw_error)?;

    let mut chart = ChartBuilder::on(area)
        .margin_top(PANEL_HEAD - 10)
        .margin_right(24)
        .margin_left(8)
        .x_label_area_size(PANEL_FOOT - 8)
        .y_label_area_size(LABEL_AREA)
        .build_cartesian_2d(0.0..x_max, -0.5..y_top)
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .x_labels(12)
        .x_label_formatter(&|m| {
            if m.fract() == 0.0 {
                format!("{m:.0}")
            } else {
                format!("{m:.1}")
            }
        })
        .x_desc(format!("{} from the phase start", unit.name()))
        .axis_desc_style((FONT, 13).into_font().color(&MUTED))
        .label_style((FONT, 12).into_font().color(&TEXT))
        .max_light_lines(1)
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(draw_error)?;

    // Row i (plan order) sits at y = rows - 1 - i, so the first step is on top.
    let row_y = |i: usize| (rows - 1 - i) as f64;

    if let Some(down) = phase.downtime {
        let (b, e, o) = (x_of(down.begins), x_of(down.ends), x_of(down.over()));
        chart
            .draw_series([
                Rectangle::new([(b, -0.5), (e, y_top)], DOWNTIME.mix(0.22).filled()),
                Rectangle::new([(e, -0.5), (o, y_top)], DOWNTIME.mix(0.12).filled()),
            ])
            .map_err(draw_error)?;
        let mut text = format!(
            "users down: likely {}",
            format_duration(down.over().saturating_sub(down.begins))
        );
        if !down.ttl.is_zero() {
            text.push_str(&format!(" (incl. {} TTL)", format_duration(down.ttl)));
        }
        if down.continues {
            text.push_str(", continues in the next phase");
        }
        // Above the marker labels (two levels of them).
        let (x, y) = chart.backend_coord(&(b, y_top));
        area.draw(&Text::new(
            text,
            (x + 4 - area_x(area), y - 4 - 2 * LABEL_STEP - area_y(area)),
            (FONT, 12)
                .into_font()
                .color(&RGBColor(170, 95, 0))
                .pos(Pos::new(HPos::Left, VPos::Bottom)),
        ))
        .map_err(draw_error)?;
    }

    for (i, bar) in phase.bars.iter().enumerate() {
        let color = if bar.critical { CRITICAL } else { NORMAL };
        let y = row_y(i);
        let (s, w, e) = (x_of(bar.start), x_of(bar.start + bar.work), x_of(bar.end()));
        // A zero-length step still shows as a sliver.
        let w = w.max(s + x_max * 0.002);
        chart
            .draw_series([Rectangle::new([(s, y - 0.3), (w, y + 0.3)], color.filled())])
            .map_err(draw_error)?;
        if bar.settle > Duration::ZERO {
            chart
                .draw_series([Rectangle::new(
                    [(w, y - 0.3), (e.max(w), y + 0.3)],
                    color.mix(0.35).filled(),
                )])
                .map_err(draw_error)?;
        }
        let mut length = format_duration(bar.work);
        if bar.settle > Duration::ZERO {
            length.push_str(&format!(" + {} settle", format_duration(bar.settle)));
        }
        // Inside the bar when it fits, else right of it.
        let (x0, _) = chart.backend_coord(&(s, y));
        let (x1, _) = chart.backend_coord(&(w, y));
        let (px, py) = chart.backend_coord(&(e.max(w), y));
        let (tx, color) = if x1 - x0 >= text_width(&length) + 12 {
            (x0 + 6, WHITE)
        } else {
            (px + 6, MUTED)
        };
        area.draw(&Text::new(
            length,
            (tx - area_x(area), py - area_y(area)),
            (FONT, 12)
                .into_font()
                .color(&color)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(draw_error)?;
        let (lx, ly) = chart.backend_coord(&(0.0, y));
        let weight = if bar.critical {
            FontStyle::Bold
        } else {
            FontStyle::Normal
        };
        area.draw(&Text::new(
            step_label(bar.number, &bar.id),
            (lx - 10 - area_x(area), ly - area_y(area)),
            (FONT, 13)
                .into_font()
                .style(weight)
                .color(&TEXT)
                .pos(Pos::new(HPos::Right, VPos::Center)),
        ))
        .map_err(draw_error)?;
    }

    // Marker lines, labels staggered when they would overlap.
    let mut last_label: Option<(i32, i32)> = None;
    for marker in &phase.markers {
        let x = x_of(marker.at);
        let (color, width, label) = match marker.kind {
            MarkerKind::RollbackPoint => (ROLLBACK, 2, format!("rollback point {}", marker.text)),
            MarkerKind::PointOfNoReturn => {
                (NO_RETURN, 3, format!("point of no return: {}", marker.text))
            }
        };
        let style = color.stroke_width(width);
        if marker.kind == MarkerKind::RollbackPoint {
            let dash = (y_top + 0.5) / 30.0;
            let dashes = (0..30).map(|k| {
                let from = -0.5 + dash * k as f64;
                PathElement::new(vec![(x, from), (x, from + dash * 0.6)], style)
            });
            chart.draw_series(dashes).map_err(draw_error)?;
        } else {
            chart
                .draw_series([PathElement::new(vec![(x, -0.5), (x, y_top)], style)])
                .map_err(draw_error)?;
        }
        let (px, py) = chart.backend_coord(&(x, y_top));
        let level = match last_label {
            Some((lx, level)) if px - lx < 220 => (level + 1) % 2,
            _ => 0,
        };
        last_label = Some((px, level));
        // Near the right edge the label goes left of its line.
        let fits = px + 4 + text_width(&label) < i32::try_from(WIDTH).unwrap_or(i32::MAX) - 8;
        let (lx, h) = if fits {
            (px + 4, HPos::Left)
        } else {
            (px - 4, HPos::Right)
        };
        area.draw(&Text::new(
            label,
            (
                lx - area_x(area),
                py - 4 - LABEL_STEP * level - area_y(area),
            ),
            (FONT, 12)
                .into_font()
                .color(&color)
                .pos(Pos::new(h, VPos::Bottom)),
        ))
        .map_err(draw_error)?;
    }
    Ok(())
}

/// Roughly how wide a 12px label is (no font metrics without a font library).
fn text_width(text: &str) -> i32 {
    i32::try_from(text.chars().count()).unwrap_or(i32::MAX / 7) * 7
}

/// The area's left edge in backend pixels (backend_coord is absolute).
fn area_x(area: &DrawingArea<SVGBackend<'_>, Shift>) -> i32 {
    area.get_base_pixel().0
}

/// The area's top edge in backend pixels.
fn area_y(area: &DrawingArea<SVGBackend<'_>, Shift>) -> i32 {
    area.get_base_pixel().1
}
