//! End to end: real `rrt daemon` processes on one host, driven through the real CLI.

mod common;

use std::{
    io::{Read, Write},
    os::unix::{fs::PermissionsExt, net::UnixStream, process::CommandExt},
    process::Command,
    thread,
    time::Duration,
};

use common::{Lab, path_str, wait_until};

const FIVE: [&str; 5] = ["a", "b", "c", "d", "e"];

#[test]
fn five_instances_share_one_clipboard() {
    let mut lab = Lab::new("five");
    lab.start_all(&FIVE);

    lab.copy("b", "before the watch");
    let watch = lab.watch("e");
    // The current value first: from here on the watch is subscribed.
    wait_until("e to have b's copy", || {
        lab.paste("e").as_deref() == Some("before the watch")
    });
    let mut first = watch.next();
    while first["text"] != "before the watch" {
        first = watch.next();
    }
    lab.copy("a", "copied on a");
    for name in FIVE {
        wait_until(&format!("{name} to paste a's copy"), || {
            lab.paste(name).as_deref() == Some("copied on a")
        });
    }
    assert_eq!(watch.next()["text"], "copied on a");
    drop(watch);

    // Standard input, several lines and non-ASCII, exactly preserved.
    let text = "line one\nline two ✓\n\ttabbed\n";
    assert!(lab.copy_stdin("c", text.as_bytes()).status.success());
    for name in FIVE {
        wait_until(&format!("{name} to paste c's copy"), || {
            lab.paste(name).as_deref() == Some(text)
        });
    }
}

#[test]
fn concurrent_copies_converge_to_one_value_everywhere() {
    let mut lab = Lab::new("concurrent");
    lab.start_all(&FIVE);
    thread::scope(|scope| {
        for name in FIVE {
            let lab = &lab;
            scope.spawn(move || lab.copy(name, &format!("value from {name}")));
        }
    });
    wait_until("every instance to agree", || {
        let values: Vec<_> = FIVE.iter().map(|name| lab.paste(name)).collect();
        values[0].is_some() && values.iter().all(|value| value == &values[0])
    });
    let winner = lab.paste("a").expect("a value");
    assert!(
        FIVE.iter()
            .any(|name| winner == format!("value from {name}"))
    );
    let histories: Vec<_> = FIVE
        .iter()
        .map(|name| lab.run(name, &["clip", "history", "--json"]).stdout)
        .collect();
    assert!(
        histories.iter().all(|history| history == &histories[0]),
        "histories converge too"
    );
}

#[test]
fn a_killed_instance_is_reported_down_and_catches_up_when_restarted() {
    let mut lab = Lab::new("kill");
    lab.start_all(&FIVE);
    lab.kill("e");
    for name in ["a", "b", "c", "d"] {
        wait_until(&format!("{name} to report e down"), || {
            !lab.peers(name).contains(&"e".to_owned())
        });
        assert_eq!(lab.peers(name).len(), 3);
    }
    assert!(
        lab.log("a").contains("peer down peer=e"),
        "the log says why"
    );
    lab.copy("b", "copied while e was dead");
    lab.start("e");
    wait_until("e to rejoin everyone", || lab.peers("e").len() == 4);
    wait_until("e to catch up", || {
        lab.paste("e").as_deref() == Some("copied while e was dead")
    });
    assert!(
        !lab.mesh_dir()
            .join(format!("peer-{}.sock", u32::MAX))
            .exists()
    );
}

#[test]
fn a_stopped_instance_says_goodbye_and_a_lone_restart_keeps_the_clipboard() {
    let mut lab = Lab::new("restart");
    lab.start_all(&["a", "b"]);
    lab.copy("a", "kept across restarts");
    wait_until("b to have it", || {
        lab.paste("b").as_deref() == Some("kept across restarts")
    });
    lab.stop("b");
    wait_until("a to see b leave", || lab.peers("a").is_empty());
    assert!(lab.log("a").contains("reason=said goodbye"));
    lab.stop("a");
    assert!(lab.paste("a").is_none(), "nobody runs");
    lab.start("a");
    assert_eq!(lab.paste("a").as_deref(), Some("kept across restarts"));
}

