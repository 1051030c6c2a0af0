//! A fault's effects on the canary's recorded traffic, one scrape span at a time.
//!
//! The recording says how many requests a span holds, not when: they are taken as spread
//! evenly over it, so a fault whose intensity changes inside the span (an onset, a burst's
//! edge, a leak's step) touches each request with the span's mean intensity
//! ([`mean_intensity`]), the same law as drawing each request's time.
//!
//! - **Failures.** A fault's `error_rate` is the canary's error rate at full effect, as in
//!   the synthetic model: where the recording's failure share `p` (over all of it) is below
//!   it, each answered request of the affected users fails with probability
//!   `intensity · (error_rate - p) / (1 - p)`, so that a request fails with probability
//!   `p + intensity · (error_rate - p)` where the recording's failures are those of
//!   independent requests failing with `p`: the synthetic model's law.
//! - **Latency.** An affected request's latency is multiplied by `1 + intensity ·
//!   (latency_factor - 1)`, and a further share `intensity · tail_share` of them by the
//!   baseline's `tail_factor` too. Within its bucket interval a request's latency is
//!   taken as uniform, so the multiplied latency falls in each interval in proportion to
//!   the overlap ([`move_by`]); requests above the last finite bound stay there.
//! - **Gauge levels** ([`Levels`], [`shift_own`]). A gauge effect's level is the canary's
//!   level at full effect, as in the synthetic model, whose gauges are `mean + shift +
//!   noise`: on a recording the canary's own path through a gauge is moved, at each scrape
//!   `t`, by `intensity(t) · affected · (level - m)`, `m` the recording's mean of that
//!   series, and keeps its own fluctuations around it. The shift stops at 0 and, for a
//!   ratio, at 1 (a recorded value already past them is left there). `memory_usage` moves
//!   the built-in memory metric's used bytes by the shift times their limit at that scrape
//!   (so that used / limit moves by the shift), each instance's from its own mean ratio; a
//!   fault's `metrics` move a custom metric whose query reads one recorded gauge directly
//!   (the selector, or `sum`, `avg`, `min` or `max` of it); a `series` effect's `mean`
//!   every recorded gauge of its name.
//! - **CPU** is a counter of busy seconds per instance: `cpu_usage` adds `intensity ·
//!   affected · (level - m) · seconds` to each of the canary's span increases, `m` the
//!   recording's mean busy seconds per second of that instance and the intensity the
//!   span's mean, never below 0.
//! - **Events per request.** A `series` effect's `per_request` (a `per_request` counter's
//!   events per request at full effect) moves the recording's own, `h` (the series' events
//!   over [`REQUESTS`]' over the whole recording), to `h + intensity · affected · (level -
//!   h)`: fewer keep each canary event with the ratio of the two (a binomial thinning);
//!   more add a Poisson count of the difference times the canary's requests in the span,
//!   shared among the series' label sets as the recording shares them.
//! - **A share of a parent's events.** A `series` effect's `share` (an `of` counter's
//!   share of its parent's events at full effect) moves the recording's own, `h` (the
//!   counter's events over its parent's over the whole recording), to `h + intensity ·
//!   affected · (level - h)`: lower keeps each canary event with the ratio of the two;
//!   higher gives each of the canary's parent events in the span that has none one with
//!   the difference over `1 - h` ([`shift_share`]).
//! - **A split.** A `series` effect's `split` moves each value's share of the counter's
//!   events from the recording's toward the fault's: the values that lose keep each event
//!   with the ratio of the shares, and give the rest to those that gain ([`shift_split`]).
//!
//! The events nested in those a fault moves go with them ([`super::nested::carry`]).
//!
//! What has no clear meaning on a recording is refused ([`Levels::refused`]), naming the
//! effect: a custom metric read through a counter or a ratio, a histogram's buckets.

use super::channel::{Channel, Role};
use crate::check::{Builtin, CheckedPlan, REQUESTS};
use crate::model::Unit;
use crate::pointer;
use crate::prom::Series;
use crate::prom::engine::{self, AggOp, Expr};
use crate::promql::{MetricExpr, Track};
use crate::sim::scenario::{Fault, Scenarios, SeriesKind};
use crate::sim::synth::Faults;
use crate::sim::synth::draw::{self, FailRate};
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Distribution, Poisson};

/// The fault's mean intensity over `(t0, t1]` for a canary serving `canary_rps`.
pub(super) fn mean_intensity(f: &dyn Faults, (t0, t1): (i64, i64), canary_rps: f64) -> f64 {
    let mut sum = 0.0;
    let mut a = t0;
    while a < t1 {
        let b = f.next_change(a).filter(|&c| c > a && c < t1).unwrap_or(t1);
        sum += f.intensity(f.level_at(a, canary_rps)) * (b - a) as f64;
        a = b;
    }
    sum / (t1 - t0) as f64
}

/// A Binomial(`n`, `p`) draw (0 for an empty or impossible one). Draws of one `p` for
/// many counts (a scrape's thinning) prepare it once: [`draw::binomial`].
pub(super) fn binomial(rng: &mut Xoshiro256PlusPlus, n: u64, p: f64) -> u64 {
    if n == 0 {
        return 0;
    }
    draw::binomial(rng, n, &FailRate::new(p))
}

/// The sum of `values` over `channels` where they have a sample (not NaN).
pub(super) fn present_sum(values: &[f64], channels: impl IntoIterator<Item = usize>) -> f64 {
    channels
        .into_iter()
        .map(|c| values[c])
        .filter(|v| !v.is_nan())
        .sum()
}

/// Shares `n` events among `parts` (each a channel and a positive weight, in order): a
/// multinomial in proportion to the weights, drawn as sequential binomials, the last part
/// taking what is left; `add` gets each part's count.
fn share_out(
    rng: &mut Xoshiro256PlusPlus,
    n: u64,
    parts: impl Iterator<Item = (usize, f64)> + Clone,
    mut add: impl FnMut(usize, u64),
) {
    let mut mass: f64 = parts.clone().map(|p| p.1).sum();
    let mut left = n;
    let mut parts = parts.peekable();
    while let Some((c, w)) = parts.next() {
        let k = if parts.peek().is_none() {
            left
        } else {
            binomial(rng, left, (w / mass).min(1.0))
        };
        mass -= w;
        left -= k;
        add(c, k);
    }
}

