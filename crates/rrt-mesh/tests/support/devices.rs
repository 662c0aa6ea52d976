//! In-process devices for end-to-end tests: each node its own device (state and mesh directories
//! apart), linked by plain TCP on loopback, each dialing those started before it; and waiting on
//! a condition with a deadline.

use std::{
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, Instant},
};

use rrt_mesh::{Node, NodeBuilder, TcpConfig, TcpSecurity};
use rrt_wire::Compression;

/// How long a condition may take.
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);

/// The devices of one test, under a directory removed when it ends.
pub(crate) struct Lab {
    root: PathBuf,
    mesh: String,
    /// Where the devices started so far listen.
    listening: std::sync::Mutex<Vec<String>>,
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
        }
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
        let peers = self.listening.lock().expect("not poisoned").clone();
        let builder = Node::builder(self.mesh.clone())
            .name(name)
            .mdns(false)
            .runtime_dir(self.root.join(name).join("run"))
            .state_dir(self.state_dir(name))
            .tcp(TcpConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                fall_back_to_any_port: false,
                peers,
                security: TcpSecurity::Insecure,
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
            .push(listen.to_string());
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
