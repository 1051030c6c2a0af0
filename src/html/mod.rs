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
