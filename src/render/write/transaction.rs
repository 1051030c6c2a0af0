//! The file operations of one render, each recorded so that a failure can undo all of them.
//!
//! In order: entries to remove are moved aside (renamed to a hidden name in their folder),
//! missing folders are created, every new file is written to a temporary file beside its
//! target and flushed, and every file to be replaced is hard-linked (or copied) to a hidden
//! name. Up to here nothing anyone reads has changed except the removed entries, and
//! everything can be put back. Then the temporary files are renamed over their targets
//! (each rename atomic: a reader sees the old file or the new one, never half of one); if a
//! rename fails, the files already renamed get their old versions back. Only when all are
//! in place are the hidden copies deleted.
//!
//! Hidden names are `.plan-<pid>-<n>.tmp` and `.plan-<pid>-<n>.old`. Should plan be killed
//! mid-way, they hold plan's files, so the next render removes them; the rest (what
//! `--delete-foreign` was deleting, a temporary file killed before its first byte) it
//! names.

use super::outcome::{Action, IoFailure, Stuck, Undo};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Default)]
pub(crate) struct Transaction {
    /// Entries moved aside: `(where it was, where it is)`.
    aside: Vec<(PathBuf, PathBuf)>,
    /// Folders created, parents first.
    created: Vec<PathBuf>,
    staged: Vec<Staged>,
    /// How many of `staged` are renamed into place.
    committed: usize,
}

/// A new file written beside its target.
struct Staged {
    tmp: PathBuf,
    target: PathBuf,
    /// The hard link (or copy) keeping the file it replaces, if there is one.
    old: Option<PathBuf>,
}

impl Transaction {
    /// Moves `path` (a file, a link or a whole folder) out of the way, to be deleted when
    /// the render completes.
    pub(crate) fn move_aside(&mut self, path: &Path) -> Result<(), IoFailure> {
        let hidden = hidden_name(path, "old")?;
        fs::rename(path, &hidden).map_err(|e| IoFailure::new(path, Action::MoveAside, e))?;
        self.aside.push((path.to_path_buf(), hidden));
        Ok(())
    }

    /// Creates `dir` and any missing folders above it.
    pub(crate) fn create_folders(&mut self, dir: &Path) -> Result<(), IoFailure> {
        let missing: Vec<&Path> = dir
            .ancestors()
            .filter(|d| !d.as_os_str().is_empty())
            .take_while(|d| fs::symlink_metadata(d).is_err())
            .collect();
        for d in missing.into_iter().rev() {
            fs::create_dir(d).map_err(|e| IoFailure::new(d, Action::CreateFolder, e))?;
            self.created.push(d.to_path_buf());
        }
        Ok(())
    }

    /// Writes `contents` to a temporary file beside `target` and flushes it to disk; with
    /// `replaces`, also links the file at `target` to a hidden name, to put it back if the
    /// render fails.
    pub(crate) fn stage(
        &mut self,
        target: &Path,
        contents: &str,
        replaces: bool,
    ) -> Result<(), IoFailure> {
        let tmp = hidden_name(target, "tmp")?;
        // Failures name the target: the temporary file is plan's business.
        let fail = |action| move |e| IoFailure::new(target, action, e);
        let mut f = fs::File::create_new(&tmp).map_err(fail(Action::CreateFile))?;
        let i = self.staged.len();
        self.staged.push(Staged {
            tmp,
            target: target.to_path_buf(),
            old: None,
        });
        f.write_all(contents.as_bytes())
            .map_err(fail(Action::Write))?;
        f.sync_all().map_err(fail(Action::Flush))?;
        if replaces {
            let old = hidden_name(target, "old")?;
            self.staged[i].old = Some(old.clone());
            // A hard link keeps the old file exactly; a copy where there can be none (FAT,
            // some network file systems, a file mounted over the target).
            fs::hard_link(target, &old)
                .or_else(|_| fs::copy(target, &old).map(drop))
                .map_err(fail(Action::KeepOld))?;
        }
        Ok(())
    }

    /// Renames every staged file into place with `rename` (`fs::rename`, but for tests).
    pub(crate) fn commit(
        &mut self,
        mut rename: impl FnMut(&Path, &Path) -> io::Result<()>,
    ) -> Result<(), IoFailure> {
        for s in &self.staged[self.committed..] {
            rename(&s.tmp, &s.target).map_err(|e| IoFailure::new(&s.target, Action::Replace, e))?;
            self.committed += 1;
        }
        Ok(())
    }

    /// Undoes everything, last first; returns what could not be undone.
    pub(crate) fn roll_back(self) -> Vec<Stuck> {
        let mut stuck = Vec::new();
        let mut undo = |what: Undo, path: &Path, r: io::Result<()>| {
            if let Err(error) = r {
                stuck.push(Stuck {
                    path: path.to_path_buf(),
                    what,
                    error,
                });
            }
        };
        let (done, pending) = self.staged.split_at(self.committed);
        for s in done.iter().rev() {
            match &s.old {
                Some(old) => undo(Undo::PutBackOld, &s.target, fs::rename(old, &s.target)),
                None => undo(Undo::RemoveNew, &s.target, fs::remove_file(&s.target)),
            }
        }
        for s in pending.iter().rev() {
            undo(Undo::RemoveTemporary, &s.tmp, fs::remove_file(&s.tmp));
            if let Some(old) = &s.old {
                // Absent when keeping the old file is what failed.
                let r = fs::remove_file(old).or_else(|e| match e.kind() {
                    io::ErrorKind::NotFound => Ok(()),
                    _ => Err(e),
                });
                undo(Undo::RemoveTemporary, old, r);
            }
        }
        for d in self.created.iter().rev() {
            undo(Undo::RemoveFolder, d, fs::remove_dir(d));
        }
        for (path, hidden) in self.aside.iter().rev() {
            undo(Undo::PutBackRemoved, path, fs::rename(hidden, path));
        }
        stuck
    }

