//! The report's chart kinds, on [`Svg`]: a plot with two labelled axes (linear or log) to
//! draw bands, lines, steps, points and whiskers on in data units ([`Plot`]), horizontal
//! bars with their 95% intervals ([`bars`]), and horizontal stacked bars ([`stacked`]).
//! Every data mark has the class `mark` (the browser test finds the drawn data by it);
//! series take the classes `s0`..`s7` (the page's Okabe–Ito palette, each with its own
//! dash pattern, marker shape or fill pattern besides its colour).

use super::svg::{Anchor, Shape, Svg};

/// Width of every chart, in user units (it scales to the page's width).
pub(crate) const WIDTH: f64 = 720.0;

/// An axis: its title (with the unit), its range, linear or log, and how a tick reads.
pub(crate) struct Axis {
    pub(crate) title: String,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) log: bool,
    /// The ticks to draw (None: about five round numbers).
    pub(crate) ticks: Option<Vec<f64>>,
    pub(crate) show: fn(f64) -> String,
}

impl Axis {
    pub(crate) fn linear(title: &str, min: f64, max: f64, show: fn(f64) -> String) -> Axis {
        let (min, max) = if max > min {
            (min, max)
        } else {
            (min, min + 1.0)
        };
        Axis {
            title: title.to_string(),
            min,
            max,
            log: false,
            ticks: None,
            show,
        }
    }

    /// No axis: a vertical one of categories, labelled row by row.
    fn none() -> Axis {
        Axis {
            title: String::new(),
            min: 0.0,
            max: 1.0,
            log: false,
            ticks: Some(Vec::new()),
            show: |_| String::new(),
        }
    }

    fn frac(&self, v: f64) -> f64 {
        if self.log {
            let (a, b) = (self.min.max(1e-9).ln(), self.max.max(1e-9).ln());
            (v.max(1e-9).ln() - a) / (b - a).max(1e-9)
        } else {
            (v - self.min) / (self.max - self.min)
        }
        .clamp(-0.02, 1.02)
    }

    fn tick_values(&self) -> Vec<f64> {
        if let Some(t) = &self.ticks {
            return t
                .iter()
                .copied()
                .filter(|&v| v >= self.min && v <= self.max)
                .collect();
        }
        let span = self.max - self.min;
        let raw = span / 5.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 2.5, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|s| span / s <= 6.0)
            .unwrap_or(mag * 10.0);
        let first = (self.min / step).ceil() as i64;
        let last = (self.max / step + 1e-9).floor() as i64;
        // At most a few dozen, whatever the range's numbers.
        (first..=last).take(50).map(|k| k as f64 * step).collect()
    }
}

/// A plot area with its axes drawn; marks are placed in data units.
pub(crate) struct Plot {
    svg: Svg,
    x: Axis,
    y: Axis,
    left: f64,
    top: f64,
    w: f64,
    h: f64,
    legend: Vec<(String, String, Option<Shape>)>,
}

const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 46.0;

impl Plot {
    pub(crate) fn new(label: &str, height: f64, x: Axis, y: Axis) -> Plot {
        Plot::build(label, height, x, y, LEFT)
    }

    /// A plot whose left margin (for the vertical axis' labels) is `left`.
    fn build(label: &str, height: f64, x: Axis, y: Axis, left: f64) -> Plot {
        let mut p = Plot {
            svg: Svg::new(WIDTH, height, label),
            x,
            y,
            left,
            top: TOP,
            w: WIDTH - left - RIGHT,
            h: height - TOP - BOTTOM,
            legend: Vec::new(),
        };
        p.axes();
        p
    }

    pub(crate) fn px(&self, v: f64) -> f64 {
        self.left + self.x.frac(v) * self.w
    }

    pub(crate) fn py(&self, v: f64) -> f64 {
        self.top + (1.0 - self.y.frac(v)) * self.h
    }

    fn axes(&mut self) {
        let (l, t, w, h) = (self.left, self.top, self.w, self.h);
        self.svg.rect((l, t, w, h), "area", None);
        for v in self.x.tick_values() {
            let x = self.px(v);
            self.svg.line((x, t), (x, t + h), "grid");
            let s = (self.x.show)(v);
            self.svg.text((x, t + h + 14.0), Anchor::Middle, "tick", &s);
        }
        for v in self.y.tick_values() {
            let y = self.py(v);
            self.svg.line((l, y), (l + w, y), "grid");
            let s = (self.y.show)(v);
            self.svg.text((l - 6.0, y + 4.0), Anchor::End, "tick", &s);
        }
        self.svg.line((l, t + h), (l + w, t + h), "axis");
        self.svg.line((l, t), (l, t + h), "axis");
        let xt = self.x.title.clone();
        let yt = self.y.title.clone();
        self.svg.text(
            (l + w / 2.0, t + h + 34.0),
            Anchor::Middle,
            "axis-title",
            &xt,
        );
        self.svg.text_up((16.0, t + h / 2.0), "axis-title", &yt);
    }

