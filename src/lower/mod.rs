//! Stage 5: lowering. Turns a checked plan's gates and rollback conditions into the alerting
//! rules Prometheus evaluates. This one form feeds both the rule emitter (`render`) and the
//! simulator (`simulate`), so the two cannot drift apart.
//!
//! Every metric is recorded per track as `service_track:<metric>:<operations>`; every rule
//! compares the canary's recorded series with a number or with the stable's.

use crate::check::{CheckedPlan, Limit, Metric, MinRequests};
use crate::model::{Bad, Op};
use crate::promql::Track;

/// The recorded series of a metric: `service_track:error_rate:ratio_rate5m`.
pub(crate) fn record_name(m: &Metric) -> String {
    format!("service_track:{}:{}", m.name, m.expr.operations())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// A rollback condition: critical, rolls the release back.
    Rollback,
    /// A gate violated: a warning; the phase may not advance.
    Gate,
    /// The canary has no value for a metric a rule watches: a warning, since no data would
    /// otherwise pass every comparison silently.
    NoData,
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rhs {
    Value(f64),
    /// `factor * stable`, computed in that order as PromQL does; with `also`, the canary
    /// must satisfy that absolute comparison too (a floor: `and canary > 0.01`).
    StableTimes {
        factor: f64,
        also: Option<(Op, f64)>,
    },
}

/// When the alert's expression returns a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Condition {
    /// `canary op rhs`: NaN or a missing side makes it false.
    Compare { op: Op, rhs: Rhs },
    /// The canary's series is absent or NaN.
    Missing,
    /// The canary is silent: its `targets_up` series is absent (no target listed) or 0
    /// (no target answered its last scrape). NaN is neither, as in PromQL.
    Silent,
}

impl Condition {
    /// Evaluates the condition on the recorded values at one evaluation, with PromQL's
    /// semantics (absent series and NaN compare false).
    #[inline]
    pub(crate) fn holds(&self, canary: Option<f64>, stable: Option<f64>) -> bool {
        match *self {
            Condition::Missing => canary.is_none_or(f64::is_nan),
            Condition::Silent => canary.is_none_or(|c| c == 0.0),
            Condition::Compare {
                op,
                rhs: Rhs::Value(v),
            } => canary.is_some_and(|c| op.holds(c, v)),
            Condition::Compare {
                op,
                rhs: Rhs::StableTimes { factor, also },
            } => match (canary, stable) {
                (Some(c), Some(s)) => {
                    op.holds(c, factor * s) && also.is_none_or(|(o, v)| o.holds(c, v))
                }
                _ => false,
            },
        }
    }

    /// [`holds`](Self::holds) for values with labels of their own beyond those the
    /// recording rules set (`own`: the canary's and the stable track's; see
    /// `prom::Query::own_labels`): the alert the rule's expression returns, as those
    /// labels, or None.
    pub(crate) fn alert<'l>(
        &self,
        canary: Option<f64>,
        stable: Option<f64>,
        own: [&'l [(String, String)]; 2],
    ) -> Option<&'l [(String, String)]> {
        if !self.holds(canary, stable) {
            return None;
        }
        match self {
            // `absent(...)` gives only the labels its selector's matchers name.
            Condition::Missing | Condition::Silent if canary.is_none() => Some(&[]),
            // `canary > ignoring(track) group_left() (k * stable)` matches a canary element
            // with the stable element whose labels but `track` are the same, or none.
            Condition::Compare {
                rhs: Rhs::StableTimes { .. },
                ..
            } if own[0] != own[1] => None,
            _ => Some(own[0]),
        }
    }

    /// Whether this condition needs the stable track's value.
    pub(crate) fn uses_stable(&self) -> bool {
        matches!(
            self,
            Condition::Compare {
                rhs: Rhs::StableTimes { .. },
                ..
            }
        )
    }
}

/// One alerting rule. Every rule runs in every phase, except the silent-canary rule, which
/// runs only where the canary serves users ([`AlertRule::runs_in`]).
#[derive(Debug, Clone)]
pub struct AlertRule {
    pub kind: RuleKind,
    /// The alert's name: `CanaryRollbackErrorRate`.
    pub alert: String,
    /// Phase-independent id: the rollback condition's id, or the gate's metric.
    pub id: String,
    /// Index into `CheckedPlan::metrics`.
    pub metric: usize,
    pub condition: Condition,
    /// The minimum-traffic guard (`min_requests`, rollback rules only): the rule holds
    /// only where `condition` does and the canary's request count in the window (metric
    /// `count`, [`Metric::is_request_count`]) is at least `min`; below it the rule is
    /// false and its `for` starts over.
    pub guard: Option<MinRequests>,
    pub for_ms: u64,
    /// What the rule says, for people: `error_rate > 10% for 5m`.
    pub summary: String,
    /// Phases whose rules file leaves this rule out (the silent-canary rule where the
    /// phase sends the canary nobody); empty for every other rule.
    pub(crate) idle_phases: Vec<usize>,
}

