//! The release's state: one JSON file, replaced atomically (written beside it, synced,
//! renamed over it, the folder synced), so a crash leaves the old state or the new one,
//! never half of either.
//!
//! A step is recorded as begun (`applying`) before its first command runs and as done
//! after its last: a driver killed in between leaves `applying` set, and the next command
//! finishes that step before anything else (every step's commands can run twice).

use super::manifest::Release;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The state format's version.
const SCHEMA_VERSION: u32 = 1;

/// A state file is small; anything larger is not one.
const MAX_BYTES: u64 = 16 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct State {
    pub(crate) schema_version: u32,
    pub(crate) plan: String,
    pub(crate) release: Release,
    /// The digest of the rendered files the release started with.
    pub(crate) rendered: String,
    /// Where the release is.
    pub(crate) at: At,
    /// When it got there (Unix milliseconds).
    pub(crate) since_ms: i64,
    /// A step begun and not finished: a driver stopped in the middle of it.
    pub(crate) applying: Option<Applying>,
    /// What happened, oldest first.
    pub(crate) history: Vec<Event>,
}

/// Where a release is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum At {
    /// Before the first phase: `start` was interrupted before its step was done.
    NotStarted,
    /// In phase `index` (0-based) of the plan.
    Phase {
        index: usize,
        name: String,
    },
    RolledBack,
    Completed,
}

impl At {
    pub(crate) fn is_final(&self) -> bool {
        !matches!(self, At::Phase { .. })
    }

    /// Where the release is, for people, in a plan of `phases` phases.
    pub(crate) fn describe(&self, phases: usize) -> String {
        match self {
            At::NotStarted => "not started".into(),
            At::Phase { index, name } => format!("in phase {name} ({} of {phases})", index + 1),
            At::RolledBack => "rolled back".into(),
            At::Completed => "completed".into(),
        }
    }
}

/// A step being applied: the state it leads to, and who asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Applying {
    pub(crate) to: At,
    /// The manifest step whose commands are running (`alpha`, `rollback`, `promotion`).
    pub(crate) step: String,
    pub(crate) started_ms: i64,
    pub(crate) verb: String,
    pub(crate) by: String,
    pub(crate) reason: Option<String>,
    /// What the step's history entry will keep (forced-past reasons, the webhook's alerts),
    /// so that a step finished by another driver tells the same story.
    #[serde(default)]
    pub(crate) detail: Vec<String>,
}

/// One step of the release's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Event {
    pub(crate) at_ms: i64,
    pub(crate) verb: String,
    pub(crate) from: Option<At>,
    pub(crate) to: At,
    pub(crate) by: String,
    pub(crate) reason: Option<String>,
    /// `--force` overrode the phase's duration or its gates.
    pub(crate) forced: bool,
    /// What held when it was taken (alerts firing, time in phase).
    pub(crate) detail: Vec<String>,
}

impl State {
    pub(crate) fn new(plan: &str, release: &Release, rendered: &str, at: At, now: i64) -> State {
        State {
            schema_version: SCHEMA_VERSION,
            plan: plan.into(),
            release: release.clone(),
            rendered: rendered.into(),
            at,
            since_ms: now,
            applying: None,
            history: Vec::new(),
        }
    }
}

/// Where a plan's release keeps its state: `OUT/.plan-release/<plan>/` beside the rendered
/// folder (never inside it, which `plan render` owns).
#[derive(Debug, Clone)]
pub(crate) struct Dir {
    pub(crate) path: PathBuf,
}

impl Dir {
    pub(crate) fn for_plan(commands_dir: &Path, plan: &str) -> Dir {
        Dir {
            path: commands_dir.join(".plan-release").join(plan),
        }
    }

    pub(crate) fn state_file(&self) -> PathBuf {
        self.path.join("state.json")
    }

    pub(crate) fn audit_file(&self) -> PathBuf {
        self.path.join("audit.jsonl")
    }

    pub(crate) fn lock_file(&self) -> PathBuf {
        self.path.join("lock")
    }

    pub(crate) fn create(&self) -> Result<(), String> {
        std::fs::create_dir_all(&self.path).map_err(|e| {
            format!(
                "{}: cannot create the release's folder: {e}",
                self.path.display()
            )
        })
    }

    /// The state, None before `start`. A file that is not a state (cut short, edited by
    /// hand) is an error naming its line and column: the driver never guesses a state.
    pub(crate) fn load(&self) -> Result<Option<State>, String> {
        let path = self.state_file();
        let shown = path.display();
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{shown}: {e}")),
        };
        if meta.len() > MAX_BYTES {
            return Err(format!(
                "{shown}: {} bytes is not a release state",
                meta.len()
            ));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{shown}: {e}"))?;
        let state: State = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{shown}:{}:{}: not a release state ({e}); it was cut short or edited: restore it from the audit log beside it, or roll back by hand with the runbook",
                e.line(),
                e.column()
            )
        })?;
        if state.schema_version != SCHEMA_VERSION {
            return Err(format!(
                "{shown}: state version {} is not this driver's ({SCHEMA_VERSION})",
                state.schema_version
            ));
        }
        Ok(Some(state))
    }

    /// Replaces the state file at once.
    pub(crate) fn save(&self, state: &State) -> Result<(), String> {
        let path = self.state_file();
        let mut text = serde_json::to_string_pretty(state).map_err(|e| e.to_string())?;
        text.push('\n');
        replace(&path, &text)
            .map_err(|e| format!("{}: cannot write the release's state: {e}", path.display()))
    }

    pub(crate) fn feedback_file(&self) -> PathBuf {
        self.path.join("feedback.json")
    }
}

/// Replaces the file at `path` with `text` at once: written beside it, synced, renamed
/// over it, the folder synced.
pub(crate) fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(d) = path.parent().and_then(|p| std::fs::File::open(p).ok()) {
        let _ = d.sync_all();
    }
    Ok(())
}
