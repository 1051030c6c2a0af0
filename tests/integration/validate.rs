//! `plan validate` on the example plans.

use crate::support::*;

#[test]
fn every_example_plan_is_valid() {
    for p in all_plans() {
        let d = plan().args(["validate", "--deny-warnings", &p]).run();
        assert_eq!(d.code, 0, "{p}:\n{}", d.stderr);
    }
}