    /// Deletes the hidden copies of what was replaced or removed. Returns the paths that
    /// changed, and the copies that could not be deleted.
    pub(crate) fn finish(self) -> (Vec<PathBuf>, Vec<(PathBuf, io::Error)>) {
        let mut left = Vec::new();
        let olds = self.staged.iter().filter_map(|s| s.old.as_ref());
        for hidden in olds.chain(self.aside.iter().map(|(_, h)| h)) {
            let r = match fs::symlink_metadata(hidden) {
                Ok(m) if m.is_dir() => fs::remove_dir_all(hidden),
                _ => fs::remove_file(hidden),
            };
            if let Err(e) = r {
                left.push((hidden.clone(), e));
            }
        }
        let changed = self
            .staged
            .into_iter()
            .map(|s| s.target)
            .chain(self.aside.into_iter().map(|(p, _)| p))
            .collect();
        (changed, left)
    }
}

/// A name beside `path` that nothing has: `.plan-<pid>-<n>.<ext>`.
fn hidden_name(path: &Path, ext: &str) -> Result<PathBuf, IoFailure> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let pid = std::process::id();
    (0..1000)
        .map(|n| dir.join(format!(".plan-{pid}-{n}.{ext}")))
        .find(|p| matches!(fs::symlink_metadata(p), Err(e) if e.kind() == io::ErrorKind::NotFound))
        .ok_or_else(|| {
            IoFailure::new(
                path,
                Action::CreateFile,
                io::Error::new(io::ErrorKind::AlreadyExists, "no free temporary name"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("plan-tx-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn contents(dir: &Path) -> BTreeMap<String, String> {
        fs::read_dir(dir)
            .expect("read_dir")
            .flatten()
            .map(|e| {
                let text = fs::read_to_string(e.path()).unwrap_or_else(|_| "<folder>".into());
                (e.file_name().to_string_lossy().into_owned(), text)
            })
            .collect()
    }

    /// A rename that fails on its `n`th call.
    fn failing_at(n: usize) -> impl FnMut(&Path, &Path) -> io::Result<()> {
        let mut calls = 0;
        move |from, to| {
            calls += 1;
            if calls == n {
                Err(io::Error::other("injected"))
            } else {
                fs::rename(from, to)
            }
        }
    }

    #[test]
    fn a_rename_that_fails_after_others_puts_back_every_old_file() {
        for n in 1..=4 {
            let dir = folder(&format!("commit-{n}"));
            fs::write(dir.join("a"), "old a").expect("a");
            fs::write(dir.join("c"), "old c").expect("c");
            fs::write(dir.join("stale"), "stale").expect("stale");
            fs::create_dir(dir.join("gone")).expect("gone/");
            fs::write(dir.join("gone/x"), "x").expect("x");
            let before = contents(&dir);
            let mut tx = Transaction::default();
            tx.move_aside(&dir.join("stale")).expect("move");
            tx.move_aside(&dir.join("gone")).expect("move");
            tx.create_folders(&dir.join("new/deeper")).expect("folders");
            tx.stage(&dir.join("a"), "new a", true).expect("a");
            tx.stage(&dir.join("b"), "new b", false).expect("b");
            tx.stage(&dir.join("c"), "new c", true).expect("c");
            tx.stage(&dir.join("new/deeper/d"), "new d", false)
                .expect("d");
            let err = tx.commit(failing_at(n)).expect_err("fails");
            assert_eq!(err.action, Action::Replace);
            let stuck = tx.roll_back();
            assert!(stuck.is_empty(), "{stuck:?}");
            assert_eq!(contents(&dir), before, "after {} renames", n - 1);
            assert_eq!(fs::read_to_string(dir.join("gone/x")).expect("x"), "x");
            let _ = fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn what_cannot_be_undone_is_named() {
        let dir = folder("stuck");
        fs::write(dir.join("a"), "old a").expect("a");
        let mut tx = Transaction::default();
        tx.stage(&dir.join("a"), "new a", true).expect("a");
        tx.stage(&dir.join("b"), "new b", false).expect("b");
        tx.commit(failing_at(2)).expect_err("fails");
        // The kept copy of `a` vanishes before the undo.
        for e in fs::read_dir(&dir).expect("read_dir").flatten() {
            if e.file_name().to_string_lossy().ends_with(".old") {
                fs::remove_file(e.path()).expect("rm");
            }
        }
        let stuck = tx.roll_back();
        assert_eq!(stuck.len(), 1, "{stuck:?}");
        assert_eq!(
            (stuck[0].path.clone(), stuck[0].what),
            (dir.join("a"), Undo::PutBackOld)
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_complete_transaction_leaves_no_hidden_copy() {
        let dir = folder("complete");
        fs::write(dir.join("a"), "old a").expect("a");
        fs::write(dir.join("stale"), "stale").expect("stale");
        let mut tx = Transaction::default();
        tx.move_aside(&dir.join("stale")).expect("move");
        tx.stage(&dir.join("a"), "new a", true).expect("a");
        tx.stage(&dir.join("b"), "new b", false).expect("b");
        tx.commit(|from, to| fs::rename(from, to)).expect("commit");
        let (changed, left) = tx.finish();
        assert!(left.is_empty());
        assert_eq!(changed.len(), 3);
        let want: BTreeMap<String, String> = [("a", "new a"), ("b", "new b")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        assert_eq!(contents(&dir), want);
        let _ = fs::remove_dir_all(&dir);
    }
}
