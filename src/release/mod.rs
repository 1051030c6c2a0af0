//! `plan release`: drives a rendered plan through its phases on the release host, running
//! the commands the manifest lists (the runbook's own), and keeps the release's state.
//!
//! The verbs follow the original release script: `start` (phase one), `next` (the next
//! phase, once the current one has run its minimum duration and Prometheus reports its
//! gates holding; `--force` with a reason overrides), `complete` (promotion, after the last
//! phase's watch), `rollback`, `status` and `report`.
//!
//! Every verb is idempotent where repeating makes sense (a second `start` or `rollback`
//! changes nothing) and refuses a state it does not expect, saying why. The state is one
//! file replaced atomically, with an append-only audit log beside it ([`state`],
//! [`audit`]); a step interrupted by a crash is finished by the next verb, and one driver
//! at a time holds the release ([`lock`]). `--dry-run` prints what a verb would run and
//! changes nothing.
//!
//! `serve` is the automatic rollback: Alertmanager's rollback alerts of the release's phase,
//! received over HTTP, run `rollback` ([`serve`], [`webhook`]); `feedback` counts user
//! feedback into the counter the plan's feedback metric reads ([`feedback`]).

pub(crate) mod apply;
pub(crate) mod audit;
pub(crate) mod digest;
pub(crate) mod feedback;
pub(crate) mod http;
pub(crate) mod judge;
pub(crate) mod lock;
pub(crate) mod manifest;
pub(crate) mod prometheus;
pub(crate) mod rate;
pub(crate) mod report;
pub(crate) mod serve;
pub(crate) mod state;
pub(crate) mod throttle;
pub(crate) mod time;
pub(crate) mod token;
pub(crate) mod webhook;

use judge::{Ending, judge};
use manifest::{Rendered, Step};
use state::{Applying, At, Dir, Event, State};
use std::io::Write;
use std::path::Path;
use time::instant;

/// How long a verb waits for another driver to let go of the release.
pub(crate) const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A verb of `plan release`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Start,
    Next,
    Complete,
    Rollback,
}

impl Verb {
    fn name(self) -> &'static str {
        match self {
            Verb::Start => "start",
            Verb::Next => "next",
            Verb::Complete => "complete",
            Verb::Rollback => "rollback",
        }
    }
}

/// Who asks, why, and how.
#[derive(Debug, Clone)]
pub(crate) struct Ask {
    pub(crate) by: String,
    pub(crate) reason: Option<String>,
    /// Override the phase's duration and gates (needs a reason).
    pub(crate) force: bool,
    pub(crate) dry_run: bool,
    /// What the asker knows (the webhook's alerts), kept in the history.
    pub(crate) detail: Vec<String>,
}

/// What a verb did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A step was applied (or would be, in a dry run).
    Done,
    /// The release was already where the verb leads.
    Unchanged,
    /// An interrupted step was finished instead (run the verb again if still wanted).
    Resumed,
}

/// Why a verb did nothing or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) why: String,
    /// A step's command failed: the deployment may be half-way through the step.
    pub(crate) failed: bool,
}

impl Refusal {
    pub(crate) fn new(why: impl Into<String>) -> Refusal {
        Refusal {
            why: why.into(),
            failed: false,
        }
    }
}

/// The release of the plan rendered in `dir`: where its state lives.
pub(crate) fn state_dir(rendered: &Rendered) -> Dir {
    Dir::for_plan(&rendered.commands_dir(), &rendered.manifest.plan)
}

/// How far in the future a recorded time may lie (clocks of two hosts disagree a little).
const CLOCK_SKEW_MS: i64 = 5 * 60_000;

