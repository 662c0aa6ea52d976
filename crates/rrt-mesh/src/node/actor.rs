//! The node's actor: a dispatcher between requests, the network reactor, the sync machines and
//! the writer thread (see the module docs of `node`).

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use rrt_reactor::{ReactorEvent, RecvError, Rrt, Subscription};
use rrt_sync::{
    Arrival, ClipEntry, ClipEvent, ClipSync, Neighbour, Outgoing, Provenance, TooLarge,
};
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

use super::why::Hop;
use crate::{
    Message,
    blob_worker::BlobDone,
    dir::MeshDir,
    document_handle::Origin,
    documents::{Documents, EditError, EditOutcome, StoreLineage},
    network::{NetCommand, NetEvent, NetStatus, NetworkWorker, Reach, Topology},
    proto::membership::{DownReason, PeerInfo},
    wall_clock::wall_ms,
    writer::{Done, Write, Writes, Written},
};

use super::{
    CopyError, NodeEvent, NodeStatus, PeersError, PinError, Request, Stopped, blobs::Blobs,
    edit::apply, editors::Editors, status::mesh_view,
};

/// How long a leaving node waits for its goodbyes to be written.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait before relaunching a network reactor that gave up.
const RELAUNCH_DELAY: Duration = Duration::from_secs(1);

pub(super) struct Actor {
    pub(super) id: Uuid,
    pub(super) name: String,
    pub(super) mesh: String,
    pub(super) pid: u32,
    pub(super) topology: Topology,
    pub(super) dir: MeshDir,
    pub(super) max_frame: u32,
    pub(super) net: Rrt<NetworkWorker>,
    pub(super) subscription: Subscription<NetEvent>,
    /// The clipboard and its sync with peers.
    pub(super) clipboard: ClipSync,
    pub(super) state_file: PathBuf,
    pub(super) events: broadcast::Sender<NodeEvent>,
    pub(super) peers: BTreeMap<Uuid, PeerInfo>,
    pub(super) writes: Writes<CopyReply, EditReply>,
    /// When the network reactor, which gave up, is to be relaunched.
    pub(super) relaunch_at: Option<Instant>,
    /// Stops the discovery supervisor (and withdraws the announcement).
    pub(super) discovery: Option<oneshot::Sender<()>>,
    /// Stops the wide-area transport (dropped with the actor: its subscription ends).
    pub(super) wan: Option<oneshot::Sender<()>>,
    /// Scratch areas and app state.
    pub(super) documents: Documents,
    /// Clipboard content fetched and served by hash.
    pub(super) blobs: Blobs,
    /// Where the documents' editors are.
    pub(super) editors: Editors,
    /// Where the documents are stored.
    pub(super) documents_dir: PathBuf,
    /// Peers' data refused, by reason (see `NodeStatus::refusals`).
    pub(super) refusals: BTreeMap<String, u64>,
    /// How the history's values from peers reached this node.
    pub(super) arrivals: super::why::Arrivals,
    /// This host's name, for the provenance of what is copied here.
    pub(super) device: Option<String>,
    /// This device's id (with TLS), for the provenance of what is copied here: what pauses of
    /// this device on other devices go by.
    pub(super) device_id: Option<String>,
    /// The `HOST:PORT` targets the network reactor dials (`None` without TCP), shared with the
    /// factory that relaunches it.
    pub(super) configured_peers: Arc<Mutex<Option<Vec<String>>>>,
}

/// Who waits for a local copy.
type CopyReply = oneshot::Sender<Result<Option<ClipEntry>, CopyError>>;
/// Who waits for a local edit.
type EditReply = oneshot::Sender<Result<(), EditError>>;

