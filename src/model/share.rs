//! Traffic shares: `5%` or `5` mean five percent, from 0 to 100, to a hundredth of a percent.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A share of traffic, held in hundredths of a percent (0..=10000) so that it is exact and
/// prints back as written (NGINX's `split_clients` takes percentages to two decimals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Value", into = "String")]
pub struct Share(u16);

impl Share {
    pub(crate) const ZERO: Share = Share(0);
    pub(crate) const FULL: Share = Share(10_000);

    pub fn from_hundredths(h: u16) -> Option<Share> {
        (h <= 10_000).then_some(Share(h))
    }

    pub(crate) fn hundredths(self) -> u16 {
        self.0
    }

    /// As a fraction of all traffic, 0.0..=1.0.
    pub fn fraction(self) -> f64 {
        f64::from(self.0) / 10_000.0
    }

    /// A number read as percent (`5` is 5%).
    pub(crate) fn from_percent(p: f64) -> Result<Share, String> {
        if !(0.0..=100.0).contains(&p) {
            return Err(format!("{p}% is outside 0% to 100%"));
        }
        let h = (p * 100.0).round();
        if (h - p * 100.0).abs() > 1e-6 {
            return Err(format!(
                "{p}% has more than two decimals; NGINX splits traffic to a hundredth of a percent"
            ));
        }
        Ok(Share(h as u16))
    }

    /// `5%`, `12.5%` or a bare number of percent (`5`).
    pub(crate) fn parse(s: &str) -> Result<Share, String> {
        let t = s.trim();
        let num = t.strip_suffix('%').unwrap_or(t).trim_end();
        match num.parse::<f64>() {
            Ok(p) if num.chars().all(|c| c.is_ascii_digit() || c == '.') => Share::from_percent(p),
            _ => Err(format!(
                "`{s}` is not a share of traffic; write it like `5%` or `5`"
            )),
        }
    }
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 100, self.0 % 100);
        match frac {
            0 => write!(f, "{whole}%"),
            f2 if f2 % 10 == 0 => write!(f, "{whole}.{}%", f2 / 10),
            f2 => write!(f, "{whole}.{f2:02}%"),
        }
    }
}

impl TryFrom<serde_json::Value> for Share {
    type Error = String;
    fn try_from(v: serde_json::Value) -> Result<Self, String> {
        match v {
            serde_json::Value::Number(n) => Share::from_percent(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Share::parse(&s),
            other => Err(format!("expected a share such as `5%`, found {other}")),
        }
    }
}

impl From<Share> for String {
    fn from(s: Share) -> String {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_forms() {
        assert_eq!(Share::parse("5%").unwrap().hundredths(), 500);
        assert_eq!(Share::parse("5").unwrap().hundredths(), 500);
        assert_eq!(Share::parse("12.5%").unwrap().to_string(), "12.5%");
        assert_eq!(Share::parse("0.05").unwrap().to_string(), "0.05%");
        for bad in ["101%", "-1%", "five", "5%%", "0.001%", "1e1"] {
            assert!(Share::parse(bad).is_err(), "{bad}");
        }
    }
}
