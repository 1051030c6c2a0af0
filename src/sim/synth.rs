//! Synthetic traffic for Monte Carlo trials, scraped and evaluated with Prometheus'
//! semantics.
//!
//! The service is modelled as one instance per track. Requests arrive as a Poisson process
//! whose rate follows a daily cycle (optionally Gamma-overdispersed per evaluation
//! interval); the canary receives the phase's share plus its targeted groups' share; errors
//! are binomial; latencies come from a lognormal body with a heavy tail and are recorded
//! into the histogram buckets; gauges are normal around their level. Counters start at 0 at
//! the start of the release (the service pre-initialises its series).
//!
//! Speed without approximation: `rate()` only reads the first and last sample of each
//! window (there are no counter resets in synthetic data), so counts are drawn only for the
//! spans between the scrapes that some window starts or ends on; the number of samples in
//! a window, which the extrapolation needs, follows from the scrape grid. The values are
//! then exactly what Prometheus computes from the full scrape series.

use crate::check::{Builtin, CheckedPlan};
use crate::promql::{MetricExpr, Track};
use crate::sim::prom::{self, Bucket, Sample, Semantics};
use crate::sim::scenario::{Behaviour, Fault, Scenarios};
use rand::RngExt;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Binomial, Distribution, Gamma, Normal, Poisson};
use statrs::function::erf::erfc;

/// How one plan metric is produced in a synthetic trial.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Source {
    ErrorRate,
    Availability,
    Throughput,
    Latency { q: f64, scale: f64 },
    Cpu,
    Memory,
    DbConnections,
    Redis,
    /// A custom metric with a stated healthy level.
    Custom { mean: f64, noise: f64 },
    /// Not simulated: always absent.
    Absent,
}

/// What every trial of one run shares: the grid, the shares per phase, the metric sources.
pub struct Model<'a> {
    pub semantics: Semantics,
    pub scrape_ms: i64,
    pub eval_ms: i64,
    pub window_ms: i64,
    /// Scrape indices whose samples some window reads, as residues modulo `period`
    /// (None: every scrape is read).
    needed: Option<(i64, [i64; 2])>,
    pub sources: Vec<Source>,
    /// Tracks each metric is needed for.
    pub stable_needed: Vec<bool>,
    /// The canary's share of requests in each phase.
    pub canary_share: Vec<f64>,
    pub phase_starts: Vec<i64>,
    pub scenarios: &'a Scenarios,
    pub latency_needed: bool,
    pub requests_needed: bool,
}