impl Actor {
    pub(super) async fn run(
        mut self,
        mut inbox: mpsc::Receiver<Request>,
        mut written: Done<CopyReply, EditReply>,
        mut blob_done: mpsc::UnboundedReceiver<BlobDone>,
    ) {
        loop {
            tokio::select! {
                biased;
                Some(done) = written.recv() => self.handle_written(done),
                Some(done) = blob_done.recv() => {
                    let fetched = self.blobs.done(done);
                    if fetched {
                        // The store grew: back under the quota.
                        self.evict();
                    }
                    self.blobs.flush(&self.net);
                }
                request = inbox.recv() => match request {
                    Some(Request::Leave(reply)) => {
                        self.leave().await;
                        let _ = reply.send(());
                        return;
                    }
                    Some(request) => self.handle_request(request),
                    None => {
                        self.leave().await;
                        return;
                    }
                },
                event = self.subscription.recv(), if self.relaunch_at.is_none() => {
                    self.handle_network(event);
                }
                () = sleep_until(self.relaunch_at) => {
                    self.relaunch_at = None;
                    self.subscription = self.net.subscribe();
                }
                () = sleep_until(self.documents.deadline()) => {
                    self.documents.on_deadline(Instant::now());
                    self.documents.flush(&self.net);
                }
                () = sleep_until(self.blobs.deadline()) => {
                    self.blobs.on_deadline();
                    self.blobs.flush(&self.net);
                }
                () = sleep_until(self.editors.deadline()) => self.editors.expire(&self.events),
            }
        }
    }

