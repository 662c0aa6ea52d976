//! Files as desktops name them on the clipboard: `text/uri-list` (RFC 2483: `file://` URIs, one
//! per line, `#` comments) and GNOME's `x-special/gnome-copied-files` (`copy` or `cut`, then the
//! URIs), with paths percent-encoded (RFC 3986).

use std::{
    ffi::OsStr,
    os::unix::ffi::{OsStrExt, OsStringExt},
    path::{Path, PathBuf},
};

/// The MIME type of a URI list.
pub(crate) const URI_LIST: &str = "text/uri-list";
/// GNOME's (and Nautilus's, Caja's, Nemo's) type for copied files.
pub(crate) const GNOME_COPIED_FILES: &str = "x-special/gnome-copied-files";

/// The local paths a `text/uri-list` or `x-special/gnome-copied-files` names (other URIs — of
/// other hosts or schemes — are left out).
pub(crate) fn paths(bytes: &[u8]) -> Vec<PathBuf> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter(|line| *line != "copy" && *line != "cut")
        .filter_map(local_path)
        .collect()
}

/// A `file://` URI's path on this host (`file:///p` or `file://localhost/p`).
fn local_path(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    path.starts_with('/')
        .then(|| PathBuf::from(std::ffi::OsString::from_vec(decode(path))))
}

fn decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| {
            bytes
                .get(at)
                .and_then(|b| (*b as char).to_digit(16))
                .map(|d| d as u8)
        };
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                out.push(high << 4 | low);
                i += 3;
            }
            (byte, ..) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// A `file://` URI for a local path, percent-encoding all but unreserved characters and `/`.
pub(crate) fn uri(path: &Path) -> String {
    let mut uri = String::from("file://");
    for &byte in path.as_os_str().as_bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            uri.push(byte as char);
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

/// A `text/uri-list` of `paths`.
pub(crate) fn uri_list(paths: &[PathBuf]) -> String {
    paths.iter().map(|path| uri(path) + "\r\n").collect()
}

/// An `x-special/gnome-copied-files` of `paths`.
pub(crate) fn gnome_copied_files(paths: &[PathBuf]) -> String {
    std::iter::once("copy".to_owned())
        .chain(paths.iter().map(|path| uri(path)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level paths of a file list written under `dir`: its entries without a `/`.
pub(crate) fn top_level(list: &rrt_sync::FileList, dir: &Path) -> Vec<PathBuf> {
    list.files
        .iter()
        .filter(|entry| !entry.path.contains('/'))
        .map(|entry| dir.join(OsStr::new(&entry.path)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uri_list_names_local_paths_and_reads_back() {
        let paths_in = vec![
            PathBuf::from("/home/ann/My Photos/cat #1.png"),
            PathBuf::from("/tmp/é"),
        ];
        let list = uri_list(&paths_in);
        assert_eq!(
            list,
            "file:///home/ann/My%20Photos/cat%20%231.png\r\nfile:///tmp/%C3%A9\r\n"
        );
        assert_eq!(paths(list.as_bytes()), paths_in);
        assert_eq!(paths(gnome_copied_files(&paths_in).as_bytes()), paths_in);
    }

    #[test]
    fn comments_other_hosts_and_schemes_are_left_out() {
        let list = b"# a comment\r\nfile://otherhost/etc/passwd\r\nhttps://example.com/\r\nfile://localhost/tmp/a\r\n";
        assert_eq!(paths(list), [PathBuf::from("/tmp/a")]);
    }
}
