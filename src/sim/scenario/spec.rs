//! A scenario file exactly as written, read from a schema-valid document: no defaults
//! filled in, no names checked against a plan. Its scalars are typed when read (a ratio
//! from `0.05` or `5%`, a duration in milliseconds), so what the schema accepts is what the
//! simulation gets.

use super::schema::millis;
use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileSpec {
    pub(crate) trials: Option<u64>,
    #[serde(default)]
    pub(crate) traffic: TrafficSpec,
    #[serde(default)]
    pub(crate) baseline: BehaviourSpec,
    #[serde(default)]
    pub(crate) exposition: ExpositionSpec,
    pub(crate) scenarios: Vec<ScenarioSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExpositionSpec {
    pub(crate) per_code: Option<bool>,
    pub(crate) failures_from: Option<FailuresFromSpec>,
    pub(crate) split_from: Option<SplitFromSpec>,
    pub(crate) scrape_offset: Option<ScrapeOffset>,
    pub(crate) instances: Option<InstancesSpec>,
    pub(crate) request_counters: Option<RequestCountersSpec>,
}

/// `exposition.request_counters`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RequestCountersSpec {
    PerInstance,
    PerTrack,
}

/// `exposition.instances`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum InstancesSpec {
    Replicas,
    One,
}

/// `exposition.failures_from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FailuresFromSpec {
    FirstFailure,
    ReleaseStart,
}

/// `exposition.split_from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SplitFromSpec {
    FirstEvent,
    ReleaseStart,
}

/// `exposition.scrape_offset`: `random` (drawn per trial) or a fixed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub(crate) enum ScrapeOffset {
    Random,
    Fixed(Offset),
}

