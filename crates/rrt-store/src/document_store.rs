//! Documents on disk: per document an append-only log of updates, `fsync`ed before an edit is
//! acknowledged, and a snapshot that the log is folded into now and then (compaction).
//!
//! ```text
//! <dir>/<name>.snapshot   the whole document (one yrs update), replaced by rename
//! <dir>/<name>.log        records: u32 BE length, update bytes — appended, fsynced
//! ```
//!
//! An append that fails (a full disk) truncates the log back to where it was, so a torn record is
//! only ever the last one, left by a crash mid-append: it is cut off on load (it was never
//! acknowledged). A crash between writing a snapshot and emptying the log replays updates the
//! snapshot already holds, which a CRDT ignores. Every change happens under an exclusive `flock`
//! per document, so the daemons of one host can share the directory.
//!
//! Nothing damaged is destroyed: a snapshot that does not decode is moved aside
//! (`<name>.snapshot.damaged-<time>`) and the document starts from its log (peers fill in the
//! rest); bytes cut off a log are first copied to `<name>.log.cut-<time>`, and a log holding
//! records that do not apply is copied to `<name>.log.unreadable-<time>` before a compaction can
//! empty it. Records carry no checksum: a garbled record that still decodes as an update is not
//! caught here.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use rrt_sync::{Document, valid_name};

use crate::locked_file::{self, PrivateDir};

/// Logs are opened without following a symbolic link: one planted under a log's name would
/// have us append to (or truncate) whatever it points at.
const NO_FOLLOW: i32 = rustix::fs::OFlags::NOFOLLOW.bits() as i32;

/// Log size after which the log is folded into the snapshot.
const COMPACT_AFTER_BYTES: u64 = 1024 * 1024;

/// Why a document could not be loaded or stored.
#[derive(Debug, thiserror::Error)]
pub enum DocumentStoreError {
    /// A name that cannot be a file name.
    #[error("{0:?} is not a document name (1–64 letters, digits, '.', '_' or '-'; no leading '.')")]
    BadName(String),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// A directory of documents.
#[derive(Debug, Clone)]
pub struct DocumentStore {
    dir: PathBuf,
}

impl DocumentStore {
    /// The store in `dir` (created if missing).
    pub fn open(dir: &Path) -> Result<Self, DocumentStoreError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// The documents stored, by name.
    pub fn names(&self) -> Result<Vec<String>, DocumentStoreError> {
        let mut names: Vec<String> = fs::read_dir(&self.dir)
            .map_err(io_error(&self.dir))?
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let file = entry.file_name().to_string_lossy().into_owned();
                let name = file
                    .strip_suffix(".snapshot")
                    .or_else(|| file.strip_suffix(".log"))?;
                valid_name(name).then(|| name.to_owned())
            })
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The document `name` as stored (empty if new), edited from now on by `replica`.
    pub fn load(&self, name: &str, replica: u64) -> Result<Document, DocumentStoreError> {
        let _lock = self.lock(name)?;
        let snapshot_path = self.path(name, "snapshot");
        let document = match fs::read(&snapshot_path) {
            Ok(snapshot) => match Document::from_snapshot(replica, &snapshot) {
                Ok(document) => document,
                Err(error) => {
                    let aside = locked_file::set_aside(&snapshot_path, "damaged")
                        .map_err(io_error(&snapshot_path))?;
                    tracing::error!(
                        document = name,
                        %error,
                        aside = %aside.display(),
                        "the document's snapshot is damaged; moved it aside and starting from its log (peers fill in the rest)"
                    );
                    Document::new(replica)
                }
            },
            Err(error) if error.kind() == io::ErrorKind::NotFound => Document::new(replica),
            Err(error) => return Err(io_error(&snapshot_path)(error)),
        };
        let mut unreadable = 0;
        for update in self.read_log(name)? {
            if let Err(error) = document.apply(&update) {
                tracing::warn!(document = name, %error, "skipping an unreadable logged update");
                unreadable += 1;
            }
        }
        if unreadable > 0 {
            // The next compaction empties the log: keep it as it is first.
            self.keep_aside(name, "log", "unreadable")?;
        }
        Ok(document)
    }

    /// Appends `update` to the log of `name`, durably; folds the log into a new snapshot when it
    /// grows long. The snapshot is of what is stored (snapshot and log), not of a document in
    /// memory, which may hold edits not stored yet (and perhaps never).
    pub fn append(&self, name: &str, update: &[u8]) -> Result<(), DocumentStoreError> {
        self.append_all(name, &[update])
    }

