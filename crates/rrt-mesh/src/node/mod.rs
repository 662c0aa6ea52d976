//! The async face of an instance: configure and start it with [`Node::builder`], follow its
//! [`NodeEvent`]s, and reach the shared clipboard ([`ClipboardHandle`]) and documents
//! ([`DocumentHandle`]) through handles.
//!
//! ```text
//! Node (handle) ──requests──▶ actor task ──NetCommand──▶ network reactor thread
//!      ▲                       │ ▲ │ ▲                        │
//!      └──── NodeEvent ────────┘ │ │ └─────── NetEvent ───────┘
//!                        Written │ │ Write
//!                                writer thread (clipboard and document stores)
//! ```
//!
//! The actor is a dispatcher, after iroh-gossip's `net.rs`: it owns the sync machines
//! (`ClipSync`, `DocSync`), feeds them requests, network events and finished writes, and turns
//! what they output into network commands, node events and writes. It decides no sync rule and
//! awaits nothing in its loop — not a disk (the writer thread does every write), not the network
//! thread (status requests are answered by a task of their own). A local copy or edit is
//! acknowledged to its caller once the writer has it on disk, when the actor handles that write's
//! `Written`; until then it goes to no peer. Values from peers are written in the background,
//! coalesced (a peer still has them if we crash first).
//!
//! The pieces: `builder` (settings), `actor` (the dispatcher), `clipboard_handle` and `events`
//! (what applications hold), `edit` (what an edit request does to a document), `error` (one type
//! per operation), `status` (what `rrt peers` and `rrt status` show).

mod actor;
mod blobs;
mod builder;
mod clipboard_handle;
mod edit;
mod editors;
mod error;
mod events;
mod import;
mod pauses;
mod status;
mod why;

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use rrt_reactor::{Config, ReactorEvent, RestartPolicy, Rrt, ShutdownReason};
use rrt_store::{BlobStore, ClipboardStore, DocumentStore};
use rrt_sync::{BlobHash, ClipEntry, ClipSync, Clipboard, Copied};
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

use crate::{
    blob_worker,
    content_config::ContentConfig,
    dir::MeshDir,
    discovery,
    document_handle::DocumentHandle,
    documents::{Documents, EditError},
    network::{NetCommand, NetworkConfig, NetworkWorker, TcpConfig, TcpSecurity, Topology},
    proto::membership::PeerInfo,
    wall_clock::wall_ms,
    wan::{Pairing, Ticket, WanCommand, WanConfig, WanEvent, WanStatus, WanWorker},
    writer,
};

use actor::Actor;
use blobs::Blobs;
pub use blobs::{BlobStatus, Transfer};
pub use builder::{NodeBuilder, WanOptions};
pub use clipboard_handle::{ClipboardChange, ClipboardChanges, ClipboardHandle};
pub use edit::Edit;
pub use error::{
    CopyError, FetchError, ImportError, PairError, PausesError, PeersError, PinError, ReadError,
    StartError, Stopped,
};
pub use events::{NodeEvent, NodeEvents};
pub use status::{LinkPath, MeshView, NodeStatus, PeerStatus};
pub use why::{Hop, Why};

/// What a replica lacks ([`DocumentHandle::since`](crate::DocumentHandle::since)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Since {
    /// The update that brings it up to date (a replica that has nothing gets the whole
    /// document).
    pub update: Vec<u8>,
    /// The document's version after it.
    pub version: Vec<u8>,
    /// The generation both are of: when it is not the one the replica asked about, the document
    /// moved on, and `update` is the new generation whole — the replica starts over from it.
    pub generation: rrt_sync::Generation,
}

