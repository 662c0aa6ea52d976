//! An application embedding a node: it joins the mesh `example`, prints who comes and goes and
//! every clipboard change, and copies each line you type to every instance.
//!
//! Run it in two terminals and type in either:
//!
//! ```text
//! cargo run -p rrt-mesh --example clipboard_node -- alice
//! cargo run -p rrt-mesh --example clipboard_node -- bob
//! ```

use rrt_mesh::{Node, NodeConfig, NodeEvent};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "example".to_owned());
    let mut config = NodeConfig::new("example", name);
    config.state_dir = std::env::temp_dir().join("rrt-example-state");
    let node = Node::start(config).await?;
    let mut events = node.subscribe();
    if let Some(current) = node.clipboard().await? {
        println!("clipboard: {:?}", current.text);
    }
    println!("type a line to copy it everywhere; Ctrl-D leaves");

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(line) => {
                    node.copy(line).await?;
                }
                None => break,
            },
            event = events.recv() => match event? {
                NodeEvent::PeerUp { peer } => println!("+ {} joined", peer.name),
                NodeEvent::PeerDown { peer, reason } => println!("- {} left: {reason}", peer.name),
                NodeEvent::Clipboard { entry } => println!("clipboard: {:?}", entry.text),
                NodeEvent::Document { .. } | NodeEvent::Presence { .. } => {}
            },
        }
    }
    node.leave().await?;
    Ok(())
}
