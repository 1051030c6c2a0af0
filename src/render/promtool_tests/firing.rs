//! Predicting when an alert fires: a rule's metric evaluated on a scenario's series with
//! Prometheus 2.42's semantics (the engine in `crate::prom`: range selection, `rate`
//! extrapolation, `histogram_quantile`, the alert state machine) and the rule's lowered
//! condition, evaluation by evaluation, as promtool will evaluate it.

use super::generator::{Generator, SEM, ceil_to, dur};
use super::levels::{Levels, near};
use super::series::{Fed, Frame, key};
use crate::lower::{self, AlertRule, Condition, Rhs};
use crate::prom::{self, AlertState, Query, Series};
use crate::promql::{MetricExpr, Track};

/// One scenario's outcome: the series and the first firing evaluation.
pub(super) struct Run {
    pub(super) fed: Fed,
    pub(super) fire: i64,
}

impl Generator<'_> {
    /// Metric `mi`'s query for `track` over `series`, as its recording rule computes it (a
    /// custom metric is fed as its recorded series): its series are selected once here.
    pub(super) fn query(&self, mi: usize, track: Track, series: &[Series]) -> Query {
        let m = &self.plan.metrics[mi];
        match &m.expr {
            MetricExpr::Custom(_) => {
                let name = lower::record_name(m);
                series
                    .iter()
                    .position(|s| s.name == name && s.label("track") == track.as_str())
                    .map_or_else(Query::absent, Query::recorded)
            }
            e => Query::raw(e, track, series),
        }
    }

    /// The value of metric `mi` for `track` at `ts` alone, as its recording rule records it.
    pub(super) fn value(&self, mi: usize, track: Track, ts: i64, series: &[Series]) -> Option<f64> {
        self.query(mi, track, series).level(series, ts, SEM)
    }

    /// Runs rule `r` over the series at every evaluation up to `end`, returning the first
    /// evaluation at or after `from` where it starts firing (and evaluating no further);
    /// `Err` when some evaluation is too close to the threshold.
    pub(super) fn first_firing(
        &self,
        r: &AlertRule,
        series: &[Series],
        from: i64,
        end: i64,
    ) -> Result<Option<i64>, String> {
        let mut state = AlertState::new(prom::AlertTiming {
            for_ms: r.for_ms as i64,
            keep_firing_for_ms: 0,
        });
        let mut canary_q = self.query(r.metric, Track::Canary, series);
        let mut stable_q = r
            .condition
            .uses_stable()
            .then(|| self.query(r.metric, Track::Stable, series));
        let mut count_q = r.guard.map(|g| self.query(g.count, Track::Canary, series));
        let mut prev_firing = false;
        let mut ts = 0;
        while ts <= end {
            let canary = canary_q.level(series, ts, SEM);
            let stable = stable_q.as_mut().and_then(|q| q.level(series, ts, SEM));
            let count = count_q.as_mut().and_then(|q| q.level(series, ts, SEM));
            if let (Some(g), Some(n)) = (r.guard, count)
                && near(n, g.min as f64)
            {
                return Err(format!(
                    "the request count at {} is too close to `min_requests`",
                    dur(ts)
                ));
            }
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
            let holds = r.condition.holds(canary, stable) && r.guard_passes(count);
            let st = state.step(ts, holds);
            let firing = st.is_firing();
            if firing && !prev_firing && ts >= from {
                return Ok(Some(ts));
            }
            prev_firing = firing;
            ts += self.ei;
        }
        Ok(None)
    }

    /// When the scenario starts: every window is full of healthy samples by then.
    pub(super) fn switch_at(&self) -> i64 {
        let t = self.window + 5 * self.step.max(self.ei);
        ceil_to(t, self.step)
    }

    /// How long a scenario runs at most past its switch.
    pub(super) fn horizon(&self, r: &AlertRule) -> i64 {
        self.switch_at()
            + 2 * self.window
            + r.for_ms as i64
            + prom::DEFAULT_LOOKBACK_MS
            + 5 * self.step.max(self.ei)
    }

    /// Builds the series of a scenario in which the canary turns into `bad` at the switch
    /// (the stable stays healthy), and finds when `r` first fires.
    pub(super) fn scenario(
        &self,
        r: &AlertRule,
        canary: &Levels,
        stable: &Levels,
        bad: Frame,
    ) -> Result<Run, String> {
        let sw = self.switch_at();
        let end = self.horizon(r);
        let fed = self.scenario_series(r, (canary, stable), &bad, end)?;
        let series = &fed.series;
        self.check_levels(r.metric, canary, series, sw, Track::Canary)?;
        if r.condition.uses_stable() {
            self.check_levels(r.metric, stable, series, sw, Track::Stable)?;
        }
        match self.first_firing(r, series, sw, end)? {
            Some(fire) if fire >= self.ei => Ok(Run { fed, fire }),
            Some(_) => Err("it fires at the first evaluation".into()),
            None => Err(format!("it does not fire within {}", dur(end))),
        }
    }

    /// Builds the series of a scenario in which the canary's levels are `canary` until
    /// the switch and `bad` from it on, the stable's `stable` throughout, for rule `r`
    /// (its metric, and its guard's count).
    pub(super) fn scenario_series(
        &self,
        r: &AlertRule,
        (canary, stable): (&Levels, &Levels),
        bad: &Frame,
        end: i64,
    ) -> Result<Fed, String> {
        let metrics = fed_metrics(r);
        let sw = self.switch_at();
        let cf = self.frames(canary, sw, Some(bad), end);
        let sf = self.frames(stable, sw, None, end);
        let les = self.les(&metrics, &[&cf, &sf])?;
        let mut series = self.series(&metrics, Track::Canary, &cf, &les);
        if r.condition.uses_stable() {
            series.extend(self.series(&metrics, Track::Stable, &sf, &les));
        }
        series.sort_by(|a, b| key(a).cmp(&key(b)));
        Ok(Fed {
            series,
            slots: cf.len(),
        })
    }

    /// Checks that, just before the switch, the evaluated metric is the level the series
    /// were built for: the generator and the metric's query agree.
    pub(super) fn check_levels(
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
}

/// The metrics a test of rule `r` feeds: its own, and its guard's request count.
pub(super) fn fed_metrics(r: &AlertRule) -> Vec<usize> {
    std::iter::once(r.metric)
        .chain(r.guard.map(|g| g.count))
        .collect()
}
