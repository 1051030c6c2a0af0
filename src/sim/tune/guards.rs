//! The `min_requests` guard as the third dimension of a rollback condition's knob: which
//! rules `plan tune` tries guards on, which guards, and the request count they read.
//!
//! A guard `min_requests: N` lets the rule count only at evaluations where the canary
//! served at least N requests in the rate window ([`crate::check::MinRequests`]). On a
//! thin canary that is what lets a sensitive threshold stay: one failed request in a
//! window of a handful no longer rolls the release back.
//!
//! **Which rules.** A guard is only possible on a rollback condition whose metric is
//! counted in requests ([`crate::check::request_count`]: `error_rate`, `availability`,
//! `response_time_p95` with their built-in queries). By default the tune searches the
//! guard only of the rules the thin-traffic check flags ([`crate::check::thin_phase`], at
//! the scenarios' request rate: one failure in a typical window of some phase crosses the
//! threshold, and the rule's own guard does not cover it); `--vary ID.min_requests=A..B`
//! asks for it on any guardable rule, and every other rule keeps its guard as written.
//! Why not every guardable rule: each guard level is another full set of thresholds ×
//! `for`s, so a knob with five guard levels has five times the settings, and the search
//! weighs every setting at every step. On the Lawsker plan (three guardable rules, none
//! thin at its 40 req/s) searching them all by default took the default tune from 27 s to
//! 69 s wall at 2 threads (1,463 settings instead of 371), over the 60 s target of
//! `benches/tune.sh`, for guards that matter little where traffic is thick enough for one
//! failure not to cross.
//!
//! **Which guards.** No guard, the plan's own, and up to four round numbers of the 1-2-5
//! series (`10`, `20`, `50`, ...): from a twentieth of the top to the top, the smallest
//! 1-2-5 number at or above the canary's expected requests per rate window in the first
//! phase that sends it traffic, or above the guard that makes one failure stay below the
//! threshold in every window it counts (`floor(1/t) + 1`, the thin-traffic check's hint)
//! when that is higher: on a thin canary that guard lies above the phase's mean, and it
//! is the one most likely to help. With `--vary ID.min_requests=A..B`: no guard, the
//! plan's own, A, B and the 1-2-5 numbers between them (eight at most, evenly spread).
//!
//! **The count.** A guard reads the canary's `sum(increase(counter[window]))`, a metric
//! of its own appended to the plan's metrics, built as the check builds it for a written
//! guard; a plan without a guard on that counter gets it appended to the tune's copy of
//! the plan only, so that the model computes it (the plan itself, and every run that is
//! not a tune, are unchanged). Its values depend on nothing a rule decides, so appending
//! it changes no draw: the sweep's figures of a setting without a guard are still those of
//! simulating the plan as written (a test runs both).

use crate::check::{CheckedPlan, request_count, thin_phase};

/// A knob's guard levels: `None` (no guard) first when it is among them, then ascending
/// minimums.
pub(crate) type Levels = Vec<Option<u64>>;

/// How many of a knob's guard `levels` let the rule count at an evaluation whose request
/// count is `count`: always a prefix, since no guard always passes and a minimum passes
/// exactly as [`crate::check::MinRequests::passes`] says (`count >= min`; an absent or NaN
/// count passes none).
#[inline]
pub(crate) fn passing(levels: &[Option<u64>], count: Option<f64>) -> usize {
    let unguarded = usize::from(levels.first() == Some(&None));
    let Some(c) = count else {
        return unguarded;
    };
    unguarded + levels[unguarded..].partition_point(|m| m.is_some_and(|m| c >= m as f64))
}

/// Round numbers a default range takes besides no guard and the plan's own.
const DEFAULT_ROUND: usize = 4;

/// Round numbers a `--vary` range takes at most, besides its ends.
const VARY_ROUND: usize = 8;

