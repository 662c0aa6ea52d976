//! A link's life in the network worker: registered, read until `WouldBlock`, its frames handed
//! to the membership, written as far as the socket takes, closed on any error of its own.

use std::{
    io::{self, Read},
    time::Instant,
};

use mio::{Interest, Registry, Token};
use rrt_reactor::Context;
use rrt_wire::{Message, Received as Frame, Session, WireError};

use super::{
    hub::HubAttempt,
    stream::Stream,
    worker::{MAX_UNSENT, NetEvent, NetworkWorker},
};
use crate::{
    identity::{Device, Fingerprint},
    membership::{Direction, DownReason, LinkId, Received},
    trust::Verdict,
};

/// Whether a link's frames may reach the membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Auth {
    /// Unix, plain TCP, or TLS with an authorized peer.
    Open,
    /// TLS whose handshake is not over: nothing is decided, nothing is read.
    Handshaking,
    /// TLS with a key nobody trusts yet: the first frame must prove the join secret.
    AwaitingJoin(Fingerprint),
}

pub(super) struct Link {
    pub(super) stream: Stream,
    pub(super) session: Session,
    pub(super) direction: Direction,
    pub(super) auth: Auth,
    /// On one host, the peer's process (from `SO_PEERCRED` or the socket we dialed).
    pub(super) pid: Option<u32>,
    /// A TCP connect still in progress: nothing is written until it completes.
    pub(super) connecting: bool,
    pub(super) writable: bool,
    /// Over TLS, once admitted: the peer's key and the name it goes by.
    pub(super) device: Option<Device>,
    /// Over TLS, until admitted: when the link is closed if its peer has not proven itself by
    /// then (TLS, preambles and `join` share the handshake timeout). The membership's own
    /// timeout starts only at admission, so without this a peer that completes the preambles
    /// and then says nothing would hold its connection forever.
    pub(super) admit_by: Option<Instant>,
}

