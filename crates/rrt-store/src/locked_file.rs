//! Small files that several processes change: read-modify-write under an exclusive `flock` on a
//! sibling lock file, written to a temporary file, `fsync`ed and renamed into place, so a reader
//! always sees a whole file and no writer loses another's change.
//!
//! Every file is reached through a descriptor of its directory ([`PrivateDir`]), opened without
//! following a symbolic link and checked to be ours, so no one who could repoint a path — a link
//! planted in the directory, or the directory itself swapped for another — makes us write where
//! they choose:
//!
//! ```text
//! open(dir, O_DIRECTORY|O_NOFOLLOW) ── fstat: ours? ──▶ dir fd
//!   openat(dir fd, "x.lock", O_NOFOLLOW)                              lock
//!   openat(dir fd, "x.<pid>.<n>.tmp", O_CREAT|O_EXCL|O_NOFOLLOW, 0600)   write, fsync
//!   renameat(dir fd, "x.<pid>.<n>.tmp", dir fd, "x")                     fsync(dir fd)
//! ```
//!
//! A temporary file is always new (`O_EXCL`: never someone's planted link or file) under a name
//! unique to this process, so concurrent writers never share one either.

use std::{
    ffi::{OsStr, OsString},
    fs::File,
    io::{self, Read, Write},
    os::{fd::OwnedFd, unix::ffi::OsStrExt},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use rustix::{
    fs::{
        AtFlags, Dir, FileType, FlockOperation, Mode, OFlags, flock, fstat, openat, renameat,
        unlinkat,
    },
    io::Errno,
    process::getuid,
};

/// A directory that is someone else's, where a [`PrivateDir`] must be ours. Carried inside the
/// [`io::Error`] (kind `PermissionDenied`) that [`PrivateDir::open`] returns.
#[derive(Debug, thiserror::Error)]
#[error("{path} belongs to uid {owner}, not to us (uid {ours}); refusing to use it")]
pub struct NotOurs {
    /// The directory.
    pub path: PathBuf,
    /// Its owner.
    pub owner: u32,
    /// Our uid.
    pub ours: u32,
}

/// A directory of ours, held open: every file is opened, created and renamed relative to it.
#[derive(Debug)]
pub struct PrivateDir {
    fd: OwnedFd,
    path: PathBuf,
}

/// Tells this process's temporary files apart.
static TEMPORARY: AtomicU64 = AtomicU64::new(0);

impl PrivateDir {
    /// Opens `path`, which must be a directory (not a symbolic link to one) owned by our uid.
    /// A missing directory is `NotFound`; one of another uid is `PermissionDenied` carrying
    /// [`NotOurs`].
    pub fn open(path: &Path) -> io::Result<Self> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|errno| match errno {
            Errno::LOOP | Errno::NOTDIR => io::Error::new(
                io::ErrorKind::NotADirectory,
                format!(
                    "{} is not a directory (a symbolic link is refused: its owner could repoint it)",
                    path.display()
                ),
            ),
            errno => with_path(path, errno.into()),
        })?;
        let owner = fstat(&fd)
            .map_err(|errno| with_path(path, errno.into()))?
            .st_uid;
        let ours = getuid().as_raw();
        if owner != ours {
            let path = path.to_owned();
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                NotOurs { path, owner, ours },
            ));
        }
        Ok(Self {
            fd,
            path: path.to_owned(),
        })
    }

    /// Opens the directory holding `file` (the current directory for a bare name) and returns it
    /// with `file`'s name in it.
    pub fn of(file: &Path) -> io::Result<(Self, &OsStr)> {
        let name = file.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} names no file", file.display()),
            )
        })?;
        let dir = match file.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        Ok((Self::open(dir)?, name))
    }

    /// The directory's path, as opened.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens (creating, mode 0600) the lock file `name` without locking it — for a caller that
    /// wants a non-blocking `flock`. A symbolic link there is refused.
    pub fn open_lock(&self, name: impl AsRef<OsStr>) -> io::Result<File> {
        let name = name.as_ref();
        // O_NONBLOCK: a FIFO planted under the name fails at once instead of blocking the open;
        // it changes nothing for a regular file, nor for `flock`.
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = openat(&self.fd, name, flags, Mode::from_raw_mode(0o600))
            .map_err(|errno| self.error(name, errno))?;
        let kind = FileType::from_raw_mode(fstat(&fd).map_err(|e| self.error(name, e))?.st_mode);
        if kind != FileType::RegularFile {
            return Err(self.error(name, Errno::INVAL));
        }
        Ok(File::from(fd))
    }

    /// Holds the exclusive lock on the lock file `name` until the returned file is dropped.
    pub fn lock(&self, name: impl AsRef<OsStr>) -> io::Result<File> {
        let name = name.as_ref();
        let file = self.open_lock(name)?;
        flock(&file, FlockOperation::LockExclusive).map_err(|errno| self.error(name, errno))?;
        Ok(file)
    }

    /// The contents of `name`, or `None` when there is no such file; a symbolic link there is
    /// refused.
    pub fn read(&self, name: impl AsRef<OsStr>) -> io::Result<Option<Vec<u8>>> {
        let name = name.as_ref();
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = match openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(errno) => return Err(self.error(name, errno)),
        };
        let mut bytes = Vec::new();
        File::from(fd)
            .read_to_end(&mut bytes)
            .map_err(|error| with_path(&self.path.join(name), error))?;
        Ok(Some(bytes))
    }

    /// Replaces `name` with `bytes` atomically and durably (mode 0600): a crash leaves the old
    /// file or the new one, never half of one.
    pub fn replace(&self, name: impl AsRef<OsStr>, bytes: &[u8]) -> io::Result<()> {
        self.write(name.as_ref(), bytes, true)
    }

    /// [`PrivateDir::replace`] without syncing the directory: the file is whole on disk, but its
    /// name is durable only once the directory is synced — by a later `replace` in it, which
    /// makes every rename before it durable too. For files an index written after them names.
    pub fn replace_before_index(&self, name: impl AsRef<OsStr>, bytes: &[u8]) -> io::Result<()> {
        self.write(name.as_ref(), bytes, false)
    }

    fn write(&self, name: &OsStr, bytes: &[u8], sync_dir: bool) -> io::Result<()> {
        let (temporary, fd) = self.create_temporary(name)?;
        let written = (|| {
            let mut out = File::from(fd);
            out.write_all(bytes)?;
            out.sync_all()?;
            renameat(&self.fd, &temporary, &self.fd, name)?;
            if sync_dir {
                // The rename itself is durable only once the directory is.
                rustix::fs::fsync(&self.fd)?;
            }
            Ok(())
        })();
        if written.is_err() {
            let _ = unlinkat(&self.fd, &temporary, AtFlags::empty());
        }
        written.map_err(|error| with_path(&self.path.join(name), error))
    }

    /// Removes `name`; one already gone is fine.
    pub fn remove(&self, name: impl AsRef<OsStr>) -> io::Result<()> {
        let name = name.as_ref();
        match unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(errno) => Err(self.error(name, errno)),
        }
    }

    /// Renames `name` to `<name>.<why>-<seconds>.<nanoseconds>` — damaged data kept, not
    /// destroyed, under a name no earlier one took — and returns the new name.
    pub fn set_aside(&self, name: impl AsRef<OsStr>, why: &str) -> io::Result<OsString> {
        let name = name.as_ref();
        let aside = aside_name(name, why);
        renameat(&self.fd, name, &self.fd, &aside).map_err(|errno| self.error(name, errno))?;
        Ok(aside)
    }

    /// Writes `bytes` as a new file `<name>.<why>-<time>` beside `name`, durably — a copy of
    /// damaged data kept before the original is cut; returns the new name.
    pub fn keep_aside(
        &self,
        name: impl AsRef<OsStr>,
        why: &str,
        bytes: &[u8],
    ) -> io::Result<OsString> {
        let aside = aside_name(name.as_ref(), why);
        self.replace(&aside, bytes)?;
        Ok(aside)
    }

    /// The names in the directory, `.` and `..` aside.
    pub fn names(&self) -> io::Result<Vec<OsString>> {
        let mut names = Vec::new();
        let dir = Dir::read_from(&self.fd).map_err(|errno| with_path(&self.path, errno.into()))?;
        for entry in dir {
            let entry = entry.map_err(|errno| with_path(&self.path, errno.into()))?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name != "." && name != ".." {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    /// A new file `<name>.<pid>.<n>.tmp`, created here and nowhere else.
    fn create_temporary(&self, name: &OsStr) -> io::Result<(Vec<u8>, OwnedFd)> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        // A name can only be taken by a crashed process with our pid, or by someone planting
        // it: try the next one, a few times.
        let mut last = Errno::EXIST;
        for _ in 0..16 {
            let mut temporary = name.as_bytes().to_vec();
            let n = TEMPORARY.fetch_add(1, Ordering::Relaxed);
            temporary.extend_from_slice(format!(".{}.{n}.tmp", std::process::id()).as_bytes());
            match openat(
                &self.fd,
                temporary.as_slice(),
                flags,
                Mode::from_raw_mode(0o600),
            ) {
                Ok(fd) => return Ok((temporary, fd)),
                Err(Errno::EXIST) => last = Errno::EXIST,
                Err(errno) => return Err(self.error(OsStr::from_bytes(&temporary), errno)),
            }
        }
        Err(self.error(name, last))
    }

    fn error(&self, name: &OsStr, errno: Errno) -> io::Error {
        with_path(&self.path.join(name), errno.into())
    }
}

/// Holds the exclusive lock on `lock_path` (see [`PrivateDir::lock`]) until dropped.
pub fn lock(lock_path: &Path) -> io::Result<File> {
    let (dir, name) = PrivateDir::of(lock_path)?;
    dir.lock(name)
}

/// Replaces `path` with `bytes` atomically and durably (see [`PrivateDir::replace`]).
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (dir, name) = PrivateDir::of(path)?;
    dir.replace(name, bytes)
}

