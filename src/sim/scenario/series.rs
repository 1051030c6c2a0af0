//! The raw series a scenario file models (`baseline.series`), from which the Monte Carlo
//! computes a custom metric with the plan's own query, and what a fault does to them
//! (`fault.series`). Checked here: each model is exactly one counter (`per_request`, or
//! `of` another counter with a `share`), gauge or histogram, a `split` is one label whose
//! shares add up to 1, a histogram's bounds increase and its shares at or below them never
//! decrease, `of` names a counter and makes no cycle, and a fault moves only parameters
//! its series has. Models come out parents first, so a counter is drawn after the one it
//! counts a share of.

use super::spec::{HistogramSpec, Ratio, SeriesEffectSpec, SeriesSpec};
use super::{DEFAULT_TIME_CONSTANT_MS, Gauge};
use crate::diagnostic::Diagnostic;
use crate::model::trim;
use crate::pointer;
use crate::suggest::nearest;
use indexmap::IndexMap;

/// One modelled series (several, one per value, with a `split`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SeriesModel {
    pub(crate) name: String,
    pub(crate) kind: SeriesKind,
    pub(crate) split: Option<Split>,
    /// A histogram's buckets (its `kind` is then `PerRequest`, its observations).
    pub(crate) histogram: Option<Buckets>,
}

impl SeriesModel {
    /// Whether it gives the series named `name` (a histogram gives `NAME_bucket` and
    /// `NAME_count`).
    pub(crate) fn gives(&self, name: &str) -> bool {
        match &self.histogram {
            None => self.name == name,
            Some(_) => name
                .strip_prefix(self.name.as_str())
                .is_some_and(|rest| rest == "_bucket" || rest == "_count"),
        }
    }

    /// Its series per track: one, one per split value, or a histogram's buckets (`+Inf`
    /// included) and its count.
    pub(crate) fn width(&self) -> usize {
        match (&self.histogram, &self.split) {
            (Some(h), _) => h.les.len() + 2,
            (None, Some(s)) => s.values.len(),
            (None, None) => 1,
        }
    }
}

/// A histogram's finite bucket bounds and, for each, the share of observations at or
/// below it (never decreasing, at most 1; the rest is above the last bound).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Buckets {
    /// The bounds as the file writes them (the series' `le` labels are written as
    /// Prometheus writes them: [`crate::prom::quantile::format_le`]).
    pub(crate) les: Vec<String>,
    pub(crate) bounds: Vec<f64>,
    pub(crate) cumulative: Vec<f64>,
}

/// How a series' values arise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum SeriesKind {
    /// A counter whose events are a Poisson process at this multiple of the track's mean
    /// request rate.
    PerRequest(f64),
    /// A counter counting each event of model `parent` (an earlier model) in the same
    /// scrape interval with probability `share`.
    Of { parent: usize, share: f64 },
    /// A gauge: `mean + noise · z` at each scrape.
    Gauge(Gauge),
}

/// A counter's events split over the values of one label (a multinomial).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Split {
    pub(crate) label: String,
    pub(crate) values: Vec<String>,
    pub(crate) shares: Vec<f64>,
}

/// A fault's parameters for one modelled series at full effect (None: unchanged).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SeriesEffect {
    /// Index into the resolved models.
    pub(crate) series: usize,
    pub(crate) per_request: Option<f64>,
    pub(crate) share: Option<f64>,
    pub(crate) mean: Option<f64>,
    pub(crate) split: Option<Vec<f64>>,
    /// A histogram's shares at or below each bound.
    pub(crate) buckets: Option<Vec<f64>>,
}

/// Each given parameter of a fault's series effects: its pointer, level and healthy level.
pub(crate) type Given = Vec<(String, Option<f64>, f64)>;

/// How far from 1 a split's shares may add up (they are written as decimals).
const SPLIT_TOLERANCE: f64 = 1e-9;

/// Labels every modelled series carries, or that a histogram uses: not splittable.
const RESERVED_LABELS: [&str; 4] = ["service", "track", "le", "__name__"];

