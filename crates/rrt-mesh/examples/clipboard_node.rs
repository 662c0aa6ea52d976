//! An application embedding a node: it joins the mesh `example`, prints who comes and goes and
//! every clipboard change, and copies each line you type to every instance.
//!
//! Run it in two terminals and type in either:
//!
//! ```text
//! cargo run -p rrt-mesh --example clipboard_node -- alice
//! cargo run -p rrt-mesh --example clipboard_node -- bob
//! ```

use rrt_mesh::{Node, NodeEvent};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "example".to_owned());
    let node = Node::builder("example")
        .name(name)
        .state_dir(std::env::temp_dir().join("rrt-example-state"))
        .spawn()
        .await?;
    let clipboard = node.clipboard();
    let mut events = node.events();
    if let Some(current) = clipboard.current().await? {
        println!("clipboard: {:?}", current.text);
    }
    println!("type a line to copy it everywhere; Ctrl-D leaves");

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(line) => {
                    clipboard.copy(line).await?;
                }
                None => break,
            },
            event = events.next() => match event {
                Some(NodeEvent::PeerUp { peer }) => println!("+ {} joined", peer.name),
                Some(NodeEvent::PeerDown { peer, reason }) => {
                    println!("- {} left: {reason}", peer.name);
                }
                Some(NodeEvent::Clipboard { entry }) => println!("clipboard: {:?}", entry.text),
                Some(NodeEvent::Document { .. } | NodeEvent::Presence { .. }) => {}
                // This terminal fell behind: say so, show what is current, and go on.
                Some(NodeEvent::Lagged { missed }) => {
                    let current = clipboard.current().await?.map(|entry| entry.text);
                    println!("({missed} events skipped) clipboard: {current:?}");
                }
                None => break,
            },
        }
    }
    node.leave().await?;
    Ok(())
}
