//! Content beyond text, measured (root and Xvfb needed):
//!
//! 1. A 200 MiB value between two hosts of the namespace lab over TLS — `rrt clip paste --type`
//!    on the second host of a value copied on the first, fetched on demand — against a raw TLS
//!    stream (rustls, one connection) between the same namespaces, in the same run.
//! 2. A daemon's peak memory while a 1 GiB value crosses: the receiving side's and the serving
//!    side's, against their memory before.
//! 3. A 5 MB screenshot copied on one X desktop until a program on another instance's desktop
//!    pastes it byte for byte (each instance its own state directory, as on two machines).
//!
//! Run: `cargo bench -p rrt --bench content` (`-- --rounds N --screenshots N`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use common::{Lab, measure::percentile, net::Net, wait_until, xvfb::Xvfb};

const MIB: u64 = 1 << 20;
const RAW_PORT: u16 = 47999;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--raw-tls-receive") => return raw_receive(&args[2], &args[3]),
        Some("--raw-tls-send") => {
            return raw_send(&args[2], &args[3], args[4].parse().expect("size"));
        }
        _ => {}
    }
    let rounds = common::flag("--rounds", 3);
    let screenshots = common::flag("--screenshots", 20);
    across_hosts(rounds);
    screenshot(screenshots);
}

fn across_hosts(rounds: usize) {
    let net = Net::new(2);
    let secret =
        std::env::temp_dir().join(format!("rrt-bench-content-{}.secret", std::process::id()));
    common::write_secret(&secret, "a join secret long enough to count");
    let mut labs: Vec<Lab> = (1..=2)
        .map(|host| {
            let other = 3 - host;
            let args = [
                "--secret-file".to_owned(),
                secret.display().to_string(),
                "--device".to_owned(),
                format!("h{host}"),
                "--peer".to_owned(),
                format!("{}:47474", Net::address(other)),
            ];
            Lab::host(&format!("bench-content-h{host}"), &net.host(host), &args)
        })
        .collect();
    labs[0].start("h1");
    labs[1].start("h2");
    wait_until("h1 and h2 to link", || labs[1].peers("h2").len() == 1);

    let size = 200 * MIB;
    let (cert, key) = certificate(&labs[0]);
    println!("200 MiB from h1 to h2 over TLS, median of {rounds} (MiB/s)\n");
    println!("| link | transfer | MiB/s | seconds | of raw |");
    println!("|---|---|---:|---:|---:|");
    let link = "lab veth, unshaped";
    compare(&labs, &net, (&cert, &key), size, rounds, link);
    net.shape_sending(1, "1gbit");
    compare(&labs, &net, (&cert, &key), size, rounds, "1 Gbit/s (tbf)");
    net.clear_shaping(1);

    // Memory while 1 GiB crosses.
    let file = labs[0].state_dir_of("h1").join("gigabyte.bin");
    write_random(&file, 1024 * MIB, 99);
    let (h1, h2) = (labs[0].pid("h1"), labs[1].pid("h2"));
    let before = (rss_kb(h1), rss_kb(h2));
    let peaks = Peaks::watch(&[h1, h2]);
    copy_file(&labs[0], "h1", &file);
    let _ = std::fs::remove_file(&file);
    let importing = peaks.take();
    assert_eq!(paste_to_null(&labs[1], "h2"), 1024 * MIB);
    let crossing = peaks.take();
    peaks.stop();
    println!(
        "\nresident memory of each daemon (MiB): before, while h1 imports 1 GiB, while it crosses to h2\n"
    );
    println!("| daemon | before | importing (peak) | crossing (peak) |");
    println!("|---|---:|---:|---:|");
    for (i, name) in ["h1 (copies, serves)", "h2 (fetches)"].iter().enumerate() {
        let before = [before.0, before.1][i];
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} |",
            before as f64 / 1024.0,
            importing[i] as f64 / 1024.0,
            crossing[i] as f64 / 1024.0
        );
    }
    labs.clear();
    let _ = std::fs::remove_file(&secret);
}