    /// A band over the whole height from `x0` to `x1` (a state over time).
    pub(crate) fn band(&mut self, x0: f64, x1: f64, class: &str, tip: &str) {
        let (a, b) = (self.px(x0), self.px(x1));
        let r = (a, self.top, (b - a).max(1.0), self.h);
        self.svg.rect(r, class, Some(tip));
    }

    /// A vertical line at `x`, labelled at the top (on text row `row`, from 0).
    pub(crate) fn vline(&mut self, x: f64, class: &str, label: &str, row: u8) {
        let px = self.px(x);
        self.svg
            .line((px, self.top), (px, self.top + self.h), class);
        if !label.is_empty() {
            let y = self.top + 11.0 + 13.0 * f64::from(row);
            self.svg.text((px + 3.0, y), Anchor::Start, "note", label);
        }
    }

    /// A line through `pts` (data units); a gap where a value is missing.
    pub(crate) fn line(&mut self, pts: &[(f64, Option<f64>)], class: &str, tip: &str) {
        let mut run: Vec<(f64, f64)> = Vec::new();
        let mut runs = Vec::new();
        for &(x, y) in pts {
            match y.filter(|v| v.is_finite()) {
                Some(y) => run.push((self.px(x), self.py(y))),
                None if !run.is_empty() => runs.push(std::mem::take(&mut run)),
                None => {}
            }
        }
        if !run.is_empty() {
            runs.push(run);
        }
        for r in runs {
            if r.len() == 1 {
                self.svg.marker(r[0], 2.0, Shape::Circle, class, Some(tip));
            } else {
                self.svg.polyline(&r, class, Some(tip));
            }
        }
    }

    /// A step function rising at each `x` to its `y` (a distribution), from (`x0`, 0).
    pub(crate) fn steps(&mut self, x0: f64, pts: &[(f64, f64)], class: &str, tip: &str) {
        let mut out = vec![(self.px(x0), self.py(0.0))];
        let mut last_y = 0.0;
        for &(x, y) in pts {
            out.push((self.px(x), self.py(last_y)));
            out.push((self.px(x), self.py(y)));
            last_y = y;
        }
        self.svg.polyline(&out, class, Some(tip));
    }

    /// A point with its 95% intervals along x and y (whiskers).
    pub(crate) fn point(
        &mut self,
        (x, y): (f64, f64),
        (xlo, xhi, ylo, yhi): (f64, f64, f64, f64),
        shape: Shape,
        class: &str,
        tip: &str,
    ) {
        let (px, py) = (self.px(x), self.py(y));
        self.svg
            .line((self.px(xlo), py), (self.px(xhi), py), "whisker");
        self.svg
            .line((px, self.py(ylo)), (px, self.py(yhi)), "whisker");
        self.svg.marker((px, py), 4.5, shape, class, Some(tip));
    }

    /// Text beside a data point.
    pub(crate) fn label(&mut self, (x, y): (f64, f64), text: &str) {
        let (px, py) = (self.px(x), self.py(y));
        self.svg
            .text((px + 8.0, py - 7.0), Anchor::Start, "note", text);
    }

    /// An entry of the legend under the plot: the series' class and, for points, shape.
    pub(crate) fn legend(&mut self, name: &str, class: &str, shape: Option<Shape>) {
        self.legend
            .push((name.to_string(), class.to_string(), shape));
    }

    pub(crate) fn finish(self) -> String {
        let mut out = self.svg.finish();
        if !self.legend.is_empty() {
            out += &legend_html(&self.legend);
        }
        out
    }
}

