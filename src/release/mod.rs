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
pub(crate) struct Refusal(pub(crate) String);

/// The release of the plan rendered in `dir`: where its state lives.
pub(crate) fn state_dir(rendered: &Rendered) -> Dir {
    Dir::for_plan(&rendered.commands_dir(), &rendered.manifest.plan)
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
    let rendered = Rendered::read(dir).map_err(Refusal)?;
    let sdir = state_dir(&rendered);
    let _lock = if ask.dry_run {
        None
    } else {
        sdir.create().map_err(Refusal)?;
        Some(lock::take(&sdir.lock_file(), LOCK_WAIT).map_err(Refusal)?)
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
        Err(Refusal(why)) => log("refused", why),
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
        let state = self.dir.load().map_err(Refusal)?;
        if let Some(s) = &state
            && (s.plan != m.plan || s.release != m.release)
        {
            return Err(Refusal(format!(
                "{}: the state is of plan {} ({} -> {}), the rendered folder of plan {} ({} -> {}); give the folder this release was started from",
                self.dir.state_file().display(),
                s.plan,
                s.release.from,
                s.release.to,
                m.plan,
                m.release.from,
                m.release.to
            )));
        }
        let digest = digest::of(&self.rendered.dir).map_err(Refusal)?;
        if let Some(s) = &state
            && s.rendered != digest
            && self.verb != Verb::Rollback
            && !s.at.is_final()
        {
            return Err(Refusal(format!(
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
                Verb::Rollback => Err(Refusal(
                    "the release has not started: there is nothing to roll back".into(),
                )),
                v => Err(Refusal(format!(
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
            self.run_step(&mut state, &step, a.to.clone(), &a.verb, true)?;
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
            (Verb::Start, at) => Err(Refusal(format!(
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
            (Verb::Next, At::Phase { index, .. }) if index == last => Err(Refusal(format!(
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
                self.run_step(&mut state, &step, At::Completed, "complete", false)?;
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
            (Verb::Rollback, At::Completed) => Err(Refusal(format!(
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
                self.run_step(&mut state, &step, At::RolledBack, "rollback", false)?;
                if !self.ask.dry_run {
                    self.say(format!(
                        "rolled back: every user is on {}",
                        self.rendered.manifest.release.from
                    ));
                }
                Ok(Outcome::Done)
            }
            (v, at) => Err(Refusal(format!(
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
        Err(Refusal(format!(
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
        self.run_step(&mut state, &phase, to, self.verb.name(), false)?;
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
    /// first and as done last.
    fn run_step(
        &mut self,
        state: &mut State,
        step: &Step,
        to: At,
        verb: &str,
        resumed: bool,
    ) -> Result<(), Refusal> {
        let dry = self.ask.dry_run;
        self.say(format!(
            "{}step {} ({} commands, from {}):",
            if dry { "would apply " } else { "applying " },
            step.name,
            step.commands.len(),
            self.rendered.commands_dir().display()
        ));
        if !dry {
            state.applying = Some(Applying {
                to: to.clone(),
                step: step.name.clone(),
                started_ms: self.now_ms,
                verb: verb.into(),
                by: self.ask.by.clone(),
                reason: self.ask.reason.clone(),
            });
            self.dir.save(state).map_err(Refusal)?;
        }
        apply::run(&step.commands, &self.rendered.commands_dir(), dry, self.out).map_err(|e| {
            Refusal(format!(
                "step {} stopped: {e}\nthe release stays {} with the step unfinished; run the verb again once the cause is fixed, or `rollback`",
                step.name,
                self.where_(&state.at)
            ))
        })?;
        if dry {
            self.say(format!(
                "would record: {} -> {} (nothing was changed)",
                self.where_(&state.at),
                self.where_(&to)
            ));
            return Ok(());
        }
        let mut detail = self.ask.detail.clone();
        detail.append(&mut self.notes);
        if resumed {
            detail.push("finished after an interrupted driver".into());
        }
        state.history.push(Event {
            at_ms: self.now_ms,
            verb: verb.into(),
            from: Some(state.at.clone()),
            to: to.clone(),
            by: self.ask.by.clone(),
            reason: self.ask.reason.clone(),
            forced: detail.iter().any(|d| d.starts_with("forced past")),
            detail,
        });
        state.at = to;
        state.since_ms = self.now_ms;
        state.applying = None;
        self.dir.save(state).map_err(Refusal)
    }

    /// Where the release is, for people.
    fn where_(&self, at: &At) -> String {
        match at {
            At::NotStarted => "not started".into(),
            At::Phase { index, name } => format!(
                "in phase {name} ({} of {})",
                index + 1,
                self.rendered.phases().len()
            ),
            At::RolledBack => "rolled back".into(),
            At::Completed => "completed".into(),
        }
    }
}
