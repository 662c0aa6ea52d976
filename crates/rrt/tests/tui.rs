//! End to end: `rrt tui` in a real terminal (tmux), driven with send-keys and read with
//! capture-pane, next to a second daemon that copies and edits.

mod common;

use common::{Lab, path_str, tmux::Tmux, wait_until};

fn notes(lab: &Lab, name: &str) -> String {
    document(lab, name, "notes")
}

fn document(lab: &Lab, name: &str, document: &str) -> String {
    String::from_utf8_lossy(&lab.run(name, &["scratch", "cat", document]).stdout).into_owned()
}

#[test]
fn the_tui_shows_peers_and_copies_and_edits_a_shared_document() {
    let mut lab = Lab::new("tui");
    lab.start_all(&["a", "b"]);
    let command = format!(
        "{} --runtime-dir {} --instance a tui --scratch notes",
        env!("CARGO_BIN_EXE_rrt"),
        path_str(&lab.runtime_dir())
    );
    let tmux = Tmux::start("tui", 100, 30, &command);
    tmux.shows("the peers pane", "Peers of a (1 up, 2 members)");
    assert!(tmux.screen().contains("Clipboard history"));
    assert!(tmux.screen().contains("Scratch: notes"));

    // A copy made elsewhere appears in the history pane.
    lab.copy("b", "copied on b");
    tmux.shows("b's copy", "> copied on b");

    // Typing in the scratch pane reaches the other instance, and its edits come back merged.
    tmux.keys(&["Tab"]);
    tmux.type_text("typed in the tui");
    wait_until("b to have what was typed", || {
        notes(&lab, "b") == "typed in the tui"
    });
    let output = lab.run("b", &["scratch", "append", "notes", "\nappended on b"]);
    assert!(output.status.success());
    tmux.shows("b's line", "appended on b");
    tmux.type_text("!");
    wait_until("the typing to land after b's line", || {
        notes(&lab, "b") == "typed in the tui\nappended on b!"
    });
    tmux.keys(&["BSpace", "BSpace"]);
    wait_until("backspace to delete", || {
        notes(&lab, "b") == "typed in the tui\nappended on "
    });

    // Shift and a movement select; Ctrl-C copies the selection to the shared clipboard.
    tmux.keys(&["S-Home", "C-c"]);
    wait_until("b to paste the selection", || {
        lab.paste("b").as_deref() == Some("appended on ")
    });

    // Ctrl-O: another document, named as you type.
    tmux.keys(&["C-o"]);
    tmux.shows("the documents picker", "Open a document");
    tmux.type_text("todo");
    tmux.keys(&["Enter"]);
    tmux.shows("the new document's pane", "Scratch: todo");
    tmux.type_text("milk");
    wait_until("b to have the new document", || {
        document(&lab, "b", "todo") == "milk"
    });

    // Selecting an older entry and pressing Enter copies it again, everywhere.
    lab.copy("b", "copied later");
    tmux.shows("the later copy", "> copied later");
    // (Esc alone: a terminal cannot tell Esc followed at once by a key from an escape sequence.)
    tmux.keys(&["Escape"]);
    tmux.shows("the history pane focused", "Tab: scratch");
    tmux.keys(&["Down", "Down", "Enter"]);
    wait_until("b to paste the entry copied again", || {
        lab.paste("b").as_deref() == Some("copied on b")
    });

    // A smaller terminal: everything redrawn to fit.
    assert!(
        tmux.run(&["resize-window", "-t", "tui", "-x", "60", "-y", "16"])
            .status
            .success()
    );
    wait_until("a redraw at 60 columns", || {
        let screen = tmux.screen();
        screen
            .lines()
            .next()
            .is_some_and(|top| top.starts_with("┌ Peers of a") && top.chars().count() == 60)
            && screen.contains("Scratch: todo")
    });

    // A peer that leaves is shown down.
    lab.stop("b");
    tmux.shows("b down", "down");

    tmux.keys(&["C-c"]);
    wait_until("the tui to exit", || {
        !tmux.run(&["has-session", "-t", "tui"]).status.success()
    });
}

