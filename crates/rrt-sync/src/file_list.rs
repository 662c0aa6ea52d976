//! Copied files as a representation: a manifest ([`FILES`](crate::FILES)) of relative paths,
//! sizes and hashes, whose files' bytes are blobs of their own — so a directory of many files
//! travels as one small value and each file is fetched, verified and stored like any blob.
//!
//! ```json
//! {"files":[{"path":"photos","dir":true},{"path":"photos/cat.png","size":5120,"hash":"…"}]}
//! ```
//!
//! A manifest from a peer names paths this host will write under a directory the user chose, so
//! [`FileList::parse`] refuses any path that could leave it (absolute, `..`, empty components,
//! backslashes, control characters) and bounds the list.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::content::BlobHash;

/// The most files (and directories) in one manifest taken from a peer.
pub const MAX_FILES: usize = 100_000;
/// The longest path in a manifest, in bytes.
pub const MAX_PATH: usize = 4096;

/// Copied files and directories.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileList {
    /// Directories before what they hold.
    pub files: Vec<FileEntry>,
}

/// One file or directory of a [`FileList`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Where it goes, relative, `/`-separated.
    pub path: String,
    /// A directory (no bytes).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dir: bool,
    /// A file's size (omitted when 0, as for a directory).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    /// A file's hash (absent for a directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<BlobHash>,
    /// Whether the file is executable.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub executable: bool,
}

/// Why a manifest from a peer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileListError {
    /// Not a manifest.
    #[error("not a file list: {0}")]
    Parse(String),
    /// More entries than [`MAX_FILES`].
    #[error("{0} files (at most {MAX_FILES})")]
    TooMany(usize),
    /// A path that could leave the directory it is written to.
    #[error("a path that is absolute, climbs out, or is not plain: {0:?}")]
    UnsafePath(String),
    /// A file without a hash.
    #[error("a file without a hash: {0:?}")]
    NoHash(String),
}

impl FileList {
    /// A manifest a peer sent, checked.
    pub fn parse(bytes: &[u8]) -> Result<Self, FileListError> {
        let list: Self = serde_json::from_slice(bytes)
            .map_err(|error| FileListError::Parse(error.to_string()))?;
        if list.files.len() > MAX_FILES {
            return Err(FileListError::TooMany(list.files.len()));
        }
        for entry in &list.files {
            if !is_safe(&entry.path) {
                return Err(FileListError::UnsafePath(entry.path.clone()));
            }
            if !entry.dir && entry.hash.is_none() {
                return Err(FileListError::NoHash(entry.path.clone()));
            }
        }
        Ok(list)
    }

    /// The bytes of every file together (`None` past `u64::MAX`: a peer's sizes are its word).
    pub fn total_size(&self) -> Option<u64> {
        self.files
            .iter()
            .try_fold(0u64, |total, entry| total.checked_add(entry.size))
    }
}

impl FileEntry {
    /// Where it goes under `dir` (the path was checked by [`FileList::parse`]).
    pub fn under(&self, dir: &Path) -> PathBuf {
        dir.join(&self.path)
    }
}

fn is_zero(size: &u64) -> bool {
    *size == 0
}

/// A relative path of plain components only.
fn is_safe(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= MAX_PATH
        && !path.contains('\\')
        && !path.chars().any(char::is_control)
        && path.split('/').all(|part| !part.is_empty())
        && Path::new(path)
            .components()
            .all(|component| matches!(component, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(paths: &[&str]) -> Vec<u8> {
        let files = paths
            .iter()
            .map(|path| FileEntry {
                path: (*path).to_owned(),
                dir: false,
                size: 1,
                hash: Some(BlobHash([0; 32])),
                executable: false,
            })
            .collect();
        serde_json::to_vec(&FileList { files }).expect("serializes")
    }

    #[test]
    fn plain_relative_paths_are_taken() {
        let parsed = FileList::parse(&list(&["a.txt", "photos/cat.png"])).expect("safe");
        assert_eq!(parsed.files.len(), 2);
        assert_eq!(parsed.total_size(), Some(2));
    }

    #[test]
    fn a_path_that_could_leave_the_directory_is_refused() {
        for path in [
            "/etc/passwd",
            "../up",
            "a/../../b",
            "a//b",
            "",
            "./a",
            "a\\b",
            "a\nb",
        ] {
            assert!(
                matches!(
                    FileList::parse(&list(&[path])),
                    Err(FileListError::UnsafePath(_))
                ),
                "{path:?}"
            );
        }
    }

    #[test]
    fn a_file_without_a_hash_or_garbage_is_refused() {
        let no_hash = br#"{"files":[{"path":"a","size":3}]}"#;
        assert!(matches!(
            FileList::parse(no_hash),
            Err(FileListError::NoHash(_))
        ));
        assert!(matches!(
            FileList::parse(b"nope"),
            Err(FileListError::Parse(_))
        ));
    }
}
