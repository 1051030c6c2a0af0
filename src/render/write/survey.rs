//! What a plan's output folder holds, against what the plan renders: the files to write
//! (missing or different), the entries plan wrote that the plan no longer produces (stale)
//! and the entries plan did not write (foreign). Only reads; never follows a symbolic link.
//!
//! A file is plan's when it begins with plan's mark (`artifact::is_generated`). The
//! mark is in the file itself, so outputs of earlier versions (a checked-in `generated/`)
//! are recognised, a file a person put in the folder is not, whatever its name, and there
//! is no record of what was written that could disagree with the disk.

use super::outcome::{Action, Foreign, ForeignKind, IoFailure};
use crate::render::artifact::{GENERATED_HEAD, is_generated};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// One plan's folder, surveyed.
pub(crate) struct Survey<'a> {
    /// The artifacts whose file is missing or different, in path order.
    pub(crate) to_write: Vec<Pending<'a>>,
    /// What plan wrote and no longer produces, for reporting: files, or folders holding
    /// nothing else (named once).
    pub(crate) stale: Vec<PathBuf>,
    /// What plan did not write: files at an artifact's path (replaced) or anywhere else
    /// (removed); folders holding nothing plan wrote are named once.
    pub(crate) foreign: Vec<Foreign>,
    /// What render removes: every entry at a path the plan does not produce, whole.
    pub(crate) remove: Vec<PathBuf>,
}

/// An artifact to put at `path`.
pub(crate) struct Pending<'a> {
    pub(crate) path: PathBuf,
    pub(crate) contents: &'a str,
    pub(crate) existing: Existing,
}

/// What is at an artifact's path before render writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Existing {
    /// No file (or something render removes first: a folder, a link).
    Nothing,
    /// An older version of plan's file.
    Generated,
    /// A file plan did not write.
    Foreign,
}

/// Surveys `dir`, the folder that should hold exactly `artifacts` (relative path and
/// contents, paths already checked to be plain names).
pub(crate) fn survey<'a>(
    dir: &Path,
    artifacts: &[(PathBuf, &'a str)],
) -> Result<Survey<'a>, IoFailure> {
    let mut needed = BTreeSet::from([PathBuf::new()]);
    for (rel, _) in artifacts {
        needed.extend(rel.ancestors().skip(1).map(Path::to_path_buf));
    }
    let mut walk = Walk {
        wanted: artifacts.iter().map(|(p, c)| (p.as_path(), *c)).collect(),
        needed,
        found: BTreeMap::new(),
        stale: Vec::new(),
        foreign: Vec::new(),
        remove: Vec::new(),
    };
    match inspect(dir)? {
        None => {}
        Some(m) if m.is_dir() => walk.folder(dir, Path::new(""))?,
        Some(m) => walk.loose_entry(dir, &m)?,
    }
    let to_write = artifacts
        .iter()
        .filter_map(|(rel, contents)| {
            let existing = match walk.found.get(rel.as_path()) {
                Some(None) => return None,
                Some(Some(e)) => *e,
                None => Existing::Nothing,
            };
            Some(Pending {
                path: dir.join(rel),
                contents,
                existing,
            })
        })
        .collect();
    Ok(Survey {
        to_write,
        stale: walk.stale,
        foreign: walk.foreign,
        remove: walk.remove,
    })
}

struct Walk<'w, 'a> {
    wanted: BTreeMap<&'w Path, &'a str>,
    /// Folders the artifacts go in (relative; the plan's folder is the empty path).
    needed: BTreeSet<PathBuf>,
    /// The files found at artifacts' paths: `None` when it holds exactly the contents.
    found: BTreeMap<&'w Path, Option<Existing>>,
    stale: Vec<PathBuf>,
    foreign: Vec<Foreign>,
    remove: Vec<PathBuf>,
}

/// What a subtree at a path the plan does not produce holds.
#[derive(Default)]
struct Loose {
    /// It holds at least one file plan wrote.
    generated: bool,
    stale: Vec<PathBuf>,
    foreign: Vec<Foreign>,
}

