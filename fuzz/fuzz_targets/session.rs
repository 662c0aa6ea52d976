//! Arbitrary bytes, cut at arbitrary points, into an accepting session: the preamble check, the
//! frame decoder and every payload decoder (both formats, with and without LZ4, rrt's whole
//! message set) must answer with a typed error or a message — never a panic, never a buffer
//! beyond one frame.

#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use rrt_mesh::Message;
use rrt_wire::{Compression, Format, Session, WireConfig};

const MAX_FRAME: u32 = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let config = WireConfig {
        format: if control & 1 == 0 { Format::Json } else { Format::MessagePack },
        compression: if control & 2 == 0 { Compression::None } else { Compression::Lz4 },
        max_frame: MAX_FRAME,
        compression_threshold: 16,
        ..WireConfig::default()
    };
    let piece = usize::from(control >> 2).max(1);
    let now = Instant::now();
    let mut session = Session::<Message>::accept(config.clone(), now);
    // Half the inputs start with a valid preamble so the fuzzer reaches the frames quickly.
    let mut input = Vec::with_capacity(rest.len() + 16);
    if control & 4 == 0 {
        input.extend_from_slice(&config.preamble().encode());
    }
    input.extend_from_slice(rest);
    for chunk in input.chunks(piece) {
        if session.handle_input(chunk).is_err() {
            return;
        }
        loop {
            match session.poll_received(now) {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = session.handle_eof();
});
