//! A metric's query (a [`MetricExpr`]) evaluated over raw series as Prometheus evaluates the
//! recording rules `plan render` emits: `rate` with extrapolation and counter resets over
//! the range window, `sum`/`avg`/`max` in series order with the version's summation (plain
//! in 2.42; Kahan-Neumaier in 3.x), `histogram_quantile` over `sum by (le)`, one-to-one
//! division of gauges; or a recorded series read as an alerting rule reads a recording
//! rule's output (an instant selector: 5m lookback, staleness markers honoured).
//!
//! [`Query`] is one metric's query for one track, its series selected once and read through
//! cursors: the one raw-series evaluator of the crate, shared by the replay
//! (`sim::trace::inputs`) and by the promtool unit tests `plan render` generates (which
//! must predict promtool to the evaluation).
//!
//! Exactness caveat: Prometheus adds the series of a sum in the order of its index (series
//! creation order), which no trace records; here they are added in slice order. Sums of one
//! or two series (and `max`) do not depend on the order; three or more may differ in the
//! last bit.

use super::engine::{self, Bound, EvalError};
use super::quantile::parse_le;
pub(crate) use super::reader::{Cur, Raw, Reader};
use super::summation::Agg;
use super::{Bucket, Semantics, Series};
use crate::promql::{MetricExpr, Selector, Track};

/// A metric's expression for one track bound to the series it reads: how its value is
/// obtained.
#[derive(Debug, Clone)]
enum BoundExpr {
    Recorded(Cur),
    RateRatio {
        num: Vec<Cur>,
        den: Vec<Cur>,
        w: i64,
    },
    Rate {
        sel: Vec<Cur>,
        w: i64,
    },
    /// `sum(increase(sel[w]))`.
    Increase {
        sel: Vec<Cur>,
        w: i64,
    },
    AvgRate {
        sel: Vec<Cur>,
        w: i64,
    },
    Quantile {
        q: f64,
        scale: f64,
        w: i64,
        /// (bucket series, index of its `le` group).
        sel: Vec<(Cur, usize)>,
        /// Each `le` group's bound (None when the label is not a float: skipped, as
        /// PromQL skips it).
        les: Vec<Option<f64>>,
    },
    GaugeSum {
        sel: Vec<Cur>,
    },
    /// (numerator, denominator) series with identical labels.
    GaugeRatioMax {
        pairs: Vec<(Cur, Cur)>,
    },
    /// A plan's own PromQL, evaluated by the engine.
    Engine(Box<Bound>),
    /// A plan's own PromQL that the engine cannot evaluate (`plan validate` refuses such a
    /// query, so this is only reached by a plan that skipped it): every evaluation fails.
    Unevaluable(String),
    Absent,
}

/// Where a metric's values come from, for the replay's report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Origin {
    /// The recorded series `name`.
    Recorded { series: String },
    /// Computed from this many raw series.
    Raw { series: usize },
    /// Nothing in the trace.
    Absent,
}

/// One metric's query for one track over a fixed set of series: which series it reads is
/// decided once, when it is built; [`Query::at`] then evaluates it at successive times
/// (fastest when they do not decrease: each series keeps a cursor), without allocating
/// (up to 64 histogram buckets).
///
/// This is the one raw-series evaluator of the crate: the replay reads traces with it and
/// `plan render` computes its promtool tests' expected values and firing evaluations with
/// it.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    src: BoundExpr,
    /// A custom query's possible results: per element, the labels its recording rule keeps
    /// beyond `plan`, `service` and `track` (which the rule sets), which tell the alerts of
    /// one rule apart (see [`Query::own_labels`]). Empty for every other query.
    own: Vec<Vec<(String, String)>>,
}

/// The labels a recording rule of `plan render` sets on what its query returns (and the
/// metric name, which it replaces).
const RULE_LABELS: [&str; 4] = ["__name__", "plan", "service", "track"];

impl Query {
    /// A query that returns nothing (no series gives the metric).
    pub(crate) fn absent() -> Query {
        Query {
            src: BoundExpr::Absent,
            own: Vec::new(),
        }
    }

    /// The recorded series `series[i]`, read like an alerting rule reads a recording
    /// rule's output: an instant selector (5m lookback, staleness markers honoured).
    pub(crate) fn recorded(i: usize) -> Query {
        Query {
            src: BoundExpr::Recorded(Cur::new(i)),
            own: Vec::new(),
        }
    }

