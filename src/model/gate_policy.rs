//! `gate_policy`: what a release does when a phase's gates fail at its end, as written.
//! Checked into one [`crate::check::GatePolicy`] that the manifest, the runbook and the
//! simulator all follow.

use super::Duration;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatePolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnGateFailure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_hold: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_max_hold: Option<AfterMaxHold>,
}

/// What a failed gate at a phase's end does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnGateFailure {
    /// Roll back at once.
    Rollback,
    /// Stay in the phase, re-checking at every evaluation, up to `max_hold`.
    Hold,
}

/// What a hold that reached `max_hold` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterMaxHold {
    Rollback,
    /// Stay held until someone decides.
    Stay,
}