/// A histogram's finite bounds then `+Inf`, in order, with their logarithms (worked out
/// once: [`move_by`] compares positions on a log scale for every bucket and scrape).
#[derive(Debug, Clone)]
pub(super) struct Bounds {
    pub(super) les: Vec<f64>,
    ln_les: Vec<f64>,
}

impl Bounds {
    pub(super) fn new(les: Vec<f64>) -> Bounds {
        let ln_les = les.iter().map(|x| x.ln()).collect();
        Bounds { les, ln_les }
    }
}

/// Moves `m` requests out of interval `k` of `counts` (intervals `(les[k-1], les[k]]`,
/// from 0; the last above every finite bound) to where their latency times `factor`
/// falls, each latency log-uniform within its interval (uniform in the first, from 0):
/// latencies spread over orders of magnitude, and a bucket's requests crowd towards its
/// lower bound where the density falls, as a lognormal's does above its median.
pub(super) fn move_by(
    rng: &mut Xoshiro256PlusPlus,
    counts: &mut [u64],
    bounds: &Bounds,
    (k, m): (usize, u64),
    factor: f64,
) {
    let les = &bounds.les;
    let last = les.len() - 1;
    if m == 0 || k == last || factor == 1.0 {
        return;
    }
    let lo = if k == 0 { 0.0 } else { les[k - 1].max(0.0) };
    let hi = les[k];
    // Positions within the interval: log-scale where it has a positive lower bound.
    let log = lo > 0.0;
    let at = |i: usize| if log { bounds.ln_les[i] } else { les[i] };
    let (a, b) = if log {
        let ln_factor = factor.ln();
        (
            bounds.ln_les[k - 1] + ln_factor,
            bounds.ln_les[k] + ln_factor,
        )
    } else {
        (lo * factor, hi * factor)
    };
    let width = b - a;
    if width.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return;
    }
    counts[k] -= m;
    let mut left = m;
    let mut mass = 1.0;
    for (i, count) in counts.iter_mut().enumerate() {
        if left == 0 {
            break;
        }
        let ilo = if i == 0 { f64::NEG_INFINITY } else { at(i - 1) };
        let overlap = (b.min(at(i)) - a.max(ilo)).max(0.0) / width;
        if overlap <= 0.0 {
            continue;
        }
        let n = if i == last || overlap >= mass {
            left
        } else {
            binomial(rng, left, overlap / mass)
        };
        *count += n;
        left -= n;
        mass -= overlap;
    }
    counts[last] += left;
}

/// A fault effect a recorded trial cannot carry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refused {
    pub(crate) scenario: usize,
    /// The effect's pointer under its fault (`metrics/NAME`, `series/NAME/PARAM`).
    pub(crate) key: String,
    pub(crate) message: String,
    pub(crate) hint: String,
}

/// A gauge the fault can move on the canary: its channel, the recording's mean of it, and
/// the most a shift takes it to (1 for a ratio).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct GaugeLevel {
    channel: usize,
    mean: f64,
    ceiling: f64,
}

/// What a fault can move of the canary's own recorded series, worked out once per run.
#[derive(Debug, Default)]
pub(super) struct Levels {
    /// The built-in memory metric's used-bytes channels: each with its limit's channel and
    /// the recording's mean ratio of the two.
    memory: Vec<(usize, usize, f64)>,
    /// The built-in CPU metric's busy-seconds channels: each with the recording's mean busy
    /// seconds per second.
    cpu: Vec<(usize, f64)>,
    /// Per plan metric: the one recorded gauge its query reads directly (its channels: the
    /// recorded series, and its copies for the canary's instances beyond the recording's),
    /// or why not.
    custom: Vec<Result<Vec<GaugeLevel>, String>>,
    /// Per series model (`baseline.series`): what its effect moves on a recording.
    series: Vec<SeriesLevel>,
    /// Per series model: its split's values on a recording (None: no split).
    splits: Vec<Option<Result<SplitLevel, String>>>,
}

/// A counter's split on a recording: per value, in the split's order, its channel and
/// its share of the counter's events over the recording.
#[derive(Debug, Clone, PartialEq)]
struct SplitLevel {
    values: Vec<(usize, f64)>,
}

/// A counter's channel, its events per request (or per parent event) in the recording,
/// whether they are whole.
type EventChannel = (usize, f64, bool);

/// An `of` counter on a recording: its channels, each with its events per parent event;
/// its parent's channels; and the share of the parent's events it counts, all together.
#[derive(Debug, Clone, PartialEq)]
struct ShareLevel {
    children: Vec<EventChannel>,
    parents: Vec<usize>,
    share: f64,
}

#[derive(Debug, Clone, PartialEq)]
enum SeriesLevel {
    /// A gauge's recorded series of that name (None of them: why).
    Gauge(Result<Vec<GaugeLevel>, String>),
    /// A `per_request` counter: per channel of its name, its events per request in the
    /// recording and whether its increases are whole; and theirs together.
    PerRequest(Result<(Vec<EventChannel>, f64), String>),
    /// An `of` counter: its share of its parent's events in the recording (None: why).
    Share(Result<ShareLevel, String>),
    /// Nothing a recording can carry (its effects are refused by kind).
    Other,
}

/// The mean of the values that are there (None: none).
fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (mut sum, mut n) = (0.0, 0u64);
    for v in values.filter(|v| !v.is_nan()) {
        sum += v;
        n += 1;
    }
    (n > 0).then(|| sum / n as f64)
}

/// The one instant selector a query reads directly, as a gauge read as it is: the
/// selector itself, or `sum`, `avg`, `min` or `max` of it (the same value over one series).
fn direct_selector(e: &Expr) -> Option<&engine::Selector> {
    match e {
        Expr::Select(s) if s.offset_ms == 0 => Some(s),
        Expr::Aggregate {
            op: AggOp::Sum | AggOp::Avg | AggOp::Min | AggOp::Max,
            param: None,
            arg,
            ..
        } => direct_selector(arg),
        _ => None,
    }
}

