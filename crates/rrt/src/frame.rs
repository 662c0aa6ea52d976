//! `rrt frame encode|decode`: newline-delimited JSON ⇄ length-prefixed frames, so the protocol
//! can be driven by hand with `socat` and read with `jq` (see docs/PROTOCOL.md).
//!
//! Both directions work on JSON values, not on `Message`s, so a message type this version does
//! not know can be sent and shown too. Streams with LZ4 negotiated are handled like the daemons
//! handle them: each payload tagged, the large ones compressed.

use std::{
    io::{self, BufRead, Read, Write},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use bytes::BytesMut;
use clap::{Args, Subcommand, ValueEnum};
use rrt_wire::{
    Compression, Format, PREAMBLE_LEN, Preamble, WireConfig, compress_payload, decompress_payload,
    frame::{FrameDecoder, encode_frame},
};
use serde_json::Value;

#[derive(Debug, Subcommand)]
pub(crate) enum FrameCommand {
    /// Read one JSON message per line on stdin; write frames to stdout.
    Encode(Options),
    /// Read frames on stdin; write one JSON message per line to stdout.
    Decode(Options),
}

#[derive(Debug, Args)]
pub(crate) struct Options {
    /// Encode: write a dialer's preamble first (proposing `--format` and `--compression`).
    /// Decode: read and check one first, and take the payload format and compression from it (a
    /// dialer's proposal is what its frames use once accepted, as rrt daemons always accept).
    #[arg(long)]
    preamble: bool,
    /// The payload format.
    #[arg(long, value_enum, default_value_t = PayloadFormat::Json)]
    format: PayloadFormat,
    /// Payload compression, as negotiated on the connection.
    #[arg(long, value_enum, default_value_t = PayloadCompression::None)]
    compression: PayloadCompression,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PayloadCompression {
    None,
    Lz4,
}

impl From<PayloadCompression> for Compression {
    fn from(compression: PayloadCompression) -> Self {
        match compression {
            PayloadCompression::None => Compression::None,
            PayloadCompression::Lz4 => Compression::Lz4,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PayloadFormat {
    Json,
    Msgpack,
}

impl From<PayloadFormat> for Format {
    fn from(format: PayloadFormat) -> Self {
        match format {
            PayloadFormat::Json => Format::Json,
            PayloadFormat::Msgpack => Format::MessagePack,
        }
    }
}

pub(crate) fn run(command: FrameCommand) -> anyhow::Result<()> {
    match command {
        FrameCommand::Encode(options) => encode(&options, io::stdin().lock(), io::stdout().lock()),
        FrameCommand::Decode(options) => decode(&options, io::stdin().lock(), io::stdout().lock()),
    }
}

fn encode(options: &Options, input: impl BufRead, mut output: impl Write) -> anyhow::Result<()> {
    let config = WireConfig {
        format: options.format.into(),
        compression: options.compression.into(),
        ..WireConfig::default()
    };
    let mut frames = BytesMut::new();
    if options.preamble {
        frames.extend_from_slice(&config.preamble().encode());
    }
    for (number, line) in input.lines().enumerate() {
        let line = line.context("reading stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&line)
            .with_context(|| format!("line {}: not JSON", number + 1))?;
        match value.get("type").and_then(Value::as_str) {
            Some(kind) if rrt_mesh::message_types().any(|known| known == kind) => {}
            Some(kind) => eprintln!(
                "line {}: unknown message type {kind:?}, sent anyway",
                number + 1
            ),
            None => eprintln!("line {}: no \"type\" field; peers will skip it", number + 1),
        }
        let serialized = match config.format {
            Format::Json => serde_json::to_vec(&value)?,
            Format::MessagePack => rmp_serde::to_vec_named(&value)?,
        };
        let payload = match config.compression {
            Compression::None => BytesMut::from(&serialized[..]),
            Compression::Lz4 => {
                let mut tagged = BytesMut::new();
                compress_payload(&serialized, config.compression_threshold, &mut tagged);
                tagged
            }
        };
        // Decompressed, too, a message must fit the receiver's limit.
        if payload.len().max(serialized.len()) > config.max_frame as usize {
            bail!(
                "line {}: {} bytes is over the frame limit",
                number + 1,
                payload.len()
            );
        }
        encode_frame(&payload, &mut frames);
        output.write_all(&frames)?;
        output.flush()?;
        frames.clear();
    }
    output.write_all(&frames)?;
    Ok(output.flush()?)
}

fn decode(options: &Options, mut input: impl Read, mut output: impl Write) -> anyhow::Result<()> {
    let mut format = Format::from(options.format);
    let mut compression = Compression::from(options.compression);
    if options.preamble {
        let mut bytes = [0; PREAMBLE_LEN];
        input
            .read_exact(&mut bytes)
            .context("reading the preamble")?;
        let preamble = Preamble::decode(&bytes)?;
        format = preamble.format;
        compression = preamble.compression;
    }
    let config = WireConfig::default();
    // A hand-driven stream may pause for as long as its human likes.
    let mut decoder = FrameDecoder::new(config.max_frame, Duration::MAX);
    let mut buffer = BytesMut::new();
    let mut chunk = vec![0; 64 * 1024];
    let mut malformed = 0;
    let mut index = 0;
    loop {
        while let Some(payload) = decoder.decode(&mut buffer, Instant::now())? {
            index += 1;
            let value: Result<Value, String> = match compression {
                Compression::None => Ok(std::borrow::Cow::Borrowed(payload.as_ref())),
                Compression::Lz4 => {
                    decompress_payload(&payload, config.max_frame).map_err(|e| e.to_string())
                }
            }
            .and_then(|serialized| match format {
                Format::Json => serde_json::from_slice(&serialized).map_err(|e| e.to_string()),
                Format::MessagePack => {
                    rmp_serde::from_slice(&serialized).map_err(|e| e.to_string())
                }
            });
            match value {
                Ok(value) => {
                    serde_json::to_writer(&mut output, &value)?;
                    output.write_all(b"\n")?;
                    output.flush()?;
                }
                Err(error) => {
                    malformed += 1;
                    eprintln!("frame {index}: malformed {format} payload: {error}");
                }
            }
        }
        let read = input.read(&mut chunk).context("reading stdin")?;
        if read == 0 {
            decoder.finish(&buffer)?;
            break;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    if malformed > 0 {
        bail!("{malformed} of {index} frames were malformed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINES: &str = concat!(
        r#"{"type":"hello","instance_id":"550e8400-e29b-41d4-a716-446655440000","capabilities":["clipboard","state_sync"]}"#,
        "\n",
        r#"{"type":"ping","timestamp":1702834567890}"#,
        "\n\n",
    );

    fn options(preamble: bool, format: PayloadFormat) -> Options {
        Options {
            preamble,
            format,
            compression: PayloadCompression::None,
        }
    }

    fn round_trip(preamble: bool, format: PayloadFormat) -> String {
        let mut frames = Vec::new();
        encode(&options(preamble, format), LINES.as_bytes(), &mut frames).expect("encodes");
        let mut lines = Vec::new();
        // Decoding takes the format from the preamble when there is one.
        decode(
            &options(preamble, PayloadFormat::Json),
            &frames[..],
            &mut lines,
        )
        .expect("decodes");
        String::from_utf8(lines).expect("utf-8")
    }

    #[test]
    fn json_lines_survive_encode_then_decode() {
        assert_eq!(
            round_trip(false, PayloadFormat::Json),
            LINES.trim_end().to_owned() + "\n"
        );
        assert_eq!(
            round_trip(true, PayloadFormat::Msgpack),
            LINES.trim_end().to_owned() + "\n"
        );
    }

    #[test]
    fn compressed_streams_round_trip_and_large_payloads_shrink() {
        let large = format!(
            "{{\"type\":\"clipboard_update\",\"data\":\"{}\",\"timestamp\":1,\"source_instance\":\"550e8400-e29b-41d4-a716-446655440000\"}}\n",
            "compressible ".repeat(1000)
        );
        let input = format!("{LINES}{large}");
        for format in [PayloadFormat::Json, PayloadFormat::Msgpack] {
            let lz4 = Options {
                compression: PayloadCompression::Lz4,
                ..options(true, format)
            };
            let mut frames = Vec::new();
            encode(&lz4, input.as_bytes(), &mut frames).expect("encodes");
            assert_eq!(frames[11], 1, "the preamble proposes LZ4");
            assert!(frames.len() < large.len() / 4, "{} bytes", frames.len());
            // The compression comes from the preamble, as the format does.
            let mut lines = Vec::new();
            decode(&options(true, PayloadFormat::Json), &frames[..], &mut lines).expect("decodes");
            assert_eq!(
                String::from_utf8(lines).expect("utf-8"),
                input.replace("\n\n", "\n")
            );
        }
    }

    #[test]
    fn a_ping_encodes_to_the_documented_bytes() {
        let mut frames = Vec::new();
        let ping = "{\"type\":\"ping\",\"timestamp\":1702834567890}\n";
        encode(
            &options(false, PayloadFormat::Json),
            ping.as_bytes(),
            &mut frames,
        )
        .expect("encodes");
        assert_eq!(frames[..4], [0, 0, 0, 41]);
        assert_eq!(&frames[4..], ping.trim_end().as_bytes());
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let error = encode(
            &options(false, PayloadFormat::Json),
            &b"{oops\n"[..],
            Vec::new(),
        )
        .expect_err("not JSON");
        assert_eq!(error.to_string(), "line 1: not JSON");
        let truncated = decode(
            &options(false, PayloadFormat::Json),
            &b"\x00\x00\x00\x09{"[..],
            Vec::new(),
        );
        assert!(
            truncated
                .expect_err("truncated")
                .to_string()
                .contains("unfinished frame")
        );
    }
}
