//! `plan simulate`: replays recorded or synthetic metric traces through the plan's rollback
//! rules with Prometheus' own evaluation semantics.

pub(crate) mod batch;
pub(crate) mod compare;
pub(crate) mod evaluator;
pub(crate) mod montecarlo;
pub(crate) mod outcomes;
pub(crate) mod paired;
pub(crate) mod reach;
pub(crate) mod recorded;
pub mod replay;
pub(crate) mod report;
pub(crate) mod scenario;
pub(crate) mod shard;
pub mod splitmix;
pub(crate) mod stats;
pub(crate) mod synth;
pub mod trace;
pub(crate) mod tune;