impl AlertRule {
    /// Whether this is the silent-canary rule (`monitoring.silent_canary`).
    pub(crate) fn is_silent_canary(&self) -> bool {
        self.condition == Condition::Silent
    }

    /// Whether the rule reads metric `metric`: the one it compares, or its guard's count.
    pub(crate) fn reads(&self, metric: usize) -> bool {
        self.metric == metric || self.guard.is_some_and(|g| g.count == metric)
    }

    /// Whether the guard lets the rule hold, given the canary's request count (metric
    /// `guard.count`); true without a guard.
    #[inline]
    pub(crate) fn guard_passes(&self, count: Option<f64>) -> bool {
        self.guard.is_none_or(|g| g.passes(count))
    }

    /// Whether the rule is in phase `phase`'s rules file (and so evaluated there).
    #[inline]
    pub(crate) fn runs_in(&self, phase: usize) -> bool {
        self.idle_phases.is_empty() || !self.idle_phases.contains(&phase)
    }

    pub(crate) fn severity(&self) -> &'static str {
        match self.kind {
            RuleKind::Rollback => "critical",
            RuleKind::Gate | RuleKind::NoData => "warning",
        }
    }
}

/// Stage 5's output: a checked plan with its alerting rules, computed once for everything
/// that follows (render and both simulations).
#[derive(Debug, Clone)]
pub struct LoweredPlan {
    pub plan: CheckedPlan,
    /// See [`alert_rules`].
    pub rules: Vec<AlertRule>,
}

/// Lowers a checked plan.
pub fn lower(plan: CheckedPlan) -> LoweredPlan {
    let rules = alert_rules(&plan);
    LoweredPlan { plan, rules }
}

pub(crate) use crate::check::SILENT_CANARY_ID;

/// The plan's alerting rules: rollbacks first (in plan order, then the silent-canary
/// rule), then gates, then no-data rules for every metric a rule watches (but not the
/// silent-canary rule's `targets_up`: its absence is what that rule rolls back on).
pub(crate) fn alert_rules(plan: &CheckedPlan) -> Vec<AlertRule> {
    let mut out = Vec::new();
    let window_ms = plan.monitoring.window.millis();
    for r in &plan.rollbacks {
        let m = &plan.metrics[r.metric];
        let op = match m.bad {
            Bad::High => Op::Gt,
            Bad::Low => Op::Lt,
        };
        let rhs = rhs(r.limit);
        out.push(AlertRule {
            kind: RuleKind::Rollback,
            alert: format!("CanaryRollback{}", camel(&r.id)),
            id: r.id.clone(),
            metric: r.metric,
            condition: Condition::Compare { op, rhs },
            guard: r.min_requests,
            for_ms: r.for_.millis(),
            summary: format!(
                "{} {} {} for {}{}",
                m.name,
                op.as_str(),
                show_rhs(rhs, m),
                r.for_,
                r.min_requests
                    .map(|g| show_guard(g, plan.monitoring.window))
                    .unwrap_or_default()
            ),
            idle_phases: Vec::new(),
        });
    }
    if let Some(s) = plan.silent_canary {
        out.push(AlertRule {
            kind: RuleKind::Rollback,
            alert: format!("CanaryRollback{}", camel(SILENT_CANARY_ID)),
            id: SILENT_CANARY_ID.into(),
            metric: s.metric,
            condition: Condition::Silent,
            guard: None,
            for_ms: s.after.millis(),
            summary: format!(
                "no scrape target of the canary up for {} (silent canary)",
                s.after
            ),
            idle_phases: (0..plan.phases.len())
                .filter(|&i| !plan.canary_serves(i))
                .collect(),
        });
    }
    for g in &plan.gates {
        let m = &plan.metrics[g.metric];
        let op = g.op.negate();
        let rhs = rhs(g.alert_limit());
        out.push(AlertRule {
            kind: RuleKind::Gate,
            alert: format!("CanaryGate{}", camel(&m.name)),
            id: m.name.clone(),
            metric: g.metric,
            condition: Condition::Compare { op, rhs },
            guard: None,
            for_ms: window_ms,
            summary: format!(
                "{} {} {} (gate: {})",
                m.name,
                op.as_str(),
                show_rhs(rhs, m),
                g.written
            ),
            idle_phases: Vec::new(),
        });
    }
    let mut watched: Vec<usize> = out
        .iter()
        .filter(|r| !r.is_silent_canary())
        .map(|r| r.metric)
        .collect();
    watched.sort_unstable();
    watched.dedup();
    for mi in watched {
        let m = &plan.metrics[mi];
        out.push(AlertRule {
            kind: RuleKind::NoData,
            alert: format!("CanaryNoData{}", camel(&m.name)),
            id: m.name.clone(),
            metric: mi,
            condition: Condition::Missing,
            guard: None,
            for_ms: window_ms,
            summary: format!("the canary reports no value for {}", m.name),
            idle_phases: Vec::new(),
        });
    }
    out
}

