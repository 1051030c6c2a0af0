//! `plan render`: every plan compiled and rendered, then written under `--out` (or compared
//! with what is there, with `--check`).

use super::error::Error;
use super::findings::Batch;
use super::terminal::plural;
use crate::render::write::{self, PlanOutput};
use std::io::Write;
use std::path::{Path, PathBuf};

pub(super) fn render(
    files: &[PathBuf],
    out: &Path,
    check: bool,
    delete_foreign: bool,
) -> Result<(), Error> {
    let b = Batch::plans(files, false);
    let _ = std::io::stderr().write_all(b.text().as_bytes());
    if let Err(e) = b.outcome() {
        eprintln!("nothing written: fix the errors above first");
        return Err(e);
    }
    let outputs: Vec<PlanOutput> = b
        .compiled
        .iter()
        .filter_map(|c| c.plan.as_ref())
        .map(|lowered| PlanOutput {
            name: lowered.plan.name.clone(),
            artifacts: crate::render::render(lowered),
        })
        .collect();
    let mut names: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::SameName(w[0].to_string()));
    }
    if check {
        let drift = write::check(out, &outputs).map_err(Error::Write)?;
        return if drift.is_empty() {
            Ok(())
        } else {
            Err(Error::Drift(drift))
        };
    }
    let written = write::write(out, &outputs, delete_foreign).map_err(Error::Write)?;
    for f in &written.deleted_foreign {
        eprintln!("deleted {f}");
    }
    let total: usize = outputs.iter().map(|o| o.artifacts.len()).sum();
    eprintln!(
        "rendered {total} file{} under {} ({} changed)",
        plural(total),
        out.display(),
        written.changed.len()
    );
    Ok(())
}
