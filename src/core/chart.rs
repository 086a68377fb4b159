//! Evidence charts for notices: a resource's last 30 days as a PNG, with the threshold lines and
//! the statistic marked.
//!
//! A notice says "your VM's CPU p95 was 14.0%, the downsize threshold is <= 25%"; the chart shows
//! the samples behind that sentence, so a department can see for itself.
//!
//! - **Architecture Invariant:** no file IO here: the caller reads the font files and passes
//!   their bytes, and gets the PNG back as bytes.
//! - plotters draws the lines; text is rasterised here with ab_glyph, straight from the font
//!   bytes. (plotters' own ab_glyph text drops each glyph's side bearing, so its spacing is
//!   uneven: "阈 值", "p 95", and it needs fonts leaked into a process-wide table.) So nothing is
//!   registered globally and nothing is leaked.
//! - Text is drawn only with glyphs a font really has: Chinese labels need a CJK font, otherwise
//!   the labels are Latin, a character no font has is left out, and with no font at all the
//!   chart is drawn without text. Never tofu boxes.

use ab_glyph::{Font, FontArc, GlyphId, PxScale, ScaleFont, point};
use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;
use plotters::backend::BitMapBackend;
use plotters::coord::Shift;
use plotters::prelude::{
    ChartBuilder, Circle, DashedLineSeries, DrawingArea, IntoDrawingArea, LineSeries, PathElement,
    Rectangle,
};
use plotters::style::{Color, RGBColor, ShapeStyle, WHITE};

use crate::core::domain::{Resource, Verdict};

/// Width of the PNG in pixels.
pub const CHART_WIDTH: u32 = 800;
/// Height of the PNG in pixels.
pub const CHART_HEIGHT: u32 = 400;

/// At most this many samples are drawn; more are reduced to the maximum of each time bucket, so
/// the peaks the rules look at stay visible.
const MAX_DRAWN_POINTS: usize = 2_000;

/// The language of the chart's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Labels {
    Chinese,
    Latin,
}

