//! The proof against Prometheus itself, for custom queries (issue 16): a plan whose custom
//! metrics are PromQL of its own, replayed from raw series by the project's PromQL engine
//! (`prom::engine`), must fire exactly when promtool 2.42 fires the rules `plan render`
//! wrote for it.
//!
//! The plan ([`PLAN`], written to a temporary folder and checked by `plan validate`) has
//! 32 custom metrics, one or two constructs worth proving each: a ratio of two counter
//! sums, the same ratio guarded by `and on()` or turned into a `> bool`, `rate ... or
//! vector(0)` over a counter that appears mid-way, `... unless on() ...`, `increase`,
//! `irate`, `idelta` under `sum without`, `resets`, `changes`, `abs(delta)`, `delta` over
//! `increase`, every `*_over_time` function (`absent_over_time` and `present_over_time`
//! too), `absent`, `scalar`, `time()`, an `offset` inside a `clamp_min`-ed
//! denominator, `clamp`, `clamp_max`, `%`, `^`, one-to-one matching of two pairs
//! under `max`, `on(instance) group_left()`, `+ on()`, `topk`, `bottomk`, `min`, `avg`,
//! `count` of a filtering comparison, `quantile`, and `histogram_quantile` over `sum by
//! (le)` and `sum without (service)`. Rollback conditions on each (bad high and low; `for`
//! of 0s, 30s and 1m to 5m; one relative to stable), two gates, and the no-data rule every
//! metric gets: 67 rules. Every query gives one series per track, as `plan validate`
//! requires (a selector is aggregated, `by` labels its selectors pin); several keep labels
//! of their own (`max by (instance)`, `sum by (service, track)`), which make their alerts
//! other alerts when they change (`prom::Query::own_labels`).
//!
//! Method (as in `proof`): random raw traces are replayed by the simulator
//! (`replay::firing_per_rule`, `Semantics::Prometheus2`) and, as one `promtool test rules`
//! group per trace expecting no alert, by promtool over the first phase's rules file, whose
//! failure report is every rule's firing timeline; both must agree on every rule at every
//! evaluation. A Prometheus 3 replay is the control: it must differ somewhere, or the
//! traces could not tell the versions apart.
//!
//! Traces: three scrape targets per trace (instances `a` and `b`, and a third for the
//! histogram, the config gauge and the timeouts counter), each with its own scrape interval
//! (10s to 1m) and phase, aligned with the evaluations or not; counters starting at zero or
//! mid-way, with resets, failed scrapes, staleness markers and targets gone for minutes; a
//! counter created mid-trace; NaN in gauges and counters, ±Inf in gauges; levels drawn at
//! and around each threshold, in regimes of 30s to 15m so that rules flip around their
//! `for`. Sums add at most two series (Prometheus does not fix the order of a sum; see
//! `prom::query`).

use crate::proof_support::{
    Comparison, Rng, TraceSpec, Val, compare, counter, differing, holes, lbl, plain,
    promtool_group, promtool_timelines, segments, write_trace, yaml_single,
};
use crate::support;
use plan::prom::Semantics;
use plan::sim::replay;
use plan::sim::splitmix::SplitMix64;
use std::collections::BTreeMap;
use std::path::Path;

/// The plan under proof: every custom metric is read by at least one rollback rule.
const PLAN: &str = r##"name: custom
release:
  from: v1.0.0
  to: v1.1.0
service:
  name: backend
  image: example/backend
  port: 8080
routing:
  listen: 80
  sticky:
    cookie: sid
monitoring:
  evaluation_interval: 30s
  window: 5m
  silent_canary: "off"
  runbook_url: https://wiki.example.com/releases/custom/RUNBOOK.md
notifications:
  slack:
    channel: "#releases"
    api_url_file: /etc/secrets/slack
phases:
  - name: canary
    traffic: 10%
    duration: 24h
  - name: full
    traffic: 100%
