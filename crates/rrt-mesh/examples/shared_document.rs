//! Two (or more) processes editing one document: each line you type is appended to the shared
//! document `example`, and every process prints the document whenever anyone changes it.
//! Edits made at the same time merge; a process started later catches up.
//!
//! ```text
//! cargo run -p rrt-mesh --example shared_document -- alice
//! cargo run -p rrt-mesh --example shared_document -- bob
//! ```

use rrt_mesh::{DocumentChange, Node, NodeConfig, NodeEvent, Origin};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "writer".to_owned());
    let mut config = NodeConfig::new("documents-example", name.clone());
    config.state_dir = std::env::temp_dir().join(format!("rrt-document-example-{name}"));
    config.tcp = None;
    let node = Node::start(config).await?;
    let document = node.document("example");
    let mut changes = document.changes();
    let mut events = node.subscribe();
    println!(
        "type lines to add them to {:?}; Ctrl-D leaves",
        document.name()
    );

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(line) => document.append(format!("{name}: {line}\n")).await?,
                None => break,
            },
            change = changes.next() => {
                let who = match change {
                    Some(DocumentChange::Changed(Origin::Local)) => "you".to_owned(),
                    Some(DocumentChange::Changed(Origin::Peer(peer))) => format!("peer {peer}"),
                    Some(DocumentChange::Missed) => "several edits".to_owned(),
                    None => break,
                };
                println!("--- {} (changed by {who}) ---\n{}", document.name(), document.text().await?);
            }
            Ok(NodeEvent::PeerUp { peer }) = events.recv() => println!("+ {} joined", peer.name),
        }
    }
    node.leave().await?;
    Ok(())
}