/// Why a chart could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// The bytes given as the `which` font are not a TrueType/OpenType font (or collection).
    #[error("the {which} font is not a TrueType/OpenType font that can be read")]
    InvalidFont { which: &'static str },
    /// The window ends at or before its start.
    #[error("the chart window is empty: it ends at {end} and starts at {start}")]
    EmptyWindow {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// plotters failed while drawing.
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    /// The image could not be encoded as PNG.
    #[error("encoding the chart as PNG failed: {0}")]
    Encode(String),
}

/// A plotters failure as a [`ChartError`].
pub(crate) fn draw_err(e: impl std::fmt::Display) -> ChartError {
    ChartError::Draw(e.to_string())
}

/// The fonts charts are drawn with, and which label languages they can draw. Parsing a font is
/// cheap and the bytes are shared (cloning is cheap too): make one per process and reuse it.
#[derive(Debug, Clone)]
pub struct ChartFonts {
    /// The `cjk` font, if it has every glyph of the Chinese labels.
    chinese: Option<FontArc>,
    /// Every font given, Latin first: a character is drawn with the first font that has it.
    all: Vec<FontArc>,
}

impl ChartFonts {
    /// `cjk`: bytes of a CJK-capable font (e.g. wqy-microhei.ttc; of a collection, the first
    /// font is used); `latin`: bytes of a Latin font (e.g. DejaVuSans.ttf).
    ///
    /// A font that does not parse is an error. A `cjk` font without every glyph of the Chinese
    /// labels is not used for Chinese labels (only for characters it has).
    /// `register(None, None)` is valid: charts are then drawn without text.
    pub fn register(
        cjk: Option<Vec<u8>>,
        latin: Option<Vec<u8>>,
    ) -> Result<ChartFonts, ChartError> {
        let parse = |bytes: Vec<u8>, which| {
            FontArc::try_from_vec(bytes).map_err(|_| ChartError::InvalidFont { which })
        };
        let latin = latin.map(|b| parse(b, "latin")).transpose()?;
        let cjk = cjk.map(|b| parse(b, "CJK")).transpose()?;
        let chinese = cjk
            .as_ref()
            .filter(|f| ZH.chars().chain(printable_ascii()).all(|c| has_glyph(f, c)))
            .cloned();
        Ok(ChartFonts {
            chinese,
            all: latin.into_iter().chain(cjk).collect(),
        })
    }

    /// The labels [`render_png`] will draw when asked for `wanted`: Chinese only if a font with
    /// every glyph of the Chinese labels was given, else Latin.
    pub fn labels(&self, wanted: Labels) -> Labels {
        match wanted {
            Labels::Chinese if self.chinese.is_some() => Labels::Chinese,
            _ => Labels::Latin,
        }
    }

    /// The fonts text in `labels` (after the fallback of [`ChartFonts::labels`]) is drawn with,
    /// in lookup order (a character is drawn with the first font that has it), and the labels
    /// they draw. Empty when no font was given: then draw no text.
    pub fn fonts_for(&self, labels: Labels) -> (Vec<FontArc>, Labels) {
        let labels = self.labels(labels);
        let mut fonts = Vec::with_capacity(self.all.len() + 1);
        if labels == Labels::Chinese {
            fonts.extend(self.chinese.iter().cloned());
        }
        fonts.extend(self.all.iter().cloned());
        (fonts, labels)
    }

    /// A [`Pen`] with the fonts of [`ChartFonts::fonts_for`] `labels`, and the labels it
    /// draws, or `None` if there is no font at all (then draw no text). Also used by the
    /// annual review's utilisation chart.
    pub(crate) fn pen(&self, labels: Labels) -> Option<(Pen, Labels)> {
        let (fonts, labels) = self.fonts_for(labels);
        (!fonts.is_empty()).then_some((Pen { fonts }, labels))
    }
}

/// The printable ASCII characters.
fn printable_ascii() -> impl Iterator<Item = char> {
    (0x21u8..0x7f).map(char::from)
}

fn has_glyph(font: &FontArc, c: char) -> bool {
    c.is_whitespace() || font.glyph_id(c) != GlyphId(0)
}

/// Where text stands horizontally against the x it is drawn at.
#[derive(Clone, Copy)]
pub(crate) enum HAlign {
    Left,
    Center,
    Right,
}

/// Where text stands vertically against the y it is drawn at.
#[derive(Clone, Copy)]
pub(crate) enum VAlign {
    /// y is the top of the line's ascent.
    Top,
    /// y is the middle of the line's ascent-to-descent box.
    Center,
    /// y is the baseline.
    Baseline,
}

/// Draws text with a list of fonts: each character with the first font that has it (one that
/// none has is left out), each glyph at its own advance and side bearing. Line metrics come
/// from the first font. Made by [`ChartFonts::pen`]; the annual review's utilisation chart
/// draws its text with it too.
pub(crate) struct Pen {
    fonts: Vec<FontArc>,
}

impl Pen {
    /// Whether some font has every character of `text`.
    pub(crate) fn covers(&self, text: &str) -> bool {
        text.chars()
            .all(|c| self.fonts.iter().any(|f| has_glyph(f, c)))
    }

    /// The glyphs of `text`, with the index of their font; a missing character is left out.
    fn glyphs(&self, text: &str) -> Vec<(usize, GlyphId)> {
        text.chars()
            .filter_map(|c| {
                self.fonts
                    .iter()
                    .position(|f| has_glyph(f, c))
                    .map(|i| (i, self.fonts[i].glyph_id(c)))
            })
            .collect()
    }

    /// Pen positions of the glyphs of `text`, relative to the start, and the total advance.
    fn layout(&self, size: f32, text: &str) -> (Vec<(usize, GlyphId, f32)>, f32) {
        let scale = PxScale::from(size);
        let mut x = 0.0f32;
        let mut out = Vec::new();
        let mut prev: Option<(usize, GlyphId)> = None;
        for (i, id) in self.glyphs(text) {
            let font = self.fonts[i].as_scaled(scale);
            if let Some((pi, pid)) = prev
                && pi == i
            {
                x += font.kern(pid, id);
            }
            out.push((i, id, x));
            x += font.h_advance(id);
            prev = Some((i, id));
        }
        (out, x)
    }

    /// The advance of `text` at `size` pixels, rounded up.
    pub(crate) fn width(&self, size: f32, text: &str) -> i32 {
        self.layout(size, text).1.ceil() as i32
    }

    /// `text`, or as much of it as fits in `max` pixels followed by an ellipsis.
    pub(crate) fn fit(&self, text: &str, size: f32, max: i32) -> String {
        if self.width(size, text) <= max {
            return text.to_owned();
        }
        let ellipsis = if self.covers("…") { "…" } else { "..." };
        let mut chars: Vec<char> = text.chars().collect();
        while !chars.is_empty() {
            chars.pop();
            let cut: String = chars.iter().collect::<String>() + ellipsis;
            if self.width(size, &cut) <= max {
                return cut;
            }
        }
        String::new()
    }

    /// Draws `text` at `(x, y)`: `h` aligns the text's advance to x, `v` the line to y.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn draw(
        &self,
        area: &Root<'_>,
        text: &str,
        size: f32,
        (x, y): (i32, i32),
        h: HAlign,
        v: VAlign,
        color: RGBColor,
    ) -> Result<(), ChartError> {
        let Some(first) = self.fonts.first() else {
            return Ok(());
        };
        let scale = PxScale::from(size);
        let metrics = first.as_scaled(scale);
        let (ascent, descent) = (metrics.ascent(), metrics.descent());
        let (glyphs, width) = self.layout(size, text);
        let left = x as f32
            - match h {
                HAlign::Left => 0.0,
                HAlign::Center => width / 2.0,
                HAlign::Right => width,
            };
        let baseline = y as f32
            + match v {
                VAlign::Top => ascent,
                VAlign::Center => (ascent + descent) / 2.0,
                VAlign::Baseline => 0.0,
            };
        for (i, id, dx) in glyphs {
            let glyph = id.with_scale_and_position(scale, point(left + dx, baseline));
            let Some(outline) = self.fonts[i].outline_glyph(glyph) else {
                continue; // a space
            };
            let bounds = outline.px_bounds();
            let (bx, by) = (bounds.min.x as i32, bounds.min.y as i32);
            let mut result = Ok(());
            outline.draw(|gx, gy, coverage| {
                if result.is_ok() && coverage > 0.02 {
                    let at = (bx + gx as i32, by + gy as i32);
                    let ink = color.mix(f64::from(coverage.min(1.0)));
                    result = area.draw_pixel(at, &ink).map_err(draw_err);
                }
            });
            result?;
        }
        Ok(())
    }
}

