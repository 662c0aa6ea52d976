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
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use iroh::{
    Endpoint, EndpointAddr, RelayConfig, RelayMap, RelayMode, SecretKey, TransportAddr,
    endpoint::{Connection, PortmapperConfig, presets},
    tls::CaTlsConfig,
};
use rrt_wire::{Received, Role, WireConfig, framed};
use tokio::sync::{mpsc, oneshot};

use super::{
    ALPN, PairingEvent, Path, PathCell, Relays, Ticket, WanAddress, WanCommand, WanConfig,
    WanError, WanEvent, WanLink,
    keeper::Keeper,
    pairing::{
        Confirmation, Decision, Invitations, PAIR_ALPN, PairMessage, Refusal, bounded, label,
        now_ms, secret_from_hex, secret_hex, verification_code,
    },
    worker::Outbox,
};
use crate::{identity::DeviceId, membership::Direction};

/// How long a dial may take, relay and handshake included.
const DIAL_TIMEOUT: Duration = Duration::from_secs(15);
/// How long to wait for the home relay before printing a ticket without one.
const ONLINE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a person has to compare the codes.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a closing link waits for its last bytes to be acknowledged.
const LINGER: Duration = Duration::from_secs(1);
/// How long a side waits for the other to finish a pairing stream.
const PART_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a pairing stream's first message may take (anyone can open one).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A pairing message's largest frame.
const MAX_PAIR_FRAME: u32 = 64 * 1024;
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

/// What a link or dial task tells the loop.
enum Note {
    Linked(DeviceId),
    Unlinked(DeviceId),
    /// A pairing just made: keep a link to it now, not at the next reload.
    Paired(DeviceId, WanAddress),
}

/// A pending invitation's asker.
struct Invited {
    events: mpsc::UnboundedSender<PairingEvent>,
    confirm: oneshot::Receiver<bool>,
}

/// The invitations pairing tasks share with the loop.
type Pairings = Invitations<Invited>;

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
                Some(command) => handle_command(command, &endpoint, &config, &pairings, &notes).await,
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

