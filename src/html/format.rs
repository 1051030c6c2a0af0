//! How the report writes numbers for people: shares as percentages, durations as the plan
//! writes them, a metric's values in its unit. The exact number stays in each table cell's
//! `data-value`.

/// A share (0 to 1) as a percentage: `12.3%`, `0.05%`, `0%`.
pub(crate) fn pct(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let x = v * 100.0;
    if x == 0.0 || x == 100.0 {
        format!("{x:.0}%")
    } else if x.abs() < 1.0 {
        format!("{x:.2}%")
    } else {
        format!("{x:.1}%")
    }
}

/// An axis tick of shares: `20%`, `2.5%`.
pub(crate) fn pct_tick(v: f64) -> String {
    let x = (v * 1000.0).round() / 10.0;
    if x == x.trunc() {
        format!("{x:.0}%")
    } else {
        format!("{x}%")
    }
}

/// Seconds as `45s`, `12m`, `2h 5m`, `3d 4h` (to the second below a minute).
pub(crate) fn duration(s: f64) -> String {
    if !s.is_finite() {
        return "n/a".into();
    }
    let sign = if s < 0.0 { "-" } else { "" };
    let t = s.abs().round() as u64;
    let (d, h, m, sec) = (t / 86_400, t / 3600 % 24, t / 60 % 60, t % 60);
    let body = if d > 0 {
        if h > 0 {
            format!("{d}d {h}h")
        } else {
            format!("{d}d")
        }
    } else if h > 0 {
        if m > 0 {
            format!("{h}h {m}m")
        } else {
            format!("{h}h")
        }
    } else if m > 0 {
        if sec > 0 {
            format!("{m}m {sec}s")
        } else {
            format!("{m}m")
        }
    } else {
        format!("{sec}s")
    };
    format!("{sign}{body}")
}

/// A time from the release's start (ms), as the replay's timeline writes it: `+16m`.
pub(crate) fn offset_ms(ms: f64) -> String {
    let d = duration(ms / 1000.0);
    if ms < 0.0 { d } else { format!("+{d}") }
}

/// A metric's value in its unit (the report's `unit` names): `1.25%`, `250ms`, `0.3s`.
pub(crate) fn value(v: f64, unit: &str) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    match unit {
        "ratio" => {
            let x = v * 100.0;
            format!("{}%", short(x))
        }
        "milliseconds" => format!("{}ms", short(v)),
        "seconds" => format!("{}s", short(v)),
        "bytes" => format!("{} B", short(v)),
        "per_second" => format!("{}/s", short(v)),
        _ => short(v),
    }
}

/// The unit as an axis title writes it.
pub(crate) fn unit_title(unit: &str) -> &'static str {
    match unit {
        "ratio" => "%",
        "milliseconds" => "ms",
        "seconds" => "s",
        "bytes" => "bytes",
        "per_second" => "per second",
        _ => "count",
    }
}

/// A number to four significant digits, without trailing zeros.
pub(crate) fn short(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_read_these() {
        assert_eq!(pct(0.1234), "12.3%");
        assert_eq!(pct(0.0005), "0.05%");
        assert_eq!(pct(1.0), "100%");
        assert_eq!(pct_tick(0.025), "2.5%");
        assert_eq!(duration(75.0), "1m 15s");
        assert_eq!(duration(7500.0), "2h 5m");
        assert_eq!(duration(90_000.0), "1d 1h");
        assert_eq!(offset_ms(960_000.0), "+16m");
        assert_eq!(value(0.0125, "ratio"), "1.25%");
        assert_eq!(value(250.0, "milliseconds"), "250ms");
        assert_eq!(short(0.000123456), "0.000123");
    }
}
