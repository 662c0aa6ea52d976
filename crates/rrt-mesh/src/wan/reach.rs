//! How the endpoint names what it dials and what it is: rrt's device ids and addresses as
//! iroh's endpoint ids and addresses, and back.

use std::{net::SocketAddr, time::Duration};

use iroh::{Endpoint, EndpointAddr, TransportAddr};

use super::{Relays, WanAddress, WanConfig};
use crate::identity::DeviceId;

/// How long a dial may take, relay and handshake included.
pub(super) const DIAL_TIMEOUT: Duration = Duration::from_secs(15);

/// Where this endpoint can be reached: its relays (the configured ones, and the home relay
/// once known) and the addresses it is bound to (every local address for an unspecified one).
pub(super) fn address_of(endpoint: &Endpoint, config: &WanConfig) -> WanAddress {
    let current = endpoint.addr();
    let mut relays: Vec<String> = current
        .addrs
        .iter()
        .filter_map(|addr| match addr {
            TransportAddr::Relay(url) => Some(url.to_string()),
            _ => None,
        })
        .collect();
    if let Relays::Custom(urls) = &config.relays {
        for url in urls {
            let url = url.to_string();
            if !relays.contains(&url) {
                relays.push(url);
            }
        }
    }
    let mut addrs: Vec<SocketAddr> = current
        .addrs
        .iter()
        .filter_map(|addr| match addr {
            TransportAddr::Ip(ip) => Some(*ip),
            _ => None,
        })
        .collect();
    if addrs.is_empty() {
        addrs = endpoint
            .bound_sockets()
            .into_iter()
            .filter(|address| !address.ip().is_unspecified())
            .collect();
    }
    WanAddress { relays, addrs }
}

/// How to dial `device`; `None` if its id is not an Ed25519 key (not a point on the curve: a
/// damaged ticket or trust entry).
pub(super) fn endpoint_addr(device: DeviceId, address: &WanAddress) -> Option<EndpointAddr> {
    let key = iroh::PublicKey::from_bytes(device.as_bytes()).ok()?;
    let mut addr = EndpointAddr::new(key);
    for relay in &address.relays {
        match relay.parse() {
            Ok(url) => addr = addr.with_relay_url(url),
            Err(error) => tracing::debug!(%error, relay, "not a relay URL"),
        }
    }
    for ip in &address.addrs {
        addr = addr.with_ip_addr(*ip);
    }
    Some(addr)
}

pub(super) fn device_of(key: iroh::PublicKey) -> DeviceId {
    DeviceId::from_bytes(*key.as_bytes())
}
