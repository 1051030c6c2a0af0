//! The thin-traffic warning: at a phase's share, one failed request in one window already
//! crosses a rollback threshold on a request ratio, so noise alone can roll the release
//! back. `plan validate` runs it with the plan's stated rate, `plan simulate` with the rate
//! it simulates.

use super::catalog::Builtin;
use super::checked::{CheckedPlan, Limit};
use crate::diagnostic::Diagnostic;
use crate::model::{Share, Unit};

/// One warning per rollback rule on the error rate or availability, at the first phase
/// where the canary's share of `rps` requests per second makes one failure cross it.
pub(crate) fn thin_traffic(plan: &CheckedPlan, rps: f64) -> Vec<Diagnostic> {
    let window = plan.monitoring.window;
    let mut out = Vec::new();
    for (i, r) in plan.rollbacks.iter().enumerate() {
        let m = &plan.metrics[r.metric];
        // A comparison with stable crosses at its floor while stable has no failed request.
        let t = match r.limit {
            Limit::Absolute(t)
            | Limit::RelativeToStable {
                also: Some((_, t)), ..
            } => t,
            Limit::RelativeToStable { also: None, .. } => continue,
        };
        let error_threshold = match m.builtin {
            Some(Builtin::ErrorRate) => t,
            Some(Builtin::Availability) => 1.0 - t,
            _ => continue,
        };
        for (pi, p) in plan.phases.iter().enumerate() {
            if p.traffic == Share::FULL {
                continue;
            }
            let n = rps * plan.canary_request_share(pi) * window.seconds();
            if n > 0.0 && 1.0 / n > error_threshold {
                // Below one request a window, "one failed request (170% of them)" reads as
                // nonsense: any window with a request in it may hold only failures.
                let share = if n < 1.0 {
                    "most windows hold one request or none".to_string()
                } else {
                    format!("{:.1}% of them", 100.0 / n)
                };
                out.push(
                    Diagnostic::warning("thin-traffic", format!("/rollback_conditions/{i}/threshold"), format!(
                        "in phase `{}` the canary gets about {} requests per {window} window, so one failed request ({share}) already crosses the `{}` threshold of {}",
                        p.name, crate::model::trim(round_requests(n)), m.name, Unit::Ratio.show(t)
                    ))
                    .with_hint("run `plan simulate` to see the false-rollback rate; consider a longer window, a minimum request count, or a larger first phase"),
                );
                break;
            }
        }
    }
    out
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