/// Renames `path` aside (see [`PrivateDir::set_aside`]); returns the new path.
pub fn set_aside(path: &Path, why: &str) -> io::Result<PathBuf> {
    let (dir, name) = PrivateDir::of(path)?;
    let aside = dir.set_aside(name, why)?;
    Ok(path.with_file_name(aside))
}

/// `<name>.<why>-<seconds>.<nanoseconds>`: unique enough that two set aside one after the other
/// never share a name.
fn aside_name(name: &OsStr, why: &str) -> OsString {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut aside = name.to_owned();
    aside.push(format!(
        ".{why}-{}.{:09}",
        elapsed.as_secs(),
        elapsed.subsec_nanos()
    ));
    aside
}

/// The same error, saying which file it is about.
fn with_path(path: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::{
        fs,
        os::unix::fs::{PermissionsExt, symlink},
    };

    use super::*;

    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rrt-locked-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("directory");
        dir
    }

    #[test]
    fn replace_writes_a_private_file_and_leaves_no_temporary() {
        let dir = scratch("replace");
        let path = dir.join("x.json");
        replace(&path, b"one").expect("first");
        replace(&path, b"two").expect("second");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        assert_eq!(
            fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = fs::read_dir(&dir)
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["x.json"]);
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn planted_links_are_never_followed() {
        let dir = scratch("links");
        let victim = dir.with_extension("victim");
        fs::write(&victim, "precious").expect("victim");
        // The old fixed temporary name, and a lock, both pointing at the victim.
        symlink(&victim, dir.join("x.json.tmp")).expect("link");
        symlink(&victim, dir.join("x.lock")).expect("link");
        replace(&dir.join("x.json"), b"new").expect("replaced beside the link");
        assert!(
            lock(&dir.join("x.lock")).is_err(),
            "a linked lock is refused"
        );
        // A link under the final name is replaced, not written through.
        symlink(&victim, dir.join("y.json")).expect("link");
        replace(&dir.join("y.json"), b"new").expect("replaced the link");
        assert!(
            fs::symlink_metadata(dir.join("y.json"))
                .expect("meta")
                .is_file()
        );
        let private = PrivateDir::open(&dir).expect("ours");
        symlink(&victim, dir.join("z.json")).expect("link");
        assert!(private.read("z.json").is_err(), "a linked file is not read");
        assert_eq!(private.read("missing").expect("no error"), None);
        assert_eq!(fs::read_to_string(&victim).expect("victim"), "precious");
        fs::remove_dir_all(&dir).expect("cleanup");
        fs::remove_file(victim).expect("cleanup");
    }

    #[test]
    fn a_linked_or_foreign_directory_is_refused() {
        let dir = scratch("foreign");
        let link = dir.with_extension("link");
        let _ = fs::remove_file(&link);
        symlink(&dir, &link).expect("link");
        let error = PrivateDir::open(&link).expect_err("a link");
        assert_eq!(error.kind(), io::ErrorKind::NotADirectory);
        assert!(replace(&link.join("x.json"), b"x").is_err());
        // As another user would have made it (the tests run as root, which may chown).
        std::os::unix::fs::chown(&dir, Some(getuid().as_raw() + 4242), None).expect("chown");
        let error = PrivateDir::open(&dir).expect_err("not ours");
        assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
        let not_ours = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<NotOurs>())
            .expect("typed");
        assert_eq!(not_ours.owner, getuid().as_raw() + 4242);
        fs::remove_file(link).expect("cleanup");
        fs::remove_dir_all(dir).expect("cleanup");
    }
}
