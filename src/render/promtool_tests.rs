//! `prometheus/<phase>.test.yml`: `promtool test rules` unit tests of a phase's rules,
//! generated so that they prove every alert fires exactly when the lowered rule says, and
//! not one evaluation before.
//!
//! For each lowered alert rule one test group feeds series that are healthy for a while
//! and then cross the rule's threshold clearly (no-data rules: the traffic stops, or the
//! series stop being reported). The expected firing evaluation is not guessed: this module
//! evaluates the rule's metric on those very series with Prometheus 2.42's semantics (the
//! simulator's [`crate::prom`] primitives: range selection, `rate` extrapolation,
//! `histogram_quantile`, the alert state machine) and the rule's lowered
//! [`Condition`](crate::lower::Condition), then expects no alert one evaluation before the
//! first firing one and the alert, with its exact labels and annotations, at it. The
//! summary prints the alert's value, so the expected one holds the value the evaluator
//! computed at that evaluation, formatted as Prometheus' template functions format it
//! ([`super::humanize`]): for a comparison (absolute or relative to stable) the canary's
//! value, the left-hand side PromQL keeps; a no-data summary prints none. Each test
//! also checks the recorded value of the metric at both evaluations, so a drift between the
//! evaluator and Prometheus fails the test rather than moving it. One more group feeds
//! healthy series for every metric and expects no alert at all.
//!
//! The evaluator is the crate's one raw-series evaluator, [`crate::prom::query`]
//! (proven bit for bit against promtool by the replay's proof tests): each scenario's
//! series are [`crate::prom::Series`], each metric's query selects its series once.
//!
//! The phases' rules differ only in the phase an alert names, so the tests are computed
//! once per plan ([`Tests::new`]); each phase's file ([`Tests::body`]) adds that phase's
//! expected labels and annotations and stays self-contained (serialised once and stamped
//! per phase by [`super::prometheus::per_phase`]).
//!
//! Series: built-in metrics get the raw series their default queries read
//! (`http_requests_total{code}`, `http_request_duration_seconds_bucket{le}`, gauges, CPU
//! counters), sampled every minute (finer when the rate window is under 4m, coarser when
//! it is so long that a window would near promtool's 10,000-sample query limit). Custom
//! metrics get their recorded series directly: their query has no input series in the
//! test, so its recording rule records nothing and cannot clash with the fed samples.
//!
//! Levels are chosen per *signal* (request count, error share, each metric's own value),
//! so that metrics computed from the same series (error rate and availability) agree, and
//! clear of every threshold; values near a threshold at any evaluation are avoided so that
//! no comparison hinges on the last bit of a float.

use super::alerting::{float_literal, record_selector, recorded, rule_labels};
use super::annotations::annotations;
use super::header;
use crate::check::{Builtin, CheckedPlan};
use crate::lower::{AlertRule, Condition, Rhs};
use crate::model::{Duration, Op, Unit};
use crate::prom::Query;
use crate::prom::Series;
use crate::prom::{self, AlertState, Sample, Semantics};
use crate::promql::{MatchOp, Matcher, MetricExpr, Selector, Track};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::rc::Rc;

/// promtool here is 2.42.
const SEM: Semantics = Semantics::Prometheus2;

/// The memory limit given to gauge-ratio metrics' denominators (1 GiB).
const LIMIT: f64 = 1_073_741_824.0;

/// Relative distance from a threshold under which a value is considered too close to
/// decide the comparison robustly.
const MARGIN: f64 = 1e-9;

/// Factors applied to the distance between a threshold and the bad level when a first
/// choice puts some evaluation too close to the threshold.
const NUDGES: [f64; 5] = [1.0, 1.1, 0.9, 1.3, 0.7];

#[derive(Serialize)]
struct TestFile<'a> {
    rule_files: Vec<String>,
    evaluation_interval: String,
    tests: Vec<TestGroup<'a>>,
}

#[derive(Serialize)]
struct TestGroup<'a> {
    name: &'a str,
    interval: &'a str,
    input_series: &'a [InputSeries],
    alert_rule_test: Vec<AlertTest<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    promql_expr_test: &'a [ExprTest],
}

#[derive(Serialize)]
struct InputSeries {
    series: String,
    values: String,
}

#[derive(Serialize)]
struct AlertTest<'a> {
    eval_time: &'a str,
    alertname: &'a str,
    exp_alerts: &'a [ExpAlert],
}