/// The models of `spec` (`baseline.series`), parents first; what is wrong goes to `f`.
pub(crate) fn models(
    spec: &IndexMap<String, SeriesSpec>,
    f: &mut Vec<Diagnostic>,
) -> Vec<SeriesModel> {
    let names: Vec<String> = spec.keys().cloned().collect();
    // Per written model: its parent's written index (for `of`), or None.
    let mut parent: Vec<Option<usize>> = vec![None; spec.len()];
    let mut ok = vec![true; spec.len()];
    for (i, (name, s)) in spec.iter().enumerate() {
        let at = format!("/baseline/series/{}", pointer::escape(name));
        if let Some(h) = &s.histogram {
            ok[i] &= check_histogram(name, s, h, &at, &names, f);
            continue;
        }
        if let Some(base) = name.strip_suffix("_bucket") {
            // A counter has no `le`: `histogram_quantile` over it would read nothing.
            ok[i] = false;
            f.push(
                Diagnostic::error(
                    "series-model",
                    at.clone(),
                    format!("`{name}` is named as a histogram's bucket counters, which a `counter` or `gauge` cannot give (they have no `le` label)"),
                )
                .at_key()
                .with_hint(format!("model the histogram instead: `{base}: {{ histogram: {{ per_request: RATIO, buckets: {{ BOUND: SHARE, ... }} }} }}` gives `{base}_bucket` and `{base}_count`")),
            );
            continue;
        }
        match (&s.counter, &s.gauge) {
            (Some(c), None) => match (c.per_request, &c.of, c.share) {
                (Some(_), None, None) => {}
                (None, Some(of), Some(_)) => match spec.get_index_of(of.as_str()) {
                    Some(p)
                        if spec[p].counter.is_none()
                            && (spec[p].gauge.is_some() || spec[p].histogram.is_some()) =>
                    {
                        ok[i] = false;
                        let other = if spec[p].gauge.is_some() {
                            "a gauge"
                        } else {
                            "a histogram"
                        };
                        f.push(
                            Diagnostic::error(
                                "series-model",
                                format!("{at}/counter/of"),
                                format!("`{name}` counts a share of `{of}`, which is {other}, not a counter"),
                            )
                            .with_hint("a counter can count a share of another counter's events only"),
                        );
                    }
                    Some(p) => parent[i] = Some(p),
                    None => {
                        ok[i] = false;
                        f.push(unknown_series(
                            of,
                            &format!("{at}/counter/of"),
                            &names,
                            false,
                        ));
                    }
                },
                (None, Some(_), None) => {
                    ok[i] = false;
                    f.push(
                        Diagnostic::error(
                            "series-model",
                            format!("{at}/counter"),
                            format!("`{name}` counts a share of another counter but says not which share"),
                        )
                        .with_hint("add `share: RATIO`: the probability that each of its events is counted here"),
                    );
                }
                _ => {
                    ok[i] = false;
                    f.push(
                        Diagnostic::error(
                            "series-model",
                            format!("{at}/counter"),
                            format!("the counter `{name}` needs either `per_request` or `of` with `share`"),
                        )
                        .with_hint("write `counter: { per_request: RATIO }` (events per request of the track) or `counter: { of: OTHER, share: RATIO }`"),
                    );
                }
            },
            (None, Some(_)) if s.split.is_some() => {
                ok[i] = false;
                f.push(
                    Diagnostic::error(
                        "series-model",
                        format!("{at}/split"),
                        format!("`{name}` is a gauge: only a counter's events can be split"),
                    )
                    .at_key()
                    .with_hint("remove `split`, or model one gauge per label value"),
                );
            }
            (None, Some(_)) => {}
            _ => {
                ok[i] = false;
                f.push(
                    Diagnostic::error(
                        "series-model",
                        at.clone(),
                        format!("the series `{name}` needs exactly one of `counter`, `gauge` and `histogram`"),
                    )
                    .with_hint("write `counter: { per_request: RATIO }`, `counter: { of: OTHER, share: RATIO }`, `gauge: { mean: LEVEL, noise: SPREAD }` or `histogram: { per_request: RATIO, buckets: { BOUND: SHARE, ... } }`"),
                );
            }
        }
        if let Some(split) = &s.split {
            check_split(split, &format!("{at}/split"), f);
        }
    }
    // Parents first; a cycle is refused at each model on it (once).
    let mut order: Vec<usize> = Vec::new();
    let mut state = vec![0u8; spec.len()]; // 0 new, 1 on the path, 2 placed
    for start in 0..spec.len() {
        let mut path = vec![start];
        while let Some(&i) = path.last() {
            if state[i] == 2 {
                path.pop();
                continue;
            }
            state[i] = 1;
            match parent[i] {
                Some(p) if state[p] == 0 => path.push(p),
                Some(p) if state[p] == 1 => {
                    let cycle: Vec<&str> = path
                        .iter()
                        .skip_while(|&&j| j != p)
                        .map(|&j| names[j].as_str())
                        .collect();
                    f.push(
                        Diagnostic::error(
                            "series-cycle",
                            format!("/baseline/series/{}/counter/of", pointer::escape(&names[i])),
                            if cycle.len() == 1 {
                                format!("the counter `{}` counts a share of itself, so it has no events to count", cycle[0])
                            } else {
                                format!(
                                    "the counters {} count shares of each other in a circle, so none of them has events to count",
                                    cycle.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" → ")
                                )
                            },
                        )
                        .with_hint("make one of them `per_request`: a chain of `of` must start at a counter of requests"),
                    );
                    for &j in &path {
                        ok[j] = false;
                        parent[j] = None;
                        state[j] = 2;
                    }
                    path.clear();
                }
                _ => {
                    state[i] = 2;
                    order.push(i);
                    path.pop();
                }
            }
        }
    }
    if ok.iter().any(|o| !o) {
        return Vec::new();
    }
    let position = |written: usize| order.iter().position(|&o| o == written).unwrap_or(0);
    order
        .iter()
        .map(|&i| {
            let (name, s) = spec.get_index(i).expect("a written model");
            let kind = match (&s.counter, &s.gauge) {
                _ if s.histogram.is_some() => {
                    SeriesKind::PerRequest(s.histogram.as_ref().map_or(0.0, |h| h.per_request.0))
                }
                (Some(c), _) => match (c.per_request, parent[i], c.share) {
                    (Some(r), _, _) => SeriesKind::PerRequest(r.0),
                    (None, Some(p), Some(share)) => SeriesKind::Of {
                        parent: position(p),
                        share: share.0,
                    },
                    _ => SeriesKind::PerRequest(0.0),
                },
                (None, Some(g)) => SeriesKind::Gauge(Gauge {
                    mean: g.mean.0,
                    noise: g.noise.map_or(g.mean.0.abs() * 0.05, |n| n.0),
                    time_constant_ms: g.time_constant.map_or(DEFAULT_TIME_CONSTANT_MS, |t| t.0),
                }),
                (None, None) => SeriesKind::PerRequest(0.0),
            };
            SeriesModel {
                name: name.clone(),
                kind,
                histogram: s
                    .histogram
                    .as_ref()
                    .and_then(|h| buckets(&h.buckets, ("", "series-model"), &mut Vec::new())),
                split: s.split.as_ref().and_then(|sp| {
                    sp.get_index(0).map(|(label, values)| Split {
                        label: label.clone(),
                        values: values.keys().cloned().collect(),
                        shares: values.values().map(|r| r.0).collect(),
                    })
                }),
            }
        })
        .collect()
}

