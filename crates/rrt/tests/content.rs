//! Clipboard content beyond text across hosts: real daemons in network namespaces over TLS.
//! Large values are announced by hash and fetched in verified parts — a 200 MiB file through a
//! link cut halfway, an image from a host that serves corrupted bytes, a store under its quota —
//! through the CLI a user has: `clip copy --type/--file`, `clip paste --type/--list-types/--to`.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::Mutex,
    time::Duration,
};

use common::{Lab, fake_png, net::Net, noise, wait_until, wait_until_within};

/// Namespace set-up is kept one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Three hosts, one daemon each (`h1`, `h2`, `h3`), linked by TLS with a join secret.
struct Hosts {
    labs: Vec<Lab>,
    net: Net,
    secret: PathBuf,
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.secret);
    }
}

impl Hosts {
    /// `extra[i]`: more daemon arguments for host `i + 1`.
    fn start(test: &str, extra: [&[&str]; 3]) -> Self {
        let net = Net::new(3);
        let secret =
            std::env::temp_dir().join(format!("rrt-content-{test}-{}.secret", std::process::id()));
        common::write_secret(&secret, "a join secret long enough to count");
        let mut labs = Vec::new();
        for host in 1..=3 {
            let mut args = vec![
                "--secret-file".to_owned(),
                secret.display().to_string(),
                "--device".to_owned(),
                format!("h{host}"),
            ];
            for other in (1..=3).filter(|other| *other != host) {
                args.push("--peer".to_owned());
                args.push(format!("{}:47474", Net::address(other)));
            }
            args.extend(extra[host - 1].iter().map(|arg| (*arg).to_owned()));
            labs.push(Lab::host(
                &format!("{test}-h{host}"),
                &net.host(host),
                &args,
            ));
        }
        let mut hosts = Self { labs, net, secret };
        for host in 1..=3 {
            hosts.labs[host - 1].start(&name(host));
        }
        for host in 1..=3 {
            wait_until(&format!("h{host} to see the two others"), || {
                hosts.lab(host).peers(&name(host)).len() == 2
            });
        }
        hosts
    }

    fn lab(&self, host: usize) -> &Lab {
        &self.labs[host - 1]
    }

    fn run(&self, host: usize, args: &[&str]) -> std::process::Output {
        self.lab(host).run(&name(host), args)
    }

    fn status(&self, host: usize) -> serde_json::Value {
        self.lab(host).status(&name(host)).expect("status")
    }

    fn blobs(&self, host: usize) -> serde_json::Value {
        self.status(host)["blobs"].clone()
    }

    fn blob_file(&self, host: usize, hash: &str) -> PathBuf {
        self.lab(host)
            .state_dir_of(&name(host))
            .join("default/blobs")
            .join(hash)
    }

