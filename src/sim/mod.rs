//! `plan simulate`: replays recorded or synthetic metric traces through the plan's rollback
//! rules with Prometheus' own evaluation semantics.

pub mod evaluator;
pub mod montecarlo;
pub mod outcomes;
pub mod replay;
pub mod report;
pub mod scenario;
pub mod splitmix;
pub mod stats;
pub mod synth;
pub mod trace;
