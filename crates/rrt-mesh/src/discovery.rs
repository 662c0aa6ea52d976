//! DNS-SD discovery across hosts: `_rrt._tcp.local.` announced and browsed on every up,
//! non-loopback interface, with the instance id, mesh, protocol version, device name and key
//! id in TXT records.
//!
//! mdns-sd's daemon is a thread of its own that owns the multicast sockets and talks over a
//! channel — the reactor pattern's discovery thread. This supervisor restarts it (with backoff)
//! whenever it dies, and hands what it resolves to the network reactor as *hints*: who a peer is
//! is proven by TLS, whether it is alive by heartbeats. A record that outlives its peer only
//! makes the reactor try a dial that fails.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent, ServiceInfo};
use rrt_reactor::Rrt;
use rrt_wire::PROTOCOL_VERSION;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::{
    identity::DeviceId,
    network::{NetCommand, NetworkWorker},
};

/// The DNS-SD service type.
pub(crate) const SERVICE_TYPE: &str = "_rrt._tcp.local.";

/// What this instance announces.
#[derive(Debug, Clone)]
pub(crate) struct Announcement {
    pub(crate) instance: Uuid,
    pub(crate) mesh: String,
    pub(crate) device: String,
    pub(crate) id: DeviceId,
    pub(crate) port: u16,
}

/// Runs discovery until `stop` fires (or its sender is dropped), restarting the mDNS daemon
/// whenever it fails.
pub(crate) async fn supervise(
    announcement: Announcement,
    net: Rrt<NetworkWorker>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match run(&announcement, &net, &mut stop).await {
            Ok(()) => return,
            Err(error) => tracing::warn!(%error, ?backoff, "mDNS discovery failed; restarting it"),
        }
        tokio::select! {
            _ = &mut stop => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One life of the mDNS daemon: `Ok` when stopped, `Err` when the daemon failed.
async fn run(
    announcement: &Announcement,
    net: &Rrt<NetworkWorker>,
    stop: &mut oneshot::Receiver<()>,
) -> Result<(), mdns_sd::Error> {
    let daemon = ServiceDaemon::new()?;
    daemon.disable_interface(vec![IfKind::LoopbackV4, IfKind::LoopbackV6])?;
    let instance_name = format!("{}-{}", announcement.device, announcement.instance.simple());
    let host = format!("{}.local.", announcement.instance.simple());
    let properties = [
        ("id", announcement.instance.to_string()),
        ("mesh", announcement.mesh.clone()),
        ("v", PROTOCOL_VERSION.to_string()),
        ("device", announcement.device.clone()),
        ("fp", announcement.id.to_string()),
    ];
    let service = ServiceInfo::new(
        SERVICE_TYPE,
        &instance_name,
        &host,
        (),
        announcement.port,
        &properties[..],
    )?
    .enable_addr_auto();
    let fullname = service.get_fullname().to_owned();
    daemon.register(service)?;
    let events = daemon.browse(SERVICE_TYPE)?;
    tracing::info!(service = %fullname, "announcing and browsing on mDNS");
    // Each remote service's addresses, to withdraw when its record goes.
    let mut hinted: HashMap<String, Vec<SocketAddr>> = HashMap::new();
    let ours = announcement.id.to_string();
    loop {
        let event = tokio::select! {
            _ = &mut *stop => {
                let _ = daemon.unregister(&fullname);
                let _ = daemon.shutdown();
                return Ok(());
            }
            event = events.recv_async() => event,
        };
        let Ok(event) = event else {
            return Err(mdns_sd::Error::Msg("the mDNS daemon stopped".to_owned()));
        };
        match event {
            ServiceEvent::ServiceResolved(service) => {
                let same_mesh = service.get_property_val_str("mesh") == Some(&announcement.mesh);
                // Same key: the same device, which the Unix sockets already connect.
                let same_device = service.get_property_val_str("fp") == Some(&ours);
                if !same_mesh || same_device || hinted.contains_key(&service.fullname) {
                    continue;
                }
                let addresses: Vec<SocketAddr> = service
                    .get_addresses_v4()
                    .into_iter()
                    .map(|ip| SocketAddr::new(IpAddr::V4(ip), service.get_port()))
                    .collect();
                tracing::info!(service = %service.fullname, ?addresses, "discovered a peer");
                for address in &addresses {
                    let _ = net.send(NetCommand::Discovered { address: *address });
                }
                hinted.insert(service.fullname.clone(), addresses);
            }
            ServiceEvent::ServiceRemoved(_, name) => {
                for address in hinted.remove(&name).into_iter().flatten() {
                    let _ = net.send(NetCommand::Forget { address });
                }
            }
            _ => {}
        }
    }
}
