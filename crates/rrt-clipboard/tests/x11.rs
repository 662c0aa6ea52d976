//! The X11 adapter against a real X server (Xvfb), with `xclip` as the user's programs: what
//! they copy is read whole in every type worth reading, and what rrt sets is served to them —
//! from memory, from a file, or asked for when pasted — whole or by INCR.

mod common;

use std::{io::Write, sync::Arc, time::Duration};

use common::{
    Adapter, DEADLINE, payload, wait_until,
    xvfb::{self, Xvfb},
};
use rrt_clipboard::{
    ClipboardCommand, Offer, ReadLimits, Representation, Source, TEXT, X11Clipboard,
};

const MIB: usize = 1024 * 1024;

/// Much less than the 30 s a paste waits for a `Later` value before it is refused anyway.
const REFUSED_AT_ONCE: Duration = Duration::from_secs(10);

fn adapter(x: &Xvfb) -> Adapter<X11Clipboard> {
    common::log();
    let display = x.display().to_owned();
    Adapter::start(move |registry| {
        X11Clipboard::new(registry, Some(&display), ReadLimits::default())
    })
}

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
fn wait_for_text(x: &Xvfb, text: &str) {
    wait_until(&format!("the clipboard to hold {text:?}"), || {
        let pasted = x.paste("UTF8_STRING");
        pasted.status.success() && pasted.stdout == text.as_bytes()
    });
}

#[test]
fn an_image_copied_with_xclip_is_read_whole_and_so_is_html() {
    let x = Xvfb::start();
    let mut adapter = adapter(&x);

    // Larger than one request of the server: xclip sends it by INCR.
    let png = payload(6 * MIB, 1);
    x.copy("image/png", png.clone());
    let read = adapter.copied("the copied image");
    assert_eq!(read.len(), 1, "only the image is offered");
    assert_eq!(read[0].mime, "image/png");
    assert!(read[0].data == png, "the image arrives byte for byte");

    x.copy("text/html", b"<b>bold</b>".to_vec());
    assert_eq!(
        adapter.copied("the copied html"),
        [Representation {
            mime: "text/html".to_owned(),
            data: b"<b>bold</b>".to_vec()
        }]
    );

    x.copy("UTF8_STRING", "plain ✓".as_bytes().to_vec());
    assert_eq!(
        adapter.copied("the copied text"),
        [Representation {
            mime: TEXT.to_owned(),
            data: "plain ✓".as_bytes().to_vec()
        }]
    );
}

#[test]
fn of_a_value_offered_in_many_types_text_rich_types_and_one_image_are_read_within_the_limit() {
    let x = Xvfb::start();
    let mut everything = adapter(&x);
    let display = x.display().to_owned();
    let mut limited = Adapter::start(move |registry| {
        X11Clipboard::new(registry, Some(&display), ReadLimits { max_bytes: 1000 })
    });
    let png = payload(2000, 2);
    let _owner = xvfb::Client::connect(&x).own(vec![
        ("image/jpeg", b"jpeg".to_vec()),
        ("application/x-private", b"private".to_vec()),
        ("image/png", png.clone()),
        ("text/uri-list", b"file:///tmp/a".to_vec()),
        ("UTF8_STRING", b"hi".to_vec()),
        ("text/html", b"<b>hi</b>".to_vec()),
    ]);
    let representation = |mime: &str, data: &[u8]| Representation {
        mime: mime.to_owned(),
        data: data.to_vec(),
    };
    let text_and_rich = [
        representation(TEXT, b"hi"),
        representation("text/html", b"<b>hi</b>"),
        representation("text/uri-list", b"file:///tmp/a"),
    ];
    assert_eq!(
        everything.copied("the value in every type worth reading"),
        [&text_and_rich[..], &[representation("image/png", &png)]].concat(),
        "text first, one image type: PNG"
    );
    assert_eq!(
        limited.copied("the value without the image over the limit"),
        text_and_rich
    );
}

#[test]
fn set_values_are_served_whole_and_by_incr_under_every_offered_type() {
    let x = Xvfb::start();
    let adapter = adapter(&x);
    let png = payload(6 * MIB, 3);
    adapter.send(ClipboardCommand::Set(vec![
        offer("image/png", bytes(&png)),
        offer(TEXT, bytes(b"hi")),
    ]));
    wait_for_text(&x, "hi");

    let pasted = x.paste("image/png");
    assert!(pasted.status.success());
    assert!(pasted.stdout == png, "the image is pasted byte for byte");
    let client = xvfb::Client::connect(&x);
    assert_eq!(client.answer_type("image/png").as_deref(), Some("INCR"));
    assert_eq!(
        client.answer_type("TEXT").as_deref(),
        Some("UTF8_STRING"),
        "small values go whole"
    );

    let targets = x.paste("TARGETS");
    let targets = String::from_utf8_lossy(&targets.stdout);
    let targets: Vec<&str> = targets.lines().collect();
    for expected in [
        "TARGETS",
        "image/png",
        "UTF8_STRING",
        "STRING",
        "TEXT",
        TEXT,
    ] {
        assert!(targets.contains(&expected), "{expected} in {targets:?}");
    }
    assert!(x.paste("text/html").stdout.is_empty(), "not offered");
    assert_eq!(x.paste("STRING").stdout, b"hi");
}

