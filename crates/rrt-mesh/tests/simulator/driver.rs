//! One simulated node: the real machines, wired as the daemon wires them, and its disk.
//!
//! ```text
//! link events, frames ─▶ Membership ─ Up/Down ─▶ ClipSync, DocSync (peer_up / peer_down)
//!                           │ Deliver ─▶ routing::deliver ─▶ ClipSync::handle | DocSync::handle
//!                           └ Send/Close ─┐          Outgoing ─▶ every up peer it is for
//!                                         ▼                         ▼
//!                                   Action::{Send, Close}  ◀────────┘   Action::Persist
//! ```
//!
//! As in the node's actor (`node/actor.rs`): every peer is a `Neighbour::Other` (no same-host
//! clique here), a broadcast goes to the peers up in membership at the moment it is sent, a
//! peer's document update is
//! stored as it applies, and the clipboard's dirty register is written in the background (the
//! world lands it on disk a little later — or never, if the node crashes first). The driver
//! decides nothing; the world carries out its actions.
//!
//! A crash drops the machines; a start builds new ones from the disk under a new instance id and
//! replica number, as the daemon does on every start (`Uuid::new_v4()`): a restarted node is a new
//! peer to the others, and never reuses a CRDT client id whose later edits it may have lost.

use std::time::{Duration, Instant};

use rrt_mesh::Message;
use rrt_mesh::membership::{
    Direction, DownReason, HeartbeatConfig, Membership, Output, PeerInfo, Received,
};
use rrt_sync::{
    CLIPBOARD_HAVE, Change, ClipEntry, ClipEvent, ClipSync, Clipboard, DocSync, Neighbour,
    Outgoing, Staged,
};
use uuid::Uuid;

use super::{disk::Disk, routing};

/// How many clipboard entries a node keeps: few, so histories overflow and merges go stale.
pub(crate) const HISTORY: usize = 8;
/// The daemon's document batching window.
const BATCH_WINDOW: Duration = Duration::from_millis(20);
/// Document updates above this many bytes travel in parts; small, so catch-ups are split.
const CHUNK: usize = 256;
/// The largest frame: copies here are tiny.
const MAX_FRAME: u32 = 1024 * 1024;
/// Wall-clock milliseconds at the start of every run.
const EPOCH_MS: u64 = 1_700_000_000_000;

/// What the world must do for a node.
#[derive(Debug)]
pub(crate) enum Action {
    /// Send `message` on `link`.
    Send { link: usize, message: Message },
    /// Close this node's end of `link`.
    Close { link: usize },
    /// Write this clipboard register in the background.
    Persist(Clipboard),
}

/// Things a node saw that a correct mesh never shows: counted, and checked at the end.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Anomalies {
    /// Clipboard entries refused for their stamp.
    pub(crate) clock_refusals: u64,
    /// Document updates refused.
    pub(crate) rejected_updates: u64,
}

/// The machines of a running node.
#[derive(Debug)]
struct Machines {
    id: Uuid,
    membership: Membership,
    clipboard: ClipSync,
    documents: DocSync,
}

/// A node: its machines while it runs, and its disk always.
#[derive(Debug)]
pub(crate) struct Driver {
    base: Instant,
    /// How far this host's wall clock is off, in milliseconds.
    skew_ms: i64,
    capabilities: Vec<String>,
    heartbeat: HeartbeatConfig,
    disk: Disk,
    machines: Option<Machines>,
    /// Bumped by every crash: a background write of an earlier run is lost.
    incarnation: u64,
    actions: Vec<Action>,
    anomalies: Anomalies,
    /// Application messages that arrived on a link whose peer had not said hello.
    dropped_before_hello: u64,
}

impl Driver {
    /// A node whose clock is `skew_ms` off.
    pub(crate) fn new(base: Instant, skew_ms: i64) -> Self {
        Self {
            base,
            skew_ms,
            // The daemon's. Every node runs this version: one without `clipboard_have` would be
            // an older daemon, whose catch-up this code does not model.
            capabilities: ["clipboard", "state_sync", CLIPBOARD_HAVE]
                .map(str::to_owned)
                .into(),
            heartbeat: HeartbeatConfig::default(),
            disk: Disk::new(HISTORY),
            machines: None,
            incarnation: 0,
            actions: Vec::new(),
            anomalies: Anomalies::default(),
            dropped_before_hello: 0,
        }
    }

