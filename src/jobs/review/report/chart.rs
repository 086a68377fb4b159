//! Each project's yearly utilisation chart (PNG): the daily means of its VMs' CPU p95, memory
//! peak and disk, with the rules' downsize and expansion thresholds dashed. The text is drawn
//! with the [`Pen`] of `crate::core::chart`, from the fonts of [`ChartFonts`]: only glyphs a font
//! has (never tofu boxes), Latin labels when the fonts cannot draw the Chinese ones, and no text
//! at all without a font.

use chrono::{Datelike, NaiveDate};
use plotters::backend::BitMapBackend;
use plotters::prelude::{
    ChartBuilder, Circle, DashedLineSeries, IntoDrawingArea, LineSeries, PathElement, Rectangle,
};
use plotters::style::{Color, RGBColor, ShapeStyle, WHITE};

use super::ReportError;
use crate::core::chart::{
    ChartError, ChartFonts, HAlign, Labels, Pen, Root, Stroke, VAlign, draw_err, draw_legend,
    encode_png,
};
use crate::core::domain::Resource;
use crate::core::review::{ProjectReview, VmYear};
use crate::core::rules::ResourceRules;

/// Width of the utilisation chart in pixels.
pub const UTILISATION_CHART_WIDTH: u32 = 1000;
/// Height of the utilisation chart in pixels.
pub const UTILISATION_CHART_HEIGHT: u32 = 400;

/// The colours of [cpu, memory, disk]: each resource's line and its downsize threshold line.
pub(super) const RESOURCE_COLORS: [RGBColor; 3] = [
    RGBColor(25, 90, 220),  // CPU: blue
    RGBColor(225, 120, 0),  // memory: orange
    RGBColor(135, 65, 175), // disk: purple
];
pub(super) const EXPAND_COLOR: RGBColor = RGBColor(215, 40, 40);
const GRID_COLOR: RGBColor = RGBColor(232, 232, 232);
const AXIS_COLOR: RGBColor = RGBColor(150, 150, 150);
const TEXT_COLOR: RGBColor = RGBColor(30, 30, 30);
const MUTED_TEXT_COLOR: RGBColor = RGBColor(90, 90, 90);

const TITLE_SIZE: f32 = 19.0;
const TEXT_SIZE: f32 = 14.0;
const TICK_SIZE: f32 = 13.0;
pub(super) const PLOT_LEFT: i32 = 52;
pub(super) const PLOT_RIGHT: i32 = 18;
pub(super) const PLOT_BOTTOM: i32 = 28;
/// The space between two legend entries.
const LEGEND_SPACING: i32 = 20;

/// The fixed words of the chart in one language.
struct Words {
    title: fn(&ProjectReview) -> String,
    /// The characters of `title` that are not the project's (checked against the fonts).
    title_words: &'static str,
    series: [&'static str; 3],
    downsize: [&'static str; 3],
    expand: &'static str,
    months: [&'static str; 12],
    no_data: &'static str,
}

impl Words {
    /// Every fixed character, for the font check.
    fn text(&self) -> String {
        let mut all = vec![self.title_words, self.expand, self.no_data];
        all.extend(self.series);
        all.extend(self.downsize);
        all.extend(self.months);
        all.concat()
    }
}

const CHINESE: Words = Words {
    title: |r| format!("{} {}：{}年度资源利用率", r.project, r.name, r.year),
    title_words: "：年度资源利用率0123456789",
    series: ["CPU（日P95）", "内存（日峰值）", "硬盘"],
    downsize: ["CPU核减 ≤25%", "内存核减 ≤30%", "硬盘核减 <50%"],
    expand: "扩容 >75%",
    months: [
        "1月", "2月", "3月", "4月", "5月", "6月", "7月", "8月", "9月", "10月", "11月", "12月",
    ],
    no_data: "全年无监测数据",
};

const LATIN: Words = Words {
    title: |r| format!("{} {}: utilisation in {}", r.project, r.name, r.year),
    title_words: ": utilisation in 0123456789",
    series: ["CPU (daily p95)", "memory (daily peak)", "disk"],
    downsize: [
        "CPU downsize <= 25%",
        "memory downsize <= 30%",
        "disk downsize < 50%",
    ],
    expand: "expansion > 75%",
    months: [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ],
    no_data: "no monitoring data this year",
};

/// What the subtitle under the title says, in each language.
fn subtitle(labels: Labels) -> &'static str {
    match labels {
        Labels::Chinese => "各云主机每日统计值的平均",
        Labels::Latin => "daily statistics, mean over the VMs",
    }
}

/// The year's utilisation of `review`'s VMs as a 1000x400 PNG: per day, the mean over the VMs of
/// the CPU p95, the memory peak and the disk usage (from [`VmYear::daily`]), with art. 13's
/// downsize and expansion thresholds of `rules` dashed (art. 13's 25/30/50% and 75% by
/// default), and month ticks.
/// Days without data break the lines. `labels` is the wanted language: Chinese only if the
/// fonts have every glyph of the Chinese labels, else Latin; with no font, no text.
pub fn utilisation_chart_png(
    review: &ProjectReview,
    rules: &ResourceRules,
    fonts: &ChartFonts,
    labels: Labels,
) -> Result<Vec<u8>, ReportError> {
    let chart_err = |source| ReportError::Chart {
        project: review.project.clone(),
        source,
    };
    let (start, days) = year_span(review.year).map_err(chart_err)?;
    let series = daily_means(start, days, &review.facts.vms);

    let mut pen = fonts.pen(labels);
    if let Some((p, Labels::Chinese)) = &pen
        && !p.covers(&CHINESE.text())
    {
        pen = fonts.pen(Labels::Latin);
    }

    let (w, h) = (UTILISATION_CHART_WIDTH, UTILISATION_CHART_HEIGHT);
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err).map_err(chart_err)?;
        let text = pen.as_ref().map(|(p, labels)| {
            let words = match labels {
                Labels::Chinese => &CHINESE,
                Labels::Latin => &LATIN,
            };
            (p, words, *labels)
        });
        let lines = threshold_lines(rules);
        draw_utilisation(&root, review, text, start, days, &series, &lines).map_err(chart_err)?;
        root.present().map_err(draw_err).map_err(chart_err)?;
    }
    encode_png(&rgb, w, h).map_err(chart_err)
}

