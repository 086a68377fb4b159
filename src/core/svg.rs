//! Hand-written SVG usage charts (no JavaScript): percentage lines over time with threshold lines,
//! axis labels and dates. Pure: the caller passes the points and the labels.
//!
//! Every piece of text is escaped here, because the page embeds the SVG as markup.

use std::fmt::Write;

use chrono::{DateTime, FixedOffset};

/// Width and height of the drawing, in SVG user units.
pub const WIDTH: f64 = 720.0;
pub const HEIGHT: f64 = 220.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 28.0;

/// One line: (Unix seconds, percent) points, oldest first.
#[derive(Debug, Clone)]
pub struct Line {
    pub label: String,
    /// A CSS class (`avg`, `max`) the stylesheet colours.
    pub class: &'static str,
    pub points: Vec<(i64, f64)>,
}

/// A horizontal threshold line.
#[derive(Debug, Clone)]
pub struct ThresholdLine {
    pub value: f64,
    pub label: String,
    /// `downsize` or `expand`, also the CSS class.
    pub class: &'static str,
}

/// One chart: lines over `[from, to)` on a 0..100 % axis.
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    /// A stable id for tests (`chart-cpu`).
    pub id: String,
    pub from: i64,
    pub to: i64,
    /// Points further apart than this are not joined (no line across a gap in the data).
    pub max_gap_secs: i64,
    pub lines: Vec<Line>,
    pub thresholds: Vec<ThresholdLine>,
    /// Shown instead of lines when no line has a point.
    pub no_data: String,
    /// The time zone dates on the axis are shown in.
    pub offset: FixedOffset,
}

