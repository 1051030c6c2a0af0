//! The thin-traffic warning: at a phase's share, one failed request in one window already
//! crosses a rollback threshold on a request ratio, so noise alone can roll the release
//! back. `plan validate` runs it with the plan's stated rate, `plan simulate` with the rate
//! it simulates.
//!
//! The rule, for a condition whose error threshold is `t` (availability: `1 - t`; a
//! comparison with stable: its floor) and a phase below 100% whose canary expects `n > 0`
//! requests per window: the first such phase where `1/n > t` (one failure in a typical
//! window crosses the threshold) is warned about, unless the condition's `min_requests: N`
//! covers it. A guard with `N * t > 1` covers every phase: every window it lets count
//! holds `k >= N > 1/t` requests, where one failure is `1/k < t` whatever the phase's mean.
//! A smaller guard covers a phase only when it lets almost none of its windows count:
//! `N > n + 3 sqrt(n) + 1`, three standard deviations above the Poisson mean and more (a
//! guard just above the mean still lets the busier windows count, and in those one
//! failure crosses). The hint names the smallest such guard, `floor(1/t) + 1`
//! (above `1/t`, not at it: at `k == 1/t` floating-point rates may still cross).
//!
//! The other side of the same count: a guard above the requests the canary expects per
//! window even with all the traffic keeps the rule from counting a typical window in any
//! phase, so it hardly ever fires (`min-requests-unreachable`).

use super::catalog::Builtin;
use super::checked::{CheckedPlan, Limit, RollbackRule};
use crate::diagnostic::Diagnostic;
use crate::model::{Share, Unit};

/// One warning per rollback rule on the error rate or availability, at the first phase
/// where the canary's share of `rps` requests per second makes one failure cross it; one
/// per guard above the requests of a window at all of `rps`.
pub(crate) fn thin_traffic(plan: &CheckedPlan, rps: f64) -> Vec<Diagnostic> {
    let window = plan.monitoring.window;
    let mut out = Vec::new();
    for (i, r) in plan.rollbacks.iter().enumerate() {
        let full = rps * window.seconds();
        if let Some(g) = r.min_requests
            && g.min as f64 > full
        {
            out.push(
                Diagnostic::warning("min-requests-unreachable", format!("/rollback_conditions/{i}/min_requests"), format!(
                    "`min_requests: {}` is more than the about {} requests the canary gets per {window} window even with all the traffic ({} req/s): the rule counts only windows far above the average, and hardly ever fires",
                    g.min, crate::model::trim(round_requests(full)), crate::model::trim(rps)
                ))
                .with_hint("lower `min_requests` below the requests of a window in the phases the rule must watch, or lengthen `monitoring.window`"),
            );
        }
        let m = &plan.metrics[r.metric];
        let Some(error_threshold) = error_threshold(plan, r) else {
            continue;
        };
        if let Some((pi, n)) = thin_phase(plan, r, rps) {
            let p = &plan.phases[pi];
            // The threshold as the rule states it (availability: its success level).
            let t = match m.builtin {
                Some(Builtin::Availability) => 1.0 - error_threshold,
                _ => error_threshold,
            };
            // Below one request a window, "one failed request (170% of them)" reads as
            // nonsense: any window with a request in it may hold only failures.
            let share = if n < 1.0 {
                "most windows hold one request or none".to_string()
            } else {
                format!("{:.1}% of them", 100.0 / n)
            };
            let counted = r.min_requests.map_or(String::new(), |g| {
                format!(", and `min_requests: {}` lets such a window count", g.min)
            });
            out.push(
                Diagnostic::warning("thin-traffic", format!("/rollback_conditions/{i}/threshold"), format!(
                    "in phase `{}` the canary gets about {} requests per {window} window, so one failed request ({share}) already crosses the `{}` threshold of {}{counted}",
                    p.name, crate::model::trim(round_requests(n)), m.name, Unit::Ratio.show(t)
                ))
                .with_hint(hint(error_threshold, r.min_requests.map(|g| g.min))),
            );
        }
    }
    out
}

/// The share of failed requests above which rule `r` rolls back, for a rule on the error
/// rate or availability (availability: `1 - t`; a comparison with stable: its floor, as it
/// crosses there while stable has no failed request); None for any other rule.
pub(crate) fn error_threshold(plan: &CheckedPlan, r: &RollbackRule) -> Option<f64> {
    let t = match r.limit {
        Limit::Absolute(t)
        | Limit::RelativeToStable {
            also: Some((_, t)), ..
        } => t,
        Limit::RelativeToStable { also: None, .. } => return None,
    };
    match plan.metrics[r.metric].builtin {
        Some(Builtin::ErrorRate) => Some(t),
        Some(Builtin::Availability) => Some(1.0 - t),
        _ => None,
    }
}