/// The dashed lines: each resource's downsize threshold in its colour, and the expansion
/// thresholds in red (one line where the resources share one), from the rules that apply to
/// the project.
fn threshold_lines(rules: &ResourceRules) -> Vec<(f64, RGBColor)> {
    let mut lines: Vec<(f64, RGBColor)> = Resource::ALL
        .iter()
        .zip(RESOURCE_COLORS)
        .map(|(r, color)| (rules.get(*r).downsize.value(), color))
        .collect();
    for r in Resource::ALL {
        let expand = rules.get(r).expand.value();
        if !lines.iter().any(|&(v, c)| c == EXPAND_COLOR && v == expand) {
            lines.push((expand, EXPAND_COLOR));
        }
    }
    lines
}

/// 1 January of `year` and the number of days of the year.
pub(super) fn year_span(year: i32) -> Result<(NaiveDate, i64), ChartError> {
    let first = |y| NaiveDate::from_ymd_opt(y, 1, 1);
    match (first(year), year.checked_add(1).and_then(first)) {
        (Some(start), Some(next)) => Ok((start, (next - start).num_days())),
        _ => Err(ChartError::Draw(format!(
            "{year} is not a year a date can have"
        ))),
    }
}

/// Per resource [cpu, memory, disk], the days of the year (index from `start`) with a finite
/// value on at least one VM, and the mean of those VMs' values, sorted by day. A VM's duplicate
/// day counts as another value; days outside the year and unreadable dates are left out.
pub(super) fn daily_means(start: NaiveDate, days: i64, vms: &[VmYear]) -> [Vec<(i64, f64)>; 3] {
    let len = usize::try_from(days).unwrap_or(0);
    let mut sums = vec![[(0.0f64, 0u32); 3]; len];
    for vm in vms {
        for (day, cpu, memory, disk) in &vm.daily {
            let Ok(date) = NaiveDate::parse_from_str(day, "%Y-%m-%d") else {
                continue;
            };
            let Ok(i) = usize::try_from((date - start).num_days()) else {
                continue;
            };
            let Some(slot) = sums.get_mut(i) else {
                continue;
            };
            for (k, v) in [*cpu, *memory, *disk].into_iter().enumerate() {
                if v.is_finite() {
                    slot[k].0 += v;
                    slot[k].1 += 1;
                }
            }
        }
    }
    let series = |k: usize| -> Vec<(i64, f64)> {
        sums.iter()
            .enumerate()
            .filter(|(_, s)| s[k].1 > 0)
            .map(|(i, s)| (i as i64, s[k].0 / f64::from(s[k].1)))
            .collect()
    };
    [series(0), series(1), series(2)]
}

/// Splits day-sorted points where a day is missing.
pub(super) fn runs(points: &[(i64, f64)]) -> Vec<&[(i64, f64)]> {
    let mut out = Vec::new();
    let mut from = 0;
    for i in 1..points.len() {
        if points[i].0 - points[i - 1].0 > 1 {
            out.push(&points[from..i]);
            from = i;
        }
    }
    if from < points.len() {
        out.push(&points[from..]);
    }
    out
}

