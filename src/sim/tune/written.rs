//! Thresholds as a plan writes them: a tuned level written in the form of the threshold
//! it replaces (`10%` stays a percentage, `0.1` a bare number, `5s` a duration, `2x stable
//! and above 1%` keeps its floor), and the value that text reads back as.

use crate::model::{Amount, Duration, Threshold, Unit, trim};

/// The threshold as a plan written like `written` (a rollback threshold, or a gate with
/// its comparison) would state `level`: what the written text reads back as, so that a
/// tuned plan compares with exactly the levels that were simulated (`5%` reads as 5/100,
/// which need not be the level computed on the way).
pub(crate) fn canonical(written: &str, level: f64, unit: Unit) -> f64 {
    let rest = crate::model::split_op(written).map_or(written, |(_, rest)| rest);
    let head = rest.split_once(" or ").map_or(rest, |(head, _)| head);
    let back = written_like(head, level, unit)
        .ok()
        .and_then(|t| match Threshold::parse(&t) {
            Ok(Threshold::Absolute(a)) => a.in_unit(unit).ok(),
            Ok(Threshold::Relative { factor, .. }) => Some(factor),
            Err(_) => None,
        });
    back.unwrap_or(level)
}

/// A `for` in Prometheus syntax, `0s` for none.
pub(crate) fn show_for(ms: u64) -> String {
    Duration::from_millis(ms).map_or("0s".into(), |d| d.to_string())
}

/// A threshold or gate as written (`written`: `10%`, `< 5%`, `<= 1.5x stable or <= 1%`)
/// restated at `level`: its comparison and its extra level kept.
pub(crate) fn restate(written: &str, level: f64, unit: Unit) -> Result<String, String> {
    let rest = crate::model::split_op(written).map_or(written, |(_, rest)| rest);
    let op = &written[..written.len() - rest.len()];
    Ok(match rest.split_once(" or ") {
        Some((head, also)) => format!("{op}{} or {also}", written_like(head, level, unit)?),
        None => format!("{op}{}", written_like(rest, level, unit)?),
    })
}

/// `level` (in the metric's unit, or a factor of stable) written in the form of `old`.
pub(crate) fn written_like(old: &str, level: f64, unit: Unit) -> Result<String, String> {
    let t = Threshold::parse(old.trim()).map_err(|e| format!("`{old}`: {e}"))?;
    Ok(match t {
        Threshold::Absolute(a) => match a {
            Amount::Number(_) => trim(level),
            Amount::Percent(_) => format!("{}%", trim(level * 100.0)),
            Amount::Millis(_) => {
                let ms = match unit {
                    Unit::Seconds => level * 1000.0,
                    _ => level,
                };
                Amount::Millis(ms.round() as u64).to_string()
            }
            Amount::Bytes(_) => Amount::Bytes(level.round()).to_string(),
        },
        Threshold::Relative { percent, .. } => {
            let factor = if percent {
                format!("{}% of stable", trim(level * 100.0))
            } else {
                format!("{}x stable", trim(level))
            };
            match old.split_once(" and ") {
                Some((_, floor)) => format!("{factor} and {floor}"),
                None => factor,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_level_is_written_as_the_old_one_was() {
        assert_eq!(written_like("10%", 0.05, Unit::Ratio).unwrap(), "5%");
        assert_eq!(written_like("0.1", 0.05, Unit::Ratio).unwrap(), "0.05");
        assert_eq!(
            written_like("5s", 625.0, Unit::Milliseconds).unwrap(),
            "625ms"
        );
        assert_eq!(written_like("3s", 24.0, Unit::Seconds).unwrap(), "24s");
        assert_eq!(
            written_like("2x stable and above 1%", 3.0, Unit::Ratio).unwrap(),
            "3x stable and above 1%"
        );
        assert_eq!(
            written_like("95% of stable", 0.8, Unit::Ratio).unwrap(),
            "80% of stable"
        );
    }
}