/// What a notice's chart shows.
#[derive(Debug, Clone)]
pub struct ChartInput<'a> {
    pub vm: &'a str,
    pub resource: Resource,
    /// Percent samples, in any order; samples outside `window` are left out.
    pub points: &'a [(DateTime<Utc>, f64)],
    /// The evaluation window, start and end.
    pub window: (DateTime<Utc>, DateTime<Utc>),
    /// The downsize comparison as the rules write it, e.g. `"<= 25"`, and its value.
    pub downsize: (String, f64),
    /// The expansion comparison, e.g. `"> 75"`, and its value.
    pub expand: (String, f64),
    /// The statistic's name, e.g. `"p95"`, and its value (not finite: not drawn).
    pub statistic: (String, f64),
    pub verdict: Verdict,
}

/// The fixed words of a chart in one language.
struct Words {
    /// Comparisons written compactly with math signs: `≤25` rather than `<= 25`.
    math_signs: bool,
    title: fn(&str, Resource, i64) -> String,
    usage: &'static str,
    usage_bucketed: &'static str,
    downsize: &'static str,
    expand: &'static str,
    statistic: &'static str,
    not_available: &'static str,
    verdict: fn(Verdict) -> &'static str,
}

/// Every Chinese character the Chinese labels use; a font must have all of them to be used for
/// Chinese labels. Keep in sync with `CHINESE` (a test checks).
const ZH: &str =
    "CPU内存硬盘使用率近天区间最大值核减阈值扩容统计无结论资源建议正常数据不足≤≥（）：";

const CHINESE: Words = Words {
    math_signs: true,
    title: |vm, resource, days| {
        let what = match resource {
            Resource::Cpu => "CPU使用率",
            Resource::Memory => "内存使用率",
            Resource::Disk => "硬盘使用率",
        };
        format!("{vm} {what} 近{days}天")
    },
    usage: "使用率",
    usage_bucketed: "使用率（区间最大值）",
    downsize: "核减阈值",
    expand: "扩容阈值",
    statistic: "统计值",
    not_available: "无",
    verdict: |v| match v {
        Verdict::Downsize => "结论：资源核减",
        Verdict::Expand => "结论：建议扩容",
        Verdict::Ok => "结论：正常",
        Verdict::InsufficientData => "结论：数据不足",
        Verdict::Unused => "结论：疑似闲置",
        Verdict::InUse => "结论：在用",
    },
};

const LATIN: Words = Words {
    math_signs: false,
    title: |vm, resource, days| {
        let what = match resource {
            Resource::Cpu => "CPU usage",
            Resource::Memory => "memory usage",
            Resource::Disk => "disk usage",
        };
        format!("{vm} {what}, last {days} days")
    },
    usage: "usage",
    usage_bucketed: "usage (max per interval)",
    downsize: "downsize threshold",
    expand: "expansion threshold",
    statistic: "statistic",
    not_available: "n/a",
    verdict: |v| match v {
        Verdict::Downsize => "verdict: downsize",
        Verdict::Expand => "verdict: expand",
        Verdict::Ok => "verdict: ok",
        Verdict::InsufficientData => "verdict: insufficient data",
        Verdict::Unused => "verdict: unused",
        Verdict::InUse => "verdict: in use",
    },
};

const SAMPLE_COLOR: RGBColor = RGBColor(105, 105, 115);
const DOWNSIZE_COLOR: RGBColor = RGBColor(0, 145, 70);
const EXPAND_COLOR: RGBColor = RGBColor(215, 40, 40);
const STATISTIC_COLOR: RGBColor = RGBColor(25, 90, 220);
const GRID_COLOR: RGBColor = RGBColor(232, 232, 232);
const AXIS_COLOR: RGBColor = RGBColor(150, 150, 150);
const TEXT_COLOR: RGBColor = RGBColor(30, 30, 30);
const MUTED_TEXT_COLOR: RGBColor = RGBColor(90, 90, 90);

const TITLE_SIZE: f32 = 19.0;
const TEXT_SIZE: f32 = 14.0;
const TICK_SIZE: f32 = 13.0;
const LEGEND_ROW: i32 = 22;
const PLOT_LEFT: i32 = 52;
const PLOT_RIGHT: i32 = 18;
const PLOT_BOTTOM: i32 = 28;

/// The space between two legend entries of the notice chart.
const LEGEND_SPACING: i32 = 22;

/// How a legend entry's line sample is drawn: its colour and width in pixels.
#[derive(Clone, Copy)]
pub(crate) enum Stroke {
    Solid(RGBColor, u32),
    Dashed(RGBColor, u32),
}