/// The first phase below 100% where one failed request in a typical window crosses rule
/// `r`'s threshold and its guard does not cover it (see the module header), with the
/// canary's expected requests per window there; None when there is none. `plan tune`
/// searches the guards of the rules this flags by default.
pub(crate) fn thin_phase(plan: &CheckedPlan, r: &RollbackRule, rps: f64) -> Option<(usize, f64)> {
    let error_threshold = error_threshold(plan, r)?;
    let window = plan.monitoring.window;
    let guard = r.min_requests.map(|g| g.min as f64);
    for (pi, p) in plan.phases.iter().enumerate() {
        if p.traffic == Share::FULL {
            continue;
        }
        let n = rps * plan.canary_request_share(pi) * window.seconds();
        // The guard covers the phase when every window it counts holds too many requests
        // for one failure to cross (`N * t > 1`), or when it counts almost no window of
        // the phase: `N` three standard deviations above the Poisson mean and more.
        let covered = |g: f64| g * error_threshold > 1.0 || g > n + 3.0 * n.sqrt() + 1.0;
        if n > 0.0 && 1.0 / n > error_threshold && !guard.is_some_and(covered) {
            return Some((pi, n));
        }
    }
    None
}

/// What to do: the guard that covers every phase (`min_requests: N`, the smallest N with
/// `N * t > 1`), or more traffic per window.
fn hint(t: f64, written: Option<u64>) -> String {
    let guard = if t > 0.0 && t < 1.0 {
        let n = crate::model::trim((1.0 / t).floor() + 1.0);
        let what = match written {
            Some(w) => format!("raising `min_requests: {w}` to `{n}`"),
            None => format!("`min_requests: {n}` on this condition"),
        };
        format!("{what} (one failure then stays below the threshold in every window that counts)")
    } else {
        "`min_requests` on this condition".to_string()
    };
    format!(
        "run `plan simulate` to see the false-rollback rate; consider {guard}, a longer window, or a larger first phase"
    )
}

/// A mean request count as people read it: whole above 10, two significant digits below.
fn round_requests(n: f64) -> f64 {
    if n >= 10.0 {
        n.round()
    } else {
        let scale = 10f64.powi(1 - n.log10().floor() as i32);
        (n * scale).round() / scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Source;

    /// The thin-traffic warnings of a plan at 2 requests per second with a first phase of
    /// `share` and a 5% error-rate rule guarded by `guard`.
    fn warnings(share: &str, guard: Option<u64>) -> Vec<Diagnostic> {
        let guard = guard.map_or(String::new(), |n| format!("\n    min_requests: {n}"));
        let text = format!(
            "name: thin\nrelease: {{ from: v1, to: v2 }}\nservice: {{ name: web, image: example/web, port: 8080 }}\n\
             routing: {{ listen: 80, sticky: {{ cookie: sid }} }}\ntraffic: {{ requests_per_second: 2 }}\n\
             phases:\n  - {{ name: canary, traffic: {share}, duration: 1h }}\n  - {{ name: half, traffic: 50%, duration: 1h }}\n  - {{ name: full, traffic: 100% }}\n\
             rollback_conditions:\n  - metric: error_rate\n    threshold: 5%\n    duration: 5m{guard}\n"
        );
        let lowered = crate::pipeline::compile(Source::new("thin.yaml".into(), text))
            .plan
            .expect("valid");
        thin_traffic(&lowered.plan, 2.0)
    }

    #[test]
    fn a_guard_takes_the_phases_it_covers_out() {
        // 1% of 2/s: 6 requests per 5m window; one failure is 17%.
        let w = warnings("1%", None);
        assert_eq!(w.len(), 1);
        assert!(w[0].message.contains("phase `canary`"), "{}", w[0].message);
        assert!(
            w[0].hint
                .as_deref()
                .is_some_and(|h| h.contains("`min_requests: 21`"))
        );
        // 21 * 5% > 1: no window that counts can be crossed by one failure.
        assert!(warnings("1%", Some(21)).is_empty());
        // A guard well above the phase's 6 requests per window (three standard deviations
        // and more, 6 + 3 sqrt(6) + 1 = 14.3): the rule counts almost none of its windows.
        assert!(warnings("1%", Some(15)).is_empty());
        // Just above them, it still counts the busier windows (Poisson(6) >= 10: 8%), where
        // one failure (at most 10%) crosses 5%: warned.
        assert_eq!(warnings("1%", Some(10)).len(), 1);
        // A guard below them lets the thin windows count: warned, naming it.
        let w = warnings("1%", Some(3));
        assert_eq!(w.len(), 1);
        assert!(
            w[0].message
                .contains("`min_requests: 3` lets such a window count")
        );
        assert!(
            w[0].hint
                .as_deref()
                .is_some_and(|h| h.contains("raising `min_requests: 3` to `21`"))
        );
        // Above the 600 requests of a window at all of 2/s: it can hardly count.
        let w = warnings("1%", Some(601));
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].code, "min-requests-unreachable");
        assert!(warnings("1%", Some(599)).is_empty());
    }
}
