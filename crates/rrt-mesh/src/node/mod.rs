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
//! `Written`; until then it goes to no peer. Values from peers are written in the background,
//! coalesced (a peer still has them if we crash first).
//!
//! The pieces: `actor` (the dispatcher), `edit` (what an edit request does to a document),
//! `status` (what `rrt peers` and `rrt status` show).

mod actor;
mod blobs;
mod edit;
mod import;
mod status;

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use rrt_reactor::{Config, ReactorError, ReactorEvent, RestartPolicy, Rrt, ShutdownReason};
use rrt_store::{
    BlobStore, BlobStoreError, ClipboardStore, ClipboardStoreError, DocumentStore,
    DocumentStoreError,
};
use rrt_sync::{BlobHash, ClipEntry, ClipSync, Clipboard, Copied, Representation};
use rrt_wire::WireConfig;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};
use uuid::Uuid;

use crate::{
    blob_worker,
    content_config::ContentConfig,
    dir::{DirError, MeshDir},
    discovery,
    document_handle::{DocumentHandle, Origin},
    documents::{DocumentError, Documents, STATE},
    membership::{DownReason, HeartbeatConfig, PeerInfo},
    network::{NetCommand, NetworkConfig, NetworkWorker, TcpConfig, TcpSecurity, Topology},
    wall_clock::wall_ms,
    wan::{Pairing, Relays, Ticket, WanCommand, WanConfig, WanEvent, WanStatus, WanWorker},
    writer,
};

use actor::Actor;
use blobs::Blobs;
pub use blobs::{BlobStatus, Transfer};
pub use edit::Edit;
pub use status::{LinkPath, MeshView, NodeStatus, PeerStatus};

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
    /// Above this many members the mesh is a swarm: partial views and a broadcast tree
    /// instead of a full mesh.
    pub swarm_above: usize,
    /// The wide-area transport (iroh: relays, hole punching), if any; needs TCP with TLS,
    /// whose identity and trust store it shares.
    pub wan: Option<WanOptions>,
    /// What is shared and fetched of content besides text (images, HTML, files), and how much
    /// of it is kept.
    pub content: ContentConfig,
}

