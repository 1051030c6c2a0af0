//! What `plan tune` varies: per rule a [`Knob`], the thresholds (a [`Ladder`]), `for`
//! durations and `min_requests` guards ([`super::guards`]) it may take, the plan's own
//! setting among them.
//!
//! By default a rollback condition's thresholds span its own threshold's distance from
//! the metric's neutral value (0 for a rule on a high value, 100% for a rule on a low
//! ratio, 1 for a factor of stable) from an eighth to eight times that distance, in steps
//! of √2, and its `for` the common durations from one evaluation interval to 30 minutes;
//! a gate's threshold spans the same, its `for` being the monitoring window.
//! A rule's guard is searched where [`super::guards`] says. `--vary` sets a range of any;
//! `--keep` holds a rule as written, its guard too.

use super::guards;
use super::ladder::Ladder;
use crate::check::{CheckedPlan, GatePolicy, MinRequests};
use crate::lower::{AlertRule, Condition, LoweredPlan, Rhs, RuleKind};
use crate::model::{Amount, Op, Unit};

/// A rule `plan tune` watches, and the settings it may take.
#[derive(Debug, Clone)]
pub(crate) struct Knob {
    /// Index into the lowered rules.
    pub(crate) rule: usize,
    pub(crate) kind: RuleKind,
    /// Its thresholds, easiest first; one when the rule is kept as written.
    pub(crate) ladder: Ladder,
    /// Its `for` durations (ms), shortest first.
    pub(crate) fors: Vec<u64>,
    /// Its `min_requests` guards ([`guards::Levels`]): no guard first when it is one, then
    /// ascending minimums; one when the guard is not searched (`[None]` without one).
    pub(crate) guards: guards::Levels,
    /// The plan metric a guard reads (the canary's request count), when it has a guard.
    pub(crate) count: Option<usize>,
    /// The plan's own setting.
    pub(crate) current: Variant,
    /// The threshold as the plan writes it (`10%`; a gate with its comparison, `< 5%`):
    /// the form every level is stated in.
    pub(crate) written: Option<String>,
}

/// One setting of a knob: indices into its `guards`, `fors` and ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Variant {
    pub(crate) guard: usize,
    pub(crate) for_: usize,
    pub(crate) level: usize,
}

impl Knob {
    pub(crate) fn variants(&self) -> usize {
        self.guards.len() * self.fors.len() * self.ladder.len()
    }

    /// A variant's place among the knob's [`variants`](Self::variants): by guard, then
    /// `for`, then threshold.
    pub(crate) fn index(&self, v: Variant) -> usize {
        (v.guard * self.fors.len() + v.for_) * self.ladder.len() + v.level
    }

    pub(crate) fn variant(&self, index: usize) -> Variant {
        let per_guard = self.fors.len() * self.ladder.len();
        Variant {
            guard: index / per_guard,
            for_: index % per_guard / self.ladder.len(),
            level: index % self.ladder.len(),
        }
    }

    /// The guard of variant `v`, as the rule reads it.
    pub(crate) fn guard(&self, v: Variant) -> Option<MinRequests> {
        match (self.guards[v.guard], self.count) {
            (Some(min), Some(count)) => Some(MinRequests { count, min }),
            _ => None,
        }
    }

    /// Whether the knob has more than the plan's own setting.
    pub(crate) fn tuned(&self) -> bool {
        self.variants() > 1
    }

    /// The least sensitive setting: the hardest threshold, the longest `for`, the highest
    /// guard (a higher guard counts fewer evaluations, so its alerts fire no sooner).
    pub(crate) fn calmest(&self) -> Variant {
        Variant {
            guard: self.guards.len() - 1,
            for_: self.fors.len() - 1,
            level: self.ladder.len() - 1,
        }
    }

    /// The rule with variant `v`.
    pub(crate) fn apply(&self, rule: &mut AlertRule, v: Variant) {
        rule.condition = self.ladder.conditions[v.level];
        rule.for_ms = self.fors[v.for_];
        rule.guard = self.guard(v);
    }

    /// The threshold of variant `v` as a number: the absolute level, or the factor of
    /// stable.
    pub(crate) fn level(&self, v: Variant) -> f64 {
        level_of(&self.ladder.conditions[v.level]).unwrap_or(f64::NAN)
    }
}

/// The number a condition compares with: its threshold, or its factor of stable.
pub(crate) fn level_of(c: &Condition) -> Option<f64> {
    match *c {
        Condition::Compare {
            rhs: Rhs::Value(v), ..
        } => Some(v),
        Condition::Compare {
            rhs: Rhs::StableTimes { factor, .. },
            ..
        } => Some(factor),
        _ => None,
    }
}

