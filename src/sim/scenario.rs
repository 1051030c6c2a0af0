//! Simulation scenarios: the traffic and healthy behaviour of the service and the faults a
//! bad canary may show. Read from a YAML file checked against
//! `schemas/scenarios.schema.json`, or the built-in `simulations/default.yaml`.

use crate::check::CheckedPlan;
use crate::diagnostic::Diagnostic;
use crate::model::parse_millis;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

pub const SCENARIOS_SCHEMA: &str = include_str!("../../schemas/scenarios.schema.json");
pub const DEFAULT_SCENARIOS: &str = include_str!("../../simulations/default.yaml");
pub const DEFAULT_TRIALS: u64 = 2000;

/// The Prometheus client libraries' default latency buckets, in seconds.
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    trials: Option<u64>,
    #[serde(default)]
    traffic: TrafficSpec,
    #[serde(default)]
    baseline: BehaviourSpec,
    scenarios: Vec<ScenarioSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrafficSpec {
    requests_per_second: Option<f64>,
    daily_amplitude: Option<f64>,
    overdispersion: Option<f64>,
    start_hour: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BehaviourSpec {
    error_rate: Option<Value>,
    #[serde(default)]
    latency: LatencySpec,
    buckets: Option<Vec<f64>>,
    cpu_usage: Option<GaugeSpec>,
    memory_usage: Option<GaugeSpec>,
    db_connections: Option<GaugeSpec>,
    redis_memory_usage: Option<GaugeSpec>,
    #[serde(default)]
    metrics: BTreeMap<String, GaugeSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencySpec {
    median: Option<String>,
    sigma: Option<f64>,
    tail_share: Option<Value>,
    tail_factor: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GaugeSpec {
    mean: Value,
    noise: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioSpec {
    name: String,
    description: Option<String>,
    fault: Option<FaultSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultSpec {
    kind: String,
    onset: Option<String>,
    phase: Option<String>,
    error_rate: Option<Value>,
    latency_factor: Option<f64>,
    tail_share: Option<Value>,
    memory_usage: Option<Value>,
    cpu_usage: Option<Value>,
    ramp: Option<String>,
    every: Option<String>,
    lasting: Option<String>,
    above_rps: Option<f64>,
    users: Option<Value>,
}

/// A gauge's healthy level and per-scrape noise (standard deviation), in its own unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gauge {
    pub mean: f64,
    pub noise: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Traffic {
    pub requests_per_second: f64,
    pub daily_amplitude: f64,
    pub overdispersion: f64,
    pub start_hour: u32,
    pub users_per_day: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    pub error_rate: f64,
    /// Median of the latency body, seconds.
    pub median: f64,
    pub sigma: f64,
    pub tail_share: f64,
    pub tail_factor: f64,
    /// Finite bucket bounds in seconds, ascending (+Inf is implied).
    pub buckets: Vec<f64>,
    pub cpu: Gauge,
    pub memory: Gauge,
    pub db_connections: Gauge,
    pub redis_memory: Gauge,
    pub custom: BTreeMap<String, Gauge>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaultKind {
    Step,
    Leak { ramp_ms: i64 },
    Bursts { every_ms: i64, lasting_ms: i64 },
    Load { above_rps: f64 },
    Partial { users: f64 },
}

/// A fault on the canary. Effects left `None` stay at the baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub kind: FaultKind,
    pub onset_ms: i64,
    pub error_rate: Option<f64>,
    pub latency_factor: Option<f64>,
    pub tail_share: Option<f64>,
    pub memory_usage: Option<f64>,
    pub cpu_usage: Option<f64>,
}

impl Fault {
    /// The fault's intensity at `t` (0 = none, 1 = full) for a canary serving `canary_rps`,
    /// before any per-user split (`partial` affects a share of users at full intensity).
    #[inline]
    pub fn intensity(&self, t: i64, canary_rps: f64) -> f64 {
        if t < self.onset_ms {
            return 0.0;
        }
        let since = t - self.onset_ms;
        match self.kind {
            FaultKind::Step | FaultKind::Partial { .. } => 1.0,
            FaultKind::Leak { ramp_ms } => (since as f64 / ramp_ms as f64).min(1.0),
            FaultKind::Bursts {
                every_ms,
                lasting_ms,
            } => f64::from(u8::from(since % every_ms < lasting_ms)),
            FaultKind::Load { above_rps } => f64::from(u8::from(canary_rps > above_rps)),
        }
    }

    /// The share of the canary's requests the fault can touch.
    pub fn affected(&self) -> f64 {
        match self.kind {
            FaultKind::Partial { users } => users,
            _ => 1.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub fault: Option<Fault>,
}

/// Everything a Monte Carlo run needs besides the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenarios {
    pub trials: u64,
    pub traffic: Traffic,
    pub baseline: Behaviour,
    pub scenarios: Vec<Scenario>,
}

fn ratio(v: &Value, what: &str) -> Result<f64, String> {
    let r = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s
            .strip_suffix('%')
            .and_then(|p| p.trim().parse::<f64>().ok())
            .map(|p| p / 100.0),
        _ => None,
    };
    r.filter(|r| (0.0..=1.0).contains(r))
        .ok_or_else(|| format!("{what}: `{v}` is not a ratio; write `0.05` or `5%`"))
}

fn number(v: &Value, what: &str) -> Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("{what}: not a number")),
        Value::String(_) => ratio(v, what),
        _ => Err(format!("{what}: `{v}` is not a number")),
    }
}

fn millis(s: &str, what: &str) -> Result<i64, String> {
    parse_millis(s)
        .map(|m| m as i64)
        .map_err(|e| format!("{what}: {e}"))
}

fn gauge(g: Option<&GaugeSpec>, default: Gauge, what: &str) -> Result<Gauge, String> {
    let Some(g) = g else { return Ok(default) };
    let mean = number(&g.mean, what)?;
    let noise = g
        .noise
        .as_ref()
        .map(|n| number(n, what))
        .transpose()?
        .unwrap_or(mean.abs() * 0.05);
    Ok(Gauge { mean, noise })
}

/// Parses and checks a scenario document (already a JSON value) against the plan.
pub fn from_value(doc: &Value, plan: &CheckedPlan) -> Result<Scenarios, Vec<Diagnostic>> {
    let spec: FileSpec = serde_json::from_value(doc.clone()).map_err(|e| {
        vec![Diagnostic::error(
            "scenario",
            "",
            format!("invalid scenario file: {e}"),
        )]
    })?;
    resolve(spec, plan).map_err(|(pointer, msg)| vec![Diagnostic::error("scenario", pointer, msg)])
}

fn resolve(spec: FileSpec, plan: &CheckedPlan) -> Result<Scenarios, (String, String)> {
    let at = |p: &'static str| move |m: String| (p.to_string(), m);
    let rps = spec.traffic.requests_per_second.or(plan.traffic.requests_per_second).ok_or_else(|| {
        (
            "/traffic".to_string(),
            "the simulation needs a request rate: state `traffic: {requests_per_second: N}` in the plan or in the scenario file".to_string(),
        )
    })?;
    let b = &spec.baseline;
    let mut custom = BTreeMap::new();
    for (name, g) in &b.metrics {
        custom.insert(
            name.clone(),
            gauge(
                Some(g),
                Gauge {
                    mean: 0.0,
                    noise: 0.0,
                },
                name,
            )
            .map_err(at("/baseline/metrics"))?,
        );
    }
    let mut buckets = b
        .buckets
        .clone()
        .unwrap_or_else(|| DEFAULT_BUCKETS.to_vec());
    buckets.sort_by(f64::total_cmp);
    buckets.dedup();
    let baseline = Behaviour {
        error_rate: b
            .error_rate
            .as_ref()
            .map(|v| ratio(v, "error_rate"))
            .transpose()
            .map_err(at("/baseline/error_rate"))?
            .unwrap_or(0.005),
        median: b
            .latency
            .median
            .as_deref()
            .map(|m| millis(m, "median"))
            .transpose()
            .map_err(at("/baseline/latency/median"))?
            .map_or(0.12, |ms| ms as f64 / 1000.0),
        sigma: b.latency.sigma.unwrap_or(0.6),
        tail_share: b
            .latency
            .tail_share
            .as_ref()
            .map(|v| ratio(v, "tail_share"))
            .transpose()
            .map_err(at("/baseline/latency/tail_share"))?
            .unwrap_or(0.01),
        tail_factor: b.latency.tail_factor.unwrap_or(8.0),
        buckets,
        cpu: gauge(
            b.cpu_usage.as_ref(),
            Gauge {
                mean: 0.35,
                noise: 0.03,
            },
            "cpu_usage",
        )
        .map_err(at("/baseline/cpu_usage"))?,
        memory: gauge(
            b.memory_usage.as_ref(),
            Gauge {
                mean: 0.55,
                noise: 0.01,
            },
            "memory_usage",
        )
        .map_err(at("/baseline/memory_usage"))?,
        db_connections: gauge(
            b.db_connections.as_ref(),
            Gauge {
                mean: 30.0,
                noise: 4.0,
            },
            "db_connections",
        )
        .map_err(at("/baseline/db_connections"))?,
        redis_memory: gauge(
            b.redis_memory_usage.as_ref(),
            Gauge {
                mean: 0.5,
                noise: 0.01,
            },
            "redis_memory_usage",
        )
        .map_err(at("/baseline/redis_memory_usage"))?,
        custom,
    };
    let mut scenarios = Vec::new();
    for (i, s) in spec.scenarios.into_iter().enumerate() {
        let p = format!("/scenarios/{i}/fault");
        let fault = s.fault.map(|f| fault(f, plan, &p)).transpose()?;
        scenarios.push(Scenario {
            name: s.name,
            description: s.description.unwrap_or_default(),
            fault,
        });
    }
    Ok(Scenarios {
        trials: spec.trials.unwrap_or(DEFAULT_TRIALS),
        traffic: Traffic {
            requests_per_second: rps,
            daily_amplitude: spec.traffic.daily_amplitude.unwrap_or(0.5),
            overdispersion: spec.traffic.overdispersion.unwrap_or(0.0),
            start_hour: spec.traffic.start_hour.unwrap_or(10),
            users_per_day: plan.traffic.users_per_day,
        },
        baseline,
        scenarios,
    })
}

fn fault(f: FaultSpec, plan: &CheckedPlan, p: &str) -> Result<Fault, (String, String)> {
    let e = |m: String| (p.to_string(), m);
    let need = |v: Option<&String>, what: &str| -> Result<i64, (String, String)> {
        let s = v.ok_or_else(|| e(format!("a `{}` fault needs `{what}`", f.kind)))?;
        let ms = millis(s, what).map_err(e)?;
        if ms <= 0 {
            return Err(e(format!("`{what}` must be positive")));
        }
        Ok(ms)
    };
    let kind = match f.kind.as_str() {
        "step" => FaultKind::Step,
        "leak" => FaultKind::Leak {
            ramp_ms: need(f.ramp.as_ref(), "ramp")?,
        },
        "bursts" => FaultKind::Bursts {
            every_ms: need(f.every.as_ref(), "every")?,
            lasting_ms: need(f.lasting.as_ref(), "lasting")?,
        },
        "load" => FaultKind::Load {
            above_rps: f
                .above_rps
                .ok_or_else(|| e("a `load` fault needs `above_rps`".into()))?,
        },
        "partial" => FaultKind::Partial {
            users: ratio(
                f.users
                    .as_ref()
                    .ok_or_else(|| e("a `partial` fault needs `users`".into()))?,
                "users",
            )
            .map_err(e)?,
        },
        other => return Err(e(format!("unknown fault kind `{other}`"))),
    };
    let mut onset_ms = f
        .onset
        .as_deref()
        .map(|o| millis(o, "onset"))
        .transpose()
        .map_err(e)?
        .unwrap_or(0);
    if let Some(phase) = &f.phase {
        let Some(i) = plan.phases.iter().position(|q| &q.name == phase) else {
            return Err(e(format!("unknown phase `{phase}`")));
        };
        onset_ms += plan.phases[..i]
            .iter()
            .map(|q| q.duration.map_or(0, |d| d.millis() as i64))
            .sum::<i64>();
    }
    let r = |v: Option<Value>, what: &str| v.map(|v| ratio(&v, what)).transpose().map_err(e);
    let fault = Fault {
        kind,
        onset_ms,
        error_rate: r(f.error_rate, "error_rate")?,
        latency_factor: f.latency_factor,
        tail_share: r(f.tail_share, "tail_share")?,
        memory_usage: r(f.memory_usage, "memory_usage")?,
        cpu_usage: r(f.cpu_usage, "cpu_usage")?,
    };
    if fault.error_rate.is_none()
        && fault.latency_factor.is_none()
        && fault.tail_share.is_none()
        && fault.memory_usage.is_none()
        && fault.cpu_usage.is_none()
    {
        return Err(e("the fault changes nothing: give at least one of error_rate, latency_factor, tail_share, memory_usage, cpu_usage".into()));
    }
    Ok(fault)
}

/// The scenario schema, compiled into Rust when `plan` is built (as the plan schema is).
#[jsonschema::validator(
    path = "schemas/scenarios.schema.json",
    draft = Draft7,
    methods = { is_valid = false, validate = false, iter_errors = true },
)]
struct ScenarioSchema;

