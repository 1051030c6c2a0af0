//! The test groups: one per rule, whose canary turns bad (or silent) and which expects no
//! alert one evaluation before the predicted firing and the alert at it, and one that feeds
//! healthy series for every watched metric and expects no alert at all.

use super::file::{Check, ExpSample, ExprTest, Group, input_series};
use super::firing::{Run, fed_metrics};
use super::generator::{Generator, SEM, ceil_to, dur};
use super::levels::NUDGES;
use super::series::{Fed, Frame, key, new_series};
use crate::lower::{AlertRule, Condition};
use crate::prom::Series;
use crate::promql::{MetricExpr, Selector, Track};
use crate::render::alerting::{record_selector, recorded};
use std::collections::BTreeMap;
use std::rc::Rc;

impl Generator<'_> {
    /// The test group of rule `ri`.
    pub(super) fn rule_test(&self, ri: usize) -> Result<Group, String> {
        self.rule_test_as(ri, false)
    }

    /// The second test group of the silent-canary rule: the canary's target vanishes
    /// (DNS-based discovery drops a crashed container), so `up` is absent rather than 0.
    pub(super) fn vanished_test(&self, ri: usize) -> Result<Group, String> {
        self.rule_test_as(ri, true)
    }

    /// The test group of rule `ri`; for the silent-canary rule, with its canary's target
    /// still listed and down (`up` 0), or with the target `vanished`.
    fn rule_test_as(&self, ri: usize, vanished: bool) -> Result<Group, String> {
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
            Condition::Silent if vanished => {
                let gone = Frame {
                    levels: Rc::new(canary.clone()),
                    traffic: false,
                    reporting: false,
                };
                (
                    self.scenario(r, &canary, &stable, gone)?,
                    "crashes and its target vanishes (no `up` at all)",
                )
            }
            Condition::Silent => {
                // The target is still listed: every scrape fails, `up` is 0, and the
                // application's series end (Prometheus marks them stale).
                let mut levels = canary.clone();
                levels.insert(sig, 0.0);
                let down = Frame {
                    levels: Rc::new(levels),
                    traffic: false,
                    reporting: true,
                };
                (
                    self.scenario(r, &canary, &stable, down)?,
                    "crashes (its target is down: `up` 0)",
                )
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
                if let Some(g) = r.guard {
                    exprs.push(self.expr_test(g.count, Track::Canary, ts, &fed.series));
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
            // `absent()`'s 1, or the canary's `up` of 0.
            Condition::Silent if vanished => 1.0,
            Condition::Silent => 0.0,
        };
        Ok(Group {
            name,
            interval: dur(self.step),
            input_series: input_series(&fed, self.step),
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
    pub(super) fn healthy_test(&self) -> Result<Group, String> {
        let mut metrics: Vec<usize> = self.rules.iter().flat_map(fed_metrics).collect();
        metrics.sort_unstable();
        metrics.dedup();
        let fed: Vec<&str> = metrics
            .iter()
            .filter_map(|&mi| match &self.plan.metrics[mi].expr {
                MetricExpr::RateRatio { den: s, .. }
                | MetricExpr::Rate { sel: s, .. }
                | MetricExpr::Increase { sel: s, .. }
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
                let c = cq.level(&series, ts, SEM);
                let s = sq.level(&series, ts, SEM);
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
            input_series: input_series(&fed, self.step),
            checks,
            promql_expr_test: exprs,
        })
    }

    /// The silent-canary rule `ri` on a healthy canary that has never failed a request:
    /// its target is up and its request counter grows, but, as client libraries do, it has
    /// no `code="500"` series at all. No alert at any of three checkpoints (the first
    /// window full, the rule's `for` elapsed, one more window).
    pub(super) fn no_errors_test(&self, ri: usize) -> Result<Group, String> {
        let r = &self.rules[ri];
        let up = |t: i64| ceil_to(t, self.ei);
        let t1 = up(self.window + 2 * self.step.max(self.ei));
        let t2 = up(t1 + r.for_ms as i64 + self.ei);
        let t3 = up(t2 + self.window);
        let slots = (t3 / self.step) as usize + 1;
        let service = &self.plan.service.name;
        let labels = |extra: &[(&str, &str)]| {
            let mut l = BTreeMap::from([
                ("service".to_string(), service.clone()),
                ("track".to_string(), Track::Canary.as_str().to_string()),
            ]);
            l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            l
        };
        let requests = Selector::service("http_requests_total", service);
        let mut series = vec![
            new_series("up", labels(&[]), vec![Some(1.0); slots], self.step),
            new_series(
                &requests.metric,
                labels(&[("code", "200")]),
                (0..slots).map(|i| Some(100.0 * i as f64)).collect(),
                self.step,
            ),
        ];
        series.sort_by(|a, b| key(a).cmp(&key(b)));
        if self.first_firing(r, &series, 0, t3)?.is_some() {
            return Err(format!("{} fires on a healthy canary", r.alert));
        }
        let checks = [t1, t2, t3]
            .into_iter()
            .map(|ts| Check {
                eval_time: dur(ts),
                rule: ri,
                fires: None,
            })
            .collect();
        let exprs = vec![self.expr_test(r.metric, Track::Canary, t3, &series)];
        let fed = Fed { series, slots };
        Ok(Group {
            name: format!(
                "healthy canary with no 5xx series at all: no {} at {}, {} or {}",
                r.alert,
                dur(t1),
                dur(t2),
                dur(t3)
            ),
            interval: dur(self.step),
            input_series: input_series(&fed, self.step),
            checks,
            promql_expr_test: exprs,
        })
    }

    /// The guard of rule `ri` (`min_requests: N`) at work: the canary's traffic is a
    /// quarter of N requests per window throughout, and at the switch it crosses the
    /// rule's threshold as in its own test. Unguarded, the rule would fire (at `t`); no
    /// alert at `t` nor one window later, and the recorded request count (below N) at `t`.
    pub(super) fn thin_test(&self, ri: usize) -> Result<Group, String> {
        let r = &self.rules[ri];
        let g = r.guard.ok_or("no guard")?;
        let (mut canary, stable) = self.healthy(&fed_metrics(r))?;
        let (count_sig, count_map) = self.signal(g.count);
        canary.insert(count_sig, count_map.to_signal(g.min as f64) / 4.0);
        let (sig, _) = self.signal(r.metric);
        let (t, high_bad) = self
            .threshold(r, &stable)
            .ok_or("no threshold in signal space")?;
        let unguarded = AlertRule {
            guard: None,
            ..r.clone()
        };
        let end = self.horizon(r);
        let mut last = String::from("no bad level");
        for nudge in NUDGES {
            let Some(b) = self.bad_value(sig, t, high_bad, nudge) else {
                continue;
            };
            let mut levels = canary.clone();
            levels.insert(sig, b);
            let bad = Frame {
                levels: Rc::new(levels),
                traffic: true,
                reporting: true,
            };
            let mut fed = self.scenario_series(r, (&canary, &stable), &bad, end)?;
            let would = match self.first_firing(&unguarded, &fed.series, self.switch_at(), end) {
                Ok(Some(at)) => at,
                Ok(None) => {
                    last = "unguarded, it would not fire".into();
                    continue;
                }
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            let after = would + self.window.div_euclid(self.ei).max(1) * self.ei;
            match self.first_firing(r, &fed.series, 0, after) {
                Ok(None) => {}
                Ok(Some(at)) => {
                    return Err(format!("it fires at {} below `min_requests`", dur(at)));
                }
                Err(e) => {
                    last = e;
                    continue;
                }
            }
            fed.truncate(after, self.step);
            let checks = [would, after]
                .into_iter()
                .map(|ts| Check {
                    eval_time: dur(ts),
                    rule: ri,
                    fires: None,
                })
                .collect();
            let exprs = [
                self.expr_test(g.count, Track::Canary, would, &fed.series),
                self.expr_test(r.metric, Track::Canary, would, &fed.series),
            ]
            .into_iter()
            .filter(|e| e.exp_samples.iter().all(|s| !s.value.is_nan()))
            .collect();
            return Ok(Group {
                name: format!(
                    "{}: the canary crosses the threshold at {} on fewer than {} requests per window (`min_requests`): no alert at {}, where it would fire without the guard, nor at {}",
                    r.alert,
                    dur(self.switch_at()),
                    g.min,
                    dur(would),
                    dur(after)
                ),
                interval: dur(self.step),
                input_series: input_series(&fed, self.step),
                checks,
                promql_expr_test: exprs,
            });
        }
        Err(last)
    }
}