/// The release's state, checked against the rendered plan: a state the driver did not
/// write (its plan, release or phases not the manifest's, a time in the future) is
/// refused, and so is a missing state beside an audit log that shows a release began (a
/// deleted state would otherwise start the release over).
pub(crate) fn load_state(
    rendered: &Rendered,
    sdir: &Dir,
    now_ms: i64,
) -> Result<Option<State>, String> {
    let file = sdir.state_file();
    let shown = file.display();
    let Some(state) = sdir.load()? else {
        let began = std::fs::read_to_string(sdir.audit_file())
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains("\"outcome\":\"begun\"") || l.contains("\"outcome\":\"done\""));
        if began {
            return Err(format!(
                "{shown} is missing, but the audit log beside it shows this release began: the driver will not start it over; restore the state file, or move {} aside to start a new release",
                sdir.path.display()
            ));
        }
        return Ok(None);
    };
    let m = &rendered.manifest;
    if state.plan != m.plan || state.release != m.release {
        return Err(format!(
            "{shown}: the state is of plan {} ({} -> {}), the rendered folder of plan {} ({} -> {}); give the folder this release was started from",
            state.plan, state.release.from, state.release.to, m.plan, m.release.from, m.release.to
        ));
    }
    let phases = rendered.phases();
    let valid = |at: &At| match at {
        At::Phase { index, name } => phases.get(*index).is_some_and(|p| &p.name == name),
        _ => true,
    };
    let mut ats = vec![&state.at];
    ats.extend(state.applying.as_ref().map(|a| &a.to));
    for e in &state.history {
        ats.push(&e.to);
        ats.extend(e.from.as_ref());
    }
    if let Some(bad) = ats.into_iter().find(|a| !valid(a)) {
        return Err(format!(
            "{shown}: {bad:?} is not a phase of plan {} ({}); the file was edited: restore it, or roll back by hand with the runbook",
            m.plan,
            phases
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut times = vec![state.since_ms];
    times.extend(state.applying.as_ref().map(|a| a.started_ms));
    times.extend(state.history.iter().map(|e| e.at_ms));
    if let Some(&t) = times.iter().find(|&&t| t > now_ms + CLOCK_SKEW_MS) {
        return Err(format!(
            "{shown}: {} is in the future (now {}); the file was edited or this host's clock is wrong",
            instant(t),
            instant(now_ms)
        ));
    }
    Ok(Some(state))
}

/// Runs `verb` on the release of the plan rendered in `dir` at `now_ms`, telling `out`
/// what it does. Refusals and failures are in the audit log too (dry runs log nothing).
pub(crate) fn act(
    dir: &Path,
    verb: Verb,
    ask: &Ask,
    now_ms: i64,
    out: &mut dyn Write,
) -> Result<Outcome, Refusal> {
    let rendered = Rendered::read(dir).map_err(Refusal::new)?;
    let sdir = state_dir(&rendered);
    let _lock = if ask.dry_run {
        None
    } else {
        sdir.create().map_err(Refusal::new)?;
        match lock::take(&sdir.lock_file(), LOCK_WAIT) {
            Ok(l) => Some(l),
            Err(why) => {
                // Logged without the lock: one appended line does not disturb the holder.
                let entry = audit::Entry {
                    at_ms: now_ms,
                    verb: verb.name(),
                    by: &ask.by,
                    outcome: "refused",
                    detail: &why,
                };
                let _ = audit::append(&sdir.audit_file(), &entry);
                return Err(Refusal::new(why));
            }
        }
    };
    act_locked(&rendered, verb, ask, now_ms, out)
}

/// [`act`] for a caller that already holds the release's lock (or asks a dry run): `plan
/// release serve` takes the lock itself, to read the state its decision rests on and act
/// on it in one hold.
pub(crate) fn act_locked(
    rendered: &Rendered,
    verb: Verb,
    ask: &Ask,
    now_ms: i64,
    out: &mut dyn Write,
) -> Result<Outcome, Refusal> {
    let sdir = state_dir(rendered);
    let log = |outcome: &str, detail: &str| {
        if ask.dry_run {
            return;
        }
        let entry = audit::Entry {
            at_ms: now_ms,
            verb: verb.name(),
            by: &ask.by,
            outcome,
            detail,
        };
        if let Err(e) = audit::append(&sdir.audit_file(), &entry) {
            let _ = writeln!(std::io::stderr(), "warning: {e}");
        }
    };
    let mut driver = Driver {
        rendered,
        dir: &sdir,
        verb,
        ask,
        now_ms,
        out,
        notes: Vec::new(),
    };
    let result = driver.run();
    match &result {
        Ok(Outcome::Done) => log("done", ""),
        Ok(Outcome::Unchanged) => log("unchanged", ""),
        Ok(Outcome::Resumed) => log("resumed", ""),
        Err(r) => log(if r.failed { "failed" } else { "refused" }, &r.why),
    }
    result
}

struct Driver<'a> {
    rendered: &'a Rendered,
    dir: &'a Dir,
    verb: Verb,
    ask: &'a Ask,
    now_ms: i64,
    out: &'a mut dyn Write,
    /// What this step's history entry should keep besides the asker's detail.
    notes: Vec<String>,
}

impl Driver<'_> {
    fn say(&mut self, line: impl AsRef<str>) {
        let _ = writeln!(self.out, "{}", line.as_ref());
    }

    fn run(&mut self) -> Result<Outcome, Refusal> {
        let m = &self.rendered.manifest;
        let state = load_state(self.rendered, self.dir, self.now_ms).map_err(Refusal::new)?;
        let digest = digest::of(&self.rendered.dir).map_err(Refusal::new)?;
        if let Some(s) = &state
            && s.rendered != digest
            && self.verb != Verb::Rollback
            && !s.at.is_final()
        {
            return Err(Refusal::new(format!(
                "the rendered files in {} changed since the release started (digest {} then, {} now): a re-rendered plan is not applied half-way through a release; restore the files, or roll back and start a new release",
                self.rendered.dir.display(),
                s.rendered,
                digest
            )));
        }
        let Some(mut state) = state else {
            return match self.verb {
                Verb::Start => {
                    let state =
                        State::new(&m.plan, &m.release, &digest, At::NotStarted, self.now_ms);
                    self.apply(state, 0)
                }
                Verb::Rollback => Err(Refusal::new(
                    "the release has not started: there is nothing to roll back",
                )),
                v => Err(Refusal::new(format!(
                    "the release has not started; `start` begins it (asked: `{}`)",
                    v.name()
                ))),
            };
        };
        // A step a stopped driver left half done is finished first; a rollback goes
        // ahead regardless, being the way out of any step.
        if let Some(a) = state.applying.clone()
            && self.verb != Verb::Rollback
        {
            self.say(format!(
                "a driver stopped while applying step {} (asked by {} with `{}` at {}): finishing it first",
                a.step,
                a.by,
                a.verb,
                instant(a.started_ms)
            ));
            let step = self.step_for(&a.to).clone();
            self.run_step(&mut state, &step, a.to.clone(), &a.verb, Some(&a))?;
            self.say(format!(
                "finished; the release is {}. Run `{}` again if it is still wanted.",
                self.where_(&state.at),
                self.verb.name()
            ));
            return Ok(Outcome::Resumed);
        }
        let last = self.rendered.phases().len() - 1;
        match (self.verb, state.at.clone()) {
            (Verb::Start, At::Phase { index: 0, .. }) => {
                self.say(format!(
                    "the release is already in phase {} (since {}): nothing to do",
                    self.rendered.phases()[0].name,
                    instant(state.since_ms)
                ));
                Ok(Outcome::Unchanged)
            }
            (Verb::Start, At::NotStarted) => self.apply(state, 0),
            (Verb::Start, at) => Err(Refusal::new(format!(
                "the release is {}: `start` begins a release{}",
                self.where_(&at),
                if at.is_final() {
                    format!(
                        "; to release again, move {} aside (it keeps this release's history) and start anew",
                        self.dir.path.display()
                    )
                } else {
                    String::new()
                }
            ))),
            (Verb::Next, At::Phase { index, .. }) if index == last => Err(Refusal::new(format!(
                "phase {} is the last; `complete` promotes the release once its watch is over",
                self.rendered.phases()[index].name
            ))),
            (Verb::Next, At::Phase { index, .. }) => {
                let j = judge(
                    self.rendered,
                    index,
                    state.since_ms,
                    self.now_ms,
                    Ending::Next,
                );
                self.gate(&j.blockers)?;
                self.apply(state, index + 1)
            }
            (Verb::Complete, At::Phase { index, .. }) if index == last => {
                let j = judge(
                    self.rendered,
                    index,
                    state.since_ms,
                    self.now_ms,
                    Ending::Complete,
                );
                self.gate(&j.blockers)?;
                let step = self.rendered.step("promotion").clone();
                self.run_step(&mut state, &step, At::Completed, "complete", None)?;
                if !self.ask.dry_run {
                    self.say(format!(
                        "the release of {} is complete",
                        self.rendered.manifest.release.to
                    ));
                }
                Ok(Outcome::Done)
            }
            (Verb::Complete, At::Completed) | (Verb::Rollback, At::RolledBack)
                if state.applying.is_none() =>
            {
                self.say(format!(
                    "the release is already {} (since {}): nothing to do",
                    self.where_(&state.at),
                    instant(state.since_ms)
                ));
                Ok(Outcome::Unchanged)
            }
            (Verb::Rollback, At::Completed) => Err(Refusal::new(format!(
                "the release was completed at {}: {} is the stable version now; going back is a new release of {}",
                instant(state.since_ms),
                self.rendered.manifest.release.to,
                self.rendered.manifest.release.from
            ))),
            (Verb::Rollback, _) => {
                if state.rendered != digest {
                    self.note(format!(
                        "the rendered files changed since the release started (digest {} then, {digest} now): rolling back with the files as they are",
                        state.rendered
                    ));
                }
                let step = self.rendered.step("rollback").clone();
                self.run_step(&mut state, &step, At::RolledBack, "rollback", None)?;
                if !self.ask.dry_run {
                    self.say(format!(
                        "rolled back: every user is on {}",
                        self.rendered.manifest.release.from
                    ));
                }
                Ok(Outcome::Done)
            }
            (v, at) => Err(Refusal::new(format!(
                "the release is {}: `{}` does not apply{}",
                self.where_(&at),
                v.name(),
                match (v, &at) {
                    (Verb::Complete, At::Phase { .. }) => "; `next` leads to the last phase first",
                    _ => "",
                }
            ))),
        }
    }

    /// Notes something the history should keep about this step.
    fn note(&mut self, note: String) {
        self.say(format!("note: {note}"));
        self.notes.push(note);
    }

    /// Refuses unless nothing holds the phase back or the asker forces it.
    fn gate(&mut self, blockers: &[String]) -> Result<(), Refusal> {
        if blockers.is_empty() {
            return Ok(());
        }
        let list = blockers
            .iter()
            .map(|b| format!("  - {b}"))
            .collect::<Vec<_>>()
            .join("\n");
        if self.ask.force {
            self.say(format!("forced past:\n{list}"));
            for b in blockers {
                self.notes.push(format!("forced past: {b}"));
            }
            return Ok(());
        }
        Err(Refusal::new(format!(
            "`{}` waits:\n{list}\n(`--force --reason TEXT` overrides; the history keeps it)",
            self.verb.name()
        )))
    }

    /// Applies phase `index` to `state`.
    fn apply(&mut self, mut state: State, index: usize) -> Result<Outcome, Refusal> {
        let phase = self.rendered.phases()[index].clone();
        let to = At::Phase {
            index,
            name: phase.name.clone(),
        };
        self.run_step(&mut state, &phase, to, self.verb.name(), None)?;
        self.say(format!(
            "{}phase {} ({} of {}), {} of users on {}",
            if self.ask.dry_run { "would be in " } else { "" },
            phase.name,
            index + 1,
            self.rendered.phases().len(),
            phase.traffic.text,
            self.rendered.manifest.release.to
        ));
        Ok(Outcome::Done)
    }

    /// The manifest step that leads to `at`.
    fn step_for(&self, at: &At) -> &Step {
        match at {
            At::Phase { index, .. } => self.rendered.phases()[*index],
            At::RolledBack => self.rendered.step("rollback"),
            At::Completed => self.rendered.step("promotion"),
            At::NotStarted => self.rendered.phases()[0],
        }
    }

    /// Runs `step`'s commands and moves the release to `to`, recording the step as begun
    /// first and as done last. `resumed`: the step a stopped driver began, whose asker,
    /// reason and detail the history keeps.
    fn run_step(
        &mut self,
        state: &mut State,
        step: &Step,
        to: At,
        verb: &str,
        resumed: Option<&Applying>,
    ) -> Result<(), Refusal> {
        let dry = self.ask.dry_run;
        // Every file the step applies is there, or nothing runs (a dry run says so too).
        let missing: Vec<&String> = step
            .artifacts
            .iter()
            .filter(|a| !self.rendered.dir.join(a).is_file())
            .collect();
        if !missing.is_empty() {
            return Err(Refusal::new(format!(
                "step {} applies files that are not in {}: {}; render the plan again",
                step.name,
                self.rendered.dir.display(),
                missing
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        self.say(format!(
            "{}step {} ({} commands, from {}):",
            if dry { "would apply " } else { "applying " },
            step.name,
            step.commands.len(),
            self.rendered.commands_dir().display()
        ));
        let begun = match resumed {
            Some(a) => a.clone(),
            None => {
                let mut detail = self.ask.detail.clone();
                detail.append(&mut self.notes);
                Applying {
                    to: to.clone(),
                    step: step.name.clone(),
                    started_ms: self.now_ms,
                    verb: verb.into(),
                    by: self.ask.by.clone(),
                    reason: self.ask.reason.clone(),
                    detail,
                }
            }
        };
        if !dry {
            state.applying = Some(begun.clone());
            self.dir.save(state).map_err(Refusal::new)?;
            self.log_begun(&begun);
        }
        apply::run(&step.commands, &self.rendered.commands_dir(), dry, self.out).map_err(|e| {
            let again = if step.kind == "rollback" {
                "run `rollback` again once the cause is fixed (it runs the whole step again)".to_string()
            } else {
                format!(
                    "run `{verb}` again once the cause is fixed (it runs the whole step again), or `rollback`"
                )
            };
            Refusal {
                why: format!(
                    "step {} stopped: {e}\nits earlier commands ran, so the deployment may be half-way to {}; the release's state records the step as unfinished: {again}",
                    step.name,
                    self.where_(&to)
                ),
                failed: true,
            }
        })?;
        if dry {
            self.say(format!(
                "would record: {} -> {} (nothing was changed)",
                self.where_(&state.at),
                self.where_(&to)
            ));
            return Ok(());
        }
        let mut detail = begun.detail.clone();
        if resumed.is_some() {
            detail.push(format!(
                "finished by {} after the driver that began it at {} stopped",
                self.ask.by,
                instant(begun.started_ms)
            ));
        }
        state.history.push(Event {
            at_ms: self.now_ms,
            verb: begun.verb.clone(),
            from: Some(state.at.clone()),
            to: to.clone(),
            by: begun.by.clone(),
            reason: begun.reason.clone(),
            forced: detail.iter().any(|d| d.starts_with("forced past")),
            detail,
        });
        state.at = to;
        state.since_ms = self.now_ms;
        state.applying = None;
        self.dir.save(state).map_err(Refusal::new)
    }

    /// The audit log's line for a step begun: a driver killed in the middle of it leaves
    /// its trace.
    fn log_begun(&self, a: &Applying) {
        let detail = format!(
            "step {}{}{}",
            a.step,
            a.reason
                .as_deref()
                .map_or_else(String::new, |r| format!("; reason: {r}")),
            if a.detail.is_empty() {
                String::new()
            } else {
                format!("; {}", a.detail.join("; "))
            }
        );
        let entry = audit::Entry {
            at_ms: self.now_ms,
            verb: &a.verb,
            by: &a.by,
            outcome: "begun",
            detail: &detail,
        };
        if let Err(e) = audit::append(&self.dir.audit_file(), &entry) {
            let _ = writeln!(std::io::stderr(), "warning: {e}");
        }
    }

    /// Where the release is, for people.
    fn where_(&self, at: &At) -> String {
        at.describe(self.rendered.phases().len())
    }
}
