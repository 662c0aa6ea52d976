//! The clipboard on disk, shared by every daemon of a mesh on the host, written incrementally.
//!
//! ```text
//! <dir>/clipboard/index.json      the history's stamps, where each was copied and whom it is
//!                                 withheld from, and the clock — small, replaced whole
//! <dir>/clipboard/<stamp>.txt     one entry's text, written once, never rewritten
//! <dir>/clipboard/<stamp>.content.json  its other representations (inline bytes in base64,
//!                                 larger ones by hash: their bytes are in the blob store)
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
    collections::{BTreeMap, BTreeSet},
    ffi::OsStr,
    fs::{self, File},
    io,
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use rrt_sync::{ClipEntry, Clipboard, Provenance, Representation, Stamp, Timestamp};

use crate::locked_file::{self, PrivateDir};

const DIR: &str = "clipboard";
const INDEX: &str = "index.json";
const LOCK: &str = "clipboard.lock";
const TEXT_SUFFIX: &str = ".txt";
const CONTENT_SUFFIX: &str = ".content.json";
const FORMAT_VERSION: u32 = 2;
/// The single file of format 1: the whole history, texts included.
const LEGACY_FILE: &str = "clipboard.json";

/// Why the clipboard could not be read from or written to disk.
#[derive(Debug, thiserror::Error)]
pub enum ClipboardStoreError {
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
    /// The entries pinned on this host (absent before pins existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pinned: Vec<Stamp>,
    /// Where entries were copied and whom they are withheld from, for those of which something
    /// is known (absent before either was stored; an older version ignores it). Here rather
    /// than in a file per entry: the index is written and synced for every copy anyway, and
    /// another file would cost a copy another sync.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    about: Vec<About>,
}

/// Where the entry with `stamp` was copied and whom it is withheld from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct About {
    stamp: Stamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provenance: Option<Provenance>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    withheld_from: Vec<String>,
}

impl About {
    /// What is known of `entry`, if anything.
    fn of(entry: &ClipEntry) -> Option<Self> {
        (entry.provenance.is_some() || !entry.withheld_from.is_empty()).then(|| Self {
            stamp: entry.stamp,
            provenance: entry.provenance.clone(),
            withheld_from: entry.withheld_from.clone(),
        })
    }
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
    /// Stamps whose texts are on disk, newest first: as the index lists them, or, when the index
    /// was unreadable, as the texts' names say.
    listed: Vec<Stamp>,
    /// Entries of the one-file format, to be rewritten in this one.
    legacy: Vec<ClipEntry>,
    /// The index was unreadable and `listed` comes from the texts' names: it is to be rewritten.
    rebuilt: bool,
    /// The pinned entries the index lists.
    pinned: Vec<Stamp>,
    /// What the index says of its entries, by stamp.
    about: BTreeMap<Stamp, About>,
}

/// Where a mesh's clipboard lives on disk.
#[derive(Debug, Clone)]
pub struct ClipboardStore {
    dir: PathBuf,
}

