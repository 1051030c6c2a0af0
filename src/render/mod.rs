//! `plan render`: compiles a checked plan into the files a staged canary release applies,
//! all in memory first; `write` then puts them on disk all-or-nothing.
//!
//! Layout under `OUT/<plan name>/`: `nginx/<phase>.conf`, `nginx/rollback.conf`,
//! `nginx/promotion.conf`; `compose/<phase>.override.yml` (and rollback, promotion);
//! `prometheus/<phase>.rules.yml` with `prometheus/<phase>.test.yml`;
//! `alertmanager/alertmanager.yml`; `manifest.json`; `RUNBOOK.md`.
//!
//! One module per format (`nginx`, `compose`, `prometheus` with `promtool_tests`,
//! `alertmanager`, `manifest`, `runbook`); what several of them say lives once in a leaf
//! they all read: `artifact` and `step`, `text` and `commands` (the manifest and the
//! runbook), `anchors` (the runbook's sections, which alerts link to), `alerting`,
//! `annotations` and `humanize` (the rules and their tests), `yaml` (every YAML file).

mod alerting;
mod alertmanager;
mod anchors;
mod annotations;
mod artifact;
mod commands;
mod compose;
#[cfg(test)]
pub(crate) mod hostile;
pub mod humanize;
mod manifest;
pub mod nginx;
mod prometheus;
mod promtool_tests;
mod runbook;
mod step;
mod text;
pub(crate) mod write;
mod yaml;

use crate::lower::LoweredPlan;
pub use artifact::Artifact;

/// Renders every artifact of a lowered plan, sorted by path.
pub(crate) fn render(lowered: &LoweredPlan) -> Vec<Artifact> {
    let (plan, rules) = (&lowered.plan, lowered.rules.as_slice());
    let mut out = nginx::render(plan);
    out.extend(compose::render(plan));
    out.extend(prometheus::render(plan, rules));
    out.extend(alertmanager::render(plan));
    out.extend(manifest::render(plan, rules));
    out.extend(runbook::render(plan, rules));
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::artifact::{GENERATED_HEAD, is_generated};
    use crate::source::Source;

    const PLANS: [&str; 4] = [
        include_str!("../../plans/lawsker.yaml"),
        include_str!("../../plans/checkout.yaml"),
        include_str!("../../plans/admin-console.yaml"),
        include_str!("../../plans/minimal.yaml"),
    ];

    fn compiled(text: &str) -> LoweredPlan {
        let src = Source::new("t.yaml".into(), text.into());
        crate::pipeline::compile(src)
            .plan
            .expect("the plan is valid")
    }

    fn assert_marked(plan: &LoweredPlan) {
        for a in render(plan) {
            let head = &a.contents.as_bytes()[..a.contents.len().min(GENERATED_HEAD)];
            assert!(
                is_generated(head),
                "{} from {:?}",
                a.path,
                plan.plan.source_name
            );
        }
    }

    #[test]
    fn every_generated_file_carries_the_mark_whatever_the_plan_file_is_called() {
        for text in PLANS {
            assert_marked(&compiled(text));
        }
        // The longest names a path allows, made longer by each format's escaping.
        let mut names = super::hostile::corpus();
        names.extend([
            "\"".repeat(4096),
            "-->".repeat(1365),
            "\u{FFFD}".repeat(4096),
        ]);
        let mut plan = compiled(PLANS[3]);
        for name in names {
            plan.plan.source_name = name;
            assert_marked(&plan);
        }
    }
}
