//! What the tests are generated from: the plan, its lowered rules and the tests' timing
//! (the fed series' sample interval, the evaluation interval, the rate window). The
//! generator's work is spread over the sibling modules by concept: `levels`, `series`,
//! `firing`, `cases`.

use crate::check::CheckedPlan;
use crate::lower::AlertRule;
use crate::model::Duration;
use crate::prom::Semantics;

/// promtool here is 2.42.
pub(super) const SEM: Semantics = Semantics::Prometheus2;

/// What every test is generated from: the plan, its lowered rules, and the test's timing:
/// the sample interval of the fed series (`step`), the evaluation interval (`ei`) and the
/// metrics' rate window, in milliseconds.
pub(super) struct Generator<'a> {
    pub(super) plan: &'a CheckedPlan,
    pub(super) rules: &'a [AlertRule],
    pub(super) step: i64,
    pub(super) ei: i64,
    pub(super) window: i64,
}

impl<'a> Generator<'a> {
    pub(super) fn new(plan: &'a CheckedPlan, rules: &'a [AlertRule]) -> Generator<'a> {
        let window = plan.monitoring.window.millis() as i64;
        // One sample a minute; at least four per window (rate needs two); at most about
        // a thousand per window (promtool refuses queries over 10,000 samples).
        let mut step = 60_000;
        if window < 4 * step {
            step = (window / 4 / 1000 * 1000).max(1000);
        } else if window / step > 1000 {
            step = ceil_to(window / 1000, 60_000);
        }
        Generator {
            plan,
            rules,
            step,
            ei: plan.monitoring.evaluation_interval.millis() as i64,
            window,
        }
    }

    /// The sample interval in seconds.
    pub(super) fn step_s(&self) -> f64 {
        self.step as f64 / 1000.0
    }
}

/// `t` rounded up to a multiple of `m` (both positive).
pub(super) fn ceil_to(t: i64, m: i64) -> i64 {
    (t + m - 1) / m * m
}

/// A duration for promtool (`0s` for zero).
pub(super) fn dur(ms: i64) -> String {
    Duration::from_millis(ms.max(0) as u64).map_or_else(|| "0s".into(), |d| d.to_string())
}
