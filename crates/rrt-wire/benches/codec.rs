//! Encode + decode throughput of one message through our codec — JSON vs MessagePack, with and
//! without LZ4 — and, in the same run, tokio-util's `LengthDelimitedCodec` with `serde_json`
//! doing the same work, so ours reads as a ratio. A second group compares LZ4 with zstd, the
//! measurement behind the choice of LZ4.
//!
//! Run: `cargo bench -p rrt-wire --bench codec`

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use bytes::BytesMut;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rrt_mesh::Message;
use rrt_sync::ClipMessage;
use rrt_wire::{Compression, Format, MessageCodec, Negotiated, Received, WireConfig};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};
use uuid::Uuid;

const SIZES: [(&str, usize); 3] = [("64 B", 64), ("4 KiB", 4096), ("1 MiB", 1 << 20)];

/// Clipboard-like text: words from a small vocabulary in a deterministic pseudo-random order.
fn text(len: usize) -> String {
    const WORDS: [&str; 16] = [
        "the",
        "reactor",
        "thread",
        "owns",
        "every",
        "socket",
        "and",
        "sleeps",
        "in",
        "epoll",
        "clipboard",
        "sync",
        "peer",
        "frame",
        "json",
        "mesh",
    ];
    let mut state: u32 = 0x2545_f491;
    let mut text = String::with_capacity(len + 16);
    while text.len() < len {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        text.push_str(WORDS[(state % 16) as usize]);
        text.push(if state.is_multiple_of(11) { '\n' } else { ' ' });
    }
    text.truncate(len);
    text
}

fn message(len: usize) -> Message {
    Message::Clipboard(ClipMessage::ClipboardUpdate {
        content: Vec::new(),
        data: text(len),
        timestamp: 1_702_834_567_890,
        counter: 0,
        source_instance: Uuid::from_u128(42),
        provenance: None,
        withheld_from: Vec::new(),
    })
}

fn ours(format: Format, compression: Compression) -> MessageCodec<Message> {
    let config = WireConfig::default();
    let negotiated = Negotiated {
        format,
        compression,
        peer_max_frame: config.max_frame,
    };
    MessageCodec::new(negotiated, &config)
}

fn roundtrip(c: &mut Criterion) {
    let variants = [
        ("rrt json", Format::Json, Compression::None),
        ("rrt msgpack", Format::MessagePack, Compression::None),
        ("rrt json+lz4", Format::Json, Compression::Lz4),
        ("rrt msgpack+lz4", Format::MessagePack, Compression::Lz4),
    ];
    for (size_name, len) in SIZES {
        let message = message(len);
        let mut group = c.benchmark_group(format!("encode+decode {size_name}"));
        group.throughput(Throughput::Bytes(len as u64));
        for (name, format, compression) in variants {
            let mut codec = ours(format, compression);
            let mut buffer = BytesMut::new();
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| {
                    codec
                        .encode_message(black_box(&message), &mut buffer)
                        .expect("encodes");
                    match codec.decode_frame(&mut buffer, Instant::now()) {
                        Ok(Some(Received::Message(decoded))) => black_box(decoded),
                        other => panic!("round trip failed: {other:?}"),
                    }
                });
            });
        }
        let mut baseline = LengthDelimitedCodec::builder()
            .max_frame_length(WireConfig::default().max_frame as usize)
            .new_codec();
        let mut buffer = BytesMut::new();
        group.bench_function(
            BenchmarkId::from_parameter("tokio-util LengthDelimited + serde_json"),
            |b| {
                b.iter(|| {
                    let json = serde_json::to_vec(black_box(&message)).expect("encodes");
                    baseline
                        .encode(bytes::Bytes::from(json), &mut buffer)
                        .expect("frames");
                    let frame = baseline.decode(&mut buffer).expect("frame").expect("whole");
                    black_box(serde_json::from_slice::<Message>(&frame).expect("decodes"))
                });
            },
        );
        group.finish();
    }
}

fn compressors(c: &mut Criterion) {
    for (size_name, len) in SIZES {
        let input = text(len).into_bytes();
        let lz4 = lz4_flex::block::compress(&input);
        let zstd1 = zstd::bulk::compress(&input, 1).expect("zstd");
        let zstd3 = zstd::bulk::compress(&input, 3).expect("zstd");
        println!(
            "{size_name}: compressed to {:.1} % by lz4, {:.1} % by zstd -1, {:.1} % by zstd -3",
            100.0 * lz4.len() as f64 / len as f64,
            100.0 * zstd1.len() as f64 / len as f64,
            100.0 * zstd3.len() as f64 / len as f64,
        );
        let mut group = c.benchmark_group(format!("compress+decompress {size_name}"));
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function("lz4_flex", |b| {
            b.iter(|| {
                let packed = lz4_flex::block::compress(black_box(&input));
                black_box(lz4_flex::block::decompress(&packed, len).expect("lz4"))
            });
        });
        for level in [1, 3] {
            // Contexts made once and reused, as a connection would.
            let mut compressor = zstd::bulk::Compressor::new(level).expect("zstd");
            let mut decompressor = zstd::bulk::Decompressor::new().expect("zstd");
            group.bench_function(format!("zstd -{level}"), |b| {
                b.iter(|| {
                    let packed = compressor.compress(black_box(&input)).expect("zstd");
                    black_box(decompressor.decompress(&packed, len).expect("zstd"))
                });
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = roundtrip, compressors
}
criterion_main!(benches);
