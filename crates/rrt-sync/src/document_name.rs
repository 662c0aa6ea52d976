//! Which names a document may have. A name travels in sync messages and names the document's
//! files on every peer, so the rule is the protocol's (a peer's operation on a name outside it is
//! refused) and not only the store's: a name is a plain file name, never a path, never hidden.

/// Whether `name` can name a document: 1 to 64 ASCII letters, digits, `.`, `_` or `-`, not
/// starting with `.`.
///
/// ```
/// assert!(rrt_sync::valid_name("notes-2026.md"));
/// assert!(!rrt_sync::valid_name("../etc/passwd"));
/// assert!(!rrt_sync::valid_name(".hidden"));
/// ```
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
}