/// Renders the chart of `input` as an 800x400 PNG. `labels` is the wanted language; it falls
/// back as [`ChartFonts::labels`] says, and with no usable font the chart has no text.
pub fn render_png(
    input: &ChartInput,
    fonts: &ChartFonts,
    labels: Labels,
) -> Result<Vec<u8>, ChartError> {
    let (start, end) = input.window;
    if end <= start {
        return Err(ChartError::EmptyWindow { start, end });
    }
    let mut rgb = vec![0u8; (CHART_WIDTH * CHART_HEIGHT * 3) as usize];
    {
        let root =
            BitMapBackend::with_buffer(&mut rgb, (CHART_WIDTH, CHART_HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        draw_chart(&root, input, fonts.pen(labels))?;
        root.present().map_err(draw_err)?;
    }
    encode_png(&rgb, CHART_WIDTH, CHART_HEIGHT)
}

/// The drawing area of an RGB buffer that charts are drawn on.
pub(crate) type Root<'b> = DrawingArea<BitMapBackend<'b>, Shift>;

fn draw_chart(
    root: &Root<'_>,
    input: &ChartInput,
    pen: Option<(Pen, Labels)>,
) -> Result<(), ChartError> {
    let (start, end) = input.window;
    let (t0, t1) = (start.timestamp(), end.timestamp());
    let points = prepare_points(input.points, start, end);
    let bucketed = points.len() > MAX_DRAWN_POINTS;
    let points = downsample(&points, t0, t1, MAX_DRAWN_POINTS);

    let words = match pen {
        Some((_, Labels::Chinese)) => &CHINESE,
        _ => &LATIN,
    };
    let pen = pen.map(|(pen, _)| pen);
    let stat_ok = input.statistic.1.is_finite();
    let legend: Vec<(String, Stroke)> = vec![
        (
            if bucketed {
                words.usage_bucketed
            } else {
                words.usage
            }
            .to_owned(),
            Stroke::Solid(SAMPLE_COLOR, 1),
        ),
        (
            format!(
                "{} {}%",
                words.downsize,
                comparison(&input.downsize.0, words)
            ),
            Stroke::Dashed(DOWNSIZE_COLOR, 2),
        ),
        (
            format!("{} {}%", words.expand, comparison(&input.expand.0, words)),
            Stroke::Dashed(EXPAND_COLOR, 2),
        ),
        (
            if stat_ok {
                format!(
                    "{} {} = {:.1}%",
                    words.statistic, input.statistic.0, input.statistic.1
                )
            } else {
                format!(
                    "{} {} = {}",
                    words.statistic, input.statistic.0, words.not_available
                )
            },
            Stroke::Solid(STATISTIC_COLOR, 2),
        ),
    ];

    // Header: title and verdict on one line, then the legend, wrapped to as many rows as needed.
    let mut top = 40;
    if let Some(pen) = &pen {
        let days = ((t1 - t0) as f64 / 86_400.0).round().max(1.0) as i64;
        let title = (words.title)(input.vm, input.resource, days);
        let baseline = 27;
        pen.draw(
            root,
            &title,
            TITLE_SIZE,
            (14, baseline),
            HAlign::Left,
            VAlign::Baseline,
            TEXT_COLOR,
        )?;
        let verdict_color = match input.verdict {
            Verdict::Downsize => DOWNSIZE_COLOR,
            Verdict::Expand | Verdict::Unused => EXPAND_COLOR,
            Verdict::Ok | Verdict::InsufficientData | Verdict::InUse => MUTED_TEXT_COLOR,
        };
        pen.draw(
            root,
            (words.verdict)(input.verdict),
            TEXT_SIZE + 1.0,
            (CHART_WIDTH as i32 - PLOT_RIGHT, baseline),
            HAlign::Right,
            VAlign::Baseline,
            verdict_color,
        )?;
        let right = CHART_WIDTH as i32 - PLOT_RIGHT;
        top = draw_legend(root, pen, &legend, (top, right), LEGEND_SPACING)?;
    }
    let top = top + 6;

    let mut chart = ChartBuilder::on(root)
        .margin_top(top)
        .margin_right(PLOT_RIGHT)
        .margin_left(PLOT_LEFT)
        .margin_bottom(PLOT_BOTTOM)
        .build_cartesian_2d(t0..t1, 0f64..100f64)
        .map_err(draw_err)?;

    // Grid: every 10%, and every Asia/Shanghai midnight (or every labelled one on long windows).
    let days = shanghai_midnights(start, end);
    let step = days.len().div_ceil(10).max(1);
    let day_lines: Vec<(usize, i64)> = days
        .iter()
        .enumerate()
        .filter(|(i, _)| days.len() <= 62 || i % step == 0)
        .map(|(i, d)| (i, d.timestamp()))
        .collect();
    let grid = ShapeStyle::from(GRID_COLOR).stroke_width(1);
    chart
        .draw_series((1..10).map(|i| {
            let y = f64::from(i) * 10.0;
            PathElement::new(vec![(t0, y), (t1, y)], grid)
        }))
        .map_err(draw_err)?;
    chart
        .draw_series(
            day_lines
                .iter()
                .map(|&(_, t)| PathElement::new(vec![(t, 0.0), (t, 100.0)], grid)),
        )
        .map_err(draw_err)?;
    let (left, upper) = chart.backend_coord(&(t0, 100.0));
    let (right, lower) = chart.backend_coord(&(t1, 0.0));
    root.draw(&Rectangle::new(
        [(left, upper), (right, lower)],
        ShapeStyle::from(AXIS_COLOR).stroke_width(1),
    ))
    .map_err(draw_err)?;

    // The samples, broken where the agent was silent, a lone sample as a dot.
    let pixel = |(t, v): (i64, f64)| (t, v.clamp(0.0, 100.0));
    for run in runs(&points) {
        if let [only] = run {
            chart
                .draw_series(std::iter::once(Circle::new(
                    pixel(*only),
                    2,
                    SAMPLE_COLOR.filled(),
                )))
                .map_err(draw_err)?;
        } else {
            chart
                .draw_series(LineSeries::new(
                    run.iter().copied().map(pixel),
                    ShapeStyle::from(SAMPLE_COLOR).stroke_width(1),
                ))
                .map_err(draw_err)?;
        }
    }

    // Thresholds (dashed) and the statistic (solid), drawn over the samples.
    for (value, color) in [
        (input.downsize.1, DOWNSIZE_COLOR),
        (input.expand.1, EXPAND_COLOR),
    ] {
        if value.is_finite() {
            let v = value.clamp(0.0, 100.0);
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(t0, v), (t1, v)],
                    9,
                    5,
                    ShapeStyle::from(color).stroke_width(2),
                ))
                .map_err(draw_err)?;
        }
    }
    if stat_ok {
        let v = input.statistic.1.clamp(0.0, 100.0);
        chart
            .draw_series(LineSeries::new(
                vec![(t0, v), (t1, v)],
                ShapeStyle::from(STATISTIC_COLOR).stroke_width(2),
            ))
            .map_err(draw_err)?;
    }

    // Axis labels: percent on the left, MM-DD (Asia/Shanghai) below.
    if let Some(pen) = &pen {
        for pct in (0..=100).step_by(20) {
            let (_, y) = chart.backend_coord(&(t0, f64::from(pct)));
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
        let tick = ShapeStyle::from(AXIS_COLOR).stroke_width(1);
        for (i, day) in days.iter().enumerate() {
            if i % step != 0 {
                continue;
            }
            let (x, _) = chart.backend_coord(&(day.timestamp(), 0.0));
            root.draw(&PathElement::new(vec![(x, lower), (x, lower + 4)], tick))
                .map_err(draw_err)?;
            let label = day.with_timezone(&Shanghai).format("%m-%d").to_string();
            pen.draw(
                root,
                &label,
                TICK_SIZE,
                (x, lower + 6),
                HAlign::Center,
                VAlign::Top,
                MUTED_TEXT_COLOR,
            )?;
        }
    }
    Ok(())
}