/// Escapes text for SVG/XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl Chart {
    /// The x coordinate of instant `ts`.
    pub fn x(&self, ts: i64) -> f64 {
        let span = (self.to - self.from).max(1) as f64;
        LEFT + (ts - self.from) as f64 / span * (WIDTH - LEFT - RIGHT)
    }

    /// The y coordinate of `percent` (clamped to 0..=100).
    pub fn y(&self, percent: f64) -> f64 {
        let p = percent.clamp(0.0, 100.0);
        HEIGHT - BOTTOM - p / 100.0 * (HEIGHT - TOP - BOTTOM)
    }

    /// The path of one line, broken where points are further apart than `max_gap_secs`.
    fn path(&self, points: &[(i64, f64)]) -> String {
        let mut d = String::new();
        for (i, &(ts, v)) in points.iter().enumerate() {
            let near = |j: Option<usize>| {
                j.and_then(|j| points.get(j))
                    .is_some_and(|&(other, _)| (other - ts).abs() <= self.max_gap_secs)
            };
            let joined = near(i.checked_sub(1));
            let cmd = if joined { 'L' } else { 'M' };
            let _ = write!(d, "{cmd}{:.1},{:.1} ", self.x(ts), self.y(v));
            // A point joined to neither neighbour is drawn as a dot (round caps), not nothing.
            if !joined && !near(i.checked_add(1)) {
                d.push_str("h0.1 ");
            }
        }
        d.trim_end().to_owned()
    }

    /// About five date ticks, at midnight in the chart's zone when a day or more apart.
    fn ticks(&self) -> Vec<i64> {
        let span = self.to - self.from;
        if span <= 0 {
            return vec![];
        }
        let day = 86_400;
        let step = if span > 5 * day {
            (span / 5).div_euclid(day).max(1) * day
        } else {
            (span / 5).max(3600)
        };
        let offset = i64::from(self.offset.local_minus_utc());
        // The first local midnight at or after `from`.
        let first = if step % day == 0 {
            (self.from + offset).div_euclid(day) * day - offset + day
        } else {
            self.from
        };
        (0..)
            .map(|i| first + i * step)
            .take_while(|t| *t < self.to)
            .collect()
    }

    fn date_label(&self, ts: i64, with_time: bool) -> String {
        DateTime::from_timestamp(ts, 0)
            .map(|t| {
                let local = t.with_timezone(&self.offset);
                if with_time {
                    local.format("%m-%d %H:%M").to_string()
                } else {
                    local.format("%Y-%m-%d").to_string()
                }
            })
            .unwrap_or_default()
    }

    /// The whole `<svg>` element.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg class="chart" id="{id}" data-testid="{id}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{title}"><title>{title}</title>"#,
            id = escape(&self.id),
            title = escape(&self.title),
        );
        let (x0, x1) = (LEFT, WIDTH - RIGHT);
        // Horizontal grid and y labels every 25 %.
        for p in [0.0, 25.0, 50.0, 75.0, 100.0] {
            let y = self.y(p);
            let _ = write!(
                s,
                r#"<line class="grid" x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}"/><text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">{p}%</text>"#,
                LEFT - 4.0,
                y + 4.0
            );
        }
        let with_time = self.to - self.from <= 5 * 86_400;
        for t in self.ticks() {
            let x = self.x(t);
            let _ = write!(
                s,
                r#"<line class="tick" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}"/><text class="axis" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                HEIGHT - BOTTOM,
                HEIGHT - BOTTOM + 4.0,
                HEIGHT - BOTTOM + 16.0,
                escape(&self.date_label(t, with_time))
            );
        }
        for t in &self.thresholds {
            let y = self.y(t.value);
            let _ = write!(
                s,
                r#"<line class="threshold {class}" data-threshold="{v}" x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}"/><text class="threshold-label {class}" x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"#,
                x1 - 2.0,
                y - 3.0,
                class = t.class,
                v = t.value,
                label = escape(&t.label),
            );
        }
        let has_data = self.lines.iter().any(|l| !l.points.is_empty());
        if has_data {
            for l in &self.lines {
                if l.points.is_empty() {
                    continue;
                }
                let _ = write!(
                    s,
                    r#"<path class="line {}" d="{}"><title>{}</title></path>"#,
                    l.class,
                    self.path(&l.points),
                    escape(&l.label)
                );
            }
        } else {
            let _ = write!(
                s,
                r#"<text class="no-data" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                (x0 + x1) / 2.0,
                (TOP + HEIGHT - BOTTOM) / 2.0,
                escape(&self.no_data)
            );
        }
        // Legend.
        let mut lx = LEFT + 4.0;
        for l in &self.lines {
            let _ = write!(
                s,
                r#"<text class="legend {}" x="{lx:.1}" y="{:.1}">{}</text>"#,
                l.class,
                TOP - 3.0,
                escape(&l.label)
            );
            // Chinese characters are about twice as wide as Latin ones at this size.
            let width: f64 = l
                .label
                .chars()
                .map(|c| if c.is_ascii() { 6.5 } else { 11.5 })
                .sum();
            lx += 16.0 + width;
        }
        s.push_str("</svg>");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(points: Vec<(i64, f64)>) -> Chart {
        Chart {
            title: "CPU <%>".into(),
            id: "chart-cpu".into(),
            from: 0,
            to: 1000,
            max_gap_secs: 200,
            lines: vec![Line {
                label: "avg & max".into(),
                class: "avg",
                points,
            }],
            thresholds: vec![
                ThresholdLine {
                    value: 25.0,
                    label: "downsize ≤ 25%".into(),
                    class: "downsize",
                },
                ThresholdLine {
                    value: 75.0,
                    label: "expand".into(),
                    class: "expand",
                },
            ],
            no_data: "no data".into(),
            offset: FixedOffset::east_opt(8 * 3600).expect("offset"),
        }
    }

    #[test]
    fn points_map_to_the_plot_area() {
        let c = chart(vec![]);
        assert_eq!(c.x(0), LEFT);
        assert_eq!(c.x(1000), WIDTH - RIGHT);
        assert_eq!(c.y(0.0), HEIGHT - BOTTOM);
        assert_eq!(c.y(100.0), TOP);
        assert_eq!(c.y(50.0), (TOP + HEIGHT - BOTTOM) / 2.0);
        // Out-of-range values are clamped to the axis.
        assert_eq!(c.y(150.0), TOP);
    }

    #[test]
    fn lines_break_at_gaps_and_thresholds_sit_at_their_value() {
        let c = chart(vec![(0, 0.0), (100, 100.0), (500, 50.0)]);
        let svg = c.render();
        let expected = format!(
            "M{:.1},{:.1} L{:.1},{:.1} M{:.1},{:.1} h0.1",
            c.x(0),
            c.y(0.0),
            c.x(100),
            c.y(100.0),
            c.x(500),
            c.y(50.0)
        );
        assert!(svg.contains(&expected), "{svg}");
        let y25 = format!(r#"data-threshold="25" x1="{LEFT}" y1="{:.1}""#, c.y(25.0));
        assert!(svg.contains(&y25), "{svg}");
        assert!(svg.contains(r#"class="threshold expand" data-threshold="75""#));
        assert!(!svg.contains("no-data"));
    }

    #[test]
    fn empty_series_says_no_data_and_text_is_escaped() {
        let svg = chart(vec![]).render();
        assert!(svg.contains(r#"class="no-data""#) && svg.contains(">no data<"));
        assert!(!svg.contains("<path"));
        assert!(svg.contains("CPU &lt;%&gt;") && svg.contains("avg &amp; max"));
        assert!(!svg.contains("CPU <%>"));
    }

    #[test]
    fn ticks_fall_on_local_midnights_for_long_spans() {
        // 30 days starting at 2026-11-01 12:00 +08:00.
        let from = DateTime::parse_from_rfc3339("2026-11-01T12:00:00+08:00")
            .expect("time")
            .timestamp();
        let mut c = chart(vec![]);
        c.from = from;
        c.to = from + 30 * 86_400;
        let ticks = c.ticks();
        assert!(!ticks.is_empty());
        for t in ticks {
            assert_eq!(
                (t + 8 * 3600).rem_euclid(86_400),
                0,
                "tick {t} not at midnight"
            );
            assert!(t >= c.from && t < c.to);
        }
        assert!(c.render().contains("2026-11-"));
    }
}
