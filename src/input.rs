//! Opening a file the user named, whatever it is: a regular file, a device (`/dev/zero`),
//! a pipe (`/dev/stdin`, `<(command)`), a named pipe, a `/proc` file. Their reported
//! length is 0 except for regular files, so a size limit is enforced on what is read, never
//! on the length alone: [`read_capped`] reads at most one byte past the limit, and
//! [`open`] gives a reader the caller bounds itself (the trace reader streams).
//!
//! A named pipe is opened without waiting for a writer (a plain open would block until one
//! comes, forever if none does); with no writer connected it reads as empty.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a file could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Opening or reading failed (missing, permission, I/O error).
    Io(io::Error),
    /// The path is a directory.
    Directory,
    /// More than `limit` bytes: `size` is the length when the file system knows it
    /// (regular files, refused before reading), None when reading passed the limit.
    TooLarge { limit: u64, size: Option<u64> },
}

/// An open file and what kind of file it is.
pub(crate) struct Opened {
    pub(crate) file: File,
    /// A named pipe: empty means no writer was connected.
    pub(crate) is_fifo: bool,
    /// The length of a regular file, None for devices and pipes.
    pub(crate) len: Option<u64>,
}

/// Opens `path` for reading, refusing directories and regular files longer than `limit`.
pub(crate) fn open(path: &Path, limit: u64) -> Result<Opened, ReadError> {
    let meta = std::fs::metadata(path).map_err(ReadError::Io)?;
    let kind = meta.file_type();
    if kind.is_dir() {
        return Err(ReadError::Directory);
    }
    let len = kind.is_file().then_some(meta.len());
    if let Some(size) = len.filter(|&l| l > limit) {
        return Err(ReadError::TooLarge {
            limit,
            size: Some(size),
        });
    }
    let is_fifo = kind.is_fifo();
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    if is_fifo {
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(ReadError::Io)?;
    if is_fifo {
        // Back to blocking reads: they wait for a connected writer's data, and return end
        // of file at once when no writer is connected.
        set_blocking(&file).map_err(ReadError::Io)?;
    }
    Ok(Opened { file, is_fifo, len })
}

/// Reads all of `path`, refusing it when it holds more than `limit` bytes; at most
/// `limit + 1` bytes are ever read. Returns the bytes and whether `path` is a named pipe
/// (for which nothing read means no writer was connected).
pub(crate) fn read_capped(path: &Path, limit: u64) -> Result<(Vec<u8>, bool), ReadError> {
    let opened = open(path, limit)?;
    let mut bytes = Vec::with_capacity(opened.len.unwrap_or(0) as usize);
    opened
        .file
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit, size: None });
    }
    Ok((bytes, opened.is_fifo))
}

fn set_blocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function borrows, with flags it just read.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `1 MiB`, `512 MiB`, `1 GiB`, or bytes: a limit as the README states it.
pub(crate) fn human_bytes(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if n >= 1024 * MIB && n.is_multiple_of(1024 * MIB) {
        format!("{} GiB", n / (1024 * MIB))
    } else if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_read_up_to_the_limit() {
        match read_capped(Path::new("/dev/zero"), 1000) {
            Err(ReadError::TooLarge {
                limit: 1000,
                size: None,
            }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn limits_print_in_binary_units() {
        assert_eq!(human_bytes(1024 * 1024), "1 MiB");
        assert_eq!(human_bytes(1 << 30), "1 GiB");
        assert_eq!(human_bytes(1000), "1000 bytes");
    }
}