/// Draws the legend entries (text and line sample) left to right from `top`, starting at the
/// plot's left edge and wrapping to a new row when the next entry would pass `right`, with
/// `spacing` pixels between entries. Returns the y just below the last row. Text size, colour
/// and row height are this module's. The annual review's utilisation chart draws its legend
/// with it too.
pub(crate) fn draw_legend(
    root: &Root<'_>,
    pen: &Pen,
    entries: &[(impl AsRef<str>, Stroke)],
    (top, right): (i32, i32),
    spacing: i32,
) -> Result<i32, ChartError> {
    const SAMPLE_LEN: i32 = 26;
    const GAP: i32 = 6;
    let (x_min, x_max) = (PLOT_LEFT, right);
    let (mut x, mut y) = (x_min, top + LEGEND_ROW / 2);
    for (text, stroke) in entries {
        let text = text.as_ref();
        let width = SAMPLE_LEN + GAP + pen.width(TEXT_SIZE, text);
        if x > x_min && x + width > x_max {
            x = x_min;
            y += LEGEND_ROW;
        }
        match *stroke {
            Stroke::Solid(color, w) => {
                let s = ShapeStyle::from(color).stroke_width(w);
                root.draw(&PathElement::new(vec![(x, y), (x + SAMPLE_LEN, y)], s))
                    .map_err(draw_err)?;
            }
            Stroke::Dashed(color, w) => {
                let s = ShapeStyle::from(color).stroke_width(w);
                for (a, b) in [(0, 9), (14, SAMPLE_LEN)] {
                    root.draw(&PathElement::new(vec![(x + a, y), (x + b, y)], s))
                        .map_err(draw_err)?;
                }
            }
        }
        pen.draw(
            root,
            text,
            TEXT_SIZE,
            (x + SAMPLE_LEN + GAP, y),
            HAlign::Left,
            VAlign::Center,
            TEXT_COLOR,
        )?;
        x += width + spacing;
    }
    Ok(y + LEGEND_ROW / 2)
}

/// A rules comparison (`"<= 25"`) as the legend shows it: `≤25` in Chinese, as written in Latin.
fn comparison(rule: &str, words: &Words) -> String {
    if words.math_signs {
        rule.replace("<=", "≤").replace(">=", "≥").replace(' ', "")
    } else {
        rule.trim().to_owned()
    }
}

