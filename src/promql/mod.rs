//! The PromQL this tool writes, as data. A metric's query is a [`MetricExpr`]: the emitter
//! prints it into recording rules and the simulator evaluates the very same value on raw
//! series, so what is simulated is what is deployed.

mod expr;
mod print;
mod selector;
mod track;

pub use expr::MetricExpr;
pub(crate) use selector::quote;
pub use selector::{MatchOp, Matcher, Selector};
pub use track::Track;
