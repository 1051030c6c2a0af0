//! One driver at a time: an exclusive lock on a file in the release's folder, held while a
//! command reads and changes the state. The operating system drops it when the process
//! ends, however it ends, so a killed driver never leaves a stale lock.

use std::fs::{File, TryLockError};
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
            Ok(()) => return Ok(Lock { _file: file }),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(format!(
                    "another `plan release` is working on this release ({} is locked); wait for it to finish",
                    path.display()
                ));
            }
            Err(TryLockError::Error(e)) => {
                return Err(format!("{}: cannot lock: {e}", path.display()));
            }
        }
    }
}