impl ClipboardStore {
    /// The store in `dir` (created, mode 0700, if missing).
    pub fn open(dir: &Path) -> Result<Self, ClipboardStoreError> {
        let store = Self {
            dir: dir.to_owned(),
        };
        let texts = store.texts_path();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&texts)
            .map_err(io_error("creating", &texts))?;
        Ok(store)
    }

    /// The file listing the history.
    pub fn path(&self) -> PathBuf {
        self.texts_path().join(INDEX)
    }

    /// Merges what is on disk into `clipboard`. Stamps from beyond the clock's maximum offset,
    /// saved by a version without the bound, are repaired ([`Clipboard::restore`]); a repaired
    /// history, or one in the format of earlier versions, is written back at once.
    pub fn load_into(
        &self,
        clipboard: &mut Clipboard,
        now_ms: u64,
    ) -> Result<(), ClipboardStoreError> {
        let _lock = self.lock()?;
        let texts = self.texts()?;
        let on_disk = self.read(&texts)?;
        let rewrite = !on_disk.legacy.is_empty() || on_disk.rebuilt;
        let listed = on_disk.listed.clone();
        let on_disk_pins = on_disk.pinned.clone();
        let known = on_disk.about.clone();
        let repaired = self.merge(&texts, clipboard, on_disk, now_ms)?;
        if repaired > 0 {
            tracing::warn!(
                repaired,
                path = %self.path().display(),
                "the stored clipboard held stamps from beyond the maximum clock offset; re-stamped them"
            );
        }
        if repaired > 0 || rewrite {
            self.write(&texts, clipboard, &listed, &on_disk_pins, &known)?;
        }
        Ok(())
    }

    /// Writes `clipboard`, merged with what is on disk, durably; `now_ms` is the wall clock,
    /// against which stamps on disk are checked as on load. Only texts not yet on disk are
    /// written.
    pub fn save(&self, clipboard: &Clipboard, now_ms: u64) -> Result<(), ClipboardStoreError> {
        let _lock = self.lock()?;
        let texts = self.texts()?;
        let mut merged = clipboard.clone();
        let on_disk = self.read(&texts)?;
        let listed = on_disk.listed.clone();
        let rewrite = !on_disk.legacy.is_empty() || on_disk.rebuilt;
        // Pins change only by `set_pin`, under the lock: a save keeps those on disk.
        let pins = on_disk.pinned.clone();
        let known = on_disk.about.clone();
        self.merge(&texts, &mut merged, on_disk, now_ms)?;
        // Already on disk (the daemon that copied it, or another of this host, saved it): no
        // write, no sync. Every daemon of a host saves every value it hears of, most of them
        // values another daemon has just saved.
        let unchanged = merged
            .history()
            .iter()
            .map(|entry| &entry.stamp)
            .eq(listed.iter());
        if unchanged && !rewrite {
            return Ok(());
        }
        self.write(&texts, &merged, &listed, &pins, &known)
    }

    /// Pins (or unpins) the entry with `stamp` on this host: a pinned entry is kept whatever its
    /// age, by every daemon of the host (each keeps the pins on disk when it saves).
    pub fn set_pin(&self, stamp: Stamp, pinned: bool) -> Result<(), ClipboardStoreError> {
        let _lock = self.lock()?;
        let texts = self.texts()?;
        let on_disk = self.read(&texts)?;
        let mut pins = on_disk.pinned;
        pins.retain(|pin| *pin != stamp);
        if pinned {
            pins.push(stamp);
        }
        let index = Index {
            version: FORMAT_VERSION,
            clock: on_disk.clock,
            entries: on_disk.listed,
            pinned: pins,
            about: on_disk.about.into_values().collect(),
        };
        texts
            .replace(INDEX, &serde_json::to_vec(&index)?)
            .map_err(io_error("replacing", &self.path()))
    }

    fn texts_path(&self) -> PathBuf {
        self.dir.join(DIR)
    }

    /// The texts' directory, opened without following a link and checked to be ours.
    fn texts(&self) -> Result<PrivateDir, ClipboardStoreError> {
        let path = self.texts_path();
        PrivateDir::open(&path).map_err(io_error("opening", &path))
    }

    fn lock(&self) -> Result<File, ClipboardStoreError> {
        let path = self.dir.join(LOCK);
        locked_file::lock(&path).map_err(io_error("locking", &path))
    }

    /// Merges `on_disk` into `clipboard`, reading the texts it lacks; returns how many stamps
    /// had to be repaired.
    fn merge(
        &self,
        texts: &PrivateDir,
        clipboard: &mut Clipboard,
        on_disk: OnDisk,
        now_ms: u64,
    ) -> Result<usize, ClipboardStoreError> {
        let mut repaired = usize::from(!clipboard.restore_clock(on_disk.clock, now_ms));
        // Before the entries: a pinned one is kept whatever its age.
        clipboard.restore_pins(on_disk.pinned.iter().copied());
        for entry in on_disk.legacy {
            repaired += usize::from(clipboard.restore(entry, now_ms));
        }
        let mut about = on_disk.about;
        for stamp in on_disk.listed {
            // A text is read only if it is missing here and would be kept.
            if clipboard.contains(&stamp) || !clipboard.would_keep(&stamp) {
                continue;
            }
            if let Some(text) = self.read_text(texts, &stamp)? {
                let known = about.remove(&stamp);
                let (provenance, withheld_from) = known
                    .map(|about| (about.provenance, about.withheld_from))
                    .unwrap_or_default();
                let entry = ClipEntry {
                    text: text.into(),
                    content: self.read_content(texts, &stamp)?,
                    stamp,
                    provenance,
                    withheld_from,
                };
                repaired += usize::from(clipboard.restore(entry, now_ms));
            }
        }
        clipboard.forget_stray_pins();
        Ok(repaired)
    }

    /// One entry's text. A missing one, or one that is not text (set aside), is reported and
    /// read as none; any other failure fails the whole read — a text that could not be read now
    /// (out of descriptors, an I/O error) must not be taken for gone and deleted.
    fn read_text(
        &self,
        texts: &PrivateDir,
        stamp: &Stamp,
    ) -> Result<Option<String>, ClipboardStoreError> {
        let name = text_name(stamp);
        let path = texts.path().join(&name);
        match texts.read(&name).map_err(io_error("reading", &path))? {
            Some(bytes) => match String::from_utf8(bytes) {
                Ok(text) => Ok(Some(text)),
                Err(error) => {
                    let aside = texts.set_aside(&name, "damaged");
                    tracing::error!(path = %path.display(), %error, ?aside, "a stored clipboard entry is not text; set it aside");
                    Ok(None)
                }
            },
            None => {
                tracing::error!(path = %path.display(), "a stored clipboard entry is missing; skipping it");
                Ok(None)
            }
        }
    }

    /// One entry's other representations: none when it has no file of them; one that does not
    /// parse is set aside and reported, and the entry keeps its text.
    fn read_content(
        &self,
        texts: &PrivateDir,
        stamp: &Stamp,
    ) -> Result<Vec<Representation>, ClipboardStoreError> {
        let name = content_name(stamp);
        match read_json::<Vec<Representation>>(texts, name.as_ref(), |_| true)? {
            Read::Parsed(content) => Ok(content),
            Read::Missing | Read::SetAside => Ok(Vec::new()),
        }
    }

    /// Writes the texts of `clipboard` the index did not list, then the index naming them all,
    /// then deletes the texts no longer named. The caller holds the lock.
    fn write(
        &self,
        texts: &PrivateDir,
        clipboard: &Clipboard,
        listed: &[Stamp],
        pins: &[Stamp],
        known: &BTreeMap<Stamp, About>,
    ) -> Result<(), ClipboardStoreError> {
        let listed: BTreeSet<&Stamp> = listed.iter().collect();
        for entry in clipboard.history() {
            if !listed.contains(&entry.stamp) {
                let name = text_name(&entry.stamp);
                // The index's replace below syncs the directory for these names too.
                texts
                    .replace_before_index(&name, entry.text.as_bytes())
                    .map_err(io_error("writing", &texts.path().join(&name)))?;
                if !entry.content.is_empty() {
                    let name = content_name(&entry.stamp);
                    texts
                        .replace_before_index(&name, &serde_json::to_vec(&entry.content)?)
                        .map_err(io_error("writing", &texts.path().join(&name)))?;
                }
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
            pinned: pins.to_vec(),
            // What the index said of an entry this memory knows nothing of (it came through an
            // older peer, say) is kept.
            about: clipboard
                .history()
                .iter()
                .filter_map(|entry| About::of(entry).or_else(|| known.get(&entry.stamp).cloned()))
                .collect(),
        };
        texts
            .replace(INDEX, &serde_json::to_vec(&index)?)
            .map_err(io_error("replacing", &self.path()))?;
        self.collect_garbage(texts, &index.entries);
        let legacy = self.dir.join(LEGACY_FILE);
        if legacy.exists() {
            // Its entries are in the new files now.
            fs::remove_file(&legacy).map_err(io_error("removing", &legacy))?;
        }
        Ok(())
    }

    /// Deletes texts no index names (left by entries that fell out of the history).
    fn collect_garbage(&self, texts: &PrivateDir, named: &[Stamp]) {
        let named: BTreeSet<&Stamp> = named.iter().collect();
        let Ok(names) = texts.names() else {
            return;
        };
        for name in names {
            let stamp = parse_text_name(&name).or_else(|| parse_content_name(&name));
            let dropped = stamp.is_some_and(|stamp| !named.contains(&stamp));
            if dropped && let Err(error) = texts.remove(&name) {
                tracing::warn!(?name, %error, "could not delete a dropped clipboard entry");
            }
        }
    }

    /// The index (and a one-file history of an earlier version). An index that is unreadable,
    /// or of a version this one does not read, is set aside, and the texts on disk listed by
    /// their names instead — so the next save neither forgets nor deletes them.
    fn read(&self, texts: &PrivateDir) -> Result<OnDisk, ClipboardStoreError> {
        let mut on_disk = OnDisk {
            clock: Timestamp::default(),
            listed: Vec::new(),
            legacy: Vec::new(),
            rebuilt: false,
            pinned: Vec::new(),
            about: BTreeMap::new(),
        };
        match read_json::<Index>(texts, INDEX.as_ref(), |index| {
            index.version == FORMAT_VERSION
        })? {
            Read::Parsed(index) => {
                on_disk.clock = index.clock;
                on_disk.listed = index.entries;
                on_disk.pinned = index.pinned;
                on_disk.about = index
                    .about
                    .into_iter()
                    .map(|about| (about.stamp, about))
                    .collect();
            }
            Read::Missing => {}
            Read::SetAside => {
                let names = texts.names().map_err(io_error("listing", texts.path()))?;
                on_disk.listed = names
                    .iter()
                    .filter_map(|name| parse_text_name(name))
                    .collect();
                on_disk.listed.sort_by(|a, b| b.cmp(a));
                on_disk.rebuilt = true;
            }
        }
        let parent = PrivateDir::open(&self.dir).map_err(io_error("opening", &self.dir))?;
        if let Read::Parsed(legacy) =
            read_json::<Legacy>(&parent, LEGACY_FILE.as_ref(), |legacy| legacy.version == 1)?
        {
            on_disk.clock = on_disk.clock.max(legacy.clock);
            on_disk.legacy = legacy.entries;
        }
        Ok(on_disk)
    }
}

