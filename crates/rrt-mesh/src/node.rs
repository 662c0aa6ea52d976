//! The async face of an instance: start it with a [`NodeConfig`], watch its [`NodeEvent`]s, get
//! and set the shared clipboard.
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
//! [`Written`]; until then it goes to no peer. Values from peers are written in the background,
//! coalesced (a peer still has them if we crash first).

use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use rrt_reactor::{
    Config, ReactorError, ReactorEvent, RecvError, RestartPolicy, Rrt, ShutdownReason, Subscription,
};
use rrt_sync::{
    Bias, ClipEntry, ClipEvent, ClipSync, Clipboard, ClipboardStore, DocumentStore, Neighbour,
    Outgoing, Stamp, StoreError, TooLarge,
};
use rrt_wire::{Compression, WireConfig};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

use crate::{
    Message,
    dir::{DirError, MeshDir},
    discovery,
    document_handle::{DocumentHandle, Origin},
    documents::{DocumentError, Documents, STATE},
    identity::Device,
    membership::{DownReason, HeartbeatConfig, PeerInfo},
    network::{
        NetCommand, NetEvent, NetStatus, NetworkConfig, NetworkWorker, Reach, Role, TcpConfig,
        TcpSecurity, Topology,
    },
    wall_clock::wall_ms,
    writer::{self, Done, EditNotStored, Write, Writes, Written},
};

/// How long a leaving node waits for its goodbyes to be written.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait before relaunching a network reactor that gave up.
const RELAUNCH_DELAY: Duration = Duration::from_secs(1);

/// How to start a [`Node`].
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The mesh to join (instances of different meshes never see each other).
    pub mesh: String,
    /// This instance's name.
    pub name: String,
    /// How the instances connect: full mesh (default) or hub.
    pub topology: Topology,
    /// TCP links to other hosts, if any.
    pub tcp: Option<TcpConfig>,
    /// Announce and browse `_rrt._tcp.local.` (needs TCP with TLS).
    pub mdns: bool,
    /// Where the mesh directory lives (`None`: `$XDG_RUNTIME_DIR/rrt`, or `/tmp/rrt-<uid>`).
    pub runtime_dir: Option<PathBuf>,
    /// Where the clipboard is kept across restarts (one directory per mesh below it).
    pub state_dir: PathBuf,
    /// Heartbeat timing.
    pub heartbeat: HeartbeatConfig,
    /// How many clipboard entries to keep.
    pub history: usize,
    /// How far ahead of this host's wall clock a peer's clipboard stamp may be; a stamp further
    /// ahead is refused (it would pin its value until real time caught up with it).
    pub max_clock_offset: Duration,
    /// Wire settings (the frame limit also caps a clipboard value).
    pub wire: WireConfig,
}

impl NodeConfig {
    /// Defaults for `mesh` and instance `name`: state under `$XDG_STATE_HOME/rrt` (or
    /// `~/.local/state/rrt`), 50 history entries.
    pub fn new(mesh: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            mesh: mesh.into(),
            name: name.into(),
            topology: Topology::Mesh,
            tcp: None,
            mdns: true,
            runtime_dir: None,
            state_dir: default_state_dir(),
            heartbeat: HeartbeatConfig::default(),
            history: 50,
            max_clock_offset: Duration::from_millis(rrt_sync::DEFAULT_MAX_OFFSET_MS),
            wire: WireConfig::default(),
        }
    }
}