/// Which part of a rule a `--vary` sets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Part {
    /// Thresholds from..to (in the metric's unit, or factors of stable).
    Threshold(f64, f64),
    /// `for` from..to, in ms.
    Duration(u64, u64),
    /// `min_requests` from..to.
    MinRequests(u64, u64),
}

/// Which part of a rule `--vary TARGET.PART=...` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PartName {
    Threshold,
    Duration,
    MinRequests,
}

/// `--vary TARGET.PART=FROM..TO`: a rollback condition's id (`error_rate`), or a gate as
/// `gates.METRIC`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Vary {
    pub(crate) target: String,
    pub(crate) part: Part,
}

/// What a `--vary` or `--keep` names: a rollback condition's id (`error_rate`), or a
/// gate as `gates.METRIC`.
pub(crate) fn target(rule: &AlertRule) -> String {
    match rule.kind {
        RuleKind::Gate => format!("gates.{}", rule.id),
        _ => rule.id.clone(),
    }
}

/// How the search space is set.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ranges {
    pub(crate) vary: Vec<Vary>,
    /// Rules kept as written: targets, or `gates` for every gate.
    pub(crate) keep: Vec<String>,
}

/// The longest `for` a `--vary` may reach.
const MAX_FOR_MS: u64 = 24 * 3_600_000;

/// Threshold levels per default ladder: 2^(i/2) times the distance, i in -6..=6.
const STEPS: i32 = 6;

/// The default `for` durations, besides the plan's own.
pub(crate) const FORS_MS: [u64; 7] = [0, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000];

/// What a tune varies on one plan: its knobs, and the plan they are settings of (the plan
/// with the request counts the guards tried read, [`guards::count_metric`]).
#[derive(Debug, Clone)]
pub(crate) struct Space {
    pub(crate) lowered: LoweredPlan,
    pub(crate) knobs: Vec<Knob>,
}

