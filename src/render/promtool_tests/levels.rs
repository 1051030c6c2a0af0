//! Choosing the level each series holds. Levels are chosen per signal (request count,
//! error share, each metric's own value), so that metrics computed from the same series
//! (error rate and availability) agree: healthy levels on the good side of every rule, and
//! for the rule under test a level clearly on its bad side. Values near a threshold at any
//! evaluation are avoided, so that no comparison hinges on the last bit of a float.

use super::generator::Generator;
use crate::check::Builtin;
use crate::lower::{AlertRule, Condition, Rhs};
use crate::model::{Op, Unit};
use std::collections::BTreeMap;

/// Relative distance from a threshold under which a value is considered too close to
/// decide the comparison robustly.
const MARGIN: f64 = 1e-9;

/// Factors applied to the distance between a threshold and the bad level when a first
/// choice puts some evaluation too close to the threshold.
pub(super) const NUDGES: [f64; 5] = [1.0, 1.1, 0.9, 1.3, 0.7];

/// What a level in a test drives: the request count per sample interval, the share of
/// requests failing, or one metric's own value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Signal {
    Requests,
    ErrorShare,
    Own(usize),
}

/// How a metric's value relates to its signal.
#[derive(Debug, Clone, Copy)]
pub(super) enum Map {
    Id,
    OneMinus,
    Scale(f64),
}

impl Map {
    pub(super) fn to_signal(self, x: f64) -> f64 {
        match self {
            Map::Id => x,
            Map::OneMinus => 1.0 - x,
            Map::Scale(k) => x * k,
        }
    }

    pub(super) fn to_metric(self, s: f64) -> f64 {
        match self {
            Map::Id => s,
            Map::OneMinus => 1.0 - s,
            Map::Scale(k) => s / k,
        }
    }

    fn increasing(self) -> bool {
        !matches!(self, Map::OneMinus)
    }
}

pub(super) type Levels = BTreeMap<Signal, f64>;

/// The healthy side of a signal: `lo < s < hi`.
#[derive(Debug, Clone, Copy)]
struct Bound {
    lo: f64,
    hi: f64,
}

/// `v` with as few significant digits as keep it `ok` and within 5% of `v` (`v` itself if
/// none do): round levels make readable series, and nudged levels stay apart.
fn round_within(v: f64, ok: &dyn Fn(f64) -> bool) -> f64 {
    (1..=17)
        .filter_map(|digits| format!("{v:.*e}", digits - 1).parse::<f64>().ok())
        .find(|r| ok(*r) && (r - v).abs() <= 0.05 * v.abs())
        .unwrap_or(v)
}

/// Whether `a` is within the relative [`MARGIN`] of `b`.
pub(super) fn near(a: f64, b: f64) -> bool {
    if !a.is_finite() || !b.is_finite() {
        return false;
    }
    (a - b).abs() <= MARGIN * b.abs().max(a.abs()).max(1e-12)
}