impl TryFrom<String> for ScrapeOffset {
    type Error = String;
    fn try_from(s: String) -> Result<ScrapeOffset, String> {
        match s.as_str() {
            "random" => Ok(ScrapeOffset::Random),
            _ => Offset::try_from(s).map(ScrapeOffset::Fixed),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TrafficSpec {
    pub(crate) requests_per_second: Option<f64>,
    pub(crate) daily_amplitude: Option<f64>,
    pub(crate) overdispersion: Option<f64>,
    pub(crate) error_clustering: Option<f64>,
    pub(crate) error_clustering_time_constant: Option<Span>,
    pub(crate) error_clustering_shared: Option<f64>,
    pub(crate) start_hour: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BehaviourSpec {
    pub(crate) error_rate: Option<Ratio>,
    #[serde(default)]
    pub(crate) latency: LatencySpec,
    pub(crate) buckets: Option<Vec<f64>>,
    pub(crate) cpu_usage: Option<CpuSpec>,
    pub(crate) memory_usage: Option<GaugeSpec>,
    pub(crate) db_connections: Option<GaugeSpec>,
    pub(crate) redis_memory_usage: Option<GaugeSpec>,
    /// In the order written, so findings come in the file's order.
    #[serde(default)]
    pub(crate) metrics: IndexMap<String, GaugeSpec>,
    /// The raw series the plan's custom queries read, by metric name, in the order written.
    #[serde(default)]
    pub(crate) series: IndexMap<String, SeriesSpec>,
}

/// How one raw series (or family, with `split`) is produced: a counter or a gauge.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SeriesSpec {
    pub(crate) counter: Option<CounterSpec>,
    pub(crate) gauge: Option<GaugeSpec>,
    pub(crate) histogram: Option<HistogramSpec>,
    /// One label whose values share the counter's events (a multinomial split).
    pub(crate) split: Option<IndexMap<String, IndexMap<String, Ratio>>>,
}

/// A counter's events: a multiple of the track's requests, or a share of another
/// counter's events.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CounterSpec {
    pub(crate) per_request: Option<Ratio>,
    pub(crate) of: Option<String>,
    pub(crate) share: Option<Ratio>,
}

/// A histogram's observations: a multiple of the track's requests, and per bucket bound
/// (as written, in increasing order) the share of observations at or below it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistogramSpec {
    pub(crate) per_request: Ratio,
    pub(crate) buckets: IndexMap<String, Ratio>,
}

/// What a fault does to one series on the canary at full effect: any of its parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SeriesEffectSpec {
    pub(crate) per_request: Option<Ratio>,
    pub(crate) share: Option<Ratio>,
    pub(crate) mean: Option<Ratio>,
    pub(crate) split: Option<IndexMap<String, IndexMap<String, Ratio>>>,
    /// For a histogram: the share at or below each of its bounds.
    pub(crate) buckets: Option<IndexMap<String, Ratio>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LatencySpec {
    pub(crate) median: Option<Span>,
    pub(crate) sigma: Option<f64>,
    pub(crate) tail_share: Option<Ratio>,
    pub(crate) tail_factor: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CpuSpec {
    pub(crate) mean: Ratio,
    pub(crate) noise: Option<Ratio>,
    pub(crate) shared: Option<Ratio>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GaugeSpec {
    pub(crate) mean: Ratio,
    pub(crate) noise: Option<Ratio>,
    pub(crate) time_constant: Option<Offset>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScenarioSpec {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) fault: Option<FaultSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultSpec {
    pub(crate) kind: KindSpec,
    pub(crate) onset: Option<Offset>,
    pub(crate) phase: Option<String>,
    pub(crate) error_rate: Option<Ratio>,
    pub(crate) latency_factor: Option<f64>,
    pub(crate) tail_share: Option<Ratio>,
    pub(crate) memory_usage: Option<Ratio>,
    pub(crate) cpu_usage: Option<Ratio>,
    /// Custom metrics' levels at full effect, in the order written.
    #[serde(default)]
    pub(crate) metrics: IndexMap<String, Ratio>,
    /// Modelled series' parameters at full effect, in the order written.
    #[serde(default)]
    pub(crate) series: IndexMap<String, SeriesEffectSpec>,
    pub(crate) ramp: Option<Span>,
    pub(crate) every: Option<Span>,
    pub(crate) lasting: Option<Span>,
    pub(crate) above_rps: Option<f64>,
    pub(crate) users: Option<Ratio>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum KindSpec {
    Step,
    Leak,
    Bursts,
    Load,
    Partial,
    Crash,
}

impl KindSpec {
    pub(crate) fn name(self) -> &'static str {
        match self {
            KindSpec::Step => "step",
            KindSpec::Leak => "leak",
            KindSpec::Bursts => "bursts",
            KindSpec::Load => "load",
            KindSpec::Partial => "partial",
            KindSpec::Crash => "crash",
        }
    }
}

/// A number, or a percentage written `35%` (a ratio's usual form; the schema bounds each).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "Value")]
pub(crate) struct Ratio(pub f64);

impl TryFrom<Value> for Ratio {
    type Error = String;
    fn try_from(v: Value) -> Result<Ratio, String> {
        let r = match &v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s
                .strip_suffix('%')
                .and_then(|p| p.parse::<f64>().ok())
                .map(|p| p / 100.0),
            _ => None,
        };
        r.filter(|r| r.is_finite())
            .map(Ratio)
            .ok_or_else(|| format!("`{v}` is not a number or a percentage"))
    }
}

/// A positive duration, in milliseconds (at most [`crate::limits::MAX_SCENARIO_DURATION_MS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct Span(pub i64);

impl TryFrom<String> for Span {
    type Error = String;
    fn try_from(s: String) -> Result<Span, String> {
        millis(&s, false).map(|ms| Span(ms as i64))
    }
}

/// A time from a start, in milliseconds, zero allowed (at most a year).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct Offset(pub i64);

impl TryFrom<String> for Offset {
    type Error = String;
    fn try_from(s: String) -> Result<Offset, String> {
        millis(&s, true).map(|ms| Offset(ms as i64))
    }
}
