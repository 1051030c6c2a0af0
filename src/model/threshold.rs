//! Thresholds and gate comparisons as written in a plan: `0.1`, `10%`, `5000`, `5s`,
//! `512MiB`, `2x stable`, `80% of stable`, and gates such as `< 5%` or `>= 95% of stable`.
//!
//! Rules that cannot be misread: a bare number is in the metric's own unit (a ratio's `0.1`
//! is 10%, a millisecond metric's `5000` is five seconds); `%` is only for ratios; a
//! duration (`5s`) is only for latency metrics; relative thresholds name `stable`.
//!
//! A comparison with stable may carry an absolute floor, because a factor of nothing is
//! nothing: with no failed request on stable, `3x stable` trips on the canary's first one.
//! A rollback threshold says what the canary must also be past (`3x stable and above 1%`,
//! `95% of stable and below 99%`); a gate, what else is healthy enough (`<= 1.5x stable or
//! <= 1%`).

use super::duration::{Duration, parse_millis};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The unit of a metric's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Ratio,
    Milliseconds,
    Seconds,
    Bytes,
    Count,
    PerSecond,
}

impl Unit {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Unit::Ratio => "ratio",
            Unit::Milliseconds => "milliseconds",
            Unit::Seconds => "seconds",
            Unit::Bytes => "bytes",
            Unit::Count => "count",
            Unit::PerSecond => "per_second",
        }
    }

    /// Prints a value of this unit for people: `10%`, `5000ms`, `3s`, `80`.
    pub(crate) fn show(self, v: f64) -> String {
        match self {
            Unit::Ratio => format!("{}%", trim(v * 100.0)),
            Unit::Milliseconds => format!("{}ms", trim(v)),
            Unit::Seconds => format!("{}s", trim(v)),
            Unit::Bytes => format!("{} bytes", trim(v)),
            Unit::Count => trim(v),
            Unit::PerSecond => format!("{}/s", trim(v)),
        }
    }
}

/// Formats a float without trailing noise (`0.1*100` prints as `10`).
pub(crate) fn trim(v: f64) -> String {
    let s = format!("{:.6}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// Which direction of a metric is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bad {
    High,
    Low,
}

/// An absolute amount as written, before it meets its metric's unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    /// A bare number: in the metric's own unit.
    Number(f64),
    /// `10%`: only for ratios.
    Percent(f64),
    /// `5s`, `250ms`: only for latency metrics; milliseconds.
    Millis(u64),
    /// `512MiB`, `1GB`: only for byte metrics; bytes.
    Bytes(f64),
}

/// A threshold: an absolute amount, or a factor of the stable version's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Absolute(Amount),
    /// `2x stable` (factor 2) or `80% of stable` (factor 0.8, kept as percent for printing),
    /// optionally `and above 1%` / `and below 99%`: the canary must also be past that
    /// amount (on the side `past.0` names: above is [`Bad::High`]).
    Relative {
        factor: f64,
        percent: bool,
        past: Option<(Bad, Amount)>,
    },
}

const BYTE_UNITS: [(&str, f64); 9] = [
    ("KiB", 1024.0),
    ("MiB", 1024.0 * 1024.0),
    ("GiB", 1024.0 * 1024.0 * 1024.0),
    ("TiB", 1024.0 * 1024.0 * 1024.0 * 1024.0),
    ("KB", 1e3),
    ("MB", 1e6),
    ("GB", 1e9),
    ("TB", 1e12),
    ("B", 1.0),
];

fn number(s: &str) -> Option<f64> {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
        && s.chars().any(|c| c.is_ascii_digit());
    ok.then(|| s.parse::<f64>().ok())
        .flatten()
        .filter(|v| v.is_finite())
}