impl<'a> Model<'a> {
    pub fn new(plan: &CheckedPlan, scenarios: &'a Scenarios, stable_needed: Vec<bool>, semantics: Semantics) -> Model<'a> {
        let scrape_ms = plan.monitoring.scrape_interval.millis() as i64;
        let eval_ms = plan.monitoring.evaluation_interval.millis() as i64;
        let window_ms = plan.monitoring.window.millis() as i64;
        let needed = (eval_ms % scrape_ms == 0 && window_ms % scrape_ms == 0).then(|| {
            let period = eval_ms / scrape_ms;
            let w = window_ms / scrape_ms;
            // Window (ts-w, ts] in Prometheus 3 starts at the scrape after ts-w; [ts-w, ts]
            // in 2.42 at ts-w itself.
            let first = match semantics {
                Semantics::Prometheus3 => (1 - w).rem_euclid(period),
                Semantics::Prometheus2 => (-w).rem_euclid(period),
            };
            (period, [0, first])
        });
        let sources: Vec<Source> = plan
            .metrics
            .iter()
            .map(|m| match (m.builtin, &m.expr) {
                (Some(Builtin::ErrorRate), _) => Source::ErrorRate,
                (Some(Builtin::Availability), _) => Source::Availability,
                (Some(Builtin::Throughput), _) => Source::Throughput,
                (Some(Builtin::ResponseTimeP95), MetricExpr::Quantile { q, scale, .. }) => Source::Latency { q: *q, scale: *scale },
                (Some(Builtin::CpuUsage), _) => Source::Cpu,
                (Some(Builtin::MemoryUsage), _) => Source::Memory,
                (Some(Builtin::DbConnections), _) => Source::DbConnections,
                (Some(Builtin::RedisMemoryUsage), _) => Source::Redis,
                _ => scenarios.baseline.custom.get(&m.name).map_or(Source::Absent, |g| Source::Custom { mean: g.mean, noise: g.noise }),
            })
            .collect();
        let group_share = |gi: &usize| plan.groups[*gi].share.map_or(0.0, |s| s.fraction());
        let canary_share = plan
            .phases
            .iter()
            .map(|p| {
                let split = p.traffic.fraction();
                let targeted: f64 = p.groups.iter().map(group_share).sum::<f64>().min(1.0);
                (split + (1.0 - split) * targeted).min(1.0)
            })
            .collect();
        let mut t = 0;
        let phase_starts = plan
            .phases
            .iter()
            .map(|p| {
                let s = t;
                t += p.duration.map_or(0, |d| d.millis() as i64);
                s
            })
            .collect();
        let latency_needed = sources.iter().any(|s| matches!(s, Source::Latency { .. }));
        let requests_needed = latency_needed || sources.iter().any(|s| matches!(s, Source::ErrorRate | Source::Availability | Source::Throughput));
        Model { semantics, scrape_ms, eval_ms, window_ms, needed, sources, stable_needed, canary_share, phase_starts, scenarios, latency_needed, requests_needed }
    }

    fn is_needed(&self, j: i64) -> bool {
        match self.needed {
            Some((period, [a, b])) => {
                let r = j.rem_euclid(period);
                r == a || r == b
            }
            None => true,
        }
    }

    pub fn phase_at(&self, t: i64) -> usize {
        self.phase_starts.partition_point(|&s| s <= t).saturating_sub(1)
    }

    /// The whole service's request rate at `t`, per second (daily cycle, peak at 15:00).
    fn total_rps(&self, t: i64) -> f64 {
        let tr = &self.scenarios.traffic;
        let hour = f64::from(tr.start_hour) + t as f64 / 3_600_000.0;
        let phase = (hour - 9.0) / 24.0 * std::f64::consts::TAU;
        tr.requests_per_second * (1.0 + tr.daily_amplitude * phase.sin())
    }
}

/// Counter values at one scrape.
#[derive(Debug, Clone)]
struct Point {
    j: i64,
    requests: u64,
    errors: u64,
    cpu_seconds: f64,
    /// Cumulative bucket counts, finite buckets then +Inf.
    buckets: Vec<u64>,
}

/// One track's synthetic counters.
struct TrackGen {
    track: Track,
    points: std::collections::VecDeque<Point>,
    cur: Point,
    /// Per-bucket probabilities cache, keyed by the parameters that produced it.
    probs_key: (u64, u64, u64),
    probs: Vec<f64>,
    gauges: [f64; 4],
}

/// What a trial reports for its blast radius.
#[derive(Debug, Clone, Copy, Default)]
pub struct Exposure {
    /// Requests the canary served while the fault was active (after onset).
    pub requests: u64,
    /// Of those, the ones that failed.
    pub failed: u64,
}

/// One trial's generator: produces each evaluation's metric values.
pub struct Trial<'m, 'a> {
    model: &'m Model<'a>,
    fault: Option<&'m Fault>,
    rng: Xoshiro256PlusPlus,
    tracks: Vec<TrackGen>,
    last_j: i64,
    /// The Gamma rate multiplier of the current evaluation interval.
    burst: f64,
    pub exposure: Exposure,
    values: Vec<(Option<f64>, Option<f64>)>,
    scratch: Vec<Bucket>,
}

fn lognormal_cdf(x: f64, median: f64, sigma: f64) -> f64 {
    0.5 * erfc(-(x.ln() - median.ln()) / (sigma * std::f64::consts::SQRT_2))
}

impl<'m, 'a> Trial<'m, 'a> {
    pub fn new(model: &'m Model<'a>, fault: Option<&'m Fault>, rng: Xoshiro256PlusPlus) -> Self {
        let k = model.scenarios.baseline.buckets.len() + 1;
        let zero = Point { j: 0, requests: 0, errors: 0, cpu_seconds: 0.0, buckets: vec![0; k] };
        let with_stable = model.stable_needed.iter().any(|&s| s);
        let mut tracks = vec![Track::Canary];
        if with_stable {
            tracks.push(Track::Stable);
        }
        let tracks = tracks
            .into_iter()
            .map(|track| TrackGen {
                track,
                points: std::collections::VecDeque::from([zero.clone()]),
                cur: zero.clone(),
                probs_key: (u64::MAX, 0, 0),
                probs: vec![0.0; k],
                gauges: [0.0; 4],
            })
            .collect();
        Trial {
            model,
            fault,
            rng,
            tracks,
            last_j: 0,
            burst: 1.0,
            exposure: Exposure::default(),
            values: vec![(None, None); model.sources.len()],
            scratch: Vec::with_capacity(k),
        }
    }