metrics:
  error_ratio:
    description: errors over requests, each a sum of two instances' counters
    query: >-
      sum(rate(app_errors_total{service="$service",track="$track"}[$window]))
      / sum(rate(app_requests_total{service="$service",track="$track"}[$window]))
    unit: ratio
    bad: high
  guarded_ratio:
    description: the error ratio, only while there is traffic
    query: >-
      (sum(rate(app_errors_total{service="$service",track="$track"}[$window]))
      / sum(rate(app_requests_total{service="$service",track="$track"}[$window])))
      and on() (sum(rate(app_requests_total{service="$service",track="$track"}[$window])) > 0.5)
    unit: ratio
    bad: high
  error_increase:
    query: max by (instance) (increase(app_errors_total{service="$service",track="$track",instance="a"}[$window]))
    unit: count
    bad: high
  timeouts:
    query: sum(rate(app_timeouts_total{service="$service",track="$track"}[$window])) or vector(0)
    unit: per_second
    bad: high
  queue_avg:
    query: max by (instance) (avg_over_time(queue_depth{service="$service",track="$track",instance="a"}[$window]))
    unit: count
    bad: high
  queue_peak:
    query: max by (instance) (max_over_time(queue_depth{service="$service",track="$track",instance="b"}[2m]))
    unit: count
    bad: high
  queue_top:
    query: sum by (track) (topk(1, queue_depth{service="$service",track="$track"}))
    unit: count
    bad: high
  job_p90:
    query: >-
      histogram_quantile(0.9, sum by (le)
      (rate(job_duration_seconds_bucket{service="$service",track="$track"}[$window])))
    unit: seconds
    bad: high
  traffic_vs_before:
    description: requests now against ten minutes before
    query: >-
      sum(rate(app_requests_total{service="$service",track="$track"}[$window]))
      / clamp_min(sum(rate(app_requests_total{service="$service",track="$track"}[$window] offset 10m)), 0.1)
    unit: ratio
    bad: low
  instant_rate:
    query: max by (instance) (irate(app_requests_total{service="$service",track="$track",instance="a"}[$window]))
    unit: per_second
    bad: low
  config_changes:
    query: max by (service, track) (changes(config_version{service="$service",track="$track"}[$window]))
    unit: count
    bad: high
  restarts:
    query: max by (instance) (resets(app_requests_total{service="$service",track="$track",instance="b"}[$window]))
    unit: count
    bad: high
  ready_min:
    query: min(worker_ready{service="$service",track="$track"})
    unit: count
    bad: low
  ready_count:
    query: count(worker_ready{service="$service",track="$track"} == 1)
    unit: count
    bad: low
  error_flag:
    query: >-
      sum(rate(app_errors_total{service="$service",track="$track"}[$window]))
      / sum(rate(app_requests_total{service="$service",track="$track"}[$window])) > bool 0.02
    unit: count
    bad: high
  instance_ratio_max:
    description: the worst instance's error ratio (one-to-one matching of two pairs)
    query: >-
      max(rate(app_errors_total{service="$service",track="$track"}[$window])
      / rate(app_requests_total{service="$service",track="$track"}[$window]))
    unit: ratio
    bad: high
  queue_mean:
    query: avg(queue_depth{service="$service",track="$track"})
    unit: count
    bad: high
  queue_spread:
    query: max by (instance) (stddev_over_time(queue_depth{service="$service",track="$track",instance="a"}[$window]))
    unit: count
    bad: high
  queue_p90:
    query: max by (instance) (quantile_over_time(0.9, queue_depth{service="$service",track="$track",instance="b"}[$window]))
    unit: count
    bad: high
  queue_delta:
    query: abs(max by (instance) (delta(queue_depth{service="$service",track="$track",instance="a"}[2m])))
    unit: count
    bad: high
  worker_b_gone:
    query: absent(worker_ready{service="$service",track="$track",instance="b"})
    unit: count
    bad: high
  error_share:
    description: errors over a scalar of requests
    query: >-
      sum(rate(app_errors_total{service="$service",track="$track"}[$window]))
      / scalar(sum(rate(app_requests_total{service="$service",track="$track"}[$window])))
    unit: ratio
    bad: high
  unless_timeouts:
    description: errors per second, unless timeouts explain them
    query: >-
      sum(rate(app_errors_total{service="$service",track="$track"}[$window]))
      unless on() (sum(rate(app_timeouts_total{service="$service",track="$track"}[$window])) > 0.2)
    unit: per_second
    bad: high
  queue_per_ready:
    description: the longest queue per ready worker (one-to-one on instance, group_left)
    query: >-
      max(queue_depth{service="$service",track="$track"}
      / on(instance) group_left() worker_ready{service="$service",track="$track"})
    unit: count
    bad: high
  queue_low_end:
    query: >-
      sum(bottomk(1, queue_depth{service="$service",track="$track"}))
      + on() quantile(0.25, queue_depth{service="$service",track="$track"})
    unit: count
    bad: high
  scrapes_and_ready:
    query: >-
      max by (instance) (count_over_time(queue_depth{service="$service",track="$track",instance="a"}[$window]))
      + max by (instance) (sum_over_time(worker_ready{service="$service",track="$track",instance="a"}[$window]))
    unit: count
    bad: low
  version_mix:
    query: >-
      (max(last_over_time(config_version{service="$service",track="$track"}[$window])) % 3) * 10
      + on() clamp_max(max(min_over_time(queue_depth{service="$service",track="$track",instance="b"}[$window])) ^ 0.5, 8)
    unit: count
    bad: high
  queue_variance:
    query: clamp(max by (instance) (stdvar_over_time(queue_depth{service="$service",track="$track",instance="b"}[$window])), 1, 900)
    unit: count
    bad: high
  timeouts_seen:
    description: 1 when the timeouts counter had no sample for 2m, else 0 (NaN if its last is)
    query: >-
      absent_over_time(app_timeouts_total{service="$service",track="$track"}[2m])
      or max by (service, track) (present_over_time(app_timeouts_total{service="$service",track="$track"}[$window])
      * last_over_time(app_timeouts_total{service="$service",track="$track"}[$window])) * 0 * time()
    unit: count
    bad: high
  requests_last_step:
    query: sum by (service, track) (sum without (instance) (idelta(app_requests_total{service="$service",track="$track"}[$window])))
    unit: count
    bad: low
  counted_share:
    description: delta over increase of one counter (below 1 after a reset)
    query: >-
      max by (instance) (delta(app_requests_total{service="$service",track="$track",instance="a"}[$window]))
      / max by (instance) (increase(app_requests_total{service="$service",track="$track",instance="a"}[$window]))
    unit: ratio
    bad: low
  job_median:
    query: >-
      histogram_quantile(0.5, sum by (le) (sum without (service)
      (rate(job_duration_seconds_bucket{service="$service",track="$track"}[2m]))))
    unit: seconds
    bad: high
