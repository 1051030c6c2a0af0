//! Durations in Prometheus syntax (`30s`, `5m`, `1h30m`, `2d`): [`Duration`], always
//! positive (phases, intervals, windows), and [`ForDuration`], zero allowed (a rollback
//! rule's `for`: Prometheus' default `for: 0` fires at the first evaluation where the
//! condition holds).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::num::NonZeroU64;

/// A positive duration, in milliseconds, written and printed in Prometheus syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Duration(NonZeroU64);

/// Units in the order Prometheus requires them, with their length in milliseconds.
const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// The longest duration accepted: ten years is far past any release.
const MAX_MS: u64 = 10 * 365 * 86_400_000;

impl Duration {
    pub fn from_millis(ms: u64) -> Option<Duration> {
        NonZeroU64::new(ms)
            .filter(|m| m.get() <= MAX_MS)
            .map(Duration)
    }

    pub fn millis(self) -> u64 {
        self.0.get()
    }

    /// `hours` hours (a default written in code; `hours` is positive).
    pub(crate) const fn from_hours(hours: u64) -> Duration {
        match NonZeroU64::new(hours * 3_600_000) {
            Some(ms) => Duration(ms),
            None => panic!("a duration is positive"),
        }
    }

    pub(crate) fn seconds(self) -> f64 {
        self.0.get() as f64 / 1000.0
    }

    /// Parses Prometheus duration syntax: one or more `<integer><unit>` with units from
    /// largest to smallest, each at most once.
    pub(crate) fn parse(s: &str) -> Result<Duration, String> {
        let total = parse_millis(s)?;
        if total == 0 {
            return Err(format!("`{s}` is zero; a duration must be positive"));
        }
        Duration::from_millis(total).ok_or_else(|| format!("`{s}` is longer than ten years"))
    }
}

/// Milliseconds of a Prometheus duration, zero allowed.
pub fn parse_millis(s: &str) -> Result<u64, String> {
    let bad = || format!("`{s}` is not a duration; write it like `30s`, `5m`, `1h30m` or `2d`");
    if s.is_empty() {
        return Err(bad());
    }
    let bytes = s.as_bytes();
    let (mut i, mut total, mut next_unit) = (0usize, 0u64, 0usize);
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || i - start > 12 {
            return Err(bad());
        }
        let n: u64 = s[start..i].parse().map_err(|_| bad())?;
        let ustart = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let Some(k) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(bad());
        };
        if k < next_unit {
            return Err(format!(
                "`{s}` has its units out of order; write them from largest to smallest, like `1h30m`"
            ));
        }
        next_unit = k + 1;
        total = n
            .checked_mul(UNITS[k].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    Ok(total)
}

impl fmt::Display for Duration {
    /// The canonical Prometheus form: `90m` prints as `1h30m`, as Prometheus prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.get();
        for (unit, len) in UNITS {
            if ms >= len {
                write!(f, "{}{unit}", ms / len)?;
                ms %= len;
            }
        }
        Ok(())
    }
}

/// A rollback rule's `for`: a duration in Prometheus syntax, zero allowed (`0s`, `5m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ForDuration(u64);

impl ForDuration {
    /// At most ten years; zero allowed.
    pub fn from_millis(ms: u64) -> Option<ForDuration> {
        (ms <= MAX_MS).then_some(ForDuration(ms))
    }

    pub fn millis(self) -> u64 {
        self.0
    }

    /// Parses Prometheus duration syntax, `0s` (any zero, `0m`) included.
    pub(crate) fn parse(s: &str) -> Result<ForDuration, String> {
        let total = parse_millis(s)?;
        if total > MAX_MS {
            return Err(format!("`{s}` is longer than ten years"));
        }
        Ok(ForDuration(total))
    }

    /// The positive duration, unless zero.
    pub(crate) fn positive(self) -> Option<Duration> {
        Duration::from_millis(self.0)
    }
}

impl fmt::Display for ForDuration {
    /// Canonical like [`Duration`]; zero prints as `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.positive() {
            Some(d) => d.fmt(f),
            None => f.write_str("0s"),
        }
    }
}

impl TryFrom<String> for ForDuration {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        ForDuration::parse(&s)
    }
}

impl From<ForDuration> for String {
    fn from(d: ForDuration) -> String {
        d.to_string()
    }
}

impl TryFrom<String> for Duration {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Duration::parse(&s)
    }
}

impl From<Duration> for String {
    fn from(d: Duration) -> String {
        d.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_syntax() {
        assert_eq!(Duration::parse("5m").unwrap().millis(), 300_000);
        assert_eq!(Duration::parse("1h30m").unwrap().millis(), 5_400_000);
        assert_eq!(Duration::parse("2d").unwrap().millis(), 172_800_000);
        assert_eq!(Duration::parse("250ms").unwrap().millis(), 250);
        for bad in [
            "", "5", "m", "5 m", "30m1h", "5M", "1.5h", "0s", "-5m", "5m5m",
        ] {
            assert!(Duration::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_for_duration_may_be_zero() {
        assert_eq!(ForDuration::parse("0s").unwrap().millis(), 0);
        assert_eq!(ForDuration::parse("0m").unwrap().to_string(), "0s");
        assert_eq!(ForDuration::parse("90m").unwrap().to_string(), "1h30m");
        assert!(ForDuration::parse("0").is_err());
        assert!(ForDuration::parse("-1m").is_err());
        assert!(ForDuration::parse("11y").is_err());
    }

    #[test]
    fn prints_canonically() {
        assert_eq!(Duration::parse("90m").unwrap().to_string(), "1h30m");
        assert_eq!(Duration::parse("24h").unwrap().to_string(), "1d");
        assert_eq!(Duration::parse("1500ms").unwrap().to_string(), "1s500ms");
    }
}
