//! The commands that talk to a running daemon: `peers`, `status`, `clip …`, `scratch …` and
//! `state …`. A command trusts the daemon it finds only as far as it is ours: the mesh
//! directory must be our own (not a symbolic link), and the control socket served by our uid
//! (`rrt_mesh::same_user`) — another user who swapped the directory would otherwise receive what
//! we copy.

use std::{
    fs,
    io::{self, BufRead, BufReader, ErrorKind, Read, Write},
    os::unix::{
        fs::{OpenOptionsExt, PermissionsExt},
        net::UnixStream,
    },
    path::PathBuf,
    time::Duration,
};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use rrt_mesh::{
    dir::{DirError, MeshDir},
    registry::{Registry, RegistryEntry},
    same_user,
};
use serde_json::Value;

use crate::{
    Locate,
    control::{Request, Response},
};

#[derive(Debug, Subcommand)]
pub(crate) enum ScratchCommand {
    /// List the scratch documents.
    List,
    /// Print a scratch document.
    Cat {
        /// The document.
        name: String,
    },
    /// Append TEXT (or standard input) to a scratch document, creating it if new.
    Append {
        /// The document.
        name: String,
        /// The text; read from standard input when absent.
        text: Option<String>,
    },
    /// Edit a scratch document in $EDITOR; what you save is applied as changes, so edits made
    /// elsewhere meanwhile are merged, not overwritten.
    Edit {
        /// The document.
        name: String,
    },
    /// Print the document as JSON now and after every change, until interrupted.
    Watch {
        /// The document.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum StateCommand {
    /// Set KEY to VALUE.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Print the value of KEY.
    Get {
        /// The key.
        key: String,
    },
    /// Remove KEY.
    Del {
        /// The key.
        key: String,
    },
    /// Print every key and value as JSON.
    List,
    /// Print the whole state as JSON now and after every change, until interrupted.
    Watch,
}

/// Picks the daemon: `--instance NAME` if given, else any of the mesh's. The mesh directory must
/// be ours: whoever owns it writes the registry that says which socket is the daemon's.
pub(crate) fn daemon(locate: &Locate) -> anyhow::Result<RegistryEntry> {
    let dir = MeshDir::locate(locate.runtime_dir.as_deref(), &locate.mesh);
    let instances = instances(locate)?;
    let found = match &locate.instance {
        Some(name) => instances.into_iter().find(|entry| &entry.name == name),
        None => instances.into_iter().next(),
    };
    match (found, &locate.instance) {
        (Some(entry), _) => Ok(entry),
        (None, Some(name)) => bail!(
            "no rrt daemon named {name:?} runs on mesh {:?} (in {}); `rrt peers` lists the others",
            locate.mesh,
            dir.path().display()
        ),
        (None, None) => bail!(
            "no rrt daemon runs on mesh {:?} (in {}); start one with `rrt daemon` \
             (from a checkout: `cargo run --release -- daemon`)",
            locate.mesh,
            dir.path().display()
        ),
    }
}

/// Every daemon of the mesh, as its registry lists them (none if the mesh directory is not
/// there yet). The directory must be ours: whoever owns it writes the registry.
pub(crate) fn instances(locate: &Locate) -> anyhow::Result<Vec<RegistryEntry>> {
    let dir = MeshDir::locate(locate.runtime_dir.as_deref(), &locate.mesh);
    match dir.verify() {
        Ok(()) => Registry::new(dir.clone())
            .list()
            .with_context(|| format!("reading the registry in {}", dir.path().display())),
        Err(DirError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            Ok(Vec::new())
        }
        Err(error) => Err(error.into()),
    }
}

/// Connects to the daemon's control socket — refusing one that another user serves — and sends
/// `request`.
pub(crate) fn connect(locate: &Locate, request: &Request) -> anyhow::Result<BufReader<UnixStream>> {
    let entry = daemon(locate)?;
    let mut stream = same_user::connect(&entry.control_socket)
        .with_context(|| format!("reaching daemon {:?}", entry.name))?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    match stream.write_all(&line) {
        Ok(()) => {}
        // A daemon refusing a request (too long, say) answers why and closes before it has
        // read it all: its answer says more than the broken pipe.
        Err(error)
            if matches!(
                error.kind(),
                ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
            ) => {}
        Err(error) => return Err(error.into()),
    }
    Ok(BufReader::new(stream))
}

/// How long a command waits for a daemon's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn ask(locate: &Locate, request: &Request) -> anyhow::Result<Value> {
    let mut reader = connect(locate, request)?;
    reader.get_ref().set_read_timeout(Some(ANSWER_TIMEOUT))?;
    let mut line = String::new();
    let read = reader
        .read_line(&mut line)
        .context("reading the daemon's answer")?;
    if read == 0 {
        bail!("the daemon closed the connection without an answer");
    }
    match serde_json::from_str(&line).context("the daemon's answer is not JSON")? {
        Response::Ok(value) => Ok(value),
        Response::Error(error) => bail!("{error}"),
    }
}