/// The tracks whose recorded series a plan's rules read, per metric.
pub(crate) fn tracks_needed(rules: &[AlertRule], metric: usize) -> Vec<Track> {
    let stable = rules
        .iter()
        .any(|r| r.metric == metric && r.condition.uses_stable());
    if stable {
        vec![Track::Canary, Track::Stable]
    } else {
        vec![Track::Canary]
    }
}

/// The alert's right-hand side, from a limit in the alert's sense (the bad side).
fn rhs(l: Limit) -> Rhs {
    match l {
        Limit::Absolute(v) => Rhs::Value(v),
        Limit::RelativeToStable { factor, also } => Rhs::StableTimes { factor, also },
    }
}

/// The right-hand side for people: `10%`, `3x stable and > 1%`.
pub(crate) fn show_rhs(rhs: Rhs, m: &Metric) -> String {
    match rhs {
        Rhs::Value(v) => m.unit.show(v),
        Rhs::StableTimes { factor, also } => {
            let mut s = format!("{}x stable", crate::model::trim(factor));
            if let Some((op, v)) = also {
                s.push_str(&format!(" and {} {}", op.as_str(), m.unit.show(v)));
            }
            s
        }
    }
}

/// A guard for people, after the rule's comparison: ` with at least 100 requests per 5m
/// window`.
pub(crate) fn show_guard(g: MinRequests, window: crate::model::Duration) -> String {
    format!(" with at least {} requests per {window} window", g.min)
}

/// `error_rate` → `ErrorRate`.
pub(crate) fn camel(s: &str) -> String {
    s.split(['_', '-'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next().map_or_else(String::new, |f| {
                f.to_ascii_uppercase().to_string() + c.as_str()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_follow_promql() {
        let gt = Condition::Compare {
            op: Op::Gt,
            rhs: Rhs::Value(0.1),
        };
        assert!(gt.holds(Some(0.2), None));
        assert!(!gt.holds(Some(0.1), None));
        assert!(!gt.holds(Some(f64::NAN), None));
        assert!(!gt.holds(None, None));
        assert!(gt.holds(Some(f64::INFINITY), None));
        let rel = Condition::Compare {
            op: Op::Lt,
            rhs: Rhs::StableTimes {
                factor: 0.95,
                also: None,
            },
        };
        assert!(rel.holds(Some(0.5), Some(0.9)));
        assert!(!rel.holds(Some(0.5), None));
        let floored = Condition::Compare {
            op: Op::Gt,
            rhs: Rhs::StableTimes {
                factor: 3.0,
                also: Some((Op::Gt, 0.01)),
            },
        };
        assert!(!floored.holds(Some(0.005), Some(0.0)), "under the floor");
        assert!(floored.holds(Some(0.02), Some(0.0)));
        assert!(!floored.holds(Some(0.02), Some(0.01)), "under 3x stable");
        assert!(!floored.holds(Some(0.01), Some(0.0)), "at the floor");
        assert!(Condition::Missing.holds(None, None));
        assert!(Condition::Missing.holds(Some(f64::NAN), None));
        assert!(!Condition::Missing.holds(Some(0.0), None));
        assert!(Condition::Silent.holds(None, None));
        assert!(Condition::Silent.holds(Some(0.0), None));
        assert!(!Condition::Silent.holds(Some(1.0), None));
        assert!(
            !Condition::Silent.holds(Some(f64::NAN), None),
            "NaN == 0 is false"
        );
        assert_eq!(camel("response_time_p95"), "ResponseTimeP95");
    }

    #[test]
    fn alerts_are_told_apart_by_the_labels_a_custom_query_keeps() {
        let a: Vec<(String, String)> = vec![("instance".into(), "a".into())];
        let b: Vec<(String, String)> = vec![("instance".into(), "b".into())];
        let none: &[(String, String)] = &[];
        let gt = Condition::Compare {
            op: Op::Gt,
            rhs: Rhs::Value(0.1),
        };
        assert_eq!(gt.alert(Some(0.2), None, [&a, none]), Some(&a[..]));
        assert_eq!(gt.alert(Some(0.0), None, [&a, none]), None);
        // No data: `absent()` has none of the query's labels, `x != x` all of them.
        let missing = Condition::Missing;
        assert_eq!(missing.alert(None, None, [none, none]), Some(none));
        assert_eq!(
            missing.alert(Some(f64::NAN), None, [&a, none]),
            Some(&a[..])
        );
        assert_eq!(missing.alert(Some(1.0), None, [&a, none]), None);
        // Compared with stable, `ignoring(track)`: only equal labels match.
        let rel = Condition::Compare {
            op: Op::Gt,
            rhs: Rhs::StableTimes {
                factor: 2.0,
                also: None,
            },
        };
        assert_eq!(rel.alert(Some(0.5), Some(0.1), [&a, &a]), Some(&a[..]));
        assert_eq!(rel.alert(Some(0.5), Some(0.1), [&a, &b]), None);
    }
}
