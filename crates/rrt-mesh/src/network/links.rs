//! The links of the network worker: every peer connection's socket and wire session, the token
//! each is polled under, and the one read buffer they share. `Links` moves bytes and nothing
//! else — what the bytes mean (admission, membership) is the worker's to decide — and reports a
//! link that must close as a [`DownReason`] rather than closing it behind the worker's back.
//!
//! ```text
//!  add ──register(token)──▶ [link] ──read: socket ─▶ session.handle_input ─▶ Read::Bytes
//!                             │       (the worker then drains session.poll_received)
//!  send / send_encoded ─▶ session ─▶ flush: session ─▶ socket (the rest waits for writability)
//!  remove: a last best-effort write, then the socket closes (dropped, out of the poll)
//! ```

use std::{
    collections::HashMap,
    io::{self, Read as _},
    time::Instant,
};

use mio::{Interest, Registry, Token};
use rrt_wire::{Compression, EncodeError, EncodedFrame, Session, WireError};

use super::{
    api::{LinkView, Traffic, Transport},
    stream::Stream,
};
use crate::{
    Message,
    identity::Device,
    proto::membership::{Direction, DownReason, LinkId, LinkStatus},
};

/// The first link's token; those below belong to listeners and watches.
const FIRST_LINK: LinkId = 16;
const READ_BUFFER: usize = 64 * 1024;
/// A peer that lets this much pile up unread is too slow to keep: its link is closed rather than
/// let it hold memory (it catches up by anti-entropy when it reconnects).
const MAX_UNSENT: usize = 64 * 1024 * 1024;

/// One peer connection.
pub(super) struct Link {
    pub(super) stream: Stream,
    pub(super) session: Session<Message>,
    pub(super) direction: Direction,
    /// On one host, the peer's process (from `SO_PEERCRED` or the socket we dialed).
    pub(super) pid: Option<u32>,
    /// A TCP connect still in progress: nothing is written until it completes.
    connecting: bool,
    /// Whether the poll watches the socket for writability.
    writable: bool,
    /// What crossed it.
    pub(super) traffic: Traffic,
}

/// What one read from a link brought.
#[derive(Debug)]
pub(super) enum Read {
    /// Bytes, handed to the link's session: drain its frames.
    Bytes,
    /// Nothing more for now.
    Drained,
    /// The peer closed its side.
    Eof(DownReason),
    /// The link failed and must close.
    Failed(DownReason),
}

/// Every link of the worker.
pub(super) struct Links {
    links: HashMap<LinkId, Link>,
    next: LinkId,
    buffer: Box<[u8]>,
}

impl Links {
    pub(super) fn new() -> Self {
        Self {
            links: HashMap::new(),
            next: FIRST_LINK,
            buffer: vec![0; READ_BUFFER].into_boxed_slice(),
        }
    }

