//! What writing or checking reports: how the disk differs from the render (`Drift`),
//! entries plan did not write (`Foreign`), a file operation that failed (`IoFailure`) and
//! what undoing it left (`Stuck`), and the errors and results built from them.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// An entry in a plan's folder that plan did not write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Foreign {
    pub(crate) path: PathBuf,
    pub(crate) kind: ForeignKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForeignKind {
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
pub(crate) enum Drift {
    Missing(PathBuf),
    Differs(PathBuf),
    /// Plan wrote it, and the plan no longer produces it.
    Stale(PathBuf),
    Foreign(Foreign),
}

impl Drift {
    pub(super) fn path(&self) -> &Path {
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
pub(crate) enum Action {
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
pub(crate) struct IoFailure {
    pub(crate) path: PathBuf,
    pub(crate) action: Action,
    pub(crate) error: io::Error,
}

impl IoFailure {
    pub(super) fn new(path: &Path, action: Action, error: io::Error) -> IoFailure {
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
pub(crate) enum Undo {
    PutBackOld,
    RemoveNew,
    RemoveTemporary,
    RemoveFolder,
    PutBackRemoved,
}

/// A step of undoing that failed.
#[derive(Debug)]
pub(crate) struct Stuck {
    pub(crate) path: PathBuf,
    pub(crate) what: Undo,
    pub(crate) error: io::Error,
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
pub(crate) enum WriteError {
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
pub(crate) struct Written {
    /// Files written, and entries removed.
    pub(crate) changed: Vec<PathBuf>,
    /// Entries plan did not write that were replaced or removed (with `delete_foreign`).
    pub(crate) deleted_foreign: Vec<Foreign>,
}
