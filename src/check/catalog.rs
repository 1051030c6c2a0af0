//! The built-in metrics: every metric the Lawsker guide names, with its unit, its bad
//! direction and default PromQL over conventional series names.
//!
//! Conventions: every series carries `service` (the plan's service name) and `track`
//! (`canary` or `stable`) labels; requests are counted in `http_requests_total{code}`,
//! latency in the histogram `http_request_duration_seconds_bucket{le}`. A plan overrides a
//! query under `metrics:` when its series are named otherwise.

use crate::model::{Bad, Unit};

/// What a built-in metric is computed from; the simulator evaluates these shapes on raw
/// series exactly as the emitted PromQL does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    ErrorRate,
    ResponseTimeP95,
    Availability,
    Throughput,
    CpuUsage,
    MemoryUsage,
    DbConnections,
    RedisMemoryUsage,
}

pub struct BuiltinDef {
    pub kind: Builtin,
    pub name: &'static str,
    pub description: &'static str,
    pub unit: Unit,
    pub bad: Bad,
    pub query: &'static str,
}

const SEL: &str = r#"service="$service",track="$track""#;

macro_rules! q {
    ($($part:expr),*) => { concat!($($part),*) };
}

pub const BUILTINS: [BuiltinDef; 8] = [
    BuiltinDef {
        kind: Builtin::ErrorRate,
        name: "error_rate",
        description: "Share of requests answered with a 5xx status",
        unit: Unit::Ratio,
        bad: Bad::High,
        query: q!(
            r#"sum(rate(http_requests_total{service="$service",track="$track",code=~"5.."}[$window]))"#,
            r#" / sum(rate(http_requests_total{service="$service",track="$track"}[$window]))"#
        ),
    },
    BuiltinDef {
        kind: Builtin::ResponseTimeP95,
        name: "response_time_p95",
        description: "95th percentile response time, in milliseconds",
        unit: Unit::Milliseconds,
        bad: Bad::High,
        query: q!(
            r#"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{service="$service",track="$track"}[$window])))"#,
            " * 1000"
        ),
    },
    BuiltinDef {
        kind: Builtin::Availability,
        name: "availability",
        description: "Share of requests not answered with a 5xx status",
        unit: Unit::Ratio,
        bad: Bad::Low,
        query: q!(
            r#"sum(rate(http_requests_total{service="$service",track="$track",code!~"5.."}[$window]))"#,
            r#" / sum(rate(http_requests_total{service="$service",track="$track"}[$window]))"#
        ),
    },
    BuiltinDef {
        kind: Builtin::Throughput,
        name: "throughput",
        description: "Requests handled per second",
        unit: Unit::PerSecond,
        bad: Bad::Low,
        query: r#"sum(rate(http_requests_total{service="$service",track="$track"}[$window]))"#,
    },
    BuiltinDef {
        kind: Builtin::CpuUsage,
        name: "cpu_usage",
        description: "CPU used per instance, as a share of one core",
        unit: Unit::Ratio,
        bad: Bad::High,
        query: r#"avg(rate(process_cpu_seconds_total{service="$service",track="$track"}[$window]))"#,
    },
    BuiltinDef {
        kind: Builtin::MemoryUsage,
        name: "memory_usage",
        description: "Memory in use as a share of the container's limit (highest instance)",
        unit: Unit::Ratio,
        bad: Bad::High,
        query: q!(
            r#"max(container_memory_working_set_bytes{service="$service",track="$track"}"#,
            r#" / container_spec_memory_limit_bytes{service="$service",track="$track"})"#
        ),
    },
    BuiltinDef {
        kind: Builtin::DbConnections,
        name: "db_connections",
        description: "Database connections in use",
        unit: Unit::Count,
        bad: Bad::High,
        query: r#"sum(db_connections_in_use{service="$service",track="$track"})"#,
    },
    BuiltinDef {
        kind: Builtin::RedisMemoryUsage,
        name: "redis_memory_usage",
        description: "Redis memory in use as a share of maxmemory",
        unit: Unit::Ratio,
        bad: Bad::High,
        query: q!(
            r#"max(redis_memory_used_bytes{service="$service",track="$track"}"#,
            r#" / redis_memory_max_bytes{service="$service",track="$track"})"#
        ),
    },
];

pub fn builtin(name: &str) -> Option<&'static BuiltinDef> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// The label matchers every built-in query uses, for documentation.
pub fn selector_convention() -> &'static str {
    SEL
}