pub(super) enum Request {
    Copy(
        Copied,
        oneshot::Sender<Result<Option<ClipEntry>, CopyError>>,
    ),
    Blob(BlobHash, u64, String, blobs::BlobReply),
    Pin(rrt_sync::Stamp, bool, oneshot::Sender<Result<(), PinError>>),
    Pinned(oneshot::Sender<std::collections::BTreeSet<rrt_sync::Stamp>>),
    Why(oneshot::Sender<why::Why>),
    Current(oneshot::Sender<Option<ClipEntry>>),
    History(oneshot::Sender<Vec<ClipEntry>>),
    Peers(oneshot::Sender<MeshView>),
    Status(oneshot::Sender<NodeStatus>),
    Documents(oneshot::Sender<Vec<String>>),
    Text(String, oneshot::Sender<Option<String>>),
    Since(
        String,
        rrt_sync::Generation,
        Vec<u8>,
        oneshot::Sender<Result<Option<Since>, EditError>>,
    ),
    Entries(String, oneshot::Sender<BTreeMap<String, String>>),
    Presence(rrt_sync::Presence),
    Editors(String, oneshot::Sender<Vec<rrt_sync::Presence>>),
    Edit(String, Edit, oneshot::Sender<Result<(), EditError>>),
    Pauses(rrt_sync::Pauses, oneshot::Sender<rrt_sync::Pauses>),
    SetPeers(Vec<String>, oneshot::Sender<Result<(), PeersError>>),
    Leave(oneshot::Sender<()>),
}

/// A running instance. Cheap to clone; every clone talks to the same actor.
#[derive(Debug, Clone)]
pub struct Node {
    requests: mpsc::Sender<Request>,
    /// Where imports go (the blob thread has its own handle for fetches).
    blob_store: Arc<BlobStore>,
    content: ContentConfig,
    never_share: Option<builder::NeverShare>,
    /// Where the clipboard's pauses are read from.
    pauses: Option<pauses::PausesSource>,
    /// The application's own reactors' restart counts ([`NodeBuilder::reactor_restarts`]).
    reactors: Arc<[(String, Arc<AtomicU64>)]>,
    wan: Option<Rrt<WanWorker>>,
    /// Weak, so event streams end when the actor does, however many handles remain.
    events: broadcast::WeakSender<NodeEvent>,
    id: Uuid,
    name: Arc<str>,
}

impl Node {
    /// Settings for a node of `mesh` (instances of different meshes never see each other);
    /// [`NodeBuilder::spawn`] starts it.
    pub fn builder(mesh: impl Into<String>) -> NodeBuilder {
        NodeBuilder::new(mesh.into())
    }