/// Checks a scenario document against `schemas/scenarios.schema.json`.
pub fn schema_check(doc: &Value) -> Vec<Diagnostic> {
    ScenarioSchema::iter_errors(doc)
        .map(|e| {
            let msg = e.to_string();
            let msg = if msg.chars().count() > 160 {
                format!("{}…", msg.chars().take(160).collect::<String>())
            } else {
                msg
            };
            Diagnostic::error(
                "scenario-schema",
                e.instance_path().as_str().to_string(),
                msg,
            )
            .with_hint("see schemas/scenarios.schema.json and the examples in simulations/")
        })
        .collect()
}

/// Reads scenarios from YAML text (a file, or the built-in default).
pub fn load(
    source: &crate::source::Source,
    plan: &CheckedPlan,
) -> Result<Scenarios, (Option<crate::syntax::Spans>, Vec<Diagnostic>)> {
    let doc = crate::syntax::parse(source).map_err(|(s, d)| (Some(s), d))?;
    let errors = schema_check(&doc.value);
    if !errors.is_empty() {
        return Err((Some(doc.spans), errors));
    }
    from_value(&doc.value, plan).map_err(|d| (Some(doc.spans), d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::tests::{places, variants};

    /// The validator generated at build time agrees with the `jsonschema` run-time compiler
    /// on every example in `simulations/` and the variants that break each in one place.
    #[test]
    fn the_compiled_schema_agrees_with_the_run_time_compiler() {
        let schema: Value = serde_json::from_str(SCENARIOS_SCHEMA).expect("JSON");
        let run_time = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .build(&schema)
            .expect("a valid draft-07 schema");
        let mut checked = 0;
        for entry in std::fs::read_dir("simulations").expect("examples") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let source = crate::source::Source::load(&path).expect("readable");
            let doc = crate::syntax::parse(&source).expect("YAML");
            for v in variants(&doc.value) {
                let expected = places(run_time.iter_errors(&v));
                assert_eq!(places(ScenarioSchema::iter_errors(&v)), expected, "{v}");
                checked += usize::from(!expected.is_empty());
            }
        }
        assert!(checked >= 100, "only {checked} invalid variants");
    }
}