/// Checks the histogram model `name` (`s`, at `at`): nothing else beside it, its buckets,
/// and no other model named as one of its series. Whether it is usable.
fn check_histogram(
    name: &str,
    s: &SeriesSpec,
    h: &HistogramSpec,
    at: &str,
    names: &[String],
    f: &mut Vec<Diagnostic>,
) -> bool {
    let before = f.len();
    if s.counter.is_some() || s.gauge.is_some() {
        f.push(
            Diagnostic::error(
                "series-model",
                at,
                format!(
                    "the series `{name}` needs exactly one of `counter`, `gauge` and `histogram`"
                ),
            )
            .with_hint("keep the one that describes how its values arise"),
        );
    }
    if s.split.is_some() {
        f.push(
            Diagnostic::error(
                "series-model",
                format!("{at}/split"),
                format!("`{name}` is a histogram: its series are told apart by `le` already, and a split of them is not modelled"),
            )
            .at_key()
            .with_hint("remove `split`, or model one histogram per label value"),
        );
    }
    for suffix in ["_bucket", "_count"] {
        let series = format!("{name}{suffix}");
        if names.contains(&series) {
            f.push(
                Diagnostic::error(
                    "series-model",
                    at,
                    format!(
                        "the histogram `{name}` gives `{series}`, which is also modelled on its own"
                    ),
                )
                .with_hint(format!("remove one of the two models of `{series}`")),
            );
        }
    }
    buckets(
        &h.buckets,
        (&format!("{at}/histogram/buckets"), "series-model"),
        f,
    );
    f.len() == before
}

