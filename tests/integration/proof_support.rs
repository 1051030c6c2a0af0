//! What the proofs against promtool share (`proof`: the built-in metrics; `proof_custom`:
//! custom queries): a small deterministic generator, traces as series of optional samples
//! (missing, numbers, staleness markers), writing them for the simulator (CSV, Prometheus
//! JSON) and as a `promtool test rules` group that expects no alert at any evaluation, and
//! reading every rule's firing timeline back from promtool's failure report.

use plan::sim::splitmix::SplitMix64;
use plan::sim::trace::time::format_rfc3339;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

pub(crate) const MIN: i64 = 60_000;

/// A tiny deterministic generator, enough for test data.
pub(crate) struct Rng(pub(crate) SplitMix64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    pub(crate) fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Val {
    Num(f64),
    Stale,
}

pub(crate) struct SeriesSpec {
    pub(crate) name: String,
    pub(crate) labels: Vec<(String, String)>,
    /// Name and labels the CSV gives (metric-level traces may use the short form).
    pub(crate) csv_name: String,
    pub(crate) csv_labels: Vec<(String, String)>,
    pub(crate) values: Vec<Option<Val>>,
}

pub(crate) struct TraceSpec {
    pub(crate) step_ms: i64,
    pub(crate) n: usize,
    pub(crate) series: Vec<SeriesSpec>,
    pub(crate) raw: bool,
}

pub(crate) fn lbl(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) fn plain(
    name: &str,
    labels: Vec<(String, String)>,
    values: Vec<Option<Val>>,
) -> SeriesSpec {
    SeriesSpec {
        name: name.into(),
        csv_name: name.into(),
        csv_labels: labels.clone(),
        labels,
        values,
    }
}

/// Adds missing samples and staleness markers (never at index 0) to a series.
pub(crate) fn holes(rng: &mut Rng, v: &mut [Option<Val>], p_gap: f64, p_stale: f64, p_long: f64) {
    let mut i = 1;
    while i < v.len() {
        if rng.chance(p_long) {
            let len = 4 + rng.below(8) as usize;
            for x in v.iter_mut().skip(i).take(len) {
                *x = None;
            }
            i += len;
        } else if rng.chance(p_stale) {
            v[i] = Some(Val::Stale);
            i += 1 + rng.below(3) as usize;
        } else if rng.chance(p_gap) {
            v[i] = None;
            i += 1;
        } else {
            i += 1;
        }
    }
}

/// A counter from per-step increments, starting at `start`, with resets.
pub(crate) fn counter(rng: &mut Rng, incs: &[f64], start: f64, p_reset: f64) -> Vec<Option<Val>> {
    let mut c = start;
    incs.iter()
        .enumerate()
        .map(|(i, &d)| {
            if i > 0 {
                if rng.chance(p_reset) {
                    c = if rng.chance(0.5) {
                        0.0
                    } else {
                        (c / 3.0).floor()
                    };
                }
                c += d;
            }
            Some(Val::Num(c))
        })
        .collect()
}

/// Segment lengths (in samples) that make regimes switch, some exactly around `for`.
pub(crate) fn segments(rng: &mut Rng, n: usize, per_min: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut left = n;
    while left > 0 {
        let mins = rng.pick(&[1usize, 2, 3, 4, 5, 5, 6, 6, 7, 9, 10, 11, 12, 15]);
        let len = (mins * per_min).clamp(1, left);
        out.push(len);
        left -= len;
    }
    out
}

// ----- writing the trace for the simulator -----

pub(crate) fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

pub(crate) fn write_csv(t: &TraceSpec, k: usize) -> String {
    let mut s = String::from("timestamp,series,labels,value\n");
    for i in 0..t.n {
        let ms = i as i64 * t.step_ms;
        let ts = if k % 3 == 1 {
            format_rfc3339(ms)
        } else {
            format!("{}", ms as f64 / 1000.0)
        };
        for ser in &t.series {
            let Some(v) = ser.values[i] else { continue };
            let labels = if k.is_multiple_of(2) {
                ser.csv_labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(";")
            } else {
                let inner = ser
                    .csv_labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{v}\""))
                    .collect::<Vec<_>>()
                    .join(",");
                format!("{{{inner}}}")
            };
            let value = match v {
                Val::Num(x) => num(x),
                Val::Stale => "stale".into(),
            };
            let _ = writeln!(s, "{ts},{},{labels},{value}", ser.csv_name);
        }
    }
    s
}

