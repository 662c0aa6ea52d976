//! A ping/pong round trip through the network reactor over a Unix socket — client → reactor
//! thread (epoll, wire session, membership answers the ping) → client — against, in the same run,
//! a plain blocking thread answering the same framed pings, and a raw 8-byte echo.
//!
//! Run: `cargo bench -p rrt-mesh --bench round_trip` (`-- --samples N`).

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    thread,
    time::Instant,
};

use rrt_mesh::{
    HeartbeatConfig, MeshDir, PeerInfo,
    network::{NetworkConfig, NetworkWorker, Topology},
};
use rrt_mesh::{LinkMessage, Message};
use rrt_reactor::{ReactorEvent, Rrt};
use rrt_wire::{BlockingTransport, Role, Transport, WireConfig};
use uuid::Uuid;

const WARMUP: usize = 1_000;

fn main() {
    let samples = std::env::args()
        .skip_while(|arg| arg != "--samples")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let raw = raw_echo(samples);
    let rows = [
        ("raw blocking 8-byte echo (baseline)", raw.clone()),
        (
            "blocking thread, framed ping/pong",
            blocking_framed(samples),
        ),
        (
            "network reactor, framed ping/pong",
            through_reactor(samples),
        ),
    ];
    println!("Unix-socket round trips, {samples} samples each (µs)\n");
    println!("| path | p50 | p99 | mean | p50 ratio | p99 ratio |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, samples) in rows {
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.2}× | {:.2}× |",
            percentile(&samples, 50.0),
            percentile(&samples, 99.0),
            samples.iter().sum::<f64>() / samples.len() as f64,
            percentile(&samples, 50.0) / percentile(&raw, 50.0),
            percentile(&samples, 99.0) / percentile(&raw, 99.0),
        );
    }
}

fn raw_echo(samples: usize) -> Vec<f64> {
    let (mut client, mut server) = UnixStream::pair().expect("pair");
    thread::spawn(move || {
        let mut buffer = [0; 8];
        while server.read_exact(&mut buffer).is_ok() {
            if server.write_all(&buffer).is_err() {
                return;
            }
        }
    });
    time(samples, || {
        let mut buffer = [7; 8];
        client.write_all(&buffer).expect("write");
        client.read_exact(&mut buffer).expect("read");
    })
}

fn blocking_framed(samples: usize) -> Vec<f64> {
    let (client, server) = UnixStream::pair().expect("pair");
    thread::spawn(move || {
        let mut server =
            BlockingTransport::handshake(server, Role::Acceptor, &WireConfig::default())
                .expect("handshake");
        while let Ok(message) = server.recv_message() {
            if let Message::Link(LinkMessage::Ping { timestamp }) = message
                && server
                    .send_message(&Message::Link(LinkMessage::Pong { timestamp }))
                    .is_err()
            {
                return;
            }
        }
    });
    ping_pong(client, samples)
}

fn through_reactor(samples: usize) -> Vec<f64> {
    let base = std::env::temp_dir().join(format!("rrt-bench-rtt-{}", std::process::id()));
    let dir = MeshDir::locate(Some(&base), "bench");
    let pid = std::process::id();
    let config = NetworkConfig {
        dir: dir.clone(),
        me: PeerInfo {
            id: Uuid::new_v4(),
            name: "bench".into(),
            capabilities: vec![],
        },
        pid,
        control_socket: None,
        topology: Topology::Mesh,
        tcp: None,
        heartbeat: HeartbeatConfig::default(),
        wire: WireConfig::default(),
        swarm_above: rrt_mesh::network::DEFAULT_SWARM_ABOVE,
    };
    let reactor =
        Rrt::new(move |registry: &mio::Registry| NetworkWorker::new(registry, config.clone()));
    let mut events = reactor.subscribe();
    match events.blocking_recv() {
        Ok(ReactorEvent::Started { .. }) => {}
        other => panic!("the network reactor did not start: {other:?}"),
    }
    let client = UnixStream::connect(dir.peer_socket(pid)).expect("connect");
    let result = ping_pong(client, samples);
    drop(events);
    let _ = std::fs::remove_dir_all(base);
    result
}

fn ping_pong(client: UnixStream, samples: usize) -> Vec<f64> {
    let mut client = BlockingTransport::handshake(client, Role::Dialer, &WireConfig::default())
        .expect("handshake");
    client
        .send_message(&Message::Link(LinkMessage::Hello {
            instance_id: Uuid::new_v4(),
            capabilities: vec![],
            name: "client".into(),
        }))
        .expect("hello");
    let mut timestamp = 0;
    time(samples, || {
        timestamp += 1;
        client
            .send_message(&Message::Link(LinkMessage::Ping { timestamp }))
            .expect("ping");
        loop {
            match client.recv_message().expect("pong") {
                Message::Link(LinkMessage::Pong { timestamp: echoed }) if echoed == timestamp => {
                    break;
                }
                _ => continue,
            }
        }
    })
}

fn time(samples: usize, mut round_trip: impl FnMut()) -> Vec<f64> {
    let mut micros = Vec::with_capacity(samples);
    for i in 0..WARMUP + samples {
        let start = Instant::now();
        round_trip();
        if i >= WARMUP {
            micros.push(start.elapsed().as_secs_f64() * 1e6);
        }
    }
    micros
}

fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