#[test]
fn a_file_is_served_in_chunks_to_several_programs_at_once() {
    let x = Xvfb::start();
    let adapter = adapter(&x);
    let data = payload(50 * MIB, 4);
    let mut file = tempfile::NamedTempFile::new().expect("a file");
    file.write_all(&data).expect("write");
    adapter.send(ClipboardCommand::Set(vec![
        offer(
            "application/octet-stream",
            Source::File(file.path().to_owned()),
        ),
        offer(TEXT, bytes(b"file")),
    ]));
    wait_for_text(&x, "file");

    let pastes: Vec<_> = (0..3)
        .map(|_| x.start_paste("application/octet-stream"))
        .collect();
    for paste in pastes {
        let pasted = paste.finish();
        assert!(pasted.status.success());
        assert!(pasted.stdout == data, "the file is pasted byte for byte");
    }
}

#[test]
fn a_later_value_is_asked_for_when_pasted_and_a_refusal_fails_the_paste() {
    let x = Xvfb::start();
    let mut adapter = adapter(&x);
    let png = payload(3 * MIB, 5);
    adapter.send(ClipboardCommand::Set(vec![
        offer("image/png", Source::Later),
        offer(TEXT, bytes(b"later")),
    ]));
    wait_for_text(&x, "later");

    let mut waiting = x.start_paste("image/png");
    let (request, mime) = adapter.wanted("the request for the image");
    assert_eq!(mime, "image/png");
    // The adapter is not held up by the paste that waits.
    wait_for_text(&x, "later");
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
    let again = x.paste("image/png");
    assert!(
        again.stdout == png,
        "what was provided serves the next paste"
    );
    assert!(adapter.pending().is_empty(), "without asking again");

    adapter.send(ClipboardCommand::Set(vec![offer(
        "image/png",
        Source::Later,
    )]));
    wait_until("the new value to be served", || {
        x.paste("UTF8_STRING").stdout.is_empty()
    });
    let refused = x.start_paste("image/png");
    let (request, _) = adapter.wanted("the request for the new image");
    adapter.send(ClipboardCommand::Provide {
        request,
        source: None,
    });
    // (Well before the adapter would give up on the request by itself.)
    let refused = refused.finish_within(REFUSED_AT_ONCE);
    assert!(!refused.status.success(), "the paste fails at once");
    assert!(refused.stdout.is_empty());

    // A new value refuses the pastes still waiting for the old one.
    let waiting = x.start_paste("image/png");
    adapter.wanted("the request for the image again");
    adapter.send(ClipboardCommand::Set(vec![offer(TEXT, bytes(b"newer"))]));
    let refused = waiting.finish_within(REFUSED_AT_ONCE);
    assert!(!refused.status.success(), "refused when the value changed");
    wait_for_text(&x, "newer");
}

#[test]
fn a_password_managers_secret_is_not_read() {
    let x = Xvfb::start();
    let mut adapter = adapter(&x);
    let (client, watcher) = (xvfb::Client::connect(&x), xvfb::Client::connect(&x));
    let asked = client.own(vec![
        ("UTF8_STRING", b"hunter2".to_vec()),
        ("image/png", b"png".to_vec()),
        ("x-kde-passwordManagerHint", b"secret".to_vec()),
    ]);
    let targets = watcher.atom("TARGETS");
    assert_eq!(
        asked.recv_timeout(DEADLINE),
        Ok(targets),
        "the targets are asked first"
    );
    // Whatever the adapter asks next comes at once, before this next copy takes over.
    x.copy("UTF8_STRING", b"after the secret".to_vec());
    assert_eq!(
        adapter.copied("the value after the secret"),
        [Representation {
            mime: TEXT.to_owned(),
            data: b"after the secret".to_vec()
        }],
        "had the secret been read, it would come first"
    );
    let asked: Vec<_> = asked.try_iter().collect();
    assert!(
        asked.is_empty(),
        "only the targets were asked of the secret's owner: {asked:?}"
    );
}

#[test]
fn a_value_says_which_application_copied_it() {
    let x = Xvfb::start();
    let mut adapter = adapter(&x);
    let client = xvfb::Client::connect(&x).named("keepassxc", "KeePassXC");
    let _asked = client.own(vec![("UTF8_STRING", b"from an app".to_vec())]);
    let (read, application) = adapter.copied_in("the app's value");
    assert_eq!(read[0].data, b"from an app");
    assert_eq!(application.as_deref(), Some("KeePassXC"));
    // xclip names no application.
    x.copy("UTF8_STRING", b"from xclip".to_vec());
    let (read, application) = adapter.copied_in("xclip's value");
    assert_eq!(read[0].data, b"from xclip");
    assert_eq!(application, None);
}