pub(crate) fn peers(locate: &Locate, json: bool) -> anyhow::Result<()> {
    let view = ask(locate, &Request::Peers)?;
    if json {
        println!("{view}");
        return Ok(());
    }
    let peers: Vec<Value> = view["peers"].as_array().cloned().unwrap_or_default();
    let devices = device_labels(&peers);
    let neighbours = peers
        .iter()
        .filter(|peer| peer["neighbour"] == true)
        .count();
    match view["shape"].as_str() {
        Some("swarm") => println!(
            "{} members, a swarm: {} links, {neighbours} of them swarm neighbours",
            view["members"],
            peers.len()
        ),
        _ => println!(
            "{} members, a full mesh: {} links",
            view["members"],
            peers.len()
        ),
    }
    println!(
        "{:<24} {:<36} {:<20} {:<16} {:<9} {:<7} {:<5} {:>9} {:>10}",
        "NAME", "ID", "DEVICE", "HOST", "TRANSPORT", "PATH", "LZ4", "RTT", "LAST SEEN"
    );
    for (peer, device) in peers.iter().zip(devices) {
        let rtt = peer["rtt_us"]
            .as_u64()
            .map_or("-".to_owned(), |us| format!("{:.2} ms", us as f64 / 1000.0));
        let seen = peer["last_seen_ms"]
            .as_u64()
            .map_or("-".to_owned(), |ms| format!("{ms} ms"));
        let lz4 = match peer["compression"].as_str() {
            Some("lz4") => "yes",
            Some(_) => "no",
            None => "-",
        };
        println!(
            "{:<24} {:<36} {:<20} {:<16} {:<9} {:<7} {:<5} {:>9} {:>10}",
            peer["peer"]["name"].as_str().unwrap_or("?"),
            peer["peer"]["id"].as_str().unwrap_or("?"),
            device,
            peer["host"].as_str().unwrap_or("?"),
            peer["transport"].as_str().unwrap_or("?"),
            peer["path"].as_str().unwrap_or("?"),
            lz4,
            rtt,
            seen,
        );
    }
    Ok(())
}

/// What the DEVICE column shows for each peer: the device's name, with a short id when
/// another device listed goes by the same name (names are labels; keys tell devices apart), or
/// the short id alone for a device that never said its name; `-` on this host.
fn device_labels(peers: &[Value]) -> Vec<String> {
    fn device(peer: &Value) -> Option<(Option<&str>, &str)> {
        let device = &peer["device"];
        let id = device["id"].as_str()?;
        Some((device["name"].as_str(), id))
    }
    let short = |id: &str| id.chars().take(8).collect::<String>();
    peers
        .iter()
        .map(|peer| match device(peer) {
            None => "-".to_owned(),
            Some((None, id)) => short(id),
            Some((Some(name), id)) => {
                let shared = peers
                    .iter()
                    .filter_map(device)
                    .any(|(other, other_key)| other == Some(name) && other_key != id);
                if shared {
                    format!("{name} ({})", short(id))
                } else {
                    name.to_owned()
                }
            }
        })
        .collect()
}

pub(crate) fn status(locate: &Locate, json: bool) -> anyhow::Result<()> {
    let status = ask(locate, &Request::Status)?;
    if json {
        println!("{status}");
    } else {
        for (key, value) in status.as_object().into_iter().flatten() {
            println!(
                "{key:<11} {}",
                value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned)
            );
        }
    }
    Ok(())
}

pub(crate) fn read_stdin() -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .context("reading standard input")?;
    String::from_utf8(bytes).context("the text must be UTF-8")
}

pub(crate) fn stream(locate: &Locate, request: &Request) -> anyhow::Result<()> {
    let reader = connect(locate, request)?;
    let mut out = std::io::stdout().lock();
    for line in reader.lines() {
        writeln!(out, "{}", line.context("reading from the daemon")?)?;
        out.flush()?;
    }
    bail!("the daemon went away")
}