    /// Starts an instance: loads the stored clipboard, starts the network reactor (which binds
    /// this instance's socket and dials the peers already there), and returns once it listens.
    async fn start(config: NodeBuilder) -> Result<Self, StartError> {
        let state_dir = config.state_dir.clone().ok_or(StartError::NoStateDir)?;
        let dir = MeshDir::locate(config.runtime_dir.as_deref(), &config.mesh);
        dir.prepare()?;
        let pid = std::process::id();
        let id = Uuid::new_v4();
        let name = config.name.clone().unwrap_or_else(|| {
            let host = rustix::system::uname();
            format!("{}-{pid}", host.nodename().to_string_lossy())
        });
        let store = ClipboardStore::open(&state_dir.join(&config.mesh))?;
        let max_offset_ms = u64::try_from(config.max_clock_offset.as_millis()).unwrap_or(u64::MAX);
        let mut clipboard = Clipboard::new(id, config.history).with_max_offset(max_offset_ms);
        let loaded = store.clone();
        clipboard = tokio::task::spawn_blocking(move || {
            loaded
                .load_into(&mut clipboard, wall_ms())
                .map(|()| clipboard)
        })
        .await
        .map_err(|_| StartError::Interrupted)??;
        let pauses_source = pauses::PausesSource::of(config.tcp.as_ref());
        let pauses = pauses::read(pauses_source.as_ref())
            .await
            .map_err(StartError::TrustStore)?;
        let clipboard = ClipSync::with_pauses(clipboard, pauses);

        let network = NetworkConfig {
            dir: dir.clone(),
            me: PeerInfo {
                id,
                name: name.clone(),
                capabilities: [
                    "clipboard",
                    "state_sync",
                    rrt_sync::CLIPBOARD_HAVE,
                    rrt_sync::BLOBS,
                    rrt_sync::DOC_GENERATIONS,
                ]
                .into_iter()
                .chain(
                    (config.topology == Topology::Mesh)
                        .then_some([rrt_sync::FULL_MESH, crate::network::SWARM])
                        .into_iter()
                        .flatten(),
                )
                .map(str::to_owned)
                .collect(),
            },
            pid,
            control_socket: config.control_socket.clone(),
            topology: config.topology,
            tcp: config.tcp.clone(),
            heartbeat: config.heartbeat,
            wire: config.wire.clone(),
            swarm_above: config.swarm_above,
        };
        let reactor_config = Config {
            thread_name: "rrt-network".to_owned(),
            capacity: 4096,
            policy: RestartPolicy::default(),
        };
        // The `--peer` targets as last set (`Node::set_peers`): a relaunched reactor starts
        // with them, not with those the node started with.
        let configured_peers =
            Arc::new(Mutex::new(config.tcp.as_ref().map(|tcp| tcp.peers.clone())));
        let targets = Arc::clone(&configured_peers);
        let net = Rrt::with_config(
            move |registry: &mio::Registry| {
                let mut network = network.clone();
                if let (Some(tcp), Some(peers)) = (
                    &mut network.tcp,
                    &*targets.lock().unwrap_or_else(PoisonError::into_inner),
                ) {
                    tcp.peers.clone_from(peers);
                }
                NetworkWorker::new(registry, network)
            },
            reactor_config,
        );
        let mut subscription = net.subscribe();
        match subscription.recv().await {
            Ok(ReactorEvent::Started { .. }) => {}
            Ok(ReactorEvent::Shutdown(ShutdownReason::Failed(error))) => {
                return Err(StartError::Network(error));
            }
            other => tracing::warn!(?other, "unexpected first event from the network reactor"),
        }

        let discovery = match (&config.tcp, config.mdns) {
            (Some(tcp), true) => match &tcp.security {
                TcpSecurity::Tls(tls) => {
                    let (stop, stopped) = oneshot::channel();
                    let announcement = discovery::Announcement {
                        instance: id,
                        mesh: config.mesh.clone(),
                        device: tls.device.clone(),
                        id: tls.identity.id(),
                        port: listening_port(&net).await.unwrap_or(tcp.listen.port()),
                    };
                    tokio::spawn(discovery::supervise(announcement, net.clone(), stopped));
                    Some(stop)
                }
                TcpSecurity::Insecure => {
                    tracing::info!(
                        "mDNS discovery needs TLS; with --insecure, only --peer is used"
                    );
                    None
                }
            },
            _ => None,
        };
        let (wan, wan_stop) = match (&config.wan, &config.tcp) {
            (
                Some(options),
                Some(TcpConfig {
                    security: TcpSecurity::Tls(tls),
                    ..
                }),
            ) => {
                let attach_to = net.clone();
                let wan_config = WanConfig {
                    identity: tls.identity.clone(),
                    device: tls.device.clone(),
                    relays: options.relays.clone(),
                    relay_ca: options.relay_ca.clone(),
                    bind: options.bind,
                    trust: tls.trust.clone(),
                    lock: state_dir.join("wan.lock"),
                    attach: Arc::new(move |link| {
                        if attach_to.send(NetCommand::Attach(link)).is_err() {
                            tracing::debug!(
                                "the network reactor is stopped: a wide-area link dropped"
                            );
                        }
                    }),
                };
                let wan = Rrt::with_config(
                    move |registry: &mio::Registry| WanWorker::new(registry, wan_config.clone()),
                    Config {
                        thread_name: "rrt-wan-supervisor".to_owned(),
                        capacity: 64,
                        policy: RestartPolicy::default(),
                    },
                );
                let (stop, stopped) = oneshot::channel();
                tokio::spawn(supervise_wan(wan.subscribe(), stopped));
                (Some(wan), Some(stop))
            }
            (Some(_), _) => {
                tracing::info!("the wide-area transport needs TCP with TLS; it is off");
                (None, None)
            }
            _ => (None, None),
        };
        let replica = id.as_u64_pair().0;
        let documents_dir = state_dir.join(&config.mesh).join("documents");
        let document_store = DocumentStore::open(&documents_dir)?;
        let documents = Documents::load(&document_store, replica)?;
        let state_file = store.path();
        let (writes, written) = writer::spawn(store, document_store).map_err(StartError::Thread)?;
        let mesh_state = state_dir.join(&config.mesh);
        let tag = id.simple().to_string();
        let blob_store = Arc::new(BlobStore::open(&mesh_state, &tag)?);
        let (blob_jobs, blob_done) =
            blob_worker::spawn(BlobStore::open(&mesh_state, &tag)?, net.clone())
                .map_err(StartError::Thread)?;
        let mut blobs = Blobs::new(blob_jobs, Arc::clone(&blob_store), config.content.clone());
        blobs.history_changed(clipboard.clipboard().history());
        // A fetch cut by a restart starts again (it goes out once a peer is up).
        if let Some(current) = clipboard.shown() {
            blobs.arrived(current, &[current.stamp.origin]);
        }
        let (events, _) = broadcast::channel(1024);
        let (requests, inbox) = mpsc::channel(64);
        let actor = Actor {
            id,
            name: name.clone(),
            mesh: config.mesh,
            pid,
            topology: config.topology,
            dir,
            max_frame: config.wire.max_frame,
            net,
            subscription,
            clipboard,
            state_file,
            events: events.clone(),
            peers: BTreeMap::new(),
            writes,
            relaunch_at: None,
            discovery,
            wan: wan_stop,
            documents,
            blobs,
            editors: editors::Editors::default(),
            documents_dir,
            refusals: BTreeMap::new(),
            arrivals: why::Arrivals::default(),
            device: rustix::system::uname()
                .nodename()
                .to_str()
                .ok()
                .filter(|name| !name.is_empty())
                .map(str::to_owned),
            device_id: pauses_source.as_ref().map(pauses::PausesSource::device_id),
            configured_peers,
        };
        tokio::spawn(actor.run(inbox, written, blob_done));
        Ok(Self {
            requests,
            blob_store,
            content: config.content,
            never_share: config.never_share,
            pauses: pauses_source,
            reactors: config.reactors.into(),
            wan,
            events: events.downgrade(),
            id,
            name: name.as_str().into(),
        })
    }

