//! Clipboard content beyond text between in-process nodes, each its own device (state and mesh
//! directories apart, linked by plain TCP on loopback, each dialing those started before it): large representations announced by hash and fetched — at once under the
//! eager cap, on demand above it — verified part by part, from another peer when one lies, and
//! kept under the store's quota. (The namespace lab in `crates/rrt/tests/content.rs` does the
//! same across hosts over TLS, with cut links.)

use std::path::PathBuf;

use rrt_mesh::{ContentConfig, Node};
use rrt_sync::{Copied, Representation};
use support::devices::{Lab, eventually};

mod support {
    #[path = "../support/devices.rs"]
    pub(crate) mod devices;
}

struct Device {
    node: Node,
    state: PathBuf,
}

/// Device `name` of `lab`, sharing content by `content`.
async fn device(lab: &Lab, name: &str, content: ContentConfig) -> Device {
    Device {
        node: lab.device(name, |builder| builder.content(content)).await,
        state: lab.state_dir(name),
    }
}

impl Device {
    fn blob_dir(&self) -> PathBuf {
        self.state.join("blobs").join("blobs") // <state>/<mesh "blobs">/blobs
    }

    async fn fetched(&self) -> u64 {
        self.node.status().await.expect("status").blobs.fetched
    }

    async fn copy(&self, mime: &str, bytes: Vec<u8>) -> Representation {
        let representation = self
            .node
            .clipboard()
            .import(mime.to_owned(), std::io::Cursor::new(bytes))
            .await
            .expect("imported");
        let copied = Copied {
            text: String::new(),
            content: vec![representation.clone()],
            provenance: None,
        };
        self.node
            .clipboard()
            .copy_value(copied)
            .await
            .expect("copied")
            .expect("a new value");
        representation
    }
}

async fn linked(devices: &[&Device]) {
    let want = devices.len() - 1;
    for device in devices {
        eventually("every peer up", || async {
            device
                .node
                .peers()
                .await
                .is_ok_and(|view| view.peers.len() == want)
        })
        .await;
    }
}

async fn current_holds(device: &Device, representation: &Representation) {
    eventually("the value to arrive", || async {
        device
            .node
            .clipboard()
            .current()
            .await
            .ok()
            .flatten()
            .is_some_and(|entry| entry.content.contains(representation))
    })
    .await;
}

fn bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_under_the_eager_cap_is_fetched_at_once_and_a_larger_one_on_paste() {
    let lab = Lab::new("blobs", "eager");
    let content = ContentConfig {
        eager_max: 4 << 20,
        ..ContentConfig::default()
    };
    let a = device(&lab, "a", content.clone()).await;
    let b = device(&lab, "b", content).await;
    linked(&[&a, &b]).await;

    let screenshot = bytes(3 << 20, 1);
    let small = a.copy("image/png", screenshot.clone()).await;
    assert!(small.is_blob());
    current_holds(&b, &small).await;
    eventually("the screenshot fetched without a paste", || async {
        b.fetched().await == 1
    })
    .await;
    let path = b.node.clipboard().fetch(&small).await.expect("here");
    assert_eq!(std::fs::read(path).expect("read"), screenshot);

    let large_bytes = bytes(9 << 20, 2);
    let large = a
        .copy("application/octet-stream", large_bytes.clone())
        .await;
    current_holds(&b, &large).await;
    let status = b.node.status().await.expect("status").blobs;
    assert_eq!(status.fetched, 1, "not fetched before it is asked for");
    assert!(
        status.fetching.is_empty(),
        "nor being fetched: {:?}",
        status.fetching
    );
    let path = b
        .node
        .clipboard()
        .fetch(&large)
        .await
        .expect("fetched on demand");
    assert_eq!(std::fs::read(path).expect("read"), large_bytes);
    assert_eq!(b.fetched().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_serving_corrupted_bytes_is_refused_and_another_serves_them() {
    let lab = Lab::new("blobs", "corrupt");
    let lazy = ContentConfig {
        eager_max: 0,
        ..ContentConfig::default()
    };
    let a = device(&lab, "a", lazy.clone()).await;
    let b = device(&lab, "b", lazy.clone()).await;
    let c = device(&lab, "c", lazy).await;
    linked(&[&a, &b, &c]).await;

    let original = bytes(6 << 20, 3);
    let representation = a.copy("image/png", original.clone()).await;
    current_holds(&c, &representation).await;
    c.node
        .clipboard()
        .fetch(&representation)
        .await
        .expect("c fetches it");
    // The copier's file changes on disk (same size, a byte in the fourth part): it still serves
    // it, and is the first asked (it copied the value).
    let on_a = a.blob_dir().join(representation.hash.to_string());
    let mut damaged = std::fs::read(&on_a).expect("read");
    damaged[3 << 20] ^= 0xff;
    std::fs::write(&on_a, damaged).expect("damage");

    current_holds(&b, &representation).await;
    let path = b
        .node
        .clipboard()
        .fetch(&representation)
        .await
        .expect("fetched");
    assert_eq!(std::fs::read(path).expect("read"), original);
    let status = b.node.status().await.expect("status");
    assert_eq!(status.blobs.refused_corrupt, 1, "the lie was caught");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_stays_under_its_quota_keeping_the_current_value() {
    let lab = Lab::new("blobs", "quota");
    let quota = ContentConfig {
        quota: 5 << 20,
        ..ContentConfig::default()
    };
    let a = device(&lab, "a", quota.clone()).await;
    let b = device(&lab, "b", quota).await;
    linked(&[&a, &b]).await;
    let mut last = None;
    for seed in 0..3 {
        let representation = a.copy("image/png", bytes(2 << 20, 10 + seed)).await;
        current_holds(&b, &representation).await;
        b.node
            .clipboard()
            .fetch(&representation)
            .await
            .expect("fetched");
        last = Some(representation);
    }
    let last = last.expect("copied");
    let stored = |device: &Device| {
        std::fs::read_dir(device.blob_dir())
            .expect("list")
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().len() == 64)
            .map(|entry| entry.metadata().expect("metadata").len())
            .sum::<u64>()
    };
    eventually("eviction on both", || async {
        stored(&a) <= 5 << 20 && stored(&b) <= 5 << 20
    })
    .await;
    assert!(
        b.blob_dir().join(last.hash.to_string()).is_file(),
        "the current value stays"
    );
    eventually("the eviction reported", || async {
        b.node.status().await.expect("status").blobs.evicted >= 1
    })
    .await;
}
