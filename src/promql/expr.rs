//! A metric's query as data: [`MetricExpr`].

use super::selector::Selector;
use crate::model::Duration;

/// How a metric's value is computed for one track (canary or stable).
#[derive(Debug, Clone, PartialEq)]
pub enum MetricExpr {
    /// `(sum(rate(num[w])) or vector(0)) / sum(rate(den[w]))`: a ratio of two counters.
    /// Client libraries create a labelled series (`code="500"`) at its first event, so the
    /// numerator's series may not exist yet: that is no event, not no data, while the
    /// denominator's series exist.
    RateRatio {
        num: Selector,
        den: Selector,
        window: Duration,
    },
    /// `sum(rate(sel[w]))`: events per second.
    Rate { sel: Selector, window: Duration },
    /// `avg(rate(sel[w]))`: a per-instance rate averaged over instances (CPU).
    AvgRate { sel: Selector, window: Duration },
    /// `histogram_quantile(q, sum by (le) (rate(sel[w]))) * scale`.
    Quantile {
        q: f64,
        sel: Selector,
        window: Duration,
        scale: f64,
    },
    /// `sum(sel)`: a gauge summed over instances.
    GaugeSum { sel: Selector },
    /// `max(num / (den > 0))`: the highest instance's ratio of two gauges. A limit of 0
    /// means "no limit" to cAdvisor and Redis (no `mem_limit`, no `maxmemory`): such
    /// instances are left out rather than reported as an infinite share.
    GaugeRatioMax { num: Selector, den: Selector },
    /// A plan's own PromQL, with `$track` standing for the track. The simulator needs the
    /// metric's values in a trace to evaluate it.
    Custom(String),
    /// `sum(increase(sel[w]))`: the events of a counter in the window, extrapolated as
    /// `increase()` does; the request count a `min_requests` guard reads.
    Increase { sel: Selector, window: Duration },
}

impl MetricExpr {
    /// Whether the simulator can compute this metric from raw series.
    pub(crate) fn is_structured(&self) -> bool {
        !matches!(self, MetricExpr::Custom(_))
    }

    /// The `operations` part of a recorded series name (`level:metric:operations`).
    pub(crate) fn operations(&self) -> String {
        match self {
            MetricExpr::RateRatio { window, .. } => format!("ratio_rate{window}"),
            MetricExpr::Rate { window, .. } => format!("rate{window}"),
            MetricExpr::AvgRate { window, .. } => format!("avg_rate{window}"),
            MetricExpr::Quantile { q, window, .. } => {
                format!("p{}_rate{window}", (q * 100.0).round())
            }
            MetricExpr::GaugeSum { .. } => "sum".into(),
            MetricExpr::GaugeRatioMax { .. } => "max_ratio".into(),
            MetricExpr::Custom(_) => "query".into(),
            MetricExpr::Increase { window, .. } => format!("increase{window}"),
        }
    }
}