/// 200 MiB from h1 to h2, `rounds` times each: a raw TLS stream, then rrt (fetched into h2's
/// store, then pasted, then pasted again from the store); one table row each.
fn compare(
    labs: &[Lab],
    net: &Net,
    (cert, key): (&Path, &Path),
    size: u64,
    rounds: usize,
    link: &str,
) {
    let mut raw = Vec::new();
    let mut stored = Vec::new();
    let mut pasted = Vec::new();
    let mut local = Vec::new();
    for round in 0..rounds {
        raw.push(raw_tls(net, cert, key, size));
        let file = labs[0].state_dir_of("h1").join("value.bin");
        write_random(&file, size, (round as u64) << 8 | link.len() as u64);
        copy_file(&labs[0], "h1", &file);
        let _ = std::fs::remove_file(&file);
        let store = labs[1].state_dir_of("h2").join("default/blobs");
        let start = Instant::now();
        let whole = appears_in(store, start);
        assert_eq!(paste_to_null(&labs[1], "h2"), size, "the whole value");
        pasted.push(start.elapsed().as_secs_f64());
        stored.push(whole.join().expect("watched"));
        let start = Instant::now();
        assert_eq!(paste_to_null(&labs[1], "h2"), size);
        local.push(start.elapsed().as_secs_f64());
    }
    let rate = |seconds: &[f64]| size as f64 / MIB as f64 / percentile(seconds, 50.0);
    let raw_rate = rate(&raw);
    for (transfer, seconds, of_raw) in [
        ("raw TLS stream (rustls, one connection)", &raw, true),
        (
            "rrt: fetched into h2's store (verified, fsynced)",
            &stored,
            true,
        ),
        (
            "rrt: `clip paste --type` on h2 (fetch, store, deliver)",
            &pasted,
            true,
        ),
        (
            "rrt: the same paste again (delivery from h2's store only)",
            &local,
            false,
        ),
    ] {
        let share = if of_raw {
            format!("{:.0} %", 100.0 * rate(seconds) / raw_rate)
        } else {
            String::new()
        };
        println!(
            "| {link} | {transfer} | {:.0} | {:.2} | {share} |",
            rate(seconds),
            percentile(seconds, 50.0)
        );
    }
}

/// A 5 MB screenshot from one desktop to a program on another.
fn screenshot(rounds: usize) {
    let (x_a, x_b) = (Xvfb::start(), Xvfb::start());
    let mut lab = Lab::new("bench-screenshot");
    lab.own_state_dir("b");
    for (name, x) in [("a", &x_a), ("b", &x_b)] {
        lab.start_with_env(
            name,
            &["--system-clipboard".into(), "x11".into()],
            &[("DISPLAY", x.display())],
        );
    }
    wait_until("a and b to meet", || lab.peers("a").len() == 1);
    wait_until("both to follow X", || {
        ["a", "b"]
            .iter()
            .all(|name| lab.log(name).contains("following the X11 clipboard"))
    });
    let mut samples = Vec::new();
    for round in 0..rounds {
        let png = common::fake_png(5_000_000, 1920, 1080, round as u64);
        let start = Instant::now();
        x_a.copy_type("image/png", &png);
        loop {
            if x_b.paste_type("image/png").as_deref() == Some(&png[..]) {
                samples.push(start.elapsed().as_secs_f64() * 1e3);
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "round {round} never arrived"
            );
        }
    }
    println!(
        "\n5 MB PNG copied in X on a → pasted byte for byte in X on b, {rounds} copies (ms)\n"
    );
    println!("| path | p50 | p99 | max |");
    println!("|---|---:|---:|---:|");
    println!(
        "| xclip on A → daemon a → daemon b (own store) → xclip on B | {:.0} | {:.0} | {:.0} |",
        percentile(&samples, 50.0),
        percentile(&samples, 99.0),
        percentile(&samples, 100.0)
    );
}

/// Seconds from `start` until a new whole blob (and its outline) is in `store`, watched on a
/// thread (a `stat` of the directory every 200 µs).
fn appears_in(store: PathBuf, start: Instant) -> thread::JoinHandle<f64> {
    let count = |dir: &Path| std::fs::read_dir(dir).map_or(0, Iterator::count);
    let before = count(&store);
    thread::spawn(move || {
        while count(&store) < before + 2 {
            assert!(start.elapsed() < Duration::from_secs(120), "never stored");
            thread::sleep(Duration::from_micros(200));
        }
        start.elapsed().as_secs_f64()
    })
}

/// Peak resident memory of processes, sampled every 50 ms on a thread.
struct Peaks {
    peaks: Arc<Vec<AtomicU64>>,
    stop: Arc<AtomicBool>,
}

