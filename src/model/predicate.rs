//! User-group predicates, parsed: `"admin"`, `10`, `">= 10"`, `">= 7 days"`, `"!= guest"`.
//!
//! `plan` never evaluates them (the application or gateway decides a user's group and sends
//! it in the group header); they are parsed so that a typo fails at its line and so that
//! the manifest and runbook can state them precisely.

use super::threshold::{Op, split_op};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A value a predicate compares with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Text(String),
    Number(f64),
    Bool(bool),
    /// An age such as `7 days`, in seconds, with the unit as written for printing.
    Age {
        seconds: u64,
        amount: u64,
        unit: AgeUnit,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AgeUnit {
    Minutes,
    Hours,
    Days,
    Weeks,
}

impl AgeUnit {
    fn seconds(self) -> u64 {
        match self {
            AgeUnit::Minutes => 60,
            AgeUnit::Hours => 3600,
            AgeUnit::Days => 86_400,
            AgeUnit::Weeks => 604_800,
        }
    }

    fn parse(s: &str) -> Option<AgeUnit> {
        Some(match s {
            "m" | "min" | "mins" | "minute" | "minutes" => AgeUnit::Minutes,
            "h" | "hour" | "hours" => AgeUnit::Hours,
            "d" | "day" | "days" => AgeUnit::Days,
            "w" | "week" | "weeks" => AgeUnit::Weeks,
            _ => return None,
        })
    }

    fn name(self, n: u64) -> &'static str {
        match (self, n == 1) {
            (AgeUnit::Minutes, true) => "minute",
            (AgeUnit::Minutes, false) => "minutes",
            (AgeUnit::Hours, true) => "hour",
            (AgeUnit::Hours, false) => "hours",
            (AgeUnit::Days, true) => "day",
            (AgeUnit::Days, false) => "days",
            (AgeUnit::Weeks, true) => "week",
            (AgeUnit::Weeks, false) => "weeks",
        }
    }
}

/// How an attribute is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comparison {
    Eq,
    Ne,
    Ord(Op),
}

/// One parsed predicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Value", into = "serde_json::Value")]
pub struct Predicate {
    pub(crate) comparison: Comparison,
    pub(crate) operand: Operand,
}

fn is_text(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.chars()
            .all(|c| c.is_alphanumeric() || " _.@:/+-".contains(c))
        && !s.starts_with(' ')
        && !s.ends_with(' ')
}

impl Predicate {
    pub fn parse(s: &str) -> Result<Predicate, String> {
        let t = s.trim();
        let (comparison, rest) = if let Some(r) = t.strip_prefix("!=") {
            (Comparison::Ne, r.trim_start())
        } else if let Some(r) = t.strip_prefix("==") {
            (Comparison::Eq, r.trim_start())
        } else if let Some((op, r)) = split_op(t) {
            (Comparison::Ord(op), r)
        } else if t.starts_with(['=', '<', '>', '!']) {
            return Err(format!(
                "`{s}` has a malformed comparison; use one of ==, !=, <, <=, >, >="
            ));
        } else {
            (Comparison::Eq, t)
        };
        if rest.starts_with(['=', '<', '>', '!']) {
            return Err(format!(
                "`{s}` has a malformed comparison; use one of ==, !=, <, <=, >, >="
            ));
        }
        let operand = parse_operand(rest).ok_or_else(|| {
            format!("`{s}` is not a predicate; write a value (`admin`, `10`) or a comparison (`>= 10`, `< 30 days`)")
        })?;
        if matches!(comparison, Comparison::Ord(_))
            && matches!(operand, Operand::Text(_) | Operand::Bool(_))
        {
            return Err(format!(
                "`{s}` orders a word; `<`, `<=`, `>`, `>=` need a number (`>= 10`) or an age (`>= 7 days`)"
            ));
        }
        Ok(Predicate {
            comparison,
            operand,
        })
    }
}

fn parse_operand(s: &str) -> Option<Operand> {
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<f64>()
        && n.is_finite()
        && s.chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
    {
        return Some(Operand::Number(n));
    }
    match s {
        "true" => return Some(Operand::Bool(true)),
        "false" => return Some(Operand::Bool(false)),
        _ => {}
    }
    // An age: `7 days`, `7d`, `12 hours`.
    let digits = s.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && digits <= 9 {
        let amount: u64 = s[..digits].parse().ok()?;
        let unit_text = s[digits..].trim_start();
        // `7 dayz` is a typo, not the word "7 dayz": no match means no predicate.
        return AgeUnit::parse(unit_text).map(|unit| Operand::Age {
            seconds: amount * unit.seconds(),
            amount,
            unit,
        });
    }
    is_text(s).then(|| Operand::Text(s.to_string()))
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Text(t) => write!(f, "{t}"),
            Operand::Number(n) => write!(f, "{n}"),
            Operand::Bool(b) => write!(f, "{b}"),
            Operand::Age { amount, unit, .. } => write!(f, "{amount} {}", unit.name(*amount)),
        }
    }
}

impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.comparison {
            Comparison::Eq => write!(f, "{}", self.operand),
            Comparison::Ne => write!(f, "!= {}", self.operand),
            Comparison::Ord(op) => write!(f, "{} {}", op.as_str(), self.operand),
        }
    }
}

impl TryFrom<serde_json::Value> for Predicate {
    type Error = String;
    fn try_from(v: serde_json::Value) -> Result<Self, String> {
        match v {
            serde_json::Value::String(s) => Predicate::parse(&s),
            serde_json::Value::Number(n) => Ok(Predicate {
                comparison: Comparison::Eq,
                operand: Operand::Number(n.as_f64().unwrap_or(f64::NAN)),
            }),
            serde_json::Value::Bool(b) => Ok(Predicate {
                comparison: Comparison::Eq,
                operand: Operand::Bool(b),
            }),
            other => Err(format!("expected a predicate, found {other}")),
        }
    }
}

impl From<Predicate> for serde_json::Value {
    fn from(p: Predicate) -> serde_json::Value {
        match (p.comparison, &p.operand) {
            (Comparison::Eq, Operand::Number(n)) => serde_json::json!(n),
            (Comparison::Eq, Operand::Bool(b)) => serde_json::Value::Bool(*b),
            _ => serde_json::Value::String(p.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_predicates() {
        let p = Predicate::parse(">= 7 days").unwrap();
        assert_eq!(p.comparison, Comparison::Ord(Op::Ge));
        assert!(matches!(
            p.operand,
            Operand::Age {
                seconds: 604_800,
                ..
            }
        ));
        assert_eq!(
            Predicate::parse("admin").unwrap().operand,
            Operand::Text("admin".into())
        );
        assert_eq!(
            Predicate::parse(">= 10").unwrap().operand,
            Operand::Number(10.0)
        );
        assert_eq!(
            Predicate::parse("< 30 days").unwrap().to_string(),
            "< 30 days"
        );
        for bad in [
            ">= 7 dayz",
            ">=",
            "=> 10",
            ">> 3",
            "< admin",
            "a;b",
            "",
            "x{y}",
        ] {
            assert!(Predicate::parse(bad).is_err(), "{bad}");
        }
    }
}
