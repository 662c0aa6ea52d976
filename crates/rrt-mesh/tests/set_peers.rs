//! The peers a running node dials, set again while it runs (`rrt daemon` does on SIGHUP when
//! the config file's `peer` list changed): in-process devices on loopback TCP.

use rrt_mesh::{Node, PeersError};
use support::devices::{Lab, eventually};

mod support {
    #[path = "../support/devices.rs"]
    pub(crate) mod devices;
}

async fn peer_count(node: &Node) -> usize {
    node.peers().await.map_or(0, |view| view.peers.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_set_while_running_is_dialed_at_once() {
    let lab = Lab::new("setpeers", "dial");
    let far = lab.device("far", |b| b).await;
    let here = lab.device_dialing("here", Some(&[]), |b| b).await;
    let far_listen = far.status().await.expect("status").listen.expect("TCP");
    assert_eq!(peer_count(&here).await, 0, "started with no peer to dial");

    here.set_peers(vec![far_listen.to_string()])
        .await
        .expect("set");
    eventually("the new peer to be linked", || async {
        peer_count(&here).await == 1 && peer_count(&far).await == 1
    })
    .await;
    here.clipboard()
        .copy("over the new link")
        .await
        .expect("copy");
    eventually("the copy to arrive", || async {
        far.clipboard()
            .current()
            .await
            .ok()
            .flatten()
            .is_some_and(|entry| *entry.text == *"over the new link")
    })
    .await;

    let without_tcp = Node::builder("setpeers-none")
        .state_dir(lab.state_dir("none"))
        .runtime_dir(lab.state_dir("none").join("run"))
        .mdns(false)
        .spawn()
        .await
        .expect("a node");
    assert!(matches!(
        without_tcp.set_peers(vec![far_listen.to_string()]).await,
        Err(PeersError::NoTcp)
    ));
}
