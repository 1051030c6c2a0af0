//! The identity of a rendered plan's files: a digest of every file under its folder
//! (relative path and contents, in path order). A release records it at `start`; every
//! later step checks the files are still the ones it started with, so a plan re-rendered
//! in the middle of a release is noticed rather than half applied.
//!
//! FNV-1a (64 bits) finds accidental change, which is what this is for; it is not a
//! defence against someone who can write the files, who could edit the state as well.

use std::path::Path;

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(PRIME);
    }
    h
}

/// The digest of the files under `dir`, as 16 hex digits.
pub(crate) fn of(dir: &Path) -> Result<String, String> {
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    let mut h = OFFSET;
    for rel in files {
        let bytes = std::fs::read(dir.join(&rel)).map_err(|e| format!("{rel}: {e}"))?;
        h = fnv(h, rel.as_bytes());
        h = fnv(h, &[0]);
        h = fnv(h, &(bytes.len() as u64).to_le_bytes());
        h = fnv(h, &bytes);
    }
    Ok(format!("{h:016x}"))
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_byte_or_name_changes_the_digest() {
        let dir = std::env::temp_dir().join(format!("plan-digest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("nginx")).unwrap();
        std::fs::write(dir.join("nginx/a.conf"), "x").unwrap();
        std::fs::write(dir.join("manifest.json"), "{}").unwrap();
        let first = of(&dir).unwrap();
        assert_eq!(of(&dir).unwrap(), first, "stable");
        std::fs::write(dir.join("nginx/a.conf"), "y").unwrap();
        let second = of(&dir).unwrap();
        assert_ne!(second, first);
        std::fs::rename(dir.join("nginx/a.conf"), dir.join("nginx/b.conf")).unwrap();
        assert_ne!(of(&dir).unwrap(), second);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
