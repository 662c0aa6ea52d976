//! End to end: the daemon's counters — traffic per peer, refusals, restarts, store sizes — in
//! `rrt status --json`, and scraped from `--metrics` as OpenMetrics that a standard parser
//! (python's prometheus_client) reads.

mod common;

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    process::{Command, Stdio},
};

use common::{Lab, wait_until};

/// A port free on localhost now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The response to `GET path`, as (status line, content type, body).
fn get(port: u16, path: &str) -> (String, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.lines().next().unwrap_or_default().to_owned();
    let content_type = head
        .lines()
        .find_map(|line| line.strip_prefix("Content-Type: "))
        .unwrap_or_default()
        .to_owned();
    (status, content_type, body.to_owned())
}

#[test]
fn counters_in_status_and_a_real_scrape() {
    let mut lab = Lab::new("metrics");
    let port = free_port();
    lab.start_with("a", &["--metrics".to_owned(), format!("127.0.0.1:{port}")]);
    lab.start("b");
    lab.wait_for_mesh(&["a", "b"]);
    lab.copy("a", "counted");
    wait_until("b to have the copy", || {
        lab.paste("b").as_deref() == Some("counted")
    });

    let status = lab.status("a").expect("a answers");
    let traffic = status["traffic"].as_array().expect("traffic");
    let to_b = traffic
        .iter()
        .find(|peer| peer["name"] == "b")
        .expect("a link to b");
    for counter in ["messages_in", "messages_out", "bytes_in", "bytes_out"] {
        assert!(to_b[counter].as_u64().unwrap_or(0) > 0, "{counter}: {to_b}");
    }
    assert!(status["store_bytes"]["clipboard"].as_u64().unwrap_or(0) > 0);
    assert_eq!(
        status["reactor_restarts"],
        serde_json::json!({"network": 0}),
        "the network reactor (no wide-area transport, no system clipboard here)"
    );
    assert!(status["refusals"].is_object());

    let (line, content_type, body) = get(port, "/metrics");
    assert_eq!(line, "HTTP/1.1 200 OK");
    assert!(content_type.starts_with("application/openmetrics-text"));
    let parsed = Command::new("python3")
        .args([
            "-c",
            "import sys\n\
             from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
             for family in text_string_to_metric_families(sys.stdin.read()):\n\
             \x20   for sample in family.samples:\n\
             \x20       print(sample.name, sample.labels.get('peer', ''), sample.labels.get('direction', ''), sample.value)\n",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut python| {
            python
                .stdin
                .take()
                .expect("stdin")
                .write_all(body.as_bytes())?;
            python.wait_with_output()
        })
        .expect("python3");
    let samples = String::from_utf8_lossy(&parsed.stdout);
    assert!(
        parsed.status.success(),
        "the parser refused the page: {}\n{body}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    assert!(
        samples.lines().any(|line| line == "rrt_peers   1"),
        "{samples}"
    );
    let sent_to_b = samples
        .lines()
        .find(|line| line.starts_with("rrt_peer_messages_total b out "))
        .expect("messages to b");
    assert!(!sent_to_b.ends_with(" 0"), "{sent_to_b}");

    let (line, _, _) = get(port, "/elsewhere");
    assert_eq!(line, "HTTP/1.1 404 Not Found");
}
