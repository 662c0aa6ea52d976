//! The wide-area transport: devices on different networks — home and office, a laptop on hotel
//! Wi-Fi, a server in the cloud — linked by iroh (QUIC, hole punching, relays as the fallback),
//! with no account and no port forwarding. The LAN keeps its own path (mio, TCP+TLS).
//!
//! ```text
//!  Rrt<WanWorker> (mio thread: the restart policy, the host's wan.lock)
//!     │ spawns, supervises, relays commands to ──▶ endpoint thread (current-thread tokio)
//!     │                                              iroh Endpoint: key = the device key
//!     │                                              ├ ALPN rrt/1: a QUIC stream per link ──┐
//!     │                                              ├ ALPN rrt-pair/1: pairing by ticket   │
//!     │                                              └ Keeper: dial paired devices           │
//!     ▼                                                                                      │
//!  network reactor ◀── NetCommand::Attach(WanLink: one end of a socket pair) ◀── bridge ◀───┘
//! ```
//!
//! **A link is a byte stream handed to the network reactor.** Each QUIC stream is bridged to one
//! end of a Unix socket pair and the other end is attached to the network reactor as a link
//! whose peer key QUIC already proved. From there it is a link like any other: the same
//! preambles and frames (rrt-wire's `Session`), the same admission (trust by key, or the join
//! secret over QUIC's keying material), membership, heartbeats, forwarding and the swarm. One
//! owner of link state, and the WAN thread only moves bytes and QUIC connections.
//!
//! **One endpoint per host.** Every instance of a user on a host shares the device key, and a
//! relay knows an endpoint by its key: two endpoints with one key would take the relay's
//! connection from each other. So the instance holding `wan.lock` (an `flock` in the state
//! directory) runs the endpoint; the others try again every few seconds, and reach other
//! networks through it by forwarding, as they reach other hosts.
//!
//! Pieces: `worker` (the mio supervisor), `endpoint` (the iroh thread's loop: accepts, dials,
//! commands), `bridge` (a QUIC stream ⇄ a socket pair), `conversation` (pairing's messages, both
//! sides), `keeper` (whom to dial, when), `pairing` (pairing's rules, the verification code),
//! `ticket` (the ticket's text), `reach` (device ids and addresses as iroh's), `address` (how to
//! reach a device, as the trust store keeps it).

pub(crate) mod address;
mod bridge;
mod conversation;
mod endpoint;
mod keeper;
pub(crate) mod pairing;
mod reach;
#[cfg(test)]
mod restart_tests;
pub(crate) mod ticket;
mod worker;

use std::{
    fmt,
    net::SocketAddr,
    os::unix::net::UnixStream,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

pub use address::WanAddress;
pub use iroh::RelayUrl;
pub use pairing::{PAIR_MESSAGE_TYPES, PairMessage, Refusal as PairRefusal};
pub use ticket::{BadTicket, Ticket};
pub(crate) use worker::WanWorker;

use crate::{
    identity::{DeviceId, Identity},
    proto::membership::Direction,
    trust::TrustStore,
};

/// The ALPN of a link's QUIC connection: the rrt protocol, as on every other link.
pub(crate) const ALPN: &[u8] = b"rrt/1";

/// Which relays the endpoint uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relays {
    /// iroh's public relays (n0's).
    Public,
    /// These relays only (`rrt relay` serves one).
    Custom(Vec<iroh::RelayUrl>),
    /// None: direct addresses only (a LAN, or hosts that reach each other).
    Disabled,
}

/// Everything the wide-area transport needs.
#[derive(Clone)]
pub(crate) struct WanConfig {
    /// This device's key: the endpoint's key.
    pub identity: Identity,
    /// This device's name, told to devices it pairs with.
    pub device: String,
    /// Which relays to use.
    pub relays: Relays,
    /// Certificates to trust for relays' TLS besides the usual roots (a self-hosted relay's).
    pub relay_ca: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// The UDP address to bind (port 0: any).
    pub bind: SocketAddr,
    /// The trust store: paired devices are written to it, and kept linked from it.
    pub trust: TrustStore,
    /// The host-wide lock whose holder runs the endpoint.
    pub lock: PathBuf,
    /// Where each new link goes: to the network reactor.
    pub attach: Arc<dyn Fn(WanLink) + Send + Sync>,
}

impl fmt::Debug for WanConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WanConfig")
            .field("id", &self.identity.id())
            .field("device", &self.device)
            .field("relays", &self.relays)
            .field("bind", &self.bind)
            .finish_non_exhaustive()
    }
}