pub(crate) fn scratch(locate: &Locate, command: ScratchCommand) -> anyhow::Result<()> {
    match command {
        ScratchCommand::List => {
            for name in ask(locate, &Request::ScratchList)?
                .as_array()
                .into_iter()
                .flatten()
            {
                println!("{}", name.as_str().unwrap_or_default());
            }
        }
        ScratchCommand::Cat { name } => {
            let text = ask(locate, &Request::ScratchCat { name })?;
            print!("{}", text.as_str().unwrap_or_default());
        }
        ScratchCommand::Append { name, text } => {
            let text = match text {
                Some(text) => text,
                None => read_stdin()?,
            };
            ask(locate, &Request::ScratchAppend { name, text })?;
        }
        ScratchCommand::Edit { name } => {
            let current = ask(locate, &Request::ScratchCat { name: name.clone() })
                .map(|text| text.as_str().unwrap_or_default().to_owned())
                .unwrap_or_default();
            let (_private, path) = private_file(&name, &current)?;
            let editor = std::env::var("EDITOR").unwrap_or_else(|_| "vi".to_owned());
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("{editor} \"$1\""))
                .arg("sh")
                .arg(&path)
                .status()
                .with_context(|| format!("running {editor}"))?;
            let edited = std::fs::read_to_string(&path);
            if !status.success() {
                bail!("{editor} exited with {status}; nothing changed");
            }
            let text = edited.context("reading the edited file")?;
            if text != current {
                // Relative to what the editor started from: what others wrote meanwhile stays.
                let base = Some(current);
                ask(locate, &Request::ScratchReplace { name, text, base })?;
            }
        }
        ScratchCommand::Watch { name } => stream(locate, &Request::ScratchWatch { name })?,
    }
    Ok(())
}

/// A file for an editor to change, holding `text`: `<name>.txt` (editors pick a mode by the
/// suffix) in a new directory of ours (mode 0700, a random name in the temporary directory),
/// itself created new, mode 0600. A fixed name in a shared `/tmp` could be taken first by a
/// symbolic link of another user's, through which we would overwrite whatever it points at; and
/// an editor that saves by writing a new file and renaming it over the old does so where no one
/// else can. The directory and the file go when the returned guard is dropped.
fn private_file(name: &str, text: &str) -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
    if !rrt_sync::valid_name(name) {
        bail!(
            "{name:?} is not a document name (1 to 64 of A-Z a-z 0-9 . _ -, not starting with .)"
        );
    }
    let dir = tempfile::Builder::new()
        .prefix("rrt-scratch-")
        .permissions(fs::Permissions::from_mode(0o700))
        .tempdir()
        .context("creating a private temporary directory")?;
    let path = dir.path().join(format!("{name}.txt"));
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok((dir, path))
}

pub(crate) fn state(locate: &Locate, command: StateCommand) -> anyhow::Result<()> {
    match command {
        StateCommand::Set { key, value } => {
            ask(locate, &Request::StateSet { key, value })?;
        }
        StateCommand::Get { key } => {
            let state = ask(locate, &Request::StateList)?;
            match state.get(&key).and_then(Value::as_str) {
                Some(value) => println!("{value}"),
                None => bail!("no key {key:?} in the app state"),
            }
        }
        StateCommand::Del { key } => {
            ask(locate, &Request::StateDel { key })?;
        }
        StateCommand::List => println!("{}", ask(locate, &Request::StateList)?),
        StateCommand::Watch => stream(locate, &Request::StateWatch)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_file_to_edit_is_private_and_named_for_the_editor() {
        let (dir, path) = private_file("notes", "hello").expect("created");
        assert_eq!(path.file_name().and_then(|n| n.to_str()), Some("notes.txt"));
        assert_eq!(fs::read_to_string(&path).expect("read"), "hello");
        let mode =
            |path: &std::path::Path| fs::metadata(path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(dir.path()), 0o700);
        let kept = dir.path().to_owned();
        drop(dir);
        assert!(!kept.exists(), "removed with its guard");
        // A name that would leave the directory is refused before anything is created.
        assert!(private_file("../../etc/passwd", "").is_err());
    }

    #[test]
    fn devices_that_share_a_name_are_told_apart_by_their_keys() {
        let pi = |id: &str| json!({"device": {"name": "raspberrypi", "id": id}});
        let peers = [
            pi("aaaaaaaa11111111"),
            pi("bbbbbbbb22222222"),
            // Two instances of one device: one key, so one name needs no suffix between them.
            json!({"device": {"name": "laptop", "id": "cccccccc33333333"}}),
            json!({"device": {"name": "laptop", "id": "cccccccc33333333"}}),
            json!({"device": {"name": null, "id": "dddddddd44444444"}}),
            json!({"device": null}),
        ];
        assert_eq!(
            device_labels(&peers),
            [
                "raspberrypi (aaaaaaaa)",
                "raspberrypi (bbbbbbbb)",
                "laptop",
                "laptop",
                "dddddddd",
                "-"
            ]
        );
    }
}