gates:
  error_ratio: "<= 2x stable or <= 1%"
  job_p90: "< 2s"
rollback_conditions:
  - metric: error_ratio
    threshold: 10%
    duration: 2m
  - id: error_ratio_vs_stable
    metric: error_ratio
    threshold: 2x stable and above 1%
    duration: 1m
  - metric: guarded_ratio
    threshold: 5%
    duration: 0s
  - metric: error_increase
    threshold: 30
    duration: 1m
  - metric: timeouts
    threshold: 0.2
    duration: 30s
  - metric: queue_avg
    threshold: 50
    duration: 3m
  - metric: queue_peak
    threshold: 80
    duration: 0s
  - metric: queue_top
    threshold: 60
    duration: 0s
  - metric: job_p90
    threshold: 4s
    duration: 3m
  - metric: traffic_vs_before
    threshold: 0.5
    duration: 2m
  - metric: instant_rate
    threshold: 1
    duration: 1m
  - metric: config_changes
    threshold: 1
    duration: 0s
  - metric: restarts
    threshold: 0
    duration: 0s
  - metric: ready_min
    threshold: 1
    duration: 1m
  - metric: ready_count
    threshold: 2
    duration: 0s
  - metric: error_flag
    threshold: 0.5
    duration: 5m
  - metric: instance_ratio_max
    threshold: 20%
    duration: 1m
  - metric: queue_mean
    threshold: 50
    duration: 1m
  - metric: queue_spread
    threshold: 10
    duration: 0s
  - metric: queue_p90
    threshold: 60
    duration: 0s
  - metric: queue_delta
    threshold: 20
    duration: 0s
  - metric: worker_b_gone
    threshold: 0.5
    duration: 1m
  - metric: error_share
    threshold: 10%
    duration: 30s
  - metric: unless_timeouts
    threshold: 0.05
    duration: 30s
  - metric: queue_per_ready
    threshold: 60
    duration: 0s
  - metric: queue_low_end
    threshold: 100
    duration: 1m
  - metric: scrapes_and_ready
    threshold: 20
    duration: 0s
  - metric: version_mix
    threshold: 12
    duration: 0s
  - metric: queue_variance
    threshold: 100
    duration: 0s
  - metric: timeouts_seen
    threshold: 0.5
    duration: 1m
  - metric: requests_last_step
    threshold: 5
    duration: 0s
  - metric: counted_share
    threshold: 0.9
    duration: 0s
  - metric: job_median
    threshold: 2
    duration: 2m
