//! `rrt clip …`: copy, paste, watch, search and pin the shared clipboard — text, and values of
//! any type (`--type image/png`), and files (`--file`, `paste --to DIR`). Values other than text
//! travel as raw bytes after their request line (see `rrt_control::upload` and
//! `content_requests`), so a large one is never held whole by either side.

use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use rrt_control::{ClipboardEvent, HistoryEntry};
use rrt_sync::{ClipEntry, FILES, FileList};

use crate::{
    Locate,
    client::{client, connect, print_json},
    file_tree,
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
    /// Say where the current value came from: who copied it, on which instance and device,
    /// how (the desktop's clipboard, the control socket, an application), and which peer
    /// passed it on to this instance — for untangling loops with other clipboard tools.
    Why {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
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
                // No deadline: a large tree takes its time to read.
                connect(locate)?.copy_files(paths)?;
            } else if let Some(mime) = mime {
                let mut stdin = io::stdin().lock();
                connect(locate)?.copy_content(vec![(mime, &mut stdin)])?;
            } else {
                let text = match text {
                    Some(text) => text,
                    None => crate::client::read_stdin()?,
                };
                client(locate)?.copy(text)?;
            }
            Ok(())
        }
        ClipCommand::Paste {
            mime: None,
            list_types: false,
            to: None,
        } => {
            let Some(current) = client(locate)?.paste()? else {
                bail!("the clipboard is empty");
            };
            let mut out = io::stdout().lock();
            out.write_all(current.text.as_bytes())?;
            Ok(out.flush()?)
        }
        ClipCommand::Paste {
            mime: Some(mime), ..
        } => {
            let mut out = io::stdout().lock();
            connect(locate)?.paste_type(&mime, &mut out)?;
            Ok(out.flush()?)
        }
        ClipCommand::Paste {
            list_types: true, ..
        } => {
            let Some(current) = client(locate)?.paste()? else {
                bail!("the clipboard is empty");
            };
            for line in types(&current) {
                println!("{line}");
            }
            Ok(())
        }
        ClipCommand::Paste { to: Some(dir), .. } => paste_files(locate, &dir),
        ClipCommand::Why { json } => {
            let why = client(locate)?.why()?;
            if json {
                return print_json(&why);
            }
            print!("{}", explain(&why, now_ms()));
            Ok(())
        }
        ClipCommand::History { json, search } => {
            let history = client(locate)?.history()?;
            for (n, entry) in history.iter().enumerate() {
                if search
                    .as_ref()
                    .is_some_and(|word| !matches(&entry.entry, word))
                {
                    continue;
                }
                if json {
                    print_json(entry)?;
                } else {
                    println!("{n:>3} {}", summary(entry));
                }
            }
            Ok(())
        }
        ClipCommand::Pin { n } => pin(locate, n, true),
        ClipCommand::Unpin { n } => pin(locate, n, false),
        ClipCommand::Watch { osc52 } => watch(locate, osc52),
    }
}

/// Pins or unpins entry `n` as `history` numbers it (by its stamp: a copy arriving meanwhile
/// does not shift which entry is meant).
fn pin(locate: &Locate, n: usize, pinned: bool) -> anyhow::Result<()> {
    let mut client = client(locate)?;
    let history = client.history()?;
    let Some(entry) = history.get(n) else {
        bail!("the history has {} entries", history.len());
    };
    client.pin(entry.entry.stamp, pinned)?;
    Ok(())
}

/// Writes the current value's files into `dir`, fetching each.
fn paste_files(locate: &Locate, dir: &Path) -> anyhow::Result<()> {
    let mut client = connect(locate)?;
    let mut manifest = Vec::new();
    client
        .paste_type(FILES, &mut manifest)
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
        client
            .blob(hash, file.size, &mut out)
            .with_context(|| format!("fetching {}", file.path))?;
        println!("{}", path.display());
    }
    Ok(())
}

/// A value's types, one line each: type, size, dimensions.
fn types(entry: &ClipEntry) -> Vec<String> {
    let mut lines = Vec::new();
    if !entry.text.is_empty() {
        lines.push(format!("{}\t{}", rrt_clipboard::TEXT, entry.text.len()));
    }
    for representation in &entry.content {
        let mut line = format!("{}\t{}", representation.mime, representation.size);
        if let (Some(width), Some(height)) = (representation.width, representation.height) {
            line.push_str(&format!("\t{width}x{height}"));
        }
        lines.push(line);
    }
    lines
}

/// One history entry on a line: when, its text (shortened) or its types, and a pin.
fn summary(entry: &HistoryEntry) -> String {
    let text = &entry.entry.text;
    let shown: String = text.chars().take(60).collect();
    let more = if shown.len() < text.len() { "…" } else { "" };
    let kinds: Vec<String> = entry
        .entry
        .content
        .iter()
        .map(|representation| {
            format!(
                "[{} {}]",
                representation.mime,
                human_size(representation.size)
            )
        })
        .collect();
    let pin = if entry.pinned { " 📌" } else { "" };
    format!(
        "{:>15}  {shown:?}{more} {}{pin}",
        entry.entry.stamp.time.wall_ms,
        kinds.join(" ")
    )
}

