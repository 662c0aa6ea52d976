//! The clipboard on disk: one JSON file per mesh, shared by every daemon of that mesh on the host.
//!
//! Saving takes an exclusive `flock`, merges what is on disk with what is in memory (so two
//! daemons saving at once never drop each other's entries), writes a temporary file, `fsync`s it,
//! and renames it over the old one: a crash leaves either the old file or the new, never half of
//! one. A file that does not parse is moved aside, not overwritten.

use std::{
    fs::{self, File},
    io,
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

use crate::{
    clipboard::{ClipEntry, Clipboard},
    hlc::Timestamp,
    locked_file,
};

const FILE: &str = "clipboard.json";
const LOCK: &str = "clipboard.lock";
const FORMAT_VERSION: u32 = 1;

/// Why the clipboard could not be read from or written to disk.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file system operation failed; the message names the path.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// To which file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Serializing the clipboard failed (cannot happen with string data; kept typed).
    #[error("could not serialize the clipboard: {0}")]
    Serialize(#[from] serde_json::Error),
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    clock: Timestamp,
    entries: Vec<ClipEntry>,
}

/// Where a mesh's clipboard lives on disk.
#[derive(Debug, Clone)]
pub struct ClipboardStore {
    dir: PathBuf,
}

impl ClipboardStore {
    /// The store in `dir` (created, mode 0700, if missing).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_error("creating", dir))?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// The file holding the clipboard.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Merges what is on disk into `clipboard`. Stamps from beyond the clock's maximum offset,
    /// saved by a version without the bound, are repaired ([`Clipboard::restore`]) and the
    /// repaired clipboard written back at once, so the file never holds them again.
    pub fn load_into(&self, clipboard: &mut Clipboard, now_ms: u64) -> Result<(), StoreError> {
        let _lock = self.lock()?;
        let Some(on_disk) = self.read()? else {
            return Ok(());
        };
        let repaired = merge(clipboard, on_disk, now_ms);
        if repaired > 0 {
            tracing::warn!(
                repaired,
                path = %self.path().display(),
                "the stored clipboard held stamps from beyond the maximum clock offset; re-stamped them"
            );
            self.write(clipboard)?;
        }
        Ok(())
    }

    /// Writes `clipboard`, merged with what is on disk, atomically and durably; `now_ms` is the
    /// wall clock, against which stamps on disk are checked as on load.
    pub fn save(&self, clipboard: &Clipboard, now_ms: u64) -> Result<(), StoreError> {
        let _lock = self.lock()?;
        let mut merged = clipboard.clone();
        if let Some(on_disk) = self.read()? {
            merge(&mut merged, on_disk, now_ms);
        }
        self.write(&merged)
    }

    /// Replaces the file with `merged`; the caller holds the lock.
    fn write(&self, merged: &Clipboard) -> Result<(), StoreError> {
        let on_disk = OnDisk {
            version: FORMAT_VERSION,
            clock: merged.clock(),
            entries: merged.history().to_vec(),
        };
        let bytes = serde_json::to_vec(&on_disk)?;
        let path = self.path();
        locked_file::replace(&path, &bytes).map_err(io_error("replacing", &path))
    }

    fn lock(&self) -> Result<File, StoreError> {
        let path = self.dir.join(LOCK);
        locked_file::lock(&path).map_err(io_error("locking", &path))
    }

    /// The file's contents; `None` when there is none or it was unreadable and moved aside.
    fn read(&self) -> Result<Option<OnDisk>, StoreError> {
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error("reading", &path)(error)),
        };
        match serde_json::from_slice::<OnDisk>(&bytes) {
            Ok(on_disk) if on_disk.version == FORMAT_VERSION => Ok(Some(on_disk)),
            parsed => {
                let seconds = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |elapsed| elapsed.as_secs());
                let aside = self.dir.join(format!("{FILE}.unreadable-{seconds}"));
                tracing::error!(
                    path = %path.display(),
                    aside = %aside.display(),
                    reason = ?parsed.err(),
                    "the stored clipboard is unreadable; moving it aside and starting empty"
                );
                fs::rename(&path, &aside).map_err(io_error("moving aside", &path))?;
                Ok(None)
            }
        }
    }
}

