//! HTML reports (`--report FILE.html` on `plan simulate`, `plan tune` and replays): one
//! self-contained page (inline CSS and SVG, no script, nothing fetched) that a reviewer can
//! open from a CI artifact.
//!
//! Each page is drawn from the JSON document `--format json` prints for the same run (as a
//! [`serde_json::Value`]), never from a computation of its own: every number in a table
//! carries its JSON pointer and exact value (`data-path`, `data-value`), and every chart is
//! also a table. The same document gives the same bytes; every string of the plan, the
//! scenarios or the trace goes through one escaping function ([`escape::esc`]).

mod chart;
mod doc;
mod escape;
mod format;
mod montecarlo;
mod page;
mod replay;
mod svg;
mod tune;

pub(crate) use montecarlo::simulation;
pub(crate) use page::About;
pub(crate) use replay::replay;
pub(crate) use tune::tune;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn about() -> About {
        About {
            release: "a → b".into(),
            tool: "plan test".into(),
        }
    }

    /// A document with missing, null or odd values still gives a whole page.
    #[test]
    fn odd_documents_give_whole_pages() {
        let odd = [
            json!({}),
            json!(null),
            json!({"scenarios": [{"name": "x", "faulty": true, "time_to_catch_cdf": [{"share": 0.5, "seconds": null}], "rollbacks_by_phase": {"a/b~": 3}}]}),
            json!({"rules": [{"alert": "A", "kind": "rollback", "metric": "m", "threshold": 1e300}], "series": [{"metric": "m", "unit": "ratio", "first_ms": 0, "step_ms": 0, "canary": [1e308, -1e308, null]}], "end_ms": -5}),
            json!({"frontier": [{"false_rollback": {"probability": null}}], "max_false_rollback": -1}),
        ];
        for doc in &odd {
            for page in [
                simulation(doc, &about()),
                tune(doc, &about()),
                replay(doc, &about()),
            ] {
                assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\n"));
            }
        }
    }

    /// Every hostile string of the renderers' corpus ([`crate::render::hostile`]), and
    /// markup, in every string of real documents (a Monte Carlo report and a replay, the
    /// names of rules, phases and gates that key their maps included): wherever the page
    /// shows one, it shows it escaped, so none can open a tag, end an attribute or start
    /// a script.
    #[test]
    fn hostile_strings_are_shown_escaped() {
        let mut corpus = crate::render::hostile::corpus();
        corpus.extend(
            [
                "<script>alert(1)</script>",
                "\"><img src=x onerror=alert(2)>",
                "'/><svg onload=alert(3)>",
                "</svg></table><!--",
                "&lt;b&gt;",
            ]
            .map(String::from),
        );
        let documents = [
            include_str!("../../tests/snapshots/lawsker.json"),
            include_str!("../../tests/snapshots/replay-error-spike.json"),
        ];
        let marked =
            regex::Regex::new("(?s)\u{27e6}[0-9]+\u{27e7}(.*?)\u{27ea}\u{27eb}").expect("a regex");
        for (d, text) in documents.iter().enumerate() {
            let original: serde_json::Value = serde_json::from_str(text).expect("a JSON snapshot");
            for (i, h) in corpus.iter().enumerate() {
                let mut n = 0;
                let doc = hostile(&original, h, &mut n, false);
                let page = if d == 0 {
                    simulation(&doc, &about())
                } else {
                    replay(&doc, &about())
                };
                // Each string was written as `⟦k⟧h⟪⟫`; whatever the page shows between the
                // markers must be `h` escaped.
                let want = escape::esc(h);
                // In a `data-path` it is a JSON pointer's step: `~` and `/` escaped.
                let in_pointer = escape::esc(&h.replace('~', "~0").replace('/', "~1"));
                // A metric's name in a chart's title reads with spaces for underscores.
                let humanized = escape::esc(&h.replace('_', " "));
                let mut shown = 0;
                for c in marked.captures_iter(&page) {
                    assert!(
                        c[1] == want || c[1] == in_pointer || c[1] == humanized,
                        "document {d}, string {i} {h:?} shown as {:?}",
                        &c[1]
                    );
                    shown += 1;
                }
                assert!(shown > 0, "document {d}: the page showed no string");
                assert!(!page.contains("<script") && !page.contains("<img"), "{h:?}");
            }
        }
    }

    /// `doc` with every string value, and every key of a map that plan names key, set to
    /// `h` between numbered markers (keys stay distinct).
    fn hostile(
        doc: &serde_json::Value,
        h: &str,
        n: &mut usize,
        named_keys: bool,
    ) -> serde_json::Value {
        use serde_json::Value;
        fn mark(n: &mut usize, h: &str) -> String {
            *n += 1;
            format!("\u{27e6}{n}\u{27e7}{h}\u{27ea}\u{27eb}")
        }
        match doc {
            Value::String(_) => Value::String(mark(n, h)),
            Value::Array(a) => Value::Array(a.iter().map(|v| hostile(v, h, n, false)).collect()),
            Value::Object(o) => {
                let mut out = serde_json::Map::new();
                for (k, v) in o {
                    let keyed = matches!(
                        k.as_str(),
                        "first_rule"
                            | "first_gate"
                            | "rollbacks_by_phase"
                            | "by_rule"
                            | "by_gate"
                            | "gate_failures"
                            | "failing"
                            | "query_steps"
                            | "rule_rollback"
                    );
                    let key = if named_keys { mark(n, h) } else { k.clone() };
                    out.insert(key, hostile(v, h, n, keyed));
                }
                Value::Object(out)
            }
            other => other.clone(),
        }
    }
}
