//! Writing an HTML report (`--report FILE.html`): drawn from the run's JSON document, and
//! written at once, as `render` and `tune --write` write theirs: beside its place under a
//! temporary name, then renamed over it, so that a failure leaves no half-written page
//! (and whatever was there before) and says which path it could not write.

use super::error::Error;
use crate::check::CheckedPlan;
use crate::html::About;
use serde::Serialize;
use std::path::Path;

/// Which page a document makes.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Simulation,
    Tune,
    Replay,
}

/// The document a page is drawn from: the one `--format json` prints, as a value.
pub(super) struct Report {
    kind: Kind,
    doc: Result<serde_json::Value, String>,
}

impl Report {
    pub(super) fn of(kind: Kind, doc: &impl Serialize) -> Report {
        Report {
            kind,
            doc: serde_json::to_value(doc).map_err(|e| e.to_string()),
        }
    }
}

/// Writes the page of `report` to `path`.
pub(super) fn write(path: &Path, plan: &CheckedPlan, report: &Report) -> Result<(), Error> {
    let fail = |message: String| Error::Report {
        path: path.display().to_string(),
        message,
    };
    let value = report.doc.as_ref().map_err(|e| fail(e.clone()))?;
    let about = About {
        release: format!("{} → {}", plan.release.from, plan.release.to),
        tool: format!("plan {}", env!("CARGO_PKG_VERSION")),
    };
    let html = match report.kind {
        Kind::Simulation => crate::html::simulation(value, &about),
        Kind::Tune => crate::html::tune(value, &about),
        Kind::Replay => crate::html::replay(value, &about),
    };
    atomically(path, html.as_bytes()).map_err(|e| fail(e.to_string()))
}

/// `bytes` into `path`: a temporary file beside it, renamed over it.
fn atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if path.is_dir() {
        return Err(std::io::Error::other("it is a folder"));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or("report".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.plan-{}.tmp", std::process::id()));
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
