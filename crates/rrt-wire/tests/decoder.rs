//! The frame decoder and sessions under arbitrary and hostile input: never a panic, never more
//! buffered than one frame, and typed errors for what the specification calls errors.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use proptest::{collection::vec, prelude::*};
use rrt_wire::{
    Received, Session, WireConfig, WireError,
    frame::{FrameDecoder, FrameError, HEADER_LEN},
};

const MAX: u32 = 4096;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_split_anywhere_never_panic_nor_pile_up(
        bytes in vec(any::<u8>(), 0..20_000),
        cuts in vec(1usize..2_000, 1..32),
    ) {
        let mut decoder = FrameDecoder::new(MAX, Duration::from_secs(10));
        let mut buffer = BytesMut::new();
        let now = Instant::now();
        let mut rest = &bytes[..];
        let mut cuts = cuts.iter().cycle();
        'feed: while !rest.is_empty() {
            let take = (*cuts.next().expect("cycle")).min(rest.len());
            buffer.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            loop {
                match decoder.decode(&mut buffer, now) {
                    Ok(Some(frame)) => prop_assert!(frame.len() <= MAX as usize),
                    Ok(None) => break,
                    Err(FrameError::Oversize { len, max }) => {
                        prop_assert!(len > u64::from(max));
                        break 'feed;
                    }
                    Err(error) => prop_assert!(false, "unexpected {error}"),
                }
            }
            prop_assert!(buffer.len() < HEADER_LEN + MAX as usize, "at most one partial frame kept");
        }
    }

    #[test]
    fn arbitrary_bytes_into_a_session_never_panic(
        bytes in vec(any::<u8>(), 0..4_000),
        valid_preamble in any::<bool>(),
        piece in 1usize..300,
    ) {
        let config = WireConfig { max_frame: MAX, ..WireConfig::default() };
        let mut acceptor = Session::<rrt_mesh::Message>::accept(config.clone(), Instant::now());
        let mut input = if valid_preamble { config.preamble().encode().to_vec() } else { Vec::new() };
        input.extend_from_slice(&bytes);
        for chunk in input.chunks(piece) {
            if acceptor.handle_input(chunk).is_err() {
                return Ok(());
            }
            loop {
                match acceptor.poll_received(Instant::now()) {
                    Ok(Some(Received::Message(_) | Received::Skipped(_))) => continue,
                    Ok(None) => break,
                    Err(_) => return Ok(()),
                }
            }
        }
    }
}

#[test]
fn truncated_and_zero_length_frames_behave_as_specified() {
    let config = WireConfig::default();
    let now = Instant::now();
    let mut dialer = Session::<rrt_mesh::Message>::dial(config.clone(), now);
    let mut acceptor = Session::<rrt_mesh::Message>::accept(config, now);
    let mut wire = Vec::new();
    dialer.write_to(&mut wire).expect("vec");
    acceptor.handle_input(&wire).expect("preamble");
    // A zero-length frame: a well-framed, empty payload, skipped as malformed JSON.
    acceptor
        .handle_input(&[0, 0, 0, 0])
        .expect("framing intact");
    assert!(matches!(
        acceptor.poll_received(now),
        Ok(Some(Received::Skipped(_)))
    ));
    // End of stream between frames is a clean close; inside one, a truncation.
    assert!(matches!(acceptor.handle_eof(), WireError::Closed));
    acceptor.handle_input(&[0, 0, 0, 9, b'{']).expect("partial");
    assert!(matches!(acceptor.poll_received(now), Ok(None)));
    assert!(matches!(
        acceptor.handle_eof(),
        WireError::Frame(FrameError::Truncated { buffered: 5 })
    ));
}

#[test]
fn a_session_reports_its_deadlines() {
    let config = WireConfig {
        handshake_timeout: Duration::from_secs(5),
        frame_timeout: Duration::from_secs(2),
        ..WireConfig::default()
    };
    let start = Instant::now();
    let mut acceptor = Session::<rrt_mesh::Message>::accept(config.clone(), start);
    assert_eq!(
        acceptor.poll_timeout(),
        Some(start + Duration::from_secs(5))
    );
    assert!(
        acceptor
            .handle_timeout(start + Duration::from_secs(4))
            .is_ok()
    );
    assert!(matches!(
        acceptor.handle_timeout(start + Duration::from_secs(5)),
        Err(WireError::HandshakeTimedOut(_))
    ));

    acceptor
        .handle_input(&config.preamble().encode())
        .expect("preamble");
    assert_eq!(acceptor.poll_timeout(), None, "open and idle: no deadline");
    acceptor
        .handle_input(&[0, 0, 0, 3, b'1'])
        .expect("partial frame");
    let first_byte = start + Duration::from_secs(1);
    assert!(matches!(acceptor.poll_received(first_byte), Ok(None)));
    assert_eq!(
        acceptor.poll_timeout(),
        Some(first_byte + Duration::from_secs(2))
    );
    assert!(matches!(
        acceptor.handle_timeout(first_byte + Duration::from_secs(3)),
        Err(WireError::Frame(FrameError::Stalled(_)))
    ));
}

/// A socket that takes at most `limit` bytes per write and then blocks once.
struct Trickle {
    written: Vec<u8>,
    limit: usize,
    block_next: bool,
}

impl std::io::Write for Trickle {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.block_next = !self.block_next;
        if self.block_next {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        let n = bytes.len().min(self.limit);
        self.written.extend_from_slice(&bytes[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn partial_writes_and_would_block_lose_nothing() {
    let config = WireConfig::default();
    let now = Instant::now();
    let mut dialer = Session::<rrt_mesh::Message>::dial(config.clone(), now);
    let message = rrt_mesh::Message::Clipboard(rrt_sync::ClipMessage::ClipboardUpdate {
        content: Vec::new(),
        data: "partial writes ".repeat(100),
        timestamp: 7,
        counter: 0,
        source_instance: uuid::Uuid::nil(),
        provenance: None,
        withheld_from: Vec::new(),
    });
    let mut acceptor = Session::<rrt_mesh::Message>::accept(config, now);
    let mut answer = Vec::new();
    acceptor
        .handle_input(&dialer_preamble(&mut dialer))
        .expect("preamble");
    acceptor.write_to(&mut answer).expect("vec");
    dialer.handle_input(&answer).expect("answer");
    dialer.send(&message).expect("encodes");

    let mut socket = Trickle {
        written: Vec::new(),
        limit: 7,
        block_next: false,
    };
    while dialer.wants_write() {
        dialer
            .write_to(&mut socket)
            .expect("would-block is not an error");
    }
    acceptor.handle_input(&socket.written).expect("frame");
    assert!(matches!(
        acceptor.poll_received(now),
        Ok(Some(Received::Message(received))) if received == message
    ));
}

fn dialer_preamble(dialer: &mut Session<rrt_mesh::Message>) -> Vec<u8> {
    let mut wire = Vec::new();
    dialer.write_to(&mut wire).expect("vec");
    wire
}