impl Peaks {
    fn watch(pids: &[u32]) -> Self {
        let peaks: Arc<Vec<AtomicU64>> = Arc::new(pids.iter().map(|_| AtomicU64::new(0)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let (watched, stopped, pids) = (Arc::clone(&peaks), Arc::clone(&stop), pids.to_vec());
        thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                for (peak, pid) in watched.iter().zip(&pids) {
                    peak.fetch_max(rss_kb(*pid), Ordering::Relaxed);
                }
                thread::sleep(Duration::from_millis(50));
            }
        });
        Self { peaks, stop }
    }

    /// The peaks since the last take.
    fn take(&self) -> Vec<u64> {
        self.peaks
            .iter()
            .map(|peak| peak.swap(0, Ordering::Relaxed))
            .collect()
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn copy_file(lab: &Lab, name: &str, file: &Path) {
    let input = std::fs::File::open(file).expect("the value");
    let output = lab
        .rrt()
        .args([
            "--instance",
            name,
            "clip",
            "copy",
            "--type",
            "application/octet-stream",
        ])
        .stdin(input)
        .output()
        .expect("rrt clip copy");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `rrt clip paste --type` into nothing; returns the bytes pasted.
fn paste_to_null(lab: &Lab, name: &str) -> u64 {
    let mut child = lab
        .rrt()
        .args([
            "--instance",
            name,
            "clip",
            "paste",
            "--type",
            "application/octet-stream",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("rrt clip paste");
    let mut out = child.stdout.take().expect("stdout");
    let pasted = std::io::copy(&mut out, &mut std::io::sink()).expect("read");
    assert!(child.wait().expect("paste").success());
    pasted
}

fn write_random(path: &Path, size: u64, seed: u64) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut block = vec![0u8; MIB as usize];
    for _ in 0..size / MIB {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        file.write_all(&block).expect("write");
    }
    file.flush().expect("flush");
}

/// A self-signed certificate and its key for the raw stream, as PEM files in the lab.
fn certificate(lab: &Lab) -> (PathBuf, PathBuf) {
    let generated = rcgen::generate_simple_self_signed(vec!["rrt-bench".to_owned()]).expect("cert");
    let dir = lab.state_dir_of("h1");
    let (cert, key) = (dir.join("raw.crt"), dir.join("raw.key"));
    std::fs::write(&cert, generated.cert.der().as_ref()).expect("cert");
    std::fs::write(&key, generated.signing_key.serialize_der()).expect("key");
    (cert, key)
}

/// One raw TLS transfer of `size` bytes from host 1 to host 2; seconds from the receiver's
/// accept to its end of stream.
fn raw_tls(net: &Net, cert: &Path, key: &Path, size: u64) -> f64 {
    let me = std::env::current_exe().expect("this binary");
    let receiver = Command::new("ip")
        .args(["netns", "exec", &net.host(2)])
        .arg(&me)
        .args(["--raw-tls-receive"])
        .arg(cert)
        .arg(key)
        .stdout(Stdio::piped())
        .spawn()
        .expect("receiver");
    let address = format!("{}:{RAW_PORT}", Net::address(2));
    let mut sent = false;
    for _ in 0..100 {
        let status = Command::new("ip")
            .args(["netns", "exec", &net.host(1)])
            .arg(&me)
            .arg("--raw-tls-send")
            .arg(&address)
            .arg(cert)
            .arg(size.to_string())
            .status()
            .expect("sender");
        if status.success() {
            sent = true;
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert!(sent, "the raw receiver never listened");
    let output = receiver.wait_with_output().expect("receiver");
    let text = String::from_utf8_lossy(&output.stdout);
    let (bytes, seconds) = text.trim().split_once(' ').expect("bytes seconds");
    assert_eq!(bytes.parse::<u64>().expect("bytes"), size);
    seconds.parse().expect("seconds")
}

fn raw_receive(cert: &str, key: &str) {
    let cert = rustls::pki_types::CertificateDer::from(std::fs::read(cert).expect("cert"));
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(std::fs::read(key).expect("key")).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .expect("TLS 1.3")
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .expect("server config");
    let listener = TcpListener::bind(("0.0.0.0", RAW_PORT)).expect("listen");
    let (tcp, _) = listener.accept().expect("accept");
    let start = Instant::now();
    let connection = rustls::ServerConnection::new(Arc::new(config)).expect("connection");
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    let mut buffer = vec![0; 256 * 1024];
    let mut total = 0u64;
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => total += read as u64,
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(error) => panic!("receiving: {error}"),
        }
    }
    println!("{total} {}", start.elapsed().as_secs_f64());
}

fn raw_send(address: &str, cert: &str, size: u64) {
    let Ok(tcp) = TcpStream::connect(address) else {
        std::process::exit(1);
    };
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(
            std::fs::read(cert).expect("cert"),
        ))
        .expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .expect("TLS 1.3")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("rrt-bench").expect("name");
    let connection = rustls::ClientConnection::new(Arc::new(config), name).expect("connection");
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    let block = vec![0x5a; 256 * 1024];
    let mut sent = 0;
    while sent < size {
        let take = (size - sent).min(block.len() as u64) as usize;
        stream.write_all(&block[..take]).expect("send");
        sent += take as u64;
    }
    stream.conn.send_close_notify();
    stream.flush().expect("flush");
    let _ = stream.sock.shutdown(std::net::Shutdown::Write);
    let mut rest = Vec::new();
    let _ = stream.sock.read_to_end(&mut rest);
}
