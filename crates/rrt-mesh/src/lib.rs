#![doc = include_str!("../README.md")]

mod blob_worker;
mod content_config;
mod dir;
mod discovery;
mod document_handle;
mod documents;
mod identity;
mod link_message;
mod message;
pub mod network;
mod node;
pub mod proto;
mod registry;
pub mod same_user;
mod trust;
mod wall_clock;
mod wan;
mod writer;

pub use content_config::{BadRule, ContentConfig, TypeRule, parse_size};
pub use dir::{DirError, MeshDir};
pub use document_handle::{DocumentChange, DocumentChanges, DocumentHandle, Origin};
pub use documents::{EditError, MAX_LOCAL_EDIT, STATE};
pub use identity::{BadDeviceId, Device, DeviceId, Identity, IdentityError};
pub use link_message::{LinkMessage, Member};
pub use message::{Message, message_types};
pub use network::{Role, Shape, TcpConfig, TcpSecurity, TlsConfig, Topology, Traffic, Transport};
pub use node::{
    BlobStatus, ClipboardChange, ClipboardChanges, ClipboardHandle, CopyError, Edit, FetchError,
    Hop, ImportError, LinkPath, MeshView, Node, NodeBuilder, NodeEvent, NodeEvents, NodeStatus,
    PairError, PausesError, PeerStatus, PeersError, PinError, ReadError, Since, StartError,
    Stopped, Transfer, WanOptions, Why,
};
pub use proto::membership::{DownReason, HeartbeatConfig, PeerInfo};
pub use registry::{Registry, RegistryEntry};
pub use trust::{Paused, TrustStore, TrustedDevice, Verdict};
pub use wan::{
    BadTicket, PAIR_MESSAGE_TYPES, PairMessage, PairRefusal, Pairing, PairingEvent, RelayUrl,
    Relays, Ticket, WanAddress, WanStatus,
};
