//! Blobs on disk, named by their hash, under a quota.
//!
//! ```text
//! <dir>/blobs/<hash>            a whole blob, never changed once there (0600)
//! <dir>/blobs/<hash>.outline    its parts' chaining values, to serve it without rehashing
//! <dir>/blobs/partial/<hash>.<tag>  one being fetched (parts written where they belong)
//! <dir>/blobs/import/…          one being imported (hashed while copied)
//! ```
//!
//! A blob appears whole or not at all: it is written (or fetched) beside, `fsync`ed and renamed
//! into place. Two daemons of a host may fetch one blob at once: each writes its own partial file
//! (`tag` names the instance) and the first rename wins; the content is the same. Reading a blob
//! touches its modification time, which is what eviction goes by: past the quota, the least
//! recently used blobs go first — never one the caller keeps (the current value, pinned entries)
//! and never one being written.

use std::{
    collections::{BTreeSet, HashMap},
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt},
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use rrt_sync::{
    BlobHash,
    outline::{Outline, OutlineBuilder, PART, part_len},
};

const DIR: &str = "blobs";
const PARTIAL: &str = "partial";
const IMPORT: &str = "import";
const OUTLINE_SUFFIX: &str = ".outline";
/// Partial files untouched this long are left by a daemon that is gone: removed on open.
const ABANDONED: Duration = Duration::from_secs(24 * 3600);

/// Why the blob store failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobStoreError {
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
    /// A blob's bytes are not what its name says (changed on disk): removed.
    #[error("the stored blob {0} is damaged; removed it")]
    Damaged(BlobHash),
    /// A fetched blob some part of which was not written: not made whole.
    #[error("the blob {0} was not written whole; it is not kept")]
    Incomplete(BlobHash),
    /// An import is larger than allowed.
    #[error("{size} bytes is over the limit of {max} bytes")]
    TooLarge {
        /// How many bytes were read before giving up.
        size: u64,
        /// The limit.
        max: u64,
    },
}

/// What an eviction removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evicted {
    /// The blobs removed, oldest use first.
    pub blobs: Vec<(BlobHash, u64)>,
    /// The bytes stored afterwards.
    pub kept_bytes: u64,
}

/// Where a mesh's blobs live.
#[derive(Debug)]
pub struct BlobStore {
    dir: PathBuf,
    tag: String,
    /// Partial files open for writing, by blob.
    writing: HashMap<BlobHash, File>,
    /// Blobs a part of which could not be written: never made whole.
    failed: BTreeSet<BlobHash>,
}