    /// The metric values at evaluation time `ts` (non-decreasing, multiples of the eval
    /// interval), per metric: (canary, stable).
    pub fn values_at(&mut self, ts: i64) -> &[(Option<f64>, Option<f64>)] {
        let m = self.model;
        if m.scenarios.traffic.overdispersion > 0.0 {
            let cv2 = m.scenarios.traffic.overdispersion.powi(2);
            self.burst = Gamma::new(1.0 / cv2, cv2).map_or(1.0, |g| g.sample(&mut self.rng));
        }
        let target = ts.div_euclid(m.scrape_ms);
        let mut j = self.last_j;
        for next in self.last_j + 1..=target {
            if m.is_needed(next) || next == target {
                self.generate(j, next);
                j = next;
            }
        }
        self.last_j = target;
        let first_j = match m.semantics {
            Semantics::Prometheus3 => (ts - m.window_ms).div_euclid(m.scrape_ms) + 1,
            Semantics::Prometheus2 => (ts - m.window_ms + m.scrape_ms - 1).div_euclid(m.scrape_ms),
        }
        .max(0);
        for ti in 0..self.tracks.len() {
            while self.tracks[ti].points.front().is_some_and(|p| p.j < first_j) {
                self.tracks[ti].points.pop_front();
            }
            let track = self.tracks[ti].track;
            for mi in 0..m.sources.len() {
                if track == Track::Stable && !m.stable_needed[mi] {
                    continue;
                }
                let v = self.value(ti, mi, ts, first_j, target);
                let slot = &mut self.values[mi];
                if track == Track::Canary { slot.0 = v } else { slot.1 = v }
            }
        }
        &self.values
    }

    fn value(&mut self, ti: usize, mi: usize, ts: i64, first_j: i64, last_j: i64) -> Option<f64> {
        let m = self.model;
        let tg = &self.tracks[ti];
        let (first, last) = (tg.points.front()?, tg.points.back()?);
        debug_assert_eq!(last.j, last_j);
        let intervals = (last.j - first.j) as usize;
        let rate = |f: f64, l: f64| -> Option<f64> {
            if intervals == 0 {
                return None;
            }
            prom::rate::extrapolate(
                Sample::new(first.j * m.scrape_ms, f),
                Sample::new(last.j * m.scrape_ms, l),
                intervals,
                l - f,
                ts - m.window_ms,
                ts,
                true,
                true,
                m.semantics,
            )
        };
        let _ = first_j;
        match m.sources[mi] {
            Source::ErrorRate => Some(rate(first.errors as f64, last.errors as f64)? / rate(first.requests as f64, last.requests as f64)?),
            Source::Availability => {
                let ok = |p: &Point| (p.requests - p.errors) as f64;
                Some(rate(ok(first), ok(last))? / rate(first.requests as f64, last.requests as f64)?)
            }
            Source::Throughput => rate(first.requests as f64, last.requests as f64),
            Source::Cpu => rate(first.cpu_seconds, last.cpu_seconds),
            Source::Latency { q, scale } => {
                let bounds = &m.scenarios.baseline.buckets;
                let mut scratch = std::mem::take(&mut self.scratch);
                scratch.clear();
                for (k, (&f, &l)) in first.buckets.iter().zip(&last.buckets).enumerate() {
                    let le = bounds.get(k).copied().unwrap_or(f64::INFINITY);
                    scratch.push(Bucket::new(le, rate(f as f64, l as f64)?));
                }
                let v = prom::histogram_quantile(q, &mut scratch, m.semantics) * scale;
                self.scratch = scratch;
                Some(v)
            }
            Source::Memory => Some(tg.gauges[0]),
            Source::DbConnections => Some(tg.gauges[1]),
            Source::Redis => Some(tg.gauges[2]),
            Source::Custom { mean, noise } => Some(mean + noise * self.rng.sample::<f64, _>(rand_distr::StandardNormal)),
            Source::Absent => None,
        }
    }