/// The knobs of a plan whose scenarios run at `rps` requests per second: every rollback
/// rule, and under the gate policy `rollback` every gate (under `hold` the gates move the
/// release's course, and stay as written: see the module header of [`super`]). Errors
/// name a `--vary` or `--keep` that matches nothing or does not fit.
pub(crate) fn knobs(lowered: &LoweredPlan, ranges: &Ranges, rps: f64) -> Result<Space, String> {
    let (plan, rules) = (&lowered.plan, &lowered.rules[..]);
    let mut counted = lowered.clone();
    let eval = plan.monitoring.evaluation_interval.millis();
    let gates_tunable = matches!(plan.gate_policy, GatePolicy::Rollback);
    let targets: Vec<String> = rules.iter().map(target).collect();
    for t in ranges.vary.iter().map(|v| &v.target).chain(&ranges.keep) {
        if t != "gates" && !targets.contains(t) {
            let known: Vec<&str> = rules
                .iter()
                .zip(&targets)
                .filter(|(r, _)| {
                    r.kind != RuleKind::NoData && matches!(r.condition, Condition::Compare { .. })
                })
                .map(|(_, t)| t.as_str())
                .collect();
            return Err(format!(
                "`{t}` is not a rule of the plan; tunable rules: {}",
                known.join(", ")
            ));
        }
    }
    for (i, v) in ranges.vary.iter().enumerate() {
        let is_gate = v.target.starts_with("gates.");
        if ranges
            .keep
            .iter()
            .any(|k| *k == v.target || (k == "gates" && is_gate))
        {
            return Err(format!(
                "`{}` is both varied and kept; drop one of --vary and --keep",
                v.target
            ));
        }
        let same_part =
            |w: &Vary| std::mem::discriminant(&w.part) == std::mem::discriminant(&v.part);
        if ranges.vary[..i]
            .iter()
            .any(|w| w.target == v.target && same_part(w))
        {
            return Err(format!("`{}` is varied twice; give one range", v.target));
        }
    }
    let mut out = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let watched = match r.kind {
            RuleKind::Rollback => true,
            RuleKind::Gate => gates_tunable,
            RuleKind::NoData => false,
        };
        if !watched {
            continue;
        }
        let target = &targets[i];
        let kept = ranges
            .keep
            .iter()
            .any(|k| k == target || (k == "gates" && r.kind == RuleKind::Gate));
        let vary: Vec<&Vary> = ranges.vary.iter().filter(|v| &v.target == target).collect();
        if r.kind == RuleKind::Gate && !gates_tunable && !vary.is_empty() {
            return Err(format!(
                "`{target}`: gates are tuned only under the gate policy `rollback`; under `hold` a gate moves the release's course"
            ));
        }
        let unit = plan.metrics[r.metric].unit;
        let fixed = Knob {
            rule: i,
            kind: r.kind,
            ladder: Ladder {
                conditions: vec![r.condition],
            },
            fors: vec![r.for_ms],
            guards: vec![r.guard.map(|g| g.min)],
            count: r.guard.map(|g| g.count),
            current: Variant {
                guard: 0,
                for_: 0,
                level: 0,
            },
            written: written_of(plan, r),
        };
        let Condition::Compare { op, rhs } = r.condition else {
            // The silent-canary rule: nothing to tune.
            if !vary.is_empty() {
                return Err(format!("`{target}` has no threshold to vary"));
            }
            out.push(fixed);
            continue;
        };
        if kept {
            out.push(fixed);
            continue;
        }
        let current = level_of(&r.condition).unwrap_or(f64::NAN);
        let relative = matches!(rhs, Rhs::StableTimes { .. });
        let mut levels = match vary.iter().find_map(|v| match v.part {
            Part::Threshold(a, b) => Some((a, b)),
            _ => None,
        }) {
            Some((a, b)) => spread(a, b),
            None => default_levels(op, unit, relative, current),
        };
        // Each level as the plan would read it back once written (see
        // [`super::written::canonical`]); the plan's own level is as it reads already.
        let written = written_of(plan, r);
        if let Some(w) = &written {
            for l in &mut levels {
                *l = super::written::canonical(w, *l, unit);
            }
        }
        levels.push(current);
        let duration = vary.iter().find_map(|v| match v.part {
            Part::Duration(a, b) => Some((a, b)),
            _ => None,
        });
        let guarded = vary.iter().find_map(|v| match v.part {
            Part::MinRequests(a, b) => Some((a, b)),
            _ => None,
        });
        if r.kind == RuleKind::Gate && guarded.is_some() {
            return Err(format!(
                "`{target}`: a gate has no `min_requests`; only a rollback condition does"
            ));
        }
        let guard_levels = match r.kind {
            RuleKind::Rollback => guards::levels(plan, &r.id, rps, guarded)
                .map_err(|e| format!("--vary {target}.min_requests: {e}"))?,
            _ => None,
        };
        if r.kind == RuleKind::Gate && duration.is_some() {
            return Err(format!(
                "`{target}`: a gate's `for` is the monitoring window; vary its threshold"
            ));
        }
        // A `for` between 0 and the evaluation interval means the interval.
        let fits = |f: &u64| *f == 0 || *f >= eval;
        let mut fors: Vec<u64> = match duration {
            _ if r.kind == RuleKind::Gate => Vec::new(),
            Some((a, b)) => FORS_MS
                .iter()
                .copied()
                .filter(|&f| f >= a && f <= b)
                .chain([a, b])
                .filter(fits)
                .collect(),
            None => FORS_MS.iter().copied().filter(fits).collect(),
        };
        fors.push(r.for_ms);
        fors.sort_unstable();
        fors.dedup();
        let ladder = Ladder::new(op, rhs, levels);
        let level = ladder
            .conditions
            .iter()
            .position(|c| *c == r.condition)
            .unwrap_or(0);
        let for_ = fors.iter().position(|&f| f == r.for_ms).unwrap_or(0);
        let own = r.guard.map(|g| g.min);
        // The guards tried read a request count the tune's copy of the plan computes.
        let (guards, count) = match guard_levels {
            Some(levels) => match guards::count_metric(&mut counted.plan, r.metric) {
                Some(c) => (levels, Some(c)),
                None => (vec![own], r.guard.map(|g| g.count)),
            },
            None => (vec![own], r.guard.map(|g| g.count)),
        };
        let guard = guards.iter().position(|&g| g == own).unwrap_or(0);
        out.push(Knob {
            rule: i,
            kind: r.kind,
            ladder,
            fors,
            guards,
            count,
            current: Variant { guard, for_, level },
            written,
        });
    }
    Ok(Space {
        lowered: counted,
        knobs: out,
    })
}

/// A rule's threshold as the plan writes it (a gate with its comparison).
pub(crate) fn written_of(plan: &CheckedPlan, r: &AlertRule) -> Option<String> {
    match r.kind {
        RuleKind::Gate => plan
            .gates
            .iter()
            .find(|g| g.metric == r.metric)
            .map(|g| g.written.clone()),
        RuleKind::Rollback => plan
            .rollbacks
            .iter()
            .find(|x| x.id == r.id)
            .map(|x| x.written.clone()),
        RuleKind::NoData => None,
    }
}

