//! One simulated node: the real machines, wired as the daemon wires them, and its disk.
//!
//! ```text
//! link events, frames ─▶ Membership ─ Up/Down ─▶ ClipSync, DocSync (peer_up / peer_down)
//!                           │ Deliver ─▶ routing::deliver ─▶ ClipSync::handle | DocSync::handle
//!                           └ Send/Close ─┐          Outgoing ─▶ every up peer it is for
//!                                         ▼                         ▼
//!                                   Action::{Send, Close}  ◀────────┘
//! local copy, edit, peer's update, dirty register ─▶ Writer (jobs, in order) ─▶ Disk
//!                                         Written ─▶ commit / saved | revert_local, refused
//! ```
//!
//! As in the node's actor (`node/actor.rs`): a peer up on a same-host link whose hello lists
//! `full_mesh` is a `Neighbour::Clique` (the daemon's same-host Unix link in the mesh topology),
//! any other a `Neighbour::Other`; a broadcast goes to the peers up in membership at the moment
//! it is sent; every write goes through the node's writer (`simulator/writer.rs`),
//! which the world steps a little later — or never, if the node crashes first. A local copy is
//! staged, saved by the writer, and only then committed (acknowledged); a local edit is applied,
//! held back from peers, stored by the writer, and only then `saved` (acknowledged), or taken
//! back as the daemon's `Documents::edit_stored` does. The driver decides nothing; the world
//! carries out its actions.
//!
//! A crash drops the machines; a start builds new ones from the disk under a new instance id and
//! replica number, as the daemon does on every start (`Uuid::new_v4()`): a restarted node is a new
//! peer to the others, and never reuses a CRDT client id whose later edits it may have lost.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use rrt_mesh::Message;
use rrt_mesh::proto::membership::{
    Direction, DownReason, HeartbeatConfig, Membership, Output, PeerInfo, Received,
};
use rrt_sync::{
    CLIPBOARD_HAVE, Change, ClipEntry, ClipEvent, ClipSync, Clipboard, DocPeer, DocSync, Document,
    Lineage, Neighbour, Outgoing,
};
use uuid::Uuid;

use super::{
    disk::Disk,
    routing,
    writer::{EditResult, Job, Writer, Written},
};

/// How many clipboard entries a node keeps: few, so histories overflow and merges go stale.
pub(crate) const HISTORY: usize = 8;
/// The daemon's document batching window.
const BATCH_WINDOW: Duration = Duration::from_millis(20);
/// Document updates above this many bytes travel in parts; small, so catch-ups are split.
const CHUNK: usize = 256;
/// The largest frame: copies here are tiny.
const MAX_FRAME: u32 = 1024 * 1024;
/// The capability of an instance that links to every other instance of its host.
const FULL_MESH: &str = "full_mesh";
/// Wall-clock milliseconds at the start of every run.
const EPOCH_MS: u64 = 1_700_000_000_000;

/// What the world must do for a node.
#[derive(Debug)]
pub(crate) enum Action {
    /// Send `message` on `link`.
    Send { link: usize, message: Message },
    /// Close this node's end of `link`.
    Close { link: usize },
}

