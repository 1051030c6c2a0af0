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
}