/// The finite samples inside `start..=end`, as (Unix seconds, percent), sorted by time.
fn prepare_points(
    points: &[(DateTime<Utc>, f64)],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Vec<(i64, f64)> {
    let mut out: Vec<(i64, f64)> = points
        .iter()
        .filter(|(at, v)| v.is_finite() && *at >= start && *at <= end)
        .map(|(at, v)| (at.timestamp(), *v))
        .collect();
    out.sort_by_key(|&(t, _)| t);
    out
}

/// Reduces time-sorted `points` in `t0..=t1` to at most `max` by splitting the time range into
/// `max` equal buckets and keeping each bucket's highest sample (the first, on ties), at its
/// own time. Fewer than `max` points are returned unchanged.
fn downsample(points: &[(i64, f64)], t0: i64, t1: i64, max: usize) -> Vec<(i64, f64)> {
    if points.len() <= max || max == 0 {
        return points.to_vec();
    }
    let span = i128::from(t1) - i128::from(t0);
    let buckets = max as i128;
    let bucket_of = |t: i64| -> i128 {
        if span <= 0 {
            return 0;
        }
        ((i128::from(t) - i128::from(t0)) * buckets / span).clamp(0, buckets - 1)
    };
    let mut out: Vec<(i64, f64)> = Vec::with_capacity(max);
    let mut current: Option<i128> = None;
    for &(t, v) in points {
        let b = bucket_of(t);
        match out.last_mut() {
            Some(last) if current == Some(b) => {
                if v > last.1 {
                    *last = (t, v);
                }
            }
            _ => {
                out.push((t, v));
                current = Some(b);
            }
        }
    }
    out
}

/// Splits time-sorted points where the gap between two samples is larger than three times the
/// usual (median) interval and larger than an hour: the agent was silent, draw no line there.
fn runs(points: &[(i64, f64)]) -> Vec<&[(i64, f64)]> {
    if points.is_empty() {
        return Vec::new();
    }
    let mut gaps: Vec<i64> = points.windows(2).map(|w| w[1].0 - w[0].0).collect();
    gaps.sort_unstable();
    let median = gaps.get(gaps.len() / 2).copied().unwrap_or(0);
    let limit = median.saturating_mul(3).max(3_600);
    let mut out = Vec::new();
    let mut from = 0;
    for i in 1..points.len() {
        if points[i].0 - points[i - 1].0 > limit {
            out.push(&points[from..i]);
            from = i;
        }
    }
    out.push(&points[from..]);
    out
}

/// The Asia/Shanghai midnights inside `start..=end` (at most 10,000 days are looked at).
fn shanghai_midnights(start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut day: NaiveDate = start.with_timezone(&Shanghai).date_naive();
    for _ in 0..10_000 {
        let Some(midnight) = day
            .and_hms_opt(0, 0, 0)
            .and_then(|m| Shanghai.from_local_datetime(&m).earliest())
            .map(|m| m.with_timezone(&Utc))
        else {
            break;
        };
        if midnight > end {
            break;
        }
        if midnight >= start {
            out.push(midnight);
        }
        let Some(next) = day.checked_add_signed(TimeDelta::days(1)) else {
            break;
        };
        day = next;
    }
    out
}

/// `rgb`, `width` x `height` 8-bit RGB pixels, as a PNG.
pub(crate) fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, ChartError> {
    use image::ImageEncoder;
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Best, FilterType::Adaptive)
        .write_image(rgb, width, height, image::ColorType::Rgb8)
        .map_err(|e| ChartError::Encode(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::{Datelike, Timelike};

    /// Debian's fonts (`fonts-wqy-microhei`, `fonts-dejavu-core`), which `.ci/run` installs.
    pub(crate) const CJK_FONT: &str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc";
    pub(crate) const LATIN_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

    /// The font's bytes, or `None` with a note (the case is then skipped).
    pub(crate) fn font(path: &str) -> Option<Vec<u8>> {
        match std::fs::read(path) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                eprintln!("note: skipping a font case: cannot read {path}: {e}");
                None
            }
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test timestamp")
            .with_timezone(&Utc)
    }

    /// 30 days to 2025-06-30 16:00 UTC (midnight in Shanghai).
    fn window() -> (DateTime<Utc>, DateTime<Utc>) {
        let end = at("2025-06-30T16:00:00Z");
        (end - TimeDelta::days(30), end)
    }

    /// A plausible idle VM, one sample every 5 minutes (8,640, so the chart downsamples): CPU
    /// 4-9% at night and at weekends, 8-16% in Shanghai office hours on weekdays, and a short
    /// nightly backup peak around 20% at 02:00.
    fn idle_cpu() -> Vec<(DateTime<Utc>, f64)> {
        let (start, end) = window();
        let mut out = Vec::new();
        let mut t = start + TimeDelta::minutes(5);
        let mut seed: u32 = 12_345;
        while t <= end {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let noise = f64::from((seed >> 16) & 0x7fff) / 32_768.0; // 0..1
            let local = t.with_timezone(&Shanghai);
            let (hour, minute) = (local.hour(), local.minute());
            let weekday = local.weekday().num_days_from_monday() < 5;
            let office = weekday && ((9..12).contains(&hour) || (14..17).contains(&hour));
            let v = if hour == 2 && minute < 15 {
                17.0 + noise * 5.0
            } else if office {
                8.0 + noise * 8.0
            } else {
                4.0 + noise * 5.0
            };
            out.push((t, v));
            t += TimeDelta::minutes(5);
        }
        out
    }

    fn input<'a>(points: &'a [(DateTime<Utc>, f64)], p95: f64) -> ChartInput<'a> {
        ChartInput {
            vm: "vm-ga-web-01",
            resource: Resource::Cpu,
            points,
            window: window(),
            downsize: ("<= 25".to_owned(), 25.0),
            expand: ("> 75".to_owned(), 75.0),
            statistic: ("p95".to_owned(), p95),
            verdict: Verdict::Downsize,
        }
    }

    /// Checks the PNG signature and decodes it; returns the pixels.
    fn decode(png: &[u8]) -> image::RgbImage {
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        let img = image::load_from_memory_with_format(png, image::ImageFormat::Png)
            .expect("decodes as PNG")
            .to_rgb8();
        assert_eq!(img.dimensions(), (CHART_WIDTH, CHART_HEIGHT));
        img
    }

    fn p95(points: &[(DateTime<Utc>, f64)]) -> f64 {
        let mut v: Vec<f64> = points.iter().map(|p| p.1).collect();
        v.sort_by(f64::total_cmp);
        v[(v.len() * 95).div_ceil(100) - 1]
    }

    #[test]
    fn chinese_chart_is_an_800x400_png_with_text() {
        let Some(cjk) = font(CJK_FONT) else { return };
        let fonts = ChartFonts::register(Some(cjk), None).expect("register");
        assert_eq!(fonts.labels(Labels::Chinese), Labels::Chinese);
        let points = idle_cpu();
        let input = input(&points, p95(&points));
        let chinese = render_png(&input, &fonts, Labels::Chinese).expect("render");
        let chinese_px = decode(&chinese);

        let none = ChartFonts::register(None, None).expect("register nothing");
        let plain = render_png(&input, &none, Labels::Chinese).expect("render without fonts");
        let plain_px = decode(&plain);
        assert_ne!(chinese_px, plain_px, "text was drawn");
        // The title band is empty without a font, and has ink with one.
        let ink = |img: &image::RgbImage| {
            (0..CHART_WIDTH)
                .flat_map(|x| (0..30).map(move |y| (x, y)))
                .filter(|&(x, y)| img.get_pixel(x, y).0 != [255, 255, 255])
                .count()
        };
        assert_eq!(ink(&plain_px), 0);
        assert!(ink(&chinese_px) > 200);

        // The same chart with Latin labels from the same (CJK) font differs again.
        let latin = render_png(&input, &fonts, Labels::Latin).expect("render latin");
        assert_ne!(decode(&latin), chinese_px);
    }

    #[test]
    fn latin_fallback_without_a_cjk_font() {
        let Some(latin) = font(LATIN_FONT) else {
            return;
        };
        let fonts = ChartFonts::register(None, Some(latin)).expect("register");
        assert_eq!(fonts.labels(Labels::Chinese), Labels::Latin);
        assert_eq!(fonts.labels(Labels::Latin), Labels::Latin);
        let points = idle_cpu();
        let png = render_png(&input(&points, 14.0), &fonts, Labels::Chinese).expect("render");
        decode(&png);
    }

    #[test]
    fn a_latin_font_given_as_cjk_is_not_used_for_chinese() {
        let Some(latin) = font(LATIN_FONT) else {
            return;
        };
        let fonts = ChartFonts::register(Some(latin), None).expect("register");
        assert_eq!(fonts.labels(Labels::Chinese), Labels::Latin);
        let (pen, labels) = fonts
            .pen(Labels::Chinese)
            .expect("still good for Latin labels");
        assert_eq!(labels, Labels::Latin);
        // A character no font has is left out, not drawn as a box.
        assert_eq!(pen.glyphs("核减 ok").len(), 3, "space, o, k");
    }

    #[test]
    fn no_font_renders_without_text() {
        let fonts = ChartFonts::register(None, None).expect("register nothing");
        assert_eq!(fonts.labels(Labels::Chinese), Labels::Latin);
        let points = idle_cpu();
        decode(&render_png(&input(&points, 14.0), &fonts, Labels::Latin).expect("render"));
    }

    #[test]
    fn not_a_font_is_an_error() {
        let err = ChartFonts::register(Some(b"not a font".to_vec()), None).expect_err("invalid");
        assert!(
            matches!(err, ChartError::InvalidFont { which: "CJK" }),
            "{err}"
        );
    }

    #[test]
    fn empty_points_still_render_the_thresholds() {
        let fonts = match font(CJK_FONT) {
            Some(cjk) => ChartFonts::register(Some(cjk), None).expect("register"),
            None => ChartFonts::register(None, None).expect("register nothing"),
        };
        let mut empty = input(&[], f64::NAN);
        empty.verdict = Verdict::InsufficientData;
        let img = decode(&render_png(&empty, &fonts, Labels::Chinese).expect("render"));
        // Inside the plot only: the legend above it shows every colour.
        let has = |c: RGBColor| {
            (PLOT_LEFT as u32 + 2..CHART_WIDTH - PLOT_RIGHT as u32 - 2)
                .flat_map(|x| (100..CHART_HEIGHT - PLOT_BOTTOM as u32 - 2).map(move |y| (x, y)))
                .any(|(x, y)| img.get_pixel(x, y).0 == [c.0, c.1, c.2])
        };
        assert!(has(DOWNSIZE_COLOR), "downsize threshold drawn");
        assert!(has(EXPAND_COLOR), "expansion threshold drawn");
        assert!(!has(SAMPLE_COLOR), "no samples drawn");
    }

    #[test]
    fn an_empty_window_is_an_error() {
        let fonts = ChartFonts::register(None, None).expect("register nothing");
        let mut bad = input(&[], 1.0);
        bad.window = (window().1, window().0);
        assert!(matches!(
            render_png(&bad, &fonts, Labels::Latin),
            Err(ChartError::EmptyWindow { .. })
        ));
    }

    #[test]
    fn downsampling_keeps_the_maximum() {
        let points: Vec<(i64, f64)> = (0..10_000).map(|i| (i, (i % 97) as f64 / 10.0)).collect();
        let mut with_peak = points.clone();
        with_peak[7_777].1 = 99.5;
        let out = downsample(&with_peak, 0, 9_999, 2_000);
        assert!(out.len() <= 2_000);
        assert!(
            out.contains(&(7_777, 99.5)),
            "the peak survives at its own time"
        );
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0), "still sorted");
        // Each bucket of 5 samples keeps its largest.
        for &(t, v) in &out {
            let bucket = &with_peak[(t as usize / 5) * 5..(t as usize / 5) * 5 + 5];
            let max = bucket.iter().map(|p| p.1).fold(f64::MIN, f64::max);
            assert_eq!(v, max, "bucket of {t}");
        }
        // Few points pass through unchanged.
        assert_eq!(
            downsample(&points[..50], 0, 49, 2_000),
            points[..50].to_vec()
        );
    }

    #[test]
    fn points_outside_the_window_are_left_out_and_sorted() {
        let (start, end) = window();
        let pts = [
            (end, 3.0),
            (start - TimeDelta::seconds(1), 50.0),
            (start, 1.0),
            (end + TimeDelta::seconds(1), 60.0),
            (start + TimeDelta::days(1), f64::NAN),
        ];
        let got = prepare_points(&pts, start, end);
        assert_eq!(got, vec![(start.timestamp(), 1.0), (end.timestamp(), 3.0)]);
    }

    #[test]
    fn silent_stretches_break_the_line() {
        let mut pts: Vec<(i64, f64)> = (0..20).map(|i| (i * 300, 5.0)).collect();
        pts.extend((0..20).map(|i| (100_000 + i * 300, 5.0)));
        let r = runs(&pts);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].len(), 20);
    }

    #[test]
    fn ticks_are_shanghai_midnights() {
        let (start, end) = window();
        let days = shanghai_midnights(start, end);
        assert_eq!(days.len(), 31, "both ends are Shanghai midnights");
        assert_eq!(
            days[0]
                .with_timezone(&Shanghai)
                .format("%m-%d %H:%M")
                .to_string(),
            "06-01 00:00"
        );
    }

    #[test]
    fn every_chinese_label_character_is_checked() {
        let mut words: Vec<String> = vec![
            CHINESE.usage.into(),
            CHINESE.usage_bucketed.into(),
            CHINESE.downsize.into(),
            CHINESE.expand.into(),
            CHINESE.statistic.into(),
            CHINESE.not_available.into(),
            comparison("<= 1 >= 2", &CHINESE),
        ];
        for r in [Resource::Cpu, Resource::Memory, Resource::Disk] {
            words.push((CHINESE.title)("", r, 30));
        }
        for v in [
            Verdict::Downsize,
            Verdict::Expand,
            Verdict::Ok,
            Verdict::InsufficientData,
        ] {
            words.push((CHINESE.verdict)(v).into());
        }
        for c in words.concat().chars() {
            assert!(
                c.is_ascii() || ZH.contains(c),
                "{c:?} is used in a Chinese label but not listed in ZH"
            );
        }
    }

    /// Writes docs/sample-notice-chart.png when CLOUDGOV_WRITE_DOCS=1.
    #[test]
    fn write_sample_for_docs() {
        if std::env::var("CLOUDGOV_WRITE_DOCS").as_deref() != Ok("1") {
            return;
        }
        let cjk = font(CJK_FONT).expect("the sample needs the CJK font");
        let fonts = ChartFonts::register(Some(cjk), None).expect("register");
        let points = idle_cpu();
        let input = input(&points, p95(&points));
        let png = render_png(&input, &fonts, Labels::Chinese).expect("render");
        decode(&png);
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/sample-notice-chart.png");
        std::fs::write(path, png).expect("write the sample");
        eprintln!("wrote {path}");
    }
}
