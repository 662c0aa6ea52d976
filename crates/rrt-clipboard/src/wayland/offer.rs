//! What to do with a Wayland selection, from the MIME types its owner offers.

/// The MIME type rrt's own sources offer, so the adapter knows its own selection.
pub(crate) const RRT_SOURCE: &str = "application/x-rrt-source";
/// Marks a password manager's secret (KDE's hint, also set by KeePassXC and others).
pub(crate) const SECRET_HINT: &str = "x-kde-passwordManagerHint";
/// Text types, best first; rrt's sources offer all of them.
pub(crate) const TEXT_TYPES: [&str; 5] = [
    "text/plain;charset=utf-8",
    "UTF8_STRING",
    "text/plain",
    "TEXT",
    "STRING",
];

/// The decision for one selection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Choice<T = String> {
    /// Read it as this type.
    Read(T),
    /// rrt set it: not news.
    Ours,
    /// A secret: never read.
    Secret,
    /// No text in it.
    NoText,
}

impl Choice<&str> {
    /// The same choice, owning its type name.
    pub(crate) fn owned(self) -> Choice {
        match self {
            Self::Read(mime) => Choice::Read(mime.to_owned()),
            Self::Ours => Choice::Ours,
            Self::Secret => Choice::Secret,
            Self::NoText => Choice::NoText,
        }
    }
}

/// What to do with a selection offering `types`.
pub(crate) fn choose(types: &[String]) -> Choice<&str> {
    let offers = |wanted: &str| types.iter().any(|offered| offered == wanted);
    if offers(RRT_SOURCE) {
        return Choice::Ours;
    }
    if offers(SECRET_HINT) {
        return Choice::Secret;
    }
    TEXT_TYPES
        .iter()
        .find_map(|wanted| types.iter().find(|offered| offered == wanted))
        .map_or(Choice::NoText, |offered| Choice::Read(offered.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn utf8_text_is_preferred_and_secrets_and_our_own_are_left() {
        let offered = types(&["text/plain", "text/plain;charset=utf-8", "image/png"]);
        assert_eq!(choose(&offered), Choice::Read("text/plain;charset=utf-8"));
        let secret = types(&["text/plain", SECRET_HINT]);
        assert_eq!(choose(&secret), Choice::Secret);
        let ours = types(&["text/plain", RRT_SOURCE]);
        assert_eq!(choose(&ours), Choice::Ours);
        assert_eq!(choose(&types(&["image/png"])), Choice::NoText);
    }
}
