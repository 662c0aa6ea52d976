//! Writing a copied file list somewhere on this host — `rrt clip paste --to DIR`, or the daemon's
//! `pasted/` for a desktop that pastes files — without leaving the directory: the list's paths
//! are checked plain and relative (`rrt_sync::FileList::parse`), no component on the way may be
//! a symbolic link (one placed there would carry a write anywhere), and a file is created new,
//! never written over one that is there.

use std::{
    fs::{self, File, OpenOptions},
    io,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use rrt_sync::FileEntry;

/// Creates the directory of `entry` under `dir`.
pub(crate) fn create_dir(dir: &Path, entry: &FileEntry) -> io::Result<PathBuf> {
    let path = checked(dir, entry)?;
    match fs::create_dir(&path) {
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists && !is_link(&path) => {}
        other => other?,
    }
    Ok(path)
}

/// Creates the file of `entry` under `dir`, new (its directories must exist), with the mode its
/// entry says.
pub(crate) fn create_file(dir: &Path, entry: &FileEntry) -> io::Result<(File, PathBuf)> {
    let path = checked(dir, entry)?;
    let mode = if entry.executable { 0o755 } else { 0o644 };
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&path)?;
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    Ok((file, path))
}

/// Where `entry` goes under `dir`, refusing a path through a symbolic link below `dir`.
fn checked(dir: &Path, entry: &FileEntry) -> io::Result<PathBuf> {
    let path = entry.under(dir);
    let mut at = dir.to_owned();
    for component in Path::new(&entry.path).components() {
        at.push(component);
        if is_link(&at) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is a symbolic link; not writing through it",
                    at.display()
                ),
            ));
        }
    }
    Ok(path)
}

fn is_link(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|metadata| metadata.file_type().is_symlink())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, dir: bool) -> FileEntry {
        FileEntry {
            path: path.to_owned(),
            dir,
            size: 0,
            hash: None,
            executable: false,
        }
    }

    #[test]
    fn files_are_created_new_and_never_through_a_link() {
        let root = tempfile::tempdir().expect("a directory");
        let dir = root.path();
        create_dir(dir, &entry("photos", true)).expect("a directory");
        let (_, path) = create_file(dir, &entry("photos/cat.png", false)).expect("a file");
        assert!(path.is_file());
        assert_eq!(
            create_file(dir, &entry("photos/cat.png", false))
                .expect_err("there already")
                .kind(),
            io::ErrorKind::AlreadyExists
        );
        let elsewhere = tempfile::tempdir().expect("another directory");
        std::os::unix::fs::symlink(elsewhere.path(), dir.join("docs")).expect("a link");
        assert!(create_file(dir, &entry("docs/passwd", false)).is_err());
        assert!(create_dir(dir, &entry("docs", true)).is_err());
        assert_eq!(fs::read_dir(elsewhere.path()).expect("list").count(), 0);
    }
}
