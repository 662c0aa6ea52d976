//! The wide-area transport in-process, as an embedder uses it: two nodes, each its own device
//! (state and mesh directories apart), no relay — the ticket's direct addresses on loopback.
//! Pairing by ticket through `Node::invite`/`Node::join`, then a copy across the iroh link.
//! (The namespace lab in `crates/rrt/tests/wan.rs` covers NATs and relays.)

use std::{
    net::SocketAddr,
    path::PathBuf,
    time::{Duration, Instant},
};

use rrt_mesh::{
    Identity, Node, Pairing, PairingEvent, Relays, TcpConfig, TcpSecurity, Ticket, TlsConfig,
    TrustStore, WanOptions,
};
use rrt_wire::Compression;
use tokio::sync::mpsc::UnboundedReceiver;

const DEADLINE: Duration = Duration::from_secs(20);

struct Device {
    node: Node,
    root: PathBuf,
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

async fn device(name: &str) -> Device {
    let root = std::env::temp_dir().join(format!("rrt-wan-pairing-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let state = root.join("state");
    let node = Node::builder("wan")
        .name(name)
        .mdns(false)
        .runtime_dir(root.join("run"))
        .state_dir(state.clone())
        .tcp(TcpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            fall_back_to_any_port: false,
            peers: Vec::new(),
            security: TcpSecurity::Tls(TlsConfig {
                identity: Identity::load_or_create(&state).expect("identity"),
                device: name.to_owned(),
                trust: TrustStore::new(&state),
                secret: None,
            }),
            compression: Compression::Lz4,
        })
        .wan(WanOptions {
            relays: Relays::Disabled,
            relay_ca: Vec::new(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        })
        .spawn()
        .await
        .expect("a node");
    Device { node, root }
}

async fn next(events: &mut UnboundedReceiver<PairingEvent>) -> PairingEvent {
    tokio::time::timeout(DEADLINE, events.recv())
        .await
        .expect("a pairing event in time")
        .expect("the pairing goes on")
}

async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let give_up = Instant::now() + DEADLINE;
    while !check().await {
        assert!(Instant::now() < give_up, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts an invitation on `inviter` and a join of its ticket on `joiner`; returns both
/// pairings at the point where each shows its code, and the codes.
async fn meet(inviter: &Node, joiner: &Node) -> ((Pairing, String), (Pairing, String)) {
    let mut invited = inviter.invite(Duration::from_secs(60)).expect("invite");
    let PairingEvent::Ticket { ticket } = next(&mut invited.events).await else {
        panic!("the ticket first");
    };
    let ticket: Ticket = ticket.parse().expect("a ticket");
    assert!(
        !ticket.addrs.is_empty(),
        "a ticket without a relay names addresses"
    );
    let mut joining = joiner.join(ticket).expect("join");
    let code = |event| match event {
        PairingEvent::Code { code, .. } => code,
        other => panic!("a code, not {other:?}"),
    };
    let joiner_code = code(next(&mut joining.events).await);
    let inviter_code = code(next(&mut invited.events).await);
    ((invited, inviter_code), (joining, joiner_code))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_pair_by_ticket_and_share_a_clipboard_over_iroh() {
    let (a, b) = (device("a").await, device("b").await);
    let ((invited, inviter_code), (joining, joiner_code)) = meet(&a.node, &b.node).await;
    assert_eq!(inviter_code, joiner_code, "both show the same code");
    let mut pairings = [invited, joining];
    for pairing in &mut pairings {
        let (confirm, _) = tokio::sync::oneshot::channel();
        std::mem::replace(&mut pairing.confirm, confirm)
            .send(true)
            .expect("confirm");
    }
    for pairing in &mut pairings {
        assert!(matches!(
            next(&mut pairing.events).await,
            PairingEvent::Paired { .. }
        ));
    }
    eventually("a link over iroh", || async {
        b.node.peers().await.is_ok_and(|view| {
            view.peers
                .iter()
                .any(|peer| peer.transport == rrt_mesh::Transport::Iroh && peer.peer.name == "a")
        })
    })
    .await;
    a.node
        .clipboard()
        .copy("across the wide-area transport".to_owned())
        .await
        .expect("copy");
    eventually("b to have a's copy", || async {
        b.node
            .clipboard()
            .current()
            .await
            .ok()
            .flatten()
            .is_some_and(|entry| &*entry.text == "across the wide-area transport")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_on_either_side_trusts_nothing() {
    let (a, b) = (device("c").await, device("d").await);
    let ((mut invited, _), (mut joining, _)) = meet(&a.node, &b.node).await;
    invited.confirm.send(true).expect("confirm");
    joining.confirm.send(false).expect("refuse");
    assert!(matches!(
        next(&mut invited.events).await,
        PairingEvent::Failed { .. }
    ));
    assert!(matches!(
        next(&mut joining.events).await,
        PairingEvent::Failed { .. }
    ));
    for device in [&a, &b] {
        let trust = TrustStore::new(&device.root.join("state"));
        assert!(trust.list().expect("trust store").is_empty());
    }
}
