//! The network reactor's public face: how it is configured, what it publishes, what it is
//! asked. Everything here crosses the channel between the reactor thread and async code.

use std::{net::SocketAddr, path::PathBuf};

use rrt_sync::Arrival;
use rrt_wire::{Compression, WireConfig};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::hub::{Role, Topology};
use crate::{
    Message,
    dir::MeshDir,
    identity::{Device, Identity},
    proto::membership::{DownReason, HeartbeatConfig, LinkStatus, PeerInfo},
    trust::TrustStore,
    wan::{Path, WanLink},
};

/// TCP links to other hosts.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// If `listen`'s port is taken, listen on any free port instead.
    pub fall_back_to_any_port: bool,
    /// `HOST:PORT`s to dial and keep dialing.
    pub peers: Vec<String>,
    /// TLS, or plain TCP for a lab.
    pub security: TcpSecurity,
    /// The compression this side proposes when it dials another host. LZ4 pays across a
    /// network (text and CRDT updates shrink several-fold for microseconds of CPU); on a Unix
    /// socket it would only cost, so same-host links never propose it. Accepted links follow the
    /// dialer, whatever this says.
    pub compression: Compression,
}

/// How TCP links are protected.
#[derive(Debug, Clone)]
pub enum TcpSecurity {
    /// Plain TCP: anyone who reaches the port joins. For labs only.
    Insecure,
    /// TLS 1.3 with this device's identity; peers must be trusted or prove the join secret.
    Tls(TlsConfig),
}

/// A device's TLS settings.
#[derive(Clone)]
pub struct TlsConfig {
    /// This device's key and certificate.
    pub identity: Identity,
    /// This device's name (pinned to its key by the devices it joins with the secret).
    pub device: String,
    /// Which devices are trusted.
    pub trust: TrustStore,
    /// The mesh's join secret, if this device uses one.
    pub secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("id", &self.identity.id())
            .field("device", &self.device)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// Everything the network worker needs to know about its instance and mesh.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// The mesh directory.
    pub dir: MeshDir,
    /// This instance, as its hello introduces it.
    pub me: PeerInfo,
    /// This process's id (names its socket; the lower pid of two dials the other).
    pub pid: u32,
    /// The control socket this instance's program serves, if any: an instance that has one is
    /// listed in `peers.json`, where the CLI finds daemons; one without (a node embedded in an
    /// application) is not, so the CLI never picks it.
    pub control_socket: Option<PathBuf>,
    /// How instances connect.
    pub topology: Topology,
    /// TCP links to other hosts, if any.
    pub tcp: Option<TcpConfig>,
    /// Heartbeat timing.
    pub heartbeat: HeartbeatConfig,
    /// Wire settings.
    pub wire: WireConfig,
    /// Above this many members the mesh is a swarm (partial views, a broadcast tree) rather
    /// than a full mesh ([`DEFAULT_SWARM_ABOVE`](super::DEFAULT_SWARM_ABOVE)).
    pub swarm_above: usize,
}

/// How the instances of a mesh are linked (`spread` decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// Everyone to everyone.
    FullMesh,
    /// A partial view each, and a broadcast tree.
    Swarm,
}

/// How an up peer is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Over a socket of the mesh directory, on this host.
    SameHost,
    /// Over TCP, from another host (or this one, by its address).
    Network,
    /// Through the hub's coordinator, without a link of its own.
    Relayed,
}

/// What the network reactor publishes.
#[derive(Debug, Clone)]
pub enum NetEvent {
    /// A peer said hello.
    PeerUp {
        /// The peer.
        peer: PeerInfo,
        /// How it is reached.
        reach: Reach,
        /// Whether it is in this instance's clique: the full mesh of one host's instances,
        /// which send what they send to each other themselves.
        clique: bool,
    },
    /// An up peer moved to another link (of two, both sides keep the same one): whatever its
    /// arrival started must start again, as what was in flight on the old link may be lost.
    Relinked {
        /// The peer.
        peer: PeerInfo,
        /// How it is reached now.
        reach: Reach,
        /// Whether it is in this instance's clique now (it changes with the mesh's shape).
        clique: bool,
    },
    /// A peer is gone.
    PeerDown {
        /// The peer.
        peer: PeerInfo,
        /// Why.
        reason: DownReason,
    },
    /// An application message (clipboard, state) from an up peer.
    Message {
        /// The sender (for a tree's delivery, its last hop).
        from: Uuid,
        /// The message.
        message: Message,
        /// Over its link, or delivered by the swarm's broadcast tree (which carries it on).
        arrival: Arrival,
    },
}

