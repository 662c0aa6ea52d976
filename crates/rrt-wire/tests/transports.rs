//! The drivers over real sockets: blocking and tokio, Unix and TCP, talking to each other, and
//! the handshake and frame deadlines against peers that misbehave.

use std::{
    io::{Read, Write},
    net::TcpListener,
    os::unix::net::UnixStream,
    thread,
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use rrt_mesh::{LinkMessage, Message};
use rrt_sync::ClipMessage;
use rrt_wire::{
    BlockingTransport, Compression, Format, PreambleError, Received, Role, Transport, WireConfig,
    WireError, frame::FrameError, framed,
};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

fn hello() -> Message {
    Message::Link(LinkMessage::Hello {
        instance_id: Uuid::from_u128(42),
        capabilities: vec!["clipboard".into()],
        name: "test".into(),
    })
}

fn clip(data: &str) -> Message {
    Message::Clipboard(ClipMessage::ClipboardUpdate {
        content: Vec::new(),
        data: data.into(),
        timestamp: 1_702_834_567_890,
        counter: 0,
        source_instance: Uuid::from_u128(42),
        provenance: None,
        withheld_from: Vec::new(),
    })
}

#[test]
fn blocking_transports_over_a_unix_socket() {
    let (a, b) = UnixStream::pair().expect("socket pair");
    let acceptor = thread::spawn(move || {
        let mut transport =
            BlockingTransport::<_, Message>::handshake(b, Role::Acceptor, &WireConfig::default())
                .expect("handshake");
        let got = transport.recv_message().expect("hello");
        transport.send_message(&clip("back")).expect("send");
        got
    });
    let config = WireConfig {
        format: Format::MessagePack,
        compression: Compression::Lz4,
        ..WireConfig::default()
    };
    let mut dialer =
        BlockingTransport::<_, Message>::handshake(a, Role::Dialer, &config).expect("handshake");
    assert_eq!(dialer.negotiated().format, Format::MessagePack);
    dialer.send_message(&hello()).expect("send");
    assert_eq!(dialer.recv_message().expect("reply"), clip("back"));
    assert_eq!(acceptor.join().expect("acceptor"), hello());
}

#[tokio::test]
async fn a_blocking_dialer_and_a_tokio_acceptor_speak_the_same_bytes_over_tcp() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let dialer = thread::spawn(move || {
        let stream = std::net::TcpStream::connect(address).expect("connect");
        let mut transport = BlockingTransport::<_, Message>::handshake(
            stream,
            Role::Dialer,
            &WireConfig::default(),
        )
        .expect("handshake");
        transport.send_message(&hello()).expect("send");
        transport
            .send_message(&clip(&"large ".repeat(10_000)))
            .expect("send");
        transport.recv_message().expect("reply")
    });
    let (stream, _) = listener.accept().await.expect("accept");
    let mut connection =
        framed::handshake::<_, Message>(stream, Role::Acceptor, &WireConfig::default())
            .await
            .expect("handshake");
    for expected in [hello(), clip(&"large ".repeat(10_000))] {
        match connection.next().await {
            Some(Ok(Received::Message(message))) => assert_eq!(message, expected),
            other => panic!("expected a message, got {other:?}"),
        }
    }
    connection
        .send(Message::Link(LinkMessage::Pong { timestamp: 3 }))
        .await
        .expect("send");
    let reply = tokio::task::spawn_blocking(move || dialer.join().expect("dialer"))
        .await
        .expect("join");
    assert_eq!(reply, Message::Link(LinkMessage::Pong { timestamp: 3 }));
}

#[tokio::test]
async fn tokio_on_both_sides_of_a_unix_socket_skips_unknown_types() {
    let (a, b) = tokio::net::UnixStream::pair().expect("pair");
    let config = WireConfig::default();
    let (dialer, acceptor) = tokio::join!(
        framed::handshake::<_, Message>(a, Role::Dialer, &config),
        framed::handshake::<_, Message>(b, Role::Acceptor, &config),
    );
    let (mut dialer, mut acceptor) = (dialer.expect("dialer"), acceptor.expect("acceptor"));
    // A newer peer's message, written as raw JSON into a frame.
    let future = br#"{"type":"teleport","to":"mars"}"#;
    let mut raw = (future.len() as u32).to_be_bytes().to_vec();
    raw.extend_from_slice(future);
    dialer
        .get_mut()
        .write_all_buf(&mut &raw[..])
        .await
        .expect("raw frame");
    dialer.send(hello()).await.expect("send");
    assert!(matches!(
        acceptor.next().await,
        Some(Ok(Received::Skipped(rrt_wire::PayloadError::UnknownType { kind }))) if kind == "teleport"
    ));
    assert!(matches!(acceptor.next().await, Some(Ok(Received::Message(m))) if m == hello()));
    drop(dialer);
    assert!(
        acceptor.next().await.is_none(),
        "a clean close ends the stream"
    );
}

#[test]
fn another_version_is_refused_on_both_sides_with_both_numbers() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    let acceptor = thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        BlockingTransport::<_, Message>::handshake(stream, Role::Acceptor, &WireConfig::default())
            .map(drop)
    });
    let mut raw = std::net::TcpStream::connect(address).expect("connect");
    let mut future = WireConfig::default().preamble().encode();
    future[8..10].copy_from_slice(&2u16.to_be_bytes());
    raw.write_all(&future).expect("preamble");
    let mut answer = [0; 16];
    raw.read_exact(&mut answer)
        .expect("an answer despite the mismatch");
    assert_eq!(answer, WireConfig::default().preamble().encode());
    assert!(matches!(
        acceptor.join().expect("acceptor"),
        Err(WireError::Preamble(PreambleError::UnsupportedVersion {
            ours: 1,
            theirs: 2
        }))
    ));
}

#[test]
fn a_stranger_is_refused_for_its_magic() {
    let (mut a, b) = UnixStream::pair().expect("pair");
    a.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    assert!(matches!(
        BlockingTransport::<_, Message>::handshake(b, Role::Acceptor, &WireConfig::default()),
        Err(WireError::Preamble(PreambleError::BadMagic { .. }))
    ));
}

#[tokio::test]
async fn a_silent_peer_fails_the_handshake_deadline() {
    let (_silent, b) = tokio::net::UnixStream::pair().expect("pair");
    let config = WireConfig {
        handshake_timeout: Duration::from_millis(100),
        ..WireConfig::default()
    };
    assert!(matches!(
        framed::handshake::<_, Message>(b, Role::Acceptor, &config).await,
        Err(WireError::HandshakeTimedOut(_))
    ));
}

#[tokio::test]
async fn a_one_byte_at_a_time_sender_is_cut_off() {
    let (a, b) = tokio::net::UnixStream::pair().expect("pair");
    let config = WireConfig {
        frame_timeout: Duration::from_millis(200),
        ..WireConfig::default()
    };
    let (dialer, acceptor) = tokio::join!(
        framed::handshake::<_, Message>(a, Role::Dialer, &config),
        framed::handshake::<_, Message>(b, Role::Acceptor, &config),
    );
    let (dialer, mut acceptor) = (dialer.expect("dialer"), acceptor.expect("acceptor"));
    let mut stream = dialer.into_inner();
    let slow = tokio::spawn(async move {
        let frame = b"\x00\x00\x00\x40{\"type\":\"ping\",\"timestamp\":1}";
        for byte in frame {
            if stream.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    assert!(matches!(
        acceptor.next().await,
        Some(Err(WireError::Frame(FrameError::Stalled(_))))
    ));
    slow.abort();
}