/// The guard levels of the rollback rule with id `id` in `plan` at `rps` requests per
/// second, or None when the tune does not search its guard (see the module header):
/// `vary` is the range `--vary ID.min_requests=A..B` asks for.
pub(crate) fn levels(
    plan: &CheckedPlan,
    id: &str,
    rps: f64,
    vary: Option<(u64, u64)>,
) -> Result<Option<Levels>, String> {
    let Some(r) = plan.rollbacks.iter().find(|r| r.id == id) else {
        return match vary {
            Some(_) => Err(format!(
                "`{id}` is not a rollback condition: only a rollback condition can have `min_requests`"
            )),
            None => Ok(None),
        };
    };
    let own = r.min_requests.map(|g| g.min);
    if let Err(why) = request_count(&plan.metrics[r.metric]) {
        return match vary {
            Some(_) => Err(format!(
                "`{id}` cannot have `min_requests`: `{}` {why}; only `error_rate`, `availability` and `response_time_p95` with their built-in queries count requests",
                plan.metrics[r.metric].name
            )),
            None => Ok(None),
        };
    }
    let mut mins: Vec<u64> = match vary {
        Some((a, b)) => spread(round_between(a, b), VARY_ROUND)
            .into_iter()
            .chain([a, b])
            .collect(),
        None => {
            if thin_phase(plan, r, rps).is_none() {
                return Ok(None);
            }
            default_round(plan, r, rps)
        }
    };
    mins.extend(own);
    mins.sort_unstable();
    mins.dedup();
    Ok(Some(
        std::iter::once(None)
            .chain(mins.into_iter().map(Some))
            .collect(),
    ))
}

/// The default round guards of rule `r` (see the module header).
fn default_round(plan: &CheckedPlan, r: &crate::check::RollbackRule, rps: f64) -> Vec<u64> {
    let window = plan.monitoring.window.seconds();
    let n = (0..plan.phases.len())
        .map(|i| rps * plan.canary_request_share(i) * window)
        .find(|&n| n > 0.0)
        .unwrap_or(0.0);
    // The guard that keeps one failure below the threshold in every window it counts.
    let covering = crate::check::error_threshold(plan, r)
        .filter(|&t| t > 0.0 && t < 1.0)
        .map_or(0.0, |t| (1.0 / t).floor() + 1.0);
    let top = n.max(covering);
    if !top.is_finite() || top < 1.0 {
        return Vec::new();
    }
    let hi = series().find(|&v| v as f64 >= top).unwrap_or(u64::MAX);
    spread(round_between(hi.div_ceil(20), hi), DEFAULT_ROUND)
}

/// The 1-2-5 series from 1 up, as far as a guard may go.
fn series() -> impl Iterator<Item = u64> {
    (0..12u32).flat_map(|e| [1, 2, 5].map(|m| m * 10u64.pow(e)))
}

/// The 1-2-5 numbers from `a` to `b`.
fn round_between(a: u64, b: u64) -> Vec<u64> {
    series().filter(|&v| a <= v && v <= b).collect()
}

/// At most `most` of `values` (sorted), evenly spread by rank, the first and last kept.
fn spread(values: Vec<u64>, most: usize) -> Vec<u64> {
    if values.len() <= most || most < 2 {
        return values;
    }
    let last = values.len() - 1;
    (0..most)
        .map(|i| values[(i * last + (most - 1) / 2) / (most - 1)])
        .collect()
}

/// The index of the request count a guard on metric `metric` reads among `plan`'s
/// metrics, appended when the plan has none: the count the check appends for a written
/// guard ([`crate::check::request_count`]). None when the metric cannot be guarded.
pub(crate) fn count_metric(plan: &mut CheckedPlan, metric: usize) -> Option<usize> {
    let count = request_count(&plan.metrics[metric]).ok()?;
    Some(
        match plan
            .metrics
            .iter()
            .position(|c| c.name == count.name && c.expr == count.expr)
        {
            Some(k) => k,
            None => {
                plan.metrics.push(count);
                plan.metrics.len() - 1
            }
        },
    )
}

