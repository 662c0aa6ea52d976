//! The network reactor: one thread owning every peer socket of an instance.
//!
//! A [`Node`](crate::Node) runs it for you. It is public as an `rrt-reactor` [`Worker`](rrt_reactor::Worker)
//! (`Rrt<NetworkWorker>`) for programs that move messages without a node's sync machines — the
//! round-trip benchmark measures it bare — and its settings' types are also at the crate root.
//!
//! The worker is a driver; the rules live in components that own their state and never reach
//! back into it (dependencies point down only: `worker` → `sockets`, `tls` → the machines →
//! `crate::proto::join`):
//!
//! ```text
//!      NetCommand (Send/Broadcast/Multicast/Discovered/Forget/Status/Attach/Leave)
//!                                  │                        ▲ NetEvent (PeerUp/Down, Message)
//!  ┌ worker (mio driver) ──────────▼────────────────────────┴──────────────────────────────┐
//!  │ sockets: accept, inotify ───┐                                                          │
//!  │ resolver (helper thread) ───┼─▶ Dialer (sans-IO): poll_action ─▶ dial Unix / TCP(+TLS)  │
//!  │ Attach: a wide-area link (a socket pair bridged to QUIC by `crate::wan`) ─┐              │
//!  │                             │                                         │                │
//!  │ Links: socket ⇄ Session ────┼─▶ Admission (sans-IO, TLS + WAN) ◀┘─▶ Pin ─▶ pins (thread) │
//!  │   ▲ send / send_encoded     └─▶ Membership (sans-IO: hello, heartbeats, hub lists)     │
//!  │   └── fanout: one encoding per format ◀── Broadcast / Multicast ◀── Spread (shape)     │
//!  │ worker/swarm: Swarm (HyParView + Plumtree) and Roster (members) over the links         │
//!  │ hub: coordinator lock and listener, a leaf's attempts to reach it                     │
//!  └────────────────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! * `api` — the configuration, commands, events and status that cross the channel.
//! * `links` — the link table: sockets, sessions, tokens, the read buffer.
//! * `dialer` — how links come to be (lower pid dials, retries, `--peer`, discovery).
//! * `admission` — who may use a TLS or wide-area link (trust by key, join secret, refusals);
//!   the join secret's proof is `crate::proto::join`'s.
//! * `fanout` — a message to many links, encoded once per encoding.
//! * `spread` — the mesh's shape (full mesh or swarm) and what follows: where a broadcast goes,
//!   who is a clique, which links a swarm lets go; `worker/swarm` drives the swarm and the
//!   roster (`crate::proto::swarm`, `crate::proto::roster`) over the worker's links.
//! * `hub` — the hub topology's coordinator role; `sockets` — bind, accept, dial and the
//!   directory watch; `resolver`, `pins` — the helper threads that keep blocking calls off the reactor.

mod admission;
mod api;
mod dialer;
mod fanout;
mod hub;
mod links;
mod pins;
mod resolver;
mod sockets;
mod spread;
mod stream;
mod tls;
mod worker;

pub use api::{
    LinkView, NetCommand, NetEvent, NetStatus, NetworkConfig, Reach, Shape, TcpConfig, TcpSecurity,
    TlsConfig, Traffic, Transport,
};
pub use hub::{Role, Topology};
pub use spread::{DEFAULT_SWARM_ABOVE, SWARM};
pub use worker::NetworkWorker;
