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
use crate::membership::{Direction, DownReason, LinkId, Received};

pub(super) struct Link {
    pub(super) stream: Stream,
    pub(super) session: Session,
    /// On one host, the peer's process (from `SO_PEERCRED` or the socket we dialed).
    pub(super) pid: Option<u32>,
    /// A TCP connect still in progress: nothing is written until it completes.
    pub(super) connecting: bool,
    pub(super) writable: bool,
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
        self.links.insert(
            id,
            Link {
                stream,
                session,
                pid,
                connecting,
                writable: connecting,
            },
        );
        self.membership.link_opened(id, direction, now);
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
                    self.close(id, reason);
                    return;
                }
                Ok(read) => {
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
        loop {
            let Some(link) = self.links.get_mut(&id) else {
                return false;
            };
            match link.session.poll_received(now) {
                Ok(Some(Frame::Message(message))) => {
                    match (self.membership.handle_message(id, &message, now), message) {
                        (Received::Deliver(_), Message::Members { peers }) => {
                            self.relay_members(id, peers, ctx);
                        }
                        (Received::Deliver(from), message) => {
                            ctx.emit(NetEvent::Message { from, message });
                        }
                        (Received::Handled | Received::Dropped, _) => {}
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
        if let Err(error) = link.session.write_to(&mut link.stream) {
            self.close(id, DownReason::Error(error.to_string()));
            return;
        }
        let wants_write = link.session.wants_write();
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
            self.pending_relayed_downs
                .extend(std::mem::take(&mut self.relayed).into_values());
        }
    }
}
