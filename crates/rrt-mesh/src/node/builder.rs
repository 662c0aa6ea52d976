//! How a [`Node`] is configured and started: [`Node::builder`] gives a [`NodeBuilder`] whose
//! every setting has a default but one, the state directory, and [`NodeBuilder::spawn`] starts the
//! node.
//!
//! The library picks no place on disk for an application: where its clipboard and documents live
//! is the application's choice (the `rrt` binary uses `$XDG_STATE_HOME/rrt`), so a builder
//! without [`NodeBuilder::state_dir`] refuses to start ([`StartError::NoStateDir`]) rather than
//! write into a directory another program owns. The mesh directory is different: instances find
//! each other there, so its default (`$XDG_RUNTIME_DIR/rrt`, else `/tmp/rrt-<uid>`) is part of
//! the protocol, and every program of a mesh must agree on it.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, atomic::AtomicU64},
    time::Duration,
};

use rrt_wire::WireConfig;

use super::{Node, StartError};
use crate::{
    content_config::ContentConfig,
    network::{DEFAULT_SWARM_ABOVE, TcpConfig, Topology},
    proto::membership::HeartbeatConfig,
    wan::Relays,
};

/// Settings of a [`Node`], made by [`Node::builder`]; [`NodeBuilder::spawn`] starts it.
///
/// ```no_run
/// use rrt_mesh::Node;
///
/// # async fn run() -> Result<(), rrt_mesh::StartError> {
/// let node = Node::builder("default")
///     .name("laptop-editor")
///     .state_dir("/var/lib/my-app/rrt")
///     .history(100)
///     .spawn()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until spawned"]
pub struct NodeBuilder {
    pub(super) mesh: String,
    pub(super) name: Option<String>,
    pub(super) topology: Topology,
    pub(super) tcp: Option<TcpConfig>,
    pub(super) mdns: bool,
    pub(super) runtime_dir: Option<PathBuf>,
    pub(super) state_dir: Option<PathBuf>,
    pub(super) control_socket: Option<PathBuf>,
    pub(super) heartbeat: HeartbeatConfig,
    pub(super) history: usize,
    pub(super) max_clock_offset: Duration,
    pub(super) wire: WireConfig,
    pub(super) swarm_above: usize,
    pub(super) wan: Option<WanOptions>,
    pub(super) content: ContentConfig,
    pub(super) never_share: Option<NeverShare>,
    pub(super) reactors: Vec<(String, Arc<AtomicU64>)>,
}

/// Decides that a text must never be shared: the rule it matches, by name (see
/// [`NodeBuilder::never_share`]).
#[derive(Clone)]
pub(super) struct NeverShare(std::sync::Arc<RuleOf>);

/// The rule a text matches, if any.
type RuleOf = dyn Fn(&str) -> Option<String> + Send + Sync;

impl NeverShare {
    /// The rule `text` matches, if any.
    pub(super) fn rule(&self, text: &str) -> Option<String> {
        (self.0)(text)
    }
}

impl std::fmt::Debug for NeverShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NeverShare(..)")
    }
}

/// How the wide-area transport is set up (the rest comes from the TLS settings of
/// [`NodeBuilder::tcp`]).
#[derive(Debug, Clone)]
pub struct WanOptions {
    /// Which relays to use.
    pub relays: Relays,
    /// Certificates to trust for relays besides the usual roots.
    pub relay_ca: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// The UDP address to bind (port 0: any).
    pub bind: SocketAddr,
}

impl NodeBuilder {
    pub(super) fn new(mesh: String) -> Self {
        Self {
            mesh,
            name: None,
            topology: Topology::Mesh,
            tcp: None,
            mdns: true,
            runtime_dir: None,
            state_dir: None,
            control_socket: None,
            heartbeat: HeartbeatConfig::default(),
            history: 50,
            max_clock_offset: Duration::from_millis(rrt_sync::DEFAULT_MAX_OFFSET_MS),
            wire: WireConfig::default(),
            swarm_above: DEFAULT_SWARM_ABOVE,
            wan: None,
            content: ContentConfig::default(),
            never_share: None,
            reactors: Vec::new(),
        }
    }

