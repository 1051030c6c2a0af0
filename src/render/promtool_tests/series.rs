//! The series a test feeds, built from one frame of levels per sample interval. Built-in
//! metrics get the raw series their default queries read (`http_requests_total{code}`,
//! `http_request_duration_seconds_bucket{le}` with buckets placed so that the quantile is
//! the level, gauges, CPU counters), sampled every minute (finer when the rate window is
//! under 4m, coarser when it is so long that a window would near promtool's 10,000-sample
//! query limit). Custom metrics get their recorded series directly: their query has no
//! input series in the test, so its recording rule records nothing and cannot clash with
//! the fed samples.

use super::generator::Generator;
use super::levels::{Levels, Signal};
use crate::lower;
use crate::prom::{Sample, Series};
use crate::promql::{MatchOp, MetricExpr, Selector, Track};
use crate::render::alerting::float_literal;
use std::collections::BTreeMap;
use std::rc::Rc;

/// The memory limit given to gauge-ratio metrics' denominators (1 GiB).
const LIMIT: f64 = 1_073_741_824.0;

/// The series of one scenario, in Prometheus' order (as promtool creates them, so sums
/// add up in the same order), and how many sample slots each has (one per `step`; a
/// slot without a sample is written `_`).
pub(super) struct Fed {
    pub(super) series: Vec<Series>,
    pub(super) slots: usize,
}

impl Fed {
    /// Keeps the samples at or before `t`.
    pub(super) fn truncate(&mut self, t: i64, step: i64) {
        self.slots = self.slots.min((t / step + 1).max(0) as usize);
        for s in &mut self.series {
            s.samples.retain(|x| x.t <= t);
        }
    }
}

/// A series built from one value per sample slot (`None`: no sample).
pub(super) fn new_series(
    name: &str,
    labels: BTreeMap<String, String>,
    values: Vec<Option<f64>>,
    step: i64,
) -> Series {
    Series {
        name: name.to_string(),
        labels: labels.into_iter().collect(),
        samples: values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| Sample::new(i as i64 * step, v)))
            .collect(),
        line: 0,
        column: 0,
    }
}

/// The value of each of `n` sample slots of `s`.
pub(super) fn slots(s: &Series, step: i64, n: usize) -> Vec<Option<f64>> {
    let mut out = vec![None; n];
    for x in &s.samples {
        if let Some(slot) = usize::try_from(x.t / step)
            .ok()
            .and_then(|i| out.get_mut(i))
        {
            *slot = Some(x.v);
        }
    }
    out
}

/// Prometheus' order of series: by label set, `__name__` included, label by label.
pub(super) fn key(s: &Series) -> Vec<(&str, &str)> {
    let mut k: Vec<(&str, &str)> = s
        .labels
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    k.push(("__name__", s.name.as_str()));
    k.sort();
    k
}

/// One sample interval of one track: the levels, whether requests flow, whether the
/// service is scraped at all.
#[derive(Debug, Clone)]
pub(super) struct Frame {
    /// Shared: a scenario repeats the same frame for every interval.
    pub(super) levels: Rc<Levels>,
    pub(super) traffic: bool,
    pub(super) reporting: bool,
}

/// Per quantile metric: (level, bucket upper bound) for every level, ascending.
type Les = BTreeMap<usize, Vec<(f64, f64)>>;

/// Bucket bounds (in the histogram's unit, seconds) such that putting every observation
/// in the k-th bucket gives the k-th level: the first bucket starts at 0, so its
/// quantile is `q * le1`; inside bucket k it is `le(k-1) + q * (le(k) - le(k-1))`.
fn bucket_bounds(q: f64, scale: f64, levels: &[f64]) -> Option<Vec<(f64, f64)>> {
    if q.is_nan() || q <= 0.0 || q > 1.0 || scale.is_nan() || scale <= 0.0 {
        return None;
    }
    let mut out = Vec::new();
    let mut prev = 0.0;
    for &y in levels {
        let u = y / scale;
        if u <= prev || u.is_nan() {
            return None;
        }
        let le = prev + (u - prev) / q;
        out.push((y, le));
        prev = le;
    }
    Some(out)
}

/// The `le` label of a bucket bound, as Prometheus clients print it.
fn le_label(le: f64) -> String {
    if le.is_infinite() {
        "+Inf".into()
    } else {
        float_literal(le)
    }
}