    fn handle_request(&mut self, request: Request) {
        match request {
            Request::Copy(copied, reply) => self.copy(copied, reply),
            Request::Why(reply) => {
                let shown = self.clipboard.shown();
                let _ = reply.send(self.arrivals.why(self.id, shown));
            }
            Request::Pinned(reply) => {
                let _ = reply.send(self.clipboard.clipboard().pinned().clone());
            }
            Request::Pin(stamp, pinned, reply) => {
                if !self.clipboard.clipboard().contains(&stamp) {
                    let _ = reply.send(Err(PinError::NoSuchEntry));
                    return;
                }
                self.clipboard.set_pinned(stamp, pinned);
                self.dispatch_clipboard(None);
                // Acknowledged once on disk; a task waits for the writer, not the loop.
                let (done, stored) = oneshot::channel();
                self.write(Write::Pin {
                    stamp,
                    pinned,
                    done,
                });
                tokio::spawn(async move {
                    let answer = match stored.await {
                        Ok(result) => result.map_err(PinError::from),
                        Err(_) => Err(PinError::Stopped(Stopped)),
                    };
                    let _ = reply.send(answer);
                });
            }
            Request::Blob(hash, size, mime, reply) => {
                // Who copied a value with this blob most likely holds it.
                let origins: Vec<Uuid> = self
                    .clipboard
                    .clipboard()
                    .history()
                    .iter()
                    .filter(|entry| entry.content.iter().any(|r| r.hash == hash))
                    .map(|entry| entry.stamp.origin)
                    .collect();
                self.blobs.want(hash, size, &mime, &origins, reply);
                self.blobs.flush(&self.net);
            }
            Request::Current(reply) => {
                let _ = reply.send(self.clipboard.shown().cloned());
            }
            Request::History(reply) => {
                let _ = reply.send(self.clipboard.shown_history().cloned().collect());
            }
            Request::SetPeers(peers, reply) => {
                let mut configured = self
                    .configured_peers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let answer = match configured.as_mut() {
                    Some(configured) => {
                        configured.clone_from(&peers);
                        self.command(NetCommand::SetPeers { addresses: peers });
                        Ok(())
                    }
                    None => Err(PeersError::NoTcp),
                };
                let _ = reply.send(answer);
            }
            Request::Pauses(pauses, reply) => {
                self.clipboard.set_pauses(pauses);
                self.dispatch_clipboard(None);
                let _ = reply.send(self.clipboard.pauses().clone());
            }
            // The network thread answers these: a task waits for it, not the loop.
            Request::Peers(reply) => {
                let net = self.net_status();
                tokio::spawn(async move {
                    // Without the network thread's answer the reply is dropped: the asker
                    // hears that the node could not say.
                    if let Some(net) = net.await {
                        let _ = reply.send(mesh_view(net));
                    }
                });
            }
            Request::Status(reply) => {
                let status = self.net.status();
                let mut node = NodeStatus {
                    id: self.id,
                    name: self.name.clone(),
                    mesh: self.mesh.clone(),
                    pid: self.pid,
                    topology: self.topology,
                    role: None,
                    listen: None,
                    mesh_dir: self.dir.path().to_owned(),
                    state_file: self.state_file.clone(),
                    peers: self.peers.len(),
                    reactor: format!("{:?} (generation {})", status.state, status.generation),
                    clipboard: self
                        .clipboard
                        .clipboard()
                        .current()
                        .map(|entry| entry.stamp),
                    shape: None,
                    members: None,
                    blobs: self.blobs.status(),
                    refusals: self.refusals.clone(),
                    reactor_restarts: BTreeMap::from([(
                        "network".to_owned(),
                        super::status::restarts(&status),
                    )]),
                    store_bytes: BTreeMap::new(),
                    pauses: self.clipboard.pauses().clone(),
                };
                node.refusals
                    .insert("blob_part".to_owned(), node.blobs.refused_corrupt);
                node.store_bytes
                    .insert("blobs".to_owned(), node.blobs.stored_bytes);
                let net = self.net_status();
                let files = [
                    ("clipboard", self.state_file.clone()),
                    ("documents", self.documents_dir.clone()),
                ];
                tokio::spawn(async move {
                    // The disk is asked off the actor's thread.
                    let sizes = tokio::task::spawn_blocking(move || {
                        files.map(|(store, path)| (store.to_owned(), bytes_under(&path)))
                    })
                    .await;
                    node.store_bytes.extend(sizes.into_iter().flatten());
                    if let Some(net) = net.await {
                        node.role = Some(net.role);
                        node.listen = net.listen;
                        node.shape = Some(net.shape);
                        node.members = Some(net.members);
                    }
                    let _ = reply.send(node);
                });
            }
            Request::Documents(reply) => {
                let _ = reply.send(self.documents.names());
            }
            Request::Text(name, reply) => {
                let _ = reply.send(self.documents.text(&name));
            }
            Request::Since(name, generation, version, reply) => {
                let _ = reply.send(self.documents.since(&name, generation, &version));
            }
            Request::Entries(name, reply) => {
                let _ = reply.send(self.documents.entries(&name));
            }
            Request::Presence(presence) => {
                self.editors.local(presence, &self.net, &self.events);
            }
            Request::Editors(document, reply) => {
                let _ = reply.send(self.editors.of(&document));
            }
            Request::Edit(name, edit, reply) => {
                let edit = match self.documents.carry_replica_edit(&name, edit) {
                    Ok(edit) => edit,
                    Err(error) => {
                        let _ = reply.send(Err(error));
                        return;
                    }
                };
                match self
                    .documents
                    .edit(&name, edit.adds(), |document| apply(&edit, document))
                {
                    Ok(update) => self.write(Write::Edit {
                        name,
                        update,
                        waiting: reply,
                    }),
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                }
            }
            Request::Leave(_) => {}
        }
    }

    /// A local copy, acknowledged once on disk: staged on a copy of the register, which the
    /// writer saves; only then ([`Actor::handle_written`]) is it committed and sent — a failed
    /// save changes nothing anywhere.
    fn copy(&mut self, mut copied: rrt_sync::Copied, reply: CopyReply) {
        let through = copied
            .provenance
            .take()
            .map_or_else(|| "app".to_owned(), |provenance| provenance.through);
        copied.provenance = Some(
            Provenance {
                instance: self.name.clone(),
                device: self.device.clone(),
                device_id: self.device_id.clone(),
                through,
            }
            .bounded(),
        );
        match self.clipboard.stage_copy(copied, wall_ms(), self.max_frame) {
            Ok(Some(staged)) => self.write(Write::Copy(staged, reply)),
            Ok(None) => {
                let _ = reply.send(Ok(None));
            }
            Err(TooLarge { len, max }) => {
                let _ = reply.send(Err(CopyError::TooLarge { len, max }));
            }
        }
    }

