//! The clipboard on disk, shared by every daemon of a mesh on the host, written incrementally.
//!
//! ```text
//! <dir>/clipboard/index.json      the history's stamps and the clock — small, replaced whole
//! <dir>/clipboard/<stamp>.txt     one entry's text, written once, never rewritten
//! <dir>/clipboard.lock            flock held while either is read or changed
//! ```
//!
//! A copy writes its own text and a new index; the other entries are neither read nor written
//! again. (One JSON file of the whole history made a 10-byte copy rewrite 390 MB and peak at 2 GB
//! behind a history of fifty 8 MB values.) Saving takes the lock, merges what the index lists
//! with what is in memory (reading only the texts memory lacks), so two daemons saving at once
//! never drop each other's entries, writes the texts the index lacks, replaces the index, and only
//! then deletes the texts no index names any more. Every file is written to a temporary file,
//! `fsync`ed and renamed: a crash leaves the old index or the new one, and every text an index
//! names is whole. An index that does not parse is moved aside, not overwritten; a text that is
//! missing or damaged is reported and skipped. The one-file format of earlier versions
//! (`clipboard.json`) is read once and replaced.

use std::{
    collections::BTreeSet,
    fs::{self, File},
    io,
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

use crate::{
    clipboard::{ClipEntry, Clipboard},
    hlc::{Stamp, Timestamp},
    locked_file,
};

const DIR: &str = "clipboard";
const INDEX: &str = "index.json";
const LOCK: &str = "clipboard.lock";
const TEXT_SUFFIX: &str = ".txt";
const FORMAT_VERSION: u32 = 2;
/// The single file of format 1: the whole history, texts included.
const LEGACY_FILE: &str = "clipboard.json";

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
    /// Serializing the index failed (cannot happen with these types; kept typed).
    #[error("could not serialize the clipboard index: {0}")]
    Serialize(#[from] serde_json::Error),
}

#[derive(Serialize, Deserialize)]
struct Index {
    version: u32,
    clock: Timestamp,
    /// Newest first, as the history.
    entries: Vec<Stamp>,
}

/// Format 1: everything in one file.
#[derive(Deserialize)]
struct Legacy {
    version: u32,
    clock: Timestamp,
    entries: Vec<ClipEntry>,
}

/// What is on disk, once read.
struct OnDisk {
    clock: Timestamp,
    /// Stamps listed by the index, newest first.
    listed: Vec<Stamp>,
    /// Entries of the one-file format, to be rewritten in this one.
    legacy: Vec<ClipEntry>,
}

/// Where a mesh's clipboard lives on disk.
#[derive(Debug, Clone)]
pub struct ClipboardStore {
    dir: PathBuf,
}

impl ClipboardStore {
    /// The store in `dir` (created, mode 0700, if missing).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let store = Self {
            dir: dir.to_owned(),
        };
        let texts = store.texts();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&texts)
            .map_err(io_error("creating", &texts))?;
        Ok(store)
    }

    /// The file listing the history.
    pub fn path(&self) -> PathBuf {
        self.texts().join(INDEX)
    }

    /// Merges what is on disk into `clipboard`. Stamps from beyond the clock's maximum offset,
    /// saved by a version without the bound, are repaired ([`Clipboard::restore`]); a repaired
    /// history, or one in the format of earlier versions, is written back at once.
    pub fn load_into(&self, clipboard: &mut Clipboard, now_ms: u64) -> Result<(), StoreError> {
        let _lock = self.lock()?;
        let on_disk = self.read()?;
        let rewrite = !on_disk.legacy.is_empty();
        let repaired = self.merge(clipboard, on_disk, now_ms);
        if repaired > 0 {
            tracing::warn!(
                repaired,
                path = %self.path().display(),
                "the stored clipboard held stamps from beyond the maximum clock offset; re-stamped them"
            );
        }
        if repaired > 0 || rewrite {
            self.write(clipboard)?;
        }
        Ok(())
    }

    /// Writes `clipboard`, merged with what is on disk, durably; `now_ms` is the wall clock,
    /// against which stamps on disk are checked as on load. Only texts not yet on disk are
    /// written.
    pub fn save(&self, clipboard: &Clipboard, now_ms: u64) -> Result<(), StoreError> {
        let _lock = self.lock()?;
        let mut merged = clipboard.clone();
        let on_disk = self.read()?;
        self.merge(&mut merged, on_disk, now_ms);
        self.write(&merged)
    }

    fn texts(&self) -> PathBuf {
        self.dir.join(DIR)
    }

    fn text_path(&self, stamp: &Stamp) -> PathBuf {
        self.texts().join(text_name(stamp))
    }

    fn lock(&self) -> Result<File, StoreError> {
        let path = self.dir.join(LOCK);
        locked_file::lock(&path).map_err(io_error("locking", &path))
    }

    /// Merges `on_disk` into `clipboard`, reading the texts it lacks; returns how many stamps
    /// had to be repaired.
    fn merge(&self, clipboard: &mut Clipboard, on_disk: OnDisk, now_ms: u64) -> usize {
        let mut repaired = usize::from(!clipboard.restore_clock(on_disk.clock, now_ms));
        for entry in on_disk.legacy {
            repaired += usize::from(clipboard.restore(entry, now_ms));
        }
        for stamp in on_disk.listed {
            // A text is read only if it is missing here and would be kept.
            if clipboard.contains(&stamp) || !clipboard.would_keep(&stamp) {
                continue;
            }
            if let Some(text) = self.read_text(&stamp) {
                let entry = ClipEntry {
                    text: text.into(),
                    stamp,
                };
                repaired += usize::from(clipboard.restore(entry, now_ms));
            }
        }
        repaired
    }

    /// One entry's text; `None`, reported, when it is missing or not text.
    fn read_text(&self, stamp: &Stamp) -> Option<String> {
        let path = self.text_path(stamp);
        let error = match fs::read(&path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => return Some(text),
                Err(error) => error.to_string(),
            },
            Err(error) => error.to_string(),
        };
        tracing::error!(path = %path.display(), %error, "a stored clipboard entry is unreadable; skipping it");
        None
    }

    /// Writes the texts of `clipboard` that are not on disk, then the index naming them, then
    /// deletes the texts no longer named. The caller holds the lock.
    fn write(&self, clipboard: &Clipboard) -> Result<(), StoreError> {
        for entry in clipboard.history() {
            let path = self.text_path(&entry.stamp);
            if !path.exists() {
                locked_file::replace(&path, entry.text.as_bytes())
                    .map_err(io_error("writing", &path))?;
            }
        }
        let index = Index {
            version: FORMAT_VERSION,
            clock: clipboard.clock(),
            entries: clipboard
                .history()
                .iter()
                .map(|entry| entry.stamp)
                .collect(),
        };
        let path = self.path();
        locked_file::replace(&path, &serde_json::to_vec(&index)?)
            .map_err(io_error("replacing", &path))?;
        self.collect_garbage(&index.entries);
        let legacy = self.dir.join(LEGACY_FILE);
        if legacy.exists() {
            // Its entries are in the new files now.
            fs::remove_file(&legacy).map_err(io_error("removing", &legacy))?;
        }
        Ok(())
    }

    /// Deletes texts no index names (left by entries that fell out of the history).
    fn collect_garbage(&self, named: &[Stamp]) {
        let named: BTreeSet<String> = named.iter().map(text_name).collect();
        let Ok(files) = fs::read_dir(self.texts()) else {
            return;
        };
        for file in files.filter_map(Result::ok) {
            let name = file.file_name().to_string_lossy().into_owned();
            if name.ends_with(TEXT_SUFFIX)
                && !named.contains(&name)
                && let Err(error) = fs::remove_file(file.path())
            {
                tracing::warn!(file = name, %error, "could not delete a dropped clipboard entry");
            }
        }
    }

    /// The index (and a one-file history of an earlier version); nothing when there is none or
    /// it was unreadable and moved aside.
    fn read(&self) -> Result<OnDisk, StoreError> {
        let mut on_disk = OnDisk {
            clock: Timestamp::default(),
            listed: Vec::new(),
            legacy: Vec::new(),
        };
        if let Some(index) =
            self.read_json::<Index>(&self.path(), |index| index.version == FORMAT_VERSION)?
        {
            on_disk.clock = index.clock;
            on_disk.listed = index.entries;
        }
        if let Some(legacy) =
            self.read_json::<Legacy>(&self.dir.join(LEGACY_FILE), |legacy| legacy.version == 1)?
        {
            on_disk.clock = on_disk.clock.max(legacy.clock);
            on_disk.legacy = legacy.entries;
        }
        Ok(on_disk)
    }

    /// A JSON file, `None` if there is none; one that does not parse, or is not a version this
    /// one reads, is moved aside (never overwritten) and read as none.
    fn read_json<T: for<'de> Deserialize<'de>>(
        &self,
        path: &Path,
        readable: impl Fn(&T) -> bool,
    ) -> Result<Option<T>, StoreError> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error("reading", path)(error)),
        };
        match serde_json::from_slice::<T>(&bytes) {
            Ok(parsed) if readable(&parsed) => Ok(Some(parsed)),
            parsed => {
                let seconds = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |elapsed| elapsed.as_secs());
                let mut aside = path.as_os_str().to_owned();
                aside.push(format!(".unreadable-{seconds}"));
                let aside = PathBuf::from(aside);
                tracing::error!(
                    path = %path.display(),
                    aside = %aside.display(),
                    reason = ?parsed.err(),
                    "the stored clipboard is unreadable; moving it aside"
                );
                fs::rename(path, &aside).map_err(io_error("moving aside", path))?;
                Ok(None)
            }
        }
    }
}