impl BlobStore {
    /// The store under `dir` (created, mode 0700, if missing); `tag` names this instance's
    /// partial files. Partial files abandoned a day ago are removed.
    pub fn open(dir: &Path, tag: &str) -> Result<Self, BlobStoreError> {
        let store = Self {
            dir: dir.join(DIR),
            tag: tag.to_owned(),
            writing: HashMap::new(),
            failed: BTreeSet::new(),
        };
        for sub in [PARTIAL, IMPORT] {
            let path = store.dir.join(sub);
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&path)
                .map_err(io_error("creating", &path))?;
            remove_abandoned(&path);
        }
        Ok(store)
    }

    /// Where a whole blob is (whether or not it is there).
    pub fn path(&self, hash: &BlobHash) -> PathBuf {
        self.dir.join(hash.to_string())
    }

    /// Whether the blob is here, whole.
    pub fn has(&self, hash: &BlobHash) -> bool {
        self.path(hash).is_file()
    }

    /// Marks a blob used now (eviction takes the least recently used first).
    pub fn touch(&self, hash: &BlobHash) {
        if let Ok(file) = File::open(self.path(hash)) {
            let _ = file.set_modified(SystemTime::now());
        }
    }

    /// Copies what `reader` gives into the store, hashing it on the way; at most `max` bytes.
    /// Returns the blob's outline (its hash and size in it).
    pub fn import(&self, mut reader: impl Read, max: u64) -> Result<Outline, BlobStoreError> {
        let dir = self.dir.join(IMPORT);
        // Removed when dropped: an import that fails (too large, unreadable) leaves nothing.
        let mut temp = tempfile::Builder::new()
            .tempfile_in(&dir)
            .map_err(io_error("creating a file in", &dir))?;
        let mut builder = OutlineBuilder::default();
        let mut buffer = vec![0; 256 * 1024];
        let mut size = 0u64;
        loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(BlobStoreError::Io {
                        action: "reading",
                        path: "the imported value".into(),
                        source,
                    });
                }
            };
            size += read as u64;
            if size > max {
                return Err(BlobStoreError::TooLarge { size, max });
            }
            builder.update(&buffer[..read]);
            let path = temp.path().to_owned();
            temp.as_file_mut()
                .write_all(&buffer[..read])
                .map_err(io_error("writing", &path))?;
        }
        let outline = builder.finish();
        let (file, path) = temp
            .keep()
            .map_err(|error| io_error("keeping", &dir)(error.error))?;
        self.finish(&file, &path, &outline)?;
        Ok(outline)
    }

    /// Writes part `index` of the blob being fetched (checked by the caller). After a failed
    /// write the blob cannot be completed ([`BlobStore::complete`] refuses it).
    pub fn write_part(
        &mut self,
        hash: BlobHash,
        size: u64,
        index: u64,
        data: &[u8],
    ) -> Result<(), BlobStoreError> {
        let written = self.write_part_at(hash, size, index, data);
        if written.is_err() {
            self.failed.insert(hash);
        }
        written
    }

    fn write_part_at(
        &mut self,
        hash: BlobHash,
        size: u64,
        index: u64,
        data: &[u8],
    ) -> Result<(), BlobStoreError> {
        let path = self.partial_path(&hash);
        let file = match self.writing.entry(hash) {
            std::collections::hash_map::Entry::Occupied(file) => file.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let file = OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io_error("creating", &path))?;
                file.set_len(size).map_err(io_error("sizing", &path))?;
                slot.insert(file)
            }
        };
        let offset = index
            .checked_mul(PART)
            .ok_or_else(|| io_error("writing", &path)(io::ErrorKind::InvalidInput.into()))?;
        file.write_all_at(data, offset)
            .map_err(io_error("writing", &path))
    }

    /// Every part of a fetched blob is written: it is synced and made whole, with its outline —
    /// unless a part could not be written (the partial file is removed then).
    pub fn complete(&mut self, outline: &Outline) -> Result<(), BlobStoreError> {
        let hash = outline.hash();
        let path = self.partial_path(&hash);
        let file = self.writing.remove(&hash);
        if self.failed.remove(&hash) {
            let _ = fs::remove_file(&path);
            return Err(BlobStoreError::Incomplete(hash));
        }
        // Every blob has at least one part, written (if empty) before it is complete.
        let file = file.ok_or(BlobStoreError::Incomplete(hash))?;
        self.finish(&file, &path, outline)
    }

    /// Forgets a fetch that will not finish: its partial file goes.
    pub fn abandon(&mut self, hash: &BlobHash) {
        self.writing.remove(hash);
        self.failed.remove(hash);
        let _ = fs::remove_file(self.partial_path(hash));
    }

    /// Part `index` of a whole blob, or `None` if the blob is not here.
    pub fn read_part(
        &self,
        hash: &BlobHash,
        index: u64,
    ) -> Result<Option<Vec<u8>>, BlobStoreError> {
        let path = self.path(hash);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io_error("opening", &path)(source)),
        };
        let size = file.metadata().map_err(io_error("reading", &path))?.len();
        // Past the end (an index a peer chose): no bytes.
        let Some(offset) = index.checked_mul(PART).filter(|offset| *offset < size) else {
            return Ok(Some(Vec::new()));
        };
        let mut data = vec![0; part_len(size, index) as usize];
        file.read_exact_at(&mut data, offset)
            .map_err(io_error("reading", &path))?;
        Ok(Some(data))
    }

    /// A whole blob's outline (computed and kept, if its file is missing); `None` if the blob is
    /// not here.
    pub fn outline(&self, hash: &BlobHash) -> Result<Option<Outline>, BlobStoreError> {
        let path = self.path(hash);
        let size = match fs::metadata(&path) {
            Ok(metadata) => metadata.len(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io_error("reading", &path)(source)),
        };
        let outline_path = self.outline_path(hash);
        if let Ok(bytes) = fs::read(&outline_path)
            && let Ok(outline) = Outline::verified(*hash, size, &bytes)
        {
            return Ok(Some(outline));
        }
        let file = File::open(&path).map_err(io_error("opening", &path))?;
        let mut builder = OutlineBuilder::default();
        let mut reader = io::BufReader::with_capacity(256 * 1024, file);
        io::copy(&mut reader, &mut HashWriter(&mut builder)).map_err(io_error("reading", &path))?;
        let outline = builder.finish();
        if outline.hash() != *hash {
            let _ = fs::remove_file(&path);
            return Err(BlobStoreError::Damaged(*hash));
        }
        write_synced(&outline_path, &outline.to_bytes())?;
        Ok(Some(outline))
    }

    /// Removes the least recently used blobs until the store holds at most `quota` bytes, never
    /// one in `keep`.
    pub fn evict(&self, quota: u64, keep: &BTreeSet<BlobHash>) -> Result<Evicted, BlobStoreError> {
        let mut blobs = Vec::new();
        let entries = fs::read_dir(&self.dir).map_err(io_error("listing", &self.dir))?;
        for entry in entries.flatten() {
            let Some(hash) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<BlobHash>().ok())
            else {
                continue;
            };
            if let Ok(metadata) = entry.metadata() {
                let used = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                blobs.push((used, hash, metadata.len()));
            }
        }
        blobs.sort();
        let mut total: u64 = blobs.iter().map(|(_, _, size)| size).sum();
        let mut evicted = Vec::new();
        for (_, hash, size) in blobs {
            if total <= quota {
                break;
            }
            if keep.contains(&hash) {
                continue;
            }
            let path = self.path(&hash);
            fs::remove_file(&path).map_err(io_error("removing", &path))?;
            let _ = fs::remove_file(self.outline_path(&hash));
            total -= size;
            evicted.push((hash, size));
        }
        Ok(Evicted {
            blobs: evicted,
            kept_bytes: total,
        })
    }

    /// How many whole blobs are stored, and their bytes.
    pub fn usage(&self) -> (u64, u64) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return (0, 0);
        };
        entries
            .flatten()
            .filter(|entry| {
                entry
                    .file_name()
                    .to_str()
                    .is_some_and(|name| name.parse::<BlobHash>().is_ok())
            })
            .filter_map(|entry| entry.metadata().ok())
            .fold((0, 0), |(count, bytes), metadata| {
                (count + 1, bytes + metadata.len())
            })
    }

    fn partial_path(&self, hash: &BlobHash) -> PathBuf {
        self.dir.join(PARTIAL).join(format!("{hash}.{}", self.tag))
    }

    fn outline_path(&self, hash: &BlobHash) -> PathBuf {
        self.dir.join(format!("{hash}{OUTLINE_SUFFIX}"))
    }

    /// Syncs a written file at `from` and renames it into place, its outline beside it.
    fn finish(&self, file: &File, from: &Path, outline: &Outline) -> Result<(), BlobStoreError> {
        file.sync_all().map_err(io_error("syncing", from))?;
        write_synced(&self.outline_path(&outline.hash()), &outline.to_bytes())?;
        let path = self.path(&outline.hash());
        fs::rename(from, &path).map_err(io_error("renaming", &path))?;
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error("syncing", &self.dir))
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), BlobStoreError> {
    let mut file = File::create(path).map_err(io_error("creating", path))?;
    file.write_all(bytes).map_err(io_error("writing", path))?;
    file.sync_all().map_err(io_error("syncing", path))
}