impl NetworkWorker {
    pub(super) fn add_link(
        &mut self,
        mut stream: Stream,
        session: Session,
        pid: Option<u32>,
        direction: Direction,
        registry: &Registry,
        now: Instant,
    ) -> Option<LinkId> {
        let id = self.next_link;
        self.next_link += 1;
        // A dialed TCP socket reports its connect's outcome as writability.
        let connecting = matches!(stream, Stream::Tcp(_)) && direction == Direction::Dialed;
        let interest = if connecting {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if let Err(error) = registry.register(&mut stream, Token(id), interest) {
            tracing::warn!(%error, "could not watch a peer connection");
            return None;
        }
        // A TLS peer meets the membership (and hears our hello) only once authorized.
        let tls = matches!(stream, Stream::Tls(_));
        let admit_by = tls.then(|| now + self.config.wire.handshake_timeout);
        let auth = if tls {
            Auth::Handshaking
        } else {
            self.membership.link_opened(id, direction, now);
            Auth::Open
        };
        self.links.insert(
            id,
            Link {
                stream,
                session,
                direction,
                auth,
                pid,
                connecting,
                writable: connecting,
                device: None,
                admit_by,
            },
        );
        Some(id)
    }

    /// A dialed TCP link became writable or failed: see whether its connect completed.
    pub(super) fn check_connect(&mut self, id: LinkId) {
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        if !link.connecting {
            return;
        }
        match link.stream.finish_connect() {
            Ok(true) => link.connecting = false,
            Ok(false) => {}
            Err(error) => self.close(id, DownReason::Error(format!("connect failed: {error}"))),
        }
    }

    pub(super) fn read_link(&mut self, id: LinkId, ctx: &Context<'_, NetEvent>, now: Instant) {
        loop {
            let Some(link) = self.links.get_mut(&id) else {
                return;
            };
            match link.stream.read(&mut self.buffer) {
                Ok(0) => {
                    let reason = match link.session.handle_eof() {
                        WireError::Closed => DownReason::Closed,
                        error => DownReason::Error(error.to_string()),
                    };
                    if let Auth::AwaitingJoin(fingerprint) = link.auth {
                        // A peer that refuses us without saying so (an older version).
                        tracing::warn!(%fingerprint, "a device closed the connection before proving the join secret: it may not trust this device, or hold another secret");
                    }
                    self.close(id, reason);
                    return;
                }
                Ok(read) => {
                    if link.auth == Auth::Open {
                        self.membership.handle_bytes(id, now);
                    }
                    if let Err(error) = link.session.handle_input(&self.buffer[..read]) {
                        tracing::warn!(%error, pid = link.pid, "closing a peer connection");
                        self.close(id, DownReason::Error(error.to_string()));
                        return;
                    }
                    if !self.take_frames(id, ctx, now) {
                        return;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    self.close(id, DownReason::Error(error.to_string()));
                    return;
                }
            }
        }
    }

    /// Hands every whole frame to the membership; `false` if the link was closed.
    pub(super) fn take_frames(
        &mut self,
        id: LinkId,
        ctx: &Context<'_, NetEvent>,
        now: Instant,
    ) -> bool {
        if !self.authorize(id, now) {
            return false;
        }
        loop {
            let Some(link) = self.links.get_mut(&id) else {
                return false;
            };
            match link.session.poll_received(now) {
                Ok(Some(Frame::Message(message))) => {
                    match link.auth {
                        Auth::Open => {}
                        Auth::AwaitingJoin(fingerprint) => {
                            if !self.admit(id, fingerprint, message, now) {
                                return false;
                            }
                            continue;
                        }
                        Auth::Handshaking => {
                            self.close(id, DownReason::Error("a frame before TLS".to_owned()));
                            return false;
                        }
                    }
                    if let Message::Join { device, proof } = &message {
                        // A trusted peer's proof decides nothing; it only tells its name.
                        self.label(id, device, proof);
                        continue;
                    }
                    if let Message::Refused { reason } = message {
                        // We let the peer in, but it does not let us in.
                        self.refused_by_peer(id, None, &reason);
                        return false;
                    }
                    match self.membership.handle_message(id, &message, now) {
                        Received::Deliver(from) => ctx.emit(NetEvent::Message { from, message }),
                        Received::Handled | Received::Dropped => {}
                    }
                }
                Ok(Some(Frame::Skipped(_))) => {}
                Ok(None) => return true,
                Err(error) => {
                    tracing::warn!(%error, pid = link.pid, "closing a peer connection");
                    self.close(id, DownReason::Error(error.to_string()));
                    return false;
                }
            }
        }
    }

    pub(super) fn send(&mut self, id: LinkId, message: &Message, registry: &Registry) {
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        if let Err(error) = link.session.send(message) {
            tracing::warn!(%error, pid = link.pid, "a message could not be sent to a peer");
        }
        self.flush(id, registry);
        if let Some(link) = self.links.get(&id)
            && link.session.unsent() > MAX_UNSENT
        {
            let unsent = link.session.unsent();
            tracing::warn!(
                pid = link.pid,
                unsent,
                "closing a peer that stopped reading"
            );
            self.close(
                id,
                DownReason::Error(format!("{unsent} bytes unread: too slow")),
            );
        }
    }

    /// Writes what the link's session has queued; keeps the rest for when it is writable.
    pub(super) fn flush(&mut self, id: LinkId, registry: &Registry) {
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        if link.connecting {
            return;
        }
        let written = link
            .session
            .write_to(&mut link.stream)
            .and_then(|()| link.stream.flush_pending());
        if let Err(error) = written {
            self.close(id, DownReason::Error(error.to_string()));
            return;
        }
        let wants_write = link.session.wants_write() || link.stream.wants_write();
        if wants_write != link.writable {
            let interest = if wants_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            match registry.reregister(&mut link.stream, Token(id), interest) {
                Ok(()) => link.writable = wants_write,
                Err(error) => self.close(id, DownReason::Error(error.to_string())),
            }
        }
    }

    /// Closes a link after a last best-effort write of what is queued (the answer that tells a
    /// peer of another version why, a goodbye), then reports its peer down.
    pub(super) fn close(&mut self, id: LinkId, reason: DownReason) {
        if let Some(mut link) = self.links.remove(&id) {
            let _ = link.session.write_to(&mut link.stream);
            // Dropping the stream closes it and removes it from the poll.
            self.membership.link_closed(id, reason);
        }
        self.forget_link(id);
    }

    /// A hub leaf that lost its coordinator loses sight of the other leaves too, and goes
    /// looking for the next coordinator at once.
    pub(super) fn forget_link(&mut self, id: LinkId) {
        self.manual_link_closed(id);
        if self.hub_link == Some(id) {
            self.hub_link = None;
            self.hub_attempt = Some(HubAttempt::now(Instant::now()));
        }
    }

    /// Once a TLS link's handshake is over, decides what its peer may do: a trusted key is in; an
    /// unknown one must prove the join secret (if this device has one) or is refused. A device
    /// with the secret sends its own proof first, whatever it thinks of the peer.
    fn authorize(&mut self, id: LinkId, now: Instant) -> bool {
        let Some(tls) = self.tls.clone() else {
            return true;
        };
        let config = &tls.config;
        let Some(link) = self.links.get_mut(&id) else {
            return false;
        };
        let Stream::Tls(stream) = &link.stream else {
            return true;
        };
        if link.auth != Auth::Handshaking || !stream.is_established() {
            return true;
        }
        let Some(fingerprint) = stream.peer_fingerprint() else {
            self.close(
                id,
                DownReason::Error("the peer showed no certificate".to_owned()),
            );
            return false;
        };
        let ours = config.identity.fingerprint();
        if let Some(secret) = &config.secret
            && let Some(proof) = stream.join_proof(secret, ours, &config.device)
        {
            let join = Message::Join {
                device: config.device.clone(),
                proof,
            };
            if let Err(error) = link.session.send(&join) {
                tracing::warn!(%error, "could not send the join proof");
            }
        }
        match config.trust.judge(fingerprint) {
            Ok(Verdict::Trusted { name }) => {
                link.device = Some(Device { fingerprint, name });
                link.auth = Auth::Open;
                link.admit_by = None;
                let direction = link.direction;
                self.membership.link_opened(id, direction, now);
                true
            }
            Ok(_) if config.secret.is_some() => {
                link.auth = Auth::AwaitingJoin(fingerprint);
                true
            }
            Ok(_) => {
                tracing::warn!(
                    %fingerprint,
                    "refused an untrusted device; `rrt trust add {fingerprint}` lets it in"
                );
                let ours = config.identity.fingerprint();
                self.refuse(
                    id,
                    format!("device {ours} does not trust key {fingerprint} and holds no join secret; `rrt trust add {fingerprint}` there lets it in"),
                    format!("untrusted device {fingerprint}"),
                );
                false
            }
            Err(error) => {
                tracing::error!(%error, "could not read the trust store");
                self.close(id, DownReason::Error("trust store unreadable".to_owned()));
                false
            }
        }
    }

    /// The first frame from an unknown key: a valid join proof trusts (pins) the key, with the
    /// name it goes by as a label, and lets it in; anything else closes the link. Names decide
    /// nothing: another key under a known name is another device.
    fn admit(
        &mut self,
        id: LinkId,
        fingerprint: Fingerprint,
        message: Message,
        now: Instant,
    ) -> bool {
        let Some(tls) = self.tls.clone() else {
            return false;
        };
        let config = &tls.config;
        let Some(link) = self.links.get_mut(&id) else {
            return false;
        };
        let device = match (&message, &config.secret, &link.stream) {
            (Message::Join { device, proof }, Some(secret), Stream::Tls(stream))
                if stream.verify_join(secret, fingerprint, device, proof) =>
            {
                device.clone()
            }
            (Message::Join { device, .. }, _, _) => {
                tracing::warn!(%device, %fingerprint, "refused a device: wrong join secret");
                let ours = config.identity.fingerprint();
                self.refuse(
                    id,
                    format!("device {ours} refused key {fingerprint}: its join proof does not match this mesh's secret"),
                    "wrong join secret".to_owned(),
                );
                return false;
            }
            (Message::Refused { reason }, _, _) => {
                self.refused_by_peer(id, Some(fingerprint), reason);
                return false;
            }
            _ => {
                tracing::warn!(%fingerprint, "refused an untrusted device that did not prove the join secret");
                let ours = config.identity.fingerprint();
                self.refuse(
                    id,
                    format!("device {ours} does not trust key {fingerprint}, which did not prove the join secret; the same `--secret-file` on both, or `rrt trust add {fingerprint}` there, lets it in"),
                    format!("untrusted device {fingerprint}"),
                );
                return false;
            }
        };
        if let Err(error) = config.trust.add(fingerprint, Some(device.clone())) {
            // It proved the secret: let it in now, and again by its proof next time.
            tracing::error!(%error, "could not pin the device's key");
        }
        tracing::info!(%device, %fingerprint, "pinned a device that proved the join secret");
        link.device = Some(Device {
            fingerprint,
            name: Some(device),
        });
        link.auth = Auth::Open;
        link.admit_by = None;
        let direction = link.direction;
        self.membership.link_opened(id, direction, now);
        true
    }

    /// Tells the peer why it is not admitted (best effort: [`NetworkWorker::close`] writes what is
    /// queued), then closes the link.
    fn refuse(&mut self, id: LinkId, why: String, detail: String) {
        if let Some(link) = self.links.get_mut(&id)
            && let Err(error) = link.session.send(&Message::Refused { reason: why })
        {
            tracing::debug!(%error, "could not tell a refused peer why");
        }
        self.close(id, DownReason::Error(detail));
    }

    /// The peer says it will not admit us, and why: both sides of a refusal say it.
    fn refused_by_peer(&mut self, id: LinkId, fingerprint: Option<Fingerprint>, reason: &str) {
        let fingerprint = fingerprint.map(|key| key.to_string());
        tracing::warn!(fingerprint, reason, "the peer refused this device");
        self.close(
            id,
            DownReason::Error(format!("refused by the peer: {reason}")),
        );
    }

    /// A trusted peer's `join`: its proof, when it holds, names the device.
    fn label(&mut self, id: LinkId, name: &str, proof: &str) {
        let Some(secret) = self.tls.as_ref().and_then(|tls| tls.config.secret.clone()) else {
            return;
        };
        let Some(link) = self.links.get_mut(&id) else {
            return;
        };
        if let (Stream::Tls(stream), Some(device)) = (&link.stream, &mut link.device)
            && stream.verify_join(&secret, device.fingerprint, name, proof)
        {
            device.name = Some(name.to_owned());
        }
    }
}
