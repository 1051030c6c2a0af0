//! An alert's current value as its annotations print it: the Prometheus template that
//! formats `$value` for the metric's unit, and the very text Prometheus makes of a value.
//!
//! The functions are Prometheus' own (`template/template.go` of 2.42, the promtool the
//! tests run): `humanizePercentage` for ratios (`0.2` → `20%`), `humanizeDuration` for
//! seconds (`90` → `1m 30s`, `0.25` → `250ms`), `humanize1024` for bytes (`512Mi`, then a
//! `B`), `humanize` for counts and rates (SI prefixes: `1.5k`, `250m`), and
//! `printf "%.0f"` for milliseconds (a template cannot divide, and `humanize` would print
//! `10k`ms). They are reimplemented here bit for bit, down to Go's `%.4g` and `%.0f`, so
//! that the generated promtool tests can expect the exact annotation Prometheus renders
//! (promtool compares annotations as strings); `promtool test rules` proves they agree.

use crate::model::Unit;

/// How an annotation prints the alert's value, chosen by the metric's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFormat {
    /// `humanizePercentage`: a ratio as a percentage.
    Percentage,
    /// `printf "%.0f"` and `ms`.
    Milliseconds,
    /// `humanizeDuration`: seconds as `1m 30s`, `1.5s`, `250ms`.
    Seconds,
    /// `humanize1024` and `B`.
    Bytes,
    /// `humanize`: SI prefixes.
    Number,
    /// `humanize` and `/s`.
    PerSecond,
}

impl ValueFormat {
    pub(crate) fn for_unit(unit: Unit) -> ValueFormat {
        match unit {
            Unit::Ratio => ValueFormat::Percentage,
            Unit::Milliseconds => ValueFormat::Milliseconds,
            Unit::Seconds => ValueFormat::Seconds,
            Unit::Bytes => ValueFormat::Bytes,
            Unit::Count => ValueFormat::Number,
            Unit::PerSecond => ValueFormat::PerSecond,
        }
    }

    /// The Prometheus template text printing `$value`.
    pub fn template(self) -> &'static str {
        match self {
            ValueFormat::Percentage => "{{ $value | humanizePercentage }}",
            ValueFormat::Milliseconds => "{{ printf \"%.0f\" $value }}ms",
            ValueFormat::Seconds => "{{ $value | humanizeDuration }}",
            ValueFormat::Bytes => "{{ $value | humanize1024 }}B",
            ValueFormat::Number => "{{ $value | humanize }}",
            ValueFormat::PerSecond => "{{ $value | humanize }}/s",
        }
    }

    /// What Prometheus prints for [`ValueFormat::template`] when `$value` is `v`.
    pub fn expand(self, v: f64) -> String {
        match self {
            ValueFormat::Percentage => humanize_percentage(v),
            ValueFormat::Milliseconds => go_fixed(v, 0) + "ms",
            ValueFormat::Seconds => humanize_duration(v),
            ValueFormat::Bytes => humanize_1024(v) + "B",
            ValueFormat::Number => humanize(v),
            ValueFormat::PerSecond => humanize(v) + "/s",
        }
    }
}

/// Prometheus' `humanize`: SI prefixes, 4 significant digits.
fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return go_g(v, 4);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    go_g(v, 4) + prefix
}

/// Prometheus' `humanize1024`: binary prefixes above 1024.
fn humanize_1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return go_g(v, 4);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    go_g(v, 4) + prefix
}

