//! Where an alert's section of the runbook is: the fixed anchors the runbook gives every
//! rollback rule, gate and no-data rule, and the links to them that the alerts' annotations
//! and the manifest carry.
//!
//! The anchors are `rollback-<rule id>`, `gate-<metric>` and `no-data-<metric>`. Ids and
//! metric names are identifiers (`[a-z][a-z0-9_]*`), so the anchors need no escaping and
//! stay put when thresholds change.

use crate::lower::{AlertRule, RuleKind};

/// The runbook's file name, relative to the plan's output folder.
pub(crate) const RUNBOOK: &str = "RUNBOOK.md";

/// The runbook anchor of an alerting rule: `rollback-<rule id>`, `gate-<metric>` or
/// `no-data-<metric>`.
pub(crate) fn anchor(kind: RuleKind, id: &str) -> String {
    match kind {
        RuleKind::Rollback => format!("rollback-{id}"),
        RuleKind::Gate => format!("gate-{id}"),
        RuleKind::NoData => format!("no-data-{id}"),
    }
}

/// `RUNBOOK.md#<anchor>` for an alerting rule, relative to the plan's output folder.
pub(crate) fn link(r: &AlertRule) -> String {
    format!("{RUNBOOK}#{}", anchor(r.kind, &r.id))
}