#[test]
fn a_client_linked_to_one_instance_reaches_every_instance_of_the_host() {
    use rrt_wire::Transport as _;

    let mut lab = Lab::new("one-link-client");
    lab.start_all(&["a", "b", "c"]);
    // Linked to a only, and not saying `full_mesh`: a must pass what it sends on to b and c.
    let mut client = lab.fake_peer("a", "client", &rrt_wire::WireConfig::default());
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64;
    client
        .send_message(&rrt_mesh::Message::Clipboard(
            rrt_sync::ClipMessage::ClipboardUpdate {
                content: Vec::new(),
                data: "from a client of a".to_owned(),
                timestamp: now_ms,
                counter: 0,
                source_instance: uuid::Uuid::new_v4(),
                provenance: None,
                withheld_from: Vec::new(),
            },
        ))
        .expect("sent");
    for name in ["a", "b", "c"] {
        wait_until(&format!("{name} to have the client's copy"), || {
            lab.paste(name).as_deref() == Some("from a client of a")
        });
    }
}

#[test]
fn hostile_bytes_on_a_peer_socket_close_only_that_connection() {
    let mut lab = Lab::new("hostile");
    lab.start_all(&["a", "b", "c"]);
    let socket = lab.mesh_dir().join(format!("peer-{}.sock", lab.pid("a")));
    let closed_by_a = |mut stream: UnixStream| {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut rest = Vec::new();
        stream
            .read_to_end(&mut rest)
            .expect("a closes it, not the timeout");
        rest
    };

    let mut garbage = UnixStream::connect(&socket).expect("connect");
    garbage.write_all(&[0x5a; 64]).expect("garbage");
    assert!(closed_by_a(garbage).is_empty(), "no answer to a stranger");

    let mut oversize = UnixStream::connect(&socket).expect("connect");
    let mut bytes = rrt_wire::WireConfig::default().preamble().encode().to_vec();
    bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    oversize.write_all(&bytes).expect("oversize frame");
    let answered = closed_by_a(oversize);
    assert_eq!(
        answered[..16],
        rrt_wire::WireConfig::default().preamble().encode(),
        "the handshake answer (and a's hello), then closed"
    );

    // A connection that never says anything stays open meanwhile, harming no one.
    let _silent = UnixStream::connect(&socket).expect("connect");
    lab.copy("b", "traffic goes on");
    for name in ["a", "c"] {
        wait_until(&format!("{name} to get b's copy"), || {
            lab.paste(name).as_deref() == Some("traffic goes on")
        });
    }
    assert_eq!(lab.peers("a"), ["b", "c"]);
}

#[test]
fn a_connection_from_another_user_is_refused() {
    let mut lab = Lab::new("uid");
    lab.start("a");
    // Open the way for the other user, as a careless chmod would: the credential check must
    // still refuse it.
    for path in [lab.runtime_dir(), lab.mesh_dir()] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let socket = lab.mesh_dir().join(format!("peer-{}.sock", lab.pid("a")));
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    // Refused at once: the send may already meet a closed socket.
    let script = "import socket,sys\n\
        s=socket.socket(socket.AF_UNIX)\n\
        s.connect(sys.argv[1])\n\
        s.settimeout(10)\n\
        try:\n\
        \x20   s.sendall(bytes.fromhex('acedfacebabecafe000101000a000000'))\n\
        \x20   print('closed' if s.recv(16)==b'' else 'answered')\n\
        except (BrokenPipeError, ConnectionResetError):\n\
        \x20   print('closed')\n";
    let output = Command::new("python3")
        .args(["-c", script, path_str(&socket)])
        .uid(65534)
        .gid(65534)
        .output()
        .expect("python3 as nobody");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "closed",
        "{output:?}"
    );
    wait_until("the refusal in a's log", || {
        lab.log("a")
            .contains("refused a peer connection from another user")
    });
}

#[test]
fn commands_without_a_daemon_say_how_to_start_one() {
    let lab = Lab::new("nodaemon");
    let output = lab.rrt().args(["clip", "paste"]).output().expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no rrt daemon runs on mesh \"default\""),
        "{stderr}"
    );
    assert!(stderr.contains("rrt daemon"), "{stderr}");
}