/// What became of a local write someone waited for.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The copy is saved and committed: acknowledged.
    Copied(ClipEntry),
    /// The copy's save failed: never committed, never acknowledged.
    CopyFailed(ClipEntry),
    /// The edit is stored and goes to peers: acknowledged.
    Appended { name: String, token: String },
    /// The edit was not stored, and is taken back.
    Refused { name: String, token: String },
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
    writer: Writer,
    machines: Option<Machines>,
    /// Bumped by every crash: a background write of an earlier run is lost.
    incarnation: u64,
    actions: Vec<Action>,
    /// This run's open links that join it to an instance of its own host.
    same_host: BTreeSet<usize>,
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
            capabilities: ["clipboard", "state_sync", CLIPBOARD_HAVE, FULL_MESH]
                .map(str::to_owned)
                .into(),
            heartbeat: HeartbeatConfig::default(),
            disk: Disk::new(HISTORY),
            writer: Writer::default(),
            machines: None,
            incarnation: 0,
            actions: Vec::new(),
            same_host: BTreeSet::new(),
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
            documents.insert(name, Lineage::with_document(replica, document));
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
        self.same_host.clear();
        self.writer.crash();
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

    /// A link is open; `same_host` if it joins this node to an instance of its own host.
    pub(crate) fn link_opened(
        &mut self,
        link: usize,
        direction: Direction,
        same_host: bool,
        now: Instant,
    ) {
        if let Some(machines) = self.machines.as_mut() {
            if same_host {
                self.same_host.insert(link);
            }
            machines.membership.link_opened(link, direction, now);
            self.dispatch();
        }
    }

    pub(crate) fn link_closed(&mut self, link: usize) {
        self.same_host.remove(&link);
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
                            self.writer.push(Job::PeerUpdate {
                                name: document,
                                update,
                            });
                        }
                        Change::Rejected { .. } => self.anomalies.rejected_updates += 1,
                        // No node of the simulation starts a generation.
                        Change::Lineage { .. } => {}
                    }
                }
            }
        }
        self.dispatch();
    }

    /// A local copy, staged and queued for the writer; committed (acknowledged) once saved.
    /// `None` if the node is down.
    pub(crate) fn copy(
        &mut self,
        text: String,
        crash_after_save: bool,
        now: Instant,
    ) -> Option<ClipEntry> {
        let now_ms = self.wall_ms(now);
        let machines = self.machines.as_mut()?;
        let staged = machines
            .clipboard
            .stage_copy(text.into(), now_ms, MAX_FRAME)
            .expect("a small copy fits a frame")
            .expect("every copied text is unique, never an echo");
        let entry = staged.entry().clone();
        self.writer.push(Job::Copy {
            staged,
            crash_after_save,
        });
        Some(entry)
    }

    /// Appends `token` to document `name`: applied here, held back from peers, queued for the
    /// writer; acknowledged once stored. `false` if the node is down.
    pub(crate) fn append(&mut self, name: &str, token: &str) -> bool {
        let Some(machines) = self.machines.as_mut() else {
            return false;
        };
        let update = machines
            .documents
            .edit(name, |document| document.append(token));
        self.writer.push(Job::Edit {
            name: name.to_owned(),
            update,
            token: token.to_owned(),
        });
        true
    }

    /// Whether the world must schedule a step of the writer.
    pub(crate) fn writer_due(&mut self) -> bool {
        self.is_running() && self.writer.due()
    }

    /// The writer carries out its next job; a local write fails if `fail`.
    pub(crate) fn write_next(&mut self, fail: bool, now: Instant) -> Option<Written> {
        let now_ms = self.wall_ms(now);
        self.writer.step(&mut self.disk, fail, now_ms)
    }

    /// The writer's result for a local copy or edit reaches the node, as `Written` reaches the
    /// actor (`Actor::handle_written`).
    pub(crate) fn written(&mut self, written: Written, now: Instant) -> Outcome {
        let machines = self
            .machines
            .as_mut()
            .expect("a result reaches only the run that asked for it");
        let outcome = match written {
            Written::Copy {
                staged,
                saved: true,
                ..
            } => Outcome::Copied(machines.clipboard.commit(staged)),
            Written::Copy { staged, .. } => Outcome::CopyFailed(staged.entry().clone()),
            Written::Edit {
                name,
                update,
                token,
                result,
            } => match result {
                EditResult::Stored => {
                    machines.documents.saved(&name, update, now);
                    Outcome::Appended { name, token }
                }
                EditResult::Failed { stored } => {
                    let replica = machines.documents.replica();
                    let stored = Document::from_snapshot(replica, &stored)
                        .map(|document| Lineage::with_document(replica, document))
                        .expect("a stored document reads back");
                    machines
                        .documents
                        .revert_local(&name, &update, Some(stored));
                    // Right after taking it back, as the actor does: edits queued before this
                    // were made on the failed one, and are refused.
                    self.writer.push(Job::Resume(name.clone()));
                    Outcome::Refused { name, token }
                }
                EditResult::EarlierFailed => {
                    machines.documents.refused(&name, &update);
                    Outcome::Refused { name, token }
                }
            },
        };
        self.dispatch();
        outcome
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
                Output::Up { link, peer } => {
                    let neighbour = neighbour(&self.same_host, link, &peer);
                    machines
                        .clipboard
                        .peer_up(peer.id, neighbour, &peer.capabilities);
                    machines
                        .documents
                        .peer_up(peer.id, neighbour, DocPeer::Generations);
                }
                Output::Down { peer, .. } => {
                    machines.clipboard.peer_down(peer.id);
                    machines.documents.peer_down(peer.id);
                }
                // Not a departure: the machines start over on the kept link.
                Output::Relinked { link, peer } => {
                    let neighbour = neighbour(&self.same_host, link, &peer);
                    machines.clipboard.peer_down(peer.id);
                    machines.documents.peer_down(peer.id);
                    machines
                        .clipboard
                        .peer_up(peer.id, neighbour, &peer.capabilities);
                    machines
                        .documents
                        .peer_up(peer.id, neighbour, DocPeer::Generations);
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
            self.writer.push(Job::Clipboard(register));
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

/// How the sync machines see `peer`, up on `link`: as the actor's `arrived` does (a same-host
/// link, in a mesh whose instances all link to each other).
fn neighbour(same_host: &BTreeSet<usize>, link: usize, peer: &PeerInfo) -> Neighbour {
    if same_host.contains(&link) && peer.capabilities.iter().any(|c| c == FULL_MESH) {
        Neighbour::Clique
    } else {
        Neighbour::Other
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
