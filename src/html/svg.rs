//! A small typed SVG builder for the report's charts: rectangles, lines, polylines,
//! markers and text, each with a CSS class (colours come from the page's style sheet, so
//! the same chart reads in light and dark mode) and an optional `<title>` (the hover
//! detail, without JavaScript).
//!
//! Why not a plotting crate: `plotters`' SVG backend (plotters-svg) writes every colour as
//! a fixed `fill="#rrggbb"` / `stroke=` attribute and no class, so `prefers-color-scheme`
//! cannot restyle a chart; it has no dash patterns (the non-colour cue of a series), no
//! `<title>` per mark and no ARIA label, and rounds every coordinate to whole pixels. The
//! charts here are a handful of bars, steps and points on linear or log axes: a builder of
//! a hundred lines draws them, byte for byte the same on every machine (numbers are
//! printed to 0.1 px, text is escaped by [`esc`]).

use super::escape::esc;
use std::fmt::Write;

/// A mark's shape, the non-colour cue of a point's role.
#[derive(Clone, Copy)]
pub(crate) enum Shape {
    Circle,
    Square,
    Diamond,
    Triangle,
}

#[derive(Clone, Copy)]
pub(crate) enum Anchor {
    Start,
    Middle,
    End,
}

/// One chart being drawn: `w` x `h` user units, labelled for screen readers by `label`.
pub(crate) struct Svg {
    w: f64,
    h: f64,
    label: String,
    body: String,
}

/// A coordinate, to 0.1 (finite: NaN and infinities are drawn at 0).
pub(crate) fn n(v: f64) -> String {
    if !v.is_finite() {
        return "0".into();
    }
    let r = (v * 10.0).round() / 10.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

fn tip(t: Option<&str>) -> String {
    t.map_or_else(String::new, |t| format!("<title>{}</title>", esc(t)))
}

impl Svg {
    pub(crate) fn new(w: f64, h: f64, label: &str) -> Svg {
        Svg {
            w,
            h,
            label: label.to_string(),
            body: String::new(),
        }
    }

    pub(crate) fn rect(
        &mut self,
        (x, y, w, h): (f64, f64, f64, f64),
        class: &str,
        t: Option<&str>,
    ) {
        let _ = write!(
            self.body,
            r#"<rect class="{}" x="{}" y="{}" width="{}" height="{}">{}</rect>"#,
            esc(class),
            n(x),
            n(y),
            n(w.max(0.0)),
            n(h.max(0.0)),
            tip(t)
        );
    }

    pub(crate) fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), class: &str) {
        let _ = write!(
            self.body,
            r#"<line class="{}" x1="{}" y1="{}" x2="{}" y2="{}"/>"#,
            esc(class),
            n(x1),
            n(y1),
            n(x2),
            n(y2)
        );
    }

    pub(crate) fn polyline(&mut self, pts: &[(f64, f64)], class: &str, t: Option<&str>) {
        let mut p = String::new();
        for (i, &(x, y)) in pts.iter().enumerate() {
            if i > 0 {
                p.push(' ');
            }
            let _ = write!(p, "{},{}", n(x), n(y));
        }
        let _ = write!(
            self.body,
            r#"<polyline class="{}" points="{p}">{}</polyline>"#,
            esc(class),
            tip(t)
        );
    }

    /// A marker of radius `r` centred at (`x`, `y`).
    pub(crate) fn marker(
        &mut self,
        (x, y): (f64, f64),
        r: f64,
        shape: Shape,
        class: &str,
        t: Option<&str>,
    ) {
        let (c, tt) = (esc(class), tip(t));
        let _ = match shape {
            Shape::Circle => write!(
                self.body,
                r#"<circle class="{c}" cx="{}" cy="{}" r="{}">{tt}</circle>"#,
                n(x),
                n(y),
                n(r)
            ),
            Shape::Square => write!(
                self.body,
                r#"<rect class="{c}" x="{}" y="{}" width="{}" height="{}">{tt}</rect>"#,
                n(x - r),
                n(y - r),
                n(2.0 * r),
                n(2.0 * r)
            ),
            Shape::Diamond => write!(
                self.body,
                r#"<polygon class="{c}" points="{},{} {},{} {},{} {},{}">{tt}</polygon>"#,
                n(x),
                n(y - r * 1.3),
                n(x + r * 1.3),
                n(y),
                n(x),
                n(y + r * 1.3),
                n(x - r * 1.3),
                n(y)
            ),
            Shape::Triangle => write!(
                self.body,
                r#"<polygon class="{c}" points="{},{} {},{} {},{}">{tt}</polygon>"#,
                n(x),
                n(y - r * 1.3),
                n(x + r * 1.2),
                n(y + r),
                n(x - r * 1.2),
                n(y + r)
            ),
        };
    }

    pub(crate) fn text(&mut self, (x, y): (f64, f64), anchor: Anchor, class: &str, text: &str) {
        let a = match anchor {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        };
        let _ = write!(
            self.body,
            r#"<text class="{}" x="{}" y="{}" text-anchor="{a}">{}</text>"#,
            esc(class),
            n(x),
            n(y),
            esc(text)
        );
    }

    /// Text turned a quarter to the left (a vertical axis' title), centred at (`x`, `y`).
    pub(crate) fn text_up(&mut self, (x, y): (f64, f64), class: &str, text: &str) {
        let _ = write!(
            self.body,
            r#"<text class="{}" x="{}" y="{}" text-anchor="middle" transform="rotate(-90 {} {})">{}</text>"#,
            esc(class),
            n(x),
            n(y),
            n(x),
            n(y),
            esc(text)
        );
    }

    /// The `<svg>` element, sized to the width it is given on the page.
    pub(crate) fn finish(self) -> String {
        format!(
            r#"<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}"><title>{}</title>{}</svg>"#,
            n(self.w),
            n(self.h),
            esc(&self.label),
            esc(&self.label),
            self.body
        )
    }
}

impl Svg {
    /// A legend's swatch: decoration beside its text, hidden from screen readers.
    pub(crate) fn finish_swatch(self) -> String {
        format!(
            r#"<svg class="swatch" viewBox="0 0 {} {}" aria-hidden="true">{}</svg>"#,
            n(self.w),
            n(self.h),
            self.body
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short_and_finite_and_text_is_escaped() {
        assert_eq!(n(1.0), "1");
        assert_eq!(n(1.26), "1.3");
        assert_eq!(n(-0.04), "0");
        assert_eq!(n(f64::NAN), "0");
        let mut s = Svg::new(10.0, 10.0, "a<b");
        s.text((1.0, 2.0), Anchor::Start, "t", "</svg><script>");
        let out = s.finish();
        assert!(out.contains("&lt;/svg&gt;&lt;script&gt;"));
        assert!(out.contains(r#"aria-label="a&lt;b""#));
    }
}
