//! What every section of the runbook reads: the plan, its lowered alerting rules, and who
//! hears of each severity of alert, as text.

use super::markdown::md;
use crate::check::CheckedPlan;
use crate::lower::{AlertRule, RuleKind};

/// The runbook being written: the plan and what every section derives from it.
pub(super) struct Ctx<'a> {
    pub(super) plan: &'a CheckedPlan,
    pub(super) rules: &'a [AlertRule],
    /// Who hears of critical alerts (rollbacks) and of warnings (gates, no data), as text.
    pub(super) critical_to: String,
    pub(super) warning_to: String,
}

impl<'a> Ctx<'a> {
    /// Whether a rollback alert rolls the release back by itself (`plan release serve`
    /// receives it), rather than paging people to do it.
    pub(super) fn automatic(&self) -> bool {
        self.plan.deployment.automatic_rollback.is_some()
    }

    pub(super) fn new(plan: &'a CheckedPlan, rules: &'a [AlertRule]) -> Ctx<'a> {
        let n = &plan.notifications;
        let mut critical = Vec::new();
        if let Some(s) = &n.slack {
            critical.push(format!("Slack {}", md(&s.channel)));
        }
        if let Some(e) = &n.email {
            let to: Vec<String> = e.to.iter().map(|a| md(a)).collect();
            critical.push(format!("email to {}", to.join(", ")));
        }
        if n.sms.is_some() {
            critical.push("SMS (through the SMS gateway webhook)".into());
        }
        let nobody =
            "nobody: the plan has no `notifications`, so the alert shows only in Alertmanager";
        let critical_to = if critical.is_empty() {
            nobody.to_string()
        } else {
            critical.join("; ")
        };
        let warning_to = match &n.slack {
            Some(s) => format!("Slack {}", md(&s.channel)),
            None => nobody.to_string(),
        };
        Ctx {
            plan,
            rules,
            critical_to,
            warning_to,
        }
    }

    /// The name of the alert of the rule of `kind` with `id` (empty if there is none).
    pub(super) fn alert_name(&self, kind: RuleKind, id: &str) -> String {
        self.rules
            .iter()
            .find(|r| r.kind == kind && r.id == id)
            .map_or_else(String::new, |r| r.alert.clone())
    }
}