    /// Appends `updates` to the log of `name`, in order, with one flush to the disk for all of
    /// them (a burst of keystrokes costs one `fdatasync`, not one each): all are stored, or
    /// none.
    pub fn append_all(&self, name: &str, updates: &[&[u8]]) -> Result<(), DocumentStoreError> {
        let _lock = self.lock(name)?;
        let path = self.path(name, "log");
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(NO_FOLLOW)
            .open(&path)
            .map_err(io_error(&path))?;
        let mut records = Vec::with_capacity(updates.iter().map(|u| 4 + u.len()).sum());
        for update in updates {
            let length = u32::try_from(update.len()).unwrap_or(u32::MAX);
            records.extend_from_slice(&length.to_be_bytes());
            records.extend_from_slice(update);
        }
        let before = log.metadata().map_err(io_error(&path))?.len();
        let written = log.write_all(&records).and_then(|()| log.sync_data());
        if let Err(error) = written {
            // Not a record: leave the log as it was, so what is appended after (once space
            // returns) never follows a torn record that a restart would cut off with it.
            if let Err(undo) = log.set_len(before).and_then(|()| log.sync_data()) {
                tracing::error!(document = name, %undo, "could not take a failed append back off the log");
            }
            return Err(io_error(&path)(error));
        }
        // The records are durable: a failed compaction must not turn them into a refusal.
        if before + records.len() as u64 >= COMPACT_AFTER_BYTES
            && let Err(error) = self.compact_locked(name, &Document::new(0))
        {
            tracing::warn!(document = name, %error, "could not compact the log; it stays as it is");
        }
        Ok(())
    }

    /// Writes `document` as the snapshot of `name` and empties its log.
    pub fn compact(&self, name: &str, document: &Document) -> Result<(), DocumentStoreError> {
        let _lock = self.lock(name)?;
        self.compact_locked(name, document)
    }