/// What the async layer asks of the network reactor.
#[derive(Debug)]
pub enum NetCommand {
    /// Send to one peer (dropped, with a log line, if it is not up).
    Send {
        /// The peer.
        to: Uuid,
        /// The message.
        message: Message,
    },
    /// Send to every up peer but `except`.
    Broadcast {
        /// The message.
        message: Message,
        /// A peer to leave out (the one a relayed message came from).
        except: Option<Uuid>,
    },
    /// Report this instance's role and every up peer's liveness.
    Status(oneshot::Sender<NetStatus>),
    /// The `--peer` targets are now `addresses` (see the dialer: new ones are dialed at once,
    /// unlisted ones no longer).
    SetPeers {
        /// `HOST:PORT` each.
        addresses: Vec<String>,
    },
    /// A peer was discovered at `address`: dial it, and keep trying while the hint stands.
    Discovered {
        /// Where it listens.
        address: SocketAddr,
    },
    /// A discovered address is gone from discovery: stop trying it (a link stays until it fails).
    Forget {
        /// The address.
        address: SocketAddr,
    },
    /// Send to exactly these peers (encoded once per negotiated format); those not up are
    /// skipped, with a debug log line.
    Multicast {
        /// The peers.
        to: Vec<Uuid>,
        /// The message.
        message: Message,
    },
    /// A link of the wide-area transport, its peer's key proven by QUIC: watch it, admit it
    /// like a TLS link, and treat it as any other link from then on.
    Attach(WanLink),
    /// Say goodbye to every peer and stop.
    Leave,
}

/// The network reactor's view, for status displays.
#[derive(Debug, Clone)]
pub struct NetStatus {
    /// This instance's role in its topology.
    pub role: Role,
    /// Where this instance listens for TCP peers.
    pub listen: Option<SocketAddr>,
    /// Every up peer with a direct link.
    pub links: Vec<LinkView>,
    /// Hub leaves: the other leaves, as the coordinator lists them.
    pub relayed: Vec<PeerInfo>,
    /// How the mesh is linked now.
    pub shape: Shape,
    /// How many members the mesh has, this instance included, as far as it knows.
    pub members: usize,
    /// The swarm's active view: the peers this instance keeps links to for the swarm.
    pub neighbours: Vec<Uuid>,
}

/// How a peer is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// A Unix socket on this host.
    Unix,
    /// Plain TCP to another host (a lab's `--insecure`).
    Tcp,
    /// TLS over TCP to another host.
    Tls,
    /// The wide-area transport (iroh: QUIC, direct or through a relay).
    Iroh,
    /// Through the hub's coordinator, without a link of its own.
    Hub,
    /// A link that went away while its view was taken.
    Unknown,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unix => "unix",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Iroh => "iroh",
            Self::Hub => "hub",
            Self::Unknown => "unknown",
        })
    }
}

/// An up peer's direct link, for status displays.
#[derive(Debug, Clone)]
pub struct LinkView {
    /// The peer and its liveness.
    pub status: LinkStatus,
    /// How the link is carried.
    pub transport: Transport,
    /// Over the wide-area transport: whether the connection is direct or relayed now.
    pub path: Option<Path>,
    /// `"local"`, or the peer's address.
    pub host: String,
    /// The compression the link's handshake agreed on.
    pub compression: Compression,
    /// Over TLS: the device behind the link.
    pub device: Option<Device>,
    /// What crossed the link since it came up.
    pub traffic: Traffic,
}

/// What crossed a link, both ways: whole messages, and their bytes as framed on the wire
/// (after compression).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Traffic {
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent (queued for the socket).
    pub messages_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent (queued for the socket).
    pub bytes_out: u64,
}