    /// This instance's id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// This instance's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every event from now on; the stream ends when the node stops.
    pub fn events(&self) -> NodeEvents {
        NodeEvents::new(self.subscribe())
    }

    /// The mesh's shared clipboard.
    pub fn clipboard(&self) -> ClipboardHandle {
        ClipboardHandle::new(self.clone())
    }

    /// The document `name` (made by its first edit, here or on a peer); [`STATE`](crate::STATE)
    /// is the app state's.
    pub fn document(&self, name: impl Into<String>) -> DocumentHandle {
        DocumentHandle::new(self.clone(), name.into())
    }

    /// The names of the documents this node has.
    pub async fn documents(&self) -> Result<Vec<String>, Stopped> {
        self.ask(Request::Documents).await
    }

    /// The mesh as this instance sees it: its shape, how many members it has, and the peers
    /// that are up.
    pub async fn peers(&self) -> Result<MeshView, Stopped> {
        self.ask(Request::Peers).await
    }

    /// This node's status.
    pub async fn status(&self) -> Result<NodeStatus, Stopped> {
        let mut status = self.ask(Request::Status).await?;
        if let Some(wan) = &self.wan {
            status
                .reactor_restarts
                .insert("wide_area".to_owned(), status::restarts(&wan.status()));
        }
        for (reactor, restarts) in self.reactors.iter() {
            status
                .reactor_restarts
                .insert(reactor.clone(), restarts.load(Ordering::Relaxed));
        }
        Ok(status)
    }

    /// Sets the `HOST:PORT` targets this node dials and keeps dialing ([`TcpConfig::peers`])
    /// while it runs: new ones are dialed at once; one no longer listed is not dialed again (a
    /// live link to it stays until it ends — the peer may want it). Relaunches of the network
    /// reactor keep them; the node's next start takes its builder's.
    pub async fn set_peers(&self, peers: Vec<String>) -> Result<(), PeersError> {
        self.ask(|reply| Request::SetPeers(peers, reply)).await?
    }

