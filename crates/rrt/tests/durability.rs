//! End to end: nothing acknowledged is lost, nothing refused is applied — on a full disk, and
//! after damaged files. The full disk is a small tmpfs mounted over a lab's state directory.

mod common;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use common::{Lab, wait_until};

/// A tmpfs of `size` mounted on `path` for as long as it lives.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Self {
        fs::create_dir_all(path).expect("mount point");
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .status()
            .expect("mount");
        assert!(status.success(), "mount a tmpfs on {}", path.display());
        Self {
            path: path.to_owned(),
        }
    }

    /// Takes every free byte; returns the file that holds them.
    fn fill(&self) -> PathBuf {
        let filler = self.path.join("filler");
        let output = Command::new("dd")
            .args(["if=/dev/zero", "bs=4096"])
            .arg(format!("of={}", filler.display()))
            .output()
            .expect("dd");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("No space left"),
            "{output:?}"
        );
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn append(lab: &Lab, name: &str, text: &str) -> bool {
    lab.run_with_stdin(name, &["scratch", "append", "notes"], text.as_bytes())
        .status
        .success()
}

#[test]
fn on_a_full_disk_a_refused_change_is_applied_nowhere_and_nothing_acknowledged_is_lost() {
    let mut lab = Lab::new("diskfull");
    let disk = Tmpfs::mount(&lab.state_dir(), "2m");
    lab.start_all(&["a", "b"]);
    assert!(append(&lab, "a", "acknowledged before\n"));
    lab.copy("a", "copied before");
    wait_until("b to have both", || {
        lab.cat("b", "notes").as_deref() == Some("acknowledged before\n")
            && lab.paste("b").as_deref() == Some("copied before")
    });

    let filler = disk.fill();
    // Larger than a page, so the record cannot slip into the log's last page.
    let refused = format!("refused {}\n", "x".repeat(10_000));
    assert!(
        !append(&lab, "a", &refused),
        "an append on a full disk fails"
    );
    let copy = lab.run("a", &["clip", "copy", "refused copy"]);
    assert!(!copy.status.success(), "a copy on a full disk fails");
    // Refused means not applied, here or anywhere: b has had time to get a broadcast by the time
    // a's next edit (made after space returns) reaches it.
    fs::remove_file(filler).expect("space again");
    assert!(append(&lab, "a", "acknowledged after\n"));
    wait_until("b to have the edit made after space returned", || {
        lab.cat("b", "notes")
            .is_some_and(|text| text.ends_with("acknowledged after\n"))
    });
    let expected = "acknowledged before\nacknowledged after\n";
    for name in ["a", "b"] {
        assert_eq!(lab.cat(name, "notes").as_deref(), Some(expected), "{name}");
        assert_eq!(lab.paste(name).as_deref(), Some("copied before"), "{name}");
    }
    // Retrying the refused copy is a new value, and it is written.
    lab.copy("a", "refused copy");
    wait_until("b to have the retried copy", || {
        lab.paste("b").as_deref() == Some("refused copy")
    });

    // Killed at once (within the send batch): what was acknowledged is on disk, after the
    // failed append rather than cut off with it.
    assert!(append(&lab, "a", "acknowledged last\n"));
    lab.kill("a");
    lab.kill("b");
    lab.start("a");
    assert_eq!(
        lab.cat("a", "notes").as_deref(),
        Some("acknowledged before\nacknowledged after\nacknowledged last\n")
    );
    assert_eq!(lab.paste("a").as_deref(), Some("refused copy"));
    drop(disk);
}

/// The document directory of the mesh in `state`.
fn documents(state: &Path) -> PathBuf {
    state.join("default").join("documents")
}

/// Files in `dir` whose names contain `part`.
fn files_with(dir: &Path, part: &str) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .expect("list")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().contains(part))
        .collect()
}

#[test]
fn damaged_document_files_are_set_aside_and_caught_up_from_a_peer() {
    let mut lab = Lab::new("damaged");
    lab.own_state_dir("b");
    lab.start_all(&["a", "b"]);
    let long = "a line long enough to fill the log\n".repeat(40_000);
    assert!(append(&lab, "a", &long));
    assert!(append(&lab, "a", "the last line\n"));
    let text = format!("{long}the last line\n");
    for (document, line) in [("todo", "to do\n"), ("empty", "not empty\n")] {
        assert!(
            lab.run("a", &["scratch", "append", document, line])
                .status
                .success()
        );
    }
    lab.copy("a", "the clipboard survives");
    wait_until("b to have everything", || {
        lab.cat("b", "notes").as_deref() == Some(text.as_str())
            && lab.cat("b", "todo").as_deref() == Some("to do\n")
            && lab.cat("b", "empty").as_deref() == Some("not empty\n")
    });
    lab.stop("a");
    lab.stop("b");

    // On a's disk: the notes' snapshot garbled, the todo log's first length prefix garbled, the
    // empty document's snapshot emptied.
    let dir = documents(&lab.state_dir_of("a"));
    let snapshot = dir.join("notes.snapshot");
    assert!(snapshot.exists(), "the long log was folded into a snapshot");
    let mut garbled = fs::read(&snapshot).expect("snapshot");
    garbled.truncate(garbled.len() / 2);
    fs::write(&snapshot, &garbled).expect("garble");
    let log = dir.join("todo.log");
    let mut bytes = fs::read(&log).expect("log");
    let log_len = bytes.len();
    bytes[..4].copy_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
    fs::write(&log, &bytes).expect("garble");
    for name in ["empty.snapshot", "empty.log"] {
        if dir.join(name).exists() {
            fs::write(dir.join(name), b"").expect("empty");
        }
    }
    fs::write(dir.join("empty.snapshot"), b"").expect("an empty snapshot");

    // a starts alone, with what is sound: the clipboard, and the documents' undamaged parts.
    lab.start("a");
    assert_eq!(lab.paste("a").as_deref(), Some("the clipboard survives"));
    let aside = files_with(&dir, "notes.snapshot.damaged-");
    assert_eq!(aside.len(), 1, "the damaged snapshot is kept aside");
    assert_eq!(fs::read(&aside[0]).expect("aside"), garbled);
    let cut = files_with(&dir, "todo.log.cut-");
    assert_eq!(cut.len(), 1, "what was cut off the log is kept aside");
    assert_eq!(fs::metadata(&cut[0]).expect("cut").len() as usize, log_len);
    assert_eq!(files_with(&dir, "empty.snapshot.damaged-").len(), 1);

    // …and catches the rest up from b.
    lab.start("b");
    wait_until("a to have caught everything up from b", || {
        lab.cat("a", "notes").as_deref() == Some(text.as_str())
            && lab.cat("a", "todo").as_deref() == Some("to do\n")
            && lab.cat("a", "empty").as_deref() == Some("not empty\n")
    });
}

#[test]
fn a_damaged_trust_store_or_identity_is_reported_and_nothing_starts_half_configured() {
    let mut lab = Lab::new("damagedtrust");
    lab.start("a");
    lab.stop("a");
    let trusted = lab.state_dir().join("trusted.json");
    fs::write(&trusted, b"{ garbled").expect("garble");
    let said = lab.start_refused("a", &[]);
    assert!(said.contains(&trusted.display().to_string()), "{said}");
    fs::remove_file(&trusted).expect("fixed");

    let key = lab.state_dir().join("identity").join("device.key.der");
    fs::write(&key, b"garbled").expect("garble");
    let said = lab.start_refused("a", &[]);
    assert!(said.contains("identity"), "{said}");
    assert!(said.contains("damaged"), "{said}");
}