/// Prometheus' `humanizeDuration`, of seconds.
fn humanize_duration(mut v: f64) -> String {
    if !v.is_finite() {
        return go_g(v, 4);
    }
    if v == 0.0 {
        return go_g(v, 4) + "s";
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        // Go's int64(v): truncation; out of range, amd64 gives the "integer indefinite"
        // i64::MIN (Go leaves it to the platform; Rust's `as` would saturate).
        let d = if v < 9_223_372_036_854_775_808.0 {
            v as i64
        } else {
            i64::MIN
        };
        let (s, m, h, days) = (d % 60, d / 60 % 60, d / 3600 % 24, d / 86400);
        return if days != 0 {
            format!("{sign}{days}d {h}h {m}m {s}s")
        } else if h != 0 {
            format!("{sign}{h}h {m}m {s}s")
        } else if m != 0 {
            format!("{sign}{m}m {s}s")
        } else {
            format!("{sign}{}s", go_g(v, 4))
        };
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", go_g(v, 4))
}

/// Prometheus' `humanizePercentage`.
fn humanize_percentage(v: f64) -> String {
    go_g(v * 100.0, 4) + "%"
}

/// Go's `NaN`, `+Inf` and `-Inf` (as `fmt` prints them for `%g` and `%f`).
fn go_special(v: f64) -> Option<String> {
    if v.is_nan() {
        Some("NaN".into())
    } else if v.is_infinite() {
        Some(if v > 0.0 { "+Inf" } else { "-Inf" }.into())
    } else {
        None
    }
}

/// Go's `fmt.Sprintf("%.<prec>f", v)`. Rust and Go both print the exact binary value
/// rounded half to even.
fn go_fixed(v: f64, prec: usize) -> String {
    go_special(v).unwrap_or_else(|| format!("{v:.prec$}"))
}

/// Go's `fmt.Sprintf("%.<prec>g", v)` (`strconv.FormatFloat(v, 'g', prec, 64)`): `prec`
/// significant digits with trailing zeros dropped, in exponent form (`1.234e+04`) when the
/// exponent is below -4 or at least the precision, else in plain decimals.
fn go_g(v: f64, prec: usize) -> String {
    if let Some(s) = go_special(v) {
        return s;
    }
    let prec = prec.max(1);
    let neg = v.is_sign_negative();
    let sign = if neg { "-" } else { "" };
    if v == 0.0 {
        return format!("{sign}0");
    }
    // The correctly rounded significant digits and the decimal exponent.
    let e_form = format!("{:.*e}", prec - 1, v.abs());
    let (mantissa, exp) = e_form.split_once('e').expect("Rust's {:e} has an exponent");
    let exp: i32 = exp.parse().expect("an integer exponent");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let nd = digits.len() as i32;
    // strconv: the digits are d.ddd × 10^exp, so the decimal point is after `dp` digits.
    let dp = exp + 1;
    let mut eprec = prec as i32;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    if exp < -4 || exp >= eprec {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    // Plain decimals: as many as there are digits after the point.
    let decimals = (nd - dp).max(0) as usize;
    let mut s = String::from(sign);
    if dp <= 0 {
        s.push_str("0.");
        s.extend(std::iter::repeat_n('0', (-dp) as usize));
        s.push_str(digits);
    } else {
        let dp = dp as usize;
        if digits.len() <= dp {
            s.push_str(digits);
            s.extend(std::iter::repeat_n('0', dp - digits.len()));
        } else {
            s.push_str(&digits[..dp]);
            s.push('.');
            s.push_str(&digits[dp..]);
        }
    }
    debug_assert!(s.split('.').nth(1).map_or(0, str::len) == decimals);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values are Go's (`fmt.Sprintf` in Go 1.19, as Prometheus 2.42 is built).
    #[test]
    fn go_percent_g() {
        for (v, want) in [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (20.0, "20"),
            (19.999999999999996, "20"),
            (98.00000000000001, "98"),
            (98.99, "98.99"),
            (99.995, "100"), // 99.99500000000000454…
            (100.0, "100"),
            (1234.0, "1234"),
            (1234.5, "1234"),
            (1235.5, "1236"),
            (9999.5, "1e+04"),
            (12345.0, "1.234e+04"),
            (12355.0, "1.236e+04"),
            (1e21, "1e+21"),
            (0.5, "0.5"),
            (0.0001234, "0.0001234"),
            (0.00001234, "1.234e-05"),
            (0.000012, "1.2e-05"),
            (-2.71239, "-2.712"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(go_g(v, 4), want, "{v}");
        }
    }

    #[test]
    fn go_percent_f() {
        assert_eq!(go_fixed(10000.0, 0), "10000");
        assert_eq!(go_fixed(0.5, 0), "0");
        assert_eq!(go_fixed(1.5, 0), "2");
        assert_eq!(go_fixed(2.5, 0), "2");
        assert_eq!(go_fixed(1234.56, 0), "1235");
        assert_eq!(go_fixed(f64::INFINITY, 0), "+Inf");
    }

    /// Expected values are those of Prometheus' own template tests
    /// (`template/template_test.go`) and its documented examples.
    #[test]
    fn prometheus_functions() {
        let h = |v| ValueFormat::Number.expand(v);
        assert_eq!(h(0.0), "0");
        assert_eq!(h(0.0001234), "123.4u");
        assert_eq!(h(0.1234), "123.4m");
        assert_eq!(h(1.0), "1");
        assert_eq!(h(1234.0), "1.234k");
        assert_eq!(h(1234567.0), "1.235M");
        assert_eq!(h(1e30), "1e+06Y");
        assert_eq!(ValueFormat::PerSecond.expand(12.5), "12.5/s");
        let b = |v| ValueFormat::Bytes.expand(v);
        assert_eq!(b(0.0), "0B");
        assert_eq!(b(1023.0), "1023B");
        assert_eq!(b(1024.0), "1kiB");
        assert_eq!(b(512.0 * 1024.0 * 1024.0), "512MiB");
        assert_eq!(b(1.5 * 1024.0 * 1024.0 * 1024.0), "1.5GiB");
        let d = |v| ValueFormat::Seconds.expand(v);
        assert_eq!(d(0.0), "0s");
        assert_eq!(d(0.1), "100ms");
        assert_eq!(d(0.0001), "100us");
        assert_eq!(d(1.0), "1s");
        assert_eq!(d(12.5), "12.5s");
        assert_eq!(d(90.0), "1m 30s");
        assert_eq!(d(3600.0), "1h 0m 0s");
        assert_eq!(d(86400.0 + 3661.5), "1d 1h 1m 1s");
        assert_eq!(d(-61.0), "-1m 1s");
        assert_eq!(d(1e30), "-106751991167300d -15h -30m -8s");
        let p = |v| ValueFormat::Percentage.expand(v);
        assert_eq!(p(0.19999999999999998), "20%");
        assert_eq!(p(0.9800000000000001), "98%");
        assert_eq!(p(0.1234567), "12.35%");
        assert_eq!(p(1.0), "100%");
        assert_eq!(ValueFormat::Milliseconds.expand(10000.0), "10000ms");
    }
}