    /// The raw event channel, for the handles' streams.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        match self.events.upgrade() {
            Some(events) => events.subscribe(),
            // Stopped: a receiver whose sender is gone reports `Closed` at once.
            None => broadcast::channel(1).1,
        }
    }

    /// A document's text; `None` while there is no such document.
    pub(crate) async fn text(&self, document: &str) -> Result<Option<String>, Stopped> {
        self.ask(|reply| Request::Text(document.to_owned(), reply))
            .await
    }

    /// A document's map (empty for a document that has none).
    pub(crate) async fn entries(
        &self,
        document: &str,
    ) -> Result<BTreeMap<String, String>, Stopped> {
        self.ask(|reply| Request::Entries(document.to_owned(), reply))
            .await
    }

    /// Says where an editor of this node is in a document, or that it is gone
    /// ([`DocumentHandle::show_cursor`]).
    pub(crate) async fn set_presence(&self, presence: rrt_sync::Presence) -> Result<(), Stopped> {
        self.requests
            .send(Request::Presence(presence))
            .await
            .map_err(|_| Stopped)
    }

    /// Where the editors of `document` are, this node's included.
    pub(crate) async fn editors(&self, document: &str) -> Result<Vec<rrt_sync::Presence>, Stopped> {
        self.ask(|reply| Request::Editors(document.to_owned(), reply))
            .await
    }

    /// What a replica of `document` at `version` (a state vector; empty for a new replica)
    /// lacks, and the version it is at once it applies that. `None` while the document does
    /// not exist.
    pub(crate) async fn since(
        &self,
        document: &str,
        generation: rrt_sync::Generation,
        version: Vec<u8>,
    ) -> Result<Option<Since>, EditError> {
        self.ask(|reply| Request::Since(document.to_owned(), generation, version, reply))
            .await?
    }

    /// Changes a document (created if new); returns once the change is on disk. It reaches the
    /// peers within the batching window.
    pub(crate) async fn edit(&self, document: &str, edit: Edit) -> Result<(), EditError> {
        if let Edit::Update { update, .. } = &edit {
            // Refused here, before the document changes: a malformed update is the replica's
            // fault and must not reach the store or the peers.
            rrt_sync::Document::new(0)
                .apply(update)
                .map_err(EditError::BadUpdate)?;
        }
        self.ask(|reply| Request::Edit(document.to_owned(), edit, reply))
            .await?
    }

    /// Invites a device to pair: the first event is the ticket to give it; then the code to
    /// compare once it answers, then the outcome. Answer through [`Pairing::confirm`].
    pub fn invite(&self, ttl: Duration) -> Result<Pairing, PairError> {
        self.pair(|events, confirm| WanCommand::Invite {
            ttl,
            events,
            confirm,
        })
    }

    /// Pairs with the device that made `ticket`: the first event is the code to compare; then
    /// the outcome. Answer through [`Pairing::confirm`].
    pub fn join(&self, ticket: Ticket) -> Result<Pairing, PairError> {
        self.pair(|events, confirm| WanCommand::Join {
            ticket,
            events,
            confirm,
        })
    }

    /// Starts a pairing: the asker's half is returned, the endpoint's goes in the command.
    fn pair(
        &self,
        command: impl FnOnce(
            mpsc::UnboundedSender<crate::wan::PairingEvent>,
            oneshot::Receiver<bool>,
        ) -> WanCommand,
    ) -> Result<Pairing, PairError> {
        let wan = self.wan.as_ref().ok_or(PairError::NoWan)?;
        let (pairing, events, confirm) = crate::wan::pairing();
        wan.send(command(events, confirm))
            .map_err(|_| PairError::WanStopped)?;
        Ok(pairing)
    }

    /// The wide-area transport's state (`None` when this node runs none; not running when
    /// another instance of this host runs it, or when it has stopped).
    pub async fn wan_status(&self) -> Option<WanStatus> {
        let wan = self.wan.as_ref()?;
        let stopped = WanStatus {
            running: false,
            address: None,
        };
        let (reply, answer) = oneshot::channel();
        if wan.send(WanCommand::Status(reply)).is_err() {
            return Some(stopped);
        }
        Some(answer.await.unwrap_or(stopped))
    }

    /// Says goodbye to every peer and stops.
    pub async fn leave(&self) -> Result<(), Stopped> {
        self.ask(Request::Leave).await
    }

    async fn ask<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, Stopped> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(request(reply))
            .await
            .map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }
}

/// Keeps the wide-area transport running (its subscription) until `stopped`, logging what it
/// reports.
async fn supervise_wan(
    mut events: rrt_reactor::Subscription<WanEvent>,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            event = events.recv() => match event {
                Ok(ReactorEvent::Worker(WanEvent::Bound { address })) => {
                    tracing::debug!(?address, "wide-area endpoint bound");
                }
                Ok(ReactorEvent::Shutdown(reason)) => {
                    tracing::warn!(?reason, "the wide-area transport stopped");
                    return;
                }
                Ok(_) => {}
                Err(_) => return,
            },
        }
    }
}

/// The TCP port the network reactor actually listens on (it may have fallen back to any port).
async fn listening_port(net: &Rrt<NetworkWorker>) -> Option<u16> {
    let (reply, answer) = oneshot::channel();
    net.send(NetCommand::Status(reply)).ok()?;
    answer.await.ok()?.listen.map(|address| address.port())
}
