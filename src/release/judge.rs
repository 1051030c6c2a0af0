//! Whether a phase may end, as Prometheus reports it: `next` needs the phase's minimum
//! duration run, its rules loaded and evaluating, and no gate, missing-data or rollback
//! alert pending or firing; `complete` needs the last phase's watch run and no rollback
//! alert (the last phase's gates only warn). Each reason that holds a phase back is
//! stated; a Prometheus that cannot be asked holds it back too.

use super::manifest::Rendered;
use super::prometheus::{self, Rule};
use super::time::span;

/// What holds a phase back, and what is worth saying either way.
#[derive(Debug, Default)]
pub(crate) struct Judgement {
    pub(crate) blockers: Vec<String>,
    /// The plan's rules in this phase as Prometheus has them (None: not asked or failed).
    pub(crate) rules: Option<Vec<Rule>>,
}

impl Judgement {
    pub(crate) fn ready(&self) -> bool {
        self.blockers.is_empty()
    }
}

/// What ends a phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Ending {
    /// `next`: on to the next phase.
    Next,
    /// `complete`: the last phase's watch is over.
    Complete,
}

/// Judges phase `index`, entered at `since_ms`, at `now_ms`.
pub(crate) fn judge(
    rendered: &Rendered,
    index: usize,
    since_ms: i64,
    now_ms: i64,
    ending: Ending,
) -> Judgement {
    let phases = rendered.phases();
    let phase = phases[index];
    let mut j = Judgement::default();
    let (need_s, what) = match ending {
        Ending::Next => (
            phase.min_duration.as_ref().map_or(0, |d| d.seconds),
            "minimum duration",
        ),
        Ending::Complete => (rendered.manifest.watch.seconds, "watch"),
    };
    let ran = (now_ms - since_ms).max(0);
    let need = i64::try_from(need_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    if ran < need {
        j.blockers.push(format!(
            "phase {} has run {} of its {what} {} ({} to go)",
            phase.name,
            span(ran),
            span(need),
            span(need - ran)
        ));
    }
    let base = &rendered.manifest.deployment.prometheus;
    match prometheus::rules(base, &rendered.manifest.plan) {
        Err(e) => j.blockers.push(e),
        Ok(all) => {
            let (mine, others): (Vec<Rule>, Vec<Rule>) =
                all.into_iter().partition(|r| r.phase == phase.name);
            let mut other_phases: Vec<&str> = others.iter().map(|r| r.phase.as_str()).collect();
            other_phases.sort_unstable();
            other_phases.dedup();
            if !other_phases.is_empty() {
                j.blockers.push(format!(
                    "Prometheus evaluates the rules of phase {} while the release is in {}: load this phase's rules (run the phase's commands again)",
                    other_phases.join(", "),
                    phase.name
                ));
            }
            if mine.is_empty() {
                j.blockers.push(format!(
                    "Prometheus ({base}) has none of phase {}'s rules loaded: nothing watches the canary; check the rules file and reload Prometheus",
                    phase.name
                ));
            }
            for r in &mine {
                match r.health.as_str() {
                    "ok" => {}
                    "err" => j
                        .blockers
                        .push(format!("{} cannot be evaluated: {}", r.alert, r.last_error)),
                    _ => j.blockers.push(format!(
                        "{} has not been evaluated yet; wait one evaluation interval",
                        r.alert
                    )),
                }
                let active = matches!(r.state.as_str(), "pending" | "firing");
                let blocks = match r.kind.as_str() {
                    "rollback" => true,
                    "gate" | "no_data" => ending == Ending::Next,
                    _ => false,
                };
                if active && blocks {
                    j.blockers.push(format!(
                        "{} is {}{}",
                        r.alert,
                        r.state,
                        if r.kind == "rollback" {
                            ": the release should roll back"
                        } else {
                            ""
                        }
                    ));
                }
            }
            // The plan's gate policy, for a gate still failing when the phase's time is up.
            let time_up = ran >= need;
            let gate_firing = mine.iter().any(|r| r.kind == "gate" && r.state == "firing");
            if ending == Ending::Next && time_up && gate_firing {
                j.blockers.push(
                    match rendered.manifest.gate_policy.on_failure.as_str() {
                        "rollback" => "the plan's gate policy: a gate failing when the phase's time is up rolls the release back (`plan release rollback`)",
                        _ => "the plan's gate policy: hold the phase while a gate fails",
                    }
                    .to_string(),
                );
            }
            j.rules = Some(mine);
        }
    }
    j
}