/// What [`read_json`] found.
enum Read<T> {
    Parsed(T),
    Missing,
    /// It did not parse, or was not a version read here: moved aside.
    SetAside,
}

/// A JSON file in `dir`. One that does not parse, or is not `readable`, is moved aside (never
/// overwritten).
fn read_json<T: for<'de> Deserialize<'de>>(
    dir: &PrivateDir,
    name: &OsStr,
    readable: impl Fn(&T) -> bool,
) -> Result<Read<T>, ClipboardStoreError> {
    let path = dir.path().join(name);
    let Some(bytes) = dir.read(name).map_err(io_error("reading", &path))? else {
        return Ok(Read::Missing);
    };
    match serde_json::from_slice::<T>(&bytes) {
        Ok(parsed) if readable(&parsed) => Ok(Read::Parsed(parsed)),
        parsed => {
            let aside = dir
                .set_aside(name, "unreadable")
                .map_err(io_error("moving aside", &path))?;
            tracing::error!(
                path = %path.display(),
                ?aside,
                reason = ?parsed.err(),
                "the stored clipboard is unreadable; moved it aside"
            );
            Ok(Read::SetAside)
        }
    }
}

/// The file holding the text of the entry with `stamp`: named by the stamp, so two daemons
/// storing one entry write the same file, and an index can be rebuilt from the names.
fn text_name(stamp: &Stamp) -> String {
    format!(
        "{:016x}-{:08x}-{}{TEXT_SUFFIX}",
        stamp.time.wall_ms,
        stamp.time.counter,
        stamp.origin.simple()
    )
}

