//! The Wayland adapter against a real compositor (headless sway, wlr data-control), with
//! wl-clipboard's `wl-copy` and `wl-paste` as the user's programs: what they copy is read whole
//! in every type worth reading, and what rrt sets is served to them — from memory, from a file, or
//! asked for when pasted.
//!
//! One test: the adapter finds the compositor through `WAYLAND_DISPLAY`, which this process sets
//! once, before any adapter runs.

mod common;

use std::{io::Write, sync::Arc, time::Duration};

use common::{Adapter, payload, sway::Sway, wait_until};
use rrt_clipboard::{
    ClipboardCommand, Offer, ReadLimits, Representation, Source, TEXT, WaylandClipboard,
};

const MIB: usize = 1024 * 1024;

/// Much less than the 30 s a paste waits for a `Later` value before it is refused anyway.
const REFUSED_AT_ONCE: Duration = Duration::from_secs(10);

fn offer(mime: &str, source: Source) -> Offer {
    Offer {
        mime: mime.to_owned(),
        source,
    }
}

fn bytes(data: &[u8]) -> Source {
    Source::Bytes(Arc::from(data))
}

/// Waits until a program pasting text gets `text`: the adapter owns the clipboard.
fn wait_for_text(sway: &Sway, text: &str) {
    wait_until(&format!("the clipboard to hold {text:?}"), || {
        let pasted = sway.paste(None);
        pasted.status.success() && pasted.stdout == text.as_bytes()
    });
}

#[test]
fn the_wayland_clipboard_reads_and_serves_every_kind_of_content() {
    common::log();
    let sway = Sway::start("content");
    // SAFETY: the only test of this binary sets it before any thread of its own (the adapter's)
    // runs, and the harness reads no environment meanwhile.
    unsafe { std::env::set_var("WAYLAND_DISPLAY", sway.socket()) };
    let mut adapter =
        Adapter::start(|registry| WaylandClipboard::new(registry, ReadLimits::default()));

    // Copied: an image, byte for byte.
    let png = payload(6 * MIB, 11);
    sway.copy("image/png", png.clone());
    let read = adapter.copied("the copied image");
    assert_eq!(read.len(), 1, "only the image is offered");
    assert_eq!(read[0].mime, "image/png");
    assert!(read[0].data == png, "the image arrives byte for byte");
    sway.copy("text/plain;charset=utf-8", "plain ✓".as_bytes().to_vec());
    assert_eq!(
        adapter.copied("the copied text"),
        [Representation {
            mime: TEXT.to_owned(),
            data: "plain ✓".as_bytes().to_vec()
        }]
    );

    // Set: every type listed, each served byte for byte.
    let png = payload(6 * MIB, 12);
    adapter.send(ClipboardCommand::Set(vec![
        offer("image/png", bytes(&png)),
        offer(TEXT, bytes(b"hi")),
    ]));
    wait_for_text(&sway, "hi");
    let types = sway.types();
    for expected in [
        "image/png",
        TEXT,
        "text/plain",
        "UTF8_STRING",
        "STRING",
        "TEXT",
    ] {
        assert!(
            types.iter().any(|t| t == expected),
            "{expected} in {types:?}"
        );
    }
    let pasted = sway.paste(Some("image/png"));
    assert!(pasted.status.success());
    assert!(pasted.stdout == png, "the image is pasted byte for byte");
    assert!(
        adapter.pending().is_empty(),
        "a value set is not reported back"
    );

    // A file, to several programs at once.
    let data = payload(50 * MIB, 13);
    let mut file = tempfile::NamedTempFile::new().expect("a file");
    file.write_all(&data).expect("write");
    adapter.send(ClipboardCommand::Set(vec![
        offer(
            "application/octet-stream",
            Source::File(file.path().to_owned()),
        ),
        offer(TEXT, bytes(b"file")),
    ]));
    wait_for_text(&sway, "file");
    let pastes: Vec<_> = (0..3)
        .map(|_| sway.start_paste("application/octet-stream"))
        .collect();
    for paste in pastes {
        let pasted = paste.finish();
        assert!(pasted.status.success());
        assert!(pasted.stdout == data, "the file is pasted byte for byte");
    }

    // Later: asked for when pasted, the paste waiting meanwhile without holding others up.
    let png = payload(3 * MIB, 14);
    adapter.send(ClipboardCommand::Set(vec![
        offer("image/png", Source::Later),
        offer(TEXT, bytes(b"later")),
    ]));
    wait_for_text(&sway, "later");
    let mut waiting = sway.start_paste("image/png");
    let (request, mime) = adapter.wanted("the request for the image");
    assert_eq!(mime, "image/png");
    wait_for_text(&sway, "later");
    assert!(!waiting.ended(), "the paste waits for the value");
    adapter.send(ClipboardCommand::Provide {
        request,
        source: Some(bytes(&png)),
    });
    let pasted = waiting.finish();
    assert!(pasted.status.success());
    assert!(
        pasted.stdout == png,
        "the provided image is pasted byte for byte"
    );

    // Refused: the paste ends empty at once.
    adapter.send(ClipboardCommand::Set(vec![
        offer("image/png", Source::Later),
        offer(TEXT, bytes(b"refused")),
    ]));
    wait_for_text(&sway, "refused");
    let refused = sway.start_paste("image/png");
    let (request, _) = adapter.wanted("the request for the new image");
    adapter.send(ClipboardCommand::Provide {
        request,
        source: None,
    });
    // (Well before the adapter would give up on the request by itself.)
    let refused = refused.finish_within(REFUSED_AT_ONCE);
    assert!(refused.stdout.is_empty());
}
