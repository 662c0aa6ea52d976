//! `rrt frame encode|decode`: newline-delimited JSON ⇄ length-prefixed frames, so the protocol
//! can be driven by hand with `socat` and read with `jq` (see docs/PROTOCOL.md).
//!
//! Both directions work on JSON values, not on `Message`s, so a message type this version does
//! not know can be sent and shown too. Compressed streams are refused: this is a debugging aid for
//! the human-readable wire.

use std::{
    io::{self, BufRead, Read, Write},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use bytes::BytesMut;
use clap::{Args, Subcommand, ValueEnum};
use rrt_wire::{
    Compression, Format, MESSAGE_TYPES, PREAMBLE_LEN, Preamble, WireConfig,
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
    /// Encode: write a dialer's preamble first. Decode: read and check one first, and take the
    /// payload format from it.
    #[arg(long)]
    preamble: bool,
    /// The payload format.
    #[arg(long, value_enum, default_value_t = PayloadFormat::Json)]
    format: PayloadFormat,
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
    let format = Format::from(options.format);
    let mut frames = BytesMut::new();
    if options.preamble {
        let config = WireConfig {
            format,
            ..WireConfig::default()
        };
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
            Some(kind) if MESSAGE_TYPES.contains(&kind) => {}
            Some(kind) => eprintln!(
                "line {}: unknown message type {kind:?}, sent anyway",
                number + 1
            ),
            None => eprintln!("line {}: no \"type\" field; peers will skip it", number + 1),
        }
        let payload = match format {
            Format::Json => serde_json::to_vec(&value)?,
            Format::MessagePack => rmp_serde::to_vec_named(&value)?,
        };
        if payload.len() > WireConfig::default().max_frame as usize {
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
    if options.preamble {
        let mut bytes = [0; PREAMBLE_LEN];
        input
            .read_exact(&mut bytes)
            .context("reading the preamble")?;
        let preamble = Preamble::decode(&bytes)?;
        if preamble.compression != Compression::None {
            bail!("the stream is compressed; `rrt frame` reads uncompressed streams only");
        }
        format = preamble.format;
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
            let value: Result<Value, String> = match format {
                Format::Json => serde_json::from_slice(&payload).map_err(|e| e.to_string()),
                Format::MessagePack => rmp_serde::from_slice(&payload).map_err(|e| e.to_string()),
            };
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
        Options { preamble, format }
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
