//! One driver at a time: an exclusive lock on a file in the release's folder, held while a
//! command reads and changes the state. The operating system drops it when the process
//! ends, however it ends, so a killed driver never leaves a stale lock.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// A held lock; released when dropped.
#[derive(Debug)]
pub(crate) struct Lock {
    _file: File,
}

/// Takes the lock at `path`, waiting at most `wait` for another driver to finish.
pub(crate) fn take(path: &Path, wait: Duration) -> Result<Lock, String> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: cannot open the lock: {e}", path.display()))?;
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => {
                // Who holds it, for the refusal another driver prints.
                let mut f = &file;
                let _ = f.set_len(0);
                let _ = f.rewind();
                let _ = write!(f, "{}", std::process::id());
                return Ok(Lock { _file: file });
            }
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = (&file).read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(format!(
                    "another `plan release` is working on this release ({} is locked{}); wait for it to finish{}",
                    path.display(),
                    if holder.is_empty() {
                        String::new()
                    } else {
                        format!(" by process {holder}")
                    },
                    if holder.is_empty() {
                        String::new()
                    } else {
                        format!(", or stop process {holder} if it hangs")
                    }
                ));
            }
            Err(TryLockError::Error(e)) => {
                return Err(format!("{}: cannot lock: {e}", path.display()));
            }
        }
    }
}

/// Whether another process holds the lock at `path` now, and which (its pid, as it wrote
/// it): for `status`, which only reads. Takes and drops the lock when it is free.
pub(crate) fn holder(path: &Path) -> Option<String> {
    let file = File::open(path).ok()?;
    match file.try_lock() {
        Ok(()) => None,
        Err(_) => {
            let mut pid = String::new();
            let _ = (&file).read_to_string(&mut pid);
            Some(pid.trim().to_string())
        }
    }
}
