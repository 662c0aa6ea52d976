//! The mesh directory: where the instances of one mesh on one host find each other.
//!
//! ```text
//! $XDG_RUNTIME_DIR/rrt/<mesh>/      (or /tmp/rrt-<uid>/<mesh>/), 0700, ours
//! ├── peer-<pid>.sock                one per instance: peers connect here
//! ├── control-<pid>.sock             one per instance: the CLI connects here
//! ├── coordinator.sock / .lock       hub topology: the coordinator's socket, won through the lock
//! └── peers.json                     the registry: who runs here (see `registry`)
//! ```
//!
//! Sockets of dead processes are stale: whoever finds one removes it.

use std::{
    fs, io,
    os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

use rustix::process::{Pid, getuid, test_kill_process};

/// The registry's file name in the mesh directory.
pub(crate) const REGISTRY: &str = "peers.json";
/// The lock that writers of the registry take.
pub(crate) const REGISTRY_LOCK: &str = "peers.lock";
/// The lock whose holder is the hub's coordinator.
pub(crate) const COORDINATOR_LOCK: &str = "coordinator.lock";

/// Why the mesh directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// It could not be created or inspected.
    #[error("mesh directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// It belongs to another user: using it would let that user see or impersonate our peers.
    #[error("mesh directory {path} belongs to uid {owner}, not to us (uid {ours}); refusing it")]
    NotOurs {
        /// The directory.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// Our uid.
        ours: u32,
    },
}

/// The directory of one mesh on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshDir {
    path: PathBuf,
    /// The per-user directory in a shared temporary directory (`/tmp/rrt-<uid>`), when that is
    /// the fallback in use: whoever owns it can rename our mesh directory away and put their own
    /// in its place, so it must be ours too.
    private_base: Option<PathBuf>,
}

impl MeshDir {
    /// `<runtime_dir>/<mesh>` when a runtime directory is given, else
    /// `$XDG_RUNTIME_DIR/rrt/<mesh>`, else `/tmp/rrt-<uid>/<mesh>`.
    pub fn locate(runtime_dir: Option<&Path>, mesh: &str) -> Self {
        let (base, private_base) = match runtime_dir {
            Some(dir) => (dir.to_owned(), None),
            None => match std::env::var_os("XDG_RUNTIME_DIR") {
                Some(xdg) if !xdg.is_empty() => (PathBuf::from(xdg).join("rrt"), None),
                _ => {
                    let base = std::env::temp_dir().join(format!("rrt-{}", getuid().as_raw()));
                    (base.clone(), Some(base))
                }
            },
        };
        Self {
            path: base.join(mesh),
            private_base,
        }
    }

