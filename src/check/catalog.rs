//! The built-in metrics: every metric the Lawsker guide names, with its unit, its bad
//! direction and default PromQL over conventional series names.
//!
//! Conventions: every series carries `service` (the plan's service name) and `track`
//! (`canary` or `stable`) labels; requests are counted in `http_requests_total{code}`,
//! latency in the histogram `http_request_duration_seconds_bucket{le}`. A plan overrides a
//! query under `metrics:` when its series are named otherwise.

use crate::model::{Bad, Duration, Unit};
use crate::promql::{MatchOp, MetricExpr, Selector};

/// What a built-in metric is computed from; the simulator evaluates these shapes on raw
/// series exactly as the emitted PromQL does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Builtin {
    ErrorRate,
    ResponseTimeP95,
    Availability,
    Throughput,
    CpuUsage,
    MemoryUsage,
    DbConnections,
    RedisMemoryUsage,
    TargetsUp,
}

pub struct BuiltinDef {
    pub(crate) kind: Builtin,
    pub name: &'static str,
    pub(crate) description: &'static str,
    pub unit: Unit,
    pub bad: Bad,
}

pub const BUILTINS: [BuiltinDef; 9] = [
    BuiltinDef {
        kind: Builtin::ErrorRate,
        name: "error_rate",
        description: "Share of requests answered with a 5xx status",
        unit: Unit::Ratio,
        bad: Bad::High,
    },
    BuiltinDef {
        kind: Builtin::ResponseTimeP95,
        name: "response_time_p95",
        description: "95th percentile response time, in milliseconds",
        unit: Unit::Milliseconds,
        bad: Bad::High,
    },
    BuiltinDef {
        kind: Builtin::Availability,
        name: "availability",
        description: "Share of requests not answered with a 5xx status",
        unit: Unit::Ratio,
        bad: Bad::Low,
    },
    BuiltinDef {
        kind: Builtin::Throughput,
        name: "throughput",
        description: "Requests handled per second",
        unit: Unit::PerSecond,
        bad: Bad::Low,
    },
    BuiltinDef {
        kind: Builtin::CpuUsage,
        name: "cpu_usage",
        description: "CPU used per instance, as a share of one core",
        unit: Unit::Ratio,
        bad: Bad::High,
    },
    BuiltinDef {
        kind: Builtin::MemoryUsage,
        name: "memory_usage",
        description: "Memory in use as a share of the container's limit (highest instance; instances without a limit are left out)",
        unit: Unit::Ratio,
        bad: Bad::High,
    },
    BuiltinDef {
        kind: Builtin::DbConnections,
        name: "db_connections",
        description: "Database connections in use",
        unit: Unit::Count,
        bad: Bad::High,
    },
    BuiltinDef {
        kind: Builtin::RedisMemoryUsage,
        name: "redis_memory_usage",
        description: "Redis memory in use as a share of maxmemory (instances without maxmemory are left out)",
        unit: Unit::Ratio,
        bad: Bad::High,
    },
    BuiltinDef {
        kind: Builtin::TargetsUp,
        name: "targets_up",
        description: "Scrape targets of the track that answered their last scrape (the sum of Prometheus' up series); the silent-canary rule reads it",
        unit: Unit::Count,
        bad: Bad::Low,
    },
];

/// The request counter and latency histogram behind the request metrics.
pub(crate) const REQUESTS: &str = "http_requests_total";
const LATENCY_BUCKETS: &str = "http_request_duration_seconds_bucket";

impl BuiltinDef {
    /// The default query of this metric for `service`, with rates over `window`.
    pub(crate) fn expr(&self, service: &str, window: Duration) -> MetricExpr {
        let sel = |m: &str| Selector::service(m, service);
        match self.kind {
            Builtin::ErrorRate => MetricExpr::RateRatio {
                num: sel(REQUESTS).with("code", MatchOp::Re, "5.."),
                den: sel(REQUESTS),
                window,
            },
            Builtin::Availability => MetricExpr::RateRatio {
                num: sel(REQUESTS).with("code", MatchOp::NotRe, "5.."),
                den: sel(REQUESTS),
                window,
            },
            Builtin::ResponseTimeP95 => MetricExpr::Quantile {
                q: 0.95,
                sel: sel(LATENCY_BUCKETS),
                window,
                scale: 1000.0,
            },
            Builtin::Throughput => MetricExpr::Rate {
                sel: sel(REQUESTS),
                window,
            },
            Builtin::CpuUsage => MetricExpr::AvgRate {
                sel: sel("process_cpu_seconds_total"),
                window,
            },
            Builtin::MemoryUsage => MetricExpr::GaugeRatioMax {
                num: sel("container_memory_working_set_bytes"),
                den: sel("container_spec_memory_limit_bytes"),
            },
            Builtin::DbConnections => MetricExpr::GaugeSum {
                sel: sel("db_connections_in_use"),
            },
            Builtin::RedisMemoryUsage => MetricExpr::GaugeRatioMax {
                num: sel("redis_memory_used_bytes"),
                den: sel("redis_memory_max_bytes"),
            },
            // Prometheus writes `up` for every target it scrapes, with the target's labels:
            // 1 when the scrape succeeded, 0 when it failed.
            Builtin::TargetsUp => MetricExpr::GaugeSum { sel: sel("up") },
        }
    }
}

pub(crate) fn builtin(name: &str) -> Option<&'static BuiltinDef> {
    BUILTINS.iter().find(|b| b.name == name)
}
