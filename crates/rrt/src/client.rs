//! The commands that talk to a running daemon: `peers`, `status`, `clip …`, `scratch …` and
//! `state …`. A command trusts the daemon it finds only as far as it is ours: the mesh
//! directory must be our own (not a symbolic link), and the control socket served by our uid
//! (`rrt_mesh::same_user`) — another user who swapped the directory would otherwise receive what
//! we copy.

use std::{
    fs,
    io::{Read, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::PathBuf,
    time::Duration,
};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use rrt_control::{Client, Mesh};
use rrt_mesh::{Device, RegistryEntry, Shape};
use serde::Serialize;

use crate::Locate;

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

impl Locate {
    /// The mesh named by `--mesh` (and `--runtime-dir`).
    pub(crate) fn mesh_daemons(&self) -> Mesh {
        Mesh::new(&self.mesh, self.runtime_dir.as_deref())
    }
}

/// Picks the daemon: `--instance NAME` if given, else any of the mesh's.
pub(crate) fn daemon(locate: &Locate) -> anyhow::Result<RegistryEntry> {
    Ok(locate.mesh_daemons().daemon(locate.instance.as_deref())?)
}

/// Every daemon of the mesh, as its registry lists them (none if the mesh directory is not
/// there yet).
pub(crate) fn instances(locate: &Locate) -> anyhow::Result<Vec<RegistryEntry>> {
    Ok(locate.mesh_daemons().daemons()?)
}

/// Every daemon of every mesh of this user on this host (the meshes are the directories beside
/// `--mesh`'s), for what concerns the device rather than one mesh.
pub(crate) fn every_meshs_daemons(locate: &Locate) -> anyhow::Result<Vec<RegistryEntry>> {
    let mesh = locate.mesh_daemons();
    let Some(root) = mesh.dir().parent() else {
        return instances(locate);
    };
    let names = match fs::read_dir(root) {
        Ok(entries) => entries
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
            .filter_map(|entry| entry.file_name().into_string().ok())
            .collect(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(error).with_context(|| format!("listing {}", root.display())),
    };
    let mut daemons = Vec::new();
    for name in names {
        // A directory that is not a mesh of ours (another user's, a link) is left alone.
        match Mesh::new(&name, locate.runtime_dir.as_deref()).daemons() {
            Ok(found) => daemons.extend(found),
            Err(error) => eprintln!("skipping mesh {name:?}: {error}"),
        }
    }
    Ok(daemons)
}

/// A connection to the daemon, for a stream or raw bytes (no deadline).
pub(crate) fn connect(locate: &Locate) -> anyhow::Result<Client> {
    let entry = daemon(locate)?;
    Client::connect_socket(&entry.control_socket)
        .with_context(|| format!("reaching daemon {:?}", entry.name))
}

/// How long a command waits for a daemon's one-line answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to the daemon for requests answered by one line each.
pub(crate) fn client(locate: &Locate) -> anyhow::Result<Client> {
    answering(&daemon(locate)?)
}

/// A connection to the daemon `entry` for requests answered by one line each.
pub(crate) fn answering(entry: &RegistryEntry) -> anyhow::Result<Client> {
    let client = Client::connect_socket(&entry.control_socket)
        .with_context(|| format!("reaching daemon {:?}", entry.name))?;
    client.set_timeout(Some(ANSWER_TIMEOUT))?;
    Ok(client)
}

/// Prints a value as one line of JSON.
pub(crate) fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

pub(crate) fn peers(locate: &Locate, json: bool) -> anyhow::Result<()> {
    let view = client(locate)?.peers()?;
    if json {
        return print_json(&view);
    }
    let devices = device_labels(
        &view
            .peers
            .iter()
            .map(|peer| peer.device.as_ref())
            .collect::<Vec<_>>(),
    );
    let neighbours = view.peers.iter().filter(|peer| peer.neighbour).count();
    match view.shape {
        Shape::Swarm => println!(
            "{} members, a swarm: {} links, {neighbours} of them swarm neighbours",
            view.members,
            view.peers.len()
        ),
        _ => println!(
            "{} members, a full mesh: {} links",
            view.members,
            view.peers.len()
        ),
    }
    println!(
        "{:<24} {:<36} {:<20} {:<16} {:<9} {:<7} {:<5} {:>9} {:>10}",
        "NAME", "ID", "DEVICE", "HOST", "TRANSPORT", "PATH", "LZ4", "RTT", "LAST SEEN"
    );
    for (peer, device) in view.peers.iter().zip(devices) {
        let rtt = peer
            .rtt_us
            .map_or("-".to_owned(), |us| format!("{:.2} ms", us as f64 / 1000.0));
        let seen = peer
            .last_seen_ms
            .map_or("-".to_owned(), |ms| format!("{ms} ms"));
        let lz4 = match peer.compression {
            Some(rrt_wire::Compression::Lz4) => "yes",
            Some(rrt_wire::Compression::None) => "no",
            None => "-",
        };
        println!(
            "{:<24} {:<36} {:<20} {:<16} {:<9} {:<7} {:<5} {:>9} {:>10}",
            peer.peer.name,
            peer.peer.id.to_string(),
            device,
            peer.host,
            peer.transport.to_string(),
            peer.path.to_string(),
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
fn device_labels(devices: &[Option<&Device>]) -> Vec<String> {
    fn device<'a>(device: &Option<&'a Device>) -> Option<(Option<&'a str>, String)> {
        let device = device.as_ref()?;
        Some((device.name.as_deref(), device.id.to_string()))
    }
    let short = |id: &str| id.chars().take(8).collect::<String>();
    devices
        .iter()
        .map(|peer| match device(peer) {
            None => "-".to_owned(),
            Some((None, id)) => short(&id),
            Some((Some(name), id)) => {
                let shared = devices
                    .iter()
                    .filter_map(device)
                    .any(|(other, other_key)| other == Some(name) && other_key != id);
                if shared {
                    format!("{name} ({})", short(&id))
                } else {
                    name.to_owned()
                }
            }
        })
        .collect()
}

pub(crate) fn status(locate: &Locate, json: bool) -> anyhow::Result<()> {
    let status = serde_json::to_value(client(locate)?.status()?)?;
    if json {
        return print_json(&status);
    }
    for (key, value) in status.as_object().into_iter().flatten() {
        println!(
            "{key:<11} {}",
            value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned)
        );
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

/// Prints each event of a stream as a line of JSON until the daemon goes away.
pub(crate) fn print_events<T: Serialize>(
    events: impl Iterator<Item = Result<T, rrt_control::ControlError>>,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for event in events {
        serde_json::to_writer(&mut out, &event.context("reading from the daemon")?)?;
        writeln!(out)?;
        out.flush()?;
    }
    bail!("the daemon went away")
}

pub(crate) fn scratch(locate: &Locate, command: ScratchCommand) -> anyhow::Result<()> {
    match command {
        ScratchCommand::List => {
            for name in client(locate)?.documents()? {
                println!("{name}");
            }
        }
        ScratchCommand::Cat { name } => print!("{}", client(locate)?.text(name)?),
        ScratchCommand::Append { name, text } => {
            let text = match text {
                Some(text) => text,
                None => read_stdin()?,
            };
            client(locate)?.append(name, text)?;
        }
        ScratchCommand::Edit { name } => {
            let mut client = client(locate)?;
            let current = match client.text(name.clone()) {
                Ok(text) => text,
                Err(error) if error.kind() == Some(rrt_control::ErrorKind::NotFound) => {
                    String::new()
                }
                Err(error) => return Err(error.into()),
            };
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
                // A fresh connection: the editor may have been open longer than the daemon
                // waits for an idle client.
                drop(client);
                self::client(locate)?.replace(name, text, Some(current))?;
            }
        }
        ScratchCommand::Watch { name } => print_events(connect(locate)?.watch_document(&name)?)?,
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
        StateCommand::Set { key, value } => client(locate)?.set(key, value)?,
        StateCommand::Get { key } => match client(locate)?.state()?.get(&key) {
            Some(value) => println!("{value}"),
            None => bail!("no key {key:?} in the app state"),
        },
        StateCommand::Del { key } => client(locate)?.remove(key)?,
        StateCommand::List => print_json(&client(locate)?.state()?)?,
        StateCommand::Watch => print_events(connect(locate)?.watch_state()?)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
        let device = |name: Option<&str>, digit: &str| Device {
            id: digit.repeat(64).parse().expect("id"),
            name: name.map(str::to_owned),
        };
        let devices = [
            device(Some("raspberrypi"), "a"),
            device(Some("raspberrypi"), "b"),
            // Two instances of one device: one key, so one name needs no suffix between them.
            device(Some("laptop"), "c"),
            device(Some("laptop"), "c"),
            device(None, "d"),
        ];
        let mut peers: Vec<Option<&Device>> = devices.iter().map(Some).collect();
        peers.push(None);
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