    /// A write someone waits for is done: the copy or edit is acknowledged and goes to peers, or
    /// is refused and taken back.
    fn handle_written(&mut self, done: Written<CopyReply, EditReply>) {
        match done {
            Written::Copy(staged, reply, Ok(())) => {
                let entry = self.clipboard.commit(staged);
                self.dispatch_clipboard(None);
                let _ = reply.send(Ok(Some(entry)));
            }
            Written::Copy(_, reply, Err(error)) => {
                let _ = reply.send(Err(error.into()));
            }
            Written::Edit {
                name,
                update,
                waiting,
                result,
            } => {
                let answer = match self.documents.edit_stored(&name, update, result) {
                    EditOutcome::Stored => {
                        if let Some(lineage) = self.documents.renew(&name) {
                            self.store_lineage(lineage);
                        }
                        let origin = Origin::Local;
                        let _ = self.events.send(NodeEvent::Document { name, origin });
                        Ok(())
                    }
                    EditOutcome::TakenBack(error) => {
                        self.write(Write::Resume(name));
                        Err(error)
                    }
                    EditOutcome::Held(error) | EditOutcome::Refused(error) => Err(error),
                };
                self.documents.flush(&self.net);
                let _ = waiting.send(answer);
            }
            Written::Lineage { name, held, result } => {
                match self.documents.lineage_stored(&name, held, result) {
                    None => {}
                    Some(EditOutcome::TakenBack(error)) => {
                        tracing::error!(document = name, %error, "what this node started or carried into a new generation could not be stored, and was taken back");
                        self.write(Write::Resume(name));
                    }
                    Some(outcome) => {
                        tracing::error!(
                            document = name,
                            ?outcome,
                            "what this node started or carried into a new generation could not be stored"
                        );
                    }
                }
                self.documents.flush(&self.net);
            }
        }
    }

    fn refuse(&mut self, reason: &str) {
        *self.refusals.entry(reason.to_owned()).or_default() += 1;
    }

    fn store_lineage(&self, lineage: StoreLineage) {
        self.write(Write::Lineage {
            name: lineage.name,
            eras: lineage.eras,
            held: lineage.held,
        });
    }

    fn write(&self, write: Write<CopyReply, EditReply>) {
        if self.writes.send(write).is_err() {
            tracing::error!("the writer thread is gone; nothing more can be stored");
        }
    }

    /// Carries out what the clipboard's sync machine asks: messages, events, a background save.
    /// `from`: the peer whose message the machine just handled (asked first for the blobs of a
    /// value it brought).
    fn dispatch_clipboard(&mut self, from: Option<Uuid>) {
        while let Some(outgoing) = self.clipboard.poll_outgoing() {
            self.command(outgoing.into());
        }
        while let Some(event) = self.clipboard.poll_event() {
            match event {
                ClipEvent::Changed(entry) => {
                    if let Some(peer) = from.filter(|_| entry.stamp.origin != self.id) {
                        let hop = Hop {
                            from: peer,
                            name: self
                                .peers
                                .get(&peer)
                                .map_or_else(String::new, |info| info.name.clone()),
                            at_ms: wall_ms(),
                        };
                        self.arrivals
                            .arrived(&entry, hop, self.clipboard.clipboard().history());
                    }
                    self.blobs
                        .history_changed(self.clipboard.clipboard().history());
                    let hints: Vec<Uuid> = from.into_iter().chain([entry.stamp.origin]).collect();
                    self.blobs.arrived(&entry, &hints);
                    self.blobs.flush(&self.net);
                    if !entry.content.is_empty() {
                        self.evict();
                    }
                    let _ = self.events.send(NodeEvent::Clipboard { entry });
                }
                ClipEvent::ContentRefused { from, error } => {
                    self.refuse("clipboard_content");
                    let peer = self.peers.get(&from).map_or("?", |peer| peer.name.as_str());
                    tracing::warn!(%from, peer, %error, "refused a clipboard update whose content is not what it says (further refusals from this peer are not logged)");
                }
                ClipEvent::ClockRefused {
                    from,
                    origin,
                    error,
                } => {
                    self.refuse("clipboard_clock");
                    let peer = self.peers.get(&from).map_or("?", |peer| peer.name.as_str());
                    tracing::warn!(%from, peer, %origin, %error, "refused a clipboard update stamped in the future (further refusals from this peer are not logged)");
                }
            }
        }
        // Saved in the background: a burst of updates costs one write, not one each.
        if let Some(snapshot) = self.clipboard.take_dirty() {
            // Peers changed the history (an older entry recorded, say): what it names changed.
            self.blobs.history_changed(snapshot.history());
            self.write(Write::Clipboard(snapshot));
        }
    }

