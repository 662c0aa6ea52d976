//! `rrt clip …`: copy, paste, watch, search and pin the shared clipboard — text, and values of
//! any type (`--type image/png`), and files (`--file`, `paste --to DIR`). Values other than text
//! travel as raw bytes after their request line (see `upload` and `content_requests`), so a
//! large one is never held whole by either side.

use std::{
    fs,
    io::{self, BufRead, BufReader, Read, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use rrt_sync::{FILES, FileList};
use serde_json::Value;

use crate::{
    Locate,
    client::{ask, connect, stream},
    control::{Item, RawHeader, Request, Response},
    file_tree,
    upload::send_item,
};

#[derive(Debug, Subcommand)]
pub(crate) enum ClipCommand {
    /// Copy TEXT (or standard input) to every instance's clipboard; with --type, standard input
    /// as a value of that type; with --file, files and directories (their contents travel).
    Copy {
        /// The text; read from standard input when absent.
        #[arg(conflicts_with_all = ["mime", "files"])]
        text: Option<String>,
        /// The MIME type of standard input: `image/png`, `text/html`, anything.
        #[arg(long = "type", value_name = "MIME", conflicts_with = "files")]
        mime: Option<String>,
        /// Files or directories to copy (repeatable).
        #[arg(long = "file", value_name = "PATH")]
        files: Vec<PathBuf>,
    },
    /// Print the current clipboard value, exactly as copied (its text, or with --type its
    /// representation of that type, raw).
    Paste {
        /// The MIME type to paste (`image/png`); fetched from a peer first if need be.
        #[arg(long = "type", value_name = "MIME", conflicts_with_all = ["list_types", "to"])]
        mime: Option<String>,
        /// List the value's types, sizes and (for images) dimensions instead.
        #[arg(long, conflicts_with = "to")]
        list_types: bool,
        /// Write the copied files and directories into DIR.
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
    },
    /// Print the current value, then one JSON line per clipboard change (with its types and
    /// sizes), until interrupted.
    Watch {
        /// Instead, set this terminal's clipboard to each value with OSC 52 escape sequences —
        /// also through SSH (in tmux: `set -g set-clipboard on`).
        #[arg(long)]
        osc52: bool,
    },
    /// Print the clipboard history, newest first, numbered for `pin` and `unpin`.
    History {
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
        /// Only entries whose text (or a type's name) contains WORD, ignoring case.
        #[arg(long, value_name = "WORD")]
        search: Option<String>,
    },
    /// Keep history entry N (as `history` numbers it) whatever its age, and its content in the
    /// store.
    Pin {
        /// The entry's number.
        n: usize,
    },
    /// Let history entry N age out again.
    Unpin {
        /// The entry's number.
        n: usize,
    },
}

pub(crate) fn clip(locate: &Locate, command: ClipCommand) -> anyhow::Result<()> {
    match command {
        ClipCommand::Copy { text, mime, files } => {
            if !files.is_empty() {
                let paths = files
                    .iter()
                    .map(|path| {
                        fs::canonicalize(path).with_context(|| format!("{}", path.display()))
                    })
                    .collect::<anyhow::Result<_>>()?;
                ask(locate, &Request::CopyFiles { paths })?;
            } else if let Some(mime) = mime {
                copy_stdin(locate, mime)?;
            } else {
                let text = match text {
                    Some(text) => text,
                    None => crate::client::read_stdin()?,
                };
                ask(locate, &Request::Copy { text })?;
            }
            Ok(())
        }
        ClipCommand::Paste {
            mime: None,
            list_types: false,
            to: None,
        } => {
            let current = ask(locate, &Request::Paste)?;
            let Some(text) = current["text"].as_str() else {
                bail!("the clipboard is empty");
            };
            let mut out = io::stdout().lock();
            out.write_all(text.as_bytes())?;
            Ok(out.flush()?)
        }
        ClipCommand::Paste {
            mime: Some(mime), ..
        } => {
            let mut out = io::stdout().lock();
            raw(locate, &Request::PasteType { mime }, &mut out)?;
            Ok(out.flush()?)
        }
        ClipCommand::Paste {
            list_types: true, ..
        } => {
            let current = ask(locate, &Request::Paste)?;
            if current.is_null() {
                bail!("the clipboard is empty");
            }
            for line in types(&current) {
                println!("{line}");
            }
            Ok(())
        }
        ClipCommand::Paste { to: Some(dir), .. } => paste_files(locate, &dir),
        ClipCommand::History { json, search } => {
            let history = ask(locate, &Request::History)?;
            let entries = history.as_array().cloned().unwrap_or_default();
            for (n, entry) in entries.iter().enumerate() {
                if search.as_ref().is_some_and(|word| !matches(entry, word)) {
                    continue;
                }
                if json {
                    println!("{entry}");
                } else {
                    println!("{n:>3} {}", summary(entry));
                }
            }
            Ok(())
        }
        ClipCommand::Pin { n } => pin(locate, n, true),
        ClipCommand::Unpin { n } => pin(locate, n, false),
        ClipCommand::Watch { osc52: false } => stream(locate, &Request::Watch),
        ClipCommand::Watch { osc52: true } => watch_osc52(locate),
    }
}

/// Pins or unpins entry `n` as `history` numbers it (by its stamp: a copy arriving meanwhile
/// does not shift which entry is meant).
fn pin(locate: &Locate, n: usize, pinned: bool) -> anyhow::Result<()> {
    let history = ask(locate, &Request::History)?;
    let entries = history.as_array().cloned().unwrap_or_default();
    let Some(entry) = entries.get(n) else {
        bail!("the history has {} entries", entries.len());
    };
    let stamp = serde_json::from_value(entry["stamp"].clone()).context("an entry's stamp")?;
    ask(locate, &Request::Pin { stamp, pinned })?;
    Ok(())
}

/// Sends standard input as one value of type `mime`.
fn copy_stdin(locate: &Locate, mime: String) -> anyhow::Result<()> {
    let request = Request::CopyContent {
        items: vec![Item { mime }],
    };
    let mut reader = connect(locate, &request)?;
    let sent = send_item(io::stdin().lock(), reader.get_mut());
    // The daemon may have refused and closed before taking everything: its answer says why.
    let answer = answer(&mut reader);
    sent.context("sending the value to the daemon")
        .and(answer)
        .map(drop)
}

/// Reads a one-line answer.
fn answer(reader: &mut BufReader<UnixStream>) -> anyhow::Result<Value> {
    let mut line = String::new();
    if reader
        .read_line(&mut line)
        .context("reading the daemon's answer")?
        == 0
    {
        bail!("the daemon closed the connection without an answer");
    }
    match serde_json::from_str(&line).context("the daemon's answer is not JSON")? {
        Response::Ok(value) => Ok(value),
        Response::Error(error) => bail!("{error}"),
    }
}

/// Asks for raw bytes and copies them to `out`; returns how many.
fn raw(locate: &Locate, request: &Request, out: &mut impl Write) -> anyhow::Result<u64> {
    let mut reader = connect(locate, request)?;
    let header: RawHeader = serde_json::from_value(answer(&mut reader)?)
        .context("the daemon's answer is not a header")?;
    let copied = io::copy(&mut (&mut reader).take(header.size), out)?;
    if copied != header.size {
        bail!(
            "the daemon sent {copied} of {} bytes; the value is incomplete",
            header.size
        );
    }
    Ok(copied)
}

/// Writes the current value's files into `dir`, fetching each.
fn paste_files(locate: &Locate, dir: &Path) -> anyhow::Result<()> {
    let mut manifest = Vec::new();
    raw(
        locate,
        &Request::PasteType {
            mime: FILES.to_owned(),
        },
        &mut manifest,
    )
    .context("the clipboard holds no files")?;
    let list = FileList::parse(&manifest)?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for file in &list.files {
        if file.dir {
            file_tree::create_dir(dir, file)
                .with_context(|| format!("creating {}", file.under(dir).display()))?;
            continue;
        }
        let Some(hash) = file.hash else { continue };
        let (mut out, path) = file_tree::create_file(dir, file)
            .with_context(|| format!("creating {}", file.under(dir).display()))?;
        raw(
            locate,
            &Request::Blob {
                hash,
                size: file.size,
            },
            &mut out,
        )
        .with_context(|| format!("fetching {}", file.path))?;
        println!("{}", path.display());
    }
    Ok(())
}

/// A value's types, one line each: type, size, dimensions.
fn types(entry: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(text) = entry["text"].as_str().filter(|text| !text.is_empty()) {
        lines.push(format!("{}\t{}", rrt_clipboard::TEXT, text.len()));
    }
    for representation in entry["content"].as_array().into_iter().flatten() {
        let mut line = format!(
            "{}\t{}",
            representation["mime"].as_str().unwrap_or("?"),
            representation["size"]
        );
        if let (Some(width), Some(height)) = (
            representation["width"].as_u64(),
            representation["height"].as_u64(),
        ) {
            line.push_str(&format!("\t{width}x{height}"));
        }
        lines.push(line);
    }
    lines
}

/// One history entry on a line: when, its text (shortened) or its types, and a pin.
fn summary(entry: &Value) -> String {
    let text = entry["text"].as_str().unwrap_or_default();
    let shown: String = text.chars().take(60).collect();
    let more = if shown.len() < text.len() { "…" } else { "" };
    let kinds: Vec<String> = entry["content"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|representation| {
            format!(
                "[{} {}]",
                representation["mime"].as_str().unwrap_or("?"),
                human_size(representation["size"].as_u64().unwrap_or(0))
            )
        })
        .collect();
    let pin = if entry["pinned"] == true { " 📌" } else { "" };
    format!(
        "{:>15}  {shown:?}{more} {}{pin}",
        entry["stamp"]["time"]["wall_ms"],
        kinds.join(" ")
    )
}

/// Whether an entry's text or one of its types contains `word`, ignoring case.
fn matches(entry: &Value, word: &str) -> bool {
    let word = word.to_lowercase();
    let text = entry["text"].as_str().unwrap_or_default().to_lowercase();
    text.contains(&word)
        || entry["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|representation| representation["mime"].as_str())
            .any(|mime| mime.to_lowercase().contains(&word))
}

/// A size for people: `512 B`, `1.5 MiB`.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Sets this terminal's clipboard (OSC 52) to the current value and then to every new one.
fn watch_osc52(locate: &Locate) -> anyhow::Result<()> {
    let reader = connect(locate, &Request::Watch)?;
    let mut out = io::stdout().lock();
    for line in reader.lines() {
        let entry: Value = serde_json::from_str(&line.context("reading from the daemon")?)?;
        if let Some(text) = entry["text"].as_str() {
            out.write_all(rrt_clipboard::osc52(text).as_bytes())?;
            out.flush()?;
        }
    }
    bail!("the daemon went away")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_search_finds_words_in_the_text_or_a_type_ignoring_case() {
        let entry = json!({"text": "Hello World", "content": [{"mime": "image/png", "size": 3}]});
        assert!(matches(&entry, "world"));
        assert!(matches(&entry, "PNG"));
        assert!(!matches(&entry, "html"));
    }

    #[test]
    fn types_list_text_first_with_sizes_and_dimensions() {
        let entry = json!({"text": "hi", "content": [
            {"mime": "image/png", "size": 5120, "width": 640, "height": 480},
            {"mime": "text/html", "size": 9}
        ]});
        assert_eq!(
            types(&entry),
            [
                "text/plain;charset=utf-8\t2",
                "image/png\t5120\t640x480",
                "text/html\t9"
            ]
        );
    }

    #[test]
    fn sizes_read_for_people() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 << 20), "5.0 MiB");
    }
}