#[derive(Serialize)]
struct ExpAlert {
    exp_labels: BTreeMap<String, String>,
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct ExprTest {
    expr: String,
    eval_time: String,
    exp_samples: Vec<ExpSample>,
}

#[derive(Serialize)]
struct ExpSample {
    labels: String,
    value: f64,
}

/// One test group, phase apart: its alert checks name rules, whose expected alert each
/// phase fills in.
struct Group {
    name: String,
    interval: String,
    input_series: Vec<InputSeries>,
    checks: Vec<Check>,
    promql_expr_test: Vec<ExprTest>,
}

/// An `alert_rule_test` case: rule `rule` (an index into the rules) at `eval_time`,
/// firing (with the alert's value then, which its summary prints) or silent.
struct Check {
    eval_time: String,
    rule: usize,
    fires: Option<f64>,
}

/// The promtool unit tests of a plan's rules, computed once for every phase.
pub struct Tests<'a> {
    plan: &'a CheckedPlan,
    rules: &'a [AlertRule],
    groups: Vec<Group>,
    /// Rules (or the healthy group) left untested, and why.
    notes: Vec<String>,
}

impl<'a> Tests<'a> {
    /// Generates one test group per rule and the healthy group.
    pub fn new(plan: &'a CheckedPlan, rules: &'a [AlertRule]) -> Tests<'a> {
        let g = Gen::new(plan, rules);
        let mut groups = Vec::new();
        let mut notes = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            match g.rule_test(i) {
                Ok(t) => groups.push(t),
                Err(why) => notes.push(format!("{}: not tested: {why}", r.alert)),
            }
        }
        match g.healthy_test() {
            Ok(t) => groups.push(t),
            Err(why) => notes.push(format!("healthy series: not tested: {why}")),
        }
        Tests {
            plan,
            rules,
            groups,
            notes,
        }
    }

    /// How many times [`Tests::body`] writes the phase (see [`super::prometheus::per_phase`]):
    /// in the rules file's name, and in the labels and the description of every expected
    /// alert.
    pub fn places(&self) -> usize {
        1 + 2 * self
            .groups
            .iter()
            .flat_map(|g| &g.checks)
            .filter(|c| c.fires.is_some())
            .count()
    }

    /// The comment lines opening the unit-test file of phase `phase`.
    pub fn header(&self, phase: &str) -> String {
        let plan = self.plan;
        let custom: Vec<&str> = recorded(plan, self.rules)
            .iter()
            .filter(|(mi, t)| *t == Track::Canary && !plan.metrics[*mi].expr.is_structured())
            .map(|(mi, _)| plan.metrics[*mi].name.as_str())
            .collect();
        let mut s = header(plan, "#");
        s.push_str(&format!(
            "# promtool unit tests of {phase}.rules.yml: `promtool test rules {phase}.test.yml`.\n\
             # One test per alert: its series are healthy, then cross the rule's threshold (no-data\n\
             # rules: traffic stops or the series end). The firing evaluation was computed with\n\
             # Prometheus 2.42's semantics from the same lowered rule: no alert one evaluation\n\
             # before it, the alert with its exact labels and annotations at it, and the recorded\n\
             # value at both. A last test feeds healthy series and expects no alert.\n"
        ));
        if !custom.is_empty() {
            s.push_str(&format!(
                "# Custom metrics are fed as their recorded series: their queries have no input\n\
                 # series here, so their recording rules record nothing and cannot clash.\n\
                 # Custom metrics: {}.\n",
                custom.join(", ")
            ));
        }
        for n in &self.notes {
            s.push_str(&format!("# {n}\n"));
        }
        s
    }

    /// The YAML of the unit-test file of phase `phase` (its name), testing the sibling
    /// file `<phase>.rules.yml`.
    pub fn body(&self, phase: &str) -> String {
        let plan = self.plan;
        // Only firing checks need their expected alert.
        let expected: Vec<Vec<Option<ExpAlert>>> = self
            .groups
            .iter()
            .map(|g| {
                g.checks
                    .iter()
                    .map(|c| {
                        c.fires
                            .map(|v| expected_alert(plan, &self.rules[c.rule], phase, v))
                    })
                    .collect()
            })
            .collect();
        let tests = self
            .groups
            .iter()
            .zip(&expected)
            .map(|(g, exp)| TestGroup {
                name: &g.name,
                interval: &g.interval,
                input_series: &g.input_series,
                alert_rule_test: g
                    .checks
                    .iter()
                    .zip(exp)
                    .map(|(c, e)| AlertTest {
                        eval_time: &c.eval_time,
                        alertname: &self.rules[c.rule].alert,
                        exp_alerts: e.as_slice(),
                    })
                    .collect(),
                promql_expr_test: &g.promql_expr_test,
            })
            .collect();
        let file = TestFile {
            rule_files: vec![format!("{phase}.rules.yml")],
            evaluation_interval: plan.monitoring.evaluation_interval.to_string(),
            tests,
        };
        super::yaml::to_string(&file).unwrap_or_default()
    }
}

/// The firing alert of `r` in phase `phase` whose value is `value`: the series' labels
/// (plan, service, track) and the rule's, and the annotations as Prometheus renders them.
fn expected_alert(plan: &CheckedPlan, r: &AlertRule, phase: &str, value: f64) -> ExpAlert {
    let mut labels: BTreeMap<String, String> = BTreeMap::from([
        ("plan".to_string(), plan.name.clone()),
        ("service".to_string(), plan.service.name.clone()),
        ("track".to_string(), Track::Canary.as_str().to_string()),
    ]);
    for (k, v) in rule_labels(plan, r, phase) {
        labels.insert(k.to_string(), v);
    }
    ExpAlert {
        exp_labels: labels,
        exp_annotations: annotations(plan, r, phase)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.expand(value)))
            .collect(),
    }
}