/// The legend as HTML under the chart (it wraps, and reads as text): a swatch of each
/// series, drawn as the chart draws it.
fn legend_html(items: &[(String, String, Option<Shape>)]) -> String {
    let mut s = String::from(r#"<ul class="legend">"#);
    for (name, class, shape) in items {
        let mut sw = Svg::new(28.0, 12.0, "");
        match shape {
            Some(sh) => sw.marker((14.0, 6.0), 4.5, *sh, class, None),
            None if ["line", "threshold", "frontier"]
                .iter()
                .any(|c| class.split(' ').any(|k| k == *c)) =>
            {
                sw.line((0.0, 6.0), (28.0, 6.0), class)
            }
            None => sw.rect((0.0, 0.0, 28.0, 12.0), class, None),
        }
        s += &format!(
            r#"<li>{}{}</li>"#,
            sw.finish_swatch(),
            super::escape::esc(name)
        );
    }
    s += "</ul>";
    s
}

/// One bar of [`bars`]: a share with its 95% interval.
pub(crate) struct Bar {
    pub(crate) label: String,
    pub(crate) share: f64,
    pub(crate) lo: f64,
    pub(crate) hi: f64,
    pub(crate) class: String,
    pub(crate) tip: String,
}

/// Horizontal bars of shares (0 to 1) with interval whiskers, labelled on the left.
pub(crate) fn bars(label: &str, rows: &[Bar], x_title: &str) -> String {
    const ROW: f64 = 22.0;
    let h = TOP + BOTTOM + ROW * rows.len().max(1) as f64;
    let mut p = Plot::build(
        label,
        h,
        Axis::linear(x_title, 0.0, 1.0, super::format::pct_tick),
        Axis::none(),
        LEFT + 110.0,
    );
    for (i, b) in rows.iter().enumerate() {
        let y = p.top + ROW * i as f64;
        let (x0, x1) = (p.px(0.0), p.px(b.share));
        p.svg
            .text((p.left - 6.0, y + 15.0), Anchor::End, "tick", &b.label);
        // A share of 0 still shows: a sliver at the axis.
        let class = format!("mark bar {}", b.class);
        p.svg.rect(
            (x0, y + 4.0, (x1 - x0).max(1.5), ROW - 8.0),
            &class,
            Some(&b.tip),
        );
        let (lo, hi) = (p.px(b.lo), p.px(b.hi));
        p.svg
            .line((lo, y + ROW / 2.0), (hi, y + ROW / 2.0), "whisker");
        p.svg.line((lo, y + 6.0), (lo, y + ROW - 6.0), "whisker");
        p.svg.line((hi, y + 6.0), (hi, y + ROW - 6.0), "whisker");
        let v = super::format::pct(b.share);
        let right = hi.max(x1) + 5.0;
        if right > p.left + p.w - 40.0 {
            p.svg
                .text((x0 + 5.0, y + 15.0), Anchor::Start, "inside", &v);
        } else {
            p.svg.text((right, y + 15.0), Anchor::Start, "note", &v);
        }
    }
    p.svg.finish()
}

/// One stacked bar: its label and its segments (share of the whole, name, series index).
pub(crate) struct Stack {
    pub(crate) label: String,
    pub(crate) parts: Vec<(f64, String, usize)>,
}

/// Horizontal stacked bars of shares (0 to `max`), one per row, with a legend of the
/// series (`names`, by index). Segments are filled with the series' pattern.
pub(crate) fn stacked(label: &str, rows: &[Stack], names: &[String], x_title: &str) -> String {
    const ROW: f64 = 22.0;
    let h = TOP + BOTTOM + ROW * rows.len().max(1) as f64;
    let max = rows
        .iter()
        .map(|r| r.parts.iter().map(|p| p.0).sum::<f64>())
        .fold(0.0, f64::max);
    let max = if max > 0.0 { (max * 1.1).min(1.0) } else { 1.0 };
    let mut p = Plot::build(
        label,
        h,
        Axis::linear(x_title, 0.0, max, super::format::pct_tick),
        Axis::none(),
        LEFT + 110.0,
    );
    for (i, r) in rows.iter().enumerate() {
        let y = p.top + ROW * i as f64;
        p.svg
            .text((p.left - 6.0, y + 15.0), Anchor::End, "tick", &r.label);
        let mut at = 0.0;
        for (share, name, s) in &r.parts {
            let (x0, x1) = (p.px(at), p.px(at + share));
            let tip = format!("{}: {name}, {}", r.label, super::format::pct(*share));
            let class = format!("mark bar s{} p{}", s % 8, s % 8);
            p.svg.rect(
                (x0, y + 4.0, (x1 - x0).max(1.0), ROW - 8.0),
                &class,
                Some(&tip),
            );
            at += share;
        }
    }
    for (i, n) in names.iter().enumerate() {
        p.legend(n, &format!("bar s{} p{}", i % 8, i % 8), None);
    }
    p.finish()
}
