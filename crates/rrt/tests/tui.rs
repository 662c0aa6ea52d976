//! End to end: `rrt tui` in a real terminal (tmux), driven with send-keys and read with
//! capture-pane, next to a second daemon that copies and edits.

mod common;

use common::{Lab, path_str, tmux::Tmux, wait_until};

fn notes(lab: &Lab, name: &str) -> String {
    String::from_utf8_lossy(&lab.run(name, &["scratch", "cat", "notes"]).stdout).into_owned()
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

    // Selecting an older entry and pressing Enter copies it again, everywhere.
    lab.copy("b", "copied later");
    tmux.shows("the later copy", "> copied later");
    // (Esc alone: a terminal cannot tell Esc followed at once by a key from an escape sequence.)
    tmux.keys(&["Escape"]);
    tmux.shows("the history pane focused", "Tab: scratch");
    tmux.keys(&["Down", "Enter"]);
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
            && screen.contains("Scratch: notes")
    });

    // A peer that leaves is shown down.
    lab.stop("b");
    tmux.shows("b down", "down");

    tmux.keys(&["C-c"]);
    wait_until("the tui to exit", || {
        !tmux.run(&["has-session", "-t", "tui"]).status.success()
    });
}
