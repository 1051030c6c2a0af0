//! Times in traces and replays: timestamps read as Prometheus' API writes them (RFC 3339 or
//! Unix seconds, to the millisecond), instants written back in RFC 3339, and offsets from
//! the start of a release (`+1d2h30s`). Calendar arithmetic is `jiff`'s.

use jiff::Timestamp;
use std::fmt::Write as _;

/// A timestamp: RFC 3339 (`2024-05-01T12:00:00Z`, `2024-05-01T14:00:00.250+02:00`) or
/// Unix seconds (`1714564800`, `1714564800.25`), to epoch milliseconds. Digits past the
/// millisecond are rounded, half away from zero, as Prometheus' API rounds them.
pub(crate) fn parse_timestamp(s: &str) -> Result<i64, String> {
    if s.len() >= 10 && s.as_bytes()[4] == b'-' {
        parse_rfc3339(s)
    } else {
        parse_unix_seconds(s)
    }
}

/// Unix seconds written in decimal, exactly (no float rounding), to milliseconds.
pub(crate) fn parse_unix_seconds(s: &str) -> Result<i64, String> {
    let bad = || {
        format!(
            "`{s}` is not a timestamp: expected Unix seconds (`1714564800.25`) or RFC 3339 (`2024-05-01T12:00:00Z`)"
        )
    };
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    if int.len() > 12 {
        return Err(format!("`{s}` is out of range for a timestamp"));
    }
    let secs: i64 = int.parse().map_err(|_| bad())?;
    let fb = frac.as_bytes();
    let mut ms = 0i64;
    for i in 0..3 {
        ms = ms * 10 + fb.get(i).map_or(0, |b| (b - b'0') as i64);
    }
    if fb.get(3).is_some_and(|&b| b >= b'5') {
        ms += 1;
    }
    let total = secs * 1000 + ms;
    Ok(if neg { -total } else { total })
}

/// An RFC 3339 timestamp with its offset (`Z` or `±hh:mm`), to epoch milliseconds.
fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let at: Timestamp = s
        .parse()
        .map_err(|e| format!("`{s}` is not an RFC 3339 timestamp: {e}"))?;
    // Half a millisecond up, then down to the millisecond: half away from zero for the
    // fraction, which RFC 3339 writes as a positive part of the second.
    let ns = at.as_nanosecond() + 500_000;
    i64::try_from(ns.div_euclid(1_000_000))
        .map_err(|_| format!("`{s}` is out of range for a timestamp"))
}

/// Epoch milliseconds as RFC 3339 in UTC: `2024-05-01T12:00:00Z` (milliseconds shown only
/// when not zero).
pub fn format_rfc3339(ms: i64) -> String {
    let Ok(at) = Timestamp::from_millisecond(ms) else {
        return format!("{ms}ms since the epoch");
    };
    let base = at.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    match ms.rem_euclid(1000) {
        0 => base + "Z",
        frac => format!("{base}.{frac:03}Z"),
    }
}

/// `+1h05m`, `+0s`, `+2d3h`, `+1.5s`: a time from t=0.
pub(crate) fn offset(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "+" };
    let mut rest = ms.unsigned_abs();
    let msec = rest % 1000;
    rest /= 1000;
    let (d, h, m, s) = (
        rest / 86_400,
        rest % 86_400 / 3600,
        rest % 3600 / 60,
        rest % 60,
    );
    let mut out = String::from(sign);
    if d > 0 {
        let _ = write!(out, "{d}d");
    }
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if m > 0 {
        let _ = write!(out, "{m}m");
    }
    if s > 0 || msec > 0 || out.len() == 1 {
        if msec > 0 {
            let _ = write!(out, "{s}.{}s", format!("{msec:03}").trim_end_matches('0'));
        } else {
            let _ = write!(out, "{s}s");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("0"), Ok(0));
        assert_eq!(parse_timestamp("1714564800"), Ok(1_714_564_800_000));
        assert_eq!(parse_timestamp("1714564800.25"), Ok(1_714_564_800_250));
        assert_eq!(parse_timestamp("1714564800.0005"), Ok(1_714_564_800_001));
        assert_eq!(parse_timestamp("1714564800.0004"), Ok(1_714_564_800_000));
        assert_eq!(
            parse_timestamp("2024-05-01T12:00:00Z"),
            Ok(1_714_564_800_000)
        );
        assert_eq!(
            parse_timestamp("2024-05-01T14:00:00.250+02:00"),
            Ok(1_714_564_800_250)
        );
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_timestamp("2024-02-29T00:00:00Z"),
            Ok(1_709_164_800_000)
        );
        assert!(parse_timestamp("2023-02-29T00:00:00Z").is_err());
        assert!(parse_timestamp("2024-05-01T12:00:00").is_err());
        assert!(parse_timestamp("12:00").is_err());
        assert!(parse_timestamp("1e9").is_err());
        assert!(parse_timestamp("").is_err());
    }

    #[test]
    fn rfc3339_round_trips() {
        for ms in [
            0,
            1_714_564_800_000,
            1_714_564_800_250,
            -86_400_000,
            951_782_400_000,
        ] {
            assert_eq!(
                parse_timestamp(&format_rfc3339(ms)),
                Ok(ms),
                "{}",
                format_rfc3339(ms)
            );
        }
        assert_eq!(
            format_rfc3339(1_714_564_800_250),
            "2024-05-01T12:00:00.250Z"
        );
    }
}
