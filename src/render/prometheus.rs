//! Placeholder: renders nothing yet.

use super::Artifact;
use crate::check::CheckedPlan;

pub fn render(_plan: &CheckedPlan) -> Vec<Artifact> {
    Vec::new()
}
