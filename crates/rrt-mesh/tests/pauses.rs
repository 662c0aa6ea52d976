//! Per-device clipboard pauses between in-process devices over TLS (joined by a secret, so each
//! trusts the others), linked in a line — phone ─ laptop ─ work — so that everything between
//! the ends passes through the laptop: a pause hides values where it applies and never stops
//! them on their way to the others.

use rrt_mesh::{Identity, Node, Paused, TrustStore};
use rrt_sync::ClipEntry;
use support::devices::{Lab, eventually};

mod support {
    #[path = "../support/devices.rs"]
    pub(crate) mod devices;
}

async fn peers(node: &Node, want: usize) {
    eventually("every peer up", || async {
        node.peers()
            .await
            .is_ok_and(|view| view.peers.len() == want)
    })
    .await;
}

/// The value `node` shows, by text.
async fn shown(node: &Node) -> Option<String> {
    let current = node.clipboard().current().await.expect("running");
    current.map(|entry| entry.text.to_string())
}

/// Waits until `node` holds `entry` in its register (shown or not).
async fn kept(node: &Node, entry: &ClipEntry) {
    eventually("the value to be kept", || async {
        node.status()
            .await
            .is_ok_and(|status| status.clipboard == Some(entry.stamp))
    })
    .await;
}

/// Pauses (or resumes) `device` on `lab`'s device `on` as `rrt trust pause` does: once the join
/// pinned it, in the trust store; then the node reads its pauses again.
async fn pause(lab: &Lab, on: &Node, on_name: &str, device: &str, paused: Paused) {
    let store = TrustStore::new(&lab.state_dir(on_name));
    let id = Identity::load_or_create(&lab.state_dir(device))
        .expect("identity")
        .id();
    eventually("the device to be trusted (pinned by the join)", || {
        let store = store.clone();
        async move {
            store
                .set_paused(id, |p| *p = paused)
                .is_ok_and(|set| set.is_some())
        }
    })
    .await;
    let pauses = on.clipboard().read_pauses().await.expect("read");
    assert_eq!(pauses.receive.contains(&id.to_string()), paused.receive);
    assert_eq!(pauses.send.contains(&id.to_string()), paused.send);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_device_is_hidden_where_the_pause_applies_and_relayed_to_everyone_else() {
    let lab = Lab::with_secret("pauses", "line", b"a join secret of this test");
    let laptop = lab.device("laptop", |b| b).await;
    let phone = lab.device_dialing("phone", Some(&["laptop"]), |b| b).await;
    let work = lab.device_dialing("work", Some(&["laptop"]), |b| b).await;
    peers(&laptop, 2).await;
    peers(&phone, 1).await;
    peers(&work, 1).await;

    // The laptop stops receiving from work: work's copy is kept and relayed, not shown.
    laptop
        .clipboard()
        .copy("on the laptop")
        .await
        .expect("copy");
    eventually("the first value everywhere", || async {
        shown(&work).await.as_deref() == Some("on the laptop")
    })
    .await;
    let receive = Paused {
        send: false,
        receive: true,
    };
    pause(&lab, &laptop, "laptop", "work", receive).await;
    let from_work = work
        .clipboard()
        .copy("from work")
        .await
        .expect("copy")
        .expect("new");
    eventually("work's value through the laptop to the phone", || async {
        shown(&phone).await.as_deref() == Some("from work")
    })
    .await;
    kept(&laptop, &from_work).await;
    assert_eq!(shown(&laptop).await.as_deref(), Some("on the laptop"));
    let history = laptop.clipboard().history().await.expect("history");
    assert!(history.iter().all(|entry| *entry.text != *"from work"));

    // The laptop stops sending to the phone: its copy passes through the phone's register
    // (nothing else of the phone's is changed) and shows at work.
    let send = Paused {
        send: true,
        receive: false,
    };
    pause(&lab, &laptop, "laptop", "phone", send).await;
    let private = laptop
        .clipboard()
        .copy("not for the phone")
        .await
        .expect("copy")
        .expect("new");
    assert_eq!(shown(&laptop).await.as_deref(), Some("not for the phone"));
    kept(&phone, &private).await;
    assert_eq!(shown(&phone).await.as_deref(), Some("from work"));
    eventually("the laptop's value at work", || async {
        shown(&work).await.as_deref() == Some("not for the phone")
    })
    .await;

    // Resumed, the laptop shows work's values again; the phone still never shows what was
    // withheld from it when it was copied.
    pause(&lab, &laptop, "laptop", "work", Paused::default()).await;
    let history = laptop.clipboard().history().await.expect("history");
    assert!(history.iter().any(|entry| *entry.text == *"from work"));
    pause(&lab, &laptop, "laptop", "phone", Paused::default()).await;
    assert_eq!(shown(&phone).await.as_deref(), Some("from work"));
}
