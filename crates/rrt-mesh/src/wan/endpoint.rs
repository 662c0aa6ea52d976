//! The endpoint thread: a current-thread tokio runtime owning the iroh `Endpoint` and every
//! connection of it. It accepts and dials links (ALPN `rrt/1`) and bridges each to a socket pair
//! whose other end goes to the network reactor; it runs pairings (ALPN `rrt-pair/1`); and it
//! dials paired devices when the [`Keeper`] says so. It decides no protocol rule of rrt's: the
//! bytes of a link are the network reactor's to read.
//!
//! ```text
//!  commands (from the mio supervisor) ─┐
//!  endpoint.accept() ──────────────────┼─▶ select! ─▶ link task: QUIC stream ⇄ socket pair
//!  keeper's next dial (sleep_until) ───┤             pairing task: inviter or joiner side
//!  link tasks' ends ───────────────────┘
//! ```

use std::{
    io,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use iroh::{
    Endpoint, RelayConfig, RelayMap, RelayMode, SecretKey,
    endpoint::{PortmapperConfig, presets},
    tls::CaTlsConfig,
};
use tokio::sync::mpsc;

use super::{
    ALPN, Relays, WanAddress, WanCommand, WanConfig, WanError, WanEvent, bridge,
    conversation::{self, Invited, Pairings},
    keeper::Keeper,
    pairing::PAIR_ALPN,
    reach::{DIAL_TIMEOUT, address_of, device_of, endpoint_addr},
};
use crate::{identity::DeviceId, proto::membership::Direction};

/// How often paired devices are read again from the trust store (`rrt trust add --relay`,
/// `rrt trust remove`, a pairing made by another instance of this host before this one took
/// over): a small file, read in microseconds.
const RELOAD: Duration = Duration::from_secs(5);

/// Runs the endpoint until `commands` closes (the supervisor dropped it) or binding fails; hands
/// `commands` back, with whatever it did not read, for the supervisor to answer.
pub(super) fn run(
    config: WanConfig,
    mut commands: mpsc::UnboundedReceiver<WanCommand>,
    outbox: Outbox,
) -> (Result<(), WanError>, mpsc::UnboundedReceiver<WanCommand>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return (Err(WanError::Thread(error)), commands),
    };
    let result = runtime.block_on(serve(config, &mut commands, outbox));
    (result, commands)
}

/// How the endpoint thread reaches its supervisor (the mio worker): events, and a byte on a
/// pipe the worker's poll watches, to wake it. The pipe closing (this dropped with the thread)
/// tells the worker the thread ended.
pub(super) struct Outbox {
    events: std::sync::mpsc::Sender<WanEvent>,
    wake: mio::unix::pipe::Sender,
}

impl Outbox {
    pub(super) fn new(
        events: std::sync::mpsc::Sender<WanEvent>,
        wake: mio::unix::pipe::Sender,
    ) -> Self {
        Self { events, wake }
    }

    fn send(&self, event: WanEvent) {
        if self.events.send(event).is_ok() {
            // A full pipe already holds a wake-up; the worker drains every event per wake.
            let _ = std::io::Write::write(&mut &self.wake, &[1]);
        }
    }
}

/// What a link or dial task tells the loop.
enum Note {
    Linked(DeviceId),
    Unlinked(DeviceId),
    /// A pairing just made: keep a link to it now, not at the next reload.
    Paired(DeviceId, WanAddress),
}

async fn serve(
    config: WanConfig,
    commands: &mut mpsc::UnboundedReceiver<WanCommand>,
    outbox: Outbox,
) -> Result<(), WanError> {
    let endpoint = bind(&config).await?;
    let address = address_of(&endpoint, &config);
    tracing::info!(
        id = %config.identity.id(),
        relays = ?address.relays,
        addrs = ?address.addrs,
        "the wide-area endpoint is up"
    );
    outbox.send(WanEvent::Bound {
        address: address.clone(),
    });
    let ours = config.identity.id();
    let mut keeper = Keeper::new(ours);
    let (notes, mut noted) = mpsc::unbounded_channel();
    let pairings = Arc::new(Mutex::new(Pairings::default()));
    let mut reload_at = Instant::now();
    loop {
        let now = Instant::now();
        if now >= reload_at {
            keep_paired(&config, &mut keeper, now);
            reload_at = now + RELOAD;
        }
        while let Some((device, address)) = keeper.poll_dial(now) {
            tokio::spawn(dial(
                endpoint.clone(),
                config.clone(),
                device,
                address,
                notes.clone(),
            ));
        }
        let wake = keeper
            .poll_timeout()
            .map_or(reload_at, |at| at.min(reload_at));
        tokio::select! {
            command = commands.recv() => match command {
                None => break,
                Some(command) => handle_command(command, &endpoint, &config, &pairings, &notes),
            },
            incoming = endpoint.accept() => match incoming {
                None => break,
                Some(incoming) => {
                    tokio::spawn(accept(
                        incoming,
                        config.clone(),
                        Arc::clone(&pairings),
                        notes.clone(),
                    ));
                }
            },
            Some(note) = noted.recv() => match note {
                Note::Linked(device) => keeper.linked(device, Instant::now()),
                Note::Unlinked(device) => keeper.unlinked(device, Instant::now()),
                Note::Paired(device, address) => keeper.keep(device, address, Instant::now()),
            },
            () = tokio::time::sleep_until(wake.into()) => {}
        }
    }
    endpoint.close().await;
    Ok(())
}

