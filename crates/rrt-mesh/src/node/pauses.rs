//! Where a node's clipboard pauses come from: the trust store of its device, read at start and
//! again when asked ([`ClipboardHandle::read_pauses`](super::ClipboardHandle::read_pauses)) —
//! `rrt trust pause` writes the file, and the daemons are told to read it. A node without TLS has
//! no device id: nothing names it, and it pauses nothing.

use std::io;

use rrt_sync::Pauses;

use crate::{
    identity::DeviceId,
    network::{TcpConfig, TcpSecurity},
    trust::TrustStore,
};

/// A node's trust store and its device's id.
#[derive(Debug, Clone)]
pub(super) struct PausesSource {
    trust: TrustStore,
    me: DeviceId,
}

impl PausesSource {
    /// The source of a node with this TCP configuration: none without TLS.
    pub(super) fn of(tcp: Option<&TcpConfig>) -> Option<Self> {
        match tcp {
            Some(TcpConfig {
                security: TcpSecurity::Tls(tls),
                ..
            }) => Some(Self {
                trust: tls.trust.clone(),
                me: tls.identity.id(),
            }),
            _ => None,
        }
    }

    /// This device's id, as provenance carries it.
    pub(super) fn device_id(&self) -> String {
        self.me.to_string()
    }

    /// The pauses in the trust store now (read off the async threads).
    pub(super) async fn read(&self) -> io::Result<Pauses> {
        let source = self.clone();
        tokio::task::spawn_blocking(move || source.trust.pauses(source.me))
            .await
            .map_err(io::Error::other)?
    }
}

/// [`PausesSource::read`] of an optional source: no pauses without one.
pub(super) async fn read(source: Option<&PausesSource>) -> io::Result<Pauses> {
    match source {
        Some(source) => source.read().await,
        None => Ok(Pauses::default()),
    }
}