    /// The raw query `expr` for `track` over `series` (sums add up in slice order). A
    /// custom query is evaluated by the PromQL [`engine`], from the very text its recording
    /// rule carries.
    pub(crate) fn raw(expr: &MetricExpr, track: Track, series: &[Series]) -> Query {
        let src = raw_source(expr, track, series);
        let own = match &src {
            BoundExpr::Engine(b) => b
                .slots()
                .iter()
                .map(|l| {
                    l.iter()
                        .filter(|(k, _)| !RULE_LABELS.contains(&k.as_str()))
                        .cloned()
                        .collect()
                })
                .collect(),
            _ => Vec::new(),
        };
        Query { src, own }
    }

    /// The labels of the latest value [`Query::at`] returned, beyond those its recording
    /// rule sets (`plan`, `service`, `track`): empty but for a custom query whose result
    /// keeps some (`increase(x{instance="a"}[5m])` keeps `instance`; `topk(1, x)` all of
    /// the chosen series'). Prometheus keys a rule's alerts by their labels, so when they
    /// change the alert is another one, whose `for` starts over; and `absent()` (in a
    /// no-data rule) gives none of them.
    pub(crate) fn own_labels(&self) -> &[(String, String)] {
        match &self.src {
            BoundExpr::Engine(b) => b.last().map_or(&[][..], |i| &self.own[i]),
            _ => &[],
        }
    }

