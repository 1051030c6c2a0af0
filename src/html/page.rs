//! The page every report shares: the document, its style sheet (light and dark, the
//! Okabe–Ito palette with a dash pattern and a fill pattern per series), the header (plan,
//! release, seed, semantics, scenario source or trace, tool version), and tables whose
//! number cells carry the JSON pointer and the exact value they show (`data-path`,
//! `data-value`).

use super::doc::At;
use super::escape::esc;

/// What a report says about itself beside its document: the plan's release and the tool.
pub(crate) struct About {
    /// `v1.0.0 → v1.1.0`.
    pub(crate) release: String,
    /// The tool's version (`plan 0.1.0`).
    pub(crate) tool: String,
}

const STYLE: &str = r#"
:root{color-scheme:light dark;--bg:#fff;--fg:#1a1a1a;--muted:#5a5a5a;--line:#d0d0d0;--area:#fafafa;
--c0:#0072B2;--c1:#E69F00;--c2:#009E73;--c3:#D55E00;--c4:#CC79A7;--c5:#56B4E9;--c6:#B8A800;--c7:#6b6b6b;
--pending:rgba(230,159,0,.22);--firing:rgba(213,94,0,.32);--threshold:#1a1a1a}
@media (prefers-color-scheme:dark){:root{--bg:#141414;--fg:#e6e6e6;--muted:#a8a8a8;--line:#3a3a3a;--area:#1c1c1c;
--c0:#56B4E9;--c5:#8fd0f5;--c6:#F0E442;--c7:#b0b0b0;--pending:rgba(230,159,0,.25);--firing:rgba(255,120,60,.35);--threshold:#f0f0f0}}
body{background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:980px;padding:1rem 1.25rem 3rem}
h1{font-size:1.5rem;margin:.5rem 0}h2{font-size:1.2rem;margin:2rem 0 .5rem;border-bottom:1px solid var(--line)}
h3{font-size:1.05rem;margin:1.5rem 0 .25rem}
p.note,figcaption{color:var(--muted)}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid var(--line);padding:.2rem .6rem;text-align:left;vertical-align:top}
td[data-value]{text-align:right}
table.about th{font-weight:600;color:var(--muted)}
figure{margin:1rem 0}
svg.chart{width:100%;height:auto;display:block;font-size:11px}
svg.chart .area{fill:var(--area);stroke:none}
svg.chart .grid{stroke:var(--line);stroke-width:.6}
svg.chart .axis{stroke:var(--fg);stroke-width:1}
svg.chart text{fill:var(--fg)}svg.chart .tick,svg.chart .note{fill:var(--muted)}
svg.chart .inside{fill:#fff;font-weight:600;paint-order:stroke;stroke:#000;stroke-width:2px}
svg.chart .axis-title{font-size:12px;font-weight:600}
svg.chart .whisker{stroke:var(--fg);stroke-width:1.2}
.threshold{stroke:var(--threshold);stroke-width:1.4;stroke-dasharray:7 4;fill:none}
.phase{stroke:var(--muted);stroke-width:1;stroke-dasharray:2 3}
.verdict{stroke:var(--c3);stroke-width:2}
.budget{stroke:var(--muted);stroke-width:1.2;stroke-dasharray:3 3}
.frontier{fill:none;stroke:var(--fg);stroke-width:1.5;stroke-dasharray:5 3}
.pending{fill:url(#hatch-pending)}.firing{fill:url(#hatch-firing)}
.s0{--c:var(--c0)}.s1{--c:var(--c1)}.s2{--c:var(--c2)}.s3{--c:var(--c3)}.s4{--c:var(--c4)}.s5{--c:var(--c5)}.s6{--c:var(--c6)}.s7{--c:var(--c7)}
.bar{fill:var(--c);stroke:var(--fg);stroke-width:.4}
.line{fill:none;stroke:var(--c);stroke-width:2}
.line.s1{stroke-dasharray:8 3}.line.s2{stroke-dasharray:2 2}.line.s3{stroke-dasharray:8 3 2 3}.line.s4{stroke-dasharray:12 4}.line.s5{stroke-dasharray:4 4}.line.s6{stroke-dasharray:1 3}.line.s7{stroke-dasharray:10 2 2 2 2 2}
.dot{fill:var(--c);stroke:var(--fg);stroke-width:.8}
.p1{fill:url(#p1)}.p2{fill:url(#p2)}.p3{fill:url(#p3)}.p4{fill:url(#p4)}.p5{fill:url(#p5)}.p6{fill:url(#p6)}.p7{fill:url(#p7)}
ul.legend{list-style:none;padding:0;margin:.25rem 0;display:flex;flex-wrap:wrap;gap:.3rem 1.2rem;font-size:.9rem}
ul.legend li{display:flex;align-items:center;gap:.35rem}svg.swatch{width:28px;height:12px}
.verdict-box{border-left:4px solid var(--c3);padding:.4rem .8rem;background:var(--area)}
div.table{overflow-x:auto}td.n{text-align:right}
details{margin:.5rem 0 1rem}summary{cursor:pointer;color:var(--muted)}
"#;

/// Fill patterns: a series' colour under its own hatching (its cue besides the colour),
/// and the pending and firing bands of a replay.
fn patterns() -> String {
    let mut s = String::from(
        r#"<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>"#,
    );
    // Angle and spacing of each series' hatching; series 0 is plain.
    let hatch = [
        (0, 0),
        (45, 6),
        (-45, 6),
        (90, 5),
        (0, 5),
        (45, 3),
        (-45, 3),
        (90, 3),
    ];
    for (i, (angle, gap)) in hatch.iter().enumerate().skip(1) {
        s += &format!(
            r#"<pattern id="p{i}" patternUnits="userSpaceOnUse" width="{gap}" height="{gap}" patternTransform="rotate({angle})"><rect class="s{i}" width="{gap}" height="{gap}" style="fill:var(--c)"/><line x1="0" y1="0" x2="0" y2="{gap}" style="stroke:var(--bg);stroke-width:1.2"/></pattern>"#
        );
    }
    for (id, var, angle) in [("pending", "--pending", 45), ("firing", "--firing", -45)] {
        s += &format!(
            r#"<pattern id="hatch-{id}" patternUnits="userSpaceOnUse" width="8" height="8" patternTransform="rotate({angle})"><rect width="8" height="8" style="fill:var({var})"/><line x1="0" y1="0" x2="0" y2="8" style="stroke:var({var});stroke-width:3"/></pattern>"#
        );
    }
    s + "</defs></svg>"
}

/// The whole page: `title`, the header's rows (name, value; values escaped here), and
/// the body.
pub(crate) fn page(title: &str, header: &[(&str, String)], body: &str) -> String {
    let mut rows = String::new();
    for (k, v) in header {
        rows += &format!(
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
            esc(k),
            esc(v)
        );
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
<title>{}</title><style>{STYLE}</style></head>\n<body>{}<h1>{}</h1>\n<table class=\"about\">{rows}</table>\n{body}\n</body></html>\n",
        esc(title),
        patterns(),
        esc(title)
    )
}

/// A table being built: a caption, its header row, then rows of cells.
pub(crate) struct Table {
    html: String,
}

impl Table {
    pub(crate) fn new(caption: &str, head: &[&str]) -> Table {
        let mut html = format!(
            "<div class=\"table\"><table><caption>{}</caption><thead><tr>",
            esc(caption)
        );
        for h in head {
            html += &format!("<th scope=\"col\">{}</th>", esc(h));
        }
        html += "</tr></thead><tbody>";
        Table { html }
    }

    pub(crate) fn row(&mut self, cells: &[String]) {
        self.html += "<tr>";
        for c in cells {
            self.html += c;
        }
        self.html += "</tr>";
    }

    pub(crate) fn finish(self) -> String {
        self.html + "</tbody></table></div>"
    }
}

/// A cell of text (a name: a row's header).
pub(crate) fn th(text: &str) -> String {
    format!("<th scope=\"row\">{}</th>", esc(text))
}

/// A cell of text.
pub(crate) fn td(text: &str) -> String {
    format!("<td>{}</td>", esc(text))
}

/// A cell showing the number at `at` as `show` writes it, with its pointer and exact
/// value; "n/a" for a missing one.
pub(crate) fn num(at: &At<'_>, show: impl Fn(f64) -> String) -> String {
    let shown = at.f64().map_or_else(|| "n/a".into(), show);
    format!(
        "<td data-path=\"{}\" data-value=\"{}\">{}</td>",
        esc(at.path()),
        esc(&at.raw()),
        esc(&shown)
    )
}

/// A proportion's cells (`{count, trials, probability, ci95}`): the share, its interval,
/// and the count of the trials.
pub(crate) fn proportion(at: &At<'_>) -> [String; 4] {
    let pct = super::format::pct;
    [
        num(&at.get("probability"), pct),
        num(&at.get("ci95").idx(0), pct),
        num(&at.get("ci95").idx(1), pct),
        num(&at.get("count"), |v| format!("{v}")),
    ]
}

/// A figure: its chart, caption, and the same numbers as a table.
pub(crate) fn figure(caption: &str, chart: &str, table: &str) -> String {
    format!(
        "<figure><figcaption>{}</figcaption>{chart}{table}</figure>\n",
        esc(caption)
    )
}
