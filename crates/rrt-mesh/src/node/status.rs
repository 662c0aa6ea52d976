//! What a node shows of itself and its peers (`rrt status`, `rrt peers`).

use std::{path::PathBuf, time::Duration};

use rrt_sync::Stamp;
use rrt_wire::Compression;
use serde::Serialize;
use uuid::Uuid;

use crate::{
    identity::Device,
    membership::PeerInfo,
    network::{NetStatus, Role, Shape, Topology},
};

/// The mesh as one instance sees it, for `rrt peers`.
#[derive(Debug, Clone, Serialize)]
pub struct MeshView {
    /// How the mesh is linked now.
    pub shape: Shape,
    /// How many members the mesh has, this instance included, as far as it knows.
    pub members: usize,
    /// The peers it has a link to (or reaches through a hub).
    pub peers: Vec<PeerStatus>,
}

/// A peer's state, for `rrt peers`.
#[derive(Debug, Clone, Serialize)]
pub struct PeerStatus {
    /// The peer.
    pub peer: PeerInfo,
    /// How it is reached: `"unix"` (a direct link on this host), `"tls"` or `"tcp"` (a direct
    /// link to another host), `"iroh"` (the wide-area transport) or `"hub"` (through the
    /// coordinator).
    pub transport: &'static str,
    /// How the link runs: `"local"` (a Unix socket on this host), `"lan"` (TCP, TLS),
    /// `"direct"` or `"relayed"` (the wide-area transport, hole punched or through a relay;
    /// `"unknown"` until it is known), `"hub"` (through the hub's coordinator).
    pub path: &'static str,
    /// Where it runs: `"local"` (this host), an address, `"device <short id>"` over the
    /// wide-area transport, or `"via hub"`.
    pub host: String,
    /// The device it runs on, for a TLS link: its key and the name it goes by (names may
    /// repeat across devices; the key tells them apart).
    pub device: Option<Device>,
    /// The link's compression, `"lz4"` or `"none"` (direct links only).
    pub compression: Option<&'static str>,
    /// The last measured heartbeat round trip, in microseconds (direct links only).
    pub rtt_us: Option<u64>,
    /// Milliseconds since anything arrived from it (direct links only).
    pub last_seen_ms: Option<u64>,
    /// Milliseconds it has been up without a break (direct links only): a link that flaps
    /// starts again from zero.
    pub up_ms: Option<u64>,
    /// Whether it is in this instance's swarm neighbours (the active view; a swarm only).
    pub neighbour: bool,
}

/// What a node is, for `rrt status`.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    /// The instance id.
    pub id: Uuid,
    /// The instance name.
    pub name: String,
    /// The mesh.
    pub mesh: String,
    /// The process id.
    pub pid: u32,
    /// The topology.
    pub topology: Topology,
    /// This instance's role in it.
    pub role: Option<Role>,
    /// Where it listens for TCP peers, if it does.
    pub listen: Option<std::net::SocketAddr>,
    /// The mesh directory.
    pub mesh_dir: PathBuf,
    /// Where the clipboard is stored.
    pub state_file: PathBuf,
    /// Peers up.
    pub peers: usize,
    /// The network reactor's state and generation.
    pub reactor: String,
    /// The current clipboard value's stamp, if any.
    pub clipboard: Option<Stamp>,
    /// How the mesh is linked now.
    pub shape: Option<Shape>,
    /// How many members the mesh has, as far as this instance knows.
    pub members: Option<usize>,
    /// Blobs fetched, refused and evicted.
    pub blobs: super::BlobStatus,
}

/// The network thread's view of the peers, for status displays.
pub(super) fn mesh_view(net: NetStatus) -> MeshView {
    let millis = |duration: Duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    let micros = |duration: Duration| u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
    let neighbours = net.neighbours;
    let direct = net.links.into_iter().map(|link| PeerStatus {
        neighbour: neighbours.contains(&link.status.peer.id),
        peer: link.status.peer,
        path: match (link.transport, link.path) {
            (_, Some(path)) => path.as_str(),
            ("unix", None) => "local",
            _ => "lan",
        },
        transport: link.transport,
        host: link.host,
        device: link.device,
        compression: Some(match link.compression {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
        }),
        rtt_us: link.status.rtt.map(micros),
        last_seen_ms: Some(millis(link.status.silent_for)),
        up_ms: Some(millis(link.status.up_for)),
    });
    let relayed = net.relayed.into_iter().map(|peer| PeerStatus {
        peer,
        transport: "hub",
        path: "hub",
        host: "via hub".to_owned(),
        device: None,
        compression: None,
        rtt_us: None,
        last_seen_ms: None,
        up_ms: None,
        neighbour: false,
    });
    MeshView {
        shape: net.shape,
        members: net.members,
        peers: direct.chain(relayed).collect(),
    }
}