/// How the wide-area transport is set up (the rest comes from the TLS settings).
#[derive(Debug, Clone)]
pub struct WanOptions {
    /// Which relays to use.
    pub relays: Relays,
    /// Certificates to trust for relays besides the usual roots.
    pub relay_ca: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// The UDP address to bind (port 0: any).
    pub bind: std::net::SocketAddr,
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
            swarm_above: crate::network::DEFAULT_SWARM_ABOVE,
            wan: None,
            content: ContentConfig::default(),
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

/// Why a node request failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The mesh directory is unusable.
    #[error(transparent)]
    Dir(#[from] DirError),
    /// The clipboard store is unusable.
    #[error(transparent)]
    Store(#[from] ClipboardStoreError),
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
    DocumentStore(#[from] DocumentStoreError),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// Pairing needs the wide-area transport, which this node does not run.
    #[error(
        "this instance runs no wide-area transport (started with --no-wan, --no-tcp or --insecure)"
    )]
    NoWan,
    /// The wide-area transport stopped (its restarts ran out); the rest of the node runs on.
    #[error("the wide-area transport has stopped (see the daemon's log); restart the daemon")]
    WanStopped,
    /// The blob store is unusable.
    #[error(transparent)]
    BlobStore(#[from] BlobStoreError),
    /// A representation this node does not fetch: its type is off, or it is over its cap.
    #[error("{mime} of {size} bytes is not fetched here (its limit is {limit} bytes)")]
    NotFetched {
        /// Its type.
        mime: String,
        /// Its size.
        size: u64,
        /// The limit for its type (0: the type is off).
        limit: u64,
    },
    /// A blob could not be had: no peer holds it, or it could not be stored.
    #[error("the value's bytes could not be fetched: {0}")]
    Blob(String),
    /// A representation peers would refuse (too many, a bad type name, inline bytes that are
    /// not what they say).
    #[error("this value cannot be shared: {0}")]
    Content(#[from] rrt_sync::ContentError),
    /// No history entry has that stamp.
    #[error("no clipboard entry has that stamp")]
    NoSuchEntry,
    /// The clipboard has no representation of that type.
    #[error("the clipboard holds no {0}")]
    NoSuchType(String),
}

pub(super) enum Request {
    Copy(
        Copied,
        oneshot::Sender<Result<Option<ClipEntry>, NodeError>>,
    ),
    Blob(BlobHash, u64, String, blobs::BlobReply),
    Pin(
        rrt_sync::Stamp,
        bool,
        oneshot::Sender<Result<(), NodeError>>,
    ),
    Pinned(oneshot::Sender<std::collections::BTreeSet<rrt_sync::Stamp>>),
    Current(oneshot::Sender<Option<ClipEntry>>),
    History(oneshot::Sender<Vec<ClipEntry>>),
    Peers(oneshot::Sender<MeshView>),
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
    /// Where imports go (the blob thread has its own handle for fetches).
    blob_store: Arc<BlobStore>,
    content: ContentConfig,
    wan: Option<Rrt<WanWorker>>,
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
                capabilities: [
                    "clipboard",
                    "state_sync",
                    rrt_sync::CLIPBOARD_HAVE,
                    rrt_sync::BLOBS,
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
            control_socket: dir.control_socket(pid),
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
                    lock: config.state_dir.join("wan.lock"),
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
        let document_store =
            DocumentStore::open(&config.state_dir.join(&config.mesh).join("documents"))?;
        let documents = Documents::load(&document_store, replica)?;
        let state_file = store.path();
        let (writes, written) = writer::spawn(store, document_store).map_err(NodeError::Writer)?;
        let mesh_state = config.state_dir.join(&config.mesh);
        let tag = id.simple().to_string();
        let blob_store = Arc::new(BlobStore::open(&mesh_state, &tag)?);
        let (blob_jobs, blob_done) =
            blob_worker::spawn(BlobStore::open(&mesh_state, &tag)?, net.clone())
                .map_err(NodeError::Writer)?;
        let mut blobs = Blobs::new(blob_jobs, Arc::clone(&blob_store), config.content.clone());
        blobs.history_changed(clipboard.history());
        // A fetch cut by a restart starts again (it goes out once a peer is up).
        if let Some(current) = clipboard.current() {
            blobs.arrived(current, &[current.stamp.origin]);
        }
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
            wan: wan_stop,
            documents,
            blobs,
        };
        tokio::spawn(actor.run(inbox, written, blob_done));
        Ok(Self {
            requests,
            blob_store,
            content: config.content,
            wan,
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
        self.copy_value(text.into()).await
    }

    /// Copies a value of any kind — text and other representations, made by
    /// [`Node::import`] or [`Representation::new`] — to the mesh's clipboard. Representations
    /// whose type this node does not share, or over their cap, are left out (and logged).
    /// `Ok(None)` when it already is the current value.
    pub async fn copy_value(&self, mut copied: Copied) -> Result<Option<ClipEntry>, NodeError> {
        // What peers would refuse is refused here, before anything changed.
        rrt_sync::check_content(&copied.content)?;
        copied.content.retain(|representation| {
            let shared = self
                .content
                .limit(&representation.mime)
                .is_some_and(|limit| representation.size <= limit);
            if !shared {
                tracing::info!(mime = %representation.mime, size = representation.size, "not sharing a representation: its type is off or over its cap");
            }
            shared
        });
        if copied.text.is_empty() && copied.content.is_empty() {
            return Ok(None);
        }
        self.ask(|reply| Request::Copy(copied, reply)).await?
    }

    /// Pins the history entry with `stamp` on this host (`pinned: false` unpins it): a pinned
    /// entry stays in the history, and its blobs in the store, whatever their age.
    pub async fn pin(&self, stamp: rrt_sync::Stamp, pinned: bool) -> Result<(), NodeError> {
        self.ask(|reply| Request::Pin(stamp, pinned, reply)).await?
    }

    /// The stamps of the entries pinned on this host.
    pub async fn pinned(&self) -> Result<std::collections::BTreeSet<rrt_sync::Stamp>, NodeError> {
        self.ask(Request::Pinned).await
    }

    /// The bytes of a representation stored by hash: the path of its file in the blob store,
    /// once here — fetched from a peer that holds it if need be. (An inline representation
    /// carries its bytes.)
    pub async fn blob(&self, representation: &Representation) -> Result<PathBuf, NodeError> {
        let Representation {
            hash, size, mime, ..
        } = representation.clone();
        self.ask(|reply| Request::Blob(hash, size, mime, reply))
            .await?
    }

    /// Reads a value of type `mime` from `reader` into the blob store (at most this node's
    /// limit for the type): a representation to copy with [`Node::copy_value`].
    pub async fn import(
        &self,
        mime: String,
        reader: impl std::io::Read + Send + 'static,
    ) -> Result<Representation, NodeError> {
        let limit = self.content.limit(&mime).unwrap_or(0);
        let store = Arc::clone(&self.blob_store);
        tokio::task::spawn_blocking(move || import::value(&store, mime, reader, limit))
            .await
            .map_err(|_| NodeError::Stopped)?
    }

    /// Reads files and directories (recursively) into the blob store: a file list to copy with
    /// [`Node::copy_value`], and the text to go with it (the paths, one per line).
    pub async fn import_files(&self, paths: Vec<PathBuf>) -> Result<Copied, NodeError> {
        let limit = self.content.max_size;
        let store = Arc::clone(&self.blob_store);
        tokio::task::spawn_blocking(move || import::files(&store, &paths, limit))
            .await
            .map_err(|_| NodeError::Stopped)?
    }

    /// The current clipboard value.
    pub async fn clipboard(&self) -> Result<Option<ClipEntry>, NodeError> {
        self.ask(Request::Current).await
    }

    /// The clipboard history, newest first.
    pub async fn history(&self) -> Result<Vec<ClipEntry>, NodeError> {
        self.ask(Request::History).await
    }

    /// The mesh as this instance sees it: its shape, how many members it has, and the peers
    /// that are up.
    pub async fn peers(&self) -> Result<MeshView, NodeError> {
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

    /// Invites a device to pair: the first event is the ticket to give it; then the code to
    /// compare once it answers, then the outcome. Answer through [`Pairing::confirm`].
    pub fn invite(&self, ttl: Duration) -> Result<Pairing, NodeError> {
        self.pair(|events, confirm| WanCommand::Invite {
            ttl,
            events,
            confirm,
        })
    }

    /// Pairs with the device that made `ticket`: the first event is the code to compare; then
    /// the outcome. Answer through [`Pairing::confirm`].
    pub fn join(&self, ticket: Ticket) -> Result<Pairing, NodeError> {
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
    ) -> Result<Pairing, NodeError> {
        let wan = self.wan.as_ref().ok_or(NodeError::NoWan)?;
        let (pairing, events, confirm) = crate::wan::pairing();
        wan.send(command(events, confirm))
            .map_err(|_| NodeError::WanStopped)?;
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