/// The series of one scenario, in Prometheus' order (as promtool creates them, so sums
/// add up in the same order), and how many sample slots each has (one per `step`; a
/// slot without a sample is written `_`).
struct Fed {
    series: Vec<Series>,
    slots: usize,
}

impl Fed {
    /// Keeps the samples at or before `t`.
    fn truncate(&mut self, t: i64, step: i64) {
        self.slots = self.slots.min((t / step + 1).max(0) as usize);
        for s in &mut self.series {
            s.samples.retain(|x| x.t <= t);
        }
    }

    /// The `input_series` of a test.
    fn input(&self, step: i64) -> Vec<InputSeries> {
        self.series
            .iter()
            .map(|s| InputSeries {
                series: promql(s),
                values: notation(&slots(s, step, self.slots)),
            })
            .collect()
    }
}

/// A series built from one value per sample slot (`None`: no sample).
fn new_series(
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
fn slots(s: &Series, step: i64, n: usize) -> Vec<Option<f64>> {
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
fn key(s: &Series) -> Vec<(&str, &str)> {
    let mut k: Vec<(&str, &str)> = s
        .labels
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    k.push(("__name__", s.name.as_str()));
    k.sort();
    k
}

/// The series' selector, for `input_series`.
fn promql(s: &Series) -> String {
    Selector {
        metric: s.name.clone(),
        matchers: s
            .labels
            .iter()
            .map(|(l, v)| Matcher {
                label: l.clone(),
                op: MatchOp::Eq,
                value: v.clone(),
            })
            .collect(),
    }
    .promql("")
}

/// What a level in a test drives: the request count per sample interval, the share of
/// requests failing, or one metric's own value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Signal {
    Requests,
    ErrorShare,
    Own(usize),
}

/// How a metric's value relates to its signal.
#[derive(Debug, Clone, Copy)]
enum Map {
    Id,
    OneMinus,
    Scale(f64),
}

impl Map {
    fn to_signal(self, x: f64) -> f64 {
        match self {
            Map::Id => x,
            Map::OneMinus => 1.0 - x,
            Map::Scale(k) => x * k,
        }
    }

    fn to_metric(self, s: f64) -> f64 {
        match self {
            Map::Id => s,
            Map::OneMinus => 1.0 - s,
            Map::Scale(k) => s / k,
        }
    }

    fn increasing(self) -> bool {
        !matches!(self, Map::OneMinus)
    }
}

type Levels = BTreeMap<Signal, f64>;

/// One sample interval of one track: the levels, whether requests flow, whether the
/// service is scraped at all.
#[derive(Debug, Clone)]
struct Frame {
    /// Shared: a scenario repeats the same frame for every interval.
    levels: Rc<Levels>,
    traffic: bool,
    reporting: bool,
}

/// The healthy side of a signal: `lo < s < hi`.
#[derive(Debug, Clone, Copy)]
struct Bound {
    lo: f64,
    hi: f64,
}

struct Gen<'a> {
    plan: &'a CheckedPlan,
    rules: &'a [AlertRule],
    step: i64,
    ei: i64,
    window: i64,
}

/// One scenario's outcome: the series and the first firing evaluation.
struct Run {
    fed: Fed,
    fire: i64,
}