impl Levels {
    /// The levels of `rec`'s series (as `channels` of `templates`) for `plan`.
    pub(super) fn new(
        plan: &CheckedPlan,
        scenarios: &Scenarios,
        (rec, step_ms): (&super::recording::Recording, i64),
        channels: &[Channel],
        templates: &[Series],
    ) -> Levels {
        let values = |c: usize| rec.series[channels[c].rec].values.iter().copied();
        let total = |c: usize| rec.series[channels[c].rec].total();
        let counter = |c: usize| rec.series[channels[c].rec].counter;
        let program = |expr: &MetricExpr| engine::program(&expr.promql(Some(Track::Canary))).ok();
        // The channels whose canary series `sel` selects.
        let selected = |sel: &engine::Selector| -> Vec<usize> {
            (0..channels.len())
                .filter(|&c| {
                    let t = &templates[channels[c].canary];
                    sel.matches(&t.name, &t.labels)
                })
                .collect()
        };
        let mut levels = Levels::default();
        for m in &plan.metrics {
            match (m.builtin, &m.expr) {
                (Some(Builtin::MemoryUsage), MetricExpr::GaugeRatioMax { .. }) => {
                    let Some(p) = program(&m.expr) else { continue };
                    let sels = p.selectors();
                    let [(num, _), (den, _)] = sels[..] else {
                        continue;
                    };
                    let dens = selected(den);
                    for c in selected(num).into_iter().filter(|&c| !counter(c)) {
                        // `num / den` matches on every label but the name.
                        let labels = &templates[channels[c].canary].labels;
                        let Some(&d) = dens.iter().find(|&&d| {
                            !counter(d) && &templates[channels[d].canary].labels == labels
                        }) else {
                            continue;
                        };
                        let ratios = values(c)
                            .zip(values(d))
                            .map(|(u, l)| if l > 0.0 { u / l } else { f64::NAN });
                        if let Some(r) = mean(ratios) {
                            levels.memory.push((c, d, r));
                        }
                    }
                }
                (Some(Builtin::CpuUsage), MetricExpr::AvgRate { .. }) => {
                    let Some(p) = program(&m.expr) else { continue };
                    for (sel, _) in p.selectors() {
                        for c in selected(sel) {
                            if counter(c)
                                && channels[c].role == Role::Own
                                && let Some(busy) = mean(values(c))
                            {
                                levels.cpu.push((c, busy / (step_ms as f64 / 1000.0)));
                            }
                        }
                    }
                }
                _ => {}
            }
            let custom = if !m.is_custom() {
                Err("it is not a custom metric".into())
            } else {
                let query = m.expr.promql(Some(Track::Canary));
                match program(&m.expr).as_ref().and_then(direct_selector) {
                    None => Err(format!(
                        "its query `{query}` is not one gauge read directly"
                    )),
                    Some(sel) => {
                        let cs = selected(sel);
                        let mut recorded: Vec<usize> =
                            cs.iter().map(|&c| channels[c].rec).collect();
                        recorded.sort_unstable();
                        recorded.dedup();
                        let ceiling = if m.unit == Unit::Ratio {
                            1.0
                        } else {
                            f64::INFINITY
                        };
                        match (&recorded[..], cs.first()) {
                            ([_], Some(&c)) if !counter(c) => mean(values(c))
                                .map(|mean| {
                                    (cs.iter())
                                        .map(|&channel| GaugeLevel {
                                            channel,
                                            mean,
                                            ceiling,
                                        })
                                        .collect()
                                })
                                .ok_or_else(|| {
                                    format!("the recording has no value of `{}`", sel.text())
                                }),
                            ([_], _) => Err(format!("its query `{query}` reads a counter")),
                            _ => Err(format!(
                                "its query `{query}` reads {} recorded series, not one",
                                recorded.len()
                            )),
                        }
                    }
                }
            };
            levels.custom.push(custom);
        }
        let requests: f64 = (0..channels.len())
            .filter(|&c| rec.series[channels[c].rec].name == REQUESTS)
            .map(total)
            .sum();
        // A counter's channels (those thinned with the traffic), each with its events.
        let events_of = |name: &str| -> Vec<EventChannel> {
            (0..channels.len())
                .filter(|&c| rec.series[channels[c].rec].name == name)
                .filter_map(|c| match channels[c].role {
                    Role::Traffic { whole } => Some((c, total(c), whole)),
                    Role::Own => None,
                })
                .collect()
        };
        for model in &scenarios.baseline.series {
            let named: Vec<usize> = (0..channels.len())
                .filter(|&c| rec.series[channels[c].rec].name == model.name)
                .collect();
            let level = match model.kind {
                _ if model.histogram.is_some() => SeriesLevel::Other,
                SeriesKind::Gauge(_) => {
                    let gauges: Vec<GaugeLevel> = named
                        .iter()
                        .filter(|&&c| !counter(c))
                        .filter_map(|&c| {
                            mean(values(c)).map(|mean| GaugeLevel {
                                channel: c,
                                mean,
                                ceiling: f64::INFINITY,
                            })
                        })
                        .collect();
                    SeriesLevel::Gauge(if gauges.is_empty() {
                        Err(format!(
                            "the recording has no gauge `{}` with a value",
                            model.name
                        ))
                    } else {
                        Ok(gauges)
                    })
                }
                SeriesKind::PerRequest(_) => {
                    let counts = events_of(&model.name);
                    let events: f64 = counts.iter().map(|x| x.1).sum();
                    SeriesLevel::PerRequest(if counts.is_empty() {
                        Err(format!("the recording has no counter `{}`", model.name))
                    } else if requests <= 0.0 {
                        Err(format!(
                            "the recording has no `{REQUESTS}` requests to count `{}`'s events per request by",
                            model.name
                        ))
                    } else if events <= 0.0 {
                        Err(format!(
                            "the recording has no `{}` event, so no events per request to move",
                            model.name
                        ))
                    } else {
                        Ok((
                            counts
                                .into_iter()
                                .map(|(c, n, whole)| (c, n / requests, whole))
                                .collect(),
                            events / requests,
                        ))
                    })
                }
                SeriesKind::Of { parent, .. } => {
                    let parent = &scenarios.baseline.series[parent].name;
                    let counts = events_of(&model.name);
                    let parents = events_of(parent);
                    let events: f64 = counts.iter().map(|x| x.1).sum();
                    let of: f64 = parents.iter().map(|x| x.1).sum();
                    SeriesLevel::Share(if counts.is_empty() {
                        Err(format!("the recording has no counter `{}`", model.name))
                    } else if of <= 0.0 {
                        Err(format!(
                            "the recording has no `{parent}` event to count `{}`'s share of",
                            model.name
                        ))
                    } else if events <= 0.0 {
                        Err(format!(
                            "the recording has no `{}` event, so no share to move",
                            model.name
                        ))
                    } else {
                        Ok(ShareLevel {
                            children: counts
                                .into_iter()
                                .map(|(c, n, whole)| (c, n / of, whole))
                                .collect(),
                            parents: parents.into_iter().map(|p| p.0).collect(),
                            share: events / of,
                        })
                    })
                }
            };
            levels.series.push(level);
            levels.splits.push(model.split.as_ref().map(|split| {
                let mut values = Vec::with_capacity(split.values.len());
                for v in &split.values {
                    let of_value: Vec<usize> = named
                        .iter()
                        .copied()
                        .filter(|&c| {
                            let labels = &rec.series[channels[c].rec].labels;
                            labels.iter().any(|(k, x)| *k == split.label && x == v)
                        })
                        .collect();
                    match of_value[..] {
                        [c] if channels[c].role == (Role::Traffic { whole: true }) => {
                            values.push((c, total(c)))
                        }
                        [_] => {
                            return Err(format!(
                                "`{}{{{}=\"{v}\"}}` is not a counter of whole events in the recording",
                                model.name, split.label
                            ));
                        }
                        [] => {
                            return Err(format!(
                                "the recording has no counter `{}{{{}=\"{v}\"}}`",
                                model.name, split.label
                            ));
                        }
                        _ => {
                            return Err(format!(
                                "the recording has {} series of `{}{{{}=\"{v}\"}}` (other labels apart), and which of their events the fault would give another value is not recorded",
                                of_value.len(),
                                model.name,
                                split.label
                            ));
                        }
                    }
                }
                let total: f64 = values.iter().map(|v| v.1).sum();
                if total <= 0.0 {
                    return Err(format!(
                        "the recording has no `{}` event, so no split to move",
                        model.name
                    ));
                }
                Ok(SplitLevel {
                    values: values.into_iter().map(|(c, n)| (c, n / total)).collect(),
                })
            }));
        }
        levels
    }