/// The default thresholds around `current` (see the module header), within what the unit
/// allows.
fn default_levels(op: Op, unit: Unit, relative: bool, current: f64) -> Vec<f64> {
    let neutral = neutral(op, unit, relative);
    let distance = current - neutral;
    if distance == 0.0 || !distance.is_finite() {
        return vec![current];
    }
    (-STEPS..=STEPS)
        .map(|i| neutral + round_sig(distance * 2f64.powf(f64::from(i) / 2.0), 3))
        .filter(|&v| unit != Unit::Ratio || relative || (0.0..=1.0).contains(&v))
        .filter(|&v| !relative || v > 0.0)
        .collect()
}

/// The metric's neutral value, from which a ladder's distances are measured (see the
/// module header): 1 for a factor of stable or a rule on a low ratio, else 0.
pub(crate) fn neutral(op: Op, unit: Unit, relative: bool) -> f64 {
    let high = matches!(op, Op::Gt | Op::Ge);
    match (relative, high, unit) {
        (true, _, _) => 1.0,
        (false, false, Unit::Ratio) => 1.0,
        _ => 0.0,
    }
}

/// Nine levels from `a` to `b`: evenly on a log scale when both are positive, else
/// evenly.
fn spread(a: f64, b: f64) -> Vec<f64> {
    let (a, b) = (a.min(b), a.max(b));
    let n = 8;
    (0..=n)
        .map(|i| {
            let t = f64::from(i) / f64::from(n);
            if a > 0.0 {
                a * (b / a).powf(t)
            } else {
                a + (b - a) * t
            }
        })
        .map(|v| round_sig(v, 3))
        .collect()
}

/// `v` to `digits` significant digits, so that thresholds print as people write them.
pub(crate) fn round_sig(v: f64, digits: i32) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let scale = 10f64.powi(digits - 1 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}

/// What a parsed `--vary`: the target, the part, and the range's ends as written.
pub(crate) type Parsed = (String, PartName, String, String);

/// Parses `TARGET.threshold=FROM..TO`, `TARGET.duration=FROM..TO` or
/// `TARGET.min_requests=FROM..TO`; thresholds are read in the metric's unit later, so here
/// as amounts.
pub(crate) fn parse_vary(s: &str) -> Result<Parsed, String> {
    let hint = "write TARGET.threshold=FROM..TO, TARGET.duration=FROM..TO or TARGET.min_requests=FROM..TO, like `error_rate.threshold=2%..20%`, `availability.duration=1m..15m`, `error_rate.min_requests=20..500` or `gates.error_rate.threshold=1%..10%`";
    let (lhs, range) = s.split_once('=').ok_or_else(|| format!("`{s}`: {hint}"))?;
    let (target, part) = lhs
        .rsplit_once('.')
        .ok_or_else(|| format!("`{s}`: {hint}"))?;
    let threshold = match part {
        "threshold" => PartName::Threshold,
        "duration" => PartName::Duration,
        "min_requests" => PartName::MinRequests,
        _ => return Err(format!("`{s}`: `{part}` is not a part of a rule; {hint}")),
    };
    let (from, to) = range
        .split_once("..")
        .ok_or_else(|| format!("`{s}`: the range is FROM..TO; {hint}"))?;
    Ok((
        target.to_string(),
        threshold,
        from.trim().into(),
        to.trim().into(),
    ))
}

