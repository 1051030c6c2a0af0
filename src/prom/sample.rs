//! One stored sample of a float series, and Prometheus' staleness marker.
//!
//! Prometheus marks the end of a series (a target that vanished, a series that a
//! scrape no longer exposes) by writing a special NaN, `StaleNaN`, whose bit pattern
//! is fixed. It is told apart from an ordinary NaN by its bits alone, so it must
//! never be produced by arithmetic: build it with `Sample::stale` (in tests).

/// The bit pattern of Prometheus' staleness marker (`value.StaleNaN`).
pub(crate) const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker as a float. It is a NaN, so it compares unequal to
/// everything, itself included; use [`is_stale_nan`] to recognise it.
pub(crate) const STALE_NAN: f64 = f64::from_bits(STALE_NAN_BITS);

/// Whether `v` is the staleness marker (an exact bit comparison, as
/// `value.IsStaleNaN` does; an ordinary NaN is not stale).
#[inline]
pub(crate) fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// A float sample: a millisecond timestamp and a value.
///
/// A series is a slice of samples sorted by strictly increasing `t`, as the TSDB
/// stores them (it rejects a second sample at an existing timestamp).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Sample {
    /// Timestamp in milliseconds since the epoch (or since the trace start).
    pub(crate) t: i64,
    /// The value; may be the staleness marker.
    pub(crate) v: f64,
}

impl Sample {
    /// A sample with value `v` at `t` milliseconds.
    #[inline]
    pub(crate) const fn new(t: i64, v: f64) -> Self {
        Self { t, v }
    }

    /// A staleness marker at `t` milliseconds.
    #[cfg(test)]
    pub(crate) const fn stale(t: i64) -> Self {
        Self { t, v: STALE_NAN }
    }

    /// Whether this sample is a staleness marker.
    #[inline]
    pub(crate) fn is_stale(&self) -> bool {
        is_stale_nan(self.v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_marker_is_recognised_by_bits_only() {
        assert!(Sample::stale(0).is_stale());
        assert!(Sample::stale(0).v.is_nan());
        assert!(!Sample::new(0, f64::NAN).is_stale());
        assert!(!Sample::new(0, 0.0).is_stale());
        assert_eq!(STALE_NAN.to_bits(), 0x7ff0000000000002);
    }

    #[test]
    fn arithmetic_on_the_marker_does_not_keep_it_stale() {
        // Any arithmetic yields a quiet NaN with other bits: only stored markers are stale.
        let x = STALE_NAN + 1.0;
        assert!(x.is_nan());
        assert!(!is_stale_nan(x));
    }
}