"##;

/// What the rules file must hold for the proof to cover what the module doc says.
const CONSTRUCTS: [&str; 36] = [
    "sum(rate(app_errors_total",
    ") and on() (sum(rate(",
    "increase(app_errors_total",
    ") or vector(0)",
    "avg_over_time(queue_depth",
    "max_over_time(queue_depth",
    "topk(1, queue_depth",
    "histogram_quantile(0.9, sum by (le) (rate(job_duration_seconds_bucket",
    "[5m] offset 10m",
    "clamp_min(",
    "irate(app_requests_total",
    "changes(config_version",
    "resets(app_requests_total",
    "min(worker_ready",
    "count(worker_ready",
    "> bool 0.02",
    "[5m]) / rate(app_requests_total",
    "avg(queue_depth",
    "stddev_over_time(",
    "quantile_over_time(0.9, ",
    "abs(max by (instance) (delta(",
    "absent(worker_ready",
    "/ scalar(sum(",
    ") unless on() (sum(rate(",
    "/ on(instance) group_left() worker_ready",
    "sum(bottomk(1, ",
    "+ on() quantile(0.25, ",
    "count_over_time(",
    "+ max by (instance) (sum_over_time(",
    "last_over_time(config_version",
    ") % 3) * 10",
    "[5m])) ^ 0.5, 8)",
    "clamp(max by (instance) (stdvar_over_time(",
    "absent_over_time(app_timeouts_total",
    "or max by (service, track) (present_over_time(",
    "sum without (instance) (idelta(",
];

/// `job_duration_seconds_bucket`'s bounds, and the jobs per scrape step falling in each
/// (not cumulative) for the regimes a trace switches between.
const LES: [&str; 6] = ["0.5", "1", "2", "4", "8", "+Inf"];
const SPREADS: [[f64; 6]; 6] = [
    [50.0, 30.0, 15.0, 4.0, 1.0, 0.0],    // p90 ≈ 1.67s
    [40.0, 30.0, 20.0, 5.0, 5.0, 0.0],    // p90 = 2s: the gate's bound
    [20.0, 20.0, 20.0, 30.0, 10.0, 0.0],  // p90 = 4s: the rollback's bound
    [10.0, 10.0, 20.0, 20.0, 30.0, 10.0], // p90 = 8s
    [0.0, 0.0, 0.0, 0.0, 50.0, 50.0],     // in the +Inf bucket: the last finite bound
    [0.0; 6],                             // no jobs: NaN
];

/// A scrape target: when it is scraped (every `every` base steps from `phase`) and what
/// each scrape gave (a sample, nothing, or a staleness marker).
struct Target {
    /// Per base step: `None` (not scraped, or the scrape failed), `Some(Val::Stale)`, or
    /// `Some(Val::Num(_))` (a sample: the series' own value goes there).
    mask: Vec<Option<Val>>,
}

