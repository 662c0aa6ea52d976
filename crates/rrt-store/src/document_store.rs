//! Documents on disk: per document an append-only log of updates, `fsync`ed before an edit is
//! acknowledged, and a snapshot that the log is folded into now and then (compaction).
//!
//! ```text
//! <dir>/<name>.snapshot   generation 0, whole (one yrs update), replaced by rename
//! <dir>/<name>.log        records of generation 0: u32 BE length, update bytes — appended, fsynced
//! <dir>/<name>.lineage    once the document has moved past generation 0: every generation
//!                         held, whole with its header, the current one first (an encoded
//!                         `LineageMessage::Lineage`), replaced by rename
//! <dir>/<name>.log+N-S    records of generation (N, S), as generation 0's
//! ```
//!
//! A document's generations ([`Lineage`]) are stored whole when it moves to a new one; files of
//! generations it no longer keeps are removed then, so a document that stays small in memory
//! stays small on disk. Storing a lineage merges what other daemons sharing the directory stored
//! of the same generations first, and never replaces a lineage whose current generation is newer
//! than the one stored (that daemon moved further; this one moves when it hears of it).
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

use rrt_sync::{
    DocError, Document, EraUpdate, Generation, Lineage, LineageMessage, merge_updates, valid_name,
};

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
    /// What is stored of a generation does not merge.
    #[error("{0}: {1}")]
    Damaged(PathBuf, DocError),
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
                    .or_else(|| file.strip_suffix(".log"))
                    .or_else(|| file.strip_suffix(".lineage"))?;
                valid_name(name).then(|| name.to_owned())
            })
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The document `name` as stored (empty if new), edited from now on by `replica`.
    pub fn load(&self, name: &str, replica: u64) -> Result<Lineage, DocumentStoreError> {
        let _lock = self.lock(name)?;
        let Some(mut lineage) = self.read_lineage(name, replica)? else {
            return Ok(Lineage::with_document(
                replica,
                self.load_generation_zero(name, replica)?,
            ));
        };
        let held: Vec<Generation> = std::iter::once(lineage.generation())
            .chain(lineage.retired().map(|(generation, _)| generation))
            .collect();
        for generation in held {
            let Some(document) = lineage.of(generation) else {
                continue;
            };
            if generation == Generation::default() {
                // Daemons still on generation 0 may have stored more of it since.
                if let Ok(snapshot) = fs::read(self.path(name, "snapshot")) {
                    let _ = document.apply(&snapshot);
                }
            }
            self.apply_log(name, generation, document)?;
        }
        // A kept generation's document was just merged into: read back as stored.
        lineage = Lineage::from_stored(replica, lineage.stored())
            .map_err(|error| DocumentStoreError::Damaged(self.path(name, "lineage"), error))?;
        Ok(lineage)
    }

    /// Generation 0 as stored before generations existed: its snapshot and its log.
    fn load_generation_zero(
        &self,
        name: &str,
        replica: u64,
    ) -> Result<Document, DocumentStoreError> {
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
        self.apply_log(name, Generation::default(), &document)?;
        Ok(document)
    }

    /// Applies the log of `generation` to `document`; a log with records that do not apply is
    /// kept aside first.
    fn apply_log(
        &self,
        name: &str,
        generation: Generation,
        document: &Document,
    ) -> Result<(), DocumentStoreError> {
        let extension = log_extension(generation);
        let mut unreadable = 0;
        for update in self.read_log(name, &extension)? {
            if let Err(error) = document.apply(&update) {
                tracing::warn!(document = name, %error, "skipping an unreadable logged update");
                unreadable += 1;
            }
        }
        if unreadable > 0 {
            // The next compaction empties the log: keep it as it is first.
            self.keep_aside(name, &extension, "unreadable")?;
        }
        Ok(())
    }

    /// The stored lineage of `name`, if it has moved past generation 0. One that does not
    /// decode is moved aside (the document starts from generation 0's files, if any, and peers
    /// bring it forward).
    fn read_lineage(
        &self,
        name: &str,
        replica: u64,
    ) -> Result<Option<Lineage>, DocumentStoreError> {
        let path = self.path(name, "lineage");
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error(&path)(error)),
        };
        let decoded = LineageMessage::decode(&bytes).and_then(|message| match message {
            LineageMessage::Lineage(eras) => Lineage::from_stored(replica, eras),
            _ => Err(DocError::Malformed("not a lineage".to_owned())),
        });
        match decoded {
            Ok(lineage) => Ok(Some(lineage)),
            Err(error) => {
                let aside = locked_file::set_aside(&path, "damaged").map_err(io_error(&path))?;
                tracing::error!(
                    document = name,
                    %error,
                    aside = %aside.display(),
                    "the document's lineage is damaged; moved it aside (peers bring the document back)"
                );
                Ok(None)
            }
        }
    }

    /// Stores `lineage` whole, as the document's generations: merged first with what is stored
    /// of the same generations (by other daemons sharing the directory), unless the stored
    /// lineage is already on a newer generation. The logs it holds are emptied, and the files of
    /// generations it no longer keeps removed.
    ///
    /// `eras` is the lineage as [`Lineage::stored`] gives it (the current generation first).
    pub fn store_lineage(
        &self,
        name: &str,
        mut eras: Vec<EraUpdate>,
    ) -> Result<(), DocumentStoreError> {
        let _lock = self.lock(name)?;
        let mut logs = Vec::new();
        let stored = self.read_lineage(name, 0)?.map(|stored| stored.stored());
        if let Some(stored) = &stored
            && stored.first().map(|era| era.generation) > eras.first().map(|era| era.generation)
        {
            return Ok(());
        }
        for era in &mut eras {
            let mut parts = vec![std::mem::take(&mut era.update)];
            if let Some(copy) = stored
                .iter()
                .flatten()
                .find(|copy| copy.generation == era.generation)
            {
                parts.push(copy.update.clone());
            }
            if era.generation == Generation::default()
                && let Ok(snapshot) = fs::read(self.path(name, "snapshot"))
            {
                parts.push(snapshot);
            }
            let extension = log_extension(era.generation);
            parts.extend(self.read_log(name, &extension)?);
            logs.push(extension);
            era.update = merge_updates(&parts).unwrap_or_else(|error| {
                tracing::warn!(document = name, %error, "could not merge what is stored of a generation; keeping this replica's copy");
                parts.swap_remove(0)
            });
        }
        let path = self.path(name, "lineage");
        locked_file::replace(&path, &LineageMessage::Lineage(eras).encode())
            .map_err(io_error(&path))?;
        for extension in &logs {
            self.empty(name, extension)?;
        }
        self.remove_other_generations(name, &logs)
    }

    /// Removes generation 0's snapshot, and the files of generations not among `kept` (their
    /// log extensions).
    fn remove_other_generations(
        &self,
        name: &str,
        kept: &[String],
    ) -> Result<(), DocumentStoreError> {
        // Generation 0's snapshot is in the lineage now, if it is kept at all.
        let mut doomed = vec![self.path(name, "snapshot")];
        if !kept.iter().any(|extension| extension == "log") {
            doomed.push(self.path(name, "log"));
        }
        let prefix = format!("{name}.log+");
        for entry in fs::read_dir(&self.dir)
            .map_err(io_error(&self.dir))?
            .flatten()
        {
            let file = entry.file_name().to_string_lossy().into_owned();
            if let Some(generation) = file.strip_prefix(&prefix)
                && !kept
                    .iter()
                    .any(|extension| extension.strip_prefix("log+") == Some(generation))
            {
                doomed.push(entry.path());
            }
        }
        for path in doomed {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(io_error(&path)(error)),
            }
        }
        Ok(())
    }

    /// Empties the log `<name>.<extension>`, durably.
    fn empty(&self, name: &str, extension: &str) -> Result<(), DocumentStoreError> {
        let log = self.path(name, extension);
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

    /// Appends `update` to the log of `name`, durably; folds the log into a new snapshot when it
    /// grows long. The snapshot is of what is stored (snapshot and log), not of a document in
    /// memory, which may hold edits not stored yet (and perhaps never).
    pub fn append(&self, name: &str, update: &EraUpdate) -> Result<(), DocumentStoreError> {
        self.append_all(name, update.generation, &[&update.update])
    }

    /// Appends `updates` of `generation` to the log of `name`, in order, with one flush to the
    /// disk for all of them (a burst of keystrokes costs one `fdatasync`, not one each): all are
    /// stored, or none.
    pub fn append_all(
        &self,
        name: &str,
        generation: Generation,
        updates: &[&[u8]],
    ) -> Result<(), DocumentStoreError> {
        let _lock = self.lock(name)?;
        let path = self.path(name, &log_extension(generation));
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
            && let Err(error) = self.fold_locked(name, generation)
        {
            tracing::warn!(document = name, %error, "could not compact the log; it stays as it is");
        }
        Ok(())
    }

    /// Folds the log of `generation` into what is stored of it: generation 0's snapshot, or
    /// the lineage — if it still holds that generation (else the log stays as it is).
    fn fold_locked(&self, name: &str, generation: Generation) -> Result<(), DocumentStoreError> {
        if generation == Generation::default() && !self.path(name, "lineage").exists() {
            return self.compact_locked(name, &Document::new(0));
        }
        let Some(stored) = self.read_lineage(name, 0)? else {
            return Ok(());
        };
        let extension = log_extension(generation);
        let mut eras = stored.stored();
        let Some(era) = eras.iter_mut().find(|era| era.generation == generation) else {
            return Ok(());
        };
        let mut parts = vec![std::mem::take(&mut era.update)];
        parts.extend(self.read_log(name, &extension)?);
        era.update = merge_updates(&parts)
            .map_err(|error| DocumentStoreError::Damaged(self.path(name, &extension), error))?;
        let path = self.path(name, "lineage");
        locked_file::replace(&path, &LineageMessage::Lineage(eras).encode())
            .map_err(io_error(&path))?;
        self.empty(name, &extension)
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
        for update in self.read_log(name, "log")? {
            let _ = document.apply(&update);
        }
        locked_file::replace(&snapshot, &document.snapshot()).map_err(io_error(&snapshot))?;
        self.empty(name, "log")
    }

    /// The whole records of a log, cutting off a torn last one.
    fn read_log(&self, name: &str, extension: &str) -> Result<Vec<Vec<u8>>, DocumentStoreError> {
        let path = self.path(name, extension);
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
                .and_then(|dir| dir.keep_aside(format!("{name}.{extension}"), "cut", rest));
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

/// The extension of the log of `generation`'s updates: `log` for generation 0 (as before
/// generations existed), `log+<number>-<starter>` for a later one.
fn log_extension(generation: Generation) -> String {
    if generation == Generation::default() {
        "log".to_owned()
    } else {
        format!("log+{}-{}", generation.number, generation.starter)
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> DocumentStoreError {
    let path = path.to_owned();
    move |source| DocumentStoreError::Io { path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `update` as an update of generation 0.
    fn zero(update: Vec<u8>) -> EraUpdate {
        EraUpdate {
            generation: Generation::default(),
            update,
            header: None,
        }
    }

    fn store(test: &str) -> (DocumentStore, PathBuf) {
        let dir = std::env::temp_dir().join(format!("rrt-docs-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        (DocumentStore::open(&dir).expect("open"), dir)
    }

    /// A store whose log of `d` holds the record of "kept", then `extra` bytes.
    fn logged_then(test: &str, extra: &[u8]) -> (DocumentStore, PathBuf, Document) {
        let (store, dir) = store(test);
        let document = Document::new(1);
        let update = document.append("kept");
        store.append("d", &zero(update)).expect("logged");
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
        let document = Document::new(1);
        for word in ["one ", "two ", "three"] {
            let update = document.append(word);
            store.append("notes", &zero(update)).expect("logged");
        }
        assert_eq!(
            store.load("notes", 2).expect("reload").document().text(),
            "one two three"
        );
        store.compact("notes", &document).expect("compact");
        assert_eq!(fs::metadata(dir.join("notes.log")).expect("log").len(), 0);
        let update = document.set("k", "v");
        store.append("notes", &zero(update)).expect("logged");
        let reloaded = store.load("notes", 3).expect("reload");
        assert_eq!(reloaded.document().text(), "one two three");
        assert_eq!(reloaded.document().get("k").as_deref(), Some("v"));
        assert_eq!(store.names().expect("names"), ["notes"]);
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn a_torn_last_record_is_cut_off_and_the_rest_kept() {
        // A torn record: 50 bytes announced, 3 there.
        let (store, dir, document) = logged_then("torn", &[0, 0, 0, 50, 1, 2, 3]);
        assert_eq!(
            store.load("d", 2).expect("reload").document().text(),
            "kept"
        );
        let later = document.append(" and more");
        store
            .append("d", &zero(later))
            .expect("logged after the cut");
        assert_eq!(
            store.load("d", 3).expect("reload").document().text(),
            "kept and more"
        );
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn a_compaction_keeps_what_another_daemon_folded_into_the_snapshot() {
        let (store, dir) = store("twocompactions");
        let a = Document::new(1);
        let b = Document::new(2);
        let from_b = b.append("from b ");
        store.append("notes", &zero(from_b)).expect("logged");
        store
            .compact("notes", &b)
            .expect("b folds its edit into the snapshot");
        // a has not heard of b's edit yet, and compacts too.
        let from_a = a.append("from a");
        store.append("notes", &zero(from_a)).expect("logged");
        store.compact("notes", &a).expect("a compacts");
        let text = store.load("notes", 3).expect("reload").document().text();
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
        assert_eq!(loaded.document().text(), "kept");
        store.compact("d", loaded.document()).expect("compact");
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

    /// A lineage of `notes` moved to generation 1 (started by replica 1 after a few edits),
    /// stored.
    fn moved(test: &str) -> (DocumentStore, PathBuf, Lineage) {
        let (store, dir) = store(test);
        let mut lineage = Lineage::new(1);
        let kept = lineage.edit(|d| d.append("kept\n"));
        store.append("notes", &kept).expect("logged");
        for _ in 0..50 {
            let typed = lineage.edit(|d| d.insert(0, "x"));
            let deleted = lineage.edit(|d| d.delete(0, 1));
            store
                .append_all(
                    "notes",
                    Generation::default(),
                    &[&typed.update, &deleted.update],
                )
                .expect("logged");
        }
        lineage.start();
        store
            .store_lineage("notes", lineage.stored())
            .expect("stored");
        (store, dir, lineage)
    }

    #[test]
    fn a_moved_document_is_stored_whole_and_its_old_generation_removed() {
        let (store, dir, lineage) = moved("moved");
        assert!(!dir.join("notes.snapshot").exists());
        assert_eq!(
            fs::metadata(dir.join("notes.log")).map_or(0, |log| log.len()),
            0
        );
        assert!(
            lineage.retired().count() == 1,
            "generation 0 is kept, inside the lineage file"
        );
        let reloaded = store.load("notes", 2).expect("reload");
        assert_eq!(reloaded.generation(), lineage.generation());
        assert_eq!(reloaded.document().text(), "kept\n");
        assert_eq!(reloaded.retired().count(), 1);
        // Edits of the new generation go to its own log, and survive a restart.
        let mut reloaded = reloaded;
        let more = reloaded.edit(|d| d.append("more"));
        store.append("notes", &more).expect("logged");
        assert!(dir.join("notes.log+1-1").exists());
        assert_eq!(
            store.load("notes", 3).expect("reload").document().text(),
            "kept\nmore"
        );
        assert_eq!(store.names().expect("names"), ["notes"]);
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn a_long_log_of_a_later_generation_folds_into_the_lineage() {
        let (store, dir, mut lineage) = moved("fold");
        let big = lineage.edit(|d| d.append(&"y".repeat(1_100_000)));
        store.append("notes", &big).expect("logged");
        assert_eq!(
            fs::metadata(dir.join("notes.log+1-1")).expect("log").len(),
            0
        );
        let reloaded = store.load("notes", 2).expect("reload");
        assert_eq!(reloaded.document().len(), "kept\n".len() + 1_100_000);
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn an_older_lineage_never_replaces_a_newer_one() {
        let (store, dir, lineage) = moved("older");
        let behind = Lineage::new(2);
        store
            .store_lineage("notes", behind.stored())
            .expect("nothing to do");
        let reloaded = store.load("notes", 3).expect("reload");
        assert_eq!(reloaded.generation(), lineage.generation());
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