/// The labels an equality matcher of `sel` fixes, with the track filled in.
fn eq_labels(sel: &Selector, track: Track) -> BTreeMap<String, String> {
    sel.matchers
        .iter()
        .filter(|m| m.op == MatchOp::Eq)
        .map(|m| {
            (
                m.label.clone(),
                Selector::value_for(m, track.as_str()).to_string(),
            )
        })
        .collect()
}

impl Generator<'_> {
    /// The series a set of metrics reads, for one track, from its frames.
    pub(super) fn series(
        &self,
        metrics: &[usize],
        track: Track,
        frames: &[Frame],
        les: &Les,
    ) -> Vec<Series> {
        let mut out: BTreeMap<Vec<(String, String)>, Series> = BTreeMap::new();
        let mut add = |s: Series| {
            let key = key(&s)
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            out.insert(key, s);
        };
        let step_s = self.step_s();
        let lvl = |f: &Frame, s: Signal| f.levels.get(&s).copied().unwrap_or(0.0);
        for &mi in metrics {
            let m = &self.plan.metrics[mi];
            let gauge = |f: &dyn Fn(&Frame) -> f64| -> Vec<Option<f64>> {
                frames
                    .iter()
                    .map(|fr| fr.reporting.then(|| f(fr)))
                    .collect()
            };
            let counter = |inc: &dyn Fn(&Frame) -> f64, by_requests: bool| -> Vec<Option<f64>> {
                let mut c = 0.0;
                frames
                    .iter()
                    .enumerate()
                    .map(|(i, fr)| {
                        if i > 0 && (fr.traffic || !by_requests) {
                            c += inc(fr);
                        }
                        fr.reporting.then_some(c)
                    })
                    .collect()
            };
            match &m.expr {
                MetricExpr::Custom(_) => {
                    let labels = BTreeMap::from([
                        ("plan".to_string(), self.plan.name.clone()),
                        ("service".to_string(), self.plan.service.name.clone()),
                        ("track".to_string(), track.as_str().to_string()),
                    ]);
                    let vals = gauge(&|f| lvl(f, Signal::Own(mi)));
                    add(new_series(&lower::record_name(m), labels, vals, self.step));
                }
                // A latency guard's request count: the histogram's `_count`, which
                // grows with every request (as its `+Inf` bucket does).
                MetricExpr::Increase { sel, .. } if sel.metric.ends_with("_count") => {
                    let vals = counter(&|f| lvl(f, Signal::Requests), true);
                    add(new_series(
                        &sel.metric,
                        eq_labels(sel, track),
                        vals,
                        self.step,
                    ));
                }
                // The request counter by code; a guard's request count reads the same
                // series.
                MetricExpr::RateRatio { den: sel, .. }
                | MetricExpr::Rate { sel, .. }
                | MetricExpr::Increase { sel, .. } => {
                    for (code, failing) in [("200", false), ("500", true)] {
                        let mut labels = eq_labels(sel, track);
                        labels.insert("code".into(), code.into());
                        let vals = counter(
                            &|f| {
                                let n = lvl(f, Signal::Requests);
                                let e = n * lvl(f, Signal::ErrorShare);
                                if failing { e } else { n - e }
                            },
                            true,
                        );
                        add(new_series(&sel.metric, labels, vals, self.step));
                    }
                }
                MetricExpr::Quantile { sel, .. } => {
                    let Some(bounds) = les.get(&mi) else { continue };
                    let mut edges: Vec<f64> = bounds.iter().map(|(_, le)| *le).collect();
                    edges.push(f64::INFINITY);
                    for (j, le) in edges.iter().enumerate() {
                        let mut labels = eq_labels(sel, track);
                        labels.insert("le".into(), le_label(*le));
                        let vals = counter(
                            &|f| {
                                let y = lvl(f, Signal::Own(mi));
                                let k = bounds
                                    .iter()
                                    .position(|(lv, _)| lv.to_bits() == y.to_bits())
                                    .unwrap_or(bounds.len());
                                if j >= k {
                                    lvl(f, Signal::Requests)
                                } else {
                                    0.0
                                }
                            },
                            true,
                        );
                        add(new_series(&sel.metric, labels, vals, self.step));
                    }
                }
                MetricExpr::AvgRate { sel, .. } => {
                    // CPU time is spent whether or not requests come in.
                    let vals = counter(&|f| lvl(f, Signal::Own(mi)) * step_s, false);
                    add(new_series(
                        &sel.metric,
                        eq_labels(sel, track),
                        vals,
                        self.step,
                    ));
                }
                MetricExpr::GaugeSum { sel } => {
                    let vals = gauge(&|f| lvl(f, Signal::Own(mi)));
                    add(new_series(
                        &sel.metric,
                        eq_labels(sel, track),
                        vals,
                        self.step,
                    ));
                }
                MetricExpr::GaugeRatioMax { num, den } => {
                    let vals = gauge(&|f| lvl(f, Signal::Own(mi)) * LIMIT);
                    add(new_series(
                        &num.metric,
                        eq_labels(num, track),
                        vals,
                        self.step,
                    ));
                    let vals = gauge(&|_| LIMIT);
                    add(new_series(
                        &den.metric,
                        eq_labels(den, track),
                        vals,
                        self.step,
                    ));
                }
            }
        }
        out.into_values().collect()
    }

    /// Histogram bucket bounds for every latency level a test uses.
    pub(super) fn les(&self, metrics: &[usize], frames: &[&[Frame]]) -> Result<Les, String> {
        let mut les = Les::new();
        for &mi in metrics {
            let MetricExpr::Quantile { q, scale, .. } = self.plan.metrics[mi].expr else {
                continue;
            };
            let mut levels: Vec<f64> = frames
                .iter()
                .flat_map(|fs| fs.iter())
                .filter_map(|f| f.levels.get(&Signal::Own(mi)).copied())
                .collect();
            levels.sort_by(f64::total_cmp);
            levels.dedup_by(|a, b| a.to_bits() == b.to_bits());
            let b = bucket_bounds(q, scale, &levels).ok_or_else(|| {
                format!(
                    "no histogram buckets give the levels {levels:?} of `{}`",
                    self.plan.metrics[mi].name
                )
            })?;
            les.insert(mi, b);
        }
        Ok(les)
    }

    pub(super) fn frames(
        &self,
        healthy: &Levels,
        until: i64,
        after: Option<&Frame>,
        end: i64,
    ) -> Vec<Frame> {
        let n = (end / self.step + 1) as usize;
        let healthy = Rc::new(healthy.clone());
        (0..n)
            .map(|i| {
                let t = i as i64 * self.step;
                match after {
                    Some(a) if t >= until => a.clone(),
                    _ => Frame {
                        levels: Rc::clone(&healthy),
                        traffic: true,
                        reporting: true,
                    },
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Duration;
    use crate::prom::{self, Bucket, Query};
    use crate::render::promtool_tests::generator::SEM;

    #[test]
    fn buckets_place_each_level() {
        let b = bucket_bounds(0.95, 1000.0, &[1500.0, 10000.0]).unwrap();
        let p = |counts: [f64; 3]| {
            let mut bs = [
                Bucket::new(b[0].1, counts[0]),
                Bucket::new(b[1].1, counts[1]),
                Bucket::new(f64::INFINITY, counts[2]),
            ];
            prom::histogram_quantile(0.95, &mut bs, SEM) * 1000.0
        };
        assert!((p([10.0, 10.0, 10.0]) - 1500.0).abs() < 1e-9);
        assert!((p([0.0, 10.0, 10.0]) - 10000.0).abs() < 1e-9);
        assert!(bucket_bounds(0.95, 1000.0, &[1000.0, 1010.0]).is_none());
    }

    #[test]
    fn error_ratio_of_steady_counters() {
        let sel = Selector::service("http_requests_total", "api");
        let e = MetricExpr::RateRatio {
            num: sel.clone().with("code", MatchOp::Re, "5.."),
            den: sel.clone(),
            window: Duration::parse("5m").unwrap(),
        };
        let mk = |code: &str, inc: f64| {
            let mut l = eq_labels(&sel, Track::Canary);
            l.insert("code".into(), code.into());
            let vals = (0..20).map(|i| Some(i as f64 * inc)).collect();
            new_series("http_requests_total", l, vals, 60_000)
        };
        let series = vec![mk("200", 90.0), mk("500", 10.0)];
        let at = |track: Track, ts: i64| Query::raw(&e, track, &series).level(&series, ts, SEM);
        let v = at(Track::Canary, 15 * 60_000).unwrap();
        assert!((v - 0.1).abs() < 1e-12);
        assert_eq!(at(Track::Stable, 15 * 60_000), None);
        // One sample only at t=0: rate has no result.
        assert_eq!(at(Track::Canary, 0), None);
    }
}
