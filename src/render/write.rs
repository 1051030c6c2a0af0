//! Putting rendered artifacts on disk safely, or comparing them with what is there.
//!
//! All or nothing: every file is first written to a temporary name beside its target, and
//! only when all are written are they renamed into place, so a reader never sees a
//! half-written config and a failure leaves the old files. Nothing escapes the output
//! folder: paths are plain relative names, and a symlink inside the plan's folder is
//! refused rather than followed. Files in the plan's folder that the plan no longer
//! produces are removed (the folder belongs to `plan`).

use super::Artifact;
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The rendered files of one plan: they go to `OUT/<name>/`.
pub struct PlanOutput {
    pub name: String,
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug)]
pub struct WriteError {
    pub path: PathBuf,
    pub reason: String,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

fn err(path: &Path, reason: impl Into<String>) -> WriteError {
    WriteError {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// A path segment we are willing to create: no separators, no `.`/`..`, no hidden tricks.
fn safe_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// The target path of an artifact, after checking every segment.
fn target(out: &Path, plan: &str, rel: &str) -> Result<PathBuf, WriteError> {
    let mut p = out.to_path_buf();
    for seg in std::iter::once(plan).chain(rel.split('/')) {
        if !safe_segment(seg) {
            return Err(err(
                &out.join(plan).join(rel),
                format!("refusing unsafe path segment `{seg}`"),
            ));
        }
        p.push(seg);
    }
    Ok(p)
}

/// Refuses any existing symlink between `out` (exclusive) and `path` (inclusive of its
/// directories).
fn no_symlinks(out: &Path, path: &Path) -> Result<(), WriteError> {
    let rel = path
        .strip_prefix(out)
        .map_err(|_| err(path, "outside the output folder"))?;
    let mut cur = out.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for (i, c) in comps.iter().enumerate() {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(err(
                    &cur,
                    "is a symbolic link; refusing to follow it out of the output folder",
                ));
            }
            Ok(m) if i + 1 < comps.len() && !m.is_dir() => {
                return Err(err(&cur, "exists and is not a folder"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Files under `dir` (recursively), as '/'-separated paths relative to `dir`.
fn existing_files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                walk(base, &p, out);
            } else if let Ok(rel) = p.strip_prefix(base) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}

/// The differences between what is rendered and what is on disk: `(path, why)` for every
/// file that is missing, different, or no longer produced.
pub fn check(
    out: &Path,
    outputs: &[PlanOutput],
) -> Result<Vec<(PathBuf, &'static str)>, WriteError> {
    let mut diffs = Vec::new();
    for o in outputs {
        let dir = out.join(&o.name);
        for a in &o.artifacts {
            let path = target(out, &o.name, &a.path)?;
            match fs::read(&path) {
                Ok(bytes) if bytes == a.contents.as_bytes() => {}
                Ok(_) => diffs.push((path, "differs")),
                Err(_) => diffs.push((path, "missing")),
            }
        }
        for rel in existing_files(&dir) {
            if !o.artifacts.iter().any(|a| a.path == rel) {
                diffs.push((dir.join(&rel), "not produced by the plan"));
            }
        }
    }
    Ok(diffs)
}

/// Writes every artifact whose contents changed (temporary files first, then renames) and
/// removes stale files. Returns the paths that changed.
pub fn write(out: &Path, outputs: &[PlanOutput]) -> Result<Vec<PathBuf>, WriteError> {
    fs::create_dir_all(out)
        .map_err(|e| err(out, format!("cannot create the output folder: {e}")))?;
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let result = stage(out, outputs, &mut staged);
    if let Err(e) = result {
        for (tmp, _) in &staged {
            let _ = fs::remove_file(tmp);
        }
        return Err(e);
    }
    let mut changed = Vec::new();
    for (tmp, path) in staged {
        fs::rename(&tmp, &path)
            .map_err(|e| err(&path, format!("cannot move the new file into place: {e}")))?;
        changed.push(path);
    }
    for o in outputs {
        let dir = out.join(&o.name);
        for rel in existing_files(&dir) {
            if !o.artifacts.iter().any(|a| a.path == rel) {
                let p = dir.join(&rel);
                fs::remove_file(&p)
                    .map_err(|e| err(&p, format!("cannot remove a stale file: {e}")))?;
                changed.push(p);
            }
        }
    }
    Ok(changed)
}

fn stage(
    out: &Path,
    outputs: &[PlanOutput],
    staged: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<(), WriteError> {
    for o in outputs {
        for a in &o.artifacts {
            let path = target(out, &o.name, &a.path)?;
            no_symlinks(out, &path)?;
            let parent = path.parent().unwrap_or(out);
            fs::create_dir_all(parent)
                .map_err(|e| err(parent, format!("cannot create folder: {e}")))?;
            no_symlinks(out, &path)?;
            // A file that already holds exactly these bytes is left alone: no write, no
            // rename, and its modification time stays.
            if fs::read(&path).is_ok_and(|old| old == a.contents.as_bytes()) {
                continue;
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
            let mut f =
                fs::File::create(&tmp).map_err(|e| err(&tmp, format!("cannot create: {e}")))?;
            staged.push((tmp.clone(), path.clone()));
            f.write_all(a.contents.as_bytes())
                .map_err(|e| err(&tmp, format!("cannot write: {e}")))?;
            f.sync_all()
                .map_err(|e| err(&tmp, format!("cannot flush: {e}")))?;
        }
    }
    Ok(())
}
