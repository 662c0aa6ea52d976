//! The pairing conversation (ALPN `rrt-pair/1`, PROTOCOL.md section 9), both sides: the inviter
//! makes the ticket and answers a request that proves it; the joiner dials the ticket's device;
//! both show the code and exchange their person's answers. The rules — which invitations stand,
//! the code, when it is decided, what is kept of the other device — are `pairing`'s; this file
//! moves the messages. A pairing that both confirmed returns the other device and its address,
//! which the endpoint then keeps linked.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use iroh::Endpoint;
use iroh::endpoint::{Connection, RecvStream, SendStream};
use rrt_wire::{Received, Role, WireConfig, framed};
use tokio::sync::{mpsc, oneshot};

use super::{
    PairingEvent, Relays, Ticket, WanAddress, WanConfig,
    pairing::{
        Confirmation, Decision, Invitations, PAIR_ALPN, PairMessage, Refusal, bounded, label,
        now_ms, secret_from_hex, secret_hex, verification_code,
    },
    reach::{DIAL_TIMEOUT, address_of, device_of, endpoint_addr},
};
use crate::identity::DeviceId;

/// How long to wait for the home relay before printing a ticket without one.
const ONLINE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a person has to compare the codes.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a side waits for the other to finish a pairing stream.
const PART_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a pairing stream's first message may take (anyone can open one).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A pairing message's largest frame.
const MAX_PAIR_FRAME: u32 = 64 * 1024;

/// A pending invitation's asker.
pub(super) struct Invited {
    pub(super) events: mpsc::UnboundedSender<PairingEvent>,
    pub(super) confirm: oneshot::Receiver<bool>,
}

/// The invitations pairing tasks share with the loop.
pub(super) type Pairings = Invitations<Invited>;

/// Makes an invitation and hands its ticket to the asker — once the home relay is known, so
/// that the ticket names it (not forever: a LAN works without one).
pub(super) async fn invite(
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

/// The inviter's side of a pairing stream. Anyone can open one: the request must come within
/// [`REQUEST_TIMEOUT`] and prove an invitation's secret before anything is shown or kept.
pub(super) async fn invited(
    connection: Connection,
    config: WanConfig,
    pairings: Arc<Mutex<Pairings>>,
) -> Option<(DeviceId, WanAddress)> {
    let joiner = device_of(connection.remote_id());
    let (send, recv) = connection.accept_bi().await.ok()?;
    let Ok(mut stream) = framed::handshake::<_, PairMessage>(
        tokio::io::join(recv, send),
        Role::Acceptor,
        &pairing_wire(),
    )
    .await
    else {
        return None;
    };
    let Some(PairMessage::PairRequest {
        secret,
        device,
        relays,
        addrs,
    }) = next_message(&mut stream, REQUEST_TIMEOUT).await
    else {
        return None;
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
            return None;
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
    let trusted = finish(&config, &events, decision, joiner, device, address.clone()).await;
    part(&mut stream).await;
    connection.close(0u32.into(), b"paired");
    trusted.then_some((joiner, address))
}

/// A pairing stream's wire settings: its messages are small, so a peer may not send more.
fn pairing_wire() -> WireConfig {
    WireConfig {
        max_frame: MAX_PAIR_FRAME,
        ..WireConfig::default()
    }
}

/// The joiner's side: dial the ticket's device, prove the secret, confirm.
pub(super) async fn join(
    endpoint: Endpoint,
    config: WanConfig,
    ticket: Ticket,
    events: mpsc::UnboundedSender<PairingEvent>,
    confirm: oneshot::Receiver<bool>,
) -> Option<(DeviceId, WanAddress)> {
    let fail = |reason: String| {
        let _ = events.send(PairingEvent::Failed { reason });
        None
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
    let trusted = finish(&config, &events, decision, inviter, device, target.clone()).await;
    part(&mut stream).await;
    // The inviter closes the connection once it has read our end.
    let _ = tokio::time::timeout(PART_TIMEOUT, connection.closed()).await;
    trusted.then_some((inviter, target))
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
    tokio::io::Join<RecvStream, SendStream>,
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

/// Trusts the other device (and so keeps a link to it) if both said yes, and tells the asker —
/// only once the trust store has it on disk. Returns whether it is trusted. The store's write
/// (a lock and an fsync) runs off the endpoint thread, which carries every link's bytes.
async fn finish(
    config: &WanConfig,
    events: &mpsc::UnboundedSender<PairingEvent>,
    decision: Decision,
    id: DeviceId,
    device: String,
    address: WanAddress,
) -> bool {
    let event = match decision {
        Decision::Paired => {
            let (trust, name) = (config.trust.clone(), device.clone());
            let written =
                tokio::task::spawn_blocking(move || trust.add_reachable(id, Some(name), address))
                    .await
                    .unwrap_or_else(|error| Err(std::io::Error::other(error)));
            match written {
                Ok(()) => {
                    tracing::info!(%id, %device, "paired");
                    PairingEvent::Paired { device, id }
                }
                Err(error) => PairingEvent::Failed {
                    reason: format!("could not write the trust store: {error}"),
                },
            }
        }
        Decision::RefusedHere => PairingEvent::Failed {
            reason: "not confirmed here: nothing was trusted".to_owned(),
        },
        Decision::RefusedThere | Decision::Pending => PairingEvent::Failed {
            reason: "the other device did not confirm: nothing was trusted".to_owned(),
        },
    };
    let trusted = matches!(event, PairingEvent::Paired { .. });
    let _ = events.send(event);
    trusted
}