#[test]
fn typing_fast_while_another_instance_edits_loses_nothing_and_undo_takes_back_only_ours() {
    let mut lab = Lab::new("tui-replica");
    lab.start_all(&["a", "b"]);
    let command = format!(
        "{} --runtime-dir {} --instance a tui --scratch notes",
        env!("CARGO_BIN_EXE_rrt"),
        path_str(&lab.runtime_dir())
    );
    let tmux = Tmux::start("tui-replica", 100, 30, &command);
    tmux.shows("the peers pane", "Peers of a (1 up, 2 members)");
    tmux.keys(&["Tab"]);

    // 2,000 characters typed in bursts, while b puts lines at the start of the document.
    let typed: String = (0..2_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let b_socket = lab
        .mesh_dir()
        .join(format!("control-{}.sock", lab.pid("b")));
    let editing = std::thread::spawn(move || {
        let mut b = rrt_control::Client::connect_socket(&b_socket).expect("b's daemon");
        for n in 0..20 {
            b.insert("notes".into(), 0, format!("[b {n}]\n"), None)
                .expect("b inserts");
            std::thread::sleep(std::time::Duration::from_millis(15));
        }
    });
    for burst in typed.as_bytes().chunks(100) {
        tmux.type_text(std::str::from_utf8(burst).expect("ascii"));
    }
    editing.join().expect("b's edits");
    // Both hold the same text: every line of b's once, and every character typed, in order
    // (b's lines land before the typing or, those made while it began, inside it).
    let whole = |text: &str| {
        let mut rest = text.to_owned();
        for n in 0..20 {
            let line = format!("[b {n}]\n");
            if rest.matches(&line).count() != 1 {
                return false;
            }
            rest = rest.replace(&line, "");
        }
        rest == typed
    };
    let mut last = (String::new(), String::new());
    let started = std::time::Instant::now();
    wait_until("both daemons to hold every character, b's and ours", || {
        let text = notes(&lab, "a");
        last = (text.clone(), notes(&lab, "b"));
        if started.elapsed() > std::time::Duration::from_secs(15) {
            eprintln!(
                "DEBUG a={:?}\nDEBUG b={:?}\nDEBUG screen={}",
                last.0,
                last.1,
                tmux.screen()
            );
        }
        whole(&text) && notes(&lab, "b") == text
    });
    let before_undo = notes(&lab, "b");

    // Undo after a remote edit takes back only what was typed here (one run of typing).
    let output = lab.run("b", &["scratch", "append", "notes", "\nb was here"]);
    assert!(output.status.success());
    tmux.shows("b's last line", "b was here");
    tmux.keys(&["C-z"]);
    let b_lines: String = (0..20).rev().map(|n| format!("[b {n}]\n")).collect();
    let undone = |text: &str| {
        // b's lines in the order they landed, and nothing typed here.
        let mut kept: Vec<&str> = text.split_inclusive('\n').collect();
        kept.sort_unstable();
        let mut expected: Vec<&str> = b_lines.split_inclusive('\n').collect();
        expected.push("\n");
        expected.push("b was here");
        expected.sort_unstable();
        kept == expected
    };
    wait_until("the undo to reach b", || undone(&notes(&lab, "b")));
    tmux.keys(&["C-y"]);
    let redone = format!("{before_undo}\nb was here");
    wait_until("the redo to reach b", || notes(&lab, "b") == redone);
}

#[test]
fn each_tui_shows_who_else_edits_the_document_until_they_leave() {
    let mut lab = Lab::new("tui-presence");
    lab.start_all(&["a", "b"]);
    let tui = |instance: &str| {
        format!(
            "{} --runtime-dir {} --instance {instance} tui --scratch notes",
            env!("CARGO_BIN_EXE_rrt"),
            path_str(&lab.runtime_dir())
        )
    };
    let on_a = Tmux::start("presence-a", 100, 20, &tui("a"));
    let on_b = Tmux::start("presence-b", 100, 20, &tui("b"));
    on_b.shows("a's editor named on b's screen", "also here: a");
    on_a.shows("b's editor named on a's screen", "also here: b");
    on_a.keys(&["Tab"]);
    on_a.type_text("where are you");
    wait_until("b to have a's text", || notes(&lab, "b") == "where are you");
    on_b.shows("a's text on b's screen", "where are you");
    on_a.keys(&["C-q"]);
    wait_until("a's editor gone from b's screen", || {
        !on_b.screen().contains("also here")
    });
}

#[test]
fn typing_while_the_daemon_restarts_is_kept_and_reaches_the_mesh() {
    let mut lab = Lab::new("tui-restart");
    lab.start_all(&["a", "b"]);
    let command = format!(
        "{} --runtime-dir {} --instance a tui --scratch notes",
        env!("CARGO_BIN_EXE_rrt"),
        path_str(&lab.runtime_dir())
    );
    let tmux = Tmux::start("tui-restart", 100, 20, &command);
    tmux.shows("the peers pane", "Peers of a (1 up, 2 members)");
    tmux.keys(&["Tab"]);
    tmux.type_text("before");
    wait_until("b to have it", || notes(&lab, "b") == "before");

    lab.stop("a");
    tmux.shows("the daemon gone", "reconnecting");
    tmux.type_text(" during");
    tmux.shows("the typing kept on screen", "before during");
    lab.start("a");
    tmux.shows("the daemon back", "reconnected");
    tmux.type_text(" after");
    wait_until("b to have everything typed", || {
        notes(&lab, "b") == "before during after"
    });
}