impl<'w> Walk<'w, '_> {
    /// A folder the artifacts go in (`rel` from the plan's folder, `path` on disk).
    fn folder(&mut self, path: &Path, rel: &Path) -> Result<(), IoFailure> {
        for name in entries(path)? {
            let (path, rel) = (path.join(&name), rel.join(&name));
            let Some(meta) = inspect(&path)? else {
                continue;
            };
            if let Some((&key, &contents)) = self.wanted.get_key_value(rel.as_path())
                && meta.is_file()
            {
                let state = file_state(&path, &meta, contents)?;
                if state == Some(Existing::Foreign) {
                    self.foreign.push(Foreign {
                        path,
                        kind: ForeignKind::File,
                    });
                }
                self.found.insert(key, state);
            } else if meta.is_dir() && self.needed.contains(&rel) {
                self.folder(&path, &rel)?;
            } else {
                self.loose_entry(&path, &meta)?;
            }
        }
        Ok(())
    }

    /// An entry at a path the plan does not produce (or where it needs something else):
    /// render removes it whole.
    fn loose_entry(&mut self, path: &Path, meta: &fs::Metadata) -> Result<(), IoFailure> {
        let loose = loose(path, meta)?;
        self.stale.extend(loose.stale);
        self.foreign.extend(loose.foreign);
        self.remove.push(path.to_path_buf());
        Ok(())
    }
}

impl Loose {
    fn stale(path: &Path) -> Loose {
        Loose {
            generated: true,
            stale: vec![path.to_path_buf()],
            foreign: Vec::new(),
        }
    }

    fn foreign(path: &Path, kind: ForeignKind) -> Loose {
        Loose {
            generated: false,
            stale: Vec::new(),
            foreign: vec![Foreign {
                path: path.to_path_buf(),
                kind,
            }],
        }
    }
}

/// Classifies a subtree the plan does not produce. A folder holding only plan's files is
/// stale as a whole, one holding none of them foreign as a whole (a `.git`, a `src/`, an
/// empty folder); a mixed one is reported entry by entry.
fn loose(path: &Path, meta: &fs::Metadata) -> Result<Loose, IoFailure> {
    let ft = meta.file_type();
    if ft.is_symlink() {
        return Ok(Loose::foreign(path, ForeignKind::Symlink));
    }
    if !ft.is_dir() {
        // Only a regular file is opened: a FIFO or a device is foreign unread.
        return Ok(if ft.is_file() && generated(path)? {
            Loose::stale(path)
        } else {
            Loose::foreign(path, ForeignKind::File)
        });
    }
    let mut all = Loose::default();
    for name in entries(path)? {
        let child = path.join(name);
        let Some(meta) = inspect(&child)? else {
            continue;
        };
        let l = loose(&child, &meta)?;
        all.generated |= l.generated;
        all.stale.extend(l.stale);
        all.foreign.extend(l.foreign);
    }
    Ok(if !all.generated {
        Loose::foreign(path, ForeignKind::Folder)
    } else if all.foreign.is_empty() {
        Loose::stale(path)
    } else {
        all
    })
}

/// The entry's metadata (not following a link), or `None` when there is nothing there.
fn inspect(path: &Path) -> Result<Option<fs::Metadata>, IoFailure> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(IoFailure::new(path, Action::Inspect, e)),
    }
}

/// A folder's entry names, sorted so that reports are deterministic.
fn entries(dir: &Path) -> Result<Vec<std::ffi::OsString>, IoFailure> {
    let fail = |e| IoFailure::new(dir, Action::List, e);
    let mut names = fs::read_dir(dir)
        .map_err(fail)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(fail)?;
    names.sort();
    Ok(names)
}

/// A regular file at an artifact's path: `None` when it holds exactly `contents`.
fn file_state(
    path: &Path,
    meta: &fs::Metadata,
    contents: &str,
) -> Result<Option<Existing>, IoFailure> {
    // Only a file of the same length is read whole, so a huge file costs nothing.
    if meta.len() == contents.len() as u64 {
        let bytes = fs::read(path).map_err(|e| IoFailure::new(path, Action::Read, e))?;
        if bytes == contents.as_bytes() {
            return Ok(None);
        }
    }
    Ok(Some(if generated(path)? {
        Existing::Generated
    } else {
        Existing::Foreign
    }))
}

/// Whether the regular file at `path` carries plan's mark.
fn generated(path: &Path) -> Result<bool, IoFailure> {
    let fail = |e| IoFailure::new(path, Action::Read, e);
    let mut head = Vec::new();
    fs::File::open(path)
        .map_err(fail)?
        .take(GENERATED_HEAD as u64)
        .read_to_end(&mut head)
        .map_err(fail)?;
    Ok(is_generated(&head))
}
