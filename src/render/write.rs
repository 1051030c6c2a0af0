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

mod survey;
mod transaction;

use super::artifact::Artifact;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use survey::{Existing, Survey};
use transaction::Transaction;

/// The rendered files of one plan: they go to `OUT/<name>/`.
pub struct PlanOutput {
    pub name: String,
    pub artifacts: Vec<Artifact>,
}

/// An entry in a plan's folder that plan did not write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Foreign {
    pub path: PathBuf,
    pub kind: ForeignKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForeignKind {
    /// A file (or a FIFO, socket or device) without plan's mark.
    File,
    /// A folder holding nothing plan wrote (or nothing at all).
    Folder,
    /// A symbolic link (render never follows one).
    Symlink,
}

impl fmt::Display for Foreign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match self.kind {
            ForeignKind::File => write!(f, "{p}: a file plan did not write"),
            ForeignKind::Folder => write!(f, "{p}/: a folder plan did not create"),
            ForeignKind::Symlink => write!(f, "{p}: a symbolic link (plan never follows links)"),
        }
    }
}

/// How a file on disk differs from the render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    Missing(PathBuf),
    Differs(PathBuf),
    /// Plan wrote it, and the plan no longer produces it.
    Stale(PathBuf),
    Foreign(Foreign),
}

impl Drift {
    fn path(&self) -> &Path {
        match self {
            Drift::Missing(p) | Drift::Differs(p) | Drift::Stale(p) => p,
            Drift::Foreign(f) => &f.path,
        }
    }
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::Missing(p) => write!(f, "{}: missing", p.display()),
            Drift::Differs(p) => write!(f, "{}: differs", p.display()),
            Drift::Stale(p) => write!(f, "{}: no longer produced by the plan", p.display()),
            Drift::Foreign(x) => write!(f, "{x}"),
        }
    }
}

/// What a file operation was doing when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Inspect,
    List,
    Read,
    MoveAside,
    CreateFolder,
    CreateFile,
    Write,
    Flush,
    KeepOld,
    Replace,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Inspect => "cannot inspect",
            Action::List => "cannot list the folder",
            Action::Read => "cannot read",
            Action::MoveAside => "cannot remove",
            Action::CreateFolder => "cannot create the folder",
            Action::CreateFile => "cannot create the new file",
            Action::Write => "cannot write the new file",
            Action::Flush => "cannot flush the new file to disk",
            Action::KeepOld => "cannot keep the old file while replacing it",
            Action::Replace => "cannot move the new file into place",
        })
    }
}

/// A file operation that failed.
#[derive(Debug)]
pub struct IoFailure {
    pub path: PathBuf,
    pub action: Action,
    pub error: io::Error,
}

impl IoFailure {
    fn new(path: &Path, action: Action, error: io::Error) -> IoFailure {
        IoFailure {
            path: path.to_path_buf(),
            action,
            error,
        }
    }

    /// What to do about it.
    fn hint(&self) -> &'static str {
        use io::ErrorKind as K;
        match self.error.kind() {
            K::StorageFull | K::QuotaExceeded | K::FileTooLarge => {
                "free some space (or raise the limit) and render again"
            }
            K::PermissionDenied | K::ReadOnlyFilesystem => {
                "make the folder writable for you and render again"
            }
            _ => "fix the cause and render again",
        }
    }
}

impl fmt::Display for IoFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.path.display(),
            self.action,
            self.error
        )
    }
}

/// A step of undoing a failed render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undo {
    PutBackOld,
    RemoveNew,
    RemoveTemporary,
    RemoveFolder,
    PutBackRemoved,
}

/// A step of undoing that failed.
#[derive(Debug)]
pub struct Stuck {
    pub path: PathBuf,
    pub what: Undo,
    pub error: io::Error,
}

impl fmt::Display for Stuck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.what {
            Undo::PutBackOld => "is the new file; its old version could not be put back",
            Undo::RemoveNew => "is a new file that could not be removed",
            Undo::RemoveTemporary => "is a temporary file that could not be removed",
            Undo::RemoveFolder => "is a new folder that could not be removed",
            Undo::PutBackRemoved => "was removed and could not be put back",
        };
        write!(f, "{}: {what}: {}", self.path.display(), self.error)
    }
}

#[derive(Debug)]
pub enum WriteError {
    /// A plan or artifact name that is not a plain file name (the schema prevents it; this
    /// keeps a renderer bug from writing outside the plan's folder).
    UnsafeName { path: PathBuf, segment: String },
    /// `--out` is a symbolic link.
    OutIsSymlink(PathBuf),
    /// `--out`, or a folder above it, exists and is not a folder.
    NotAFolder(PathBuf),
    /// The plans' folders hold entries plan did not write, which render would have to
    /// replace or remove.
    Foreign(Vec<Foreign>),
    /// A file operation failed, and everything done before it was undone.
    Failed(IoFailure),
    /// A file operation failed, and undoing what was done failed too.
    Interrupted { cause: IoFailure, stuck: Vec<Stuck> },
    /// Every file is in place, but hidden copies of the replaced or removed ones are left.
    Leftover(Vec<(PathBuf, io::Error)>),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::UnsafeName { path, segment } => write!(
                f,
                "{}: refusing the unsafe name `{segment}`; nothing was changed",
                path.display()
            ),
            WriteError::OutIsSymlink(p) => write!(
                f,
                "{}: the output folder is a symbolic link; plan does not follow links\n  = hint: give the folder it points to, or a real folder; nothing was changed",
                p.display()
            ),
            WriteError::NotAFolder(p) => write!(
                f,
                "{}: exists and is not a folder\n  = hint: choose another --out; nothing was changed",
                p.display()
            ),
            WriteError::Foreign(entries) => {
                writeln!(f, "render would replace or remove what plan did not write:")?;
                for e in entries {
                    writeln!(f, "  {e}")?;
                }
                write!(
                    f,
                    "  = hint: render only replaces or removes files that begin with plan's `generated by plan from ...; do not edit` line; move these out of the plan's folder, or render with --delete-foreign to delete them; nothing was changed"
                )
            }
            WriteError::Failed(cause) => write!(
                f,
                "{cause}\n  = hint: {}; nothing was changed",
                cause.hint()
            ),
            WriteError::Interrupted { cause, stuck } => {
                writeln!(f, "{cause}")?;
                writeln!(f, "  and plan could not undo all it had done:")?;
                for s in stuck {
                    writeln!(f, "  {s}")?;
                }
                write!(
                    f,
                    "  = hint: {}; the next render replaces or removes what plan left",
                    cause.hint()
                )
            }
            WriteError::Leftover(left) => {
                writeln!(
                    f,
                    "every file is in place, but copies of the replaced or removed ones are left:"
                )?;
                for (p, e) in left {
                    writeln!(f, "  {}: {e}", p.display())?;
                }
                write!(f, "  = hint: delete them")
            }
        }
    }
}

/// What a successful render did.
pub struct Written {
    /// Files written, and entries removed.
    pub changed: Vec<PathBuf>,
    /// Entries plan did not write that were replaced or removed (with `delete_foreign`).
    pub deleted_foreign: Vec<Foreign>,
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
pub fn check(out: &Path, outputs: &[PlanOutput]) -> Result<Vec<Drift>, WriteError> {
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
pub fn write(
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
