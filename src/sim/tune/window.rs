//! The rate window as a tuned dimension (`--vary window=FROM..TO`). The window is the
//! plan's, not a rule's (`monitoring.window`: every rate, and every gate's `for`, reads
//! it), and what a trial draws depends on it (the scrape spans a window starts and ends
//! on), so each window is a plan of its own with its own sweep, all on the same seeds. A
//! window's plan is the plan file with that window written in and compiled again: the
//! same text `--write` writes, checked by the same rules as `plan validate` (a window a
//! phase is not longer than, or that holds under two scrapes, is not tried, and why is
//! said).

use crate::lower::LoweredPlan;
use crate::model::Duration;
use crate::source::Source;
use crate::syntax::edit::set_key;

/// The windows tried within a range: the usual ones, from a minute to a day.
const LADDER_MS: [u64; 15] = [
    60_000, 120_000, 180_000, 300_000, 600_000, 900_000, 1_200_000, 1_800_000, 2_700_000,
    3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000,
];

/// The most windows one tune tries, the plan's own included: each is a sweep, kept in
/// memory until the search ends.
pub(crate) const MAX_WINDOWS: usize = 6;

/// One plan of a tune: the plan file with a rate window written in.
pub(crate) struct Windowed {
    pub(crate) window_ms: u64,
    /// The plan file with the window written in (the plan's own: as read).
    pub(crate) source: Source,
    pub(crate) lowered: LoweredPlan,
}

/// A window as the plan writes it: `10m`, `1h30m`.
pub(crate) fn show(ms: u64) -> String {
    Duration::from_millis(ms).map_or_else(|| format!("{ms}ms"), |d| d.to_string())
}

/// `FROM..TO` of `--vary window=FROM..TO`, in ms: two durations, the first at most the
/// second.
pub(crate) fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (from, to) = s
        .split_once("..")
        .ok_or("write the range as FROM..TO, e.g. `window=2m..15m`")?;
    let read = |d: &str| crate::model::parse_millis(d.trim());
    let (from, to) = (read(from)?, read(to)?);
    if from > to {
        return Err("the range runs backwards; write the shorter window first".into());
    }
    Ok((from, to))
}

/// The plans a tune runs: the plan as written first, then, with `range` (ms, inclusive),
/// the plan with each other window of the ladder in it; with the windows not tried, each
/// with why. Err when the range leaves no window to try but the plan's, or too many.
pub(crate) fn plans(
    source: &Source,
    lowered: &LoweredPlan,
    range: Option<(u64, u64)>,
) -> Result<(Vec<Windowed>, Vec<String>), String> {
    let own = lowered.plan.monitoring.window.millis();
    let mut plans = vec![Windowed {
        window_ms: own,
        source: source.clone(),
        lowered: lowered.clone(),
    }];
    let Some((from, to)) = range else {
        return Ok((plans, Vec::new()));
    };
    let doc = crate::syntax::parse(source).map_err(|_| "the plan no longer parses".to_string())?;
    let mut skipped = Vec::new();
    let wanted: Vec<u64> = LADDER_MS
        .iter()
        .copied()
        .filter(|&w| from <= w && w <= to && w != own)
        .collect();
    for w in wanted {
        let (text, _) = set_key(source, &doc, "/monitoring", "window", &show(w))
            .map_err(|e| format!("the window cannot be written into the plan: {e}"))?;
        let compiled = crate::pipeline::compile(Source::new(source.name.clone(), text.clone()));
        let error = compiled
            .findings
            .iter()
            .find(|f| f.severity == crate::diagnostic::Severity::Error);
        match (compiled.plan, error) {
            (Some(lowered), None) => plans.push(Windowed {
                window_ms: w,
                source: Source::new(source.name.clone(), text),
                lowered,
            }),
            (_, e) => skipped.push(format!(
                "{}: {}",
                show(w),
                e.map_or("the plan does not compile with it".into(), |e| e
                    .message
                    .clone())
            )),
        }
    }
    if plans.len() == 1 {
        return Err(format!(
            "no window from {} to {} but the plan's own ({}) can be tried{}",
            show(from),
            show(to),
            show(own),
            if skipped.is_empty() {
                format!("; the windows tried are {}", LADDER_MS.map(show).join(", "))
            } else {
                format!(": {}", skipped.join("; "))
            }
        ));
    }
    if plans.len() > MAX_WINDOWS {
        return Err(format!(
            "{} windows from {} to {} (the plan's own included), more than the {MAX_WINDOWS} one tune tries (each is a sweep of its own): narrow the range",
            plans.len(),
            show(from),
            show(to)
        ));
    }
    Ok((plans, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lawsker() -> (Source, LoweredPlan) {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/plans/lawsker.yaml");
        let source = Source::load(std::path::Path::new(path)).expect("reads");
        let lowered = crate::pipeline::compile(source.clone())
            .plan
            .expect("compiles");
        (source, lowered)
    }

    #[test]
    fn each_window_is_the_plan_with_it_written_in() {
        let (source, lowered) = lawsker();
        let (tried, skipped) = plans(&source, &lowered, Some((120_000, 900_000))).unwrap();
        let windows: Vec<u64> = tried.iter().map(|p| p.window_ms).collect();
        assert_eq!(windows, [300_000, 120_000, 180_000, 600_000, 900_000]);
        assert!(skipped.is_empty(), "{skipped:?}");
        for p in &tried[1..] {
            assert_eq!(p.lowered.plan.monitoring.window.millis(), p.window_ms);
            // Gates fire after the window: their `for` moved with it.
            let gate = p
                .lowered
                .rules
                .iter()
                .find(|r| r.kind == crate::lower::RuleKind::Gate);
            assert_eq!(gate.map(|g| g.for_ms), Some(p.window_ms));
            // Lawsker states no window: it is added under `monitoring:`, one line.
            assert_eq!(
                p.source.text.lines().count(),
                source.text.lines().count() + 1
            );
            assert!(
                p.source
                    .text
                    .contains(&format!("\n  window: {}\n", show(p.window_ms)))
            );
        }
        assert!(plans(&source, &lowered, Some((300_000, 300_000))).is_err());
        assert!(plans(&source, &lowered, Some((60_000, 86_400_000))).is_err());
    }
}
