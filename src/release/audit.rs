//! The audit log: one JSON line per driver action, appended beside the state and never
//! rewritten: what was asked, by whom, and what came of it, refusals included.

use serde::Serialize;
use std::io::Write;
use std::path::Path;

#[derive(Debug, Serialize)]
pub(crate) struct Entry<'a> {
    pub(crate) at_ms: i64,
    /// The verb (`start`, `next`, `rollback`, `webhook`, ...).
    pub(crate) verb: &'a str,
    pub(crate) by: &'a str,
    /// `done`, `unchanged`, `refused`, `failed` or `resumed`; from `serve` also `ignored`
    /// (alerts that do not count), `refusals_counted` (a flood's count), `started`, `stopped`.
    pub(crate) outcome: &'a str,
    pub(crate) detail: &'a str,
}

/// Appends `entry` to the log at `path` (one write of one line, synced).
pub(crate) fn append(path: &Path, entry: &Entry<'_>) -> Result<(), String> {
    let mut line = serde_json::to_string(entry).map_err(|e| e.to_string())?;
    line.push('\n');
    let fail =
        |e: std::io::Error| format!("{}: cannot append to the audit log: {e}", path.display());
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(fail)?;
    f.write_all(line.as_bytes()).map_err(fail)?;
    f.sync_data().map_err(fail)
}