impl<'a> Gen<'a> {
    fn new(plan: &'a CheckedPlan, rules: &'a [AlertRule]) -> Gen<'a> {
        let window = plan.monitoring.window.millis() as i64;
        // One sample a minute; at least four per window (rate needs two); at most about
        // a thousand per window (promtool refuses queries over 10,000 samples).
        let mut step = 60_000;
        if window < 4 * step {
            step = (window / 4 / 1000 * 1000).max(1000);
        } else if window / step > 1000 {
            step = ceil_to(window / 1000, 60_000);
        }
        Gen {
            plan,
            rules,
            step,
            ei: plan.monitoring.evaluation_interval.millis() as i64,
            window,
        }
    }

    fn step_s(&self) -> f64 {
        self.step as f64 / 1000.0
    }

    fn signal(&self, mi: usize) -> (Signal, Map) {
        let m = &self.plan.metrics[mi];
        match (m.builtin, m.expr.is_structured()) {
            (Some(Builtin::ErrorRate), true) => (Signal::ErrorShare, Map::Id),
            (Some(Builtin::Availability), true) => (Signal::ErrorShare, Map::OneMinus),
            (Some(Builtin::Throughput), true) => (Signal::Requests, Map::Scale(self.step_s())),
            _ => (Signal::Own(mi), Map::Id),
        }
    }

    fn domain(&self, s: Signal) -> Bound {
        let ratio = Bound { lo: 0.0, hi: 1.0 };
        let open = Bound {
            lo: 0.0,
            hi: f64::INFINITY,
        };
        match s {
            Signal::ErrorShare => ratio,
            Signal::Requests => open,
            // CPU is a share of one core: a busy process uses several.
            Signal::Own(mi) if self.plan.metrics[mi].builtin == Some(Builtin::CpuUsage) => open,
            Signal::Own(mi) if self.plan.metrics[mi].unit == Unit::Ratio => ratio,
            Signal::Own(_) => open,
        }
    }

    /// A realistic healthy value, used when it satisfies every rule.
    fn typical(&self, s: Signal) -> f64 {
        match s {
            Signal::ErrorShare => 0.01,
            Signal::Requests => 1000.0,
            Signal::Own(mi) => match self.plan.metrics[mi].unit {
                Unit::Ratio => 0.5,
                Unit::Milliseconds => 200.0,
                Unit::Seconds => 0.2,
                Unit::Bytes => 1e8,
                Unit::Count => 10.0,
                Unit::PerSecond => 10.0,
            },
        }
    }

    /// The metric indices a test of `metrics` feeds, with the signals they need.
    fn signals_of(&self, metrics: &[usize]) -> Vec<Signal> {
        let mut v: Vec<Signal> = metrics.iter().map(|&mi| self.signal(mi).0).collect();
        // Request metrics need a request count; a latency histogram needs one too.
        if metrics
            .iter()
            .any(|&mi| self.plan.metrics[mi].expr.is_structured())
        {
            v.push(Signal::Requests);
            v.push(Signal::ErrorShare);
        }
        v.sort();
        v.dedup();
        v
    }

    /// The threshold of a comparison rule in its signal's space and whether high is bad
    /// there; `stable` is the stable track's levels (for relative thresholds).
    fn threshold(&self, r: &AlertRule, stable: &Levels) -> Option<(f64, bool)> {
        let Condition::Compare { op, rhs } = r.condition else {
            return None;
        };
        let (sig, map) = self.signal(r.metric);
        let high_bad = matches!(op, Op::Gt | Op::Ge);
        let t = match rhs {
            Rhs::Value(v) => v,
            // Past both: the stable's multiple and the floor.
            Rhs::StableTimes { factor, also } => {
                let t = factor * map.to_metric(*stable.get(&sig)?);
                match also {
                    Some((_, v)) if high_bad => t.max(v),
                    Some((_, v)) => t.min(v),
                    None => t,
                }
            }
        };
        Some((map.to_signal(t), high_bad == map.increasing()))
    }

    /// The healthy range of `sig` given every comparison rule on a metric it drives;
    /// relative rules count only when `stable` is given.
    fn bound(&self, sig: Signal, stable: Option<&Levels>) -> Bound {
        let mut b = self.domain(sig);
        let no_levels = Levels::new();
        for r in self.rules {
            if self.signal(r.metric).0 != sig {
                continue;
            }
            let st = match (r.condition.uses_stable(), stable) {
                (true, None) => continue,
                (true, Some(s)) => s,
                (false, _) => &no_levels,
            };
            if let Some((t, high_bad)) = self.threshold(r, st) {
                if high_bad {
                    b.hi = b.hi.min(t);
                } else {
                    b.lo = b.lo.max(t);
                }
            }
        }
        b
    }

    fn healthy_value(&self, sig: Signal, b: Bound) -> Option<f64> {
        if b.lo >= b.hi || b.lo.is_nan() || b.hi.is_nan() {
            return None;
        }
        let typ = self.typical(sig);
        let inside = |v: f64| v > b.lo && v < b.hi && !near(v, b.lo) && !near(v, b.hi);
        let v = if inside(typ) {
            typ
        } else if b.hi.is_finite() {
            round_within((b.lo + b.hi) / 2.0, &inside)
        } else if b.lo > 0.0 {
            round_within(b.lo * 2.0, &inside)
        } else {
            round_within(b.lo + 1.0, &inside)
        };
        inside(v).then_some(v)
    }

    /// Healthy levels of every signal the given metrics need, for both tracks.
    fn healthy(&self, metrics: &[usize]) -> Result<(Levels, Levels), String> {
        let sigs = self.signals_of(metrics);
        let mut stable = Levels::new();
        for &s in &sigs {
            let v = self
                .healthy_value(s, self.bound(s, None))
                .ok_or_else(|| format!("no {} level satisfies every rule", self.signal_name(s)))?;
            stable.insert(s, v);
        }
        let mut canary = Levels::new();
        for &s in &sigs {
            let v = self
                .healthy_value(s, self.bound(s, Some(&stable)))
                .ok_or_else(|| {
                    format!(
                        "no canary {} level satisfies every rule",
                        self.signal_name(s)
                    )
                })?;
            canary.insert(s, v);
        }
        Ok((canary, stable))
    }

    fn signal_name(&self, s: Signal) -> String {
        match s {
            Signal::Requests => "request-count".into(),
            Signal::ErrorShare => "error-share".into(),
            Signal::Own(mi) => format!("`{}`", self.plan.metrics[mi].name),
        }
    }

    /// A level clearly on the bad side of the threshold `t` (in signal space).
    fn bad_value(&self, sig: Signal, t: f64, high_bad: bool, nudge: f64) -> Option<f64> {
        let d = self.domain(sig);
        let v = if high_bad {
            let mut c = if t > 0.0 { t * 2.0 } else { t.abs() + 1.0 };
            if d.hi.is_finite() {
                c = c.min((t + d.hi) / 2.0);
            }
            t + (c - t) * nudge
        } else {
            if t <= d.lo {
                return None;
            }
            t - (t - t / 2.0) * nudge
        };
        let ok = |v: f64| {
            (if high_bad { v > t } else { v < t }) && v >= d.lo && v <= d.hi && !near(v, t)
        };
        let v = round_within(v, &ok);
        ok(v).then_some(v)
    }

    // ----- series -----

    /// The series a set of metrics reads, for one track, from its frames.
    fn series(&self, metrics: &[usize], track: Track, frames: &[Frame], les: &Les) -> Vec<Series> {
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
                    add(new_series(
                        &crate::lower::record_name(m),
                        labels,
                        vals,
                        self.step,
                    ));
                }
                MetricExpr::RateRatio { den: sel, .. } | MetricExpr::Rate { sel, .. } => {
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
    fn les(&self, metrics: &[usize], frames: &[&[Frame]]) -> Result<Les, String> {
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

    // ----- evaluation -----

    /// Metric `mi`'s query for `track` over `series`, as its recording rule computes it (a
    /// custom metric is fed as its recorded series): its series are selected once here.
    fn query(&self, mi: usize, track: Track, series: &[Series]) -> Query {
        let m = &self.plan.metrics[mi];
        match &m.expr {
            MetricExpr::Custom(_) => {
                let name = crate::lower::record_name(m);
                series
                    .iter()
                    .position(|s| s.name == name && s.label("track") == track.as_str())
                    .map_or_else(Query::absent, Query::recorded)
            }
            e => Query::raw(e, track, series),
        }
    }

    /// The value of metric `mi` for `track` at `ts` alone, as its recording rule records it.
    fn value(&self, mi: usize, track: Track, ts: i64, series: &[Series]) -> Option<f64> {
        self.query(mi, track, series).at(series, ts, SEM)
    }

    /// Runs rule `r` over the series at every evaluation up to `end`, returning the first
    /// evaluation at or after `from` where it starts firing (and evaluating no further);
    /// `Err` when some evaluation is too close to the threshold.
    fn first_firing(
        &self,
        r: &AlertRule,
        series: &[Series],
        from: i64,
        end: i64,
    ) -> Result<Option<i64>, String> {
        let mut state = AlertState::new(prom::AlertRule {
            for_ms: r.for_ms as i64,
            keep_firing_for_ms: 0,
        });
        let mut canary_q = self.query(r.metric, Track::Canary, series);
        let mut stable_q = r
            .condition
            .uses_stable()
            .then(|| self.query(r.metric, Track::Stable, series));
        let mut prev_firing = false;
        let mut ts = 0;
        while ts <= end {
            let canary = canary_q.at(series, ts, SEM);
            let stable = stable_q.as_mut().and_then(|q| q.at(series, ts, SEM));
            if let (Condition::Compare { rhs, .. }, Some(c)) = (r.condition, canary) {
                let (t, floor) = match rhs {
                    Rhs::Value(v) => (Some(v), None),
                    Rhs::StableTimes { factor, also } => {
                        (stable.map(|s| factor * s), also.map(|(_, v)| v))
                    }
                };
                let close = |t: f64| c.is_finite() && t.is_finite() && near(c, t);
                if t.is_some_and(close) || floor.is_some_and(close) {
                    return Err(format!(
                        "the value at {} is too close to the threshold",
                        dur(ts)
                    ));
                }
            }
            let st = state.step(ts, r.condition.holds(canary, stable));
            let firing = st.is_firing();
            if firing && !prev_firing && ts >= from {
                return Ok(Some(ts));
            }
            prev_firing = firing;
            ts += self.ei;
        }
        Ok(None)
    }

    // ----- tests -----

    /// When the scenario starts: every window is full of healthy samples by then.
    fn switch_at(&self) -> i64 {
        let t = self.window + 5 * self.step.max(self.ei);
        ceil_to(t, self.step)
    }

    /// How long a scenario runs at most past its switch.
    fn horizon(&self, r: &AlertRule) -> i64 {
        self.switch_at()
            + 2 * self.window
            + r.for_ms as i64
            + prom::DEFAULT_LOOKBACK_MS
            + 5 * self.step.max(self.ei)
    }

    fn frames(&self, healthy: &Levels, until: i64, after: Option<&Frame>, end: i64) -> Vec<Frame> {
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

    /// Builds the series of a scenario in which the canary turns into `bad` at the switch
    /// (the stable stays healthy), and finds when `r` first fires.
    fn scenario(
        &self,
        r: &AlertRule,
        canary: &Levels,
        stable: &Levels,
        bad: Frame,
    ) -> Result<Run, String> {
        let metrics = [r.metric];
        let sw = self.switch_at();
        let end = self.horizon(r);
        let cf = self.frames(canary, sw, Some(&bad), end);
        let sf = self.frames(stable, sw, None, end);
        let les = self.les(&metrics, &[&cf, &sf])?;
        let mut series = self.series(&metrics, Track::Canary, &cf, &les);
        if r.condition.uses_stable() {
            series.extend(self.series(&metrics, Track::Stable, &sf, &les));
        }
        series.sort_by(|a, b| key(a).cmp(&key(b)));
        self.check_levels(r.metric, canary, &series, sw, Track::Canary)?;
        if r.condition.uses_stable() {
            self.check_levels(r.metric, stable, &series, sw, Track::Stable)?;
        }
        match self.first_firing(r, &series, sw, end)? {
            Some(fire) if fire >= self.ei => Ok(Run {
                fed: Fed {
                    series,
                    slots: cf.len(),
                },
                fire,
            }),
            Some(_) => Err("it fires at the first evaluation".into()),
            None => Err(format!("it does not fire within {}", dur(end))),
        }
    }

    /// Checks that, just before the switch, the evaluated metric is the level the series
    /// were built for: the generator and the metric's query agree.
    fn check_levels(
        &self,
        mi: usize,
        levels: &Levels,
        series: &[Series],
        sw: i64,
        track: Track,
    ) -> Result<(), String> {
        let (sig, map) = self.signal(mi);
        let want = map.to_metric(levels[&sig]);
        let ts = (sw - 1) / self.ei * self.ei;
        let got = self.value(mi, track, ts, series);
        match got {
            Some(g) if (g - want).abs() <= 1e-9 * want.abs().max(1e-9) => Ok(()),
            _ => Err(format!(
                "the series built for `{}` = {want} evaluate to {got:?}",
                self.plan.metrics[mi].name
            )),
        }
    }

    /// The test group of rule `ri`.
    fn rule_test(&self, ri: usize) -> Result<Group, String> {
        let r = &self.rules[ri];
        let (canary, stable) = self.healthy(&[r.metric])?;
        let (sig, _) = self.signal(r.metric);
        let (run, what) = match r.condition {
            Condition::Compare { .. } => {
                let (t, high_bad) = self
                    .threshold(r, &stable)
                    .ok_or("no threshold in signal space")?;
                let mut last = String::from("no bad level");
                let mut found = None;
                for nudge in NUDGES {
                    let Some(b) = self.bad_value(sig, t, high_bad, nudge) else {
                        continue;
                    };
                    let mut levels = canary.clone();
                    levels.insert(sig, b);
                    let frame = Frame {
                        levels: Rc::new(levels),
                        traffic: true,
                        reporting: true,
                    };
                    match self.scenario(r, &canary, &stable, frame) {
                        Ok(run) => {
                            found = Some(run);
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                (found.ok_or(last)?, "crosses the threshold")
            }
            Condition::Missing => {
                let stop = Frame {
                    levels: Rc::new(canary.clone()),
                    traffic: false,
                    reporting: true,
                };
                let gone = Frame {
                    levels: Rc::new(canary.clone()),
                    traffic: true,
                    reporting: false,
                };
                let structured = self.plan.metrics[r.metric].expr.is_structured();
                match structured
                    .then(|| self.scenario(r, &canary, &stable, stop))
                    .and_then(Result::ok)
                {
                    Some(run) => (run, "gets no traffic"),
                    None => (
                        self.scenario(r, &canary, &stable, gone)?,
                        "stops being reported",
                    ),
                }
            }
        };
        let Run { mut fed, fire } = run;
        fed.truncate(fire, self.step);
        let before = fire - self.ei;
        let name = format!(
            "{}: the canary {what} at {}; the alert fires at {}, not at {}",
            r.alert,
            dur(self.switch_at()),
            dur(fire),
            dur(before)
        );
        let mut exprs = Vec::new();
        if self.plan.metrics[r.metric].expr.is_structured() {
            for ts in [before, fire] {
                exprs.push(self.expr_test(r.metric, Track::Canary, ts, &fed.series));
                if r.condition.uses_stable() {
                    exprs.push(self.expr_test(r.metric, Track::Stable, ts, &fed.series));
                }
            }
            exprs.retain(|e| e.exp_samples.iter().all(|s| !s.value.is_nan()));
        }
        // The alert's value: a comparison keeps the canary's (its left-hand side); a
        // no-data alert's (1 or NaN) is printed nowhere.
        let value = match r.condition {
            Condition::Compare { .. } => self
                .value(r.metric, Track::Canary, fire, &fed.series)
                .unwrap_or(f64::NAN),
            Condition::Missing => f64::NAN,
        };
        Ok(Group {
            name,
            interval: dur(self.step),
            input_series: fed.input(self.step),
            checks: vec![
                Check {
                    eval_time: dur(before),
                    rule: ri,
                    fires: None,
                },
                Check {
                    eval_time: dur(fire),
                    rule: ri,
                    fires: Some(value),
                },
            ],
            promql_expr_test: exprs,
        })
    }

    /// The recorded value of `mi` for `track` at `ts`, as promtool must compute it.
    fn expr_test(&self, mi: usize, track: Track, ts: i64, series: &[Series]) -> ExprTest {
        let sel = record_selector(self.plan, mi, track);
        ExprTest {
            expr: sel.clone(),
            eval_time: dur(ts),
            exp_samples: self
                .value(mi, track, ts, series)
                .map(|v| ExpSample {
                    labels: sel,
                    value: v,
                })
                .into_iter()
                .collect(),
        }
    }

    /// Healthy series for every watched metric: no alert at any of three checkpoints
    /// (rate windows full, every `for` elapsed, one window later).
    fn healthy_test(&self) -> Result<Group, String> {
        let mut metrics: Vec<usize> = self.rules.iter().map(|r| r.metric).collect();
        metrics.sort_unstable();
        metrics.dedup();
        let fed: Vec<&str> = metrics
            .iter()
            .filter_map(|&mi| match &self.plan.metrics[mi].expr {
                MetricExpr::RateRatio { den: s, .. }
                | MetricExpr::Rate { sel: s, .. }
                | MetricExpr::AvgRate { sel: s, .. }
                | MetricExpr::GaugeSum { sel: s }
                | MetricExpr::Quantile { sel: s, .. } => Some(s.metric.as_str()),
                MetricExpr::GaugeRatioMax { num, .. } => Some(num.metric.as_str()),
                MetricExpr::Custom(_) => None,
            })
            .collect();
        // A custom query reading series fed here would record over the fed samples.
        metrics.retain(|&mi| match &self.plan.metrics[mi].expr {
            MetricExpr::Custom(q) => !fed.iter().any(|f| q.contains(f)),
            _ => true,
        });
        let rules: Vec<usize> = (0..self.rules.len())
            .filter(|&ri| metrics.contains(&self.rules[ri].metric))
            .collect();
        if rules.is_empty() {
            return Err("no rule".into());
        }
        let (canary, stable) = self.healthy(&metrics)?;
        let max_for = rules
            .iter()
            .map(|&ri| self.rules[ri].for_ms as i64)
            .max()
            .unwrap_or(0);
        let up = |t: i64| ceil_to(t, self.ei);
        let t1 = up(self.window + 2 * self.step.max(self.ei));
        let t2 = up(t1 + max_for + self.ei);
        let t3 = up(t2 + self.window);
        let cf = self.frames(&canary, 0, None, t3);
        let sf = self.frames(&stable, 0, None, t3);
        let les = self.les(&metrics, &[&cf, &sf])?;
        let mut series = self.series(&metrics, Track::Canary, &cf, &les);
        let relative: Vec<usize> = metrics
            .iter()
            .copied()
            .filter(|&mi| {
                rules.iter().any(|&ri| {
                    self.rules[ri].metric == mi && self.rules[ri].condition.uses_stable()
                })
            })
            .collect();
        series.extend(self.series(&relative, Track::Stable, &sf, &les));
        series.sort_by(|a, b| key(a).cmp(&key(b)));
        for &mi in &metrics {
            self.check_levels(mi, &canary, &series, t1, Track::Canary)?;
        }
        for &ri in &rules {
            let r = &self.rules[ri];
            // From t1 on no condition may hold at all.
            let mut cq = self.query(r.metric, Track::Canary, &series);
            let mut sq = self.query(r.metric, Track::Stable, &series);
            let mut ts = t1;
            while ts <= t3 {
                let c = cq.at(&series, ts, SEM);
                let s = sq.at(&series, ts, SEM);
                if r.condition.holds(c, s) {
                    return Err(format!("{} holds at {}", r.alert, dur(ts)));
                }
                ts += self.ei;
            }
            if self.first_firing(r, &series, t1, t3)?.is_some() {
                return Err(format!("{} fires", r.alert));
            }
        }
        let mut checks = Vec::new();
        for ts in [t1, t2, t3] {
            for &ri in &rules {
                checks.push(Check {
                    eval_time: dur(ts),
                    rule: ri,
                    fires: None,
                });
            }
        }
        let exprs = recorded(self.plan, self.rules)
            .into_iter()
            .filter(|(mi, _)| metrics.contains(mi) && self.plan.metrics[*mi].expr.is_structured())
            .map(|(mi, t)| self.expr_test(mi, t, t3, &series))
            .filter(|e| e.exp_samples.iter().all(|s| !s.value.is_nan()))
            .collect();
        let fed = Fed {
            series,
            slots: cf.len(),
        };
        Ok(Group {
            name: format!(
                "healthy series: no alert at {}, {} or {}",
                dur(t1),
                dur(t2),
                dur(t3)
            ),
            interval: dur(self.step),
            input_series: fed.input(self.step),
            checks,
            promql_expr_test: exprs,
        })
    }
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

/// `v` with as few significant digits as keep it `ok` and within 5% of `v` (`v` itself if
/// none do): round levels make readable series, and nudged levels stay apart.
fn round_within(v: f64, ok: &dyn Fn(f64) -> bool) -> f64 {
    (1..=17)
        .filter_map(|digits| format!("{v:.*e}", digits - 1).parse::<f64>().ok())
        .find(|r| ok(*r) && (r - v).abs() <= 0.05 * v.abs())
        .unwrap_or(v)
}

/// `t` rounded up to a multiple of `m` (both positive).
fn ceil_to(t: i64, m: i64) -> i64 {
    (t + m - 1) / m * m
}

/// Whether `a` is within the relative [`MARGIN`] of `b`.
fn near(a: f64, b: f64) -> bool {
    if !a.is_finite() || !b.is_finite() {
        return false;
    }
    (a - b).abs() <= MARGIN * b.abs().max(a.abs()).max(1e-12)
}

/// A duration for promtool (`0s` for zero).
fn dur(ms: i64) -> String {
    Duration::from_millis(ms.max(0) as u64).map_or_else(|| "0s".into(), |d| d.to_string())
}

/// `promtool`'s series notation: `a+bxn` for runs of integers in arithmetic progression
/// (expanded by repeated addition, exact for integers), `axn` for repeats, `_` / `_xn` for
/// missing samples, otherwise each value in full.
fn notation(values: &[Option<f64>]) -> String {
    let int = |v: f64| v.fract() == 0.0 && v.abs() < 9.0e15;
    let mut out = String::with_capacity(8 * values.len());
    let mut i = 0;
    while i < values.len() {
        if i > 0 {
            out.push(' ');
        }
        let mut j = i + 1;
        match values[i] {
            None => {
                while j < values.len() && values[j].is_none() {
                    j += 1;
                }
                out.push('_');
                if j - i > 1 {
                    let _ = write!(out, "x{}", j - i);
                }
            }
            Some(a) => {
                let step = match values.get(j) {
                    Some(Some(b)) if int(a) && int(*b) => *b - a,
                    _ => 0.0,
                };
                while j < values.len()
                    && values[j].is_some_and(|v| {
                        let want = a + step * (j - i) as f64;
                        v.to_bits() == want.to_bits() && (step == 0.0 || int(v))
                    })
                {
                    j += 1;
                }
                let n = j - i - 1;
                out.push_str(&float_literal(a));
                if n > 0 {
                    if step > 0.0 {
                        out.push('+');
                    }
                    if step != 0.0 {
                        out.push_str(&float_literal(step));
                    }
                    let _ = write!(out, "x{n}");
                }
            }
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prom::Bucket;

    #[test]
    fn notation_compresses_exactly() {
        let v = |xs: &[f64]| xs.iter().map(|x| Some(*x)).collect::<Vec<_>>();
        assert_eq!(notation(&v(&[0.0, 10.0, 20.0, 30.0])), "0+10x3");
        assert_eq!(notation(&v(&[5.0, 5.0, 5.0])), "5x2");
        assert_eq!(notation(&v(&[0.45, 0.45, 0.9])), "0.45x1 0.9");
        assert_eq!(notation(&v(&[30.0, 20.0, 10.0])), "30-10x2");
        assert_eq!(
            notation(&[Some(1.0), None, None, Some(2.0), None]),
            "1 _x2 2 _"
        );
        assert_eq!(
            notation(&v(&[0.1, 0.2, 0.30000000000000004])),
            "0.1 0.2 0.30000000000000004"
        );
    }

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
        let at = |track: Track, ts: i64| Query::raw(&e, track, &series).at(&series, ts, SEM);
        let v = at(Track::Canary, 15 * 60_000).unwrap();
        assert!((v - 0.1).abs() < 1e-12);
        assert_eq!(at(Track::Stable, 15 * 60_000), None);
        // One sample only at t=0: rate has no result.
        assert_eq!(at(Track::Canary, 0), None);
    }

    #[test]
    fn slots_give_back_the_values() {
        let vals = vec![Some(1.0), None, Some(3.0), None];
        let s = new_series("x", BTreeMap::new(), vals.clone(), 1000);
        assert_eq!(slots(&s, 1000, 4), vals);
        assert_eq!(notation(&slots(&s, 1000, 4)), "1 _ 3 _");
    }
}