/// Where this endpoint can be reached: its relays (the configured ones, and the home relay
/// once known) and the addresses it is bound to (every local address for an unspecified one).
fn address_of(endpoint: &Endpoint, config: &WanConfig) -> WanAddress {
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
fn endpoint_addr(device: DeviceId, address: &WanAddress) -> Option<EndpointAddr> {
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

fn device_of(key: iroh::PublicKey) -> DeviceId {
    DeviceId::from_bytes(*key.as_bytes())
}

async fn handle_command(
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
            tokio::spawn(invite(
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
            tokio::spawn(join(
                endpoint.clone(),
                config.clone(),
                ticket,
                events,
                confirm,
                notes.clone(),
            ));
        }
    }
}

/// Makes an invitation and hands its ticket to the asker — once the home relay is known, so
/// that the ticket names it (not forever: a LAN works without one).
async fn invite(
    endpoint: Endpoint,
    config: WanConfig,
    pairings: Arc<Mutex<Pairings>>,
    ttl: Duration,
    asker: Invited,
) {
    if !matches!(config.relays, Relays::Disabled) {
        let _ = tokio::time::timeout(ONLINE_TIMEOUT, endpoint.online()).await;
    }
    let secret: [u8; 16] = rand::random();
    let expires_ms = now_ms().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
    let address = address_of(&endpoint, &config);
    let ticket = Ticket {
        device: config.identity.id(),
        relays: address.relays,
        addrs: address.addrs,
        secret,
        expires_ms,
    };
    let events = asker.events.clone();
    if let Ok(mut pairings) = pairings.lock() {
        pairings.create(secret, expires_ms, now_ms(), asker);
    }
    let _ = events.send(PairingEvent::Ticket {
        ticket: ticket.to_string(),
    });
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
        Ok((send, recv)) => bridge(&connection, send, recv, Direction::Dialed, &config).await,
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
        return invited(connection, config, pairings, notes).await;
    }
    let _ = notes.send(Note::Linked(device));
    match connection.accept_bi().await {
        Ok((send, recv)) => bridge(&connection, send, recv, Direction::Accepted, &config).await,
        Err(error) => tracing::debug!(%error, %device, "no stream on a connection"),
    }
    let _ = notes.send(Note::Unlinked(device));
}

/// Bridges a QUIC stream to a socket pair whose other end goes to the network reactor, until
/// either side ends; watches the connection's path meanwhile.
async fn bridge(
    connection: &Connection,
    send: iroh::endpoint::SendStream,
    recv: iroh::endpoint::RecvStream,
    direction: Direction,
    config: &WanConfig,
) {
    let device = device_of(connection.remote_id());
    let (ours, theirs) = match std::os::unix::net::UnixStream::pair() {
        Ok(pair) => pair,
        Err(error) => {
            tracing::warn!(%error, "could not make a socket pair for a link");
            return;
        }
    };
    // Both ends non-blocking: one for tokio, one for the network reactor's mio poll.
    let local = ours
        .set_nonblocking(true)
        .and_then(|()| theirs.set_nonblocking(true))
        .and_then(|()| tokio::net::UnixStream::from_std(ours));
    let local = match local {
        Ok(local) => local,
        Err(error) => {
            tracing::warn!(%error, "could not watch a socket pair");
            return;
        }
    };
    let mut exporter = [0; 32];
    let exporter = connection
        .export_keying_material(&mut exporter, crate::network::EXPORTER_LABEL, &[])
        .ok()
        .map(|()| exporter);
    let path = PathCell::default();
    path.set(path_of(connection));
    tracing::debug!(%device, ?direction, path = path.get().as_str(), "a wide-area link is up");
    (config.attach)(WanLink {
        socket: theirs,
        device,
        exporter,
        direction,
        path: path.clone(),
    });
    let (mut recv, mut send) = (recv, send);
    let (mut local_read, mut local_write) = local.into_split();
    let watch = async {
        let mut paths = connection.paths_stream();
        while paths.next().await.is_some() {
            let now = path_of(connection);
            if now != path.get() {
                tracing::info!(%device, path = now.as_str(), "a wide-area link changed its path");
                path.set(now);
            }
        }
        std::future::pending::<()>().await;
    };
    // Either direction ending ends the link: the network reactor closed it (or its peer did),
    // and waiting for the other direction would wait on a connection that may be dead.
    let ended = tokio::select! {
        copied = tokio::io::copy(&mut recv, &mut local_write) => copied.map(drop),
        copied = tokio::io::copy(&mut local_read, &mut send) => copied.map(drop),
        () = watch => Ok(()),
    };
    if let Err(error) = ended {
        tracing::debug!(%error, %device, "a wide-area link ended");
    }
    // What was written last (a goodbye) reaches the peer before the connection closes.
    if send.finish().is_ok() {
        let _ = tokio::time::timeout(LINGER, send.stopped()).await;
    }
    connection.close(0u32.into(), b"link closed");
}

fn path_of(connection: &Connection) -> Path {
    let paths = connection.paths();
    paths
        .iter()
        .find(|path| path.is_selected())
        .map_or(Path::Unknown, |path| {
            if path.is_relay() {
                Path::Relayed
            } else {
                Path::Direct
            }
        })
}

/// The inviter's side of a pairing stream. Anyone can open one: the request must come within
/// [`REQUEST_TIMEOUT`] and prove an invitation's secret before anything is shown or kept.
async fn invited(
    connection: Connection,
    config: WanConfig,
    pairings: Arc<Mutex<Pairings>>,
    notes: mpsc::UnboundedSender<Note>,
) {
    let joiner = device_of(connection.remote_id());
    let Ok((send, recv)) = connection.accept_bi().await else {
        return;
    };
    let Ok(mut stream) = framed::handshake::<_, PairMessage>(
        tokio::io::join(recv, send),
        Role::Acceptor,
        &pairing_wire(),
    )
    .await
    else {
        return;
    };
    let Some(PairMessage::PairRequest {
        secret,
        device,
        relays,
        addrs,
    }) = next_message(&mut stream, REQUEST_TIMEOUT).await
    else {
        return;
    };
    let secret = secret_from_hex(&secret).unwrap_or_default();
    let redeemed = pairings
        .lock()
        .map_or(Err(Refusal::Unknown), |mut pairings| {
            pairings.redeem(&secret, now_ms())
        });
    let Invited { events, confirm } = match redeemed {
        Ok(asker) => asker,
        Err(refusal) => {
            tracing::warn!(%joiner, %refusal, "refused a pairing");
            let _ = stream
                .send(PairMessage::PairRefused {
                    reason: refusal.to_string(),
                })
                .await;
            part(&mut stream).await;
            connection.close(0u32.into(), b"refused");
            return;
        }
    };
    let device = label(&device);
    let code = verification_code(config.identity.id(), joiner, &secret);
    let _ = stream
        .send(PairMessage::PairOffer {
            device: config.device.clone(),
        })
        .await;
    let _ = events.send(PairingEvent::Code {
        code,
        device: device.clone(),
        id: joiner,
    });
    let address = bounded(WanAddress { relays, addrs });
    let decision = confirm_both(&mut stream, confirm).await;
    finish(&config, &events, decision, joiner, device, address.clone());
    if decision == Decision::Paired {
        let _ = notes.send(Note::Paired(joiner, address));
    }
    part(&mut stream).await;
    connection.close(0u32.into(), b"paired");
}

/// A pairing stream's wire settings: its messages are small, so a peer may not send more.
fn pairing_wire() -> WireConfig {
    WireConfig {
        max_frame: MAX_PAIR_FRAME,
        ..WireConfig::default()
    }
}

/// The joiner's side: dial the ticket's device, prove the secret, confirm.
async fn join(
    endpoint: Endpoint,
    config: WanConfig,
    ticket: Ticket,
    events: mpsc::UnboundedSender<PairingEvent>,
    confirm: oneshot::Receiver<bool>,
    notes: mpsc::UnboundedSender<Note>,
) {
    let fail = |reason: String| {
        let _ = events.send(PairingEvent::Failed { reason });
    };
    if now_ms() >= ticket.expires_ms {
        return fail("the ticket expired; ask for a new one (`rrt invite`)".to_owned());
    }
    let inviter = ticket.device;
    let target = WanAddress {
        relays: ticket.relays.clone(),
        addrs: ticket.addrs.clone(),
    };
    let Some(dial) = endpoint_addr(inviter, &target) else {
        return fail("the ticket is damaged: its device id is not an Ed25519 key".to_owned());
    };
    let connection =
        match tokio::time::timeout(DIAL_TIMEOUT, endpoint.connect(dial, PAIR_ALPN)).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => return fail(format!("could not reach the inviting device: {error}")),
            Err(_) => return fail("could not reach the inviting device in time".to_owned()),
        };
    let Ok((send, recv)) = connection.open_bi().await else {
        return fail("the inviting device closed the connection".to_owned());
    };
    let mut stream = match framed::handshake::<_, PairMessage>(
        tokio::io::join(recv, send),
        Role::Dialer,
        &pairing_wire(),
    )
    .await
    {
        Ok(stream) => stream,
        Err(error) => return fail(format!("the pairing handshake failed: {error}")),
    };
    let ours = address_of(&endpoint, &config);
    let request = PairMessage::PairRequest {
        secret: secret_hex(&ticket.secret),
        device: config.device.clone(),
        relays: ours.relays,
        addrs: ours.addrs,
    };
    if stream.send(request).await.is_err() {
        return fail("the inviting device closed the connection".to_owned());
    }
    let device = match next_message(&mut stream, REQUEST_TIMEOUT).await {
        Some(PairMessage::PairOffer { device }) => label(&device),
        Some(PairMessage::PairRefused { reason }) => {
            return fail(format!("the inviting device refused: {reason}"));
        }
        _ => return fail("the inviting device closed the connection".to_owned()),
    };
    let code = verification_code(inviter, config.identity.id(), &ticket.secret);
    let _ = events.send(PairingEvent::Code {
        code,
        device: device.clone(),
        id: inviter,
    });
    let decision = confirm_both(&mut stream, confirm).await;
    finish(&config, &events, decision, inviter, device, target.clone());
    part(&mut stream).await;
    // The inviter closes the connection once it has read our end.
    let _ = tokio::time::timeout(PART_TIMEOUT, connection.closed()).await;
    if decision == Decision::Paired {
        let _ = notes.send(Note::Paired(inviter, target));
    }
}

