//! The steps of a release that the rendered files apply: each phase, then the rollback and
//! the promotion.

use crate::check::CheckedPlan;
use crate::model::Share;

/// What a phase-dependent artifact is for: one of the plan's phases, the rollback (all
/// traffic to stable, canary stopped) or the promotion (the new version becomes stable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Phase(usize),
    Rollback,
    Promotion,
}

impl Step {
    /// Every step in apply order: the phases, then rollback and promotion.
    pub(crate) fn all(plan: &CheckedPlan) -> Vec<Step> {
        let mut v: Vec<Step> = (0..plan.phases.len()).map(Step::Phase).collect();
        v.push(Step::Rollback);
        v.push(Step::Promotion);
        v
    }

    /// The file stem for this step: the phase's name, `rollback` or `promotion`.
    pub(crate) fn name(self, plan: &CheckedPlan) -> &str {
        match self {
            Step::Phase(i) => &plan.phases[i].name,
            Step::Rollback => "rollback",
            Step::Promotion => "promotion",
        }
    }

    /// The expected share of requests on the new version: in a phase the split applies to
    /// the users outside the targeted groups (the same estimate `plan validate` uses), and
    /// it is None when a targeted group's share is not stated; none after the rollback, all
    /// after the promotion.
    pub(crate) fn expected_request_share(self, plan: &CheckedPlan) -> Option<Share> {
        let i = match self {
            Step::Phase(i) => i,
            Step::Rollback => return Some(Share::ZERO),
            Step::Promotion => return Some(Share::FULL),
        };
        if plan.phases[i]
            .groups
            .iter()
            .any(|&g| plan.groups[g].share.is_none())
        {
            return None;
        }
        Share::from_hundredths((plan.canary_request_share(i) * 10_000.0).round() as u16)
    }
}