/// Parses the range of `--vary ID.min_requests=FROM..TO`: whole numbers of requests, at
/// least 1, the smaller first.
pub(crate) fn parse_range(from: &str, to: &str) -> Result<(u64, u64), String> {
    let read = |s: &str| {
        s.trim()
            .parse::<u64>()
            .ok()
            .filter(|&n| (1..=1_000_000_000_000).contains(&n))
            .ok_or_else(|| {
                format!(
                    "`{s}` is not a number of requests: write a whole number from 1, like `20..500`"
                )
            })
    };
    let (a, b) = (read(from)?, read(to)?);
    if a > b {
        return Err(format!(
            "`{from}..{to}`: give the smaller end first (`{to}..{from}`)"
        ));
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_passes_a_prefix_as_min_requests_says() {
        use crate::check::MinRequests;
        let levels = [None, Some(5), Some(20), Some(100)];
        for count in [
            None,
            Some(f64::NAN),
            Some(0.0),
            Some(4.999),
            Some(5.0),
            Some(19.0),
            Some(20.0),
            Some(1e9),
        ] {
            let each: Vec<bool> = levels
                .iter()
                .map(|l| l.is_none_or(|min| MinRequests { count: 0, min }.passes(count)))
                .collect();
            let p = passing(&levels, count);
            assert!(each.iter().take(p).all(|&b| b), "{count:?}");
            assert!(each.iter().skip(p).all(|&b| !b), "{count:?}");
        }
        // Without `None`: a kept guard.
        assert_eq!(passing(&[Some(50)], None), 0);
        assert_eq!(passing(&[Some(50)], Some(50.0)), 1);
        assert_eq!(passing(&[None], None), 1);
    }

    /// A plan at `rps` whose first phase sends the canary 2%, its `error_rate` rule at 5%.
    fn thin(rps: f64) -> crate::lower::LoweredPlan {
        let text = format!(
            "name: thin\nrelease: {{ from: v1, to: v2 }}\nservice: {{ name: web, image: example/web, port: 8080 }}\n\
             routing: {{ listen: 80, sticky: {{ cookie: sid }} }}\ntraffic: {{ requests_per_second: {rps} }}\n\
             phases:\n  - {{ name: canary, traffic: 2%, duration: 1h }}\n  - {{ name: full, traffic: 100% }}\n\
             rollback_conditions:\n  - metric: error_rate\n    threshold: 5%\n    duration: 5m\n  - metric: throughput\n    threshold: 1\n    duration: 5m\n"
        );
        crate::pipeline::compile(crate::source::Source::new("thin.yaml".into(), text))
            .plan
            .expect("valid")
    }

    #[test]
    fn guards_are_searched_by_default_where_the_thin_traffic_check_warns() {
        // 2% of 2 req/s: 12 requests per 5m window, one failure 8% > 5%. The top is the
        // 1-2-5 number above the covering guard (21): 50; from a twentieth of it.
        let p = thin(2.0);
        assert_eq!(
            levels(&p.plan, "error_rate", 2.0, None),
            Ok(Some(vec![None, Some(5), Some(10), Some(20), Some(50)]))
        );
        // At 200 req/s, 1200 per window: not thin, not searched unless asked.
        let p = thin(200.0);
        assert_eq!(levels(&p.plan, "error_rate", 200.0, None), Ok(None));
        assert_eq!(
            levels(&p.plan, "error_rate", 200.0, Some((30, 300))),
            Ok(Some(vec![
                None,
                Some(30),
                Some(50),
                Some(100),
                Some(200),
                Some(300)
            ]))
        );
        // Throughput is no count of requests.
        assert_eq!(levels(&p.plan, "throughput", 200.0, None), Ok(None));
        assert!(levels(&p.plan, "throughput", 200.0, Some((1, 5))).is_err());
    }

    #[test]
    fn round_numbers_spread_evenly_and_keep_their_ends() {
        assert_eq!(round_between(3, 60), [5, 10, 20, 50]);
        assert_eq!(
            spread(vec![50, 100, 200, 500, 1000], 4),
            [50, 100, 500, 1000]
        );
        assert_eq!(spread(vec![5, 10], 4), [5, 10]);
        assert_eq!(parse_range("20", "500"), Ok((20, 500)));
        assert!(parse_range("1.5", "5").unwrap_err().contains("`1.5`"));
        assert!(parse_range("0", "5").is_err());
        assert!(
            parse_range("50", "5")
                .unwrap_err()
                .contains("smaller end first")
        );
    }
}