    /// Draws what happened between scrapes `from` and `to` and records the sample at `to`.
    fn generate(&mut self, from: i64, to: i64) {
        let m = self.model;
        let (t0, t1) = (from * m.scrape_ms, to * m.scrape_ms);
        let mid = (t0 + t1) / 2;
        let dt = (t1 - t0) as f64 / 1000.0;
        let phase = m.phase_at(mid);
        let total = m.total_rps(mid) * self.burst;
        let base = &m.scenarios.baseline;
        for ti in 0..self.tracks.len() {
            let track = self.tracks[ti].track;
            let share = if track == Track::Canary { m.canary_share[phase] } else { 1.0 - m.canary_share[phase] };
            let rps = total * share;
            let (intensity, affected) = match (track, self.fault) {
                (Track::Canary, Some(f)) => (f.intensity(mid, rps), f.affected()),
                _ => (0.0, 0.0),
            };
            let fault = if intensity > 0.0 { self.fault } else { None };
            let mut p = self.tracks[ti].cur.clone();
            p.j = to;
            if m.requests_needed && rps > 0.0 {
                let n = Poisson::new(rps * dt).map_or(0.0, |d| d.sample(&mut self.rng)) as u64;
                let err_p = match fault.and_then(|f| f.error_rate) {
                    Some(e) => (1.0 - affected) * base.error_rate + affected * (base.error_rate + intensity * (e - base.error_rate)),
                    None => base.error_rate,
                };
                let errors = binomial(&mut self.rng, n, err_p);
                p.requests += n;
                p.errors += errors;
                if track == Track::Canary && fault.is_some() {
                    self.exposure.requests += n;
                    self.exposure.failed += errors;
                }
                if m.latency_needed {
                    self.record_latency(ti, n, fault, intensity, affected, &mut p);
                }
            }
            // Gauges, read only at evaluation times; CPU is a counter of seconds.
            let lift = |g: Option<f64>, mean: f64| g.map_or(mean, |target| mean + intensity * affected * (target - mean));
            let cpu = lift(fault.and_then(|f| f.cpu_usage), base.cpu.mean);
            let noise = Normal::new(0.0, 1.0).map_or(0.0, |d| d.sample(&mut self.rng));
            p.cpu_seconds += (cpu + base.cpu.noise * noise).max(0.0) * dt;
            let tg = &mut self.tracks[ti];
            let z = |rng: &mut Xoshiro256PlusPlus| rng.sample::<f64, _>(rand_distr::StandardNormal);
            tg.gauges[0] = lift(fault.and_then(|f| f.memory_usage), base.memory.mean) + base.memory.noise * z(&mut self.rng);
            tg.gauges[1] = (base.db_connections.mean + base.db_connections.noise * z(&mut self.rng)).max(0.0).round();
            tg.gauges[2] = base.redis_memory.mean + base.redis_memory.noise * z(&mut self.rng);
            tg.cur = p.clone();
            tg.points.push_back(p);
        }
    }

    fn record_latency(&mut self, ti: usize, n: u64, fault: Option<&Fault>, intensity: f64, affected: f64, p: &mut Point) {
        let base: &Behaviour = &self.model.scenarios.baseline;
        let (lf, ts_share) = match fault {
            Some(f) => (
                1.0 + intensity * (f.latency_factor.unwrap_or(1.0) - 1.0),
                base.tail_share + intensity * (f.tail_share.unwrap_or(base.tail_share) - base.tail_share),
            ),
            None => (1.0, base.tail_share),
        };
        let affected = if fault.is_some() { affected } else { 0.0 };
        let key = (lf.to_bits(), ts_share.to_bits(), affected.to_bits());
        let tg = &mut self.tracks[ti];
        if tg.probs_key != key {
            tg.probs_key = key;
            let cdf = |x: f64, lf: f64, share: f64| {
                (1.0 - share) * lognormal_cdf(x, base.median * lf, base.sigma)
                    + share * lognormal_cdf(x, base.median * lf * base.tail_factor, base.sigma)
            };
            let mut prev = 0.0;
            for (k, &le) in base.buckets.iter().enumerate() {
                let c = (1.0 - affected) * cdf(le, 1.0, base.tail_share) + affected * cdf(le, lf, ts_share);
                tg.probs[k] = (c - prev).max(0.0);
                prev = c;
            }
            let last = tg.probs.len() - 1;
            tg.probs[last] = (1.0 - prev).max(0.0);
        }
        // Multinomial by conditional binomials; each bucket counter is cumulative (`le`),
        // so it grows by everything at or below its bound.
        let (mut left, mut mass, mut below) = (n, 1.0, 0u64);
        let kk = tg.probs.len();
        for k in 0..kk {
            let x = if k + 1 == kk || left == 0 {
                left
            } else {
                let pk = (tg.probs[k] / mass).clamp(0.0, 1.0);
                mass -= tg.probs[k];
                binomial(&mut self.rng, left, pk)
            };
            left -= x;
            below += x;
            p.buckets[k] += below;
        }
    }
}

#[inline]
fn binomial(rng: &mut Xoshiro256PlusPlus, n: u64, p: f64) -> u64 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    Binomial::new(n, p).map_or(0, |d| d.sample(rng))
}