    /// Keeps the blob store under its quota, never removing the blobs of the current value (the
    /// register's and the shown one) or of a pinned entry.
    fn evict(&self) {
        let register = self.clipboard.clipboard();
        let shown = self.clipboard.shown().map(|entry| entry.stamp);
        let kept: Vec<&ClipEntry> = register
            .history()
            .iter()
            .enumerate()
            .filter(|(i, entry)| {
                *i == 0 || Some(entry.stamp) == shown || register.pinned().contains(&entry.stamp)
            })
            .map(|(_, entry)| entry)
            .collect();
        self.blobs.evict(&kept);
    }

    fn command(&self, command: NetCommand) {
        if let Err(error) = self.net.send(command) {
            tracing::warn!(command = ?error.0, "the network reactor is stopped; command dropped");
        }
    }

    /// The network thread's view, once it answers.
    fn net_status(&self) -> impl Future<Output = Option<NetStatus>> + use<> {
        let (reply, answer) = oneshot::channel();
        self.command(NetCommand::Status(reply));
        async move { answer.await.ok() }
    }

    fn handle_network(&mut self, event: Result<ReactorEvent<NetEvent>, RecvError>) {
        match event {
            Ok(ReactorEvent::Worker(NetEvent::PeerUp {
                peer,
                reach,
                clique,
            })) => {
                self.arrived(&peer, reach, clique);
                self.peers.insert(peer.id, peer.clone());
                let _ = self.events.send(NodeEvent::PeerUp { peer });
            }
            // Not news for subscribers: the machines start over on the new link.
            Ok(ReactorEvent::Worker(NetEvent::Relinked {
                peer,
                reach,
                clique,
            })) => {
                self.clipboard.peer_down(peer.id);
                self.documents.peer_down(peer.id);
                self.blobs.peer_down(peer.id);
                self.arrived(&peer, reach, clique);
            }
            Ok(ReactorEvent::Worker(NetEvent::PeerDown { peer, reason })) => {
                self.peers.remove(&peer.id);
                self.peer_gone(peer, reason);
            }
            Ok(ReactorEvent::Worker(NetEvent::Message {
                from,
                message,
                arrival,
            })) => {
                self.receive(from, message, arrival);
            }
            Ok(ReactorEvent::Started {
                generation,
                restarts,
            }) => {
                tracing::info!(generation, restarts, "network reactor running");
            }
            Ok(ReactorEvent::Restarting { attempt, cause, .. }) => {
                tracing::warn!(attempt, %cause, "network reactor restarting");
            }
            Ok(ReactorEvent::Shutdown(reason)) => {
                tracing::error!(?reason, "network reactor stopped; relaunching");
                for (_, peer) in std::mem::take(&mut self.peers) {
                    let reason = DownReason::Error("the network reactor stopped".to_owned());
                    self.peer_gone(peer, reason);
                }
                self.relaunch_at = Some(Instant::now() + RELAUNCH_DELAY);
            }
            Err(RecvError::Lagged { missed }) => {
                tracing::error!(
                    missed,
                    "missed network events; peers resynchronise on reconnect"
                );
            }
            Err(RecvError::Closed) => {}
        }
    }

