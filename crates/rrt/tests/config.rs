//! End to end: the config file (`$XDG_CONFIG_HOME/rrt/config.toml`) sets the daemon, flags
//! override it, a bad file keeps the daemon from starting half-configured, and SIGHUP with a
//! broken file leaves a running daemon as it was. (What each key becomes, and the errors'
//! lines and columns, are unit-tested in `src/config.rs`.)

mod common;

use std::fs;

use common::{Lab, wait_until};

/// Writes the lab's config file.
fn write_config(lab: &Lab, text: &str) {
    let dir = lab.config_home().join("rrt");
    fs::create_dir_all(&dir).expect("config dir");
    fs::write(dir.join("config.toml"), text).expect("config file");
}

fn history_len(lab: &Lab, name: &str) -> usize {
    let output = lab.run(name, &["clip", "history", "--json"]);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .count()
}

#[test]
fn the_config_file_sets_the_daemon_and_a_flag_overrides_it() {
    let mut lab = Lab::new("config");
    write_config(&lab, "# the history kept\nhistory = 3\nno-mdns = true\n");
    lab.start("a");
    lab.start_with("b", &["--history".to_owned(), "2".to_owned()]);
    lab.wait_for_mesh(&["a", "b"]);
    for n in 0..5 {
        lab.copy("a", &format!("value {n}"));
        wait_until("b to have the copy", || {
            lab.paste("b").as_deref() == Some(format!("value {n}").as_str())
        });
    }
    wait_until("a to keep 3 entries (the file)", || {
        history_len(&lab, "a") == 3
    });
    wait_until("b to keep 2 (its flag)", || history_len(&lab, "b") == 2);

    // `rrt config show` says where each setting came from.
    let output = lab.run("a", &["config", "show", "--json", "--history", "9"]);
    let shown: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let setting = |key: &str| {
        shown["settings"]
            .as_array()
            .expect("settings")
            .iter()
            .find(|setting| setting["key"] == key)
            .cloned()
            .expect(key)
    };
    assert_eq!(setting("history")["source"], "flag");
    assert_eq!(setting("history")["values"][0], "9");
    assert_eq!(setting("no-mdns")["source"], "config file");
    assert_eq!(setting("no-mdns")["line"], 3);
    assert_eq!(setting("heartbeat-ms")["source"], "default");
}

#[test]
fn a_bad_config_file_keeps_the_daemon_from_starting() {
    let lab = Lab::new("badconfig");
    write_config(&lab, "history = 3\nheartbeat-ms = \"soon\"\n");
    let said = lab.start_refused("a", &[]);
    assert!(said.contains("config.toml:2:16"), "{said}");
    assert!(lab.status("a").is_none(), "no daemon answers");
    write_config(&lab, "history = 3\nhistroy = 4\n");
    let said = lab.start_refused("a", &[]);
    assert!(said.contains("config.toml:2:1"), "{said}");
}

#[test]
fn sighup_with_a_broken_file_leaves_the_daemon_running_as_it_was() {
    let mut lab = Lab::new("sighup");
    write_config(&lab, "history = 3\n");
    lab.start("a");
    write_config(&lab, "history = [\n");
    let pid = lab.pid("a");
    let hangup = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(hangup.success());
    // The signal's default action would end it: it still copies and pastes (asked by clients
    // reading a config file of their own: the broken one stops every command from starting).
    let own = lab.config_home().join("client.toml");
    fs::write(&own, "").expect("an empty config file");
    let own = own.to_str().expect("a UTF-8 path");
    let copied = lab.run("a", &["--config", own, "clip", "copy", "after the hangup"]);
    assert!(copied.status.success(), "{copied:?}");
    let pasted = lab.run("a", &["--config", own, "clip", "paste"]);
    assert_eq!(String::from_utf8_lossy(&pasted.stdout), "after the hangup");
    let broken = lab.run("a", &["status"]);
    assert!(
        !broken.status.success(),
        "a command with the broken file does not start"
    );
}

#[test]
fn sighup_applies_changed_never_share_rules_at_once() {
    let mut lab = Lab::new("sighuprules");
    write_config(&lab, "never-share = [\"off\"]\n");
    lab.start("a");
    let card = "4111 1111 1111 1111";
    let copied = lab.copy_stdin("a", card.as_bytes());
    assert!(copied.status.success(), "{copied:?}");
    write_config(&lab, "never-share = [\"card-numbers\"]\n");
    let pid = lab.pid("a").to_string();
    let hangup = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill");
    assert!(hangup.success());
    // Handled by the daemon's loop: a card number copied from then on is refused.
    wait_until("a to refuse card numbers", || {
        !lab.copy_stdin("a", b"5500-0000-0000-0004").status.success()
    });
}

#[test]
fn sighup_dials_a_peer_added_to_the_file_at_once() {
    // Two labs: their daemons do not share a runtime directory, so they meet only over TCP.
    let mut far = Lab::new("sighuppeerfar");
    let insecure = ["--listen", "127.0.0.1:0", "--insecure"].map(str::to_owned);
    far.start_with("far", &insecure);
    let listen = far.status("far").expect("status")["listen"]
        .as_str()
        .expect("a TCP address")
        .to_owned();
    let mut here = Lab::new("sighuppeerhere");
    write_config(&here, "listen = \"127.0.0.1:0\"\ninsecure = true\n");
    here.start("here");
    assert!(here.peers("here").is_empty(), "no peer to dial yet");
    write_config(
        &here,
        &format!("listen = \"127.0.0.1:0\"\ninsecure = true\npeer = [\"{listen}\"]\n"),
    );
    let hangup = std::process::Command::new("kill")
        .args(["-HUP", &here.pid("here").to_string()])
        .status()
        .expect("kill");
    assert!(hangup.success());
    wait_until("here to link to the peer the file added", || {
        here.peers("here") == ["far"]
    });
}