#[test]
fn a_copy_over_the_frame_limit_is_refused_with_a_clear_message() {
    let mut lab = Lab::new("oversize");
    lab.start("a");
    lab.copy("a", "small");
    let huge = vec![b'x'; 11 * 1024 * 1024];
    let output = lab.copy_stdin("a", &huge);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("too large to share"), "{stderr}");
    assert_eq!(
        lab.paste("a").as_deref(),
        Some("small"),
        "nothing was truncated or replaced"
    );
}

#[test]
fn a_peer_stamping_the_end_of_time_freezes_nothing_and_a_poisoned_file_is_repaired() {
    use rrt_wire::Transport as _;

    let mut lab = Lab::new("clocks");
    // As a version without the clock bound left it: a value stamped at the end of time, and the
    // user's later copies only in the history behind it.
    let store = lab.state_dir().join("default");
    std::fs::create_dir_all(&store).expect("state directory");
    let poisoned = r#"{"version":1,"clock":{"wall_ms":18446744073709551615,"counter":4294967295},"entries":[
        {"text":"frozen","stamp":{"time":{"wall_ms":18446744073709551615,"counter":4294967295},"origin":"00000000-0000-0000-0000-000000000002"}},
        {"text":"copied behind it","stamp":{"time":{"wall_ms":1700000000000,"counter":0},"origin":"00000000-0000-0000-0000-000000000001"}}]}"#;
    std::fs::write(store.join("clipboard.json"), poisoned).expect("poisoned file");
    lab.start_all(&["a", "b"]);
    assert_eq!(
        lab.paste("a").as_deref(),
        Some("frozen"),
        "nothing stored is lost"
    );
    lab.copy("a", "after the upgrade");
    for name in ["a", "b"] {
        wait_until(&format!("{name} to take the new copy"), || {
            lab.paste(name).as_deref() == Some("after the upgrade")
        });
    }

    // A peer stamping its updates at the end of time, with the counter at both ends.
    let mut mallory = lab.fake_peer("a", "mallory", &rrt_wire::WireConfig::default());
    for (data, counter) in [("poison at u32::MAX", u32::MAX), ("poison at 0", 0)] {
        mallory
            .send_message(&rrt_mesh::Message::Clipboard(
                rrt_sync::ClipMessage::ClipboardUpdate {
                    content: Vec::new(),
                    data: data.to_owned(),
                    timestamp: u64::MAX,
                    counter,
                    source_instance: uuid::Uuid::new_v4(),
                    provenance: None,
                    withheld_from: Vec::new(),
                },
            ))
            .expect("sent");
    }
    // The same peer's honest update after them is taken: the link stays and nothing is pinned.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64;
    mallory
        .send_message(&rrt_mesh::Message::Clipboard(
            rrt_sync::ClipMessage::ClipboardUpdate {
                content: Vec::new(),
                data: "honest from mallory".to_owned(),
                timestamp: now_ms,
                counter: 0,
                source_instance: uuid::Uuid::new_v4(),
                provenance: None,
                withheld_from: Vec::new(),
            },
        ))
        .expect("sent");
    wait_until("a to take mallory's honest copy", || {
        lab.paste("a").as_deref() == Some("honest from mallory")
    });
    lab.copy("b", "copied after the poison");
    for name in ["a", "b"] {
        wait_until(&format!("{name} to take b's copy"), || {
            lab.paste(name).as_deref() == Some("copied after the poison")
        });
    }
    let history = lab.run("a", &["clip", "history", "--json"]);
    let history = String::from_utf8_lossy(&history.stdout);
    assert!(!history.contains("poison at"), "{history}");
    assert!(!history.contains("18446744073709551615"), "{history}");
    drop(mallory);

    // After a restart the clipboard still moves.
    lab.stop("a");
    lab.start("a");
    lab.copy("a", "after a restart");
    wait_until("b to take the copy after a's restart", || {
        lab.paste("b").as_deref() == Some("after a restart")
    });
}