/// Ends our side of a pairing stream and reads the other's to its end, so that neither side's
/// last message is lost to a connection closed under it (QUIC drops unread stream data).
async fn part(stream: &mut PairStream) {
    let _ = SinkExt::<PairMessage>::close(stream).await;
    let _ = tokio::time::timeout(PART_TIMEOUT, async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
}

type PairStream = tokio_util::codec::Framed<
    tokio::io::Join<iroh::endpoint::RecvStream, iroh::endpoint::SendStream>,
    rrt_wire::MessageCodec<PairMessage>,
>;

async fn next_message(stream: &mut PairStream, within: Duration) -> Option<PairMessage> {
    loop {
        match tokio::time::timeout(within, stream.next()).await {
            Ok(Some(Ok(Received::Message(message)))) => return Some(message),
            Ok(Some(Ok(Received::Skipped(_)))) => {}
            _ => return None,
        }
    }
}

/// Sends our person's answer when it comes, reads the other side's, until both are in or either
/// is no.
async fn confirm_both(stream: &mut PairStream, confirm: oneshot::Receiver<bool>) -> Decision {
    let mut confirmation = Confirmation::default();
    // Dropped unanswered (the asker left): no.
    let ours = async { confirm.await.unwrap_or(false) };
    tokio::pin!(ours);
    let mut answered = false;
    let deadline = tokio::time::Instant::now() + CONFIRM_TIMEOUT;
    loop {
        let decision = confirmation.decision();
        if decision != Decision::Pending {
            return decision;
        }
        tokio::select! {
            accepted = &mut ours, if !answered => {
                answered = true;
                confirmation.ours(accepted);
                if stream.send(PairMessage::PairConfirm { accepted }).await.is_err() && accepted {
                    return Decision::RefusedThere;
                }
            }
            message = next_message(stream, CONFIRM_TIMEOUT) => match message {
                Some(PairMessage::PairConfirm { accepted }) => { confirmation.theirs(accepted); }
                _ => return Decision::RefusedThere,
            },
            () = tokio::time::sleep_until(deadline) => return Decision::RefusedHere,
        }
    }
}

/// Trusts the other device (and keeps a link to it) if both said yes; tells the asker.
fn finish(
    config: &WanConfig,
    events: &mpsc::UnboundedSender<PairingEvent>,
    decision: Decision,
    id: DeviceId,
    device: String,
    address: WanAddress,
) {
    let event = match decision {
        Decision::Paired => match config
            .trust
            .add_reachable(id, Some(device.clone()), address)
        {
            Ok(()) => {
                tracing::info!(%id, %device, "paired");
                PairingEvent::Paired { device, id }
            }
            Err(error) => PairingEvent::Failed {
                reason: format!("could not write the trust store: {error}"),
            },
        },
        Decision::RefusedHere => PairingEvent::Failed {
            reason: "not confirmed here: nothing was trusted".to_owned(),
        },
        Decision::RefusedThere | Decision::Pending => PairingEvent::Failed {
            reason: "the other device did not confirm: nothing was trusted".to_owned(),
        },
    };
    let _ = events.send(event);
}

impl From<io::Error> for WanError {
    fn from(error: io::Error) -> Self {
        Self::Thread(error)
    }
}