    fn compact_locked(&self, name: &str, document: &Document) -> Result<(), DocumentStoreError> {
        // Whatever other daemons folded or logged meanwhile goes into the snapshot too.
        let snapshot = self.path(name, "snapshot");
        match fs::read(&snapshot) {
            Ok(stored) => {
                if document.apply(&stored).is_err() {
                    let aside = locked_file::set_aside(&snapshot, "damaged")
                        .map_err(io_error(&snapshot))?;
                    tracing::error!(document = name, aside = %aside.display(), "the document's snapshot is damaged; moved it aside before replacing it");
                }
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error(&snapshot)(error)),
        }
        for update in self.read_log(name)? {
            let _ = document.apply(&update);
        }
        locked_file::replace(&snapshot, &document.snapshot()).map_err(io_error(&snapshot))?;
        let log = self.path(name, "log");
        match OpenOptions::new()
            .write(true)
            .custom_flags(NO_FOLLOW)
            .open(&log)
        {
            Ok(file) => file
                .set_len(0)
                .and_then(|()| file.sync_all())
                .map_err(io_error(&log)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(io_error(&log)(error)),
        }
    }

    /// The whole records of a log, cutting off a torn last one.
    fn read_log(&self, name: &str) -> Result<Vec<Vec<u8>>, DocumentStoreError> {
        let path = self.path(name, "log");
        let mut bytes = Vec::new();
        match OpenOptions::new()
            .read(true)
            .custom_flags(NO_FOLLOW)
            .open(&path)
        {
            Ok(mut file) => file.read_to_end(&mut bytes).map_err(io_error(&path))?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(io_error(&path)(error)),
        };
        let mut records = Vec::new();
        let mut rest = &bytes[..];
        while let [a, b, c, d, tail @ ..] = rest {
            let length = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
            if tail.len() < length {
                break;
            }
            records.push(tail[..length].to_vec());
            rest = &tail[length..];
        }
        if !rest.is_empty() {
            let whole = bytes.len() - rest.len();
            let kept = PrivateDir::open(&self.dir)
                .and_then(|dir| dir.keep_aside(format!("{name}.log"), "cut", rest));
            match kept {
                Ok(aside) => {
                    tracing::warn!(
                        document = name,
                        cut = rest.len(),
                        kept = whole,
                        ?aside,
                        "cutting a torn or damaged record off the log (the bytes cut are kept aside)"
                    );
                    OpenOptions::new()
                        .write(true)
                        .custom_flags(NO_FOLLOW)
                        .open(&path)
                        .and_then(|file| file.set_len(whole as u64).and_then(|()| file.sync_all()))
                        .map_err(io_error(&path))?;
                }
                // A full disk, say: read what is whole and cut nothing — the next append, which
                // truncates back to where its record starts, or a later start, will.
                Err(error) => tracing::error!(
                    document = name,
                    %error,
                    "a torn or damaged record ends the log, and could not be kept aside; leaving it for now"
                ),
            }
        }
        Ok(records)
    }

    /// Keeps a copy of `<name>.<extension>` beside it, as it is now.
    fn keep_aside(&self, name: &str, extension: &str, why: &str) -> Result<(), DocumentStoreError> {
        let path = self.path(name, extension);
        let bytes = fs::read(&path).map_err(io_error(&path))?;
        let aside = PrivateDir::open(&self.dir)
            .and_then(|dir| dir.keep_aside(format!("{name}.{extension}"), why, &bytes))
            .map_err(io_error(&path))?;
        tracing::error!(
            document = name,
            ?aside,
            "kept a copy of a damaged file aside"
        );
        Ok(())
    }

    fn path(&self, name: &str, extension: &str) -> PathBuf {
        self.dir.join(format!("{name}.{extension}"))
    }

    fn lock(&self, name: &str) -> Result<File, DocumentStoreError> {
        if !valid_name(name) {
            return Err(DocumentStoreError::BadName(name.to_owned()));
        }
        let path = self.path(name, "lock");
        locked_file::lock(&path).map_err(io_error(&path))
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> DocumentStoreError {
    let path = path.to_owned();
    move |source| DocumentStoreError::Io { path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(test: &str) -> (DocumentStore, PathBuf) {
        let dir = std::env::temp_dir().join(format!("rrt-docs-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        (DocumentStore::open(&dir).expect("open"), dir)
    }

    /// A store whose log of `d` holds the record of "kept", then `extra` bytes.
    fn logged_then(test: &str, extra: &[u8]) -> (DocumentStore, PathBuf, Document) {
        let (store, dir) = store(test);
        let document = store.load("d", 1).expect("new");
        let update = document.append("kept");
        store.append("d", &update).expect("logged");
        OpenOptions::new()
            .append(true)
            .open(dir.join("d.log"))
            .and_then(|mut log| log.write_all(extra))
            .expect("extra bytes");
        (store, dir, document)
    }

    #[test]
    fn acknowledged_edits_survive_a_restart_and_compaction() {
        let (store, dir) = store("restart");
        let document = store.load("notes", 1).expect("new");
        for word in ["one ", "two ", "three"] {
            let update = document.append(word);
            store.append("notes", &update).expect("logged");
        }
        assert_eq!(
            store.load("notes", 2).expect("reload").text(),
            "one two three"
        );
        store.compact("notes", &document).expect("compact");
        assert_eq!(fs::metadata(dir.join("notes.log")).expect("log").len(), 0);
        let update = document.set("k", "v");
        store.append("notes", &update).expect("logged");
        let reloaded = store.load("notes", 3).expect("reload");
        assert_eq!(reloaded.text(), "one two three");
        assert_eq!(reloaded.get("k").as_deref(), Some("v"));
        assert_eq!(store.names().expect("names"), ["notes"]);
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn a_torn_last_record_is_cut_off_and_the_rest_kept() {
        // A torn record: 50 bytes announced, 3 there.
        let (store, dir, document) = logged_then("torn", &[0, 0, 0, 50, 1, 2, 3]);
        assert_eq!(store.load("d", 2).expect("reload").text(), "kept");
        let later = document.append(" and more");
        store.append("d", &later).expect("logged after the cut");
        assert_eq!(store.load("d", 3).expect("reload").text(), "kept and more");
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn a_compaction_keeps_what_another_daemon_folded_into_the_snapshot() {
        let (store, dir) = store("twocompactions");
        let a = store.load("notes", 1).expect("new");
        let b = store.load("notes", 2).expect("new");
        let from_b = b.append("from b ");
        store.append("notes", &from_b).expect("logged");
        store
            .compact("notes", &b)
            .expect("b folds its edit into the snapshot");
        // a has not heard of b's edit yet, and compacts too.
        let from_a = a.append("from a");
        store.append("notes", &from_a).expect("logged");
        store.compact("notes", &a).expect("a compacts");
        let text = store.load("notes", 3).expect("reload").text();
        assert!(
            text.contains("from b ") && text.contains("from a"),
            "{text:?}"
        );
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn a_log_with_records_that_do_not_apply_is_kept_aside_before_it_is_compacted() {
        // A whole record that is not an update.
        let (store, dir, _) = logged_then("unreadablerecord", &[0, 0, 0, 3, 0xff, 0xff, 0xff]);
        let loaded = store.load("d", 2).expect("reload");
        assert_eq!(loaded.text(), "kept");
        store.compact("d", &loaded).expect("compact");
        let kept: Vec<_> = fs::read_dir(&dir)
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("d.log.unreadable-")
            })
            .collect();
        assert_eq!(kept.len(), 1);
        assert!(
            fs::read(kept[0].path())
                .expect("read")
                .ends_with(&[0xff, 0xff, 0xff])
        );
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn names_that_are_not_file_names_are_refused() {
        let (store, dir) = store("names");
        for name in ["", "../etc", ".hidden", "a/b", &"x".repeat(65)] {
            assert!(
                matches!(store.load(name, 1), Err(DocumentStoreError::BadName(_))),
                "{name}"
            );
        }
        fs::remove_dir_all(dir).expect("cleanup");
    }
}
