//! Small JSON files that several processes change: read-modify-write under an exclusive `flock`
//! on a sibling lock file, written to a temporary file, `fsync`ed and renamed into place, so a
//! reader always sees a whole file and no writer loses another's change.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write},
    os::unix::fs::OpenOptionsExt,
    path::Path,
};

use rustix::fs::{FlockOperation, flock};

/// Holds the exclusive lock on `lock_path` until dropped.
pub fn lock(lock_path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(lock_path)?;
    flock(&file, FlockOperation::LockExclusive)?;
    Ok(file)
}

/// Replaces `path` with `bytes` atomically and durably (mode 0600): a crash leaves the old file
/// or the new one, never half of one.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = Path::new(&temporary);
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(temporary)?;
    out.write_all(bytes)?;
    out.sync_all()?;
    fs::rename(temporary, path)?;
    // The rename itself is durable only once the directory is.
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}