#[test]
fn a_client_proposing_lz4_gets_it_and_large_updates_travel_compressed_both_ways() {
    use rrt_wire::{
        Compression, WireConfig, compress_payload, decompress_payload,
        frame::{FrameDecoder, encode_frame},
    };

    let mut lab = Lab::new("lz4");
    lab.start("a");
    let from_a = "copied on a, compressible ".repeat(40_000);
    assert!(lab.copy_stdin("a", from_a.as_bytes()).status.success());

    let config = WireConfig {
        compression: Compression::Lz4,
        ..WireConfig::default()
    };
    let socket = lab.mesh_dir().join(format!("peer-{}.sock", lab.pid("a")));
    let mut stream = UnixStream::connect(&socket).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream
        .write_all(&config.preamble().encode())
        .expect("preamble");
    let mut answer = [0; rrt_wire::PREAMBLE_LEN];
    stream.read_exact(&mut answer).expect("the answer");
    assert_eq!(answer[11], 1, "the daemon agrees to LZ4");

    let send = |stream: &mut UnixStream, message: serde_json::Value| {
        let mut payload = bytes::BytesMut::new();
        let serialized = serde_json::to_vec(&message).expect("JSON");
        compress_payload(&serialized, config.compression_threshold, &mut payload);
        let mut frame = bytes::BytesMut::new();
        encode_frame(&payload, &mut frame);
        stream.write_all(&frame).expect("sent");
        frame.len()
    };
    send(
        &mut stream,
        serde_json::json!({"type": "hello", "instance_id": uuid::Uuid::new_v4(),
            "capabilities": ["clipboard"], "name": "lz4-client"}),
    );
    // The daemon's history arrives compressed: its large value in far fewer bytes.
    let mut decoder = FrameDecoder::new(config.max_frame, Duration::from_secs(20));
    let mut buffer = bytes::BytesMut::new();
    let (compressed_len, text) = 'found: loop {
        while let Some(payload) = decoder
            .decode(&mut buffer, std::time::Instant::now())
            .expect("frames")
        {
            let message = decompress_payload(&payload, config.max_frame).expect("a payload");
            let message: serde_json::Value = serde_json::from_slice(&message).expect("JSON");
            if message["type"] == "clipboard_update" {
                let text = message["data"].as_str().expect("data").to_owned();
                break 'found (payload.len(), text);
            }
        }
        let mut chunk = [0; 64 * 1024];
        let read = stream.read(&mut chunk).expect("the daemon's messages");
        assert_ne!(read, 0, "the daemon closed the link");
        buffer.extend_from_slice(&chunk[..read]);
    };
    assert_eq!(text, from_a);
    assert!(
        compressed_len < from_a.len() / 10,
        "{compressed_len} bytes on the wire for {}",
        from_a.len()
    );

    // A large update of ours, compressed, is taken whole.
    let ours = "sent compressed by the client ".repeat(40_000);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64;
    let sent = send(
        &mut stream,
        serde_json::json!({"type": "clipboard_update", "data": ours, "timestamp": now_ms,
            "counter": 0, "source_instance": uuid::Uuid::new_v4()}),
    );
    assert!(sent < ours.len() / 10, "{sent} bytes sent");
    wait_until("a to paste the compressed update", || {
        lab.paste("a").as_deref() == Some(ours.as_str())
    });
}

