//! What to read of a value someone copied, and the collecting of it — the same rules for X11 and
//! Wayland, sans IO.
//!
//! [`plan`] picks, from the types the owner offers, the few worth reading: one text type, rich
//! text, lists of files, and one image type (each image type is a conversion the owner makes on
//! request — a screenshot encoded again and again). A [`Collector`] then takes the planned types
//! one at a time, as the adapter's driver receives their bytes (a property, INCR chunks, a
//! pipe), and keeps each whole and valid one within the size cap. One at a time: an owner asked
//! for everything at once would convert everything at once.

use std::{
    collections::hash_map::DefaultHasher,
    hash::{Hash, Hasher},
};

use crate::{Offer, Representation, Source, TEXT};

/// Marks a password manager's secret (KDE's hint, also set by KeePassXC and others): a value
/// offering it is never read.
pub(crate) const SECRET_HINT: &str = "x-kde-passwordManagerHint";

/// The types read as they are, besides text and an image, in the order they are read.
const OTHER_TYPES: [&str; 3] = ["text/html", "text/uri-list", "x-special/gnome-copied-files"];

/// How the bytes of an offered type become a representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// Text in UTF-8: reported as [`TEXT`] when valid, skipped otherwise.
    Utf8,
    /// Text in ISO 8859-1 (X11's `STRING`): reported as [`TEXT`], converted to UTF-8.
    Latin1,
    /// Anything else: reported under the type it was offered as, byte for byte.
    Bytes,
}

/// One type to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Want {
    /// The type as the owner offers it (an X11 target name or a Wayland MIME type).
    pub(crate) offered: String,
    encoding: Encoding,
}

impl Want {
    /// The type the representation is reported as.
    pub(crate) fn mime(&self) -> &str {
        match self.encoding {
            Encoding::Utf8 | Encoding::Latin1 => TEXT,
            Encoding::Bytes => &self.offered,
        }
    }
}

/// What to read of a value offered as `offered`: the first of `text` (the adapter's text types,
/// best first) that is offered, then the other types worth reading that are offered, then
/// `image/png` if offered, else the first other `image/*` type.
pub(crate) fn plan<S: AsRef<str>>(offered: &[S], text: &[(&str, Encoding)]) -> Vec<Want> {
    let offers = |wanted: &str| offered.iter().any(|name| name.as_ref() == wanted);
    let want = |offered: &str, encoding| Want {
        offered: offered.to_owned(),
        encoding,
    };
    let text = text
        .iter()
        .find(|(name, _)| offers(name))
        .map(|&(name, encoding)| want(name, encoding));
    let others = OTHER_TYPES
        .into_iter()
        .filter(|name| offers(name))
        .map(|name| want(name, Encoding::Bytes));
    let image = if offers("image/png") {
        Some("image/png")
    } else {
        offered
            .iter()
            .map(AsRef::as_ref)
            .find(|name| name.starts_with("image/"))
    }
    .map(|name| want(name, Encoding::Bytes));
    text.into_iter().chain(others).chain(image).collect()
}

/// The planned types of one copied value, collected one at a time.
#[derive(Debug)]
pub(crate) struct Collector {
    /// What is left to read, next first.
    pending: std::vec::IntoIter<Want>,
    /// The type being read, and its bytes so far.
    current: Option<(Want, Vec<u8>)>,
    read: Vec<Representation>,
    max: usize,
}

impl Collector {
    /// A collector of `plan`'s types, each up to `max` bytes.
    pub(crate) fn new(plan: Vec<Want>, max: usize) -> Self {
        Self {
            pending: plan.into_iter(),
            current: None,
            read: Vec::new(),
            max,
        }
    }

    /// Starts reading the next type (the one being read, if any, is dropped); `None` once every
    /// type has had its turn.
    pub(crate) fn begin_next(&mut self) -> Option<&Want> {
        self.current = self.pending.next().map(|want| (want, Vec::new()));
        self.current.as_ref().map(|(want, _)| want)
    }

