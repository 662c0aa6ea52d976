//! How to reach a device across networks. Its own file because the trust store keeps one per
//! paired device, and the trust store is below the wide-area transport.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// How to reach a device over the wide-area transport: its relays and direct addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WanAddress {
    /// Relay URLs it is reachable through.
    pub relays: Vec<String>,
    /// Its direct addresses (those it listens on; a NAT's public one is learnt by hole punching).
    pub addrs: Vec<SocketAddr>,
}
