//! Two (or more) processes editing one document: each line you type is appended to the shared
//! document `example`, and every process prints the document whenever anyone changes it.
//! Edits made at the same time merge; a process started later catches up.
//!
//! ```text
//! cargo run -p rrt-mesh --example shared_document -- alice
//! cargo run -p rrt-mesh --example shared_document -- bob
//! ```

use rrt_mesh::{DocumentChange, Node, NodeEvent, Origin};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "writer".to_owned());
    let node = Node::builder("documents-example")
        .name(name.clone())
        .state_dir(std::env::temp_dir().join(format!("rrt-document-example-{name}")))
        .spawn()
        .await?;
    let document = node.document("example");
    let mut changes = document.changes();
    let mut events = node.events();
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
                    // Behind: the text read now has every change all the same.
                    Some(DocumentChange::Lagged { .. }) => "several edits".to_owned(),
                    // Someone's cursor moved: the text is as it was.
                    Some(DocumentChange::Editors) => continue,
                    None => break,
                };
                println!("--- {} (changed by {who}) ---\n{}", document.name(), document.text().await?);
            }
            event = events.next() => match event {
                Some(NodeEvent::PeerUp { peer }) => println!("+ {} joined", peer.name),
                Some(_) => {}
                None => break,
            },
        }
    }
    node.leave().await?;
    Ok(())
}