/// The file holding the text of the entry with `stamp`: named by the stamp, so two daemons
/// storing one entry write the same file.
fn text_name(stamp: &Stamp) -> String {
    format!(
        "{:016x}-{:08x}-{}{TEXT_SUFFIX}",
        stamp.time.wall_ms,
        stamp.time.counter,
        stamp.origin.simple()
    )
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
    use std::os::unix::fs::MetadataExt;

    use uuid::Uuid;

    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rrt-sync-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn texts(clipboard: &Clipboard) -> Vec<&str> {
        clipboard.history().iter().map(|e| &*e.text).collect()
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
        assert_eq!(texts(&loaded), ["from b", "from a"]);
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn a_copy_writes_its_own_text_and_leaves_the_others_alone() {
        let dir = temp_dir("incremental");
        let store = ClipboardStore::open(&dir).expect("open");
        let mut clipboard = Clipboard::new(Uuid::from_u128(1), 3);
        let large = "x".repeat(1 << 20);
        for n in 0..3 {
            clipboard.copy(format!("{n}{large}"), 1_000 + n);
        }
        store.save(&clipboard, 2_000).expect("save");
        let files = |store: &ClipboardStore| -> Vec<(String, u64, i64)> {
            let mut files: Vec<_> = fs::read_dir(store.texts())
                .expect("list")
                .filter_map(Result::ok)
                .filter(|file| file.file_name().to_string_lossy().ends_with(TEXT_SUFFIX))
                .map(|file| {
                    let meta = file.metadata().expect("meta");
                    let name = file.file_name().to_string_lossy().into_owned();
                    (name, meta.ino(), meta.ctime_nsec())
                })
                .collect();
            files.sort();
            files
        };
        let before = files(&store);
        assert_eq!(before.len(), 3);

        clipboard.copy("small".into(), 1_010).expect("new");
        store.save(&clipboard, 2_000).expect("save");
        let after = files(&store);
        // The oldest entry fell out of the history and its text went with it; the two kept are
        // the very files written before; one small file is new.
        assert_eq!(after.len(), 3);
        assert!(
            !after.contains(&before[0]),
            "the dropped entry's text is gone"
        );
        for kept in &before[1..] {
            assert!(after.contains(kept), "{kept:?} was not rewritten");
        }
        let index = fs::metadata(store.path()).expect("index").len();
        assert!(
            index < 1024,
            "the index holds stamps, not texts: {index} bytes"
        );

        let mut loaded = Clipboard::new(Uuid::from_u128(2), 3);
        store.load_into(&mut loaded, 2_000).expect("load");
        assert_eq!(loaded.history(), clipboard.history());
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn a_history_of_an_earlier_version_is_read_repaired_and_rewritten() {
        let dir = temp_dir("poisoned");
        let store = ClipboardStore::open(&dir).expect("open");
        // As a version without the clock bound saved it after a peer's stamp at the end of time.
        let poisoned = r#"{"version":1,"clock":{"wall_ms":18446744073709551615,"counter":4294967295},
            "entries":[
              {"text":"frozen","stamp":{"time":{"wall_ms":18446744073709551615,"counter":4294967295},"origin":"00000000-0000-0000-0000-000000000002"}},
              {"text":"copied later","stamp":{"time":{"wall_ms":5000,"counter":0},"origin":"00000000-0000-0000-0000-000000000001"}}]}"#;
        fs::write(dir.join(LEGACY_FILE), poisoned).expect("write");
        let mut clipboard = Clipboard::new(Uuid::from_u128(1), 10);
        store.load_into(&mut clipboard, 10_000).expect("load");
        assert_eq!(
            texts(&clipboard),
            ["frozen", "copied later"],
            "nothing is lost"
        );
        assert!(clipboard.clock().wall_ms <= 10_000);
        let next = clipboard
            .copy("after the upgrade".into(), 10_001)
            .expect("new");
        assert_eq!(
            clipboard.current(),
            Some(&next),
            "the clipboard is no longer frozen"
        );
        // Rewritten in this format, repaired: a second load finds the same, and nothing to repair.
        assert!(!dir.join(LEGACY_FILE).exists());
        let index = fs::read_to_string(store.path()).expect("read");
        assert!(!index.contains("18446744073709551615"), "{index}");
        let mut again = Clipboard::new(Uuid::from_u128(3), 10);
        store.load_into(&mut again, 10_000).expect("load");
        assert_eq!(texts(&again), ["frozen", "copied later"]);
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn an_unreadable_index_is_moved_aside_not_lost() {
        let dir = temp_dir("corrupt");
        let store = ClipboardStore::open(&dir).expect("open");
        fs::write(store.path(), b"{ not json").expect("write garbage");
        let mut clipboard = Clipboard::new(Uuid::from_u128(1), 10);
        store.load_into(&mut clipboard, 0).expect("load survives");
        assert!(clipboard.current().is_none());
        let aside: Vec<_> = fs::read_dir(store.texts())
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains("unreadable"))
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(fs::read(aside[0].path()).expect("read"), b"{ not json");
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn a_missing_text_is_skipped_and_the_rest_kept() {
        let dir = temp_dir("missingtext");
        let store = ClipboardStore::open(&dir).expect("open");
        let mut clipboard = Clipboard::new(Uuid::from_u128(1), 10);
        let kept = clipboard.copy("kept".into(), 1_000).expect("new");
        let lost = clipboard.copy("lost".into(), 2_000).expect("new");
        store.save(&clipboard, 2_000).expect("save");
        fs::remove_file(store.text_path(&lost.stamp)).expect("lose a text");
        let mut loaded = Clipboard::new(Uuid::from_u128(2), 10);
        store.load_into(&mut loaded, 2_000).expect("load");
        assert_eq!(loaded.history(), [kept]);
        fs::remove_dir_all(dir).expect("cleanup");
    }
}
