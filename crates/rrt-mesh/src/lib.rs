//! rrt's mesh: instances of one application find each other, keep track of who is up, and share
//! a clipboard — on one host through Unix sockets in a private directory, with no server.
//!
//! * [`dir`] and [`registry`]: the mesh directory and `peers.json`.
//! * [`same_user`]: who may talk to whom on this host — the same uid only, checked on both ends
//!   of every Unix socket.
//! * [`membership`]: hello / goodbye / ping / pong as a sans-IO state machine.
//! * [`network`]: the network reactor — one thread owning the listener, every peer connection
//!   and the directory watch.
//! * [`wan`]: beyond one LAN — the wide-area transport (iroh: relays, hole punching) as a
//!   reactor of its own whose links join the network reactor's, and pairing by ticket.
//! * [`identity`], [`trust`], [`join`]: a device is its Ed25519 key; whom it trusts; the join
//!   secret's proof.
//! * [`ContentConfig`]: what is shared and fetched of images, HTML and files, which travel by
//!   hash (see `rrt_sync`'s blobs) and are fetched at once or on paste.
//! * [`Node`]: the async handle applications (and the `rrt` daemon) use; [`DocumentHandle`]:
//!   one of its replicated documents, with a stream of changes.
//!
//! ```no_run
//! use rrt_mesh::{Node, NodeConfig, NodeEvent};
//!
//! # async fn run() -> Result<(), rrt_mesh::NodeError> {
//! let node = Node::start(NodeConfig::new("default", "laptop-editor")).await?;
//! let mut events = node.subscribe();
//! node.copy("shared with every instance".to_owned()).await?;
//! while let Ok(event) = events.recv().await {
//!     if let NodeEvent::Clipboard { entry } = event {
//!         println!("clipboard: {}", entry.text);
//!     }
//! }
//! # Ok(()) }
//! ```

mod blob_worker;
mod content_config;
pub mod dir;
pub mod discovery;
mod document_handle;
mod documents;
pub mod identity;
pub mod join;
mod link_message;
pub mod membership;
mod message;
pub mod network;
mod node;
pub mod registry;
pub mod roster;
pub mod same_user;
pub mod swarm;
pub mod trust;
mod wall_clock;
pub mod wan;
mod writer;

pub use content_config::{BadRule, ContentConfig, TypeRule, parse_size};
pub use document_handle::{DocumentChange, DocumentChanges, DocumentHandle, Origin};
pub use documents::{DocumentError, MAX_LOCAL_EDIT, STATE};
pub use link_message::{LinkMessage, Member};
pub use message::{Message, message_types};
pub use network::Transport;
pub use node::{
    BlobStatus, Edit, LinkPath, MeshView, Node, NodeConfig, NodeError, NodeEvent, NodeStatus,
    PeerStatus, Since, Transfer, WanOptions, default_state_dir,
};