impl Amount {
    pub(crate) fn parse(s: &str) -> Result<Amount, String> {
        let t = s.trim();
        if let Some(n) = number(t) {
            return Ok(Amount::Number(n));
        }
        if let Some(p) = t.strip_suffix('%').and_then(|p| number(p.trim_end())) {
            return Ok(Amount::Percent(p));
        }
        for (suffix, mult) in BYTE_UNITS {
            if let Some(n) = t.strip_suffix(suffix).and_then(|n| number(n.trim_end())) {
                return Ok(Amount::Bytes(n * mult));
            }
        }
        if let Ok(ms) = parse_millis(t) {
            return Ok(Amount::Millis(ms));
        }
        Err(format!(
            "`{s}` is not a threshold; write a number (`0.1`, `5000`), a percentage (`10%`), a duration (`5s`) or a size (`512MiB`)"
        ))
    }

    /// The amount in `unit`, or why it does not fit that unit.
    pub(crate) fn in_unit(self, unit: Unit) -> Result<f64, String> {
        match (self, unit) {
            (Amount::Number(n), _) => Ok(n),
            (Amount::Percent(p), Unit::Ratio) => Ok(p / 100.0),
            (Amount::Millis(ms), Unit::Milliseconds) => Ok(ms as f64),
            (Amount::Millis(ms), Unit::Seconds) => Ok(ms as f64 / 1000.0),
            (Amount::Bytes(b), Unit::Bytes) => Ok(b),
            (Amount::Percent(_), u) => Err(format!(
                "a percentage fits only a ratio metric, and this one is in {}",
                u.name()
            )),
            (Amount::Millis(_), u) => Err(format!(
                "a duration fits only a latency metric, and this one is in {}",
                u.name()
            )),
            (Amount::Bytes(_), u) => Err(format!(
                "a size fits only a byte metric, and this one is in {}",
                u.name()
            )),
        }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Amount::Number(n) => write!(f, "{n}"),
            Amount::Percent(p) => write!(f, "{p}%"),
            Amount::Millis(ms) => match Duration::from_millis(ms) {
                Some(d) => write!(f, "{d}"),
                None => write!(f, "0s"),
            },
            // The largest unit that divides exactly, so `512MiB` prints back as written.
            Amount::Bytes(b) => match BYTE_UNITS
                .iter()
                .filter(|(_, m)| b >= *m && (b / m).fract() == 0.0)
                .max_by(|x, y| x.1.total_cmp(&y.1))
            {
                Some((u, m)) => write!(f, "{}{u}", b / m),
                None => write!(f, "{b}B"),
            },
        }
    }
}

impl Threshold {
    pub fn parse(s: &str) -> Result<Threshold, String> {
        let Some((head, tail)) = s.split_once(" and ") else {
            return Threshold::parse_one(s);
        };
        let past = tail
            .trim()
            .strip_prefix("above ")
            .map(|a| (Bad::High, a))
            .or_else(|| tail.trim().strip_prefix("below ").map(|a| (Bad::Low, a)));
        let Some((side, amount)) = past else {
            return Err(format!(
                "`{s}`: after `and` comes `above` or `below` and an amount, like `2x stable and above 1%`"
            ));
        };
        let amount = Amount::parse(amount).map_err(|e| format!("in `{s}`: {e}"))?;
        match Threshold::parse_one(head)? {
            Threshold::Relative {
                factor, percent, ..
            } => Ok(Threshold::Relative {
                factor,
                percent,
                past: Some((side, amount)),
            }),
            Threshold::Absolute(_) => Err(format!(
                "`{s}`: only a comparison with stable takes `and {} …`; an absolute threshold is one amount",
                if side == Bad::High { "above" } else { "below" }
            )),
        }
    }

