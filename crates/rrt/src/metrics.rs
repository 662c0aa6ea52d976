//! `rrt daemon --metrics ADDR`: the daemon's counters for a Prometheus-style scraper, as
//! OpenMetrics text over plain HTTP at `GET /metrics`. Bind it to localhost: anyone who can
//! reach it reads peer names and traffic.
//!
//! The server is a few lines of HTTP/1.1 on purpose — one request per connection, answered and
//! closed; a request head over 8 KiB, or not sent within 5 s, is dropped — rather than a web
//! framework in the daemon for one read-only page.

use std::{collections::BTreeMap, fmt::Write as _, time::Duration};

use rrt_mesh::{MeshView, Node, NodeStatus};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// The longest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves scrapes until the daemon stops.
pub(crate) async fn serve(node: Node, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let node = node.clone();
                tokio::spawn(async move {
                    if let Err(error) = scrape(&node, stream).await {
                        tracing::debug!(%error, "a metrics request failed");
                    }
                });
            }
            Err(error) => {
                tracing::warn!(%error, "the metrics listener cannot accept; trying again in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn scrape(node: &Node, mut stream: TcpStream) -> std::io::Result<()> {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(Some(head))) => head,
        // Too slow, too long, or gone: nothing to answer.
        _ => return Ok(()),
    };
    let request_line = head.lines().next().unwrap_or_default();
    let mut words = request_line.split(' ');
    let (method, target) = (words.next(), words.next());
    let (status, content_type, body) = match (method, target) {
        (Some("GET"), Some("/metrics")) => match (node.status().await, node.peers().await) {
            (Ok(status), Ok(peers)) => ("200 OK", CONTENT_TYPE, render(&status, &peers)),
            _ => (
                "503 Service Unavailable",
                "text/plain",
                "the node has stopped\n".to_owned(),
            ),
        },
        (Some("GET"), _) => (
            "404 Not Found",
            "text/plain",
            "the metrics are at /metrics\n".to_owned(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n".to_owned(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The request head (up to the blank line); `None` if it is too long or the client went away.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::new();
    let mut buffer = [0; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).await?;
        if read == 0 || head.len() + read > MAX_HEAD {
            return Ok(None);
        }
        head.extend_from_slice(&buffer[..read]);
    }
    Ok(Some(String::from_utf8_lossy(&head).into_owned()))
}

/// The counters as OpenMetrics text.
pub(crate) fn render(status: &NodeStatus, peers: &MeshView) -> String {
    let mut text = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(text, "# TYPE {name} {kind}");
        let _ = writeln!(text, "# HELP {name} {help}");
        let suffix = if kind == "counter" { "_total" } else { "" };
        for (labels, value) in samples {
            let _ = writeln!(text, "{name}{suffix}{labels} {value}");
        }
    };
    family(
        "rrt_peers",
        "gauge",
        "Peers up.",
        &[(String::new(), status.peers as u64)],
    );
    family(
        "rrt_members",
        "gauge",
        "Members of the mesh, this instance included, as far as it knows.",
        &[(String::new(), status.members.unwrap_or(1) as u64)],
    );
    let traffic = |pick: fn(&rrt_mesh::Traffic) -> (u64, u64)| -> Vec<(String, u64)> {
        peers
            .peers
            .iter()
            .filter_map(|peer| peer.traffic.as_ref().map(|traffic| (peer, pick(traffic))))
            .flat_map(|(peer, (incoming, outgoing))| {
                let labels = |direction| {
                    labels(&[
                        ("peer", &peer.peer.name),
                        ("id", &peer.peer.id.to_string()),
                        ("direction", direction),
                    ])
                };
                [(labels("in"), incoming), (labels("out"), outgoing)]
            })
            .collect()
    };
    family(
        "rrt_peer_messages",
        "counter",
        "Messages exchanged with each up peer since its link came up.",
        &traffic(|t| (t.messages_in, t.messages_out)),
    );
    family(
        "rrt_peer_bytes",
        "counter",
        "Bytes exchanged with each up peer since its link came up, as framed on the wire.",
        &traffic(|t| (t.bytes_in, t.bytes_out)),
    );
    family(
        "rrt_refusals",
        "counter",
        "Peers' data refused, by reason.",
        &by_label("reason", &status.refusals),
    );
    family(
        "rrt_reactor_restarts",
        "counter",
        "Restarts of a reactor's worker after it failed, by reactor thread.",
        &by_label("reactor", &status.reactor_restarts),
    );
    family(
        "rrt_store_bytes",
        "gauge",
        "Bytes on disk, by store.",
        &by_label("store", &status.store_bytes),
    );
    family(
        "rrt_blobs_fetched",
        "counter",
        "Blobs fetched whole from peers.",
        &[(String::new(), status.blobs.fetched)],
    );
    family(
        "rrt_blobs_evicted",
        "counter",
        "Blobs removed to stay under the content store's quota.",
        &[(String::new(), status.blobs.evicted)],
    );
    text.push_str("# EOF\n");
    text
}

/// One sample per key of `counts`, labelled `label="key"`.
fn by_label(label: &str, counts: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    counts
        .iter()
        .map(|(key, count)| (labels(&[(label, key)]), *count))
        .collect()
}

/// `{name="value",…}`, values escaped as OpenMetrics asks.
fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(name, value)| {
            let value = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{name}=\"{value}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            labels(&[("peer", "a \"b\"\\\nc")]),
            r#"{peer="a \"b\"\\\nc"}"#
        );
    }
}
