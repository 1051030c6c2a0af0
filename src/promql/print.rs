//! Printing [`MetricExpr`] as PromQL text.

use super::expr::MetricExpr;
use super::track::Track;

impl MetricExpr {
    /// The PromQL for one track (or with `$track` left in when `track` is `None`).
    pub(crate) fn promql(&self, track: Option<Track>) -> String {
        promql(self, track.map_or("$track", Track::as_str))
    }
}

fn promql(e: &MetricExpr, track: &str) -> String {
    match e {
        MetricExpr::RateRatio { num, den, window } => format!(
            "(sum(rate({}[{window}])) or vector(0)) / sum(rate({}[{window}]))",
            num.promql(track),
            den.promql(track)
        ),
        MetricExpr::Rate { sel, window } => format!("sum(rate({}[{window}]))", sel.promql(track)),
        MetricExpr::AvgRate { sel, window } => {
            format!("avg(rate({}[{window}]))", sel.promql(track))
        }
        MetricExpr::Quantile {
            q,
            sel,
            window,
            scale,
        } => {
            let inner = format!(
                "histogram_quantile({q}, sum by (le) (rate({}[{window}])))",
                sel.promql(track)
            );
            if *scale == 1.0 {
                inner
            } else {
                format!("{inner} * {scale}")
            }
        }
        MetricExpr::GaugeSum { sel } => format!("sum({})", sel.promql(track)),
        MetricExpr::GaugeRatioMax { num, den } => {
            format!("max({} / ({} > 0))", num.promql(track), den.promql(track))
        }
        MetricExpr::Custom(q) => q.replace("$track", track),
        MetricExpr::Increase { sel, window } => {
            format!("sum(increase({}[{window}]))", sel.promql(track))
        }
    }
}