/// Every trusted device with a wide-area address is kept linked.
fn keep_paired(config: &WanConfig, keeper: &mut Keeper, now: Instant) {
    match config.trust.list() {
        Ok(devices) => {
            let paired: Vec<_> = devices
                .into_iter()
                .filter_map(|device| Some((device.id, device.wan?)))
                .collect();
            keeper.retain(|id| paired.iter().any(|(paired, _)| *paired == id));
            for (id, address) in paired {
                keeper.keep(id, address, now);
            }
        }
        Err(error) => tracing::warn!(%error, "could not read the paired devices"),
    }
}

async fn bind(config: &WanConfig) -> Result<Endpoint, WanError> {
    let relay_mode = match &config.relays {
        Relays::Public => RelayMode::Default,
        Relays::Disabled => RelayMode::Disabled,
        Relays::Custom(urls) => RelayMode::Custom(
            urls.iter()
                .map(|url| {
                    // QUIC address discovery (a host learning its public address, which hole
                    // punching needs) runs beside a TLS relay only.
                    let quic = (url.scheme() == "https").then(Default::default);
                    RelayConfig::new(url.clone(), quic)
                })
                .collect::<RelayMap>(),
        ),
    };
    let mut builder = Endpoint::builder(presets::Minimal)
        .secret_key(SecretKey::from_bytes(&config.identity.seed()))
        .alpns(vec![ALPN.to_vec(), PAIR_ALPN.to_vec()])
        .relay_mode(relay_mode)
        .portmapper_config(PortmapperConfig::Disabled)
        .clear_ip_transports()
        .bind_addr(config.bind)
        .map_err(|error| WanError::Bind(error.to_string()))?;
    if !config.relay_ca.is_empty() {
        builder = builder.ca_tls_config(
            CaTlsConfig::embedded().with_extra_roots(config.relay_ca.iter().cloned()),
        );
    }
    builder
        .bind()
        .await
        .map_err(|error| WanError::Bind(error.to_string()))
}

/// Answers a command at once, or hands it to a task of its own: the loop awaits nothing.
fn handle_command(
    command: WanCommand,
    endpoint: &Endpoint,
    config: &WanConfig,
    pairings: &Arc<Mutex<Pairings>>,
    notes: &mpsc::UnboundedSender<Note>,
) {
    match command {
        WanCommand::Status(reply) => {
            let _ = reply.send(super::WanStatus {
                running: true,
                address: Some(address_of(endpoint, config)),
            });
        }
        WanCommand::Invite {
            ttl,
            events,
            confirm,
        } => {
            tokio::spawn(conversation::invite(
                endpoint.clone(),
                config.clone(),
                Arc::clone(pairings),
                ttl,
                Invited { events, confirm },
            ));
        }
        WanCommand::Join {
            ticket,
            events,
            confirm,
        } => {
            let (endpoint, config, notes) = (endpoint.clone(), config.clone(), notes.clone());
            tokio::spawn(async move {
                let paired = conversation::join(endpoint, config, ticket, events, confirm).await;
                if let Some((device, address)) = paired {
                    let _ = notes.send(Note::Paired(device, address));
                }
            });
        }
    }
}

/// Dials a kept device and bridges the link; tells the loop how it went and when it ends.
async fn dial(
    endpoint: Endpoint,
    config: WanConfig,
    device: DeviceId,
    address: WanAddress,
    notes: mpsc::UnboundedSender<Note>,
) {
    let Some(target) = endpoint_addr(device, &address) else {
        tracing::warn!(%device, "a paired device's id is not an Ed25519 key: not dialing it");
        let _ = notes.send(Note::Unlinked(device));
        return;
    };
    let connected = tokio::time::timeout(DIAL_TIMEOUT, endpoint.connect(target, ALPN)).await;
    let connection = match connected {
        Ok(Ok(connection)) => connection,
        Ok(Err(error)) => {
            tracing::debug!(%error, %device, "could not reach a paired device");
            let _ = notes.send(Note::Unlinked(device));
            return;
        }
        Err(_) => {
            tracing::debug!(%device, "reaching a paired device timed out");
            let _ = notes.send(Note::Unlinked(device));
            return;
        }
    };
    let _ = notes.send(Note::Linked(device));
    match connection.open_bi().await {
        Ok((send, recv)) => {
            bridge::bridge(&connection, send, recv, Direction::Dialed, &config).await;
        }
        Err(error) => tracing::debug!(%error, %device, "could not open a stream"),
    }
    let _ = notes.send(Note::Unlinked(device));
}

/// An incoming connection: a link, or a pairing.
async fn accept(
    incoming: iroh::endpoint::Incoming,
    config: WanConfig,
    pairings: Arc<Mutex<Pairings>>,
    notes: mpsc::UnboundedSender<Note>,
) {
    let connection = match incoming.await {
        Ok(connection) => connection,
        Err(error) => {
            tracing::debug!(%error, "an incoming connection failed");
            return;
        }
    };
    let device = device_of(connection.remote_id());
    if connection.alpn() == PAIR_ALPN {
        if let Some((device, address)) = conversation::invited(connection, config, pairings).await {
            let _ = notes.send(Note::Paired(device, address));
        }
        return;
    }
    let _ = notes.send(Note::Linked(device));
    match connection.accept_bi().await {
        Ok((send, recv)) => {
            bridge::bridge(&connection, send, recv, Direction::Accepted, &config).await;
        }
        Err(error) => tracing::debug!(%error, %device, "no stream on a connection"),
    }
    let _ = notes.send(Note::Unlinked(device));
}

impl From<io::Error> for WanError {
    fn from(error: io::Error) -> Self {
        Self::Thread(error)
    }
}