    /// A peer is up on a link: the machines start their catch-up with it.
    fn arrived(&mut self, peer: &PeerInfo, reach: Reach, clique: bool) {
        // Reached through a hub's coordinator, without a link: the coordinator's link carries
        // everything, and a catch-up addressed to this peer would go nowhere.
        if reach == Reach::Relayed {
            return;
        }
        // The network thread knows the mesh's shape, and so who is a clique.
        let neighbour = if clique {
            Neighbour::Clique
        } else {
            Neighbour::Other
        };
        self.clipboard
            .peer_up(peer.id, neighbour, &peer.capabilities);
        self.dispatch_clipboard(None);
        self.documents
            .peer_up(peer.id, neighbour, &peer.capabilities);
        self.documents.flush(&self.net);
        self.blobs.peer_up(peer.id, &peer.capabilities);
        self.blobs.flush(&self.net);
        self.editors.peer_up(peer.id, neighbour, &self.net);
    }

    /// A peer's link is gone: the machines forget what they held for that link (a relaunched
    /// reactor's links start afresh, catch-up included), and subscribers are told.
    fn peer_gone(&mut self, peer: PeerInfo, reason: DownReason) {
        self.clipboard.peer_down(peer.id);
        self.documents.peer_down(peer.id);
        self.editors.peer_down(peer.id);
        self.blobs.peer_down(peer.id);
        self.blobs.flush(&self.net);
        let _ = self.events.send(NodeEvent::PeerDown { peer, reason });
    }

    fn receive(&mut self, from: Uuid, message: Message, arrival: Arrival) {
        match message {
            Message::Clipboard(message) => {
                match arrival {
                    Arrival::Direct => self.clipboard.handle(from, message, wall_ms()),
                    Arrival::Spread => self.clipboard.handle_spread(from, message, wall_ms()),
                }
                self.dispatch_clipboard(Some(from));
            }
            Message::Document(message) => {
                let received = self.documents.receive(from, message, arrival);
                if received.refused > 0 {
                    *self
                        .refusals
                        .entry("document_update".to_owned())
                        .or_default() += received.refused;
                }
                for (name, update) in received.to_store {
                    self.write(Write::PeerUpdate { name, update });
                }
                for lineage in received.lineages {
                    self.store_lineage(lineage);
                }
                for name in received.changed {
                    let origin = Origin::Peer(from);
                    let _ = self.events.send(NodeEvent::Document { name, origin });
                }
                self.documents.flush(&self.net);
            }
            Message::Blob(message) => {
                self.blobs.receive(from, message);
                self.blobs.flush(&self.net);
            }
            Message::Presence(message) => {
                self.editors
                    .receive(from, message, arrival, &self.net, &self.events);
            }
            Message::Link(_) => {
                tracing::debug!(%from, "ignoring a link message the network thread passed on");
            }
        }
    }

    async fn leave(&mut self) {
        self.wan.take();
        if let Some(stop) = self.discovery.take() {
            let _ = stop.send(());
        }
        self.command(NetCommand::Leave);
        let wait = async {
            loop {
                if let Ok(ReactorEvent::Shutdown(_)) | Err(RecvError::Closed) =
                    self.subscription.recv().await
                {
                    return;
                }
            }
        };
        if tokio::time::timeout(LEAVE_TIMEOUT, wait).await.is_err() {
            tracing::warn!("the network reactor did not stop in time");
        }
        // Whatever the writer has not written yet, and the register as it is now.
        self.write(Write::Clipboard(self.clipboard.clipboard().clone()));
        let (flushed, done) = oneshot::channel();
        self.write(Write::Flush(flushed));
        if done.await.is_err() {
            tracing::error!("the writer thread is gone; the clipboard may not be stored");
        }
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

impl<M: Into<Message>> From<Outgoing<M>> for NetCommand {
    fn from(outgoing: Outgoing<M>) -> Self {
        match outgoing.map(Into::into) {
            Outgoing::Broadcast { message, except } => NetCommand::Broadcast { message, except },
            Outgoing::Multicast { to, message } => NetCommand::Multicast { to, message },
            Outgoing::To(to, message) => NetCommand::Send { to, message },
        }
    }
}

/// The bytes of the file at `path`, or of every file under it (0 if there is none).
fn bytes_under(path: &std::path::Path) -> u64 {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| bytes_under(&entry.path()))
            .sum(),
        Ok(meta) => meta.len(),
        Err(_) => 0,
    }
}