    /// Watches a new connection under a token of its own.
    pub(super) fn add(
        &mut self,
        mut stream: Stream,
        session: Session<Message>,
        pid: Option<u32>,
        direction: Direction,
        registry: &Registry,
    ) -> io::Result<LinkId> {
        let id = self.next;
        self.next += 1;
        // A dialed TCP socket reports its connect's outcome as writability.
        let connecting = matches!(stream, Stream::Tcp(_)) && direction == Direction::Dialed;
        let interest = if connecting {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        registry.register(&mut stream, Token(id), interest)?;
        self.links.insert(
            id,
            Link {
                stream,
                session,
                direction,
                pid,
                connecting,
                writable: connecting,
                traffic: Traffic::default(),
            },
        );
        Ok(id)
    }

    pub(super) fn get(&self, id: LinkId) -> Option<&Link> {
        self.links.get(&id)
    }

    pub(super) fn get_mut(&mut self, id: LinkId) -> Option<&mut Link> {
        self.links.get_mut(&id)
    }

    /// An up peer's link (`None`: it has none, being relayed), as status displays show it.
    pub(super) fn view(
        &self,
        id: Option<LinkId>,
        status: LinkStatus,
        device: Option<Device>,
    ) -> LinkView {
        let link = id.and_then(|id| self.links.get(&id));
        LinkView {
            transport: link.map_or(Transport::Unknown, |link| link.stream.transport()),
            path: link.and_then(|link| match &link.stream {
                Stream::Wan(wan) => Some(wan.path.get()),
                _ => None,
            }),
            host: link.map_or_else(|| "unknown".to_owned(), |link| link.stream.host()),
            compression: link
                .and_then(|link| link.session.negotiated())
                .map_or(Compression::None, |negotiated| negotiated.compression),
            device,
            status,
            traffic: link.map(|link| link.traffic).unwrap_or_default(),
        }
    }

    /// Every link's id.
    pub(super) fn ids(&self) -> Vec<LinkId> {
        self.links.keys().copied().collect()
    }

    /// A dialed TCP link became writable or failed: see whether its connect completed.
    pub(super) fn check_connect(&mut self, id: LinkId) -> Result<(), DownReason> {
        let Some(link) = self.links.get_mut(&id) else {
            return Ok(());
        };
        if !link.connecting {
            return Ok(());
        }
        match link.stream.finish_connect() {
            Ok(done) => {
                link.connecting = !done;
                Ok(())
            }
            Err(error) => Err(DownReason::Error(format!("connect failed: {error}"))),
        }
    }

    /// Reads once from the link into its session. Call until it returns anything but
    /// [`Read::Bytes`] (mio is edge-triggered), draining the session's frames after each.
    pub(super) fn read(&mut self, id: LinkId) -> Read {
        let Some(link) = self.links.get_mut(&id) else {
            return Read::Drained;
        };
        loop {
            return match link.stream.read(&mut self.buffer) {
                Ok(0) => Read::Eof(match link.session.handle_eof() {
                    WireError::Closed => DownReason::Closed,
                    error => DownReason::Error(error.to_string()),
                }),
                Ok(read) => {
                    link.traffic.bytes_in += read as u64;
                    match link.session.handle_input(&self.buffer[..read]) {
                        Ok(()) => Read::Bytes,
                        Err(error) => {
                            tracing::warn!(%error, pid = link.pid, "closing a peer connection");
                            Read::Failed(DownReason::Error(error.to_string()))
                        }
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => Read::Drained,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => Read::Failed(DownReason::Error(error.to_string())),
            };
        }
    }

    /// Queues `message` on the link and writes what the socket takes.
    pub(super) fn send(
        &mut self,
        id: LinkId,
        message: &Message,
        registry: &Registry,
    ) -> Result<(), DownReason> {
        self.queue(id, registry, |session| session.send(message))
    }

    /// Queues a frame encoded once for many links (of its encoding) and writes what the socket
    /// takes.
    pub(super) fn send_encoded(
        &mut self,
        id: LinkId,
        frame: &EncodedFrame,
        registry: &Registry,
    ) -> Result<(), DownReason> {
        self.queue(id, registry, |session| session.send_encoded(frame))
    }

    fn queue(
        &mut self,
        id: LinkId,
        registry: &Registry,
        queue: impl FnOnce(&mut Session<Message>) -> Result<(), EncodeError>,
    ) -> Result<(), DownReason> {
        let Some(link) = self.links.get_mut(&id) else {
            return Ok(());
        };
        let before = link.session.unsent();
        match queue(&mut link.session) {
            Ok(()) => {
                link.traffic.messages_out += 1;
                let queued = link.session.unsent().saturating_sub(before);
                link.traffic.bytes_out += queued as u64;
            }
            Err(error) => {
                tracing::warn!(%error, pid = link.pid, "a message could not be sent to a peer");
            }
        }
        self.flush(id, registry)?;
        if let Some(link) = self.links.get(&id)
            && link.session.unsent() > MAX_UNSENT
        {
            let unsent = link.session.unsent();
            tracing::warn!(
                pid = link.pid,
                unsent,
                "closing a peer that stopped reading"
            );
            return Err(DownReason::Error(format!(
                "{unsent} bytes unread: too slow"
            )));
        }
        Ok(())
    }

    /// Writes what the link's session has queued; keeps the rest for when it is writable.
    pub(super) fn flush(&mut self, id: LinkId, registry: &Registry) -> Result<(), DownReason> {
        let Some(link) = self.links.get_mut(&id) else {
            return Ok(());
        };
        if link.connecting {
            return Ok(());
        }
        link.session
            .write_to(&mut link.stream)
            .and_then(|()| link.stream.flush_pending())
            .map_err(|error| DownReason::Error(error.to_string()))?;
        let wants_write = link.session.wants_write() || link.stream.wants_write();
        if wants_write != link.writable {
            let interest = if wants_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry
                .reregister(&mut link.stream, Token(id), interest)
                .map_err(|error| DownReason::Error(error.to_string()))?;
            link.writable = wants_write;
        }
        Ok(())
    }

    /// Removes a link after a last best-effort write of what is queued (the answer that tells a
    /// peer of another version why, a goodbye); dropping its stream closes it and takes it out
    /// of the poll. `false` if there was no such link.
    pub(super) fn remove(&mut self, id: LinkId) -> bool {
        let Some(mut link) = self.links.remove(&id) else {
            return false;
        };
        let _ = link.session.write_to(&mut link.stream);
        true
    }

    /// The earliest session deadline (handshake, a frame under way).
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.links
            .values()
            .filter_map(|link| link.session.poll_timeout())
            .min()
    }

    /// The links whose session deadline passed at `now`, and why each must close.
    pub(super) fn handle_timeout(&mut self, now: Instant) -> Vec<(LinkId, WireError)> {
        self.links
            .iter_mut()
            .filter_map(|(id, link)| link.session.handle_timeout(now).err().map(|e| (*id, e)))
            .collect()
    }
}