    /// The indices of the series the query reads.
    pub(crate) fn reads(&self) -> Vec<usize> {
        let mut ids: Vec<usize> = match &self.src {
            BoundExpr::Absent | BoundExpr::Unevaluable(_) => Vec::new(),
            BoundExpr::Engine(b) => b.reads(),
            BoundExpr::Recorded(c) => vec![c.series],
            BoundExpr::RateRatio { num, den, .. } => {
                num.iter().chain(den).map(|c| c.series).collect()
            }
            BoundExpr::Rate { sel, .. }
            | BoundExpr::Increase { sel, .. }
            | BoundExpr::AvgRate { sel, .. }
            | BoundExpr::GaugeSum { sel } => sel.iter().map(|c| c.series).collect(),
            BoundExpr::Quantile { sel, .. } => sel.iter().map(|(c, _)| c.series).collect(),
            BoundExpr::GaugeRatioMax { pairs } => pairs
                .iter()
                .flat_map(|(n, d)| [n.series, d.series])
                .collect(),
        };
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The series it reads through a window (`rate()`, `increase()`, a quantile of bucket
    /// rates, or a custom query's range selectors), sorted: not at an instant.
    pub(crate) fn ranged_reads(&self) -> Vec<usize> {
        match &self.src {
            BoundExpr::Engine(b) => b.ranged_reads(),
            BoundExpr::Recorded(_)
            | BoundExpr::GaugeSum { .. }
            | BoundExpr::GaugeRatioMax { .. } => Vec::new(),
            _ => self.reads(),
        }
    }

    /// The value at `ts` (relative ms, as the samples); `None` when the query returns
    /// nothing; an error where Prometheus would fail the evaluation (only a custom query
    /// can). `series` must be the slice the query was built on.
    pub(crate) fn at(
        &mut self,
        series: &[Series],
        ts: i64,
        semantics: Semantics,
    ) -> Result<Option<f64>, EvalError> {
        match &mut self.src {
            BoundExpr::Engine(b) => b.value_at(series, ts, semantics),
            BoundExpr::Unevaluable(why) => Err(EvalError {
                message: why.clone(),
            }),
            src => Ok(eval(src, &mut Raw(series), ts, semantics)),
        }
    }

    /// Whether a [`Reader`] that keeps only each window's first and last samples (a
    /// sparse trial's) can serve the query: a built-in shape (rates, quantiles, gauge sums
    /// and ratios, a recorded series), or a custom query that reads its series only
    /// through `rate()`, `increase()` and instant selectors, without `offset`.
    pub(crate) fn reads_edges_only(&self) -> bool {
        match &self.src {
            BoundExpr::Engine(b) => b.reads_edges_only(),
            BoundExpr::Unevaluable(_) => false,
            _ => true,
        }
    }

    /// The ranges a custom query's range selectors read (none for a built-in shape,
    /// whose window its metric states).
    pub(crate) fn custom_ranges(&self) -> Vec<i64> {
        match &self.src {
            BoundExpr::Engine(b) => b.ranges(),
            _ => Vec::new(),
        }
    }

    /// [`Query::at`] with the series read through `reader`, for a query that
    /// [reads their edges only](Self::reads_edges_only).
    pub(crate) fn value_over(
        &mut self,
        reader: &mut impl Reader,
        ts: i64,
        semantics: Semantics,
    ) -> Result<Option<f64>, EvalError> {
        debug_assert!(self.reads_edges_only());
        match &mut self.src {
            BoundExpr::Engine(b) => b.value_over(reader, ts, semantics),
            src => Ok(eval(src, reader, ts, semantics)),
        }
    }

    /// [`Query::at`] for the queries `plan render`'s promtool tests are built from (built-in
    /// queries and recorded series, whose evaluation cannot fail; a custom query is fed to
    /// those tests as its recorded series).
    pub(crate) fn level(
        &mut self,
        series: &[Series],
        ts: i64,
        semantics: Semantics,
    ) -> Option<f64> {
        self.at(series, ts, semantics).unwrap_or(None)
    }

    /// Where the values come from.
    pub(crate) fn origin(&self, series: &[Series]) -> Origin {
        match &self.src {
            BoundExpr::Recorded(c) => Origin::Recorded {
                series: series[c.series].display(),
            },
            BoundExpr::Absent | BoundExpr::Unevaluable(_) => Origin::Absent,
            BoundExpr::Engine(b) => match b.reads().len() {
                0 => Origin::Absent,
                n => Origin::Raw { series: n },
            },
            BoundExpr::RateRatio { num, den, .. } => {
                let mut ids: Vec<usize> = num.iter().chain(den).map(|c| c.series).collect();
                ids.sort_unstable();
                ids.dedup();
                Origin::Raw { series: ids.len() }
            }
            BoundExpr::Rate { sel, .. }
            | BoundExpr::Increase { sel, .. }
            | BoundExpr::AvgRate { sel, .. }
            | BoundExpr::GaugeSum { sel } => Origin::Raw { series: sel.len() },
            BoundExpr::Quantile { sel, .. } => Origin::Raw { series: sel.len() },
            BoundExpr::GaugeRatioMax { pairs } => Origin::Raw {
                series: pairs.len() * 2,
            },
        }
    }
}

/// The raw source of `expr` for `track`: the series each selector matches, chosen once.
fn raw_source(expr: &MetricExpr, track: Track, series: &[Series]) -> BoundExpr {
    let pick = |sel: &Selector| -> Vec<Cur> {
        series
            .iter()
            .enumerate()
            .filter(|(_, s)| sel.matches(&s.name, &s.labels, track))
            .map(|(i, _)| Cur::new(i))
            .collect()
    };
    match expr {
        MetricExpr::RateRatio { num, den, window } => BoundExpr::RateRatio {
            num: pick(num),
            den: pick(den),
            w: window.millis() as i64,
        },
        MetricExpr::Rate { sel, window } => BoundExpr::Rate {
            sel: pick(sel),
            w: window.millis() as i64,
        },
        MetricExpr::Increase { sel, window } => BoundExpr::Increase {
            sel: pick(sel),
            w: window.millis() as i64,
        },
        MetricExpr::AvgRate { sel, window } => BoundExpr::AvgRate {
            sel: pick(sel),
            w: window.millis() as i64,
        },
        MetricExpr::Quantile {
            q,
            sel,
            window,
            scale,
        } => {
            let curs = pick(sel);
            let mut names: Vec<&str> = Vec::new();
            let mut with_group = Vec::with_capacity(curs.len());
            for c in curs {
                let le = series[c.series].label("le");
                let g = match names.iter().position(|n| *n == le) {
                    Some(g) => g,
                    None => {
                        names.push(le);
                        names.len() - 1
                    }
                };
                with_group.push((c, g));
            }
            BoundExpr::Quantile {
                q: *q,
                scale: *scale,
                w: window.millis() as i64,
                sel: with_group,
                les: names.iter().map(|n| parse_le(n)).collect(),
            }
        }
        MetricExpr::GaugeSum { sel } => BoundExpr::GaugeSum { sel: pick(sel) },
        MetricExpr::GaugeRatioMax { num, den } => {
            let nums = pick(num);
            let dens = pick(den);
            let pairs = nums
                .into_iter()
                .filter_map(|n| {
                    let labels = &series[n.series].labels;
                    dens.iter()
                        .find(|d| series[d.series].labels == *labels)
                        .map(|d| (n, Cur::new(d.series)))
                })
                .collect();
            BoundExpr::GaugeRatioMax { pairs }
        }
        MetricExpr::Custom(_) => {
            let text = expr.promql(Some(track));
            match engine::program(&text) {
                Ok(p) => BoundExpr::Engine(Box::new(Bound::new(&p, series))),
                Err(why) => BoundExpr::Unevaluable(why),
            }
        }
    }
}

fn eval(src: &mut BoundExpr, series: &mut impl Reader, ts: i64, sem: Semantics) -> Option<f64> {
    match src {
        BoundExpr::Absent => None,
        // Evaluated by `Query::at`, which can report their errors.
        BoundExpr::Engine(_) | BoundExpr::Unevaluable(_) => None,
        BoundExpr::Recorded(c) => series.instant(c, ts, sem),
        BoundExpr::RateRatio { num, den, w } => {
            let mut n = Agg::default();
            for c in num.iter_mut() {
                if let Some(v) = series.extrapolated(c, (ts, *w), true, sem) {
                    n.add_sum(v, sem);
                }
            }
            let mut d = Agg::default();
            for c in den.iter_mut() {
                if let Some(v) = series.extrapolated(c, (ts, *w), true, sem) {
                    d.add_sum(v, sem);
                }
            }
            // `(sum(...) or vector(0))`: no numerator series is no event yet.
            super::ratio(Some(n.sum().unwrap_or(0.0)), d.sum())
        }
        BoundExpr::Rate { sel, w } => {
            let mut a = Agg::default();
            for c in sel.iter_mut() {
                if let Some(v) = series.extrapolated(c, (ts, *w), true, sem) {
                    a.add_sum(v, sem);
                }
            }
            a.sum()
        }
        BoundExpr::Increase { sel, w } => {
            let mut a = Agg::default();
            for c in sel.iter_mut() {
                if let Some(v) = series.extrapolated(c, (ts, *w), false, sem) {
                    a.add_sum(v, sem);
                }
            }
            a.sum()
        }
        BoundExpr::AvgRate { sel, w } => {
            let mut a = Agg::default();
            for c in sel.iter_mut() {
                if let Some(v) = series.extrapolated(c, (ts, *w), true, sem) {
                    a.add_avg(v, sem);
                }
            }
            a.avg(sem)
        }
        BoundExpr::Quantile {
            q,
            scale,
            w,
            sel,
            les,
        } => {
            // sum by (le): one accumulator per group, in first-seen order.
            let mut groups = [Agg::default(); 64];
            let mut big: Vec<Agg>;
            let acc: &mut [Agg] = if les.len() <= groups.len() {
                &mut groups[..les.len()]
            } else {
                big = vec![Agg::default(); les.len()];
                &mut big
            };
            for (c, g) in sel.iter_mut() {
                if let Some(v) = series.extrapolated(c, (ts, *w), true, sem) {
                    acc[*g].add_sum(v, sem);
                }
            }
            let mut stack = [Bucket::new(0.0, 0.0); 64];
            let mut heap: Vec<Bucket>;
            let buckets: &mut [Bucket] = if les.len() <= stack.len() {
                &mut stack[..]
            } else {
                heap = vec![Bucket::new(0.0, 0.0); les.len()];
                &mut heap
            };
            let mut n = 0;
            for (a, le) in acc.iter().zip(les.iter()) {
                if let (Some(count), Some(le)) = (a.sum(), le) {
                    buckets[n] = Bucket::new(*le, count);
                    n += 1;
                }
            }
            if n == 0 {
                return None;
            }
            let v = super::histogram_quantile(*q, &mut buckets[..n], sem);
            Some(if *scale == 1.0 { v } else { v * *scale })
        }
        BoundExpr::GaugeSum { sel } => {
            let mut a = Agg::default();
            for c in sel.iter_mut() {
                if let Some(v) = series.instant(c, ts, sem) {
                    a.add_sum(v, sem);
                }
            }
            a.sum()
        }
        BoundExpr::GaugeRatioMax { pairs } => {
            let mut max: Option<f64> = None;
            for (n, d) in pairs.iter_mut() {
                let (Some(nv), Some(dv)) = (series.instant(n, ts, sem), series.instant(d, ts, sem))
                else {
                    continue;
                };
                // `den > 0` drops a pair whose limit is unset (0) or NaN.
                if dv.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                    continue;
                }
                let r = nv / dv;
                max = Some(match max {
                    Some(m) if !(m < r || m.is_nan()) => m,
                    _ => r,
                });
            }
            max
        }
    }
}