    /// Creates the directory (0700) if needed and checks that it is ours — and, in a shared
    /// temporary directory, that the per-user directory holding it is ours too; tightens their
    /// modes if someone widened them.
    pub fn prepare(&self) -> Result<(), DirError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.path)
            .map_err(|source| DirError::Io {
                path: self.path.clone(),
                source,
            })?;
        if let Some(base) = &self.private_base {
            ensure_private(base)?;
        }
        ensure_private(&self.path)
    }

    /// Checks, without changing anything, that the directory — and, in a shared temporary
    /// directory, the per-user directory holding it — is a directory of ours and not a symbolic
    /// link: what a client does before it reads the registry or connects to a socket here, since
    /// whoever owns the directory decides what those are.
    pub fn verify(&self) -> Result<(), DirError> {
        for path in self.private_base.iter().chain([&self.path]) {
            let metadata = fs::symlink_metadata(path).map_err(|source| DirError::Io {
                path: path.clone(),
                source,
            })?;
            judge(path, metadata.is_dir(), metadata.uid(), getuid().as_raw())?;
        }
        Ok(())
    }

    /// The mesh's name: the directory's own.
    pub fn mesh(&self) -> String {
        self.path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the instance with `pid` listens for peers.
    pub fn peer_socket(&self, pid: u32) -> PathBuf {
        self.path.join(format!("peer-{pid}.sock"))
    }

    /// Where the instance with `pid` listens for the CLI.
    pub fn control_socket(&self, pid: u32) -> PathBuf {
        self.path.join(format!("control-{pid}.sock"))
    }

    /// The hub topology's coordinator socket.
    pub fn coordinator_socket(&self) -> PathBuf {
        self.path.join("coordinator.sock")
    }

    /// The pids of every `peer-<pid>.sock` present.
    pub fn peer_pids(&self) -> io::Result<Vec<u32>> {
        let mut pids: Vec<u32> = fs::read_dir(&self.path)?
            .filter_map(Result::ok)
            .filter_map(|entry| peer_socket_pid(&entry.file_name().to_string_lossy()))
            .collect();
        pids.sort_unstable();
        Ok(pids)
    }

    /// Removes the sockets of `pid` (a dead instance's leftovers).
    pub fn remove_sockets_of(&self, pid: u32) {
        for path in [self.peer_socket(pid), self.control_socket(pid)] {
            match fs::remove_file(&path) {
                Ok(()) => tracing::info!(path = %path.display(), "removed a stale socket"),
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "could not remove a stale socket")
                }
            }
        }
    }
}

/// The pid in a `peer-<pid>.sock` file name.
pub(crate) fn peer_socket_pid(file_name: &str) -> Option<u32> {
    file_name
        .strip_prefix("peer-")?
        .strip_suffix(".sock")?
        .parse()
        .ok()
}

/// Whether a process with `pid` runs: it exists (signal 0; a pid we may not signal exists too)
/// and is not a zombie — a killed daemon whose parent has not reaped it yet is dead to its peers.
pub(crate) fn is_alive(pid: u32) -> bool {
    let Some(raw) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    match test_kill_process(raw) {
        Ok(()) => !is_zombie(pid),
        Err(errno) => errno != rustix::io::Errno::SRCH,
    }
}

fn is_zombie(pid: u32) -> bool {
    // /proc/<pid>/stat: "pid (comm) state …"; comm may hold spaces and parentheses.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after_comm = &stat[stat.rfind(')')? + 1..];
            after_comm.trim_start().chars().next()
        })
        .is_some_and(|state| state == 'Z')
}

/// Checks that `path` is a directory of ours — not a symbolic link, which whoever owns it could
/// point elsewhere later — and sets it 0700 if it was open to others.
fn ensure_private(path: &Path) -> Result<(), DirError> {
    let io_error = |source| DirError::Io {
        path: path.to_owned(),
        source,
    };
    let metadata = fs::symlink_metadata(path).map_err(io_error)?;
    judge(path, metadata.is_dir(), metadata.uid(), getuid().as_raw())?;
    if metadata.mode() & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", metadata.mode() & 0o777), "mesh directory was open to others; setting 0700");
        fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(io_error)?;
    }
    Ok(())
}