    /// The effects of `scenarios`' faults a recorded trial cannot carry.
    pub(super) fn refused(&self, plan: &CheckedPlan, scenarios: &Scenarios) -> Vec<Refused> {
        let mut out = Vec::new();
        let movable: Vec<&str> = plan
            .metrics
            .iter()
            .zip(&self.custom)
            .filter(|(_, c)| c.is_ok())
            .map(|(m, _)| m.name.as_str())
            .collect();
        let can_move = if movable.is_empty() {
            "none of this plan's custom metrics is read so".to_string()
        } else {
            format!(
                "of this plan's custom metrics, it can move {}",
                movable
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        for (i, s) in scenarios.scenarios.iter().enumerate() {
            let Some(f) = &s.fault else { continue };
            // A built-in gauge the plan reads, of which nothing recorded can be moved (its
            // query overridden, or none of its series recorded): the fault would do nothing.
            let unmovable = [
                (
                    f.memory_usage.is_some() && self.memory.is_empty(),
                    "memory_usage",
                    "the working set over the limit of `container_memory_working_set_bytes` and `container_spec_memory_limit_bytes`",
                ),
                (
                    f.cpu_usage.is_some() && self.cpu.is_empty(),
                    "cpu_usage",
                    "the busy seconds of `process_cpu_seconds_total`",
                ),
            ];
            for (_, param, what) in unmovable.into_iter().filter(|u| u.0) {
                if plan.metrics.iter().any(|m| m.name == param) {
                    out.push(Refused {
                        scenario: i,
                        key: param.into(),
                        message: format!(
                            "scenario `{}` sets `{param}`, but no recorded series of it can be moved: a trial built from a recording moves {what}, as the built-in query reads them, and this plan overrides the query or the recording has none of them",
                            s.name
                        ),
                        hint: format!("run this scenario without --baseline, or read `{param}` through its built-in query"),
                    });
                }
            }
            for &(mi, _) in &f.metrics {
                if let Err(why) = &self.custom[mi] {
                    let name = &plan.metrics[mi].name;
                    out.push(Refused {
                        scenario: i,
                        key: format!("metrics/{}", pointer::escape(name)),
                        message: format!(
                            "scenario `{}` moves `{name}`, but {why}: a trial built from a recording moves a custom metric only where its query reads one recorded gauge directly (the selector, or `sum`, `avg`, `min` or `max` of it), whose level it shifts; {can_move}",
                            s.name
                        ),
                        hint: "move the raw series the query reads instead, modelled under `baseline.series` (a gauge's `mean`, a `per_request` counter's events per request, an `of` counter's `share`, in the fault's `series`), or run this scenario without --baseline".into(),
                    });
                }
            }
            for e in &f.series {
                let model = &scenarios.baseline.series[e.series];
                let name = &model.name;
                let at = |param: &str| format!("series/{}/{param}", pointer::escape(name));
                let hint = "run this scenario without --baseline, or move what the recording has a level for: a gauge's `mean`, a `per_request` counter's events per request, an `of` counter's `share`";
                let mut refuse = |param: &str, why: String| {
                    out.push(Refused {
                        scenario: i,
                        key: at(param),
                        message: format!("scenario `{}` moves `{name}`'s `{param}`, which a trial built from a recording cannot carry: {why}", s.name),
                        hint: hint.to_string(),
                    });
                };
                if model.histogram.is_some() {
                    let param = if e.buckets.is_some() {
                        "buckets"
                    } else {
                        "per_request"
                    };
                    refuse(
                        param,
                        format!(
                            "`{name}` is a histogram, and the recording gives its own observations and bucket shares, not the model's"
                        ),
                    );
                    continue;
                }
                if let (Some(_), Some(Some(Err(why)))) = (&e.split, self.splits.get(e.series)) {
                    refuse("split", why.clone());
                }
                match (&self.series[e.series], e.mean, e.per_request, e.share) {
                    (SeriesLevel::Gauge(Err(why)), Some(_), _, _) => refuse("mean", why.clone()),
                    (SeriesLevel::PerRequest(Err(why)), _, Some(_), _) => {
                        refuse("per_request", why.clone())
                    }
                    (SeriesLevel::Share(Err(why)), _, _, Some(_)) => refuse("share", why.clone()),
                    _ => {}
                }
            }
        }
        out
    }

    /// The channels a `share` effect on series model `series` moves (none when it moves
    /// nothing here).
    pub(super) fn share_channels(&self, series: usize) -> Vec<usize> {
        match self.series.get(series) {
            Some(SeriesLevel::Share(Ok(s))) => s.children.iter().map(|e| e.0).collect(),
            _ => Vec::new(),
        }
    }

    /// Whether `fault` moves any of the canary's own gauges or counters here.
    #[inline]
    /// The recording's mean busy seconds per second of CPU channel `c` (None: not one
    /// the built-in CPU metric reads).
    pub(super) fn cpu_mean(&self, c: usize) -> Option<f64> {
        self.cpu
            .iter()
            .find(|&&(x, _)| x == c)
            .map(|&(_, mean)| mean)
    }

    pub(super) fn moved_by(fault: &Fault) -> bool {
        fault.memory_usage.is_some()
            || fault.cpu_usage.is_some()
            || !fault.metrics.is_empty()
            || !fault.series.is_empty()
    }
}

/// A gauge's value `v` moved by `d`, the shift stopping at 0 and at `ceiling` (a value
/// already past one is not moved further past it).
pub(super) fn shifted(v: f64, d: f64, ceiling: f64) -> f64 {
    if d < 0.0 {
        (v + d).max(v.min(0.0))
    } else {
        (v + d).min(v.max(ceiling))
    }
}

/// Moves the canary's gauges at a scrape (`canary`, per channel: the value scraped, NaN:
/// none) by `fault` at intensity `intensity` (the scrape's).
fn shift_gauges(levels: &Levels, fault: &Fault, intensity: f64, canary: &mut [f64]) {
    let s = intensity * fault.affected();
    if s <= 0.0 {
        return;
    }
    let gauge = |canary: &mut [f64], g: &GaugeLevel, level: f64| {
        let v = canary[g.channel];
        if !v.is_nan() {
            canary[g.channel] = shifted(v, s * (level - g.mean), g.ceiling);
        }
    };
    if let Some(level) = fault.memory_usage {
        for &(c, d, mean) in &levels.memory {
            let (used, limit) = (canary[c], canary[d]);
            // No limit (0) at this scrape: the query leaves the instance out.
            if !used.is_nan() && limit > 0.0 {
                canary[c] = shifted(used, s * (level - mean) * limit, limit);
            }
        }
    }
    for &(mi, level) in &fault.metrics {
        if let Some(Ok(gs)) = levels.custom.get(mi) {
            for g in gs {
                gauge(canary, g, level);
            }
        }
    }
    for e in &fault.series {
        if let (Some(level), Some(SeriesLevel::Gauge(Ok(gs)))) =
            (e.mean, levels.series.get(e.series))
        {
            for g in gs {
                gauge(canary, g, level);
            }
        }
    }
}

/// [`shift_gauges`] for one channel `c` of the canary scraped at `v` (NaN: none), in the
/// same order (memory, then custom metrics, then modelled gauges); `value_of` gives another
/// channel's value at the same scrape, unmoved (a memory limit, which memory moves first).
pub(super) fn shift_gauge(
    levels: &Levels,
    fault: &Fault,
    intensity: f64,
    (c, mut v): (usize, f64),
    mut value_of: impl FnMut(usize) -> f64,
) -> f64 {
    let s = intensity * fault.affected();
    if s <= 0.0 || v.is_nan() {
        return v;
    }
    if let Some(level) = fault.memory_usage {
        for &(_, d, mean) in levels.memory.iter().filter(|m| m.0 == c) {
            let limit = value_of(d);
            if limit > 0.0 {
                v = shifted(v, s * (level - mean) * limit, limit);
            }
        }
    }
    let mut gauge = |g: &GaugeLevel, level: f64| {
        if g.channel == c {
            v = shifted(v, s * (level - g.mean), g.ceiling);
        }
    };
    for &(mi, level) in &fault.metrics {
        if let Some(Ok(gs)) = levels.custom.get(mi) {
            gs.iter().for_each(|g| gauge(g, level));
        }
    }
    for e in &fault.series {
        if let (Some(level), Some(SeriesLevel::Gauge(Ok(gs)))) =
            (e.mean, levels.series.get(e.series))
        {
            gs.iter().for_each(|g| gauge(g, level));
        }
    }
    v
}

/// A canary instance's busy seconds `v` over a scrape of `seconds`, moved by a fault's
/// `cpu_usage` `level` at `s` (intensity times the affected share) from the recording's
/// `mean`: busy seconds cannot go backwards, so a shift down stops at an idle scrape.
pub(super) fn busy_moved(v: f64, s: f64, (level, mean): (f64, f64), seconds: f64) -> f64 {
    (v + s * (level - mean) * seconds).max(0.0)
}

/// Moves the canary's own values of the scrape span `(t0, t]` by the fault: `canary` per
/// channel, a gauge's value at `t` or a counter's increase over the span (NaN: no sample);
/// `span` the fault's mean intensity over the span and the canary's requests in it. Only a
/// counter of events per request moved up or down draws (from `rng`, the fault's stream).
/// An `of` counter's share and a split move after, in [`shift_shares`].
pub(super) fn shift_own(
    (levels, faults): (&Levels, &dyn Faults),
    (t0, t): (i64, i64),
    (span_intensity, requests): (f64, f64),
    rng: &mut Xoshiro256PlusPlus,
    canary: &mut [f64],
) {
    let Some(fault) = faults.fault().filter(|f| Levels::moved_by(f)) else {
        return;
    };
    let seconds = (t - t0) as f64 / 1000.0;
    let at_t = faults.intensity(faults.level_at(t, requests / seconds));
    shift_gauges(levels, fault, at_t, canary);
    let s = span_intensity * fault.affected();
    if s <= 0.0 {
        return;
    }
    if let Some(level) = fault.cpu_usage {
        for &(c, mean) in &levels.cpu {
            if !canary[c].is_nan() {
                canary[c] = busy_moved(canary[c], s, (level, mean), seconds);
            }
        }
    }
    for e in &fault.series {
        let (Some(level), Some(SeriesLevel::PerRequest(Ok((per, h))))) =
            (e.per_request, levels.series.get(e.series))
        else {
            continue;
        };
        let ratio = (h + s * (level - h)) / h;
        for &(c, hc, whole) in per {
            let k = canary[c];
            if k.is_nan() {
                continue;
            }
            canary[c] = match (whole, ratio < 1.0) {
                (true, true) => binomial(rng, k as u64, ratio) as f64,
                (true, false) => {
                    let extra = requests * hc * (ratio - 1.0);
                    k + Poisson::new(extra).map_or(0.0, |p| p.sample(rng))
                }
                (false, _) => k * ratio,
            };
        }
    }
}

/// Moves the canary's `of` counters' shares of their parents' events, and its counters'
/// splits, over a scrape span
/// (`canary` per channel: the span's increases, NaN: no sample), the fault at the span's
/// mean intensity `span_intensity`. It comes after the events per request have moved and
/// the events nested in them with them, so that a share is of the parent events the canary
/// then has.
pub(super) fn shift_shares(
    (levels, faults): (&Levels, &dyn Faults),
    span_intensity: f64,
    rng: &mut Xoshiro256PlusPlus,
    canary: &mut [f64],
) {
    let Some(fault) = faults.fault() else { return };
    let s = span_intensity * fault.affected();
    if s <= 0.0 {
        return;
    }
    for e in &fault.series {
        if let (Some(level), Some(SeriesLevel::Share(Ok(of)))) =
            (e.share, levels.series.get(e.series))
        {
            shift_share(of, s * (level - of.share), rng, canary);
        }
        if let (Some(to), Some(Some(Ok(split)))) = (&e.split, levels.splits.get(e.series)) {
            shift_split(split, to, s, rng, canary);
        }
    }
}

/// Moves a counter's split on the canary over a scrape span (`canary` per channel: the
/// span's increases, NaN: no sample) from the recording's shares `h` toward the fault's
/// `to` by `s` (intensity times the affected share): each value's share becomes `h + s ·
/// (to - h)`. A value whose share falls keeps each of its events with the ratio of the
/// two; the events it gives up go to the values whose share rises, in proportion to the
/// rise (a multinomial, as sequential binomials). An event of value `u` then ends in `v`
/// with the moved share of `v`, whatever `u`: the law of a split drawn at the moved shares.
/// A span where some value has no sample is left as it is.
fn shift_split(
    split: &SplitLevel,
    to: &[f64],
    s: f64,
    rng: &mut Xoshiro256PlusPlus,
    canary: &mut [f64],
) {
    if split.values.iter().any(|&(c, _)| canary[c].is_nan()) {
        return;
    }
    let moved = |i: usize, h: f64| h + s * (to.get(i).copied().unwrap_or(h) - h);
    let gainers: Vec<(usize, f64)> = (split.values.iter().enumerate())
        .map(|(i, &(c, h))| (c, moved(i, h) - h))
        .filter(|&(_, up)| up > 0.0)
        .collect();
    if gainers.is_empty() {
        return;
    }
    let mut pool = 0u64;
    for (i, &(c, h)) in split.values.iter().enumerate() {
        let m = moved(i, h);
        if m < h {
            let k = canary[c] as u64;
            let kept = binomial(rng, k, m / h);
            pool += k - kept;
            canary[c] = kept as f64;
        }
    }
    share_out(rng, pool, gainers.into_iter(), |c, n| canary[c] += n as f64);
}

/// Moves an `of` counter's share of its parent's events on the canary by `d` over a
/// scrape span (`canary` per channel: the span's increases, NaN: no sample). Down, each
/// event is kept with the ratio of the two shares (a binomial thinning); up, each parent
/// event without one gains one with `d / (1 - share)`, shared among the counter's label
/// sets as the recording shares them (sequential binomials); a counter of fractions moves
/// by the ratio. The law is the synthetic model's, where each parent event is counted with
/// the share: thinning or topping up such events gives each parent event the moved share.
fn shift_share(of: &ShareLevel, d: f64, rng: &mut Xoshiro256PlusPlus, canary: &mut [f64]) {
    let h = of.share;
    let ratio = ((h + d) / h).max(0.0);
    if ratio == 1.0 {
        return;
    }
    if ratio < 1.0 || of.children.iter().any(|&(_, _, whole)| !whole) {
        for &(c, _, whole) in &of.children {
            let k = canary[c];
            if !k.is_nan() {
                canary[c] = if whole && ratio < 1.0 {
                    binomial(rng, k as u64, ratio) as f64
                } else {
                    k * ratio
                };
            }
        }
        return;
    }
    let parents = present_sum(canary, of.parents.iter().copied());
    let counted = present_sum(canary, of.children.iter().map(|e| e.0));
    let gained = binomial(
        rng,
        (parents - counted).max(0.0) as u64,
        (d / (1.0 - h)).min(1.0),
    );
    let parts = of.children.iter().map(|&(c, hc, _)| (c, hc));
    share_out(rng, gained, parts, |c, n| {
        // A label set without a sample this scrape (a gap in the recording) gets none.
        if !canary[c].is_nan() {
            canary[c] += n as f64;
        }
    });
}

/// Moves the canary's gauges at scrape 0 (at `t`), written in `series` as `channels`'
/// canary templates: the fault at its intensity then.
pub(super) fn shift_first(
    (levels, faults): (&Levels, &dyn Faults),
    channels: &[Channel],
    t: i64,
    series: &mut [Series],
) {
    let Some(fault) = faults.fault().filter(|f| Levels::moved_by(f)) else {
        return;
    };
    let intensity = faults.intensity(faults.level_at(t, 0.0));
    if intensity <= 0.0 {
        return;
    }
    let last = |s: &Series| {
        s.samples
            .last()
            .filter(|x| x.t == t)
            .map_or(f64::NAN, |x| x.v)
    };
    let mut values: Vec<f64> = channels.iter().map(|ch| last(&series[ch.canary])).collect();
    shift_gauges(levels, fault, intensity, &mut values);
    for (ch, v) in channels.iter().zip(values) {
        if let Some(x) = series[ch.canary].samples.last_mut().filter(|x| x.t == t) {
            x.v = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::scenario::FaultKind;
    use rand::SeedableRng;

    #[test]
    fn doubling_moves_requests_in_proportion_to_the_overlap() {
        // (0, 0.1], (0.1, 0.2], (0.2, 0.4], +Inf. Doubling (0.1, 0.2] gives (0.2, 0.4].
        let bounds = Bounds::new(vec![0.1, 0.2, 0.4, f64::INFINITY]);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut counts = [0, 1000, 0, 0];
        move_by(&mut rng, &mut counts, &bounds, (1, 1000), 2.0);
        assert_eq!(counts, [0, 0, 1000, 0]);
        // Tripling (0, 0.1] (uniform from 0) gives (0, 0.3]: a third in (0, 0.1], a third
        // in (0.1, 0.2] and a third in (0.2, 0.3].
        let mut counts = [30_000, 0, 0, 0];
        move_by(&mut rng, &mut counts, &bounds, (0, 30_000), 3.0);
        assert_eq!(counts.iter().sum::<u64>(), 30_000);
        for &c in &counts[..3] {
            assert!((c as f64 - 10_000.0).abs() < 400.0, "{counts:?}");
        }
        assert_eq!(counts[3], 0);
        // Log-uniform in (0.2, 0.4]: tripled, (0.6, 1.2], all above 0.4.
        let mut counts = [0, 0, 50, 0];
        move_by(&mut rng, &mut counts, &bounds, (2, 50), 3.0);
        assert_eq!(counts, [0, 0, 0, 50]);
        // Log-uniform in (0.1, 0.2]: times 1.5 gives (0.15, 0.3]; (0.15, 0.2] holds
        // ln(0.2/0.15)/ln 2 = 41.5% of it.
        let mut counts = [0, 20_000, 0, 0];
        move_by(&mut rng, &mut counts, &bounds, (1, 20_000), 1.5);
        let share = counts[1] as f64 / 20_000.0;
        assert!(
            (share - (0.2f64 / 0.15).ln() / 2f64.ln()).abs() < 0.015,
            "{counts:?}"
        );
        // Past the last finite bound: +Inf.
        let mut counts = [0, 0, 100, 0];
        move_by(&mut rng, &mut counts, &bounds, (2, 100), 10.0);
        assert_eq!(counts, [0, 0, 0, 100]);
    }

    /// A fault at a fixed intensity from its onset (a leak's ramp is not looked at).
    struct Fixed(Fault, f64);

    impl Faults for Fixed {
        fn fault(&self) -> Option<&Fault> {
            Some(&self.0)
        }
        fn level_at(&self, t: i64, _: f64) -> usize {
            usize::from(t >= self.0.onset_ms)
        }
        fn intensity(&self, level: usize) -> f64 {
            if level == 0 { 0.0 } else { self.1 }
        }
        fn down_from(&self) -> Option<i64> {
            None
        }
        fn next_change(&self, _: i64) -> Option<i64> {
            None
        }
    }

    #[test]
    fn a_shift_stops_at_zero_and_at_the_ceiling() {
        assert_eq!(shifted(0.5, 0.25, 1.0), 0.75);
        assert_eq!(shifted(0.9, 0.25, 1.0), 1.0);
        // Already past the ceiling (or below 0): not moved further.
        assert_eq!(shifted(1.2, 0.25, 1.0), 1.2);
        assert_eq!(shifted(0.25, -0.5, f64::INFINITY), 0.0);
        assert_eq!(shifted(-0.5, -0.25, f64::INFINITY), -0.5);
        assert_eq!(shifted(-0.5, 0.25, f64::INFINITY), -0.25);
    }

    /// Memory moves used bytes by `intensity · affected · (level - mean ratio) · limit`; a
    /// custom gauge by `intensity · affected · (level - mean)`; CPU's busy seconds by that
    /// times the span's seconds, never below 0.
    #[test]
    fn gauges_and_cpu_move_by_intensity_affected_and_the_distance_to_the_level() {
        let levels = Levels {
            memory: vec![(0, 1, 0.5)],
            cpu: vec![(2, 0.2)],
            custom: vec![
                Ok(vec![GaugeLevel {
                    channel: 3,
                    mean: 10.0,
                    ceiling: f64::INFINITY,
                }]),
                Err("not one gauge".into()),
            ],
            series: Vec::new(),
            splits: Vec::new(),
        };
        let fault = Fault {
            memory_usage: Some(0.9),
            cpu_usage: Some(0.8),
            metrics: vec![(0, 30.0)],
            ..Fault::bare(FaultKind::Partial { users: 0.5 }, 60_000)
        };
        let faults = Fixed(fault, 0.5);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        // 0.6 GB used of 2 GB (ratio 0.3); 3 busy seconds in a 15 s span; a gauge at 12.
        let before = [0.6e9, 2e9, 3.0, 12.0];
        let mut v = before;
        shift_own(
            (&levels, &faults),
            (45_000, 60_000),
            (0.2, 100.0),
            &mut rng,
            &mut v,
        );
        // Memory: 0.5 · 0.5 · (0.9 - 0.5) = 0.1 of the 2 GB limit.
        assert!((v[0] - (0.6e9 + 0.1 * 2e9)).abs() < 1.0, "{v:?}");
        assert_eq!(v[1], 2e9);
        // CPU over the span, at its mean intensity 0.2: 0.2 · 0.5 · (0.8 - 0.2) · 15 s.
        assert!(
            (v[2] - (3.0 + 0.2 * 0.5 * 0.6 * 15.0)).abs() < 1e-12,
            "{v:?}"
        );
        // The custom gauge: 0.5 · 0.5 · (30 - 10) = 5.
        assert_eq!(v[3], 17.0);
        // Before the onset the gauges are not moved (the CPU span's mean intensity is
        // the caller's).
        let mut v = before;
        shift_own(
            (&levels, &faults),
            (30_000, 45_000),
            (0.0, 100.0),
            &mut rng,
            &mut v,
        );
        assert_eq!(v, before);
        // CPU down to an idle level stops at 0 busy seconds.
        let down = Fixed(
            Fault {
                cpu_usage: Some(0.0),
                ..Fault::bare(FaultKind::Step, 0)
            },
            1.0,
        );
        let levels = Levels {
            cpu: vec![(0, 0.5)],
            ..Levels::default()
        };
        let mut v = [1.0];
        shift_own((&levels, &down), (0, 15_000), (1.0, 0.0), &mut rng, &mut v);
        assert_eq!(v, [0.0]);
    }

    /// A `per_request` counter's events: halved by thinning each, or raised by a Poisson
    /// count of the extra events per request times the canary's requests.
    #[test]
    fn events_per_request_are_thinned_or_added_to() {
        use crate::sim::scenario::SeriesEffect;
        let levels = Levels {
            series: vec![SeriesLevel::PerRequest(Ok((vec![(0, 0.02, true)], 0.02)))],
            ..Levels::default()
        };
        let at = |level: f64| {
            Fixed(
                Fault {
                    series: vec![SeriesEffect {
                        series: 0,
                        per_request: Some(level),
                        share: None,
                        mean: None,
                        split: None,
                        buckets: None,
                    }],
                    ..Fault::bare(FaultKind::Step, 0)
                },
                1.0,
            )
        };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let (mut fewer, mut more) = (0.0, 0.0);
        for _ in 0..2_000 {
            let mut v = [20.0];
            shift_own(
                (&levels, &at(0.01)),
                (0, 15_000),
                (1.0, 1000.0),
                &mut rng,
                &mut v,
            );
            fewer += v[0];
            let mut v = [20.0];
            shift_own(
                (&levels, &at(0.05)),
                (0, 15_000),
                (1.0, 1000.0),
                &mut rng,
                &mut v,
            );
            more += v[0];
        }
        // Halved: 10 a span; 20 + 1000 · (0.05 - 0.02) = 50 a span.
        assert!((fewer / 2_000.0 - 10.0).abs() < 0.3, "{fewer}");
        assert!((more / 2_000.0 - 50.0).abs() < 0.5, "{more}");
    }

    /// An `of` counter's share moved down thins its canary events by the ratio of the
    /// shares; moved up, each parent event without one gains one with `d / (1 - share)`,
    /// shared among its label sets as recorded; a label set without a sample gets none.
    #[test]
    fn a_share_is_thinned_or_topped_up_from_the_parents_events() {
        // 1,000 parent events in the span, 970 counted (800 `a`, 170 `b`): share 0.97.
        let of = ShareLevel {
            children: vec![(1, 0.8, true), (2, 0.17, true)],
            parents: vec![0],
            share: 0.97,
        };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        let (mut down, mut up) = ([0.0; 2], [0.0; 2]);
        let n = 4_000;
        for _ in 0..n {
            // To 0.485: half of each kept.
            let mut v = [1000.0, 800.0, 170.0];
            shift_share(&of, -0.485, &mut rng, &mut v);
            down[0] += v[1];
            down[1] += v[2];
            // To 0.99: the 30 uncounted parent events gain 20, 0.8/0.97 of them `a`.
            let mut v = [1000.0, 800.0, 170.0];
            shift_share(&of, 0.02, &mut rng, &mut v);
            assert!(v[1] + v[2] <= 1000.0);
            up[0] += v[1] - 800.0;
            up[1] += v[2] - 170.0;
        }
        // Within 4.5 standard errors of the means (binomial spreads over 4,000 draws).
        let mean = |x: f64| x / f64::from(n);
        assert!((mean(down[0]) - 400.0).abs() < 1.0, "{down:?}");
        assert!((mean(down[1]) - 85.0).abs() < 0.45, "{down:?}");
        assert!((mean(up[0]) - 20.0 * 0.8 / 0.97).abs() < 0.2, "{up:?}");
        assert!((mean(up[1]) - 20.0 * 0.17 / 0.97).abs() < 0.1, "{up:?}");
        let mut v = [1000.0, f64::NAN, 170.0];
        shift_share(&of, 0.02, &mut rng, &mut v);
        assert!(v[1].is_nan() && v[2] >= 170.0);
    }

    /// A split moved on the canary: the values whose share falls keep each event with
    /// the ratio of the shares, and what they give up goes to those whose share rises, in
    /// proportion; the total is unchanged, and a span without some value's sample is
    /// left alone.
    #[test]
    fn a_split_moves_events_between_its_values() {
        // Recorded 50/30/20 in a span of 500/300/200; moved to 20/30/50.
        let split = SplitLevel {
            values: vec![(0, 0.5), (1, 0.3), (2, 0.2)],
        };
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let (mut sums, d) = ([0.0; 3], 4_000.0);
        for _ in 0..d as u64 {
            let mut v = [500.0, 300.0, 200.0];
            shift_split(&split, &[0.2, 0.3, 0.5], 1.0, &mut rng, &mut v);
            assert_eq!(v.iter().sum::<f64>(), 1000.0);
            assert_eq!(v[1], 300.0);
            for (s, x) in sums.iter_mut().zip(v) {
                *s += x;
            }
        }
        // Binomial(500, 0.4) kept: standard error of the mean sqrt(120 / 4000).
        assert!(
            (sums[0] / d - 200.0).abs() < 5.0 * (120.0f64 / d).sqrt(),
            "{sums:?}"
        );
        assert!(
            (sums[2] / d - 500.0).abs() < 5.0 * (120.0f64 / d).sqrt(),
            "{sums:?}"
        );
        // Half the way (a partial fault's share, or half the intensity): 35/30/35.
        let mut half = 0.0;
        for _ in 0..d as u64 {
            let mut v = [500.0, 300.0, 200.0];
            shift_split(&split, &[0.2, 0.3, 0.5], 0.5, &mut rng, &mut v);
            half += v[2];
        }
        assert!((half / d - 350.0).abs() < 1.0, "{half}");
        let mut v = [500.0, f64::NAN, 200.0];
        shift_split(&split, &[0.2, 0.3, 0.5], 1.0, &mut rng, &mut v);
        assert_eq!(v[0], 500.0);
    }
}