    /// The current value's types on `host` (`paste --list-types`): (type, size) pairs.
    fn types(&self, host: usize) -> Vec<(String, u64)> {
        let output = self.run(host, &["clip", "paste", "--list-types"]);
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let mut fields = line.split('\t');
                Some((fields.next()?.to_owned(), fields.next()?.parse().ok()?))
            })
            .collect()
    }

    /// The current value's hash of type `mime` on `host`.
    fn hash_of(&self, host: usize, mime: &str) -> String {
        let output = self.run(host, &["clip", "paste"]);
        assert!(output.status.success());
        let output = self.run(host, &["clip", "history", "--json"]);
        let current: serde_json::Value = String::from_utf8_lossy(&output.stdout)
            .lines()
            .next()
            .and_then(|line| serde_json::from_str(line).ok())
            .expect("a current value");
        current["content"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|representation| representation["mime"] == mime)
            .and_then(|representation| representation["hash"].as_str())
            .expect("a representation of that type")
            .to_owned()
    }

    fn copy_type(&self, host: usize, mime: &str, bytes: &[u8]) {
        let output =
            self.lab(host)
                .run_with_stdin(&name(host), &["clip", "copy", "--type", mime], bytes);
        assert!(
            output.status.success(),
            "copy --type on h{host}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn paste_type(&self, host: usize, mime: &str) -> Vec<u8> {
        let output = self.run(host, &["clip", "paste", "--type", mime]);
        assert!(
            output.status.success(),
            "paste --type on h{host}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }
}

fn name(host: usize) -> String {
    format!("h{host}")
}

#[test]
fn images_and_html_copied_on_one_host_paste_identical_on_another_with_their_types() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let hosts = Hosts::start("types", [&[], &[], &[]]);
    // Under the eager cap: fetched at once, so h2 has it before anyone pastes.
    let screenshot = fake_png(5_000_000, 1920, 1080, 1);
    hosts.copy_type(1, "image/png", &screenshot);
    wait_until("h2 to hold the screenshot", || {
        hosts.blobs(2)["fetched"].as_u64() == Some(1)
    });
    assert_eq!(hosts.types(2), [("image/png".to_owned(), 5_000_000)]);
    let listed = hosts.run(2, &["clip", "paste", "--list-types"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("1920x1080"));
    assert!(hosts.paste_type(2, "image/png") == screenshot);

    let html = b"<p>Hello, <b>world</b></p>";
    hosts.copy_type(3, "text/html", html);
    wait_until("h1 to have the HTML", || {
        hosts.types(1) == [("text/html".to_owned(), html.len() as u64)]
    });
    assert_eq!(hosts.paste_type(1, "text/html"), html);
    // Plain text copied by type is the clipboard's text, for every peer old or new.
    hosts.copy_type(2, "text/plain;charset=utf-8", b"typed text");
    wait_until("h3 to paste the text", || {
        hosts.lab(3).paste("h3").as_deref() == Some("typed text")
    });
}

#[test]
fn a_200_mib_file_crosses_a_link_cut_halfway_and_arrives_identical() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let hosts = Hosts::start("large", [&[], &[], &[]]);
    // Slow enough to be cut halfway: 200 MiB at 400 Mbit/s takes about 4 s.
    hosts.net.limit_rate(2, "400mbit");
    let source = hosts.lab(1).state_dir_of("h1").join("large.bin");
    let original = noise(200 << 20, 2);
    std::fs::write(&source, &original).expect("write the file");
    let copied = hosts.run(1, &["clip", "copy", "--file", path(&source)]);
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    wait_until("h2 to see a file list", || {
        hosts
            .types(2)
            .iter()
            .any(|(mime, _)| mime == rrt_sync::FILES)
    });

    let into = hosts.lab(2).state_dir_of("h2").join("pasted-here");
    let paste = hosts
        .lab(2)
        .rrt()
        .args(["--instance", "h2", "clip", "paste", "--to", path(&into)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("paste");
    let received = || {
        hosts.blobs(2)["fetching"]
            .as_array()
            .and_then(|transfers| transfers.first().cloned())
            .and_then(|transfer| transfer["received"].as_u64())
    };
    wait_until_within("a quarter of it to arrive", Duration::from_secs(60), || {
        received().is_some_and(|parts| parts >= 50)
    });
    hosts.net.cut(2);
    wait_until("h2 to lose its peers", || {
        hosts.lab(2).peers("h2").is_empty()
    });
    let before_heal = received().expect("still fetching");
    assert!(before_heal < 200, "not done before the cut: {before_heal}");
    hosts.net.heal(2);
    wait_until("h2 to see its peers again", || {
        hosts.lab(2).peers("h2").len() == 2
    });
    // It goes on from where it was, not from the start.
    if let Some(after) = received() {
        assert!(after >= before_heal, "{after} < {before_heal}");
    }
    let output = wait_for(paste, Duration::from_secs(120));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pasted = std::fs::read(into.join("large.bin")).expect("the pasted file");
    assert!(pasted == original, "the pasted file differs");
    assert_eq!(hosts.blobs(2)["fetched"].as_u64(), Some(1), "fetched once");
}

#[test]
fn a_host_serving_corrupted_bytes_is_refused_and_another_host_serves_them() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    // Nothing is fetched until pasted, so who holds what is decided here.
    let lazy: &[&str] = &["--eager-max", "0"];
    let hosts = Hosts::start("corrupt", [lazy, lazy, lazy]);
    let image = fake_png(20 << 20, 1920, 1080, 3);
    hosts.copy_type(1, "image/png", &image);
    wait_until("h3 to see the image", || !hosts.types(3).is_empty());
    assert!(hosts.paste_type(3, "image/png") == image);
    // h1's copy changes on disk (a byte in its tenth part); h1 still serves it, and is asked
    // first (it copied the value).
    let hash = hosts.hash_of(1, "image/png");
    let on_h1 = hosts.blob_file(1, &hash);
    let mut damaged = std::fs::read(&on_h1).expect("h1's blob");
    damaged[9 << 20] ^= 0xff;
    std::fs::write(&on_h1, damaged).expect("damage it");

    wait_until("h2 to see the image", || !hosts.types(2).is_empty());
    assert!(
        hosts.paste_type(2, "image/png") == image,
        "h2 pasted other bytes"
    );
    assert_eq!(hosts.blobs(2)["refused_corrupt"].as_u64(), Some(1));
}

#[test]
fn past_its_quota_a_host_removes_the_oldest_content_but_not_the_current_one() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let small_store: &[&str] = &["--blob-quota", "20MiB"];
    let hosts = Hosts::start("quota", [&[], small_store, &[]]);
    for seed in 0..3 {
        hosts.copy_type(1, "image/png", &fake_png(8 << 20, 1920, 1080, 10 + seed));
        wait_until("h2 to fetch it", || {
            hosts.blobs(2)["fetched"].as_u64() == Some(seed + 1)
        });
    }
    wait_until("h2 to evict", || {
        hosts.blobs(2)["evicted"].as_u64().is_some_and(|n| n >= 1)
    });
    let dir = hosts.blob_file(2, "");
    let stored: u64 = std::fs::read_dir(&dir)
        .expect("the store")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().len() == 64)
        .map(|entry| entry.metadata().expect("metadata").len())
        .sum();
    assert!(stored <= 20 << 20, "{stored} bytes stored");
    let current = hosts.hash_of(2, "image/png");
    assert!(
        hosts.blob_file(2, &current).is_file(),
        "the current value stays"
    );
}

fn path(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// Waits for a child with a deadline, killing it if it runs over.
fn wait_for(mut child: std::process::Child, deadline: Duration) -> std::process::Output {
    let give_up = std::time::Instant::now() + deadline;
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > give_up {
            let _ = child.kill();
            panic!("the command did not finish within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}