impl Generator<'_> {
    pub(super) fn signal(&self, mi: usize) -> (Signal, Map) {
        let m = &self.plan.metrics[mi];
        match (m.builtin, m.expr.is_structured()) {
            (Some(Builtin::ErrorRate), true) => (Signal::ErrorShare, Map::Id),
            (Some(Builtin::Availability), true) => (Signal::ErrorShare, Map::OneMinus),
            (Some(Builtin::Throughput), true) => (Signal::Requests, Map::Scale(self.step_s())),
            // A guard's count: the requests of one window, at a steady count per sample.
            _ if m.is_request_count() => (
                Signal::Requests,
                Map::Scale(self.step as f64 / self.window as f64),
            ),
            _ => (Signal::Own(mi), Map::Id),
        }
    }

    fn domain(&self, s: Signal) -> Bound {
        let ratio = Bound { lo: 0.0, hi: 1.0 };
        let open = Bound {
            lo: 0.0,
            hi: f64::INFINITY,
        };
        match s {
            Signal::ErrorShare => ratio,
            Signal::Requests => open,
            // CPU is a share of one core: a busy process uses several.
            Signal::Own(mi) if self.plan.metrics[mi].builtin == Some(Builtin::CpuUsage) => open,
            Signal::Own(mi) if self.plan.metrics[mi].unit == Unit::Ratio => ratio,
            Signal::Own(_) => open,
        }
    }

    /// A realistic healthy value, used when it satisfies every rule.
    fn typical(&self, s: Signal) -> f64 {
        match s {
            // One canary instance, answering its scrapes.
            Signal::Own(mi) if self.plan.metrics[mi].builtin == Some(Builtin::TargetsUp) => 1.0,
            Signal::ErrorShare => 0.01,
            Signal::Requests => 1000.0,
            Signal::Own(mi) => match self.plan.metrics[mi].unit {
                Unit::Ratio => 0.5,
                Unit::Milliseconds => 200.0,
                Unit::Seconds => 0.2,
                Unit::Bytes => 1e8,
                Unit::Count => 10.0,
                Unit::PerSecond => 10.0,
            },
        }
    }

    /// The metric indices a test of `metrics` feeds, with the signals they need.
    fn signals_of(&self, metrics: &[usize]) -> Vec<Signal> {
        let mut v: Vec<Signal> = metrics.iter().map(|&mi| self.signal(mi).0).collect();
        // Request metrics need a request count; a latency histogram needs one too.
        if metrics
            .iter()
            .any(|&mi| self.plan.metrics[mi].expr.is_structured())
        {
            v.push(Signal::Requests);
            v.push(Signal::ErrorShare);
        }
        v.sort();
        v.dedup();
        v
    }

    /// The threshold of a comparison rule in its signal's space and whether high is bad
    /// there; `stable` is the stable track's levels (for relative thresholds).
    pub(super) fn threshold(&self, r: &AlertRule, stable: &Levels) -> Option<(f64, bool)> {
        let Condition::Compare { op, rhs } = r.condition else {
            return None;
        };
        let (sig, map) = self.signal(r.metric);
        let high_bad = matches!(op, Op::Gt | Op::Ge);
        let t = match rhs {
            Rhs::Value(v) => v,
            // Past both: the stable's multiple and the floor.
            Rhs::StableTimes { factor, also } => {
                let t = factor * map.to_metric(*stable.get(&sig)?);
                match also {
                    Some((_, v)) if high_bad => t.max(v),
                    Some((_, v)) => t.min(v),
                    None => t,
                }
            }
        };
        Some((map.to_signal(t), high_bad == map.increasing()))
    }

    /// The healthy range of `sig` given every comparison rule on a metric it drives;
    /// relative rules count only when `stable` is given.
    fn bound(&self, sig: Signal, stable: Option<&Levels>) -> Bound {
        let mut b = self.domain(sig);
        let no_levels = Levels::new();
        for r in self.rules {
            if self.signal(r.metric).0 != sig {
                continue;
            }
            let st = match (r.condition.uses_stable(), stable) {
                (true, None) => continue,
                (true, Some(s)) => s,
                (false, _) => &no_levels,
            };
            if let Some((t, high_bad)) = self.threshold(r, st) {
                if high_bad {
                    b.hi = b.hi.min(t);
                } else {
                    b.lo = b.lo.max(t);
                }
            }
        }
        // Enough requests that every guard passes: the rules can fire on bad levels.
        if sig == Signal::Requests {
            for g in self.rules.iter().filter_map(|r| r.guard) {
                b.lo = b.lo.max(self.signal(g.count).1.to_signal(g.min as f64));
            }
        }
        b
    }

    fn healthy_value(&self, sig: Signal, b: Bound) -> Option<f64> {
        if b.lo >= b.hi || b.lo.is_nan() || b.hi.is_nan() {
            return None;
        }
        let typ = self.typical(sig);
        let inside = |v: f64| v > b.lo && v < b.hi && !near(v, b.lo) && !near(v, b.hi);
        let v = if inside(typ) {
            typ
        } else if b.hi.is_finite() {
            round_within((b.lo + b.hi) / 2.0, &inside)
        } else if b.lo > 0.0 {
            round_within(b.lo * 2.0, &inside)
        } else {
            round_within(b.lo + 1.0, &inside)
        };
        inside(v).then_some(v)
    }

    /// Healthy levels of every signal the given metrics need, for both tracks.
    pub(super) fn healthy(&self, metrics: &[usize]) -> Result<(Levels, Levels), String> {
        let sigs = self.signals_of(metrics);
        let mut stable = Levels::new();
        for &s in &sigs {
            let v = self
                .healthy_value(s, self.bound(s, None))
                .ok_or_else(|| format!("no {} level satisfies every rule", self.signal_name(s)))?;
            stable.insert(s, v);
        }
        let mut canary = Levels::new();
        for &s in &sigs {
            let v = self
                .healthy_value(s, self.bound(s, Some(&stable)))
                .ok_or_else(|| {
                    format!(
                        "no canary {} level satisfies every rule",
                        self.signal_name(s)
                    )
                })?;
            canary.insert(s, v);
        }
        Ok((canary, stable))
    }

    fn signal_name(&self, s: Signal) -> String {
        match s {
            Signal::Requests => "request-count".into(),
            Signal::ErrorShare => "error-share".into(),
            Signal::Own(mi) => format!("`{}`", self.plan.metrics[mi].name),
        }
    }

    /// A level clearly on the bad side of the threshold `t` (in signal space).
    pub(super) fn bad_value(&self, sig: Signal, t: f64, high_bad: bool, nudge: f64) -> Option<f64> {
        let d = self.domain(sig);
        let v = if high_bad {
            let mut c = if t > 0.0 { t * 2.0 } else { t.abs() + 1.0 };
            if d.hi.is_finite() {
                c = c.min((t + d.hi) / 2.0);
            }
            t + (c - t) * nudge
        } else {
            if t <= d.lo {
                return None;
            }
            t - (t - t / 2.0) * nudge
        };
        let ok = |v: f64| {
            (if high_bad { v > t } else { v < t }) && v >= d.lo && v <= d.hi && !near(v, t)
        };
        let v = round_within(v, &ok);
        ok(v).then_some(v)
    }
}