    /// This instance's name, as peers list it (default: `<host name>-<pid>`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Where the clipboard, documents and blobs are kept across restarts, one directory per mesh
    /// below it. Required: the library picks no place on disk for an application.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Where the mesh directory lives (default: `$XDG_RUNTIME_DIR/rrt`, else `/tmp/rrt-<uid>`).
    /// Instances find each other there: every program of a mesh must use the same one.
    pub fn runtime_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.runtime_dir = Some(dir.into());
        self
    }

    /// The control socket the application serves for this instance (the `rrt` daemon's is
    /// [`MeshDir::control_socket`](crate::MeshDir::control_socket)); the node does not bind it,
    /// but lists the instance with it in the mesh's `peers.json`, where the CLI finds daemons.
    /// Without one (the default) the instance is not listed, and the CLI never picks it.
    pub fn control_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.control_socket = Some(path.into());
        self
    }

    /// How the instances of a host connect: a full mesh (default) or a hub.
    pub fn topology(mut self, topology: Topology) -> Self {
        self.topology = topology;
        self
    }

    /// TCP links to other hosts (default: none, this host only).
    pub fn tcp(mut self, tcp: TcpConfig) -> Self {
        self.tcp = Some(tcp);
        self
    }

    /// Whether to announce and browse `_rrt._tcp.local.` (default: yes; needs TCP with TLS).
    pub fn mdns(mut self, mdns: bool) -> Self {
        self.mdns = mdns;
        self
    }

    /// Heartbeat timing (default: [`HeartbeatConfig::default`]).
    pub fn heartbeat(mut self, heartbeat: HeartbeatConfig) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// How many clipboard entries to keep (default: 50).
    pub fn history(mut self, entries: usize) -> Self {
        self.history = entries;
        self
    }

    /// How far ahead of this host's wall clock a peer's clipboard stamp may be; a stamp further
    /// ahead is refused, as it would pin its value until real time caught up with it.
    pub fn max_clock_offset(mut self, offset: Duration) -> Self {
        self.max_clock_offset = offset;
        self
    }

    /// Wire settings (the frame limit also caps a clipboard value).
    pub fn wire(mut self, wire: WireConfig) -> Self {
        self.wire = wire;
        self
    }

    /// Above this many members the mesh is a swarm: partial views and a broadcast tree instead
    /// of a full mesh.
    pub fn swarm_above(mut self, members: usize) -> Self {
        self.swarm_above = members;
        self
    }

    /// The wide-area transport (iroh: relays, hole punching); needs TCP with TLS, whose identity
    /// and trust store it shares (default: none).
    pub fn wan(mut self, wan: WanOptions) -> Self {
        self.wan = Some(wan);
        self
    }

    /// What is shared and fetched of content besides text (images, HTML, files), and how much of
    /// it is kept (default: [`ContentConfig::default`]).
    pub fn content(mut self, content: ContentConfig) -> Self {
        self.content = content;
        self
    }

    /// Text never to share: a local copy whose text `filter` names a rule for is refused
    /// ([`CopyError::NeverShared`](crate::CopyError::NeverShared)) before anything is stored or
    /// sent — it reaches no peer and no history. (The `rrt` daemon's `--never-share` rules:
    /// private keys, card numbers, patterns.)
    pub fn never_share(
        mut self,
        filter: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.never_share = Some(NeverShare(Arc::new(filter)));
        self
    }

    /// Reports the restarts an application's own reactor counts in `restarts` in the node's
    /// status, as `reactor` ([`NodeStatus::reactor_restarts`](crate::NodeStatus)): the `rrt`
    /// daemon's system clipboard adapter is `system_clipboard`.
    pub fn reactor_restarts(
        mut self,
        reactor: impl Into<String>,
        restarts: Arc<AtomicU64>,
    ) -> Self {
        self.reactors.push((reactor.into(), restarts));
        self
    }

    /// Starts the node: loads what is stored, starts the network reactor (which binds this
    /// instance's socket and dials the peers already there), and returns once it listens.
    pub async fn spawn(self) -> Result<Node, StartError> {
        Node::start(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_node_without_a_state_dir_does_not_start() {
        let result = Node::builder("no-state-dir").mdns(false).spawn().await;
        assert!(matches!(result, Err(StartError::NoStateDir)));
    }
}