/// `$XDG_STATE_HOME/rrt`, else `$HOME/.local/state/rrt`, else `/tmp/rrt-state`.
pub fn default_state_dir() -> PathBuf {
    let env = |name| {
        std::env::var_os(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    env("XDG_STATE_HOME")
        .or_else(|| env("HOME").map(|home| home.join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("rrt")
}

/// Something that happened to the mesh, as seen from this node.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum NodeEvent {
    /// A peer joined.
    PeerUp {
        /// The peer.
        peer: PeerInfo,
    },
    /// A peer left or failed.
    PeerDown {
        /// The peer.
        peer: PeerInfo,
        /// Why.
        reason: DownReason,
    },
    /// The clipboard has a new value (copied here or arriving from the mesh).
    Clipboard {
        /// The value.
        entry: ClipEntry,
    },
    /// A document changed (edited here or by a peer).
    Document {
        /// Its name ([`STATE`] for the app state).
        name: String,
        /// Who changed it.
        origin: Origin,
    },
}

/// A peer's state, for `rrt peers`.
#[derive(Debug, Clone, Serialize)]
pub struct PeerStatus {
    /// The peer.
    pub peer: PeerInfo,
    /// How it is reached: `"unix"` (a direct link on this host), `"tls"` or `"tcp"` (a direct
    /// link to another host) or `"hub"` (through the coordinator).
    pub transport: &'static str,
    /// Where it runs: `"local"` (this host), an address, or `"via hub"`.
    pub host: String,
    /// The device it runs on, for a TLS link: its key and the name it goes by (names may
    /// repeat across devices; the key tells them apart).
    pub device: Option<Device>,
    /// The link's compression, `"lz4"` or `"none"` (direct links only).
    pub compression: Option<&'static str>,
    /// The last measured heartbeat round trip, in microseconds (direct links only).
    pub rtt_us: Option<u64>,
    /// Milliseconds since anything arrived from it (direct links only).
    pub last_seen_ms: Option<u64>,
}

/// What a node is, for `rrt status`.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    /// The instance id.
    pub id: Uuid,
    /// The instance name.
    pub name: String,
    /// The mesh.
    pub mesh: String,
    /// The process id.
    pub pid: u32,
    /// The topology.
    pub topology: Topology,
    /// This instance's role in it.
    pub role: Option<Role>,
    /// Where it listens for TCP peers, if it does.
    pub listen: Option<std::net::SocketAddr>,
    /// The mesh directory.
    pub mesh_dir: PathBuf,
    /// Where the clipboard is stored.
    pub state_file: PathBuf,
    /// Peers up.
    pub peers: usize,
    /// The network reactor's state and generation.
    pub reactor: String,
    /// The current clipboard value's stamp, if any.
    pub clipboard: Option<Stamp>,
}

/// Why a node request failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The mesh directory is unusable.
    #[error(transparent)]
    Dir(#[from] DirError),
    /// The clipboard store is unusable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The network reactor could not start.
    #[error("the network reactor could not start: {0}")]
    Network(ReactorError),
    /// The writer thread could not start.
    #[error("the writer thread could not start: {0}")]
    Writer(std::io::Error),
    /// The value is larger than a frame can carry; nothing was copied.
    #[error("{len} bytes is too large to share (the limit is {max} bytes)")]
    TooLarge {
        /// The value's encoded size.
        len: usize,
        /// The frame limit.
        max: u32,
    },
    /// A document request failed.
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// The document store could not be opened.
    #[error(transparent)]
    DocumentStore(#[from] rrt_sync::DocumentStoreError),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
}

/// A change to a document.
///
/// Positions are UTF-16 code units into the document's text — or, when `base` is given, into
/// that text: the one the editor saw when it made the edit. The node then moves the position past
/// whatever changed since ([`rrt_sync::rebase`]), so an editor whose copy lags behind the mesh
/// still edits where its user meant.
#[derive(Debug)]
pub enum Edit {
    /// Insert text at a position (clamped to the end).
    Insert {
        /// Where.
        at: usize,
        /// What.
        text: String,
        /// The text `at` refers to, if not the current one.
        base: Option<String>,
    },
    /// Delete `len` UTF-16 code units from a position (clamped to the text).
    Delete {
        /// Where.
        at: usize,
        /// How many.
        len: usize,
        /// The text `at` and `len` refer to, if not the current one.
        base: Option<String>,
    },
    /// Append text.
    Append(String),
    /// Make the text this, with the fewest changes (concurrent edits elsewhere survive).
    Replace(String),
    /// Make the text `text`, an editor's change of `base` (a text the document had): only what
    /// differs between the two is applied, past whatever changed here since — so an edit made
    /// elsewhere while the editor was open survives.
    ReplaceFrom {
        /// The text the editor started from.
        base: String,
        /// What it saved.
        text: String,
    },
    /// Set a key of the document's map (the app state, in [`STATE`]).
    Set(String, String),
    /// Remove a key of the document's map.
    Remove(String),
}

impl Edit {
    /// The bytes of text the edit puts into the document (at most; a replace may keep some).
    fn adds(&self) -> usize {
        match self {
            Self::Insert { text, .. }
            | Self::Append(text)
            | Self::Replace(text)
            | Self::ReplaceFrom { text, .. } => text.len(),
            Self::Set(key, value) => key.len() + value.len(),
            Self::Delete { .. } | Self::Remove(_) => 0,
        }
    }
}

enum Request {
    Copy(
        String,
        oneshot::Sender<Result<Option<ClipEntry>, NodeError>>,
    ),
    Current(oneshot::Sender<Option<ClipEntry>>),
    History(oneshot::Sender<Vec<ClipEntry>>),
    Peers(oneshot::Sender<Vec<PeerStatus>>),
    Status(oneshot::Sender<NodeStatus>),
    Documents(oneshot::Sender<Vec<String>>),
    Text(String, oneshot::Sender<Result<String, NodeError>>),
    Entries(String, oneshot::Sender<BTreeMap<String, String>>),
    Edit(String, Edit, oneshot::Sender<Result<(), NodeError>>),
    Leave(oneshot::Sender<()>),
}

/// A running instance. Cheap to clone; every clone talks to the same actor.
#[derive(Debug, Clone)]
pub struct Node {
    requests: mpsc::Sender<Request>,
    /// Weak, so event streams end when the actor does, however many handles remain.
    events: broadcast::WeakSender<NodeEvent>,
    id: Uuid,
}

impl Node {
    /// Starts an instance: loads the stored clipboard, starts the network reactor (which binds
    /// this instance's socket and dials the peers already there), and returns once it listens.
    pub async fn start(config: NodeConfig) -> Result<Self, NodeError> {
        let dir = MeshDir::locate(config.runtime_dir.as_deref(), &config.mesh);
        dir.prepare()?;
        let pid = std::process::id();
        let id = Uuid::new_v4();
        let store = ClipboardStore::open(&config.state_dir.join(&config.mesh))?;
        let max_offset_ms = u64::try_from(config.max_clock_offset.as_millis()).unwrap_or(u64::MAX);
        let mut clipboard = Clipboard::new(id, config.history).with_max_offset(max_offset_ms);
        let loaded = store.clone();
        clipboard = tokio::task::spawn_blocking(move || {
            loaded
                .load_into(&mut clipboard, wall_ms())
                .map(|()| clipboard)
        })
        .await
        .map_err(|_| NodeError::Stopped)??;

        let network = NetworkConfig {
            dir: dir.clone(),
            me: PeerInfo {
                id,
                name: config.name.clone(),
                capabilities: ["clipboard", "state_sync", rrt_sync::CLIPBOARD_HAVE]
                    .map(str::to_owned)
                    .into(),
            },
            pid,
            control_socket: dir.control_socket(pid),
            topology: config.topology,
            tcp: config.tcp.clone(),
            heartbeat: config.heartbeat,
            wire: config.wire.clone(),
        };
        let reactor_config = Config {
            thread_name: "rrt-network".to_owned(),
            capacity: 4096,
            policy: RestartPolicy::default(),
        };
        let net = Rrt::with_config(
            move |registry: &mio::Registry| NetworkWorker::new(registry, network.clone()),
            reactor_config,
        );
        let mut subscription = net.subscribe();
        match subscription.recv().await {
            Ok(ReactorEvent::Started { .. }) => {}
            Ok(ReactorEvent::Shutdown(ShutdownReason::Failed(error))) => {
                return Err(NodeError::Network(error));
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
                        fingerprint: tls.identity.fingerprint(),
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
        let replica = id.as_u64_pair().0;
        let document_store =
            DocumentStore::open(&config.state_dir.join(&config.mesh).join("documents"))?;
        let documents = Documents::load(&document_store, replica)?;
        let state_file = store.path();
        let (writes, written) = writer::spawn(store, document_store).map_err(NodeError::Writer)?;
        let (events, _) = broadcast::channel(1024);
        let (requests, inbox) = mpsc::channel(64);
        let actor = Actor {
            id,
            name: config.name,
            mesh: config.mesh,
            pid,
            topology: config.topology,
            dir,
            max_frame: config.wire.max_frame,
            net,
            subscription,
            clipboard: ClipSync::new(clipboard),
            state_file,
            events: events.clone(),
            peers: BTreeMap::new(),
            writes,
            relaunch_at: None,
            discovery,
            documents,
        };
        tokio::spawn(actor.run(inbox, written));
        Ok(Self {
            requests,
            events: events.downgrade(),
            id,
        })
    }

    /// This instance's id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Every event from now on; the stream ends when the node stops.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        match self.events.upgrade() {
            Some(events) => events.subscribe(),
            // Stopped: a receiver whose sender is gone reports `Closed` at once.
            None => broadcast::channel(1).1,
        }
    }

    /// Copies `text` to the mesh's clipboard. `Ok(None)` when it already is the current value.
    pub async fn copy(&self, text: String) -> Result<Option<ClipEntry>, NodeError> {
        self.ask(|reply| Request::Copy(text, reply)).await?
    }

    /// The current clipboard value.
    pub async fn clipboard(&self) -> Result<Option<ClipEntry>, NodeError> {
        self.ask(Request::Current).await
    }

    /// The clipboard history, newest first.
    pub async fn history(&self) -> Result<Vec<ClipEntry>, NodeError> {
        self.ask(Request::History).await
    }

    /// The peers that are up.
    pub async fn peers(&self) -> Result<Vec<PeerStatus>, NodeError> {
        self.ask(Request::Peers).await
    }

    /// This node's status.
    pub async fn status(&self) -> Result<NodeStatus, NodeError> {
        self.ask(Request::Status).await
    }

    /// The names of the documents this node has.
    pub async fn documents(&self) -> Result<Vec<String>, NodeError> {
        self.ask(Request::Documents).await
    }

    /// A handle to the document `name` (made by its first edit, here or on a peer).
    pub fn document(&self, name: impl Into<String>) -> DocumentHandle {
        DocumentHandle::new(self.clone(), name.into())
    }

    /// A document's text.
    pub async fn text(&self, document: &str) -> Result<String, NodeError> {
        self.ask(|reply| Request::Text(document.to_owned(), reply))
            .await?
    }

    /// A document's map (empty for a document that has none).
    pub async fn entries(&self, document: &str) -> Result<BTreeMap<String, String>, NodeError> {
        self.ask(|reply| Request::Entries(document.to_owned(), reply))
            .await
    }

    /// The app state (the map of the document [`STATE`]).
    pub async fn state(&self) -> Result<BTreeMap<String, String>, NodeError> {
        self.entries(STATE).await
    }

    /// Changes a document (created if new); returns once the change is on disk. It reaches the
    /// peers within the batching window.
    pub async fn edit(&self, document: &str, edit: Edit) -> Result<(), NodeError> {
        self.ask(|reply| Request::Edit(document.to_owned(), edit, reply))
            .await?
    }

    /// Says goodbye to every peer and stops.
    pub async fn leave(&self) -> Result<(), NodeError> {
        self.ask(Request::Leave).await
    }

    async fn ask<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, NodeError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(request(reply))
            .await
            .map_err(|_| NodeError::Stopped)?;
        answer.await.map_err(|_| NodeError::Stopped)
    }
}

struct Actor {
    id: Uuid,
    name: String,
    mesh: String,
    pid: u32,
    topology: Topology,
    dir: MeshDir,
    max_frame: u32,
    net: Rrt<NetworkWorker>,
    subscription: Subscription<NetEvent>,
    /// The clipboard and its sync with peers.
    clipboard: ClipSync,
    state_file: PathBuf,
    events: broadcast::Sender<NodeEvent>,
    peers: BTreeMap<Uuid, PeerInfo>,
    writes: Writes<CopyReply, EditReply>,
    /// When the network reactor, which gave up, is to be relaunched.
    relaunch_at: Option<Instant>,
    /// Stops the discovery supervisor (and withdraws the announcement).
    discovery: Option<oneshot::Sender<()>>,
    /// Scratch areas and app state.
    documents: Documents,
}

/// The TCP port the network reactor actually listens on (it may have fallen back to any port).
async fn listening_port(net: &Rrt<NetworkWorker>) -> Option<u16> {
    let (reply, answer) = oneshot::channel();
    net.send(NetCommand::Status(reply)).ok()?;
    answer.await.ok()?.listen.map(|address| address.port())
}

/// Who waits for a local copy.
type CopyReply = oneshot::Sender<Result<Option<ClipEntry>, NodeError>>;
/// Who waits for a local edit.
type EditReply = oneshot::Sender<Result<(), NodeError>>;

impl Actor {
    async fn run(
        mut self,
        mut inbox: mpsc::Receiver<Request>,
        mut written: Done<CopyReply, EditReply>,
    ) {
        loop {
            tokio::select! {
                biased;
                Some(done) = written.recv() => self.handle_written(done),
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
            }
        }
    }

    fn handle_request(&mut self, request: Request) {
        match request {
            Request::Copy(text, reply) => self.copy(text, reply),
            Request::Current(reply) => {
                let _ = reply.send(self.clipboard.clipboard().current().cloned());
            }
            Request::History(reply) => {
                let _ = reply.send(self.clipboard.clipboard().history().to_vec());
            }
            // The network thread answers these: a task waits for it, not the loop.
            Request::Peers(reply) => {
                let net = self.net_status();
                tokio::spawn(async move {
                    let _ = reply.send(net.await.map(peer_status).unwrap_or_default());
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
                };
                let net = self.net_status();
                tokio::spawn(async move {
                    if let Some(net) = net.await {
                        node.role = Some(net.role);
                        node.listen = net.listen;
                    }
                    let _ = reply.send(node);
                });
            }
            Request::Documents(reply) => {
                let _ = reply.send(self.documents.names());
            }
            Request::Text(name, reply) => {
                let _ = reply.send(self.documents.text(&name).map_err(NodeError::from));
            }
            Request::Entries(name, reply) => {
                let _ = reply.send(self.documents.entries(&name));
            }
            Request::Edit(name, edit, reply) => {
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
                        let _ = reply.send(Err(error.into()));
                    }
                }
            }
            Request::Leave(_) => {}
        }
    }

    /// A local copy, acknowledged once on disk: staged on a copy of the register, which the
    /// writer saves; only then ([`Actor::handle_written`]) is it committed and sent — a failed
    /// save changes nothing anywhere.
    fn copy(&mut self, text: String, reply: CopyReply) {
        match self.clipboard.stage_copy(text, wall_ms(), self.max_frame) {
            Ok(Some(staged)) => self.write(Write::Copy(staged, reply)),
            Ok(None) => {
                let _ = reply.send(Ok(None));
            }
            Err(TooLarge { len, max }) => {
                let _ = reply.send(Err(NodeError::TooLarge { len, max }));
            }
        }
    }

    /// A write someone waits for is done: the copy or edit is acknowledged and goes to peers, or
    /// is refused and taken back.
    fn handle_written(&mut self, done: Written<CopyReply, EditReply>) {
        match done {
            Written::Copy(staged, reply, Ok(())) => {
                let entry = self.clipboard.commit(staged);
                self.dispatch_clipboard();
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
                let failed = matches!(result, Err(EditNotStored::Failed { .. }));
                let outcome = self.documents.edit_stored(&name, update, result);
                if failed {
                    self.write(Write::Resume(name.clone()));
                }
                if outcome.is_ok() {
                    let origin = Origin::Local;
                    let _ = self.events.send(NodeEvent::Document { name, origin });
                }
                self.documents.flush(&self.net);
                let _ = waiting.send(outcome.map_err(NodeError::from));
            }
        }
    }

    fn write(&self, write: Write<CopyReply, EditReply>) {
        if self.writes.send(write).is_err() {
            tracing::error!("the writer thread is gone; nothing more can be stored");
        }
    }

    /// Carries out what the clipboard's sync machine asks: messages, events, a background save.
    fn dispatch_clipboard(&mut self) {
        while let Some(outgoing) = self.clipboard.poll_outgoing() {
            self.command(outgoing.into());
        }
        while let Some(event) = self.clipboard.poll_event() {
            match event {
                ClipEvent::Changed(entry) => {
                    let _ = self.events.send(NodeEvent::Clipboard { entry });
                }
                ClipEvent::ClockRefused {
                    from,
                    origin,
                    error,
                } => {
                    let peer = self.peers.get(&from).map_or("?", |peer| peer.name.as_str());
                    tracing::warn!(%from, peer, %origin, %error, "refused a clipboard update stamped in the future (further refusals from this peer are not logged)");
                }
            }
        }
        // Saved in the background: a burst of updates costs one write, not one each.
        if let Some(snapshot) = self.clipboard.take_dirty() {
            self.write(Write::Clipboard(snapshot));
        }
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
            Ok(ReactorEvent::Worker(NetEvent::PeerUp { peer, reach })) => {
                // The instances of a host in a full mesh all link to each other.
                let neighbour = match (reach, self.topology) {
                    (Reach::SameHost, Topology::Mesh) => Neighbour::Clique,
                    _ => Neighbour::Other,
                };
                self.clipboard
                    .peer_up(peer.id, neighbour, &peer.capabilities);
                self.dispatch_clipboard();
                self.documents.peer_up(peer.id, neighbour);
                self.documents.flush(&self.net);
                self.peers.insert(peer.id, peer.clone());
                let _ = self.events.send(NodeEvent::PeerUp { peer });
            }
            Ok(ReactorEvent::Worker(NetEvent::PeerDown { peer, reason })) => {
                self.peers.remove(&peer.id);
                self.peer_gone(peer, reason);
            }
            Ok(ReactorEvent::Worker(NetEvent::Message { from, message })) => {
                self.receive(from, message);
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

    /// A peer's link is gone: the machines forget what they held for that link (a relaunched
    /// reactor's links start afresh, catch-up included), and subscribers are told.
    fn peer_gone(&mut self, peer: PeerInfo, reason: DownReason) {
        self.clipboard.peer_down(peer.id);
        self.documents.peer_down(peer.id);
        let _ = self.events.send(NodeEvent::PeerDown { peer, reason });
    }

    fn receive(&mut self, from: Uuid, message: Message) {
        match message {
            Message::Clipboard(message) => {
                self.clipboard.handle(from, message, wall_ms());
                self.dispatch_clipboard();
            }
            Message::Document(message) => {
                let received = self.documents.receive(from, message);
                for (name, update) in received.to_store {
                    self.write(Write::PeerUpdate { name, update });
                }
                for name in received.changed {
                    let origin = Origin::Peer(from);
                    let _ = self.events.send(NodeEvent::Document { name, origin });
                }
                self.documents.flush(&self.net);
            }
            Message::Link(_) => {
                tracing::debug!(%from, "ignoring a link message the network thread passed on");
            }
        }
    }

    async fn leave(&mut self) {
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

/// The network thread's view of the peers, for status displays.
fn peer_status(net: NetStatus) -> Vec<PeerStatus> {
    let millis = |duration: Duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    let micros = |duration: Duration| u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
    let direct = net.links.into_iter().map(|link| PeerStatus {
        peer: link.status.peer,
        transport: link.transport,
        host: link.host,
        device: link.device,
        compression: Some(match link.compression {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
        }),
        rtt_us: link.status.rtt.map(micros),
        last_seen_ms: Some(millis(link.status.silent_for)),
    });
    let relayed = net.relayed.into_iter().map(|peer| PeerStatus {
        peer,
        transport: "hub",
        host: "via hub".to_owned(),
        device: None,
        compression: None,
        rtt_us: None,
        last_seen_ms: None,
    });
    direct.chain(relayed).collect()
}

/// Applies `edit` to `document`; returns the update. Positions given in a `base` text are first
/// moved past what changed since (the current text is read once per edit).
fn apply(edit: &Edit, document: &rrt_sync::Document) -> Vec<u8> {
    match edit {
        Edit::Insert { at, text, base } => {
            let at = match base {
                Some(base) => rrt_sync::rebase(base, &document.text(), *at, Bias::After),
                None => *at,
            };
            document.insert(at, text)
        }
        Edit::Delete { at, len, base } => {
            let end = at.saturating_add(*len);
            let (start, end) = match base {
                // The range's characters, not text others put at its edges.
                Some(base) => {
                    let current = document.text();
                    let start = rrt_sync::rebase(base, &current, *at, Bias::After);
                    (start, rrt_sync::rebase(base, &current, end, Bias::Before))
                }
                None => (*at, end),
            };
            document.delete(start, end.saturating_sub(start))
        }
        Edit::Append(text) => document.append(text),
        Edit::Replace(text) => document.replace(text),
        Edit::ReplaceFrom { base, text } => document.replace_from(base, text),
        Edit::Set(key, value) => document.set(key, value),
        Edit::Remove(key) => document.remove(key),
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