/// Whether an entry found at `path` (not followed if a symbolic link: `is_dir` is false then) with
/// `owner` may be used as a directory of ours.
fn judge(path: &Path, is_dir: bool, owner: u32, ours: u32) -> Result<(), DirError> {
    if !is_dir {
        return Err(DirError::Io {
            path: path.to_owned(),
            source: io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory (a symbolic link is refused: its owner could repoint it)",
            ),
        });
    }
    if owner != ours {
        return Err(DirError::NotOurs {
            path: path.to_owned(),
            owner,
            ours,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_names_carry_the_pid() {
        assert_eq!(peer_socket_pid("peer-4242.sock"), Some(4242));
        assert_eq!(peer_socket_pid("peer-x.sock"), None);
        assert_eq!(peer_socket_pid("control-4242.sock"), None);
        let dir = MeshDir::locate(Some(Path::new("/run/x")), "work");
        assert_eq!(dir.peer_socket(7), Path::new("/run/x/work/peer-7.sock"));
    }

    #[test]
    fn a_directory_is_created_private_and_tightened() {
        let base = std::env::temp_dir().join(format!("rrt-dir-test-{}", std::process::id()));
        let dir = MeshDir::locate(Some(&base), "m");
        dir.prepare().expect("created");
        let mode = fs::metadata(dir.path()).expect("meta").mode() & 0o777;
        assert_eq!(mode, 0o700);
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("widen");
        dir.prepare().expect("tightened");
        assert_eq!(
            fs::metadata(dir.path()).expect("meta").mode() & 0o777,
            0o700
        );
        fs::remove_dir_all(base).expect("cleanup");
    }

    #[test]
    fn a_shared_temporary_base_owned_by_another_user_is_refused() {
        let base = std::env::temp_dir().join(format!("rrt-dir-base-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir(&base).expect("base");
        let dir = MeshDir {
            path: base.join("m"),
            private_base: Some(base.clone()),
        };
        dir.prepare().expect("ours");
        // As another user would have made it first (the tests run as root, which may chown).
        std::os::unix::fs::chown(&base, Some(getuid().as_raw() + 4242), None).expect("chown");
        assert!(matches!(dir.prepare(), Err(DirError::NotOurs { path, .. }) if path == base));
        fs::remove_dir_all(&base).expect("cleanup");
        // A link to a directory of ours, made by someone who could repoint it.
        let ours = base.with_extension("target");
        fs::create_dir_all(&ours).expect("target");
        std::os::unix::fs::symlink(&ours, &base).expect("link");
        assert!(matches!(dir.prepare(), Err(DirError::Io { path, .. }) if path == base));
        fs::remove_file(&base).expect("cleanup");
        fs::remove_dir_all(ours).expect("cleanup");
    }

    #[test]
    fn only_a_directory_of_ours_is_used() {
        let path = Path::new("/tmp/rrt-1000");
        assert!(judge(path, true, 1000, 1000).is_ok());
        assert!(matches!(
            judge(path, true, 4242, 1000),
            Err(DirError::NotOurs {
                owner: 4242,
                ours: 1000,
                ..
            })
        ));
        // A link (or a file) is refused even when it is ours.
        assert!(matches!(
            judge(path, false, 1000, 1000),
            Err(DirError::Io { .. })
        ));
    }

    #[test]
    fn verify_checks_without_changing_anything() {
        let base = std::env::temp_dir().join(format!("rrt-dir-verify-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let dir = MeshDir {
            path: base.join("m"),
            private_base: Some(base.clone()),
        };
        assert!(
            matches!(dir.verify(), Err(DirError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound)
        );
        dir.prepare().expect("created");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("widen");
        dir.verify().expect("ours");
        assert_eq!(
            fs::metadata(dir.path()).expect("meta").mode() & 0o777,
            0o755,
            "verify changes no mode"
        );
        // Swapped for another user's, in the mesh directory or in the base.
        let theirs = getuid().as_raw() + 4242;
        std::os::unix::fs::chown(dir.path(), Some(theirs), None).expect("chown");
        assert!(matches!(dir.verify(), Err(DirError::NotOurs { path, .. }) if path == dir.path()));
        std::os::unix::fs::chown(dir.path(), Some(getuid().as_raw()), None).expect("chown");
        std::os::unix::fs::chown(&base, Some(theirs), None).expect("chown");
        assert!(matches!(dir.verify(), Err(DirError::NotOurs { path, .. }) if path == base));
        fs::remove_dir_all(&base).expect("cleanup");
    }

    #[test]
    fn liveness_by_pid_and_zombies_are_dead() {
        assert!(is_alive(std::process::id()));
        assert!(!is_alive(u32::MAX));
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let pid = child.id();
        // Not reaped yet: a zombie once it exits.
        while !is_zombie(pid) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(!is_alive(pid));
        child.wait().expect("reap");
    }
}