    fn parse_one(s: &str) -> Result<Threshold, String> {
        let t = s.trim();
        if let Some(rest) = t.strip_suffix("stable") {
            let rest = rest.trim_end();
            let rel = if let Some(x) = rest.strip_suffix('x') {
                number(x.trim_end()).map(|f| Threshold::Relative {
                    factor: f,
                    percent: false,
                    past: None,
                })
            } else if let Some(p) = rest
                .strip_suffix("of")
                .map(str::trim_end)
                .and_then(|p| p.strip_suffix('%'))
            {
                number(p.trim_end()).map(|p| Threshold::Relative {
                    factor: p / 100.0,
                    percent: true,
                    past: None,
                })
            } else {
                None
            };
            return match rel {
                Some(Threshold::Relative { factor, .. }) if factor <= 0.0 => {
                    Err(format!("`{s}`: a factor of stable must be positive"))
                }
                Some(r) => Ok(r),
                None => Err(format!(
                    "`{s}` is not a relative threshold; write it like `2x stable` or `80% of stable`"
                )),
            };
        }
        Amount::parse(t).map(Threshold::Absolute)
    }

    pub(crate) fn from_json(v: &serde_json::Value) -> Result<Threshold, String> {
        match v {
            serde_json::Value::Number(n) => Ok(Threshold::Absolute(Amount::Number(
                n.as_f64().unwrap_or(f64::NAN),
            ))),
            serde_json::Value::String(s) => Threshold::parse(s),
            other => Err(format!(
                "expected a threshold such as `0.1` or `10%`, found {other}"
            )),
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Threshold::Absolute(a) => write!(f, "{a}"),
            Threshold::Relative {
                factor,
                percent,
                past,
            } => {
                if percent {
                    write!(f, "{}% of stable", trim(factor * 100.0))?;
                } else {
                    write!(f, "{}x stable", trim(factor))?;
                }
                match past {
                    Some((Bad::High, a)) => write!(f, " and above {a}"),
                    Some((Bad::Low, a)) => write!(f, " and below {a}"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl Serialize for Threshold {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Threshold::Absolute(Amount::Number(n)) => s.serialize_f64(*n),
            other => s.serialize_str(&other.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Threshold::from_json(&v).map_err(serde::de::Error::custom)
    }
}

/// A comparison operator of a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }

    /// The side of the threshold this comparison calls healthy.
    pub(crate) fn healthy_side(self) -> Bad {
        match self {
            Op::Lt | Op::Le => Bad::Low,
            Op::Gt | Op::Ge => Bad::High,
        }
    }

    /// The negation: the comparison that is true when this one is not (for non-NaN values).
    pub(crate) fn negate(self) -> Op {
        match self {
            Op::Lt => Op::Ge,
            Op::Le => Op::Gt,
            Op::Gt => Op::Le,
            Op::Ge => Op::Lt,
        }
    }

    pub(crate) fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
        }
    }
}

/// Splits a leading comparison operator off `s`.
pub(crate) fn split_op(s: &str) -> Option<(Op, &str)> {
    let t = s.trim_start();
    [("<=", Op::Le), (">=", Op::Ge), ("<", Op::Lt), (">", Op::Gt)]
        .into_iter()
        .find_map(|(p, op)| t.strip_prefix(p).map(|rest| (op, rest.trim_start())))
}

/// A gate: the healthy side of a metric, `< 5%` or `>= 95% of stable`; a comparison with
/// stable may add an absolute level that is healthy too (`<= 1.5x stable or <= 1%`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Gate {
    pub(crate) op: Op,
    pub(crate) threshold: Threshold,
    pub(crate) or: Option<(Op, Amount)>,
}

impl Gate {
    pub fn parse(s: &str) -> Result<Gate, String> {
        let (main, or) = match s.split_once(" or ") {
            Some((main, alt)) => (main, Some(alt)),
            None => (s, None),
        };
        let (op, threshold) = Gate::comparison(s, main)?;
        let or = match or {
            None => None,
            Some(alt) => {
                if !matches!(threshold, Threshold::Relative { .. }) {
                    return Err(format!(
                        "`{s}`: only a comparison with stable takes `or`; an absolute gate is one comparison"
                    ));
                }
                match Gate::comparison(s, alt)? {
                    (op, Threshold::Absolute(a)) => Some((op, a)),
                    _ => {
                        return Err(format!(
                            "`{s}`: after `or` comes an absolute comparison, like `<= 1%`"
                        ));
                    }
                }
            }
        };
        Ok(Gate { op, threshold, or })
    }

    /// One `<op> <threshold>` of gate `s`; a relative threshold here has no `and`.
    fn comparison(s: &str, part: &str) -> Result<(Op, Threshold), String> {
        let (op, rest) = split_op(part).ok_or_else(|| {
            format!("`{s}` is not a gate; start with a comparison, like `< 5%`, `> 99.5%` or `>= 95% of stable`")
        })?;
        if rest.starts_with(['<', '>', '=']) {
            return Err(format!(
                "`{s}` has a malformed comparison; use one of <, <=, >, >="
            ));
        }
        if rest.contains(" and ") {
            return Err(format!(
                "`{s}`: a gate adds a healthy level with `or`, like `<= 1.5x stable or <= 1%`"
            ));
        }
        let threshold = Threshold::parse(rest).map_err(|e| format!("in gate `{s}`: {e}"))?;
        Ok((op, threshold))
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op.as_str(), self.threshold)?;
        match self.or {
            Some((op, a)) => write!(f, " or {} {a}", op.as_str()),
            None => Ok(()),
        }
    }
}

impl TryFrom<String> for Gate {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Gate::parse(&s)
    }
}

