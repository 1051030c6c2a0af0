//! The arithmetic of PromQL's functions on one series or one group, as promql/functions.go
//! and promql/quantile.go compute it (2.42 and 3.x where they differ), down to the order of
//! float operations: `*_over_time`, `irate`/`idelta`, `resets`, `changes`, `quantile`,
//! clamping with Go's `math.Max`/`math.Min`, and the binary operators.

use super::expr::{BinOp, RangeFn};
use crate::prom::Semantics;
use crate::prom::rate::extrapolated_rate;
use crate::prom::sample::Sample;

/// Go's `math.Max`: NaN wins, and +0 is larger than -0.
pub(super) fn go_max(x: f64, y: f64) -> f64 {
    if x.is_infinite() && x > 0.0 || y.is_infinite() && y > 0.0 {
        return f64::INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && y == 0.0 {
        return if x.is_sign_negative() { y } else { x };
    }
    if x > y { x } else { y }
}

/// Go's `math.Min`: NaN wins, and -0 is smaller than +0.
pub(super) fn go_min(x: f64, y: f64) -> f64 {
    if x.is_infinite() && x < 0.0 || y.is_infinite() && y < 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && y == 0.0 {
        return if x.is_sign_negative() { x } else { y };
    }
    if x < y { x } else { y }
}

/// `kahanSumInc`: 2.42 has no special case for an infinite sum; 3.x drops the
/// compensation then.
fn kahan_inc(inc: f64, sum: f64, c: f64, sem: Semantics) -> (f64, f64) {
    match sem {
        Semantics::Prometheus3 => crate::prom::summation::kahan_inc(inc, sum, c),
        Semantics::Prometheus2 => {
            let t = sum + inc;
            let c = if sum.abs() >= inc.abs() {
                c + ((sum - t) + inc)
            } else {
                c + ((inc - t) + sum)
            };
            (t, c)
        }
    }
}

/// A range function of one series' window at `t` (the evaluation time shifted by the
/// offset). `window` may hold staleness markers (skipped); `live` is scratch space.
/// `None`: the series gives no element.
#[allow(clippy::too_many_arguments)]
pub(super) fn range_fn(
    func: RangeFn,
    param: f64,
    window: &[Sample],
    t: i64,
    range_ms: i64,
    live: &mut Vec<Sample>,
    sem: Semantics,
) -> Option<f64> {
    let start = t - range_ms;
    match func {
        RangeFn::Rate => return extrapolated_rate(window, start, t, true, true, sem),
        RangeFn::Increase => return extrapolated_rate(window, start, t, true, false, sem),
        RangeFn::Delta => return extrapolated_rate(window, start, t, false, false, sem),
        _ => {}
    }
    live.clear();
    live.extend(window.iter().filter(|s| !s.is_stale()));
    let xs: &[Sample] = live;
    let first = *xs.first()?;
    Some(match func {
        RangeFn::Rate | RangeFn::Increase | RangeFn::Delta => unreachable!("handled above"),
        RangeFn::Irate | RangeFn::Idelta => {
            let [.., prev, last] = xs else {
                return None;
            };
            let is_rate = func == RangeFn::Irate;
            let mut v = if is_rate && last.v < prev.v {
                last.v
            } else {
                last.v - prev.v
            };
            let interval = last.t - prev.t;
            if interval == 0 {
                return None;
            }
            if is_rate {
                v /= interval as f64 / 1000.0;
            }
            v
        }
        RangeFn::Resets => {
            let mut n = 0;
            for w in xs.windows(2) {
                if w[1].v < w[0].v {
                    n += 1;
                }
            }
            n as f64
        }
        RangeFn::Changes => {
            let mut n = 0;
            for w in xs.windows(2) {
                let (prev, cur) = (w[0].v, w[1].v);
                if cur != prev && !(cur.is_nan() && prev.is_nan()) {
                    n += 1;
                }
            }
            n as f64
        }
        RangeFn::CountOverTime => xs.len() as f64,
        RangeFn::PresentOverTime => 1.0,
        RangeFn::LastOverTime => xs[xs.len() - 1].v,
        RangeFn::MaxOverTime => {
            let mut m = first.v;
            for s in xs {
                if s.v > m || m.is_nan() {
                    m = s.v;
                }
            }
            m
        }
        RangeFn::MinOverTime => {
            let mut m = first.v;
            for s in xs {
                if s.v < m || m.is_nan() {
                    m = s.v;
                }
            }
            m
        }
        RangeFn::SumOverTime => {
            let (mut sum, mut c) = (0.0, 0.0);
            for s in xs {
                (sum, c) = kahan_inc(s.v, sum, c, sem);
            }
            if sum.is_infinite() { sum } else { sum + c }
        }
        RangeFn::AvgOverTime => avg_over_time(xs, sem),
        RangeFn::StddevOverTime => variance(xs, sem).sqrt(),
        RangeFn::StdvarOverTime => variance(xs, sem),
        RangeFn::QuantileOverTime => {
            let mut values: Vec<f64> = xs.iter().map(|s| s.v).collect();
            quantile(param, &mut values, sem)
        }
    })
}

fn avg_over_time(xs: &[Sample], sem: Semantics) -> f64 {
    match sem {
        Semantics::Prometheus2 => {
            let (mut mean, mut count, mut c) = (0.0f64, 0.0f64, 0.0f64);
            for s in xs {
                count += 1.0;
                if mean.is_infinite() {
                    if s.v.is_infinite() && (mean > 0.0) == (s.v > 0.0) {
                        continue;
                    }
                    if !s.v.is_infinite() && !s.v.is_nan() {
                        continue;
                    }
                }
                (mean, c) = kahan_inc(s.v / count - mean / count, mean, c, sem);
            }
            if mean.is_infinite() { mean } else { mean + c }
        }
        Semantics::Prometheus3 => {
            let (mut sum, mut count) = (xs[0].v, 1.0f64);
            let (mut mean, mut c) = (0.0f64, 0.0f64);
            let mut incremental = false;
            for (i, s) in xs[1..].iter().enumerate() {
                count = (i + 2) as f64;
                if !incremental {
                    let (new_sum, new_c) = kahan_inc(s.v, sum, c, sem);
                    if !new_sum.is_infinite() {
                        (sum, c) = (new_sum, new_c);
                        continue;
                    }
                    incremental = true;
                    mean = sum / (count - 1.0);
                    c /= count - 1.0;
                }
                let q = (count - 1.0) / count;
                (mean, c) = kahan_inc(s.v / count, q * mean, q * c, sem);
            }
            if incremental {
                mean + c
            } else {
                sum / count + c / count
            }
        }
    }
}

fn variance(xs: &[Sample], sem: Semantics) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for s in xs {
        count += 1.0;
        let delta = s.v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean, sem);
        (aux, c_aux) = kahan_inc(delta * (s.v - (mean + c_mean)), aux, c_aux, sem);
    }
    (aux + c_aux) / count
}

