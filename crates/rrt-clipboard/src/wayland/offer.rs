//! What to do with a Wayland selection, from the MIME types its owner offers, and which of ours
//! answers a paste.

use crate::{
    Offer, TEXT,
    read::{Encoding, SECRET_HINT, Want, plan},
};

/// The MIME type rrt's own sources offer, so the adapter knows its own selection.
pub(crate) const RRT_SOURCE: &str = "application/x-rrt-source";
/// Text types, best first; rrt's sources offer all of them for text. All are UTF-8 on Wayland
/// (X11's `STRING` and `TEXT` come through XWayland converted).
pub(crate) const TEXT_TYPES: [&str; 5] = [TEXT, "UTF8_STRING", "text/plain", "TEXT", "STRING"];

/// The decision for one selection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Choice {
    /// Read these types, in turn.
    Read(Vec<Want>),
    /// rrt set it: not news.
    Ours,
    /// A secret: never read.
    Secret,
    /// Nothing worth reading in it.
    Nothing,
}

/// What to do with a selection offering `types`.
pub(crate) fn choose(types: &[String]) -> Choice {
    let offers = |wanted: &str| types.iter().any(|offered| offered == wanted);
    if offers(RRT_SOURCE) {
        return Choice::Ours;
    }
    if offers(SECRET_HINT) {
        return Choice::Secret;
    }
    let text = TEXT_TYPES.map(|name| (name, Encoding::Utf8));
    let planned = plan(types, &text);
    if planned.is_empty() {
        Choice::Nothing
    } else {
        Choice::Read(planned)
    }
}

/// The types a source of `offers` offers: each offer's, text's other names, and [`RRT_SOURCE`].
pub(crate) fn offered_types(offers: &[Offer]) -> Vec<&str> {
    let mut types = Vec::new();
    for offer in offers {
        let names = if offer.mime == TEXT {
            TEXT_TYPES.to_vec()
        } else {
            vec![offer.mime.as_str()]
        };
        for name in names {
            if !types.contains(&name) {
                types.push(name);
            }
        }
    }
    types.push(RRT_SOURCE);
    types
}

/// The offer that answers a paste of `mime`.
pub(crate) fn answering<'a>(offers: &'a [Offer], mime: &str) -> Option<&'a Offer> {
    offers.iter().find(|offer| offer.mime == mime).or_else(|| {
        TEXT_TYPES
            .contains(&mime)
            .then(|| offers.iter().find(|offer| offer.mime == TEXT))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Source;

    fn types(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    fn read(choice: Choice) -> Vec<(String, String)> {
        match choice {
            Choice::Read(wants) => wants
                .iter()
                .map(|want| (want.offered.clone(), want.mime().to_owned()))
                .collect(),
            other => panic!("expected a read, got {other:?}"),
        }
    }

    #[test]
    fn utf8_text_then_the_rest_and_secrets_and_our_own_are_left() {
        let offered = types(&["text/plain", "image/jpeg", TEXT, "image/png", "text/html"]);
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect()
        };
        assert_eq!(
            read(choose(&offered)),
            pairs(&[
                (TEXT, TEXT),
                ("text/html", "text/html"),
                ("image/png", "image/png")
            ])
        );
        assert_eq!(
            read(choose(&types(&["STRING", "image/bmp"]))),
            pairs(&[("STRING", TEXT), ("image/bmp", "image/bmp")])
        );
        let secret = types(&["text/plain", SECRET_HINT]);
        assert_eq!(choose(&secret), Choice::Secret);
        let ours = types(&["text/plain", RRT_SOURCE]);
        assert_eq!(choose(&ours), Choice::Ours);
        assert_eq!(choose(&types(&["application/x-foo"])), Choice::Nothing);
    }

    #[test]
    fn text_is_offered_and_answered_under_all_its_names() {
        let offer = |mime: &str| Offer {
            mime: mime.to_owned(),
            source: Source::Later,
        };
        let offers = [offer("image/png"), offer(TEXT), offer("text/html")];
        assert_eq!(
            offered_types(&offers),
            [
                "image/png",
                TEXT,
                "UTF8_STRING",
                "text/plain",
                "TEXT",
                "STRING",
                "text/html",
                RRT_SOURCE
            ]
        );
        let mime_of = |asked| answering(&offers, asked).map(|offer| offer.mime.as_str());
        assert_eq!(mime_of("STRING"), Some(TEXT));
        assert_eq!(mime_of("image/png"), Some("image/png"));
        assert_eq!(mime_of("image/jpeg"), None);
        let no_text = [offer("image/png")];
        assert!(answering(&no_text, "text/plain").is_none());
    }
}