/// The buckets written at `at`: bounds that are numbers, in increasing order, each with the
/// share of observations at or below it, never decreasing. None (and why, in `f`) when
/// they are not.
fn buckets(
    written: &IndexMap<String, Ratio>,
    (at, code): (&str, &'static str),
    f: &mut Vec<Diagnostic>,
) -> Option<Buckets> {
    let mut b = Buckets {
        les: Vec::new(),
        bounds: Vec::new(),
        cumulative: Vec::new(),
    };
    for (key, share) in written {
        let here = format!("{at}/{}", pointer::escape(key));
        let Some(bound) = key.trim().parse::<f64>().ok().filter(|v| v.is_finite()) else {
            f.push(
                Diagnostic::error(code, here, format!("the bucket bound `{key}` is not a number"))
                    .at_key()
                    .with_hint("write each bucket's upper bound (`le`) as a number, such as `0.5:`; the `+Inf` bucket is implied (the share above the last bound)"),
            );
            return None;
        };
        if let (Some(&last), Some(&below)) = (b.bounds.last(), b.cumulative.last()) {
            if bound <= last {
                f.push(
                    Diagnostic::error(
                        code,
                        here,
                        format!(
                            "the bucket bound {key} is not above the one before it ({})",
                            trim(last)
                        ),
                    )
                    .at_key()
                    .with_hint("write the bounds in increasing order, each once"),
                );
                return None;
            }
            if share.0 < below {
                f.push(
                    Diagnostic::error(
                        code,
                        here,
                        format!(
                            "{} of observations at or below {key} is less than the {} at or below {}: the shares are cumulative",
                            trim(share.0 * 100.0) + "%",
                            trim(below * 100.0) + "%",
                            trim(last)
                        ),
                    )
                    .with_hint("give each bound the share of observations at or below it (never less than the bound before's), as Prometheus' `le` buckets count"),
                );
                return None;
            }
        }
        b.les.push(key.clone());
        b.bounds.push(bound);
        b.cumulative.push(share.0);
    }
    (!b.les.is_empty()).then_some(b)
}

/// Checks one `split`: a label of its own whose shares add up to 1.
fn check_split(
    split: &IndexMap<String, IndexMap<String, Ratio>>,
    at: &str,
    f: &mut Vec<Diagnostic>,
) {
    let Some((label, values)) = split.get_index(0) else {
        return;
    };
    if RESERVED_LABELS.contains(&label.as_str()) {
        f.push(
            Diagnostic::error(
                "series-model",
                format!("{at}/{}", pointer::escape(label)),
                format!("`{label}` cannot be split on: every modelled series has its `service` and `track`, and `le` and `__name__` are Prometheus' own"),
            )
            .at_key()
            .with_hint("split on a label of the application's own, such as `type`"),
        );
    }
    let sum: f64 = values.values().map(|r| r.0).sum();
    if (sum - 1.0).abs() > SPLIT_TOLERANCE {
        f.push(
            Diagnostic::error(
                "split-shares",
                format!("{at}/{}", pointer::escape(label)),
                format!(
                    "the shares of `{label}`'s values add up to {}, not 1: each event goes to exactly one value",
                    trim(sum)
                ),
            )
            .with_hint("make them add up to 100%, for instance by adding a value for the other events"),
        );
    }
}

/// A name that is not a modelled series.
fn unknown_series(name: &str, at: &str, known: &[String], in_fault: bool) -> Diagnostic {
    let d = Diagnostic::error(
        "unknown-series",
        at,
        format!("`{name}` is not a series modelled under `baseline.series`"),
    );
    let d = if in_fault { d.at_key() } else { d };
    match nearest(name, known) {
        Some(n) => d.with_hint(format!("did you mean `{n}`?")),
        None if known.is_empty() => {
            d.with_hint("model it under `baseline:` `series:` first, as a `counter` or a `gauge`")
        }
        None => d.with_hint(format!("the modelled series: {}", known.join(", "))),
    }
}

/// The effects of a fault's `series` (at `at`) on `models`; what is wrong goes to `f`.
/// Also returns, for the "changes nothing" check, each given parameter's pointer (under
/// `at`), its level and its healthy level.
/// `written` are the names under `baseline.series` (a model refused there is not reported
/// again here).
pub(crate) fn effects(
    spec: &IndexMap<String, SeriesEffectSpec>,
    at: &str,
    (models, written): (&[SeriesModel], &[String]),
    f: &mut Vec<Diagnostic>,
) -> (Vec<SeriesEffect>, Given) {
    let known = written;
    let mut out = Vec::new();
    let mut given = Vec::new();
    for (name, e) in spec {
        let here = format!("{at}/series/{}", pointer::escape(name));
        let key = format!("series/{}", pointer::escape(name));
        let Some(i) = models.iter().position(|m| &m.name == name) else {
            if !known.contains(name) {
                f.push(unknown_series(name, &here, known, true));
            }
            continue;
        };
        let m = &models[i];
        let wrong = |param: &str, what: &str| {
            Diagnostic::error(
                    "series-effect",
                    format!("{here}/{param}"),
                    format!("`{name}` has no `{param}` to change: it is {what}"),
                )
                .at_key()
                .with_hint(match m.kind {
                    _ if m.histogram.is_some() => "a histogram's fault gives `per_request` and `buckets`",
                    SeriesKind::PerRequest(_) => "a `per_request` counter's fault gives `per_request` (and `split`, if it is split)",
                    SeriesKind::Of { .. } => "an `of` counter's fault gives `share` (and `split`, if it is split)",
                    SeriesKind::Gauge(_) => "a gauge's fault gives `mean`",
                })
        };
        let what = match m.kind {
            _ if m.histogram.is_some() => "a histogram",
            SeriesKind::PerRequest(_) => "a counter of events per request",
            SeriesKind::Of { .. } => "a counter of a share of another counter's events",
            SeriesKind::Gauge(_) => "a gauge",
        };
        let mut effect = SeriesEffect {
            series: i,
            per_request: None,
            share: None,
            mean: None,
            split: None,
            buckets: None,
        };
        match (m.kind, e.per_request) {
            (SeriesKind::PerRequest(r), Some(v)) => {
                effect.per_request = Some(v.0);
                given.push((format!("{key}/per_request"), Some(v.0), r));
            }
            (_, Some(_)) => f.push(wrong("per_request", what)),
            _ => {}
        }
        match (m.kind, e.share) {
            (SeriesKind::Of { share, .. }, Some(v)) => {
                effect.share = Some(v.0);
                given.push((format!("{key}/share"), Some(v.0), share));
            }
            (_, Some(_)) => f.push(wrong("share", what)),
            _ => {}
        }
        match (m.kind, e.mean) {
            (SeriesKind::Gauge(g), Some(v)) => {
                effect.mean = Some(v.0);
                given.push((format!("{key}/mean"), Some(v.0), g.mean));
            }
            (_, Some(_)) => f.push(wrong("mean", what)),
            _ => {}
        }
        if let Some(split) = &e.split {
            match &m.split {
                None => f.push(wrong("split", "not split")),
                Some(s) => {
                    check_split(split, &format!("{here}/split"), f);
                    let same = split
                        .get_index(0)
                        .is_some_and(|(l, v)| *l == s.label && v.keys().eq(s.values.iter()));
                    if same {
                        let shares: Vec<f64> = split[0].values().map(|r| r.0).collect();
                        for ((v, &level), &healthy) in s.values.iter().zip(&shares).zip(&s.shares) {
                            given.push((
                                format!(
                                    "{key}/split/{}/{}",
                                    pointer::escape(&s.label),
                                    pointer::escape(v)
                                ),
                                Some(level),
                                healthy,
                            ));
                        }
                        effect.split = Some(shares);
                    } else {
                        f.push(
                            Diagnostic::error(
                                "series-effect",
                                format!("{here}/split"),
                                format!(
                                    "a fault's split of `{name}` must give the same label and values as its model: `{}` with {}",
                                    s.label,
                                    s.values.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")
                                ),
                            )
                            .with_hint("give every value of the model's split its share at the fault's full effect, in the same order"),
                        );
                    }
                }
            }
        }
        if let Some(written) = &e.buckets {
            match &m.histogram {
                None => f.push(wrong("buckets", what)),
                Some(h) => {
                    let here = format!("{here}/buckets");
                    if let Some(b) = buckets(written, (&here, "series-effect"), f) {
                        if b.bounds == h.bounds {
                            for ((le, &level), &healthy) in
                                b.les.iter().zip(&b.cumulative).zip(&h.cumulative)
                            {
                                given.push((
                                    format!("{key}/buckets/{}", pointer::escape(le)),
                                    Some(level),
                                    healthy,
                                ));
                            }
                            effect.buckets = Some(b.cumulative);
                        } else {
                            f.push(
                                Diagnostic::error(
                                    "series-effect",
                                    here,
                                    format!(
                                        "a fault's buckets of `{name}` must have the same bounds as its model: {}",
                                        h.les.join(", ")
                                    ),
                                )
                                .with_hint("give every bound of the model its share at or below it at the fault's full effect, in the same order"),
                            );
                        }
                    }
                }
            }
        }
        out.push(effect);
    }
    (out, given)
}
