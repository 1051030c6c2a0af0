//! How refusals reach the audit log without a flood filling the disk: the first
//! [`PER_WINDOW`] of each minute are logged one by one, the rest only counted, and the count
//! logged (one line) when the minute is over or the service stops.

use std::collections::BTreeMap;

/// Refusals logged one by one per window.
pub(crate) const PER_WINDOW: u32 = 20;

/// The window, in milliseconds.
pub(crate) const WINDOW_MS: i64 = 60_000;

/// What a refusal should do with the log.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Say {
    /// Log it.
    Log,
    /// Count it only.
    Count,
}

#[derive(Debug, Default)]
pub(crate) struct Throttle {
    start_ms: i64,
    logged: u32,
    /// Refusals not logged in this window, by kind (`401`, `429`, ...).
    counted: BTreeMap<String, u64>,
}

impl Throttle {
    /// A refusal of `kind` at `now_ms`: whether to log it. First call [`Throttle::summary`]
    /// so a finished window's count is logged before it.
    pub(crate) fn refusal(&mut self, kind: &str, now_ms: i64) -> Say {
        if now_ms - self.start_ms >= WINDOW_MS {
            self.start_ms = now_ms;
            self.logged = 0;
        }
        if self.logged < PER_WINDOW {
            self.logged += 1;
            Say::Log
        } else {
            *self.counted.entry(kind.to_string()).or_default() += 1;
            Say::Count
        }
    }

    /// The refusals counted and not logged, once their window is over at `now_ms` (or at
    /// once with `flush`): `412 refusals not logged one by one since ...: 429 x412`.
    pub(crate) fn summary(&mut self, now_ms: i64, flush: bool) -> Option<String> {
        if self.counted.is_empty() || (!flush && now_ms - self.start_ms < WINDOW_MS) {
            return None;
        }
        let total: u64 = self.counted.values().sum();
        let kinds: Vec<String> = self
            .counted
            .iter()
            .map(|(k, n)| format!("{k} x{n}"))
            .collect();
        self.counted.clear();
        Some(format!(
            "{total} more refusals in the minute from {} were not logged one by one ({})",
            super::time::instant(self.start_ms),
            kinds.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_of_a_window_are_logged_then_counted() {
        let mut t = Throttle::default();
        let t0 = 1_000_000;
        let says: Vec<Say> = (0..1000).map(|_| t.refusal("429", t0)).collect();
        assert_eq!(says.iter().filter(|s| **s == Say::Log).count(), 20);
        assert_eq!(t.summary(t0 + 10, false), None, "the window is not over");
        let s = t.summary(t0 + WINDOW_MS, false).unwrap();
        assert!(s.starts_with("980 more refusals"), "{s}");
        assert!(s.contains("429 x980"), "{s}");
        assert_eq!(t.summary(t0 + WINDOW_MS, true), None, "said once");
        assert_eq!(t.refusal("401", t0 + WINDOW_MS), Say::Log, "a new window");
        t.refusal("401", t0 + WINDOW_MS + 1);
        assert_eq!(t.summary(t0 + WINDOW_MS + 2, true), None, "nothing counted");
    }
}
