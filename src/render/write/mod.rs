//! Putting rendered artifacts on disk safely, or comparing them with what is there.
//!
//! Each plan owns the files it wrote in `OUT/<plan name>/`: render replaces them, and
//! removes those the plan no longer produces. It never replaces or removes anything else
//! there (a `README.md`, a `.git`, a symbolic link): it stops and names it, unless told to
//! with `delete_foreign` (`survey` says how plan knows its files). Nothing outside the
//! plan's folder is touched (but for creating `--out` when it is missing), and no link is
//! followed: `--out` must not be one either. Links above `--out` are followed: the user
//! named that path, and systems put links there (`/tmp`, home folders).
//!
//! All or nothing (`transaction`): a render that fails puts back everything it did and
//! says so; only if putting back fails too does it name what is left.

mod outcome;
mod survey;
mod transaction;

use super::artifact::Artifact;
use outcome::{Action, IoFailure};
pub(crate) use outcome::{Drift, Foreign, WriteError, Written};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use survey::{Existing, Survey};
use transaction::Transaction;

/// The rendered files of one plan: they go to `OUT/<name>/`.
pub(crate) struct PlanOutput {
    pub(crate) name: String,
    pub(crate) artifacts: Vec<Artifact>,
}

/// A path segment we are willing to create: no separators, no `.`/`..`, no hidden tricks.
fn safe_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// Surveys a plan's folder under `out`, after checking every segment of its paths.
fn survey_plan<'a>(out: &Path, o: &'a PlanOutput) -> Result<Survey<'a>, WriteError> {
    let refuse = |path: PathBuf, segment: &str| WriteError::UnsafeName {
        path,
        segment: segment.to_string(),
    };
    if !safe_segment(&o.name) {
        return Err(refuse(out.join(&o.name), &o.name));
    }
    let dir = out.join(&o.name);
    let mut artifacts = Vec::new();
    for a in &o.artifacts {
        if let Some(seg) = a.path.split('/').find(|s| !safe_segment(s)) {
            return Err(refuse(dir.join(&a.path), seg));
        }
        artifacts.push((PathBuf::from(&a.path), a.contents.as_str()));
    }
    survey::survey(&dir, &artifacts).map_err(WriteError::Failed)
}

/// `--out` with trailing slashes dropped (so a link named `out/` is seen as a link), after
/// refusing a symbolic link, or anything but a folder at it or above it.
fn output_folder(out: &Path) -> Result<PathBuf, WriteError> {
    use io::ErrorKind as K;
    let out: PathBuf = out.components().collect();
    for (i, p) in out.ancestors().enumerate() {
        if p.as_os_str().is_empty() {
            break;
        }
        // `--out` itself is not followed; the folders above it are.
        let meta = if i == 0 {
            fs::symlink_metadata(p)
        } else {
            fs::metadata(p)
        };
        match meta {
            Ok(m) if m.file_type().is_symlink() => return Err(WriteError::OutIsSymlink(out)),
            Ok(m) if m.is_dir() => break,
            Ok(_) => return Err(WriteError::NotAFolder(p.to_path_buf())),
            // Not there, or something above it is not a folder: look further up.
            Err(e) if matches!(e.kind(), K::NotFound | K::NotADirectory) => {}
            Err(e) => return Err(WriteError::Failed(IoFailure::new(p, Action::Inspect, e))),
        }
    }
    Ok(out)
}

fn survey_all<'a>(out: &Path, outputs: &'a [PlanOutput]) -> Result<Vec<Survey<'a>>, WriteError> {
    outputs.iter().map(|o| survey_plan(out, o)).collect()
}

/// The differences between what is rendered and what is on disk, in the terms render
/// would act on them: files missing or different (written), stale (removed), foreign
/// (render stops).
pub(crate) fn check(out: &Path, outputs: &[PlanOutput]) -> Result<Vec<Drift>, WriteError> {
    let out = output_folder(out)?;
    let mut drift = Vec::new();
    for s in survey_all(&out, outputs)? {
        for p in s.to_write {
            match p.existing {
                Existing::Nothing => drift.push(Drift::Missing(p.path)),
                Existing::Generated => drift.push(Drift::Differs(p.path)),
                // Reported with the other foreign entries.
                Existing::Foreign => {}
            }
        }
        drift.extend(s.stale.into_iter().map(Drift::Stale));
        drift.extend(s.foreign.into_iter().map(Drift::Foreign));
    }
    drift.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(drift)
}

/// Writes every artifact whose contents changed and removes what the plans no longer
/// produce, all or nothing. Entries plan did not write stop it, unless `delete_foreign`.
pub(crate) fn write(
    out: &Path,
    outputs: &[PlanOutput],
    delete_foreign: bool,
) -> Result<Written, WriteError> {
    let out = output_folder(out)?;
    let surveys = survey_all(&out, outputs)?;
    let foreign: Vec<Foreign> = surveys.iter().flat_map(|s| s.foreign.clone()).collect();
    if !foreign.is_empty() && !delete_foreign {
        return Err(WriteError::Foreign(foreign));
    }
    let mut tx = Transaction::default();
    if let Err(cause) = apply(&surveys, &mut tx) {
        let stuck = tx.roll_back();
        return Err(if stuck.is_empty() {
            WriteError::Failed(cause)
        } else {
            WriteError::Interrupted { cause, stuck }
        });
    }
    let (changed, left) = tx.finish();
    if !left.is_empty() {
        return Err(WriteError::Leftover(left));
    }
    Ok(Written {
        changed,
        deleted_foreign: foreign,
    })
}

fn apply(surveys: &[Survey], tx: &mut Transaction) -> Result<(), IoFailure> {
    for path in surveys.iter().flat_map(|s| &s.remove) {
        tx.move_aside(path)?;
    }
    for p in surveys.iter().flat_map(|s| &s.to_write) {
        if let Some(parent) = p.path.parent() {
            tx.create_folders(parent)?;
        }
        tx.stage(&p.path, p.contents, p.existing != Existing::Nothing)?;
    }
    tx.commit(|from, to| fs::rename(from, to))
}

#[cfg(test)]
mod tests {
    use super::outcome::{Stuck, Undo};
    use super::*;

    #[test]
    fn a_failure_says_nothing_changed_only_when_that_is_true() {
        let cause = || {
            IoFailure::new(
                Path::new("o/p/a.conf"),
                Action::Replace,
                io::Error::other("x"),
            )
        };
        let failed = WriteError::Failed(cause()).to_string();
        assert!(failed.contains("nothing was changed"), "{failed}");
        let interrupted = WriteError::Interrupted {
            cause: cause(),
            stuck: vec![Stuck {
                path: PathBuf::from("o/p/b.conf"),
                what: Undo::PutBackOld,
                error: io::Error::other("y"),
            }],
        }
        .to_string();
        assert!(
            !interrupted.contains("nothing was changed"),
            "{interrupted}"
        );
        assert!(
            interrupted
                .contains("o/p/b.conf: is the new file; its old version could not be put back: y"),
            "{interrupted}"
        );
        let left = WriteError::Leftover(vec![(
            PathBuf::from("o/p/.plan-1-0.old"),
            io::Error::other("z"),
        )])
        .to_string();
        assert!(left.contains("every file is in place"), "{left}");
        assert!(left.contains("o/p/.plan-1-0.old: z"), "{left}");
    }
}
