//! The plan language's types: the typed plan as written, and the scalar types it is made of
//! (durations, shares, thresholds, gates, predicates, networks), each parsed once.

mod deployment;
mod duration;
mod gate_policy;
mod network;
mod plan;
mod predicate;
mod share;
mod silent;
mod threshold;

pub use deployment::{AutomaticRollback, Deployment, Target};
pub use duration::{Duration, ForDuration, parse_millis};
pub use gate_policy::{AfterMaxHold, GatePolicy, OnGateFailure};
pub use network::{Network, Resolver};
pub use plan::*;
pub use predicate::Predicate;
pub(crate) use predicate::{AgeUnit, Comparison, Operand};
pub use share::Share;
pub use silent::SilentCanary;
pub use threshold::{Amount, Bad, Gate, Op, Threshold, Unit};
pub(crate) use threshold::{split_op, trim};

use crate::diagnostic::Diagnostic;

/// Builds the typed plan from a schema-valid document. The schema has already checked
/// every shape and scalar format, so a failure here is a gap between schema and model and is
/// reported as such rather than hidden.
pub fn from_document(value: &serde_json::Value) -> Result<Plan, Diagnostic> {
    serde_json::from_value(value.clone()).map_err(|e| {
        Diagnostic::error(
            "model",
            "",
            format!("the plan passed the schema but could not be read: {e}"),
        )
        .with_hint("this is a bug in plan; please report it with the plan file")
    })
}
