//! Times as the driver shows them: instants in RFC 3339 (UTC), spans in days, hours,
//! minutes and seconds.

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// An instant, `2026-12-04T19:58:01Z`.
pub(crate) fn instant(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(
        |_| format!("{ms} ms"),
        |t| {
            t.round(jiff::Unit::Second)
                .map_or_else(|_| t.to_string(), |t| t.to_string())
        },
    )
}

/// A span, `1d 2h`, `3m 20s`, `0s`: the two largest units.
pub(crate) fn span(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let parts = [
        (s / 86_400, "d"),
        (s / 3600 % 24, "h"),
        (s / 60 % 60, "m"),
        (s % 60, "s"),
    ];
    let shown: Vec<String> = parts
        .iter()
        .skip_while(|(v, _)| *v == 0)
        .take(2)
        .filter(|(v, _)| *v > 0)
        .map(|(v, u)| format!("{v}{u}"))
        .collect();
    if shown.is_empty() {
        "0s".into()
    } else {
        shown.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_show_two_units() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(59_999), "59s");
        assert_eq!(span(200_000), "3m 20s");
        assert_eq!(span(93_600_000), "1d 2h");
        assert_eq!(span(86_400_000), "1d");
        assert_eq!(instant(0), "1970-01-01T00:00:00Z");
    }
}
