//! Two (or more) processes editing one document: each line you type is appended to the shared
//! document `example`, and every process prints the document whenever anyone changes it.
//! Edits made at the same time merge; a process started later catches up.
//!
//! ```text
//! cargo run -p rrt-mesh --example shared_document -- alice
//! cargo run -p rrt-mesh --example shared_document -- bob
//! ```

use rrt_mesh::{Edit, Node, NodeConfig, NodeEvent};
use tokio::io::{AsyncBufReadExt, BufReader};

const DOCUMENT: &str = "example";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "writer".to_owned());
    let mut config = NodeConfig::new("documents-example", name.clone());
    config.state_dir = std::env::temp_dir().join(format!("rrt-document-example-{name}"));
    config.tcp = None;
    let node = Node::start(config).await?;
    let mut events = node.subscribe();
    println!("type lines to add them to {DOCUMENT:?}; Ctrl-D leaves");

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(line) => node.edit(DOCUMENT, Edit::Append(format!("{name}: {line}\n"))).await?,
                None => break,
            },
            event = events.recv() => match event? {
                NodeEvent::Document { name } if name == DOCUMENT => {
                    println!("--- {DOCUMENT} ---\n{}", node.text(DOCUMENT).await?);
                }
                NodeEvent::PeerUp { peer } => println!("+ {} joined", peer.name),
                _ => {}
            },
        }
    }
    node.leave().await?;
    Ok(())
}
