//! `monitoring.silent_canary`: how long the canary may be silent (no scrape target up, or
//! none listed at all) while it should be serving users before the release rolls back, or
//! `off`. Written as a Prometheus duration or the word `off`.

use super::Duration;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum SilentCanary {
    /// No silent-canary rule (the no-data warnings still fire).
    Off,
    /// Roll back once the canary has been silent this long (the alert's `for:`).
    After(Duration),
}

impl SilentCanary {
    pub(crate) fn parse(s: &str) -> Result<SilentCanary, String> {
        if s == "off" {
            return Ok(SilentCanary::Off);
        }
        Duration::parse(s)
            .map(SilentCanary::After)
            .map_err(|e| format!("{e}, or `off`"))
    }
}

impl fmt::Display for SilentCanary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SilentCanary::Off => f.write_str("off"),
            SilentCanary::After(d) => d.fmt(f),
        }
    }
}

impl TryFrom<String> for SilentCanary {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        SilentCanary::parse(&s)
    }
}

impl From<SilentCanary> for String {
    fn from(s: SilentCanary) -> String {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_duration_or_off() {
        assert_eq!(SilentCanary::parse("off"), Ok(SilentCanary::Off));
        assert_eq!(
            SilentCanary::parse("5m"),
            Ok(SilentCanary::After(Duration::parse("5m").unwrap()))
        );
        assert!(SilentCanary::parse("0s").is_err());
        assert!(SilentCanary::parse("no").is_err());
        assert!(SilentCanary::parse("Off").is_err());
    }
}