/// The file holding the other representations of the entry with `stamp`.
fn content_name(stamp: &Stamp) -> String {
    let text = text_name(stamp);
    format!(
        "{}{CONTENT_SUFFIX}",
        &text[..text.len() - TEXT_SUFFIX.len()]
    )
}

/// The stamp a text's file name says, if it is one.
fn parse_text_name(name: &OsStr) -> Option<Stamp> {
    parse_stamp(name.to_str()?.strip_suffix(TEXT_SUFFIX)?)
}

/// The stamp a content file's name says, if it is one.
fn parse_content_name(name: &OsStr) -> Option<Stamp> {
    parse_stamp(name.to_str()?.strip_suffix(CONTENT_SUFFIX)?)
}

fn parse_stamp(name: &str) -> Option<Stamp> {
    let mut parts = name.splitn(3, '-');
    let wall_ms = u64::from_str_radix(parts.next()?, 16).ok()?;
    let counter = u32::from_str_radix(parts.next()?, 16).ok()?;
    let origin = Uuid::try_parse(parts.next()?).ok()?;
    Some(Stamp {
        time: Timestamp { wall_ms, counter },
        origin,
    })
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ClipboardStoreError {
    let path = path.to_owned();
    move |source| ClipboardStoreError::Io {
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
    fn what_an_entry_holds_besides_its_text_is_kept_beside_it_and_dropped_with_it() {
        let dir = temp_dir("content");
        let store = ClipboardStore::open(&dir).expect("open");
        let mut clipboard = Clipboard::new(Uuid::from_u128(1), 1);
        let html = Representation::new("text/html", b"<b>bold</b>", rrt_sync::INLINE_MAX);
        let image = Representation::new("image/png", &[3; 200_000], rrt_sync::INLINE_MAX);
        let copied = rrt_sync::Copied {
            text: "bold".into(),
            content: vec![html, image],
            provenance: Some(Provenance {
                instance: "laptop-1".into(),
                device: Some("laptop".into()),
                device_id: Some("ab".repeat(32)),
                through: "x11".into(),
            }),
        };
        let mut entry = clipboard.stamp(copied, 1_000);
        entry.withheld_from = vec!["cd".repeat(32)];
        clipboard.keep(entry.clone());
        store.save(&clipboard, 1_000).expect("save");
        let mut restarted = Clipboard::new(Uuid::from_u128(1), 1);
        store.load_into(&mut restarted, 1_000).expect("load");
        assert_eq!(
            restarted.current(),
            Some(&entry),
            "representations, provenance and whom it is withheld from"
        );
        // The next copy pushes it out of a history of one: all its files go.
        clipboard.copy("next".into(), 2_000);
        store.save(&clipboard, 2_000).expect("save");
        let left = fs::read_dir(dir.join(DIR)).expect("list").count();
        assert_eq!(left, 2, "the index and the new text");
    }

    #[test]
    fn a_pinned_entry_is_kept_across_a_restart_and_by_every_daemon_until_unpinned() {
        let dir = temp_dir("pins");
        let store = ClipboardStore::open(&dir).expect("open");
        let mut a = Clipboard::new(Uuid::from_u128(1), 2);
        let kept = a.copy("keep".into(), 1_000).expect("new");
        store.save(&a, 1_000).expect("save");
        a.pin(kept.stamp);
        store.set_pin(kept.stamp, true).expect("pin");
        for n in 0..3 {
            a.copy(format!("later {n}").into(), 2_000 + n);
        }
        store.save(&a, 3_000).expect("save");
        // Another daemon of the host, which knows nothing of the pin, saves a newer value.
        let mut b = Clipboard::new(Uuid::from_u128(2), 2);
        b.copy("from b".into(), 4_000);
        store.save(&b, 4_000).expect("save");
        let mut restarted = Clipboard::new(Uuid::from_u128(1), 2);
        store.load_into(&mut restarted, 5_000).expect("load");
        assert_eq!(texts(&restarted), ["from b", "later 2", "keep"]);
        assert!(restarted.pinned().contains(&kept.stamp));
        // Unpinned: b's next save does not put it back, and it ages out.
        store.set_pin(kept.stamp, false).expect("unpin");
        b.copy("again from b".into(), 6_000);
        store.save(&b, 6_000).expect("save");
        let mut again = Clipboard::new(Uuid::from_u128(1), 2);
        store.load_into(&mut again, 7_000).expect("load");
        assert_eq!(texts(&again), ["again from b", "from b"]);
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
            clipboard.copy(format!("{n}{large}").into(), 1_000 + n);
        }
        store.save(&clipboard, 2_000).expect("save");
        let files = |store: &ClipboardStore| -> Vec<(String, u64, i64)> {
            let mut files: Vec<_> = fs::read_dir(store.texts_path())
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
    fn an_unreadable_index_is_moved_aside_and_its_texts_are_kept() {
        let dir = temp_dir("corrupt");
        let store = ClipboardStore::open(&dir).expect("open");
        let mut clipboard = Clipboard::new(Uuid::from_u128(1), 10);
        clipboard.copy("first".into(), 1_000);
        clipboard.copy("second".into(), 2_000);
        store.save(&clipboard, 2_000).expect("save");
        fs::write(store.path(), b"{ not json").expect("garble the index");

        // The history is rebuilt from the texts' names, and a save deletes none of them.
        let mut loaded = Clipboard::new(Uuid::from_u128(2), 10);
        store.load_into(&mut loaded, 2_000).expect("load survives");
        assert_eq!(texts(&loaded), ["second", "first"]);
        assert!(
            fs::read(store.path()).is_ok_and(|index| index.starts_with(b"{\"version\":2")),
            "the index is rebuilt at once"
        );
        store.save(&loaded, 2_000).expect("save");
        let mut again = Clipboard::new(Uuid::from_u128(3), 10);
        store.load_into(&mut again, 2_000).expect("load");
        assert_eq!(texts(&again), ["second", "first"]);
        let aside: Vec<_> = fs::read_dir(store.texts_path())
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains("unreadable"))
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(fs::read(aside[0].path()).expect("read"), b"{ not json");
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn a_text_that_cannot_be_read_now_fails_the_save_and_is_not_deleted() {
        let dir = temp_dir("unreadabletext");
        let store = ClipboardStore::open(&dir).expect("open");
        let mut a = Clipboard::new(Uuid::from_u128(1), 10);
        let from_a = a.copy("from a".into(), 1_000).expect("new");
        store.save(&a, 2_000).expect("save");
        // Another daemon's text, unreadable for now (a directory where a file should be stands
        // for any error other than "missing").
        let path = store.texts_path().join(text_name(&from_a.stamp));
        fs::remove_file(&path).expect("remove");
        fs::create_dir(&path).expect("not a file");
        let mut b = Clipboard::new(Uuid::from_u128(2), 10);
        b.copy("from b".into(), 1_500);
        assert!(
            store.save(&b, 2_000).is_err(),
            "not saved without a's entry"
        );
        fs::remove_dir(&path).expect("readable again");
        fs::write(&path, "from a").expect("text back");
        store.save(&b, 2_000).expect("save");
        let mut loaded = Clipboard::new(Uuid::from_u128(3), 10);
        store.load_into(&mut loaded, 2_000).expect("load");
        assert_eq!(texts(&loaded), ["from b", "from a"]);
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn text_names_carry_their_stamps() {
        let stamp = Stamp {
            time: Timestamp {
                wall_ms: 1_702_834_567_890,
                counter: 7,
            },
            origin: Uuid::from_u128(42),
        };
        assert_eq!(parse_text_name(text_name(&stamp).as_ref()), Some(stamp));
        for other in [
            "index.json",
            "x.txt",
            "0-0-zz.txt",
            "index.json.unreadable-1.2",
        ] {
            assert_eq!(parse_text_name(other.as_ref()), None, "{other}");
        }
    }

    #[test]
    fn a_missing_text_is_skipped_and_the_rest_kept() {
        let dir = temp_dir("missingtext");
        let store = ClipboardStore::open(&dir).expect("open");
        let mut clipboard = Clipboard::new(Uuid::from_u128(1), 10);
        let kept = clipboard.copy("kept".into(), 1_000).expect("new");
        let lost = clipboard.copy("lost".into(), 2_000).expect("new");
        store.save(&clipboard, 2_000).expect("save");
        fs::remove_file(store.texts_path().join(text_name(&lost.stamp))).expect("lose a text");
        let mut loaded = Clipboard::new(Uuid::from_u128(2), 10);
        store.load_into(&mut loaded, 2_000).expect("load");
        assert_eq!(loaded.history(), [kept]);
        fs::remove_dir_all(dir).expect("cleanup");
    }
}
