//! The Prometheus settings a plan states (evaluation and scrape intervals, the rate
//! window), defaulted and checked: inside the limits of [`crate::limits`]; a window long
//! enough for `rate()` to see two scrapes (an error below, a warning below four); and an
//! evaluation interval no longer than any rule's `for` (a rule pending at one evaluation
//! fires at the next, so a shorter `for` means one interval, not what is written).

use super::checked::Monitoring;
use crate::diagnostic::Diagnostic;
use crate::limits::{MAX_INTERVAL_MS, MAX_WINDOW_MS, MIN_INTERVAL_MS};
use crate::model::{self, Duration, Plan, SilentCanary};

/// Default Prometheus settings when a plan states none.
const DEFAULT_EVALUATION_INTERVAL_MS: u64 = 60_000;
const DEFAULT_SCRAPE_INTERVAL_MS: u64 = 15_000;
const DEFAULT_WINDOW_MS: u64 = 300_000;

/// The default of `silent_canary`: the rate window, and at least two evaluation intervals.
/// A restart or a failed scrape is shorter and passes; a canary silent for a whole window
/// has no `rate()` left (its last samples have left the window), so every rate-based rule
/// is blind from then on, and waiting longer only serves more users 502s. Two evaluations
/// at least, so that one evaluation catching one failed scrape never rolls back.
fn default_silent_canary(m: &Monitoring) -> Duration {
    let ms = m.window.millis().max(2 * m.evaluation_interval.millis());
    Duration::from_millis(ms).unwrap_or(m.window)
}

pub(crate) fn monitoring(plan: &Plan, f: &mut Vec<Diagnostic>) -> Monitoring {
    let m = plan.monitoring.clone().unwrap_or_default();
    let or = |d: Option<model::Duration>, ms| {
        d.unwrap_or_else(|| model::Duration::from_millis(ms).expect("positive default"))
    };
    let settings = Monitoring {
        evaluation_interval: or(m.evaluation_interval, DEFAULT_EVALUATION_INTERVAL_MS),
        scrape_interval: or(m.scrape_interval, DEFAULT_SCRAPE_INTERVAL_MS),
        window: or(m.window, DEFAULT_WINDOW_MS),
        runbook_url: m.runbook_url,
        silent_canary: None,
        silent_canary_default: m.silent_canary.is_none(),
    };
    let mut settings = settings;
    settings.silent_canary = match m.silent_canary {
        Some(SilentCanary::Off) => None,
        Some(SilentCanary::After(d)) => Some(d),
        None => Some(default_silent_canary(&settings)),
    };
    let show = |ms: u64| Duration::from_millis(ms).map_or_else(String::new, |d| format!("`{d}`"));
    for (key, d) in [
        ("evaluation_interval", settings.evaluation_interval),
        ("scrape_interval", settings.scrape_interval),
    ] {
        if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&d.millis()) {
            f.push(
                Diagnostic::error(
                    "out-of-range",
                    format!("/monitoring/{key}"),
                    format!(
                        "`{key}` must be from {} to {}",
                        show(MIN_INTERVAL_MS),
                        show(MAX_INTERVAL_MS)
                    ),
                )
                .with_hint("Prometheus' own default is `1m`; `15s` is common for scrapes"),
            );
        }
    }
    let window = settings.window;
    if window.millis() > MAX_WINDOW_MS {
        f.push(
            Diagnostic::error(
                "out-of-range",
                "/monitoring/window",
                format!(
                    "the rate window is longer than the longest allowed, `{}h`",
                    MAX_WINDOW_MS / 3_600_000
                ),
            )
            .with_hint("a canary's rules judge its last minutes or hours: `5m` to `1h` is usual"),
        );
    } else if window.millis() < 2 * settings.scrape_interval.millis() {
        let pointer = if m.window.is_some() {
            "/monitoring/window"
        } else {
            "/monitoring/scrape_interval"
        };
        f.push(
            Diagnostic::error(
                "window-too-short",
                pointer,
                format!(
                    "a {window} window holds fewer than two scrapes {} apart, so `rate()` over it never has a value",
                    settings.scrape_interval
                ),
            )
            .with_hint("make `window` at least twice the scrape interval; four times is the usual advice"),
        );
    } else if window.millis() < 4 * settings.scrape_interval.millis() {
        let pointer = if m.window.is_some() {
            "/monitoring/window"
        } else {
            "/monitoring/scrape_interval"
        };
        let scrapes = window.millis() / settings.scrape_interval.millis();
        f.push(
            Diagnostic::warning(
                "window-few-scrapes",
                pointer,
                format!(
                    "a {window} window holds only {scrapes} scrapes {} apart: `rate()` extrapolates from the {} between them to the whole window, so one scrape that comes a little early or late swings it{}",
                    settings.scrape_interval,
                    if scrapes == 2 { "one interval" } else { "two intervals" },
                    if scrapes == 2 {
                        ", and one that comes late leaves a single sample: no value at all"
                    } else {
                        ""
                    }
                ),
            )
            .with_hint(format!(
                "make `window` at least four scrapes ({}), the usual advice",
                Duration::from_millis(4 * settings.scrape_interval.millis())
                    .map_or_else(String::new, |d| format!("`{d}`"))
            )),
        );
    }
    settings
}

/// Every rule whose `for` is shorter than the evaluation interval (but not zero): an alert
/// pending at one evaluation fires at the next, one interval later, whatever its `for`.
/// Rollback rules wait their `duration`; gates and no-data alerts wait one rate window.
pub(crate) fn evaluation_fits_rules(plan: &Plan, settings: &Monitoring, f: &mut Vec<Diagnostic>) {
    let ei = settings.evaluation_interval;
    let stated = plan.monitoring.as_ref();
    for (i, rc) in plan.rollback_conditions.iter().enumerate() {
        let d = rc.duration;
        if d.millis() > 0 && d.millis() < ei.millis() {
            f.push(
                Diagnostic::error(
                    "for-shorter-than-evaluation",
                    format!("/rollback_conditions/{i}/duration"),
                    format!(
                        "`duration: {d}` is shorter than the evaluation interval, {ei}: Prometheus evaluates the rule every {ei}, so once pending it fires at the next evaluation, {ei} later; `{d}` never means what it says"
                    ),
                )
                .with_hint(format!(
                    "write `duration: {ei}` or longer (what the rule really waits), `0s` to fire at once, or evaluate more often (`monitoring.evaluation_interval` at most `{d}`)"
                )),
            );
        }
    }
    let window = settings.window;
    if (!plan.rollback_conditions.is_empty() || !plan.gates.is_empty())
        && window.millis() < ei.millis()
    {
        let pointer = if stated.is_some_and(|m| m.window.is_some()) {
            "/monitoring/window"
        } else {
            "/monitoring/evaluation_interval"
        };
        f.push(
                Diagnostic::error(
                    "for-shorter-than-evaluation",
                    pointer,
                    format!(
                        "the rate window, {window}, is shorter than the evaluation interval, {ei}: gates and no-data alerts wait one window (`for: {window}`), so each fires at the evaluation after it turns pending, and scrapes between evaluations are never read by any rule"
                    ),
                )
                .with_hint(format!(
                    "make `window` at least the evaluation interval (`{ei}`), or evaluate more often (`monitoring.evaluation_interval` at most `{window}`)"
                )),
            );
    }
}
