//! What a node shows of itself and its peers (`rrt status`, `rrt peers`).

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use rrt_sync::Stamp;
use rrt_wire::Compression;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    identity::Device,
    network::{NetStatus, Role, Shape, Topology, Traffic, Transport},
    proto::membership::PeerInfo,
    wan::Path,
};

/// The mesh as one instance sees it, for `rrt peers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MeshView {
    /// How the mesh is linked now.
    pub shape: Shape,
    /// How many members the mesh has, this instance included, as far as it knows.
    pub members: usize,
    /// The peers it has a link to (or reaches through a hub).
    pub peers: Vec<PeerStatus>,
}

/// A peer's state, for `rrt peers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerStatus {
    /// The peer.
    pub peer: PeerInfo,
    /// How it is reached.
    pub transport: Transport,
    /// How the link runs.
    pub path: LinkPath,
    /// Where it runs: `"local"` (this host), an address, `"device <short id>"` over the
    /// wide-area transport, or `"via hub"`.
    pub host: String,
    /// The device it runs on, for a TLS link: its key and the name it goes by (names may
    /// repeat across devices; the key tells them apart).
    pub device: Option<Device>,
    /// The link's compression (direct links only).
    pub compression: Option<Compression>,
    /// The last measured heartbeat round trip, in microseconds (direct links only).
    pub rtt_us: Option<u64>,
    /// Milliseconds since anything arrived from it (direct links only).
    pub last_seen_ms: Option<u64>,
    /// Milliseconds it has been up without a break (direct links only): a link that flaps
    /// starts again from zero.
    pub up_ms: Option<u64>,
    /// Whether it is in this instance's swarm neighbours (the active view; a swarm only).
    pub neighbour: bool,
    /// What crossed the link since it came up (direct links only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Traffic>,
}

/// How a link to a peer runs, as `rrt peers` shows it in its PATH column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkPath {
    /// A Unix socket on this host.
    Local,
    /// TCP or TLS on the local network (or any network the peer is reachable on directly).
    Lan,
    /// The wide-area transport, directly between the two devices (hole punched through NATs).
    Direct,
    /// The wide-area transport, through a relay.
    Relayed,
    /// The wide-area transport, before it knows which of the two.
    Unknown,
    /// Through the hub's coordinator.
    Hub,
}

impl std::fmt::Display for LinkPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Local => "local",
            Self::Lan => "lan",
            Self::Direct => "direct",
            Self::Relayed => "relayed",
            Self::Unknown => "unknown",
            Self::Hub => "hub",
        })
    }
}

/// What a node is, for `rrt status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// The stamp of the newest clipboard value the node holds, if any: what replicas converge
    /// on, shown or not (see [`ClipboardHandle::read_pauses`](crate::ClipboardHandle::read_pauses)).
    pub clipboard: Option<Stamp>,
    /// How the mesh is linked now.
    pub shape: Option<Shape>,
    /// How many members the mesh has, as far as this instance knows.
    pub members: Option<usize>,
    /// Blobs fetched, refused and evicted.
    pub blobs: super::BlobStatus,
    /// Peers' data refused since the start, by reason: `document_update` (each update or
    /// version), `blob_part` (each part or outline not the blob's), `clipboard_clock` and
    /// `clipboard_content` (once per peer and link: a peer that keeps sending them is refused
    /// without a count).
    #[serde(default)]
    pub refusals: BTreeMap<String, u64>,
    /// How many times each reactor's worker was restarted after failing, by thread: `network`,
    /// and `wide_area` when the node has the wide-area transport (an application adds its own,
    /// as the daemon does its system clipboard's).
    #[serde(default)]
    pub reactor_restarts: BTreeMap<String, u64>,
    /// Bytes on disk, by store: `clipboard`, `documents`, `blobs`.
    #[serde(default)]
    pub store_bytes: BTreeMap<String, u64>,
    /// The clipboard's pauses in effect: this device's id, the devices whose values are held
    /// but not shown, and those copies are withheld from.
    #[serde(default)]
    pub pauses: rrt_sync::Pauses,
}

/// How many times a reactor's worker was restarted after failing: within its current
/// generation, and once for each generation before it (a reactor that gave up is relaunched).
pub(super) fn restarts(status: &rrt_reactor::Status) -> u64 {
    status.generation.saturating_sub(1) + u64::from(status.restarts)
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
            (_, Some(Path::Direct)) => LinkPath::Direct,
            (_, Some(Path::Relayed)) => LinkPath::Relayed,
            (_, Some(Path::Unknown)) => LinkPath::Unknown,
            (Transport::Unix, None) => LinkPath::Local,
            _ => LinkPath::Lan,
        },
        transport: link.transport,
        host: link.host,
        device: link.device,
        compression: Some(link.compression),
        rtt_us: link.status.rtt.map(micros),
        last_seen_ms: Some(millis(link.status.silent_for)),
        up_ms: Some(millis(link.status.up_for)),
        traffic: Some(link.traffic),
    });
    let relayed = net.relayed.into_iter().map(|peer| PeerStatus {
        peer,
        transport: Transport::Hub,
        path: LinkPath::Hub,
        host: "via hub".to_owned(),
        device: None,
        compression: None,
        rtt_us: None,
        last_seen_ms: None,
        up_ms: None,
        neighbour: false,
        traffic: None,
    });
    MeshView {
        shape: net.shape,
        members: net.members,
        peers: direct.chain(relayed).collect(),
    }
}