/// A link over the wide-area transport, for the network reactor: its end of the bridge, and
/// what QUIC established about the peer.
#[derive(Debug)]
pub struct WanLink {
    /// The network reactor's end of the socket pair (the other end carries the QUIC stream).
    pub socket: UnixStream,
    /// The peer's device id, proven by the QUIC handshake.
    pub device: DeviceId,
    /// The connection's keying material for the join proof (`None` if it could not be had).
    pub exporter: Option<[u8; 32]>,
    /// Which side opened it.
    pub direction: Direction,
    /// How the connection runs now; the endpoint thread updates it.
    pub path: PathCell,
}

/// How a wide-area connection runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Path {
    /// Not known yet.
    Unknown,
    /// Through a relay.
    Relayed,
    /// Directly between the two endpoints (on one network, or hole punched through NATs).
    Direct,
}

impl Path {
    /// What `rrt peers` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Relayed => "relayed",
            Self::Direct => "direct",
        }
    }
}

/// A connection's path, shared between the endpoint thread (which watches it) and the network
/// reactor (which shows it).
#[derive(Debug, Clone, Default)]
pub struct PathCell(Arc<AtomicU8>);

impl PathCell {
    /// The path now.
    pub fn get(&self) -> Path {
        match self.0.load(Ordering::Relaxed) {
            1 => Path::Relayed,
            2 => Path::Direct,
            _ => Path::Unknown,
        }
    }

    pub(crate) fn set(&self, path: Path) {
        let value = match path {
            Path::Unknown => 0,
            Path::Relayed => 1,
            Path::Direct => 2,
        };
        self.0.store(value, Ordering::Relaxed);
    }
}

/// What a pairing tells the person at either end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum PairingEvent {
    /// The invitation's ticket, to give to the other device.
    Ticket {
        /// The ticket's text.
        ticket: String,
    },
    /// A device answered: compare this code with the one it shows, then confirm.
    Code {
        /// Six digits, `123 456`.
        code: String,
        /// The other device's name (a label).
        device: String,
        /// The other device's id.
        id: DeviceId,
    },
    /// Both confirmed: each trusts the other's key and keeps a link to it.
    Paired {
        /// The other device's name.
        device: String,
        /// The other device's id.
        id: DeviceId,
    },
    /// The pairing ended without trusting anything.
    Failed {
        /// Why.
        reason: String,
    },
}

/// A pairing under way, as its asker holds it: events to show, and the person's answer to give.
#[derive(Debug)]
pub struct Pairing {
    /// What happens, in order; ends after `Paired` or `Failed`.
    pub events: mpsc::UnboundedReceiver<PairingEvent>,
    /// The person's answer once they saw the code (dropped unanswered: no).
    pub confirm: oneshot::Sender<bool>,
}

/// What the wide-area transport is asked.
#[derive(Debug)]
pub(crate) enum WanCommand {
    /// Make an invitation standing for `ttl` and see it through.
    Invite {
        /// How long the ticket stands.
        ttl: Duration,
        /// Where its events go.
        events: mpsc::UnboundedSender<PairingEvent>,
        /// The person's answer.
        confirm: oneshot::Receiver<bool>,
    },
    /// Pair with the device that made `ticket`.
    Join {
        /// The ticket.
        ticket: Ticket,
        /// Where its events go.
        events: mpsc::UnboundedSender<PairingEvent>,
        /// The person's answer.
        confirm: oneshot::Receiver<bool>,
    },
    /// Report the endpoint's state.
    Status(oneshot::Sender<WanStatus>),
}

/// The endpoint as status displays show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WanStatus {
    /// Whether this instance runs the host's endpoint (else another instance holds the lock).
    pub running: bool,
    /// Where it can be reached, once running.
    pub address: Option<WanAddress>,
}

/// What the wide-area transport publishes.
#[derive(Debug, Clone)]
pub(crate) enum WanEvent {
    /// The endpoint is bound (this instance holds the host's lock).
    Bound {
        /// Where it can be reached.
        address: WanAddress,
    },
}

/// Makes a pairing: the asker's half and the endpoint's half.
pub(crate) fn pairing() -> (
    Pairing,
    mpsc::UnboundedSender<PairingEvent>,
    oneshot::Receiver<bool>,
) {
    let (events, receiver) = mpsc::unbounded_channel();
    let (confirm, answer) = oneshot::channel();
    (
        Pairing {
            events: receiver,
            confirm,
        },
        events,
        answer,
    )
}

/// Why the endpoint stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WanError {
    /// Binding the endpoint failed.
    #[error("the wide-area endpoint could not bind: {0}")]
    Bind(String),
    /// The endpoint thread could not start.
    #[error("the wide-area endpoint thread could not start: {0}")]
    Thread(std::io::Error),
}
