//! `gate_policy` checked into the one policy every consumer follows, and the watch of the
//! last phase: how long the release at 100% is watched before it counts as complete.

use super::checked::{GatePolicy, Monitoring};
use crate::diagnostic::Diagnostic;
use crate::limits::MAX_PHASE_MS;
use crate::model::{AfterMaxHold, Duration, OnGateFailure, Plan};

/// How long a phase is held at most when the plan does not say.
pub(crate) const DEFAULT_MAX_HOLD: Duration = Duration::from_hours(24);

/// How long the last phase is watched when the plan does not say.
pub(crate) const DEFAULT_WATCH: Duration = Duration::from_hours(24);

pub(crate) fn gate_policy(
    plan: &Plan,
    monitoring: &Monitoring,
    f: &mut Vec<Diagnostic>,
) -> GatePolicy {
    let Some(p) = &plan.gate_policy else {
        return GatePolicy::Rollback;
    };
    if plan.gates.is_empty() {
        f.push(
            Diagnostic::warning(
                "gate-policy-without-gates",
                "/gate_policy",
                "`gate_policy` is set but the plan has no `gates`: it never applies",
            )
            .at_key()
            .with_hint("add `gates:` (health targets a phase must meet to advance), or remove `gate_policy`"),
        );
    }
    if let Some(max) = p.max_hold
        && max.millis() > MAX_PHASE_MS
    {
        f.push(
            Diagnostic::error(
                "out-of-range",
                "/gate_policy/max_hold",
                format!(
                    "`max_hold` is longer than the longest allowed, `{}d`",
                    MAX_PHASE_MS / 86_400_000
                ),
            )
            .with_hint("a hold is measured in hours or days; check the unit"),
        );
    }
    match p.on_failure {
        Some(OnGateFailure::Hold) => {
            let ei = monitoring.evaluation_interval;
            if let Some(max) = p.max_hold
                && max.millis() < ei.millis()
            {
                f.push(
                    Diagnostic::error(
                        "max-hold-shorter-than-evaluation",
                        "/gate_policy/max_hold",
                        format!(
                            "`max_hold: {max}` is shorter than the evaluation interval, {ei}: the gates are re-checked once every {ei}, so a held phase is held at least {ei}; `{max}` never means what it says"
                        ),
                    )
                    .with_hint(if max.millis() == 0 {
                        format!("write `max_hold: {ei}` or longer, or `on_failure: rollback` to roll back at once")
                    } else {
                        format!(
                            "write `max_hold: {ei}` or longer, `on_failure: rollback` to roll back at once, or evaluate more often (`monitoring.evaluation_interval` at most `{max}`)"
                        )
                    }),
                );
            }
            GatePolicy::Hold {
                max: p.max_hold.unwrap_or(DEFAULT_MAX_HOLD),
                then: p.after_max_hold.unwrap_or(AfterMaxHold::Rollback),
            }
        }
        on_failure => {
            for (key, set) in [
                ("max_hold", p.max_hold.is_some()),
                ("after_max_hold", p.after_max_hold.is_some()),
            ] {
                if set {
                    let (how, fix) = if on_failure.is_some() {
                        ("is `rollback`", "change `on_failure` to `hold`")
                    } else {
                        (
                            "is not set (it defaults to `rollback`)",
                            "add `on_failure: hold`",
                        )
                    };
                    f.push(
                        Diagnostic::error(
                            "gate-policy-conflict",
                            format!("/gate_policy/{key}"),
                            format!("`{key}` applies only to a hold, but `on_failure` {how}: a failed gate rolls back at once"),
                        )
                        .at_key()
                        .with_hint(format!("{fix} to hold the phase, or remove this key")),
                    );
                }
            }
            GatePolicy::Rollback
        }
    }
}

impl GatePolicy {
    /// The policy in words: `roll back at once`, `hold up to 1d, then roll back`.
    pub(crate) fn text(&self) -> String {
        match self {
            GatePolicy::Rollback => "roll back at once".into(),
            GatePolicy::Hold { max, then } => format!(
                "hold up to {max}, then {}",
                match then {
                    AfterMaxHold::Rollback => "roll back",
                    AfterMaxHold::Stay => "stay held",
                }
            ),
        }
    }
}

/// As the simulator's reports carry it: the manifest's `gate_policy` keys (`{on_failure,
/// max_hold: {text, seconds}, after_max_hold}`, the hold's only for a hold), and `text`.
impl serde::Serialize for GatePolicy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        match self {
            GatePolicy::Rollback => m.serialize_entry("on_failure", "rollback")?,
            GatePolicy::Hold { max, then } => {
                m.serialize_entry("on_failure", "hold")?;
                // Whole seconds as an integer, as the manifest writes every duration.
                let ms = max.millis();
                let seconds = if ms % 1000 == 0 {
                    serde_json::json!(ms / 1000)
                } else {
                    serde_json::json!(max.seconds())
                };
                m.serialize_entry(
                    "max_hold",
                    &serde_json::json!({ "text": max.to_string(), "seconds": seconds }),
                )?;
                m.serialize_entry(
                    "after_max_hold",
                    match then {
                        AfterMaxHold::Rollback => "rollback",
                        AfterMaxHold::Stay => "stay",
                    },
                )?;
            }
        }
        m.serialize_entry("text", &self.text())?;
        m.end()
    }
}