/// Whether an entry's text or one of its types contains `word`, ignoring case.
fn matches(entry: &ClipEntry, word: &str) -> bool {
    let word = word.to_lowercase();
    entry.text.to_lowercase().contains(&word)
        || entry
            .content
            .iter()
            .any(|representation| representation.mime.to_lowercase().contains(&word))
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

/// Prints the current value and every new one as JSON lines — or, with `osc52`, sets this
/// terminal's clipboard to each (OSC 52 escape sequences).
fn watch(locate: &Locate, osc52: bool) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    for event in connect(locate)?.watch()? {
        match event.context("reading from the daemon")? {
            ClipboardEvent::Entry(entry) if osc52 => {
                out.write_all(rrt_clipboard::osc52(&entry.text).as_bytes())?;
            }
            ClipboardEvent::Entry(entry) => {
                serde_json::to_writer(&mut out, &entry)?;
                writeln!(out)?;
            }
            ClipboardEvent::Lagged { missed } => {
                eprintln!("rrt: fell behind and skipped {missed} clipboard changes");
            }
        }
        out.flush()?;
    }
    bail!("the daemon went away")
}

/// Milliseconds since the Unix epoch, by this host's clock.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// `rrt clip why` in words, `now_ms` being now.
fn explain(why: &rrt_mesh::Why, now_ms: u64) -> String {
    let Some(entry) = &why.entry else {
        return "the clipboard is empty\n".to_owned();
    };
    let ago = |at_ms: u64| {
        let seconds = now_ms.saturating_sub(at_ms) as f64 / 1000.0;
        format!("{seconds:.1} s ago")
    };
    let preview: String = entry.text.chars().take(60).collect();
    let more = if entry.text.chars().count() > 60 {
        "…"
    } else {
        ""
    };
    let mut text = format!(
        "{:?}{more} ({} bytes of text{})\n",
        preview,
        entry.text.len(),
        match entry.content.len() {
            0 => String::new(),
            n => format!(
                " and {n} other representation{}",
                if n == 1 { "" } else { "s" }
            ),
        }
    );
    let copied = ago(entry.stamp.time.wall_ms);
    match &entry.provenance {
        Some(provenance) => {
            let device = provenance
                .device
                .as_ref()
                .map(|device| format!(" (device {device})"))
                .unwrap_or_default();
            let how = match provenance.through.as_str() {
                "x11" | "wayland" => {
                    format!("from its desktop's clipboard ({})", provenance.through)
                }
                "control" => {
                    "through its control socket (rrt clip copy, the TUI, a client)".to_owned()
                }
                "app" => "by an application embedding rrt".to_owned(),
                other => format!("through {other}"),
            };
            text.push_str(&format!(
                "copied {copied} on {}{device}{}, {how}\n",
                provenance.instance,
                if why.here { ", this instance" } else { "" }
            ));
        }
        None => text.push_str(&format!(
            "copied {copied} on instance {} (which did not say how)\n",
            entry.stamp.origin
        )),
    }
    if let Some(hop) = &why.arrived {
        let name = if hop.name.is_empty() {
            hop.from.to_string()
        } else {
            format!("{} ({})", hop.name, hop.from)
        };
        text.push_str(&format!(
            "reached this instance from {name} {}\n",
            ago(hop.at_ms)
        ));
    } else if !why.here {
        text.push_str("reached this instance before it last started (or with its history)\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// An entry with this text and these representations (the JSON without hashes).
    fn entry(text: &str, content: serde_json::Value) -> ClipEntry {
        let mut content = content;
        for representation in content.as_array_mut().into_iter().flatten() {
            representation["hash"] = json!("00".repeat(32));
        }
        serde_json::from_value(json!({
            "text": text,
            "content": content,
            "stamp": {"time": {"wall_ms": 1, "counter": 0}, "origin": uuid::Uuid::nil()},
        }))
        .expect("an entry")
    }

    #[test]
    fn a_search_finds_words_in_the_text_or_a_type_ignoring_case() {
        let entry = entry("Hello World", json!([{"mime": "image/png", "size": 3}]));
        assert!(matches(&entry, "world"));
        assert!(matches(&entry, "PNG"));
        assert!(!matches(&entry, "html"));
    }

    #[test]
    fn types_list_text_first_with_sizes_and_dimensions() {
        let entry = entry(
            "hi",
            json!([
                {"mime": "image/png", "size": 5120, "width": 640, "height": 480},
                {"mime": "text/html", "size": 9}
            ]),
        );
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

    #[test]
    fn why_names_the_copier_how_it_copied_and_the_last_hop() {
        let mut copied = entry("hello", json!([]));
        copied.stamp.time.wall_ms = 10_000;
        copied.provenance = Some(rrt_sync::Provenance {
            instance: "laptop-1".into(),
            device: Some("laptop".into()),
            through: "x11".into(),
            device_id: None,
        });
        let why = rrt_mesh::Why {
            entry: Some(copied),
            here: false,
            arrived: Some(rrt_mesh::Hop {
                from: uuid::Uuid::nil(),
                name: "desk-2".into(),
                at_ms: 11_000,
            }),
        };
        let said = explain(&why, 12_500);
        assert!(said.starts_with("\"hello\" (5 bytes of text)\n"), "{said}");
        assert!(
            said.contains(
                "copied 2.5 s ago on laptop-1 (device laptop), from its desktop's clipboard (x11)"
            ),
            "{said}"
        );
        assert!(
            said.contains("reached this instance from desk-2 ("),
            "{said}"
        );
        assert!(said.ends_with(" 1.5 s ago\n"), "{said}");
        let empty = rrt_mesh::Why {
            entry: None,
            here: false,
            arrived: None,
        };
        assert_eq!(explain(&empty, 0), "the clipboard is empty\n");
    }
}
