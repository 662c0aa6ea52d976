//! End to end: shared scratch documents and app state between real daemons on one host.

mod common;

use std::{collections::BTreeMap, os::unix::net::UnixStream, thread, time::Duration};

use common::{DEADLINE, Lab, wait_until};
use rrt_mesh::Message;
use rrt_mesh::{DocumentChange, Node, Origin, STATE};
use rrt_sync::{CrdtOperation, DocMessage, Part};
use rrt_wire::{Format, Transport, WireConfig};

fn run_ok(lab: &Lab, name: &str, args: &[&str]) -> String {
    let output = lab.run(name, args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn scratch_documents_and_app_state_are_shared_merged_and_kept() {
    let mut lab = Lab::new("documents");
    lab.start_all(&["a", "b", "c"]);
    run_ok(&lab, "a", &["scratch", "append", "notes", "first line\n"]);
    wait_until("b to have the note", || {
        lab.cat("b", "notes").as_deref() == Some("first line\n")
    });

    // Concurrent appends on every instance: all kept, in one agreed order.
    thread::scope(|scope| {
        for name in ["a", "b", "c"] {
            let lab = &lab;
            scope.spawn(move || {
                run_ok(
                    lab,
                    name,
                    &["scratch", "append", "notes", &format!("from {name}\n")],
                )
            });
        }
    });
    wait_until("the three copies to agree", || {
        let texts: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|name| lab.cat(name, "notes"))
            .collect();
        texts.iter().all(|text| text == &texts[0])
    });
    let merged = lab.cat("a", "notes").expect("notes");
    for name in ["a", "b", "c"] {
        assert!(merged.contains(&format!("from {name}\n")), "{merged:?}");
    }

    // `scratch edit` applies what the editor saved as changes: an edit made elsewhere while the
    // editor is open — here, by the editor itself, which waits until a has it — survives.
    let rrt = |name: &str| {
        format!(
            "{} --runtime-dir {} --instance {name}",
            env!("CARGO_BIN_EXE_rrt"),
            lab.runtime_dir().display()
        )
    };
    let editor = lab.runtime_dir().with_file_name("editor.sh");
    std::fs::write(
        &editor,
        format!(
            "{b} scratch append notes 'added by b while a edits\n'\n\
             tries=0\n\
             until {a} scratch cat notes | grep -q 'added by b'; do\n\
             tries=$((tries + 1)); [ $tries -lt 1000 ] || exit 1; sleep 0.02\n\
             done\n\
             sed -i s/first/FIRST/ \"$1\"\n",
            b = rrt("b"),
            a = rrt("a"),
        ),
    )
    .expect("editor script");
    let output = lab
        .rrt()
        .args(["--instance", "a", "scratch", "edit", "notes"])
        .env("EDITOR", format!("sh {}", editor.display()))
        .output()
        .expect("edit");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    wait_until("both edits everywhere", || {
        ["a", "b", "c"].iter().all(|name| {
            lab.cat(name, "notes").is_some_and(|text| {
                text.starts_with("FIRST line\n") && text.contains("added by b while a edits\n")
            })
        })
    });

    run_ok(&lab, "c", &["state", "set", "theme", "dark"]);
    wait_until("a to see the state", || {
        lab.run("a", &["state", "get", "theme"]).stdout == b"dark\n"
    });
    run_ok(&lab, "a", &["state", "del", "theme"]);
    wait_until("c to see the deletion", || {
        !lab.run("c", &["state", "get", "theme"]).status.success()
    });
    assert_eq!(run_ok(&lab, "b", &["scratch", "list"]), "notes\nstate\n");

    // Everyone stops; a lone restart still has the documents.
    let before = lab.cat("a", "notes").expect("notes");
    for name in ["a", "b", "c"] {
        lab.stop(name);
    }
    lab.start("b");
    assert_eq!(lab.cat("b", "notes"), Some(before));
}

#[test]
fn bad_document_names_are_refused_clearly() {
    let mut lab = Lab::new("docnames");
    lab.start("a");
    let output = lab.run("a", &["scratch", "append", "../escape", "x"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not a document name"));
    let missing = lab.run("a", &["scratch", "cat", "nothing-here"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no document named"));
}

#[test]
fn an_edit_no_peer_would_accept_is_refused_before_anything_changes() {
    let mut lab = Lab::new("docbigedit");
    lab.start_all(&["a", "b"]);
    run_ok(&lab, "a", &["scratch", "append", "notes", "before\n"]);
    let too_large = vec![b'x'; rrt_mesh::MAX_LOCAL_EDIT + 1];
    let output = lab.run_with_stdin("a", &["scratch", "append", "notes"], &too_large);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("over the limit"),
        "{output:?}"
    );
    assert_eq!(lab.cat("a", "notes").as_deref(), Some("before\n"));
    // The largest edit allowed reaches the peer.
    let largest = "y".repeat(rrt_mesh::MAX_LOCAL_EDIT);
    let output = lab.run_with_stdin("a", &["scratch", "append", "notes"], largest.as_bytes());
    assert!(output.status.success(), "{output:?}");
    wait_until("b to have the largest edit", || {
        lab.cat("b", "notes")
            .is_some_and(|text| text.len() == "before\n".len() + largest.len())
    });
}

#[test]
fn malformed_and_oversize_updates_from_a_peer_are_refused_and_the_link_stays() {
    let mut lab = Lab::new("docpoison");
    lab.start_all(&["a", "b"]);
    run_ok(&lab, "a", &["scratch", "append", "notes", "before\n"]);
    wait_until("b to have the note", || {
        lab.cat("b", "notes").as_deref() == Some("before\n")
    });

    // A peer with a correct handshake and hello, speaking MessagePack (no base64: fewer bytes to
    // push for the oversize update).
    let config = WireConfig {
        format: Format::MessagePack,
        ..WireConfig::default()
    };
    let mut peer = lab.fake_peer("a", "mallory", &config);
    let operation = |update: Vec<u8>, state_vector: Vec<u8>, part: Option<Part>| CrdtOperation {
        document: "notes".to_owned(),
        update,
        state_vector,
        part,
        ..CrdtOperation::default()
    };
    let delta = |operation: CrdtOperation| {
        Message::Document(DocMessage::StateDelta {
            crdt_ops: vec![operation],
            vector_clock: BTreeMap::new(),
        })
    };
    let valid = rrt_sync::Document::new(7).append("from mallory\n");
    let mut truncated = valid.clone();
    truncated.truncate(valid.len() / 2);
    // An update over the cap, in parts that each fit a frame: refused when the parts held pass
    // the cap; its later parts are ignored.
    const PART: usize = 4 * 1024 * 1024;
    let count = u32::try_from(rrt_sync::MAX_UPDATE / PART + 2).expect("a few parts");
    let oversize = (0..count).map(|index| {
        let part = Part {
            batch: 1,
            index,
            count,
        };
        delta(operation(vec![0; PART], Vec::new(), Some(part)))
    });
    let poisons = [
        delta(operation(vec![0xff; 64], Vec::new(), None)),
        delta(operation(truncated, Vec::new(), None)),
        delta(operation(Vec::new(), vec![0xff; 32], None)),
    ];
    for poison in poisons.into_iter().chain(oversize) {
        peer.send_message(&poison).expect("the link is still open");
    }
    // The same connection still carries a good update.
    peer.send_message(&delta(operation(valid, Vec::new(), None)))
        .expect("the link is still open");
    wait_until("a to have mallory's line", || {
        lab.cat("a", "notes")
            .is_some_and(|text| text.contains("from mallory\n"))
    });
    assert!(
        lab.cat("a", "notes")
            .is_some_and(|text| text.contains("before\n"))
    );
    // And a keeps working with b.
    run_ok(&lab, "b", &["scratch", "append", "notes", "after\n"]);
    wait_until("a to have b's line", || {
        lab.cat("a", "notes")
            .is_some_and(|text| text.ends_with("after\n"))
    });
    let log = lab.log("a");
    assert!(
        log.matches("refused a peer's document update").count() >= 4,
        "every bad update reported: {log}"
    );
    assert!(
        lab.peers("a").contains(&"mallory".to_owned()),
        "mallory is still up"
    );
    assert!(lab.peers("a").contains(&"b".to_owned()));
}

async fn next_change(changes: &mut rrt_mesh::DocumentChanges) -> DocumentChange {
    tokio::time::timeout(DEADLINE, changes.next())
        .await
        .expect("a change in time")
        .expect("the node runs")
}

#[test]
fn an_embedded_node_follows_a_document_through_its_handle() {
    let mut lab = Lab::new("dochandle");
    lab.start("daemon");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let node = Node::builder("default")
            .name("embedded")
            .runtime_dir(lab.runtime_dir())
            .state_dir(lab.state_dir().join("embedded"))
            .mdns(false)
            .spawn()
            .await
            .expect("node starts");
        let notes = node.document("notes");
        let mut changes = notes.changes();

        notes.append("hello world").await.expect("append");
        assert_eq!(
            next_change(&mut changes).await,
            DocumentChange::Changed(Origin::Local)
        );
        let lab = &lab;
        let daemon_has = |expected: &'static str| async move {
            let wait = async {
                while lab.cat("daemon", "notes").as_deref() != Some(expected) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            tokio::time::timeout(DEADLINE, wait)
                .await
                .unwrap_or_else(|_| panic!("the daemon never had {expected:?}"));
        };
        daemon_has("hello world").await;

        // Positions are UTF-16 code units: the emoji counts two.
        notes.insert(5, ", 😀").await.expect("insert");
        notes.delete(0, 1).await.expect("delete");
        notes.insert(8, "!").await.expect("insert after the emoji");
        assert_eq!(notes.text().await.expect("text"), "ello, 😀! world");
        daemon_has("ello, 😀! world").await;

        // A change made by the daemon arrives on the stream, naming the daemon.
        let daemon_id = lab.status("daemon").expect("status")["id"]
            .as_str()
            .expect("id")
            .parse::<uuid::Uuid>()
            .expect("a uuid");
        run_ok(
            lab,
            "daemon",
            &["scratch", "append", "notes", "\nfrom the daemon"],
        );
        loop {
            match next_change(&mut changes).await {
                DocumentChange::Changed(Origin::Peer(peer)) => {
                    assert_eq!(peer, daemon_id);
                    break;
                }
                DocumentChange::Changed(Origin::Local) | DocumentChange::Editors => {}
                DocumentChange::Lagged { .. } => panic!("nothing should be missed here"),
            }
        }
        assert_eq!(
            notes.text().await.expect("text"),
            "ello, 😀! world\nfrom the daemon"
        );

        // A document's own map, apart from the app state.
        notes.set("cursor", "3").await.expect("set");
        assert_eq!(
            notes
                .entries()
                .await
                .expect("entries")
                .get("cursor")
                .map(String::as_str),
            Some("3")
        );
        assert!(
            node.document(STATE)
                .entries()
                .await
                .expect("state")
                .is_empty()
        );

        // The stream ends when its node leaves, though the handle still exists.
        node.leave().await.expect("leave");
        let end = async { while changes.next().await.is_some() {} };
        tokio::time::timeout(DEADLINE, end)
            .await
            .expect("the stream ends");
        drop(notes);
    });
}

/// One request on the daemon's control socket, answered.
fn control(lab: &Lab, name: &str, request: serde_json::Value) -> serde_json::Value {
    use std::io::{BufRead, BufReader, Write};
    let socket = lab
        .mesh_dir()
        .join(format!("control-{}.sock", lab.pid(name)));
    let mut stream = UnixStream::connect(socket).expect("control socket");
    writeln!(stream, "{request}").expect("request");
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .expect("answer");
    serde_json::from_str(&answer).expect("JSON")
}

#[test]
fn an_edit_made_in_an_older_text_lands_where_it_was_meant() {
    let mut lab = Lab::new("docbase");
    lab.start("a");
    run_ok(&lab, "a", &["scratch", "append", "notes", "ab"]);
    // Someone inserts at the start...
    let answer = control(
        &lab,
        "a",
        serde_json::json!({"op": "scratch_insert", "name": "notes", "at": 0, "text": "X"}),
    );
    assert_eq!(answer["ok"], "Xab");
    // ...while an editor that still shows "ab" types "c" at its end, and deletes its "a".
    let answer = control(
        &lab,
        "a",
        serde_json::json!({"op": "scratch_insert", "name": "notes", "at": 2, "text": "c", "base": "ab"}),
    );
    assert_eq!(answer["ok"], "Xabc");
    let answer = control(
        &lab,
        "a",
        serde_json::json!({"op": "scratch_delete", "name": "notes", "at": 0, "len": 1, "base": "abc"}),
    );
    assert_eq!(answer["ok"], "Xbc");
}
