//! End to end: two daemons, each on its own X server (Xvfb) or Wayland compositor (headless
//! sway), share what users copy there — with `xclip` and `wl-copy` as the users' programs — and
//! leave password managers' secrets alone; and OSC 52 into a terminal (tmux). Not only text:
//! images (large ones fetched from the peer only when a program pastes them), HTML, and files —
//! their contents travel, and the other desktop pastes a local copy.

mod common;

use std::path::{Path, PathBuf};

use common::{
    Lab, fake_png, noise, path_str, sway::Sway, tmux::Tmux, tree, wait_for, wait_until, xvfb::Xvfb,
};

fn start(lab: &mut Lab, name: &str, x: &Xvfb) {
    lab.start_with_env(
        name,
        &["--system-clipboard".into(), "x11".into()],
        &[("DISPLAY", x.display())],
    );
    following(lab, name, "X11");
}

/// Two daemons, `a` following `x_a` and `b` following `x_b`, linked. `b` has a state directory
/// (and so a content store) of its own, as on another host: what it has, it fetched from `a`.
fn two_x_daemons(test: &str, x_a: &Xvfb, x_b: &Xvfb, daemon_args: &[&str]) -> Lab {
    let mut lab = Lab::new(test);
    lab.own_state_dir("b");
    lab.daemon_args(daemon_args);
    start(&mut lab, "a", x_a);
    start(&mut lab, "b", x_b);
    wait_until("a and b to meet", || lab.peers("a").len() == 1);
    lab
}

fn following(lab: &Lab, name: &str, what: &str) {
    let line = format!("following the {what} clipboard");
    wait_until(&format!("{name} to follow its {what} clipboard"), || {
        lab.log(name).contains(&line)
    });
}