/// Merges a file's contents; returns how many stamps had to be repaired.
fn merge(clipboard: &mut Clipboard, on_disk: OnDisk, now_ms: u64) -> usize {
    let mut repaired = usize::from(!clipboard.restore_clock(on_disk.clock, now_ms));
    for entry in on_disk.entries {
        repaired += usize::from(clipboard.restore(entry, now_ms));
    }
    repaired
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rrt-sync-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_saved_clipboard_loads_back_with_its_clock() {
        let dir = temp_dir("roundtrip");
        let store = ClipboardStore::open(&dir).expect("open");
        let mut clipboard = Clipboard::new(Uuid::from_u128(1), 10);
        clipboard.copy("first".into(), 1_000);
        let last = clipboard.copy("second".into(), 2_000).expect("new");
        store.save(&clipboard, 2_000).expect("save");

        let mut restarted = Clipboard::new(Uuid::from_u128(1), 10);
        store.load_into(&mut restarted, 0).expect("load");
        assert_eq!(restarted.current(), Some(&last));
        assert_eq!(restarted.history().len(), 2);
        // The wall clock went backwards across the restart; stamps still move forward.
        let after = restarted.copy("third".into(), 0).expect("new");
        assert!(after.stamp > last.stamp);
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn two_writers_keep_each_others_entries() {
        let dir = temp_dir("writers");
        let store = ClipboardStore::open(&dir).expect("open");
        let mut a = Clipboard::new(Uuid::from_u128(1), 10);
        let mut b = Clipboard::new(Uuid::from_u128(2), 10);
        a.copy("from a".into(), 1_000);
        b.copy("from b".into(), 2_000);
        store.save(&a, 2_000).expect("save a");
        store.save(&b, 2_000).expect("save b");
        let mut loaded = Clipboard::new(Uuid::from_u128(3), 10);
        store.load_into(&mut loaded, 0).expect("load");
        let texts: Vec<_> = loaded.history().iter().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, ["from b", "from a"]);
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn a_file_poisoned_by_an_older_version_is_repaired_on_load() {
        let dir = temp_dir("poisoned");
        let store = ClipboardStore::open(&dir).expect("open");
        // As a version without the clock bound saved it after a peer's stamp at the end of time.
        let poisoned = r#"{"version":1,"clock":{"wall_ms":18446744073709551615,"counter":4294967295},
            "entries":[
              {"text":"frozen","stamp":{"time":{"wall_ms":18446744073709551615,"counter":4294967295},"origin":"00000000-0000-0000-0000-000000000002"}},
              {"text":"copied later","stamp":{"time":{"wall_ms":5000,"counter":0},"origin":"00000000-0000-0000-0000-000000000001"}}]}"#;
        fs::write(store.path(), poisoned).expect("write");
        let mut clipboard = Clipboard::new(Uuid::from_u128(1), 10);
        store.load_into(&mut clipboard, 10_000).expect("load");
        let texts: Vec<_> = clipboard
            .history()
            .iter()
            .map(|e| e.text.as_str())
            .collect();
        assert_eq!(texts, ["frozen", "copied later"], "nothing is lost");
        assert!(clipboard.clock().wall_ms <= 10_000);
        let next = clipboard
            .copy("after the upgrade".into(), 10_001)
            .expect("new");
        assert_eq!(
            clipboard.current(),
            Some(&next),
            "the clipboard is no longer frozen"
        );
        // The file was rewritten: a second load finds nothing to repair.
        let on_disk = fs::read_to_string(store.path()).expect("read");
        assert!(!on_disk.contains("18446744073709551615"), "{on_disk}");
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn an_unreadable_file_is_moved_aside_not_lost() {
        let dir = temp_dir("corrupt");
        let store = ClipboardStore::open(&dir).expect("open");
        fs::write(store.path(), b"{ not json").expect("write garbage");
        let mut clipboard = Clipboard::new(Uuid::from_u128(1), 10);
        store.load_into(&mut clipboard, 0).expect("load survives");
        assert!(clipboard.current().is_none());
        let aside: Vec<_> = fs::read_dir(&dir)
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains("unreadable"))
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(fs::read(aside[0].path()).expect("read"), b"{ not json");
        fs::remove_dir_all(dir).expect("cleanup");
    }
}