/// A `--vary` with its amounts read for `rule`'s metric (factors for a relative
/// threshold: `1.5x`, or a bare number).
pub(crate) fn resolve_vary(
    plan: &CheckedPlan,
    rules: &[AlertRule],
    (target, part, from, to): &Parsed,
) -> Result<Vary, String> {
    let rule = rules
        .iter()
        .find(|r| r.kind != RuleKind::NoData && &self::target(r) == target)
        .ok_or_else(|| format!("`{target}` is not a rule of the plan"))?;
    let part = if *part == PartName::MinRequests {
        if rule.kind == RuleKind::Gate {
            return Err(format!(
                "`{target}`: a gate has no `min_requests`; only a rollback condition does"
            ));
        }
        if let Err(why) = crate::check::request_count(&plan.metrics[rule.metric]) {
            return Err(format!(
                "`{target}` cannot have `min_requests`: `{}` {why}; only `error_rate`, `availability` and `response_time_p95` with their built-in queries count requests",
                plan.metrics[rule.metric].name
            ));
        }
        let (a, b) = guards::parse_range(from, to)?;
        Part::MinRequests(a, b)
    } else if *part == PartName::Threshold {
        let unit = plan.metrics[rule.metric].unit;
        let relative = matches!(
            rule.condition,
            Condition::Compare {
                rhs: Rhs::StableTimes { .. },
                ..
            }
        );
        let read = |s: &str| -> Result<f64, String> {
            if relative {
                let f = s.trim().trim_end_matches('x').trim();
                return f
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && *f > 0.0)
                    .ok_or_else(|| {
                        format!("`{s}`: `{target}` compares with stable; vary its factor, like `1.5x..4x`")
                    });
            }
            Amount::parse(s)?
                .in_unit(unit)
                .map_err(|e| format!("`{s}`: {e}"))
        };
        let (a, b) = (read(from)?, read(to)?);
        if a < 0.0 || b < 0.0 {
            return Err(format!("`{target}`: a threshold is not negative"));
        }
        if unit == Unit::Ratio && !relative && (a > 1.0 || b > 1.0) {
            return Err(format!(
                "`{target}` is a ratio: its thresholds are at most 100% (`1`)"
            ));
        }
        Part::Threshold(a, b)
    } else {
        let read = |s: &str| crate::model::parse_millis(s).map_err(|e| format!("`{s}`: {e}"));
        let (a, b) = (read(from)?, read(to)?);
        if b > MAX_FOR_MS {
            return Err(format!(
                "`{to}`: a rollback's `for` of more than 24h would never fire within a phase; give at most `24h`"
            ));
        }
        Part::Duration(a, b)
    };
    let reversed = match part {
        Part::Threshold(a, b) => a > b,
        Part::Duration(a, b) | Part::MinRequests(a, b) => a > b,
    };
    if reversed {
        return Err(format!(
            "`{from}..{to}`: give the smaller end first (`{to}..{from}`)"
        ));
    }
    Ok(Vary {
        target: target.clone(),
        part,
    })
}

/// The plan with `setting` (one variant per knob) in place of its own thresholds.
pub(crate) fn apply(lowered: &LoweredPlan, knobs: &[Knob], setting: &[Variant]) -> LoweredPlan {
    let mut out = lowered.clone();
    for (k, &v) in knobs.iter().zip(setting) {
        k.apply(&mut out.rules[k.rule], v);
    }
    out
}

/// The rules a tune's model is built for: the plan's, one per threshold of every ladder,
/// so that the model tells apart every threshold the tune tries (what a trial draws
/// depends on it: see [`crate::sim::synth::Model::new`]), and one per guard tried, so that
/// the metrics an evaluation computes include each guard's request count
/// ([`crate::sim::montecarlo::Demands`]).
pub(crate) fn model_rules(lowered: &LoweredPlan, knobs: &[Knob]) -> Vec<AlertRule> {
    let mut rules = lowered.rules.clone();
    for k in knobs {
        for c in &k.ladder.conditions {
            let mut r = lowered.rules[k.rule].clone();
            r.condition = *c;
            rules.push(r);
        }
        for g in 0..k.guards.len() {
            let guard = k.guard(Variant {
                guard: g,
                ..k.current
            });
            if guard.is_some() && guard != lowered.rules[k.rule].guard {
                let mut r = lowered.rules[k.rule].clone();
                r.guard = guard;
                rules.push(r);
            }
        }
    }
    rules
}

/// The plan's own setting.
pub(crate) fn current(knobs: &[Knob]) -> Vec<Variant> {
    knobs.iter().map(|k| k.current).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ladders_span_the_distance_from_neutral() {
        // 10% errors: 1.25% .. 80%.
        let l = default_levels(Op::Gt, Unit::Ratio, false, 0.1);
        assert_eq!(l.first(), Some(&0.0125));
        assert_eq!(l.last(), Some(&0.8));
        assert!(l.contains(&0.1));
        // 99% availability: 99.875% .. 92%.
        let l = default_levels(Op::Lt, Unit::Ratio, false, 0.99);
        assert_eq!(l.first(), Some(&0.99875));
        assert_eq!(l.last(), Some(&0.92));
        // 3x stable: 1.25x .. 17x.
        let l = default_levels(Op::Gt, Unit::Ratio, true, 3.0);
        assert_eq!(l.first(), Some(&1.25));
        assert_eq!(l.last(), Some(&17.0));
    }

    #[test]
    fn vary_reads_target_part_and_range() {
        assert_eq!(
            parse_vary("gates.error_rate.threshold=1%..10%").unwrap(),
            (
                "gates.error_rate".into(),
                PartName::Threshold,
                "1%".into(),
                "10%".into()
            )
        );
        assert_eq!(
            parse_vary("error_rate.min_requests=20..500").unwrap().1,
            PartName::MinRequests
        );
        assert!(parse_vary("error_rate.limit=1..2").is_err());
        assert!(parse_vary("error_rate.threshold=1%").is_err());
    }
}