    /// This host's wall clock at `now`, for hybrid logical clocks and ping stamps.
    pub(crate) fn wall_ms(&self, now: Instant) -> u64 {
        let elapsed = u64::try_from(now.saturating_duration_since(self.base).as_millis())
            .expect("a run lasts less than an age");
        (EPOCH_MS + elapsed).saturating_add_signed(self.skew_ms)
    }

    /// Starts the machines from the disk as instance `id`.
    pub(crate) fn start(&mut self, id: Uuid, name: String, now: Instant) {
        let now_ms = self.wall_ms(now);
        let me = PeerInfo {
            id,
            name,
            capabilities: self.capabilities.clone(),
        };
        // The daemon's replica number: the first half of the instance id.
        let replica = id.as_u64_pair().0;
        let mut documents = DocSync::new(replica, BATCH_WINDOW, CHUNK);
        for (name, document) in self.disk.load_documents(replica) {
            documents.insert(name, document);
        }
        self.machines = Some(Machines {
            id,
            membership: Membership::new(me, self.heartbeat, now, now_ms),
            clipboard: ClipSync::new(self.disk.load_clipboard(id, HISTORY, now_ms)),
            documents,
        });
    }

    /// Loses everything not on disk.
    pub(crate) fn crash(&mut self) {
        self.machines = None;
        self.incarnation += 1;
        self.actions.clear();
    }

    pub(crate) fn is_running(&self) -> bool {
        self.machines.is_some()
    }

    pub(crate) fn id(&self) -> Option<Uuid> {
        self.machines.as_ref().map(|machines| machines.id)
    }

    pub(crate) fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The peer up on `link`, if any.
    pub(crate) fn peer_on(&self, link: usize) -> Option<Uuid> {
        let machines = self.machines.as_ref()?;
        machines
            .membership
            .up()
            .find(|(up, _)| *up == link)
            .map(|(_, peer)| peer.id)
    }

    pub(crate) fn clipboard(&self) -> Option<&Clipboard> {
        self.machines.as_ref().map(|m| m.clipboard.clipboard())
    }

    pub(crate) fn documents(&self) -> Option<&DocSync> {
        self.machines.as_ref().map(|m| &m.documents)
    }

    pub(crate) fn anomalies(&self) -> Anomalies {
        self.anomalies
    }

    pub(crate) fn dropped_before_hello(&self) -> u64 {
        self.dropped_before_hello
    }