fn draw_utilisation(
    root: &Root<'_>,
    review: &ProjectReview,
    text: Option<(&Pen, &Words, Labels)>,
    start: NaiveDate,
    days: i64,
    series: &[Vec<(i64, f64)>; 3],
    thresholds: &[(f64, RGBColor)],
) -> Result<(), ChartError> {
    let width = UTILISATION_CHART_WIDTH as i32;
    let x1 = days as f64;

    // Header: the title (cut to fit), a subtitle on the right, then the legend.
    let mut top = 40;
    if let Some((pen, words, labels)) = text {
        let baseline = 27;
        let note = subtitle(labels);
        let note_width = pen.width(TEXT_SIZE, note);
        let title = pen.fit(
            &(words.title)(review),
            TITLE_SIZE,
            width - PLOT_RIGHT - 14 - note_width - 24,
        );
        pen.draw(
            root,
            &title,
            TITLE_SIZE,
            (14, baseline),
            HAlign::Left,
            VAlign::Baseline,
            TEXT_COLOR,
        )?;
        pen.draw(
            root,
            note,
            TEXT_SIZE,
            (width - PLOT_RIGHT, baseline),
            HAlign::Right,
            VAlign::Baseline,
            MUTED_TEXT_COLOR,
        )?;
        let mut legend: Vec<(&str, Stroke)> = (0..3)
            .map(|k| (words.series[k], Stroke::Solid(RESOURCE_COLORS[k], 2)))
            .collect();
        legend.extend((0..3).map(|k| (words.downsize[k], Stroke::Dashed(RESOURCE_COLORS[k], 2))));
        legend.push((words.expand, Stroke::Dashed(EXPAND_COLOR, 2)));
        let right = width - PLOT_RIGHT;
        top = draw_legend(root, pen, &legend, (top, right), LEGEND_SPACING)?;
    }
    let top = top + 6;

    let mut chart = ChartBuilder::on(root)
        .margin_top(top)
        .margin_right(PLOT_RIGHT)
        .margin_left(PLOT_LEFT)
        .margin_bottom(PLOT_BOTTOM)
        .build_cartesian_2d(0f64..x1, 0f64..100f64)
        .map_err(draw_err)?;

    // Grid: every 10%, and the first of each month.
    let months: Vec<f64> = (1..=12)
        .filter_map(|m| NaiveDate::from_ymd_opt(start.year(), m, 1))
        .map(|d| (d - start).num_days() as f64)
        .collect();
    let grid = ShapeStyle::from(GRID_COLOR).stroke_width(1);
    chart
        .draw_series((1..10).map(|i| {
            let y = f64::from(i) * 10.0;
            PathElement::new(vec![(0.0, y), (x1, y)], grid)
        }))
        .map_err(draw_err)?;
    chart
        .draw_series(
            months
                .iter()
                .map(|&x| PathElement::new(vec![(x, 0.0), (x, 100.0)], grid)),
        )
        .map_err(draw_err)?;
    let (left, upper) = chart.backend_coord(&(0.0, 100.0));
    let (right, lower) = chart.backend_coord(&(x1, 0.0));
    root.draw(&Rectangle::new(
        [(left, upper), (right, lower)],
        ShapeStyle::from(AXIS_COLOR).stroke_width(1),
    ))
    .map_err(draw_err)?;

    // Thresholds, dashed, under the data.
    for &(value, color) in thresholds {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, value), (x1, value)],
                9,
                5,
                ShapeStyle::from(color).stroke_width(2),
            ))
            .map_err(draw_err)?;
    }

    // The data, a day in the middle of its slot, disk first so that CPU is on top.
    let pixel = |&(day, v): &(i64, f64)| (day as f64 + 0.5, v.clamp(0.0, 100.0));
    for k in [2, 1, 0] {
        let color = RESOURCE_COLORS[k];
        for run in runs(&series[k]) {
            if let [only] = run {
                chart
                    .draw_series(std::iter::once(Circle::new(pixel(only), 2, color.filled())))
                    .map_err(draw_err)?;
            } else {
                chart
                    .draw_series(LineSeries::new(
                        run.iter().map(pixel),
                        ShapeStyle::from(color).stroke_width(2),
                    ))
                    .map_err(draw_err)?;
            }
        }
    }

    let tick = ShapeStyle::from(AXIS_COLOR).stroke_width(1);
    for &x in &months {
        let (px, _) = chart.backend_coord(&(x, 0.0));
        root.draw(&PathElement::new(vec![(px, lower), (px, lower + 4)], tick))
            .map_err(draw_err)?;
    }
    let Some((pen, words, _)) = text else {
        return Ok(());
    };
    if series.iter().all(Vec::is_empty) {
        pen.draw(
            root,
            words.no_data,
            TEXT_SIZE + 2.0,
            ((left + right) / 2, (upper + lower) / 2),
            HAlign::Center,
            VAlign::Center,
            MUTED_TEXT_COLOR,
        )?;
    }
    // Axis labels: percent on the left, the months below, each in the middle of its month.
    for pct in (0..=100).step_by(20) {
        let (_, y) = chart.backend_coord(&(0.0, f64::from(pct)));
        pen.draw(
            root,
            &format!("{pct}%"),
            TICK_SIZE,
            (left - 6, y),
            HAlign::Right,
            VAlign::Center,
            MUTED_TEXT_COLOR,
        )?;
    }
    for (m, &x) in months.iter().enumerate() {
        let next = months.get(m + 1).copied().unwrap_or(x1);
        let (px, _) = chart.backend_coord(&((x + next) / 2.0, 0.0));
        pen.draw(
            root,
            words.months.get(m).copied().unwrap_or_default(),
            TICK_SIZE,
            (px, lower + 6),
            HAlign::Center,
            VAlign::Top,
            MUTED_TEXT_COLOR,
        )?;
    }
    Ok(())
}