impl From<Gate> for String {
    fn from(g: Gate) -> String {
        g.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_meet_units() {
        let t = |s: &str, u| Amount::parse(s).unwrap().in_unit(u);
        assert_eq!(t("10%", Unit::Ratio), Ok(0.1));
        assert_eq!(t("0.1", Unit::Ratio), Ok(0.1));
        assert_eq!(t("5s", Unit::Milliseconds), Ok(5000.0));
        assert_eq!(t("5000", Unit::Milliseconds), Ok(5000.0));
        assert_eq!(t("250ms", Unit::Seconds), Ok(0.25));
        assert_eq!(t("1KiB", Unit::Bytes), Ok(1024.0));
        assert!(t("10%", Unit::Milliseconds).is_err());
        assert!(t("5s", Unit::Ratio).is_err());
    }

    #[test]
    fn relative_thresholds() {
        assert_eq!(
            Threshold::parse("2x stable"),
            Ok(Threshold::Relative {
                factor: 2.0,
                percent: false,
                past: None,
            })
        );
        assert_eq!(
            Threshold::parse("80% of stable"),
            Ok(Threshold::Relative {
                factor: 0.8,
                percent: true,
                past: None,
            })
        );
        assert!(Threshold::parse("0x stable").is_err());
        assert!(Threshold::parse("80 of stable").is_err());
        assert_eq!(
            Threshold::parse("3x stable and above 1%"),
            Ok(Threshold::Relative {
                factor: 3.0,
                percent: false,
                past: Some((Bad::High, Amount::Percent(1.0))),
            })
        );
        for s in ["3x stable and above 1%", "95% of stable and below 99.5%"] {
            assert_eq!(Threshold::parse(s).unwrap().to_string(), s);
        }
        for bad in [
            "1% and above 2%",
            "3x stable and 1%",
            "3x stable and above",
            "3x stable and above lots",
            "3x stable and",
        ] {
            assert!(Threshold::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn gates_parse_and_print() {
        for s in [
            "< 5%",
            ">= 95% of stable",
            "> 99.5%",
            "< 3s",
            "<= 1.2x stable",
            "< 80",
            "<= 1.5x stable or <= 1%",
            ">= 95% of stable or > 99%",
        ] {
            assert_eq!(Gate::parse(s).unwrap().to_string(), s);
        }
        for bad in [
            "5%",
            "<< 5%",
            "=< 5",
            "< five",
            "<",
            "< 5% or < 6%",
            "<= 2x stable or <= 3x stable",
            "<= 2x stable or 1%",
            "<= 2x stable and above 1%",
        ] {
            assert!(Gate::parse(bad).is_err(), "{bad}");
        }
    }
}