    /// The owner announced `len` bytes to come. False when that is over the cap: the type is
    /// skipped.
    pub(crate) fn expect(&mut self, len: usize) -> bool {
        if len > self.max {
            self.too_large(len);
            return false;
        }
        true
    }

    /// More bytes of the type being read. False when they pass the cap: the type is skipped.
    pub(crate) fn take(&mut self, bytes: &[u8]) -> bool {
        let Some((_, buffer)) = self.current.as_mut() else {
            return false;
        };
        let len = buffer.len().saturating_add(bytes.len());
        if len > self.max {
            self.too_large(len);
            return false;
        }
        buffer.extend_from_slice(bytes);
        true
    }

    /// The type being read is whole: kept, if it is valid and not empty.
    pub(crate) fn complete(&mut self) {
        let Some((want, bytes)) = self.current.take() else {
            return;
        };
        let data = match want.encoding {
            Encoding::Utf8 if std::str::from_utf8(&bytes).is_err() => {
                tracing::warn!(
                    offered = want.offered,
                    "the copied text is not valid UTF-8; not shared"
                );
                return;
            }
            Encoding::Utf8 | Encoding::Bytes => bytes,
            Encoding::Latin1 => bytes
                .iter()
                .map(|&byte| char::from(byte))
                .collect::<String>()
                .into_bytes(),
        };
        if data.is_empty() {
            return;
        }
        self.read.push(Representation {
            mime: want.mime().to_owned(),
            data,
        });
    }

    /// The type being read cannot be had (refused, failed, or given up on).
    pub(crate) fn skip(&mut self) {
        if let Some((want, _)) = self.current.take() {
            tracing::debug!(offered = want.offered, "a copied type could not be read");
        }
    }

    /// What was read so far, taken out.
    pub(crate) fn take_read(&mut self) -> Vec<Representation> {
        std::mem::take(&mut self.read)
    }

    fn too_large(&mut self, len: usize) {
        if let Some((want, _)) = self.current.take() {
            tracing::warn!(
                mime = want.mime(),
                len,
                max = self.max,
                "a copied value is too large to share in this type; skipped"
            );
        }
    }
}

/// A digest of representations, whatever their order, so that a value read again (an owner
/// re-asserting it) is known without keeping a copy.
pub(crate) fn fingerprint<'a>(
    representations: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> u64 {
    let mut sorted: Vec<_> = representations.into_iter().collect();
    sorted.sort_unstable();
    let mut hasher = DefaultHasher::new();
    sorted.hash(&mut hasher);
    hasher.finish()
}