pub(crate) fn write_json(t: &TraceSpec) -> String {
    let mut out = Vec::new();
    for ser in &t.series {
        let mut metric = serde_json::Map::new();
        metric.insert("__name__".into(), ser.csv_name.clone().into());
        for (k, v) in &ser.csv_labels {
            metric.insert(k.clone(), v.clone().into());
        }
        let values: Vec<serde_json::Value> = ser
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| match v {
                Some(Val::Num(x)) => Some(serde_json::json!([
                    i as f64 * t.step_ms as f64 / 1000.0,
                    num(*x)
                ])),
                _ => None,
            })
            .collect();
        out.push(serde_json::json!({"metric": metric, "values": values}));
    }
    serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": out}})
        .to_string()
}

// ----- writing the promtool unit test -----

pub(crate) fn notation(values: &[Option<Val>]) -> String {
    values
        .iter()
        .map(|v| match v {
            None => "_".to_string(),
            Some(Val::Stale) => "stale".to_string(),
            Some(Val::Num(x)) => num(*x),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn yaml_single(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub(crate) fn promtool_group(
    name: &str,
    t: &TraceSpec,
    alerts: &[String],
    until: i64,
    ei: i64,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "- name: {name}");
    let _ = writeln!(s, "  interval: {}s", t.step_ms / 1000);
    let _ = writeln!(s, "  input_series:");
    for ser in &t.series {
        let inner = ser
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect::<Vec<_>>()
            .join(",");
        let _ = writeln!(
            s,
            "  - series: {}",
            yaml_single(&format!("{}{{{inner}}}", ser.name))
        );
        let _ = writeln!(s, "    values: {}", yaml_single(&notation(&ser.values)));
    }
    let _ = writeln!(s, "  alert_rule_test:");
    let mut ts = 0;
    while ts <= until {
        for a in alerts {
            let _ = writeln!(
                s,
                "  - {{eval_time: {}s, alertname: {a}, exp_alerts: []}}",
                ts / 1000
            );
        }
        ts += ei;
    }
    s
}

/// `17m`, `1h5m`, `0s` (Prometheus' model.Duration) to milliseconds.
pub(crate) fn parse_prom_duration(s: &str) -> i64 {
    let mut total = 0i64;
    let mut numv = 0i64;
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            numv = numv * 10 + (b[i] - b'0') as i64;
            i += 1;
            continue;
        }
        let (unit, len) = match (b[i], b.get(i + 1)) {
            (b'm', Some(b's')) => (1, 2),
            (b'y', _) => (365 * 86_400_000, 1),
            (b'w', _) => (7 * 86_400_000, 1),
            (b'd', _) => (86_400_000, 1),
            (b'h', _) => (3_600_000, 1),
            (b'm', _) => (60_000, 1),
            (b's', _) => (1000, 1),
            _ => panic!("unexpected duration {s}"),
        };
        total += numv * unit;
        numv = 0;
        i += len;
    }
    total
}

// ----- reading promtool's verdict -----

/// Every rule's firing timeline, by (trace, rule): promtool's view.
pub(crate) type Timelines = BTreeMap<(usize, usize), Vec<i64>>;

/// Runs `promtool test rules` on `test_file`, whose groups are named `trace-<k>` and expect
/// no alert anywhere (see [`promtool_group`]), and reads from its failure report when each
/// of `alerts` fires in each trace. Panics when promtool could not evaluate the rules or
/// when a failure escapes the parsing.
pub(crate) fn promtool_timelines(
    promtool: &Path,
    test_file: &Path,
    alerts: &[String],
) -> Timelines {
    let run = std::process::Command::new(promtool)
        .args(["test", "rules"])
        .arg(test_file)
        .output()
        .expect("promtool runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        !stderr.contains(", err:") && stdout.contains("Unit Testing"),
        "promtool could not evaluate:\n{}",
        &stderr[..stderr.len().min(4000)]
    );
    let re = regex::Regex::new(r"name: trace-(\d+),\s*\n\s*alertname: (\w+), time: (\w+),")
        .expect("regex");
    let mut got = Timelines::new();
    for c in re.captures_iter(&stderr) {
        let k: usize = c[1].parse().expect("trace index");
        let ri = alerts.iter().position(|a| *a == c[2]).expect("known alert");
        got.entry((k, ri))
            .or_default()
            .push(parse_prom_duration(&c[3]));
    }
    let failures = stderr.matches("alertname:").count();
    assert_eq!(
        failures,
        got.values().map(Vec::len).sum::<usize>(),
        "every promtool failure was parsed"
    );
    got
}

/// The simulator's timelines (`sim`, one entry per trace and rule) against promtool's.
pub(crate) struct Comparison {
    /// One line per (trace, rule) whose timelines differ.
    pub(crate) mismatches: Vec<String>,
    /// Rules that fired at least once (per the simulator).
    pub(crate) fired_rules: BTreeSet<usize>,
    /// Evaluations at which the simulator says a rule fires.
    pub(crate) firing_evals: usize,
}

pub(crate) fn compare(sim: &Timelines, prom: &Timelines, alerts: &[String]) -> Comparison {
    let mut out = Comparison {
        mismatches: Vec::new(),
        fired_rules: BTreeSet::new(),
        firing_evals: 0,
    };
    for ((k, ri), s) in sim {
        let p = prom.get(&(*k, *ri)).cloned().unwrap_or_default();
        if !s.is_empty() {
            out.fired_rules.insert(*ri);
        }
        out.firing_evals += s.len();
        if *s != p {
            let first_diff = s
                .iter()
                .zip(&p)
                .position(|(a, b)| a != b)
                .unwrap_or(s.len().min(p.len()));
            out.mismatches.push(format!(
                "trace {k} rule {}: simulator first fires at {:?}, promtool at {:?} (firing evaluations: simulator {}, promtool {}; first difference at {:?} vs {:?})",
                alerts[*ri],
                s.first(),
                p.first(),
                s.len(),
                p.len(),
                s.get(first_diff),
                p.get(first_diff),
            ));
        }
    }
    out
}

/// How many (trace, rule) timelines of `other` (another semantics' replay) differ from
/// promtool's.
pub(crate) fn differing(other: &Timelines, prom: &Timelines) -> usize {
    other
        .iter()
        .filter(|(key, f)| prom.get(key).map_or(&[][..], Vec::as_slice) != f.as_slice())
        .count()
}

/// Writes trace `k` into `dir`: every fifth one as JSON when it has no staleness marker
/// (JSON cannot carry them), CSV otherwise. Returns the file and its text.
pub(crate) fn write_trace(dir: &Path, k: usize, spec: &TraceSpec) -> (std::path::PathBuf, String) {
    let has_stale = spec
        .series
        .iter()
        .any(|s| s.values.contains(&Some(Val::Stale)));
    let (file, text) = if k % 5 == 4 && !has_stale {
        (dir.join(format!("trace-{k}.json")), write_json(spec))
    } else {
        (dir.join(format!("trace-{k}.csv")), write_csv(spec, k))
    };
    std::fs::write(&file, &text).expect("write trace");
    (file, text)
}
