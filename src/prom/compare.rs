//! The comparison and division semantics an alert expression relies on.
//!
//! An alert expression such as `errors / requests > 0.05` is a *filter*: the
//! comparison keeps a series when it holds and drops it otherwise, and the alert is
//! active for exactly the series that remain. So:
//! - a missing operand (empty vector, absent series) means no result: not firing;
//! - comparisons follow IEEE 754 as Go does: every comparison with NaN is false,
//!   except `!=`, which is true (`NaN != x` keeps the series);
//! - division follows IEEE 754 too: `x/0` is +Inf for `x > 0`, -Inf for `x < 0`,
//!   NaN for `0/0`, so `errors/0 > 0.05` fires and `0/0 > 0.05` does not.

#[cfg(test)]
/// A PromQL comparison operator (without the `bool` modifier).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

#[cfg(test)]
impl CmpOp {
    /// `lhs OP rhs` with Go's float semantics.
    #[inline]
    pub(crate) fn apply(self, lhs: f64, rhs: f64) -> bool {
        match self {
            CmpOp::Eq => lhs == rhs,
            CmpOp::Ne => lhs != rhs,
            CmpOp::Gt => lhs > rhs,
            CmpOp::Ge => lhs >= rhs,
            CmpOp::Lt => lhs < rhs,
            CmpOp::Le => lhs <= rhs,
        }
    }
}

#[cfg(test)]
/// Whether the filter `value OP threshold` keeps the series: `false` when the
/// series is absent (`None`), else the comparison.
#[inline]
pub(crate) fn condition(value: Option<f64>, op: CmpOp, threshold: f64) -> bool {
    value.is_some_and(|v| op.apply(v, threshold))
}

/// PromQL vector division `num / den` for one label set: a result only when both
/// sides have a sample, IEEE division otherwise (`x/0` = ±Inf, `0/0` = NaN).
#[inline]
pub(crate) fn ratio(num: Option<f64>, den: Option<f64>) -> Option<f64> {
    Some(num? / den?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_compares_false_except_ne() {
        for op in [CmpOp::Eq, CmpOp::Gt, CmpOp::Ge, CmpOp::Lt, CmpOp::Le] {
            assert!(!op.apply(f64::NAN, 1.0), "{op:?}");
            assert!(!op.apply(1.0, f64::NAN), "{op:?}");
            assert!(!op.apply(f64::NAN, f64::NAN), "{op:?}");
        }
        assert!(CmpOp::Ne.apply(f64::NAN, 1.0));
        assert!(CmpOp::Ne.apply(f64::NAN, f64::NAN));
    }

    #[test]
    fn ordinary_comparisons() {
        assert!(CmpOp::Gt.apply(2.0, 1.0));
        assert!(!CmpOp::Gt.apply(1.0, 1.0));
        assert!(CmpOp::Ge.apply(1.0, 1.0));
        assert!(CmpOp::Lt.apply(-1.0, 0.0));
        assert!(CmpOp::Le.apply(0.0, -0.0));
        assert!(CmpOp::Eq.apply(0.0, -0.0));
        assert!(CmpOp::Gt.apply(f64::INFINITY, f64::MAX));
    }

    #[test]
    fn division_by_zero() {
        assert_eq!(ratio(Some(3.0), Some(0.0)), Some(f64::INFINITY));
        assert_eq!(ratio(Some(-3.0), Some(0.0)), Some(f64::NEG_INFINITY));
        assert!(ratio(Some(0.0), Some(0.0)).unwrap().is_nan());
        // errors/0 > 0.05 fires; 0/0 > 0.05 does not.
        assert!(condition(ratio(Some(3.0), Some(0.0)), CmpOp::Gt, 0.05));
        assert!(!condition(ratio(Some(0.0), Some(0.0)), CmpOp::Gt, 0.05));
    }

    #[test]
    fn missing_side_is_no_result() {
        assert_eq!(ratio(None, Some(1.0)), None);
        assert_eq!(ratio(Some(1.0), None), None);
        assert_eq!(ratio(None, None), None);
        assert!(!condition(None, CmpOp::Gt, 0.0));
        assert!(!condition(None, CmpOp::Ne, 0.0));
        assert!(condition(Some(0.5), CmpOp::Gt, 0.1));
    }
}