/// `quantile(φ, values)` (promql/quantile.go): sorted with NaN first, linear
/// interpolation between the closest ranks. Sorts `values` in place.
pub(super) fn quantile(q: f64, values: &mut [f64], sem: Semantics) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    if q.is_nan() && sem == Semantics::Prometheus3 {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if q.is_nan() {
        // 2.42 indexes with int(NaN), which is undefined in Go; no answer is honest.
        return f64::NAN;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = go_max(0.0, rank.floor());
    let upper = go_min(n - 1.0, lower + 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// A binary operator on two numbers: the value and whether a comparison keeps it
/// (`vectorElemBinop`; a comparison's value is the left operand).
pub(super) fn binop(op: BinOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinOp::Add => (l + r, true),
        BinOp::Sub => (l - r, true),
        BinOp::Mul => (l * r, true),
        BinOp::Div => (l / r, true),
        // Go's math.Pow and math.Mod agree with C's pow and fmod (Rust's powf and %) on
        // every special case: Pow(1, NaN) = 1, Pow(NaN, 0) = 1, Mod(x, ±Inf) = x...
        BinOp::Pow => (l.powf(r), true),
        BinOp::Mod => (l % r, true),
        BinOp::Atan2 => (l.atan2(r), true),
        BinOp::Eq => (l, l == r),
        BinOp::Ne => (l, l != r),
        BinOp::Gt => (l, l > r),
        BinOp::Lt => (l, l < r),
        BinOp::Ge => (l, l >= r),
        BinOp::Le => (l, l <= r),
        BinOp::And | BinOp::Or | BinOp::Unless => unreachable!("set operators never reach binop"),
    }
}

/// A binary operator on two scalars (`scalarBinop`): comparisons give 1 or 0.
pub(super) fn scalar_binop(op: BinOp, l: f64, r: f64) -> f64 {
    let (v, keep) = binop(op, l, r);
    if op.is_comparison() {
        if keep { 1.0 } else { 0.0 }
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_min_max_follow_go() {
        assert!(go_max(f64::NAN, 1.0).is_nan());
        assert_eq!(go_max(f64::NAN, f64::INFINITY), f64::INFINITY);
        assert!(go_max(-0.0, 0.0).is_sign_positive());
        assert!(go_min(-0.0, 0.0).is_sign_negative());
        assert_eq!(go_min(2.0, 1.0), 1.0);
    }

    #[test]
    fn quantile_interpolates_and_puts_nan_first() {
        let mut v = vec![3.0, 1.0, 2.0, 4.0];
        assert_eq!(quantile(0.5, &mut v, Semantics::Prometheus3), 2.5);
        let mut v = vec![1.0, f64::NAN];
        assert!(quantile(0.0, &mut v, Semantics::Prometheus3).is_nan());
        assert_eq!(
            quantile(2.0, &mut [1.0], Semantics::Prometheus3),
            f64::INFINITY
        );
    }
}