impl Target {
    #[allow(clippy::too_many_arguments)]
    fn new(
        rng: &mut Rng,
        n: usize,
        base_s: i64,
        first: bool,
        aligned: bool,
        p_gap: f64,
        p_stale: f64,
        p_long: f64,
    ) -> Target {
        let choices: Vec<i64> = [10, 15, 20, 30, 45, 60]
            .into_iter()
            .filter(|s| s % base_s == 0 && (!aligned || 60 % s == 0))
            .collect();
        let every = (rng.pick(&choices) / base_s) as usize;
        // The first target scrapes at t=0, where the trace starts.
        let phase = if first || aligned {
            0
        } else {
            rng.below(every as u64) as usize
        };
        let scrapes: Vec<usize> = (phase..n).step_by(every).collect();
        let mut dense = vec![Some(Val::Num(0.0)); scrapes.len()];
        holes(rng, &mut dense, p_gap, p_stale, p_long);
        let mut mask = vec![None; n];
        for (i, m) in scrapes.into_iter().zip(dense) {
            mask[i] = m;
        }
        Target { mask }
    }

    /// The target is gone over base steps `from..to` (crashed, or scaled away): its first
    /// scrape there is a staleness marker when Prometheus saw it go (`marked`), then
    /// nothing.
    fn down(&mut self, from: usize, to: usize, marked: bool) {
        let mut first = marked;
        for m in self.mask.iter_mut().take(to).skip(from) {
            if m.is_some() && first {
                *m = Some(Val::Stale);
                first = false;
            } else {
                *m = None;
            }
        }
    }

    /// A series of this target whose true value at each base step is `truth`.
    fn sample(&self, truth: &[f64]) -> Vec<Option<Val>> {
        self.mask
            .iter()
            .zip(truth)
            .map(|(m, &v)| match m {
                Some(Val::Num(_)) => Some(Val::Num(v)),
                other => *other,
            })
            .collect()
    }
}

fn labels(track: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut l = lbl(&[("service", "backend"), ("track", track)]);
    l.extend(lbl(extra));
    l
}

/// A value per base step, constant over regimes drawn by `draw`.
fn regimes<T: Copy>(
    rng: &mut Rng,
    n: usize,
    unit: usize,
    mut draw: impl FnMut(&mut Rng) -> T,
) -> Vec<T> {
    let mut out = Vec::with_capacity(n);
    for len in segments(rng, n, unit) {
        let v = draw(rng);
        out.extend(std::iter::repeat_n(v, len));
    }
    out
}

/// A counter's true value per base step (increments `incs`, resets).
fn cumulative(rng: &mut Rng, incs: &[f64], start: f64, p_reset: f64) -> Vec<f64> {
    counter(rng, incs, start, p_reset)
        .into_iter()
        .map(|v| match v {
            Some(Val::Num(x)) => x,
            _ => unreachable!("counter() gives numbers"),
        })
        .collect()
}

