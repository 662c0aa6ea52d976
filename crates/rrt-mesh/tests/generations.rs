//! Documents' generations between in-process nodes, each its own device (state and mesh
//! directories apart, linked by plain TCP on loopback, each dialing those started before it): a
//! document edited long enough starts a new generation, every device moves to it, a newcomer
//! gets only it, edits go on both ways, and a restart reads the generations back. (The sync
//! rules are tested without sockets in `rrt-sync`: `tests/generations.rs`,
//! `tests/doc_generations.rs`.)

use std::path::Path;

use rrt_mesh::{DocumentHandle, Edit};
use rrt_sync::{Document, Generation, merge_updates};
use support::devices::{Lab, eventually};

mod support {
    #[path = "../support/devices.rs"]
    pub(crate) mod devices;
}

/// The bytes under `dir` (a device's stored state).
fn directory_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                directory_bytes(&path)
            } else {
                entry.metadata().map_or(0, |meta| meta.len())
            }
        })
        .sum()
}

/// The generation a device's document is in.
async fn generation(document: &DocumentHandle) -> Generation {
    document
        .since(Generation::default(), Vec::new())
        .await
        .expect("readable")
        .map(|since| since.generation)
        .unwrap_or_default()
}

async fn text(document: &DocumentHandle) -> String {
    document.text().await.unwrap_or_default()
}

/// A replica of `document` (as the TUI keeps one) types a word backwards at the start, one
/// character per edit, then deletes it, 50 times, and the node takes its updates as one edit:
/// tombstones without content. Repeated until the node starts a new generation; the new
/// generation, and the replica, still on the old one.
async fn churn_until_a_new_generation(document: &DocumentHandle) -> (Generation, Document) {
    let since = document
        .since(Generation::default(), Vec::new())
        .await
        .expect("readable")
        .expect("the document exists");
    let replica = Document::from_snapshot(99, &since.update).expect("a replica");
    for round in 0..400 {
        let mut updates = Vec::new();
        for _ in 0..50 {
            for c in "scratch".chars().rev() {
                updates.push(replica.insert(0, &c.to_string()));
            }
            updates.push(replica.delete(0, 7));
        }
        let update = merge_updates(&updates).expect("merges");
        document
            .edit(Edit::Update {
                generation: Generation::default(),
                update,
            })
            .await
            .expect("stored");
        let now = generation(document).await;
        if now != Generation::default() {
            eprintln!("a new generation after {} rounds", 50 * (round + 1));
            return (now, replica);
        }
    }
    panic!("20,000 rounds of typing and deleting never outgrew the first generation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_edited_document_moves_every_device_to_a_small_new_generation() {
    let lab = Lab::new("generations", "moves");
    let a = lab.device("a", |builder| builder).await;
    let b = lab.device("b", |builder| builder).await;
    let (notes_a, notes_b) = (a.document("notes"), b.document("notes"));
    notes_a.append("keep this\n").await.expect("stored");
    notes_a.set("theme", "dark").await.expect("stored");
    eventually("b has the text", || async {
        text(&notes_b).await == "keep this\n"
    })
    .await;

    let (started, behind) = churn_until_a_new_generation(&notes_a).await;
    assert_eq!(started.number, 1);
    eventually("b moves to the new generation", || async {
        generation(&notes_b).await == started
    })
    .await;
    assert_eq!(text(&notes_b).await, "keep this\n");
    assert_eq!(
        notes_b.entries().await.expect("entries").get("theme"),
        Some(&"dark".to_owned())
    );

    // The replica had not heard of the move: its edit of the old generation is carried by
    // its text.
    let late = behind.append("late\n");
    notes_a
        .edit(Edit::Update {
            generation: Generation::default(),
            update: late,
        })
        .await
        .expect("carried");
    assert_eq!(generation(&notes_a).await, started);
    eventually("b has the carried edit", || async {
        text(&notes_b).await == "keep this\nlate\n"
    })
    .await;
    // Edits of the new generation go both ways.
    notes_b.append("from b\n").await.expect("stored");
    notes_a.insert(0, "from a\n").await.expect("stored");
    for notes in [&notes_a, &notes_b] {
        eventually("every edit everywhere", || async {
            text(notes).await == "from a\nkeep this\nlate\nfrom b\n"
        })
        .await;
    }

    // A newcomer gets the current generation only: small on its disk.
    let c = lab.device("c", |builder| builder).await;
    let notes_c = c.document("notes");
    eventually("the newcomer has the document", || async {
        text(&notes_c).await == "from a\nkeep this\nlate\nfrom b\n"
    })
    .await;
    assert_eq!(generation(&notes_c).await, started);
    let stored = |name| directory_bytes(&lab.state_dir(name));
    let (kept, fresh) = (stored("a"), stored("c"));
    eprintln!("stored: a {kept} bytes (with the generation it left), the newcomer {fresh}");
    assert!(
        fresh * 4 < kept && fresh < 16 * 1024,
        "the newcomer stores {fresh} bytes, a (with the generation it left) {kept}"
    );

    // A restart reads the generations back, and the document goes on syncing.
    b.leave().await.expect("left");
    drop(b);
    let b = lab.device("b", |builder| builder).await;
    let notes_b = b.document("notes");
    assert_eq!(generation(&notes_b).await, started);
    assert_eq!(text(&notes_b).await, "from a\nkeep this\nlate\nfrom b\n");
    notes_b.append("after a restart\n").await.expect("stored");
    eventually("the edit after the restart reaches a", || async {
        text(&notes_a).await.ends_with("after a restart\n")
    })
    .await;
}