    /// What the world must do now.
    pub(crate) fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// When the machines must be woken: a heartbeat round, a silent link's deadline, the end of
    /// a document batch.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let machines = self.machines.as_ref()?;
        [
            machines.membership.poll_timeout(),
            machines.documents.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether a document batch is waiting to go out.
    pub(crate) fn has_batch(&self) -> bool {
        self.machines
            .as_ref()
            .is_some_and(|m| m.documents.poll_timeout().is_some())
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let Some(machines) = self.machines.as_mut() else {
            return;
        };
        if machines
            .membership
            .poll_timeout()
            .is_some_and(|at| at <= now)
        {
            machines.membership.handle_timeout(now);
        }
        machines.documents.handle_timeout(now);
        self.dispatch();
    }

    pub(crate) fn link_opened(&mut self, link: usize, direction: Direction, now: Instant) {
        if let Some(machines) = self.machines.as_mut() {
            machines.membership.link_opened(link, direction, now);
            self.dispatch();
        }
    }

    pub(crate) fn link_closed(&mut self, link: usize) {
        if let Some(machines) = self.machines.as_mut() {
            machines.membership.link_closed(link, DownReason::Closed);
            self.dispatch();
        }
    }

    /// A frame arrived on `link`.
    pub(crate) fn receive(&mut self, link: usize, message: Message, now: Instant) {
        let now_ms = self.wall_ms(now);
        let Some(machines) = self.machines.as_mut() else {
            return;
        };
        machines.membership.handle_bytes(link, now);
        match machines.membership.handle_message(link, &message, now) {
            Received::Handled => {}
            Received::Dropped => self.dropped_before_hello += 1,
            Received::Deliver(from) => {
                let changes = routing::deliver(
                    &mut machines.clipboard,
                    &mut machines.documents,
                    from,
                    message,
                    now_ms,
                );
                for change in changes {
                    match change {
                        Change::Applied {
                            document, update, ..
                        } => {
                            let current = machines
                                .documents
                                .document(&document)
                                .expect("an applied update's document exists");
                            self.disk.append_update(&document, &update, current);
                        }
                        Change::Rejected { .. } => self.anomalies.rejected_updates += 1,
                    }
                }
            }
        }
        self.dispatch();
    }

    /// A local copy, staged and saved, not yet committed: on disk, not yet acknowledged.
    /// `None` if the node is down.
    pub(crate) fn save_copy(&mut self, text: String, now: Instant) -> Option<Staged> {
        let now_ms = self.wall_ms(now);
        let machines = self.machines.as_mut()?;
        let staged = machines
            .clipboard
            .stage_copy(text, now_ms, MAX_FRAME)
            .expect("a small copy fits a frame")
            .expect("every copied text is unique, never an echo");
        self.disk.save_clipboard(staged.register(), now_ms);
        Some(staged)
    }

    /// The saved copy becomes current and goes to peers: acknowledged.
    pub(crate) fn commit_copy(&mut self, staged: Staged) -> ClipEntry {
        let machines = self
            .machines
            .as_mut()
            .expect("committed by the run that staged it");
        let entry = machines.clipboard.commit(staged);
        self.dispatch();
        entry
    }

    /// Appends `token` to document `name`, acknowledged once its update is stored. `false` if
    /// the node is down.
    pub(crate) fn append(&mut self, name: &str, token: &str, now: Instant) -> bool {
        let Some(machines) = self.machines.as_mut() else {
            return false;
        };
        let update = machines
            .documents
            .edit(name, |document| document.append(token));
        let document = machines.documents.document(name).expect("just edited");
        self.disk.append_update(name, &update, document);
        machines.documents.saved(name, update, now);
        self.dispatch();
        true
    }

    /// A background write of the clipboard landed, if the run that asked for it still runs.
    pub(crate) fn persisted(&mut self, incarnation: u64, register: &Clipboard, now: Instant) {
        if incarnation == self.incarnation {
            let now_ms = self.wall_ms(now);
            self.disk.save_clipboard(register, now_ms);
        }
    }

    /// Carries out what the machines ask, until none asks anything more.
    fn dispatch(&mut self) {
        let Some(machines) = self.machines.as_mut() else {
            return;
        };
        while let Some(output) = machines.membership.poll_output() {
            match output {
                Output::Send { link, message } => self.actions.push(Action::Send {
                    link,
                    message: message.into(),
                }),
                Output::Close { link, .. } => self.actions.push(Action::Close { link }),
                Output::Up { peer, .. } => {
                    machines
                        .clipboard
                        .peer_up(peer.id, Neighbour::Other, &peer.capabilities);
                    machines.documents.peer_up(peer.id, Neighbour::Other);
                }
                Output::Down { peer, .. } => {
                    machines.clipboard.peer_down(peer.id);
                    machines.documents.peer_down(peer.id);
                }
                Output::Relinked { peer, .. } => {
                    machines.clipboard.peer_down(peer.id);
                    machines.documents.peer_down(peer.id);
                    machines
                        .clipboard
                        .peer_up(peer.id, Neighbour::Other, &peer.capabilities);
                    machines.documents.peer_up(peer.id, Neighbour::Other);
                }
                // Hub leaves only; the simulated mesh has no hub.
                Output::RelayedUp { .. } => {}
            }
        }
        while let Some(outgoing) = machines.clipboard.poll_outgoing() {
            send(
                &machines.membership,
                outgoing.map(Message::from),
                &mut self.actions,
            );
        }
        while let Some(event) = machines.clipboard.poll_event() {
            if let ClipEvent::ClockRefused { .. } = event {
                self.anomalies.clock_refusals += 1;
            }
        }
        if let Some(register) = machines.clipboard.take_dirty() {
            self.actions.push(Action::Persist(register));
        }
        while let Some(outgoing) = machines.documents.poll_outgoing() {
            send(
                &machines.membership,
                outgoing.map(Message::from),
                &mut self.actions,
            );
        }
    }
}

/// `outgoing` on the link of every up peer it is for, as the network reactor resolves a
/// broadcast when it gets it; a message for a peer that is no longer up goes nowhere.
fn send(membership: &Membership, outgoing: Outgoing<Message>, actions: &mut Vec<Action>) {
    for (link, peer) in membership.up() {
        if outgoing.is_for(peer.id) {
            actions.push(Action::Send {
                link,
                message: outgoing.message().clone(),
            });
        }
    }
}