#[test]
fn a_tls_peer_that_never_proves_itself_is_cut_after_the_handshake_timeout() {
    let mut lab = Lab::new("unadmitted");
    // A secret makes the daemon wait for an unknown key's `join` instead of refusing it at once.
    let secret = lab.state_dir().with_file_name("secret");
    common::write_secret(&secret, "a join secret long enough to count");
    lab.start_with(
        "a",
        &[
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--secret-file".to_owned(),
            path_str(&secret).to_owned(),
        ],
    );
    let listen = lab.status("a").expect("status")["listen"]
        .as_str()
        .expect("a TCP address")
        .to_owned();
    let certificate = lab.state_dir().with_file_name("stranger.pem");
    let key = lab.state_dir().with_file_name("stranger.key");
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-subj", "/CN=stranger", "-days", "1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&certificate)
        .output()
        .expect("openssl");
    assert!(made.status.success(), "{made:?}");
    // A stranger that completes TLS and the preamble exchange, then says nothing at all.
    let script = "import socket,ssl,sys,time\n\
        host,port=sys.argv[1].rsplit(':',1)\n\
        ctx=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n\
        ctx.check_hostname=False\n\
        ctx.verify_mode=ssl.CERT_NONE\n\
        ctx.load_cert_chain(sys.argv[2],sys.argv[3])\n\
        s=ctx.wrap_socket(socket.create_connection((host,int(port))),server_hostname='rrt.device')\n\
        s.sendall(bytes.fromhex(sys.argv[4]))\n\
        answer=b''\n\
        while len(answer)<16: answer+=s.recv(16-len(answer))\n\
        s.settimeout(30)\n\
        start=time.time()\n\
        try:\n\
        \x20   while s.recv(4096): pass\n\
        \x20   print('closed')\n\
        except socket.timeout:\n\
        \x20   print('still open')\n";
    let preamble: String = rrt_wire::WireConfig::default()
        .preamble()
        .encode()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let output = Command::new("python3")
        .args(["-c", script, &listen])
        .arg(&certificate)
        .arg(&key)
        .arg(&preamble)
        .output()
        .expect("python3");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "closed",
        "{output:?}"
    );
    assert!(lab.peers("a").is_empty());
}

#[test]
fn on_connect_a_peer_that_says_what_it_has_is_sent_only_what_it_lacks() {
    use rrt_mesh::Message;
    use rrt_sync::{ClipMessage, CrdtOperation, DocMessage};
    use rrt_wire::{Received, Transport as _};

    let mut lab = Lab::new("have");
    lab.start("a");
    for text in ["one", "two", "three"] {
        lab.copy("a", text);
    }
    let mut peer = lab.fake_peer_with(
        "a",
        "reconnecting",
        &rrt_wire::WireConfig::default(),
        &["clipboard", "state_sync", "clipboard_have"],
    );
    // The daemon says what it has instead of sending it all.
    let stamps = loop {
        match peer.recv().expect("the daemon's messages") {
            Received::Message(Message::Clipboard(ClipMessage::ClipboardHave { stamps })) => {
                break stamps;
            }
            Received::Message(Message::Clipboard(ClipMessage::ClipboardUpdate {
                data, ..
            })) => {
                panic!("sent {data:?} unasked")
            }
            _ => {}
        }
    };
    assert_eq!(stamps.len(), 3);
    // We have all but the newest (the history is listed newest first).
    peer.send_message(&Message::Clipboard(ClipMessage::ClipboardHave {
        stamps: stamps[1..].to_vec(),
    }))
    .expect("sent");
    // A version of a document a lacks: its answer comes after whatever the have brought.
    peer.send_message(&Message::Document(DocMessage::StateDelta {
        crdt_ops: vec![CrdtOperation {
            document: "marker".to_owned(),
            state_vector: rrt_sync::Document::new(9).state_vector(),
            ..CrdtOperation::default()
        }],
        vector_clock: std::collections::BTreeMap::new(),
    }))
    .expect("sent");
    let mut sent = Vec::new();
    loop {
        match peer.recv().expect("the daemon's messages") {
            Received::Message(Message::Clipboard(ClipMessage::ClipboardUpdate {
                data, ..
            })) => sent.push(data),
            Received::Message(Message::Document(DocMessage::StateDelta { crdt_ops, .. }))
                if crdt_ops.iter().any(|op| op.document == "marker") =>
            {
                break;
            }
            _ => {}
        }
    }
    assert_eq!(sent, ["three"]);
}

