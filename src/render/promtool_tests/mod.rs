//! `prometheus/<phase>.test.yml`: `promtool test rules` unit tests of a phase's rules,
//! generated so that they prove every alert fires exactly when the lowered rule says, and
//! not one evaluation before.
//!
//! For each lowered rule one test group feeds series that are healthy for a while and then
//! cross the rule's threshold clearly (no-data rules: the traffic stops, or the series stop
//! being reported), and expects no alert one evaluation before the first firing one and
//! the alert, with its exact labels and annotations, at it. The firing evaluation is not
//! guessed: it is computed with Prometheus 2.42's semantics by the crate's one raw-series
//! evaluator (`crate::prom`, proven bit for bit against promtool by the replay's proof
//! tests). The summary prints the alert's value, so the expected one holds the value
//! computed at that evaluation, formatted as Prometheus' template functions format it; each
//! test also checks the recorded value at both evaluations, so a drift between the
//! evaluator and Prometheus fails the test rather than moving it. One more group feeds
//! healthy series for every metric and expects no alert at all.
//!
//! One concept per file: `levels` (the level each series holds), `series` (the series built
//! from them), `firing` (when an alert fires on them), `cases` (the test groups) and `file`
//! (the test file's shape); `generator` holds what they share.
//!
//! The phases' rules differ only in the phase an alert names and how it ends (a gate's
//! `action`), so the tests are computed once per plan ([`Tests::new`]); each phase's file
//! ([`Tests::body`]) adds that phase's expected labels and annotations, and stays
//! self-contained.

mod cases;
mod file;
mod firing;
mod generator;
mod levels;
mod series;

use super::alerting::recorded;
use super::annotations::PhaseEnd;
use super::artifact::header;
use crate::check::CheckedPlan;
use crate::lower::AlertRule;
use crate::promql::Track;
use file::Group;
use generator::Generator;

/// The promtool unit tests of a plan's rules, computed once for every phase.
pub(crate) struct Tests<'a> {
    plan: &'a CheckedPlan,
    rules: &'a [AlertRule],
    groups: Vec<Group>,
    /// Rules (or the healthy group) left untested, and why.
    notes: Vec<String>,
}

impl<'a> Tests<'a> {
    /// Generates one test group per rule and the healthy group.
    pub(crate) fn new(plan: &'a CheckedPlan, rules: &'a [AlertRule]) -> Tests<'a> {
        let g = Generator::new(plan, rules);
        let mut groups = Vec::new();
        let mut notes = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            match g.rule_test(i) {
                Ok(t) => groups.push(t),
                Err(why) => notes.push(format!("{}: not tested: {why}", r.alert)),
            }
            if r.guard.is_some() {
                match g.thin_test(i) {
                    Ok(t) => groups.push(t),
                    Err(why) => notes.push(format!(
                        "{} (below `min_requests`): not tested: {why}",
                        r.alert
                    )),
                }
            }
            if r.is_silent_canary() {
                match g.vanished_test(i) {
                    Ok(t) => groups.push(t),
                    Err(why) => {
                        notes.push(format!("{} (target vanished): not tested: {why}", r.alert))
                    }
                }
                match g.no_errors_test(i) {
                    Ok(t) => groups.push(t),
                    Err(why) => {
                        notes.push(format!("{} (no 5xx series): not tested: {why}", r.alert))
                    }
                }
            }
        }
        match g.healthy_test() {
            Ok(t) => groups.push(t),
            Err(why) => notes.push(format!("healthy series: not tested: {why}")),
        }
        Tests {
            plan,
            rules,
            groups,
            notes,
        }
    }

    /// How many times [`Tests::body`] writes the phase, for stamping it into one
    /// serialisation: in the rules file's name, and in the labels and the description of
    /// every expected alert.
    pub(crate) fn places(&self) -> usize {
        1 + 2 * self
            .groups
            .iter()
            .flat_map(|g| &g.checks)
            .filter(|c| c.fires.is_some())
            .count()
    }

    /// The comment lines opening the unit-test file of phase `phase`.
    pub(crate) fn header(&self, phase: &str) -> String {
        let plan = self.plan;
        let custom: Vec<&str> = recorded(plan, self.rules)
            .iter()
            .filter(|(mi, t)| *t == Track::Canary && !plan.metrics[*mi].expr.is_structured())
            .map(|(mi, _)| plan.metrics[*mi].name.as_str())
            .collect();
        let mut s = header(plan, "#");
        s.push_str(&format!(
            "# promtool unit tests of {phase}.rules.yml: `promtool test rules {phase}.test.yml`.\n\
             # One test per alert: its series are healthy, then cross the rule's threshold (no-data\n\
             # rules: traffic stops or the series end; the silent-canary rule: the canary's `up`\n\
             # turns 0, and in a second test its target vanishes). The firing evaluation was computed with\n\
             # Prometheus 2.42's semantics from the same lowered rule: no alert one evaluation\n\
             # before it, the alert with its exact labels and annotations at it, and the recorded\n\
             # value at both. A last test feeds healthy series and expects no alert.\n"
        ));
        if self.rules.iter().any(|r| r.guard.is_some()) {
            s.push_str(
                "# A rule with `min_requests` has a second test: the canary crosses the threshold\n\
                 # on fewer requests per window than the guard asks for, and no alert fires where\n\
                 # it would without the guard.\n",
            );
        }
        if !custom.is_empty() {
            s.push_str(&format!(
                "# Custom metrics are fed as their recorded series: their queries have no input\n\
                 # series here, so their recording rules record nothing and cannot clash.\n\
                 # Custom metrics: {}.\n",
                custom.join(", ")
            ));
        }
        for n in &self.notes {
            s.push_str(&format!("# {n}\n"));
        }
        s
    }

    /// The YAML of the unit-test file of phase `phase` (its name), which ends as `end`,
    /// testing the sibling file `<phase>.rules.yml`.
    pub(crate) fn body(&self, phase: &str, end: PhaseEnd) -> String {
        file::body(self.plan, self.rules, &self.groups, phase, end)
    }
}