/// The [`fingerprint`] of what a read of these offers would find, as far as they are in memory:
/// a value rrt set, read back from another owner that took it over, is not news.
pub(crate) fn fingerprint_of_offers(offers: &[Offer]) -> u64 {
    let types: Vec<&str> = offers.iter().map(|offer| offer.mime.as_str()).collect();
    let planned = plan(&types, &[(TEXT, Encoding::Utf8)]);
    fingerprint(planned.iter().filter_map(|want| {
        offers
            .iter()
            .find(|offer| offer.mime == want.offered)
            .and_then(|offer| match &offer.source {
                Source::Bytes(bytes) => Some((want.mime(), &bytes[..])),
                Source::File(_) | Source::Later => None,
            })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const X11_TEXT: [(&str, Encoding); 2] = [
        ("UTF8_STRING", Encoding::Utf8),
        ("STRING", Encoding::Latin1),
    ];

    fn offered(plan: &[Want]) -> Vec<&str> {
        plan.iter().map(|want| want.offered.as_str()).collect()
    }

    #[test]
    fn the_plan_is_text_first_then_rich_types_then_one_image() {
        let types = [
            "image/bmp",
            "STRING",
            "image/png",
            "text/html",
            "image/jpeg",
            "UTF8_STRING",
            "x-special/gnome-copied-files",
            "application/x-foo",
            "text/uri-list",
        ];
        let plan = plan(&types, &X11_TEXT);
        assert_eq!(
            offered(&plan),
            [
                "UTF8_STRING",
                "text/html",
                "text/uri-list",
                "x-special/gnome-copied-files",
                "image/png"
            ]
        );
        assert_eq!(plan[0].mime(), TEXT);
        assert_eq!(plan[4].mime(), "image/png");
    }

    #[test]
    fn without_png_the_first_image_type_is_read_and_nothing_is_nothing() {
        let plan_of = |types: &[&str]| offered(&plan(types, &X11_TEXT)).join(" ");
        assert_eq!(
            plan_of(&["image/jpeg", "image/bmp", "STRING"]),
            "STRING image/jpeg"
        );
        assert_eq!(plan_of(&["application/x-foo", "TARGETS"]), "");
    }

    fn collector(types: &[&str], max: usize) -> Collector {
        Collector::new(plan(types, &X11_TEXT), max)
    }

    #[test]
    fn every_type_is_read_in_turn_and_reported_under_its_mime() {
        let mut collector = collector(&["image/png", "STRING", "text/html"], 100);
        assert_eq!(collector.begin_next().map(Want::mime), Some(TEXT));
        assert!(collector.take(&[0x63, 0x61, 0x66, 0xe9]));
        collector.complete();
        assert_eq!(collector.begin_next().map(Want::mime), Some("text/html"));
        assert!(collector.take(b"<b>caf"));
        assert!(collector.take("é</b>".as_bytes()));
        collector.complete();
        assert_eq!(collector.begin_next().map(Want::mime), Some("image/png"));
        assert!(collector.take(b"\x89PNG"));
        collector.complete();
        assert_eq!(collector.begin_next(), None);
        let read = collector.take_read();
        let expected = [
            (TEXT, "café".as_bytes()),
            ("text/html", "<b>café</b>".as_bytes()),
            ("image/png", b"\x89PNG".as_slice()),
        ];
        let read: Vec<_> = read
            .iter()
            .map(|r| (r.mime.as_str(), &r.data[..]))
            .collect();
        assert_eq!(read, expected);
    }

    #[test]
    fn a_type_over_the_cap_is_skipped_and_the_others_still_read() {
        let mut collector = collector(&["UTF8_STRING", "text/html", "image/png"], 4);
        collector.begin_next();
        assert!(collector.take(b"hi"));
        collector.complete();
        collector.begin_next();
        assert!(!collector.expect(5), "announced over the cap");
        assert!(!collector.take(b"1"), "skipped");
        collector.begin_next();
        assert!(collector.take(b"1234"));
        assert!(!collector.take(b"5"), "grew over the cap");
        assert!(!collector.take(b""), "skipped");
        assert_eq!(collector.begin_next(), None);
        assert_eq!(
            collector.take_read(),
            [Representation {
                mime: TEXT.to_owned(),
                data: b"hi".to_vec()
            }]
        );
    }

    #[test]
    fn invalid_utf8_and_empty_values_are_not_reported() {
        let mut collector = collector(&["UTF8_STRING", "text/html"], 100);
        collector.begin_next();
        collector.take(b"caf\xe9");
        collector.complete();
        collector.begin_next();
        collector.complete();
        assert!(collector.take_read().is_empty());
    }

    #[test]
    fn a_fingerprint_ignores_order_and_sees_every_byte() {
        let html = ("text/html", b"<b>x</b>".as_slice());
        let text = (TEXT, b"x".as_slice());
        assert_eq!(fingerprint([html, text]), fingerprint([text, html]));
        assert_ne!(fingerprint([html, text]), fingerprint([html, (TEXT, b"y")]));
        assert_ne!(fingerprint([html]), fingerprint([html, text]));
    }

    #[test]
    fn offers_fingerprint_as_the_representations_read_from_them() {
        let offer = |mime: &str, source| Offer {
            mime: mime.to_owned(),
            source,
        };
        let bytes = |data: &[u8]| Source::Bytes(data.into());
        let offers = [
            offer("image/png", bytes(b"png")),
            offer("image/jpeg", bytes(b"jpeg")),
            offer("text/html", Source::Later),
            offer(TEXT, bytes(b"x")),
        ];
        assert_eq!(
            fingerprint_of_offers(&offers),
            fingerprint([(TEXT, b"x".as_slice()), ("image/png", b"png")])
        );
    }
}
