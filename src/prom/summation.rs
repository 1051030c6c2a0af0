//! Summation as each Prometheus version does it: `sum` and `avg` of an aggregation group
//! (plain addition and an incremental mean in 2.42; Kahan-Neumaier compensated sums, and a
//! direct mean until it would overflow, in 3.x). Shared by the metric queries and the
//! PromQL engine, whose sums must match Prometheus to the last bit.

use super::Semantics;

/// One aggregation group of `sum` or `avg`, as promql/engine.go's `aggregation` keeps it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Agg {
    n: u32,
    value: f64,
    c: f64,
    mean: f64,
    incremental: bool,
}

/// `kahanSumInc` of Prometheus 3.x (Neumaier's variant; an infinite sum drops the
/// compensation).
#[inline]
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

impl Agg {
    #[inline]
    fn first(&mut self, f: f64) -> bool {
        if self.n == 0 {
            *self = Agg {
                n: 1,
                value: f,
                c: 0.0,
                mean: f,
                incremental: false,
            };
            true
        } else {
            false
        }
    }

    #[inline]
    pub(crate) fn add_sum(&mut self, f: f64, sem: Semantics) {
        if self.first(f) {
            return;
        }
        self.n += 1;
        match sem {
            Semantics::Prometheus2 => self.value += f,
            Semantics::Prometheus3 => (self.value, self.c) = kahan_inc(f, self.value, self.c),
        }
    }

    /// How many values were added.
    #[inline]
    pub(crate) fn count(&self) -> Option<u32> {
        (self.n > 0).then_some(self.n)
    }

    #[inline]
    pub(crate) fn sum(&self) -> Option<f64> {
        // In 2.42 `c` stays 0; in 3.x the compensation is added at the end.
        (self.n > 0).then_some(self.value + self.c)
    }

    #[inline]
    pub(crate) fn add_avg(&mut self, f: f64, sem: Semantics) {
        if self.first(f) {
            return;
        }
        self.n += 1;
        let n = self.n as f64;
        match sem {
            Semantics::Prometheus2 => {
                if self.mean.is_infinite() {
                    if f.is_infinite() && (self.mean > 0.0) == (f > 0.0) {
                        return;
                    }
                    if !f.is_infinite() && !f.is_nan() {
                        return;
                    }
                }
                self.mean += f / n - self.mean / n;
            }
            Semantics::Prometheus3 => {
                if !self.incremental {
                    let (v, c) = kahan_inc(f, self.value, self.c);
                    if !v.is_infinite() {
                        (self.value, self.c) = (v, c);
                        return;
                    }
                    self.incremental = true;
                    self.mean = self.value / (n - 1.0);
                    self.c /= n - 1.0;
                }
                let q = (n - 1.0) / n;
                (self.mean, self.c) = kahan_inc(f / n, q * self.mean, q * self.c);
            }
        }
    }

    #[inline]
    pub(crate) fn avg(&self, sem: Semantics) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        let n = self.n as f64;
        Some(match sem {
            Semantics::Prometheus2 => self.mean,
            Semantics::Prometheus3 if self.incremental => self.mean + self.c,
            Semantics::Prometheus3 => self.value / n + self.c / n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_follow_each_version() {
        let xs = [1e16, 1.0, -1e16];
        let mut a = Agg::default();
        let mut b = Agg::default();
        for x in xs {
            a.add_sum(x, Semantics::Prometheus2);
            b.add_sum(x, Semantics::Prometheus3);
        }
        assert_eq!(a.sum(), Some(0.0));
        assert_eq!(b.sum(), Some(1.0));
        assert_eq!(Agg::default().sum(), None);
    }

    #[test]
    fn averages_follow_each_version() {
        let mut a = Agg::default();
        let mut b = Agg::default();
        for x in [1.0, 2.0, 4.0] {
            a.add_avg(x, Semantics::Prometheus2);
            b.add_avg(x, Semantics::Prometheus3);
        }
        // 2.42: mean 1 → 1 + (2/2 - 1/2) = 1.5 → 1.5 + (4/3 - 1.5/3).
        assert_eq!(
            a.avg(Semantics::Prometheus2),
            Some(1.5 + (4.0 / 3.0 - 1.5 / 3.0))
        );
        assert_eq!(b.avg(Semantics::Prometheus3), Some(7.0 / 3.0));
        let mut c = Agg::default();
        for x in [f64::MAX, f64::MAX] {
            c.add_avg(x, Semantics::Prometheus3);
        }
        assert_eq!(c.avg(Semantics::Prometheus3), Some(f64::MAX));
        let mut d = Agg::default();
        for x in [f64::INFINITY, 1.0] {
            d.add_avg(x, Semantics::Prometheus2);
        }
        assert_eq!(d.avg(Semantics::Prometheus2), Some(f64::INFINITY));
    }
}