fn history(lab: &Lab, name: &str) -> Vec<String> {
    let output = lab.run(name, &["clip", "history", "--json"]);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|entry| entry["text"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn what_is_copied_in_one_x_server_is_pasted_in_the_other_and_back() {
    let (x_a, x_b) = (Xvfb::start(), Xvfb::start());
    let mut lab = Lab::new("x11");
    // a chooses by itself: Wayland first, which is not there, then X11 (as under XWayland).
    lab.start_with_env(
        "a",
        &["--system-clipboard".into(), "auto".into()],
        &[
            ("DISPLAY", x_a.display()),
            ("WAYLAND_DISPLAY", "/nonexistent/wayland-0"),
        ],
    );
    following(&lab, "a", "X11");
    assert!(lab.log("a").contains("falling back to the X11 clipboard"));
    start(&mut lab, "b", &x_b);
    wait_until("a and b to meet", || lab.peers("a").len() == 1);

    x_a.copy("copied in X on a");
    wait_until("b's X clipboard to have it", || {
        x_b.paste().as_deref() == Some("copied in X on a")
    });
    assert_eq!(lab.paste("b").as_deref(), Some("copied in X on a"));

    x_b.copy("and back from b");
    wait_until("a's X clipboard to have it", || {
        x_a.paste().as_deref() == Some("and back from b")
    });

    // A copy made with rrt itself reaches both desktops.
    lab.copy("a", "copied with rrt clip copy");
    for x in [&x_a, &x_b] {
        wait_until("the X clipboards to have it", || {
            x.paste().as_deref() == Some("copied with rrt clip copy")
        });
    }

    // Large values travel in INCR chunks between X programs; they arrive whole.
    let large: String = "0123456789abcdef".repeat(5 * 1024 * 1024 / 16 + 3);
    x_b.copy(&large);
    wait_until("a's X clipboard to have the large value", || {
        x_a.paste().is_some_and(|text| text.len() == large.len())
    });
    assert_eq!(x_a.paste().as_deref(), Some(large.as_str()));

    // The X server restarts (a new desktop session): the adapter reconnects by itself.
    let mut x_b = x_b;
    x_b.restart();
    wait_until("b to copy from the new X server", || {
        x_b.copy("after an X restart");
        lab.paste("a").as_deref() == Some("after an X restart")
    });
    let restarts = &lab.status("b").expect("status")["reactor_restarts"];
    assert!(
        restarts["system_clipboard"].as_u64() >= Some(1),
        "the adapter's restarts are counted: {restarts}"
    );

    // No echo: each value entered each history once, though both daemons set both X servers.
    for name in ["a", "b"] {
        let history = history(&lab, name);
        for value in [
            "copied in X on a",
            "and back from b",
            "copied with rrt clip copy",
        ] {
            assert_eq!(
                history.iter().filter(|entry| *entry == value).count(),
                1,
                "{name}: {history:?}"
            );
        }
    }
}

#[test]
fn a_password_managers_secret_is_not_shared() {
    let (x_a, x_b) = (Xvfb::start(), Xvfb::start());
    let mut lab = Lab::new("x11secret");
    start(&mut lab, "a", &x_a);
    start(&mut lab, "b", &x_b);
    wait_until("a and b to meet", || lab.peers("a").len() == 1);

    // Owned the way a password manager does: the text, marked by the hint target.
    let owner = x_a.own("hunter2".to_owned(), true);
    wait_until("a to see the secret and keep it", || {
        lab.log("a").contains("not shared")
    });
    assert_eq!(
        x_a.paste().as_deref(),
        Some("hunter2"),
        "the desktop still has it"
    );

    x_a.copy("after the secret");
    owner.join().expect("the secret's owner gave way");
    wait_until("b to have the next value", || {
        lab.paste("b").as_deref() == Some("after the secret")
    });
    for name in ["a", "b"] {
        assert!(!history(&lab, name).contains(&"hunter2".to_owned()));
    }
    assert_ne!(x_b.paste().as_deref(), Some("hunter2"));
}

#[test]
fn a_value_copied_in_an_application_never_shared_from_is_not_shared() {
    let (x_a, x_b) = (Xvfb::start(), Xvfb::start());
    let mut lab = Lab::new("x11app");
    lab.start_with_env(
        "a",
        &[
            "--system-clipboard".into(),
            "x11".into(),
            "--never-share-from".into(),
            "keepassxc".into(),
        ],
        &[("DISPLAY", x_a.display())],
    );
    following(&lab, "a", "X11");
    start(&mut lab, "b", &x_b);
    wait_until("a and b to meet", || lab.peers("a").len() == 1);

    let (owner, reads) = x_a.own_as("hunter3".to_owned(), "KeePassXC");
    reads
        .recv_timeout(common::DEADLINE)
        .expect("a reads the application's value");
    x_a.copy("after the application");
    owner.join().expect("the application gave way");
    // a handles the desktop's values in order: the application's was passed over before this.
    wait_until("b to have the next value", || {
        lab.paste("b").as_deref() == Some("after the application")
    });
    for name in ["a", "b"] {
        assert!(
            !history(&lab, name).contains(&"hunter3".to_owned()),
            "{name}"
        );
    }
}

fn start_wayland(lab: &mut Lab, name: &str, sway: &Sway) {
    lab.start_with_env(
        name,
        &["--system-clipboard".into(), "wayland".into()],
        &[("WAYLAND_DISPLAY", path_str(&sway.socket()))],
    );
    following(lab, name, "Wayland");
}

#[test]
fn what_is_copied_in_one_wayland_session_is_pasted_in_the_other_and_back() {
    let (wl_a, wl_b) = (Sway::start("a"), Sway::start("b"));
    let mut lab = Lab::new("wayland");
    start_wayland(&mut lab, "a", &wl_a);
    start_wayland(&mut lab, "b", &wl_b);
    wait_until("a and b to meet", || lab.peers("a").len() == 1);

    wl_a.copy("copied in Wayland on a", None);
    wait_until("b's Wayland clipboard to have it", || {
        wl_b.paste().as_deref() == Some("copied in Wayland on a")
    });
    assert_eq!(lab.paste("b").as_deref(), Some("copied in Wayland on a"));

    wl_b.copy("and back from b ✓", None);
    wait_until("a's Wayland clipboard to have it", || {
        wl_a.paste().as_deref() == Some("and back from b ✓")
    });

    // Copies faster than they travel end with the last one on both sides.
    for copy in 0..30 {
        wl_a.copy(&format!("rapid {copy}"), None);
    }
    wait_until("b to have the last rapid copy", || {
        wl_b.paste().as_deref() == Some("rapid 29")
    });
    assert_eq!(wl_a.paste().as_deref(), Some("rapid 29"));

    // Larger than a pipe's buffer: written as the reader drains it.
    let large: String = "0123456789abcdef".repeat(1024 * 1024 / 16);
    assert!(lab.copy_stdin("a", large.as_bytes()).status.success());
    wait_until("b's Wayland clipboard to have the large value", || {
        wl_b.paste().is_some_and(|text| text.len() == large.len())
    });

    // A value marked as a password manager's secret is never read, let alone shared.
    wl_a.copy("hunter2", Some("x-kde-passwordManagerHint"));
    wait_until("a to see the secret and keep it", || {
        lab.log("a").contains("not shared")
    });
    wl_a.copy("after the secret", None);
    wait_until("b to have the next value", || {
        lab.paste("b").as_deref() == Some("after the secret")
    });
    for name in ["a", "b"] {
        let history = history(&lab, name);
        assert!(!history.contains(&"hunter2".to_owned()));
        for value in [
            "copied in Wayland on a",
            "and back from b ✓",
            "after the secret",
        ] {
            assert_eq!(
                history.iter().filter(|entry| *entry == value).count(),
                1,
                "{name}: each value once, no echo: {history:?}"
            );
        }
    }
}

#[test]
fn rapid_copies_end_with_the_last_value_on_both_desktops() {
    let (x_a, x_b) = (Xvfb::start(), Xvfb::start());
    let mut lab = Lab::new("x11rapid");
    start(&mut lab, "a", &x_a);
    start(&mut lab, "b", &x_b);
    wait_until("a and b to meet", || lab.peers("a").len() == 1);
    // Copies faster than they travel: the daemon must never put an older one back on the
    // desktop it read them from (its own announcements of them are not news).
    for copy in 0..100 {
        x_a.own(format!("rapid {copy}"), false);
    }
    wait_until("b to have the last copy", || {
        x_b.paste().as_deref() == Some("rapid 99")
    });
    assert_eq!(x_a.paste().as_deref(), Some("rapid 99"));
    assert_eq!(lab.paste("a").as_deref(), Some("rapid 99"));

    // A program that owns the clipboard and hangs holds nobody up for long.
    let hung = x_a.own_and_hang();
    x_a.copy("after a hung program");
    hung.join().expect("the hung owner lost the clipboard");
    wait_until("b to have the value after the hung program", || {
        x_b.paste().as_deref() == Some("after a hung program")
    });
}

/// Waits until tmux's newest paste buffer — where tmux puts what a program sets with OSC 52 — is
/// `expected`.
fn tmux_buffer_becomes(tmux: &Tmux, expected: &str) {
    wait_until(&format!("tmux's buffer to be {expected:?}"), || {
        tmux.run(&["show-buffer"]).stdout == expected.as_bytes()
    });
}

#[test]
fn osc52_sets_the_clipboard_of_the_terminal_a_watch_or_a_daemon_runs_in() {
    let mut lab = Lab::new("osc52");
    lab.start("a");
    let rrt = format!(
        "{} --runtime-dir {}",
        env!("CARGO_BIN_EXE_rrt"),
        path_str(&lab.runtime_dir())
    );

    // `rrt clip watch --osc52` in a terminal: the current value, then every new one, lands in
    // that terminal's clipboard.
    lab.copy("a", "the value when the watch starts");
    let watch = Tmux::start("osc52-watch", 80, 10, "sh");
    let clipboard_on = ["set-option", "-g", "set-clipboard", "on"];
    assert!(watch.run(&clipboard_on).status.success());
    watch.type_text(&format!("exec {rrt} --instance a clip watch --osc52"));
    watch.keys(&["Enter"]);
    tmux_buffer_becomes(&watch, "the value when the watch starts");
    lab.copy("a", "to the terminal ✓");
    tmux_buffer_becomes(&watch, "to the terminal ✓");

    // A daemon started in a terminal with --system-clipboard osc52 does the same for mesh values.
    let daemon = Tmux::start("osc52-daemon", 80, 10, "sh");
    assert!(
        daemon
            .run(&["set-option", "-g", "set-clipboard", "on"])
            .status
            .success()
    );
    let state = lab.state_dir().join("b");
    daemon.type_text(&format!(
        "exec {rrt} --instance b daemon --no-mdns --no-tcp --system-clipboard osc52 --state-dir {} 2>/dev/null",
        path_str(&state)
    ));
    daemon.keys(&["Enter"]);
    wait_until("b to join", || lab.peers("a").contains(&"b".to_owned()));
    lab.copy("a", "to the daemon's terminal");
    tmux_buffer_becomes(&daemon, "to the daemon's terminal");
}

/// The current value's types on `name`, as `rrt clip paste --list-types` prints them.
fn types(lab: &Lab, name: &str) -> Vec<String> {
    let output = lab.run(name, &["clip", "paste", "--list-types"]);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// How many blobs `name` has fetched whole from peers since it started.
fn fetched(lab: &Lab, name: &str) -> u64 {
    lab.status(name).expect("status")["blobs"]["fetched"]
        .as_u64()
        .expect("a count of fetched blobs")
}

/// `name`'s blob transfers under way.
fn fetching(lab: &Lab, name: &str) -> usize {
    lab.status(name).expect("status")["blobs"]["fetching"]
        .as_array()
        .map_or(0, Vec::len)
}

/// Whether a paste got `expected`, byte for byte — and if not, what it got instead (without
/// printing megabytes).
fn identical(got: Option<Vec<u8>>, expected: &[u8]) -> Result<(), String> {
    let Some(got) = got else {
        return Err("nothing (not offered, or refused)".to_owned());
    };
    if got == expected {
        return Ok(());
    }
    let differs = got.iter().zip(expected).position(|(a, b)| a != b);
    Err(format!(
        "{} bytes of {}, first differing at {differs:?}",
        got.len(),
        expected.len()
    ))
}

#[test]
fn an_image_copied_in_one_x_server_pastes_identical_in_the_other() {
    let (x_a, x_b) = (Xvfb::start(), Xvfb::start());
    // Up to 6 MiB, fetched as soon as announced; larger, when something pastes it.
    let lab = two_x_daemons("x11image", &x_a, &x_b, &["--eager-max", "6MiB"]);

    let screenshot = fake_png(5_000_000, 1920, 1080, 1);
    x_a.copy_type("image/png", &screenshot);
    // Nobody on b pastes yet: b fetches it by itself.
    wait_until(
        "b to fetch the screenshot as soon as it is announced",
        || fetched(&lab, "b") == 1,
    );
    assert_eq!(types(&lab, "b"), ["image/png\t5000000\t1920x1080"]);
    wait_for("b's X clipboard to paste the screenshot identical", || {
        identical(x_b.paste_type("image/png"), &screenshot)
    });
    let output = lab.run("b", &["clip", "paste", "--type", "image/png"]);
    assert!(output.status.success());
    assert!(
        output.stdout == screenshot,
        "rrt clip paste --type image/png on b"
    );

    // Over the eager cap: announced, not fetched until a program on b's desktop pastes it.
    let large = fake_png(8 << 20, 3840, 2160, 2);
    x_a.copy_type("image/png", &large);
    let listed = format!("image/png\t{}\t3840x2160", large.len());
    wait_until("b to have the large image announced", || {
        types(&lab, "b") == [listed.as_str()]
    });
    assert_eq!(
        (fetched(&lab, "b"), fetching(&lab, "b")),
        (1, 0),
        "not fetched before anyone pastes it"
    );
    wait_for("b's X clipboard to paste the large image identical", || {
        identical(x_b.paste_type("image/png"), &large)
    });
    assert_eq!(fetched(&lab, "b"), 2, "fetched when pasted");
}

#[test]
fn html_copied_in_one_x_server_pastes_identical_in_the_other() {
    let (x_a, x_b) = (Xvfb::start(), Xvfb::start());
    let lab = two_x_daemons("x11html", &x_a, &x_b, &[]);
    let html = "<meta charset=utf-8><p>Hello, <b>wörld</b> ✓</p>".as_bytes();
    x_a.copy_type("text/html", html);
    wait_for("b's X clipboard to paste the HTML identical", || {
        identical(x_b.paste_type("text/html"), html)
    });
    assert_eq!(types(&lab, "b"), [format!("text/html\t{}", html.len())]);
}

#[test]
fn an_image_copied_with_rrt_pastes_identical_on_both_x_desktops() {
    let (x_a, x_b) = (Xvfb::start(), Xvfb::start());
    let lab = two_x_daemons("x11rrtimage", &x_a, &x_b, &[]);
    let image = fake_png(3_000_000, 800, 600, 3);
    let output = lab.run_with_stdin("a", &["clip", "copy", "--type", "image/png"], &image);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for (name, x) in [("a", &x_a), ("b", &x_b)] {
        wait_for(&format!("{name}'s X clipboard to paste the image"), || {
            identical(x.paste_type("image/png"), &image)
        });
    }
}

/// The local paths of a `text/uri-list` (of paths that need no percent-encoding).
fn uri_paths(list: &[u8]) -> Vec<PathBuf> {
    String::from_utf8_lossy(list)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|uri| {
            let path = uri.strip_prefix("file://").expect("a file URI");
            assert!(!path.contains('%'), "an encoded path: {uri}");
            PathBuf::from(path)
        })
        .collect()
}

/// Fails unless the trees under `got` and `expected` hold the same files with the same contents.
fn same_tree(got: &Path, expected: &Path) {
    let (got_files, expected_files) = (tree(got), tree(expected));
    let paths: std::collections::BTreeSet<&PathBuf> =
        got_files.keys().chain(expected_files.keys()).collect();
    let differing: Vec<String> = paths
        .into_iter()
        .filter(|path| got_files.get(*path) != expected_files.get(*path))
        .map(|path| {
            let shape = |entry: Option<&Option<Vec<u8>>>| match entry {
                None => "missing".to_owned(),
                Some(None) => "a directory".to_owned(),
                Some(Some(bytes)) => format!("{} bytes", bytes.len()),
            };
            let (there, here) = (shape(got_files.get(path)), shape(expected_files.get(path)));
            if there == here {
                format!("{}: other bytes", path.display())
            } else {
                format!("{}: {there} there, {here} here", path.display())
            }
        })
        .collect();
    assert!(
        differing.is_empty(),
        "{} is not a copy of {}: {differing:?}",
        got.display(),
        expected.display()
    );
}

#[test]
fn files_copied_in_one_x_server_are_pasted_as_a_copy_of_the_same_tree() {
    let (x_a, x_b) = (Xvfb::start(), Xvfb::start());
    let lab = two_x_daemons("x11files", &x_a, &x_b, &[]);
    let copied = lab.dir("copied");
    let photos = copied.join("photos");
    std::fs::create_dir_all(photos.join("2024")).expect("a directory");
    std::fs::write(photos.join("notes.txt"), "a small file\n").expect("a file");
    std::fs::write(photos.join("2024/trip.bin"), noise(300_000, 4)).expect("a file");

    // As a file manager names what the user copied.
    let list = format!("file://{}\r\n", path_str(&photos));
    x_a.copy_type("text/uri-list", list.as_bytes());
    wait_until("b to hold a file list", || {
        types(&lab, "b")
            .iter()
            .any(|line| line.starts_with(&format!("{}\t", rrt_sync::FILES)))
    });

    let out = lab.dir("pasted-with-rrt");
    let output = lab.run("b", &["clip", "paste", "--to", path_str(&out)]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    same_tree(&out, &copied);

    // b's desktop is offered the files as a URI list: of a copy b wrote, not of a's originals.
    let mut pasted = None;
    wait_until("b's X clipboard to paste a URI list", || {
        pasted = x_b.paste_type("text/uri-list");
        pasted.is_some()
    });
    let paths = uri_paths(&pasted.expect("a URI list"));
    let [copy] = paths.as_slice() else {
        panic!("one top-level entry, not {paths:?}");
    };
    assert!(
        copy.starts_with(lab.state_dir_of("b")) && copy.file_name() == photos.file_name(),
        "a copy under b's state directory: {}",
        copy.display()
    );
    same_tree(copy, &photos);
}

#[test]
fn an_image_copied_in_one_wayland_session_pastes_identical_in_the_other() {
    let (wl_a, wl_b) = (Sway::start("image-a"), Sway::start("image-b"));
    let mut lab = Lab::new("wlimage");
    lab.own_state_dir("b");
    start_wayland(&mut lab, "a", &wl_a);
    start_wayland(&mut lab, "b", &wl_b);
    wait_until("a and b to meet", || lab.peers("a").len() == 1);

    let image = fake_png(3_000_000, 1280, 720, 5);
    wl_a.copy_type("image/png", &image);
    wait_for("b's Wayland clipboard to paste the image identical", || {
        identical(wl_b.paste_type("image/png"), &image)
    });
    let offered = wl_b.list_types();
    assert!(
        offered.iter().any(|mime| mime == "image/png"),
        "{offered:?}"
    );
}