fn custom_trace(rng: &mut Rng, k: usize) -> TraceSpec {
    let base_s = rng.pick(&[5i64, 10, 15]);
    let per_min = (60 / base_s) as usize;
    let minutes = 30 + rng.below(20) as usize;
    let n = minutes * per_min + 1;
    // Regimes last whole minutes, or half minutes (around the 30s `for`).
    let unit = if k % 2 == 1 { per_min / 2 } else { per_min }.max(1);
    let aligned = k.is_multiple_of(3);
    let (p_gap, p_stale, p_long) = match k % 4 {
        0 => (0.0, 0.0, 0.0),
        1 => (0.05, 0.0, 0.0),
        2 => (0.03, 0.02, 0.0),
        _ => (0.02, 0.01, 0.02),
    };
    // About one reset per instance and counter in two traces out of three.
    let p_reset = if k.is_multiple_of(3) {
        0.0
    } else {
        0.0006 * base_s as f64
    };
    let target = |rng: &mut Rng, first: bool| {
        Target::new(rng, n, base_s, first, aligned, p_gap, p_stale, p_long)
    };
    let mut targets = [target(rng, true), target(rng, false), target(rng, false)];
    // Outages of 6 to 12 minutes, longer than the lookback and the windows: of one target,
    // or of all of them (the canary is gone).
    if k % 4 == 3 || k % 7 == 2 {
        let len = (6 + rng.below(7) as usize) * per_min;
        let from = 1 + rng.below((n - len) as u64) as usize;
        let marked = rng.chance(0.5);
        if rng.chance(0.5) {
            for t in &mut targets {
                t.down(from, from + len, marked);
            }
        } else {
            let i = rng.below(3) as usize;
            targets[i].down(from, from + len, marked);
        }
    }
    // NaN samples in counters now and then.
    let nan_counters = k % 6 == 5;
    let spoil = |rng: &mut Rng, v: &mut [f64]| {
        if nan_counters {
            for x in v.iter_mut() {
                if rng.chance(0.01) {
                    *x = f64::NAN;
                }
            }
        }
    };
    let step = base_s as f64;
    let mut series = Vec::new();

    // Requests and errors per instance and track.
    for track in ["canary", "stable"] {
        for (inst, t) in [("a", &targets[0]), ("b", &targets[1])] {
            let load = regimes(rng, n, unit, |rng| {
                let rate = rng.pick(&[0.0, 0.2, 0.5, 0.8, 1.0, 1.0, 2.0, 5.0]);
                let share = if track == "canary" {
                    rng.pick(&[0.0, 0.01, 0.02, 0.05, 0.1, 0.1, 0.2, 0.5])
                } else {
                    rng.pick(&[0.0, 0.01, 0.02, 0.05])
                };
                (rate * step, rate * step * share)
            });
            let start = |rng: &mut Rng| {
                if rng.chance(0.5) {
                    0.0
                } else {
                    rng.below(5000) as f64
                }
            };
            let (s1, s2) = (start(rng), start(rng));
            let reqs: Vec<f64> = load.iter().map(|l| l.0).collect();
            let errs: Vec<f64> = load.iter().map(|l| l.1).collect();
            let mut reqs = cumulative(rng, &reqs, s1, p_reset);
            let mut errs = cumulative(rng, &errs, s2.min(s1), p_reset);
            spoil(rng, &mut reqs);
            spoil(rng, &mut errs);
            let l = labels(track, &[("instance", inst)]);
            series.push(plain("app_requests_total", l.clone(), t.sample(&reqs)));
            series.push(plain("app_errors_total", l, t.sample(&errs)));
        }
    }

    // Gauges of the canary's instances: queue depth, worker readiness. Instance b's are
    // missing altogether in some traces.
    let drop_b = rng.chance(0.15);
    for (inst, t) in [("a", &targets[0]), ("b", &targets[1])] {
        if inst == "b" && drop_b {
            continue;
        }
        let nan = k % 4 == 2;
        let mut queue = regimes(rng, n, unit, |rng| {
            if nan && rng.chance(0.05) {
                f64::NAN
            } else {
                rng.pick(&[
                    0.0, 20.0, 49.0, 50.0, 50.0, 51.0, 60.0, 61.0, 80.0, 81.0, 100.0,
                ])
            }
        });
        if nan {
            // Odd samples: NaN and infinities inside the `*_over_time` windows.
            for x in queue.iter_mut() {
                if rng.chance(0.02) {
                    *x = rng.pick(&[f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
                }
            }
        }
        let ready = regimes(rng, n, unit, |rng| {
            if nan && rng.chance(0.1) {
                f64::NAN
            } else {
                rng.pick(&[1.0, 1.0, 1.0, 0.0])
            }
        });
        let l = labels("canary", &[("instance", inst)]);
        series.push(plain("queue_depth", l.clone(), t.sample(&queue)));
        series.push(plain("worker_ready", l, t.sample(&ready)));
    }

    // The third target: job duration histogram, config version, timeouts.
    let t = &targets[2];
    let jobs = regimes(rng, n, unit, |rng| {
        (
            rng.below(SPREADS.len() as u64) as usize,
            rng.pick(&[0.2, 1.0]),
        )
    });
    let restarts: Vec<usize> = (1..n)
        .filter(|_| p_reset > 0.0 && rng.chance(p_reset))
        .collect();
    for (b, le) in LES.iter().enumerate() {
        let mut c = 0.0;
        let truth: Vec<f64> = jobs
            .iter()
            .enumerate()
            .map(|(i, &(spread, scale))| {
                if restarts.contains(&i) {
                    c = 0.0;
                }
                if i > 0 {
                    c += SPREADS[spread][..=b].iter().sum::<f64>() * scale;
                }
                c
            })
            .collect();
        let mut values = t.sample(&truth);
        if k % 4 == 1 {
            // A bucket missing from a scrape now and then.
            holes(rng, &mut values, 0.02, 0.0, 0.0);
        }
        series.push(plain(
            "job_duration_seconds_bucket",
            labels("canary", &[("le", le)]),
            values,
        ));
    }
    let churn = regimes(rng, n, unit, |rng| rng.pick(&[0.0, 0.0, 0.05, 0.3]));
    let mut version = 1.0;
    let config: Vec<f64> = churn
        .iter()
        .map(|&p| {
            if rng.chance(p) {
                version += 1.0;
            }
            if k % 4 == 3 && rng.chance(0.01) {
                f64::NAN
            } else {
                version
            }
        })
        .collect();
    series.push(plain(
        "config_version",
        labels("canary", &[]),
        t.sample(&config),
    ));
    // Timeouts: a counter created at some point (from zero or not), sometimes never.
    if !k.is_multiple_of(5) {
        let born = if rng.chance(0.3) {
            0
        } else {
            rng.below(n as u64 / 2) as usize
        };
        let rate = regimes(rng, n, unit, |rng| {
            rng.pick(&[0.0, 0.1, 0.2, 0.2, 0.25, 1.0]) * step
        });
        let start = if rng.chance(0.5) { 0.0 } else { 17.0 };
        let mut truth = cumulative(rng, &rate, start, p_reset);
        spoil(rng, &mut truth);
        if nan_counters {
            // An exporter reporting NaN for 6 to 8 minutes: the no-data rule's case.
            let len = (6 + rng.below(3) as usize) * per_min;
            let from = rng.below((n - len) as u64) as usize;
            truth[from..from + len].fill(f64::NAN);
        }
        let mut values = t.sample(&truth);
        for v in values.iter_mut().take(born) {
            *v = None;
        }
        series.push(plain("app_timeouts_total", labels("canary", &[]), values));
    }

    // Decoys no query reads: the stable track's gauges and buckets, another service.
    series.push(plain(
        "queue_depth",
        labels("stable", &[("instance", "a")]),
        targets[0].sample(&vec![1000.0; n]),
    ));
    series.push(plain(
        "job_duration_seconds_bucket",
        labels("stable", &[("le", "+Inf")]),
        targets[2].sample(&(0..n).map(|i| i as f64 * 1000.0).collect::<Vec<_>>()),
    ));
    series.push(plain(
        "app_errors_total",
        lbl(&[("instance", "a"), ("service", "other"), ("track", "canary")]),
        targets[0].sample(&(0..n).map(|i| i as f64 * 50.0).collect::<Vec<_>>()),
    ));
    TraceSpec {
        step_ms: base_s * 1000,
        n,
        series,
        raw: true,
    }
}

/// Writes [`PLAN`] into `dir`, checks it with `plan validate`, renders it; returns the
/// plan file and the first phase's rules file.
fn plan_files(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let plan_file = support::write(dir, "custom.yaml", PLAN);
    let v = support::plan().arg("validate").arg(&plan_file).expect(0);
    // Some ranges are literal on purpose (windows other than `monitoring.window`): the
    // only findings are those warnings.
    let findings: Vec<&str> = v
        .stderr
        .lines()
        .filter(|l| l.contains("error[") || l.contains("warning["))
        .collect();
    assert!(
        !findings.is_empty()
            && findings
                .iter()
                .all(|l| l.contains("warning[query-literal-window]")),
        "plan validate accepts the plan, warning only about its literal ranges:\n{}",
        v.stderr
    );
    let out = dir.join("out");
    support::plan()
        .arg("render")
        .arg(&plan_file)
        .arg("--out")
        .arg(&out)
        .expect(0);
    let rules_file = out.join("custom/prometheus/canary.rules.yml");
    let text = std::fs::read_to_string(&rules_file).expect("the first phase's rules file");
    // The rules file escapes the queries' quotes: look for the constructs without them.
    let text = text.replace("\\\"", "\"");
    for c in CONSTRUCTS {
        assert!(text.contains(c), "the rules file has `{c}`");
    }
    (plan_file, rules_file)
}

#[test]
fn custom_queries_fire_exactly_when_promtool_does() {
    let Some(promtool) = support::tool("promtool") else {
        return;
    };
    let started = std::time::Instant::now();
    let dir = support::temp_dir("proof-custom");
    let (plan_file, rules_file) = plan_files(&dir);
    let lowered = plan::pipeline::compile_file(&plan_file)
        .expect("plan file")
        .plan
        .expect("the plan compiles");
    let (plan, rules) = (&lowered.plan, &lowered.rules);
    let alerts: Vec<String> = rules.iter().map(|r| r.alert.clone()).collect();
    let ei = plan.monitoring.evaluation_interval.millis() as i64;
    assert_eq!(ei, 30_000);

    let mut rng = Rng(SplitMix64::new(0xC057_0316));
    let traces = 48;
    let mut test_yaml = format!(
        "rule_files:\n- {}\nevaluation_interval: {}s\ntests:\n",
        yaml_single(&rules_file.display().to_string()),
        ei / 1000
    );
    let mut expected: BTreeMap<(usize, usize), Vec<i64>> = BTreeMap::new();
    let mut control: BTreeMap<(usize, usize), Vec<i64>> = BTreeMap::new();
    let mut evaluations = 0;
    for k in 0..traces {
        let spec = custom_trace(&mut rng, k);
        let end = (spec.n as i64 - 1) * spec.step_ms;
        let until = end / ei * ei;
        evaluations += (until / ei + 1) as usize;
        let (file, _) = write_trace(&dir, k, &spec);
        let (mut tr, _) = replay::load(&file).unwrap_or_else(|e| panic!("trace {k} loads: {e:?}"));
        let span = replay::align(&mut tr, &replay::Options::default()).expect("aligned");
        assert_eq!(span.zero, 0, "trace {k} starts at t=0");
        for (sem, into) in [
            (Semantics::Prometheus2, &mut expected),
            (Semantics::Prometheus3, &mut control),
        ] {
            let firing = replay::firing_per_rule(plan, rules, &tr, sem, until)
                .unwrap_or_else(|e| panic!("trace {k} replays ({sem:?}): {e:?}"));
            for (ri, f) in firing.into_iter().enumerate() {
                into.insert((k, ri), f);
            }
        }
        test_yaml.push_str(&promtool_group(
            &format!("trace-{k}"),
            &spec,
            &alerts,
            until,
            ei,
        ));
    }
    let test_file = dir.join("proof-custom.test.yml");
    std::fs::write(&test_file, &test_yaml).expect("write test file");
    let promtool_started = std::time::Instant::now();
    let got = promtool_timelines(&promtool, &test_file, &alerts);
    let promtool_secs = promtool_started.elapsed().as_secs_f64();

    let Comparison {
        mismatches,
        fired_rules,
        firing_evals,
    } = compare(&expected, &got, &alerts);
    eprintln!(
        "proof_custom: {traces} traces, {} rules, {evaluations} evaluations of each ({} rule evaluations), {firing_evals} firing evaluations compared, {} rules fired at least once, {} mismatches; promtool {promtool_secs:.1}s, whole test {:.1}s",
        alerts.len(),
        evaluations * alerts.len(),
        fired_rules.len(),
        mismatches.len(),
        started.elapsed().as_secs_f64()
    );
    let p3_differs = differing(&control, &got);
    eprintln!(
        "proof_custom: control: with Prometheus 3 semantics {p3_differs} (trace, rule) timelines differ from promtool 2.42"
    );
    assert!(
        mismatches.is_empty(),
        "simulator and promtool disagree:\n{}",
        mismatches.join("\n")
    );
    assert!(
        p3_differs > 0,
        "the proof cannot tell Prometheus 2.42 from 3.x semantics"
    );
    // Every rule must fire somewhere, or its comparison proves little.
    let never: Vec<&str> = (0..alerts.len())
        .filter(|ri| !fired_rules.contains(ri))
        .map(|ri| alerts[ri].as_str())
        .collect();
    assert!(never.is_empty(), "rules that never fired: {never:?}");
}