#[test]
fn why_says_who_copied_the_value_how_and_through_which_peer() {
    let mut lab = Lab::new("why");
    lab.start_all(&["a", "b"]);
    lab.wait_for_mesh(&["a", "b"]);
    lab.copy("a", "traced");
    wait_until("b to have it", || {
        lab.paste("b").as_deref() == Some("traced")
    });
    let why = |name: &str| -> serde_json::Value {
        let output = lab.run(name, &["clip", "why", "--json"]);
        assert!(output.status.success(), "{output:?}");
        serde_json::from_slice(&output.stdout).expect("JSON")
    };
    let at_b = why("b");
    assert_eq!(at_b["entry"]["text"], "traced");
    assert_eq!(at_b["entry"]["provenance"]["instance"], "a");
    assert_eq!(at_b["entry"]["provenance"]["through"], "control");
    assert_eq!(at_b["here"], false);
    assert_eq!(at_b["arrived"]["name"], "a");
    let at_a = why("a");
    assert_eq!(at_a["here"], true);
    assert!(at_a["arrived"].is_null());
    let said = lab.run("b", &["clip", "why"]);
    let said = String::from_utf8_lossy(&said.stdout);
    assert!(said.contains("reached this instance from a ("), "{said}");
}

#[test]
fn a_private_key_or_a_card_number_is_never_shared_unless_the_rules_say_so() {
    let mut lab = Lab::new("nevershare");
    lab.start("a");
    lab.start_with("b", &["--never-share".to_owned(), "off".to_owned()]);
    lab.wait_for_mesh(&["a", "b"]);
    let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
    for (secret, rule) in [
        (key, "private-keys"),
        ("4111 1111 1111 1111", "card-numbers"),
    ] {
        let refused = lab.copy_stdin("a", secret.as_bytes());
        assert!(!refused.status.success(), "a shared a secret");
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(said.contains(rule), "{said}");
    }
    let history = lab.run("a", &["clip", "history", "--json"]);
    assert!(history.stdout.is_empty(), "nothing reached a's history");
    // b's rules are off: it shares what it is given, and a takes it (the rules are for what a
    // daemon copies itself).
    lab.copy("b", "4111 1111 1111 1111");
    wait_until("a to have b's value", || {
        lab.paste("a").as_deref() == Some("4111 1111 1111 1111")
    });
}

#[test]
fn trust_pause_hides_a_devices_copies_here_at_once_and_resume_shows_them() {
    let mut lab = Lab::new("pause");
    for name in ["laptop", "work"] {
        lab.own_state_dir(name);
        lab.start_with(name, &["--listen".to_owned(), "127.0.0.1:0".to_owned()]);
    }
    lab.wait_for_mesh(&["laptop", "work"]);
    let laptop_state = lab.state_dir_of("laptop");
    let on_laptop = |args: &[&str]| {
        let mut all = vec!["--state-dir", path_str(&laptop_state)];
        all.extend_from_slice(args);
        let output = lab.run("laptop", &all);
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8(output.stdout).expect("UTF-8")
            + &String::from_utf8(output.stderr).expect("UTF-8")
    };
    let work_id = lab.run(
        "work",
        &["--state-dir", path_str(&lab.state_dir_of("work")), "id"],
    );
    let work_id = String::from_utf8(work_id.stdout).expect("UTF-8");
    let work_id = work_id.trim();
    let refused = lab.run(
        "laptop",
        &[
            "--state-dir",
            path_str(&laptop_state),
            "trust",
            "pause",
            work_id,
        ],
    );
    assert!(!refused.status.success(), "only a trusted device is paused");
    on_laptop(&["trust", "add", work_id, "--name", "work"]);

    let said = on_laptop(&["trust", "pause", work_id, "--receive"]);
    assert!(said.contains("applied by daemon \"laptop\""), "{said}");
    assert!(
        on_laptop(&["trust", "list"]).contains("(paused: receive)"),
        "the list says so"
    );
    assert_eq!(
        lab.status("laptop").expect("status")["pauses"]["receive"],
        serde_json::json!([work_id]),
        "and the daemon's status"
    );
    lab.copy("laptop", "on the laptop");
    lab.copy("work", "from work");
    let from_work = lab.status("work").expect("status")["clipboard"].clone();
    wait_until("the laptop to keep work's copy", || {
        lab.status("laptop").expect("status")["clipboard"] == from_work
    });
    assert_eq!(lab.paste("laptop").as_deref(), Some("on the laptop"));

    let said = on_laptop(&["trust", "resume", work_id]);
    assert!(said.contains("not paused"), "{said}");
    assert_eq!(lab.paste("laptop").as_deref(), Some("from work"));
}
