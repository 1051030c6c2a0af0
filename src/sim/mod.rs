//! `plan simulate`: replays recorded or synthetic metric traces through the plan's rollback
//! rules with Prometheus' own evaluation semantics.

pub mod prom;