fn remove_abandoned(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|metadata| metadata.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > ABANDONED);
        if old {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Feeds what is written to an outline.
struct HashWriter<'a>(&'a mut OutlineBuilder);

impl Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BlobStoreError {
    let path = path.to_owned();
    move |source| BlobStoreError::Io {
        action,
        path,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rrt-blobs-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(13) ^ seed)
            .collect()
    }

    #[test]
    fn an_import_is_stored_under_its_hash_with_its_outline() {
        let store = BlobStore::open(&temp_dir("import"), "a").expect("open");
        let data = bytes(3 * PART as usize + 5, 1);
        let outline = store.import(&data[..], u64::MAX).expect("import");
        assert_eq!(outline.hash(), BlobHash::of(&data));
        assert_eq!(fs::read(store.path(&outline.hash())).expect("read"), data);
        assert_eq!(
            store.outline(&outline.hash()).expect("ok"),
            Some(outline.clone())
        );
        let part = store
            .read_part(&outline.hash(), 3)
            .expect("ok")
            .expect("here");
        assert_eq!(part, &data[3 * PART as usize..]);
        assert_eq!(store.usage(), (1, data.len() as u64));
    }

    #[test]
    fn an_import_over_the_limit_is_refused_and_leaves_nothing() {
        let store = BlobStore::open(&temp_dir("limit"), "a").expect("open");
        let data = bytes(1000, 2);
        assert!(matches!(
            store.import(&data[..], 999),
            Err(BlobStoreError::TooLarge { max: 999, .. })
        ));
        assert_eq!(store.usage(), (0, 0));
        let left = fs::read_dir(store.dir.join(IMPORT)).expect("list").count();
        assert_eq!(left, 0, "no half-imported file is left behind");
    }

    #[test]
    fn parts_written_in_any_order_make_the_whole_blob() {
        let mut store = BlobStore::open(&temp_dir("parts"), "a").expect("open");
        let data = bytes(2 * PART as usize + 9, 3);
        let mut builder = OutlineBuilder::default();
        builder.update(&data);
        let outline = builder.finish();
        let hash = outline.hash();
        for index in [2, 0, 1] {
            let start = (index * PART) as usize;
            let end = (start + PART as usize).min(data.len());
            store
                .write_part(hash, data.len() as u64, index, &data[start..end])
                .expect("write");
        }
        assert!(!store.has(&hash), "not before it is complete");
        store.complete(&outline).expect("complete");
        assert_eq!(fs::read(store.path(&hash)).expect("read"), data);
    }

    #[test]
    fn a_blob_with_a_part_that_failed_to_write_is_never_made_whole() {
        let dir = temp_dir("failed");
        let mut store = BlobStore::open(&dir, "a").expect("open");
        let data = bytes(2 * PART as usize, 5);
        let mut builder = OutlineBuilder::default();
        builder.update(&data);
        let outline = builder.finish();
        let hash = outline.hash();
        store
            .write_part(hash, data.len() as u64, 0, &data[..PART as usize])
            .expect("the first part");
        // The partial file's place is taken away: the second part cannot be written.
        store.writing.remove(&hash);
        let partial = store.partial_path(&hash);
        fs::remove_file(&partial).expect("remove");
        fs::create_dir(&partial).expect("a directory in its place");
        assert!(
            store
                .write_part(hash, data.len() as u64, 1, &data[PART as usize..])
                .is_err()
        );
        assert!(matches!(
            store.complete(&outline),
            Err(BlobStoreError::Incomplete(h)) if h == hash
        ));
        assert!(!store.has(&hash), "nothing with a hole in it is kept");
    }

    #[test]
    fn a_part_far_past_the_end_reads_as_nothing() {
        let store = BlobStore::open(&temp_dir("past"), "a").expect("open");
        let outline = store.import(&bytes(10, 6)[..], u64::MAX).expect("import");
        for index in [1, u64::MAX / 2, u64::MAX] {
            let part = store.read_part(&outline.hash(), index).expect("ok");
            assert_eq!(part, Some(Vec::new()), "part {index}");
        }
    }

    #[test]
    fn eviction_removes_the_least_recently_used_but_never_what_is_kept() {
        let store = BlobStore::open(&temp_dir("evict"), "a").expect("open");
        let hashes: Vec<BlobHash> = (0..4)
            .map(|seed| {
                let outline = store
                    .import(&bytes(1000, seed)[..], u64::MAX)
                    .expect("import");
                let file = File::open(store.path(&outline.hash())).expect("open");
                // Used one after another, the first longest ago.
                file.set_modified(
                    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(seed) + 1),
                )
                .expect("set time");
                outline.hash()
            })
            .collect();
        let keep = BTreeSet::from([hashes[0]]);
        let evicted = store.evict(2000, &keep).expect("evict");
        assert_eq!(evicted.blobs, [(hashes[1], 1000), (hashes[2], 1000)]);
        assert_eq!(evicted.kept_bytes, 2000);
        assert!(store.has(&hashes[0]) && store.has(&hashes[3]));
        assert!(!store.has(&hashes[1]) && !store.has(&hashes[2]));
    }

    #[test]
    fn a_blob_changed_on_disk_is_found_damaged_when_its_outline_is_rebuilt() {
        let store = BlobStore::open(&temp_dir("damaged"), "a").expect("open");
        let outline = store.import(&bytes(5000, 4)[..], u64::MAX).expect("import");
        let hash = outline.hash();
        fs::remove_file(store.outline_path(&hash)).expect("remove the outline");
        fs::write(store.path(&hash), b"changed").expect("overwrite");
        assert!(matches!(store.outline(&hash), Err(BlobStoreError::Damaged(h)) if h == hash));
        assert!(!store.has(&hash));
    }
}
