//! Values read into the blob store to be copied: one representation from a reader, or files and
//! directories as a file list. Blocking; the node runs these on a blocking thread.

use std::{
    fs::{self, File},
    io::Read,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use rrt_store::BlobStore;
use rrt_sync::{
    Copied, FILES, FileEntry, FileList, INLINE_MAX, MAX_FILES, Representation, dimensions,
};

use super::ImportError;

/// Reads one representation of type `mime`, at most `limit` bytes, into the store. A small one
/// is inline; a larger one is announced by hash (with an image's dimensions, if its header says
/// them).
pub(super) fn value(
    store: &BlobStore,
    mime: String,
    reader: impl Read,
    limit: u64,
) -> Result<Representation, ImportError> {
    let outline = store.import(reader, limit)?;
    let path = store.path(&outline.hash());
    let read = |len: u64| -> Result<Vec<u8>, ImportError> {
        let mut bytes = Vec::new();
        File::open(&path)
            .and_then(|file| file.take(len).read_to_end(&mut bytes))
            .map_err(|source| ImportError::Read {
                path: path.clone(),
                source,
            })?;
        Ok(bytes)
    };
    if outline.size() <= INLINE_MAX {
        return Ok(Representation::new(mime, &read(INLINE_MAX)?, INLINE_MAX));
    }
    let mut representation = Representation::blob(mime, outline.hash(), outline.size());
    if let Some((width, height)) = dimensions(&read(32)?) {
        representation.width = Some(width);
        representation.height = Some(height);
    }
    Ok(representation)
}

/// Reads files and directories (what they hold, recursively; symbolic links, FIFOs, devices and
/// sockets are skipped) into
/// the store, at most `limit` bytes in all: a file list, and the paths as text.
pub(super) fn files(
    store: &BlobStore,
    paths: &[PathBuf],
    limit: u64,
) -> Result<Copied, ImportError> {
    let mut list = FileList::default();
    let mut left = limit;
    for path in paths {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| ImportError::NoName(path.clone()))?;
        add(store, path, name.to_owned(), &mut list, &mut left)?;
    }
    let manifest = serde_json::to_vec(&list).map_err(ImportError::Manifest)?;
    let listed = value(store, FILES.to_owned(), &manifest[..], u64::MAX)?;
    let text = paths
        .iter()
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    Ok(Copied {
        text,
        content: vec![listed],
        provenance: None,
    })
}

fn add(
    store: &BlobStore,
    path: &Path,
    relative: String,
    list: &mut FileList,
    left: &mut u64,
) -> Result<(), ImportError> {
    let unreadable = |source: std::io::Error| ImportError::Read {
        path: path.to_owned(),
        source,
    };
    if list.files.len() >= MAX_FILES {
        return Err(ImportError::TooManyFiles { max: MAX_FILES });
    }
    let metadata = fs::symlink_metadata(path).map_err(unreadable)?;
    if metadata.is_symlink() {
        tracing::info!(path = %path.display(), "not copying a symbolic link");
        return Ok(());
    }
    if metadata.is_dir() {
        list.files.push(FileEntry {
            path: relative.clone(),
            dir: true,
            size: 0,
            hash: None,
            executable: false,
        });
        let mut children: Vec<_> = fs::read_dir(path)
            .map_err(unreadable)?
            .filter_map(Result::ok)
            .collect();
        children.sort_by_key(fs::DirEntry::file_name);
        for child in children {
            let Some(name) = child.file_name().to_str().map(str::to_owned) else {
                tracing::warn!(path = %child.path().display(), "skipping a file whose name is not UTF-8");
                continue;
            };
            add(
                store,
                &child.path(),
                format!("{relative}/{name}"),
                list,
                left,
            )?;
        }
        return Ok(());
    }
    if !metadata.is_file() {
        // A FIFO would block the import for good, a device read without end.
        tracing::info!(path = %path.display(), "not copying what is not a regular file");
        return Ok(());
    }
    let file = File::open(path).map_err(unreadable)?;
    let outline = store.import(file, *left)?;
    *left -= outline.size();
    list.files.push(FileEntry {
        path: relative,
        dir: false,
        size: outline.size(),
        hash: Some(outline.hash()),
        executable: metadata.permissions().mode() & 0o111 != 0,
    });
    Ok(())
}
