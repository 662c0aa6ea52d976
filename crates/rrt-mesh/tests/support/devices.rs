//! In-process devices for end-to-end tests: each node its own device (state and mesh directories
//! apart), linked by TCP on loopback — plain, or TLS with a join secret — each dialing those
//! started before it (or those named); and waiting on a condition with a deadline.

use std::{
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, Instant},
};

use rrt_mesh::{Identity, Node, NodeBuilder, TcpConfig, TcpSecurity, TlsConfig, TrustStore};
use rrt_wire::Compression;

/// How long a condition may take.
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);

/// The devices of one test, under a directory removed when it ends.
pub(crate) struct Lab {
    root: PathBuf,
    mesh: String,
    /// Where the devices started so far listen, by name.
    listening: std::sync::Mutex<Vec<(String, String)>>,
    /// The join secret of TLS devices; plain TCP without one.
    secret: Option<Vec<u8>>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Lab {
    /// A lab for test `name`, its devices in mesh `mesh`.
    pub(crate) fn new(mesh: &str, name: &str) -> Self {
        let root = std::env::temp_dir().join(format!("rrt-{mesh}-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        Self {
            root,
            mesh: mesh.to_owned(),
            listening: std::sync::Mutex::default(),
            secret: None,
        }
    }

    /// The same, its devices linked by TLS, each proving the join secret `secret` (and so
    /// trusting each other once it is proven).
    #[allow(dead_code, reason = "not every test binary uses TLS")]
    pub(crate) fn with_secret(mesh: &str, name: &str, secret: &[u8]) -> Self {
        let mut lab = Self::new(mesh, name);
        lab.secret = Some(secret.to_owned());
        lab
    }

    /// Where device `name` keeps its state (across restarts).
    pub(crate) fn state_dir(&self, name: &str) -> PathBuf {
        self.root.join(name).join("state")
    }

    /// Starts device `name`, set up further by `configure`; it dials every device started
    /// before it.
    pub(crate) async fn device(
        &self,
        name: &str,
        configure: impl FnOnce(NodeBuilder) -> NodeBuilder,
    ) -> Node {
        self.device_dialing(name, None, configure).await
    }

    /// Starts device `name`, set up further by `configure`; it dials the devices `dialing`
    /// names (every device started before it when `None`).
    pub(crate) async fn device_dialing(
        &self,
        name: &str,
        dialing: Option<&[&str]>,
        configure: impl FnOnce(NodeBuilder) -> NodeBuilder,
    ) -> Node {
        let peers = self
            .listening
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|(peer, _)| dialing.is_none_or(|names| names.contains(&peer.as_str())))
            .map(|(_, listen)| listen.clone())
            .collect();
        let state = self.state_dir(name);
        let security = match &self.secret {
            Some(secret) => TcpSecurity::Tls(TlsConfig {
                identity: Identity::load_or_create(&state).expect("identity"),
                device: name.to_owned(),
                trust: TrustStore::new(&state),
                secret: Some(secret.clone()),
            }),
            None => TcpSecurity::Insecure,
        };
        let builder = Node::builder(self.mesh.clone())
            .name(name)
            .mdns(false)
            .runtime_dir(self.root.join(name).join("run"))
            .state_dir(state)
            .tcp(TcpConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                fall_back_to_any_port: false,
                peers,
                security,
                compression: Compression::None,
            });
        let node = configure(builder).spawn().await.expect("a node");
        let listen = node
            .status()
            .await
            .expect("status")
            .listen
            .expect("listening");
        self.listening
            .lock()
            .expect("not poisoned")
            .push((name.to_owned(), listen.to_string()));
        node
    }
}

/// Waits until `check` holds, failing the test after [`DEADLINE`].
pub(crate) async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let give_up = Instant::now() + DEADLINE;
    while !check().await {
        assert!(Instant::now() < give_up, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
