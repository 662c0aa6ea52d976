//! The daemon's bridge between the mesh clipboard and the system clipboard
//! (`rrt daemon --system-clipboard auto|x11|wayland|osc52|off`).
//!
//! What is copied in the desktop goes to the mesh — text, HTML, an image, files (their contents,
//! read into the blob store; the desktop only names them) — and every mesh value (from a peer, or
//! `rrt clip copy`) goes to the desktop: text and small representations at once, large ones and
//! files announced and fetched only when a program pastes them (the program waits meanwhile;
//! files are written under the state directory's `pasted/` and named to it by URI). Echoes are cut on both sides: an adapter never reports a value it set
//! itself, and the node's announcement of a value the bridge itself copied from the desktop
//! (known by its stamp) is not set back — that would take ownership from the program the user
//! copied in, and under rapid copies put an older value back on the desktop.

use std::{
    collections::HashSet,
    io::Write,
    path::{Path, PathBuf},
    sync::{
        Arc, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use clap::ValueEnum;
use rrt_clipboard::{
    Backend, ClipboardCommand, ClipboardEvent, Offer, ReadLimits, Representation, Source, TEXT,
    WaylandClipboard, X11Clipboard, osc52,
};
use rrt_mesh::{ClipboardChange, CopyError, ImportError, Node};
use rrt_reactor::{
    Config, ReactorEvent, RecvError as ReactorRecvError, Rrt, ShutdownReason, Worker,
};
use rrt_sync::{ClipEntry, Copied, FILES, FileList};
use tokio::sync::mpsc;

use crate::{file_tree, file_uris};

/// Which system clipboard the daemon follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SystemClipboard {
    /// Wayland when `WAYLAND_DISPLAY` is set (X11 if the compositor lacks data-control and
    /// `DISPLAY` is set), else X11 when `DISPLAY` is set, else OSC 52 when run in a terminal,
    /// else none.
    Auto,
    /// The X11 CLIPBOARD selection at `DISPLAY`.
    X11,
    /// The Wayland clipboard at `WAYLAND_DISPLAY`, through the wlr data-control protocol.
    Wayland,
    /// OSC 52 escape sequences to the daemon's terminal (values from the mesh only).
    Osc52,
    /// Leave the system clipboard alone.
    Off,
}

impl SystemClipboard {
    /// The backend to run, or why there is none.
    pub(crate) fn backend(self) -> anyhow::Result<Option<Backend>> {
        match self {
            Self::Auto => Ok(Backend::detect()),
            Self::X11 => Ok(Some(Backend::X11)),
            Self::Wayland => Ok(Some(Backend::Wayland)),
            Self::Osc52 => {
                anyhow::ensure!(
                    rustix::termios::isatty(std::io::stdout()),
                    "--system-clipboard osc52 needs the daemon's output to be a terminal \
                     (or run `rrt clip watch --osc52` in the terminal that should receive copies)"
                );
                Ok(Some(Backend::Osc52))
            }
            Self::Off => Ok(None),
        }
    }
}

/// What the bridge needs besides the node: how much to read of a value copied on the desktop,
/// and where files pasted from the mesh are written for the desktop to open.
#[derive(Debug, Clone)]
pub(crate) struct BridgeConfig {
    pub(crate) limits: ReadLimits,
    pub(crate) pasted_files: PathBuf,
    /// The most bytes of files written out for one paste.
    pub(crate) max_size: u64,
    /// Applications whose copies are never shared, by `WM_CLASS` class name (the instance name
    /// when a window has no class), compared ignoring case (X11 only: Wayland does not say who
    /// copied). Replaced by SIGHUP.
    pub(crate) never_share_from: Arc<RwLock<Vec<String>>>,
    /// Restarts of the adapter's worker, counted for the node's status.
    pub(crate) restarts: Arc<AtomicU64>,
}

/// Whether a value copied in `application` must not be shared.
fn from_excluded(application: Option<&str>, excluded: &RwLock<Vec<String>>) -> bool {
    application.is_some_and(|application| {
        excluded
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|name| name.eq_ignore_ascii_case(application))
    })
}

/// Follows the system clipboard until the node stops. `fallback` allows X11 when Wayland's
/// clipboard cannot be opened (the automatic choice under XWayland).
pub(crate) async fn follow(node: Node, backend: Backend, fallback: bool, config: BridgeConfig) {
    match backend {
        Backend::Wayland => {
            let limits = config.limits.clone();
            let wayland = Rrt::with_config(
                move |registry| WaylandClipboard::new(registry, limits.clone()),
                self::config("rrt-wayland"),
            );
            let opened = bridge(&node, wayland, "Wayland", &config).await;
            let has_x = std::env::var_os("DISPLAY").is_some_and(|display| !display.is_empty());
            if opened == Opened::No && fallback && has_x {
                tracing::info!("falling back to the X11 clipboard (XWayland)");
                bridge(&node, x11(&config.limits), "X11", &config).await;
            }
        }
        Backend::X11 => {
            bridge(&node, x11(&config.limits), "X11", &config).await;
        }
        Backend::Osc52 => follow_osc52(node).await,
    }
}

fn x11(limits: &ReadLimits) -> Rrt<X11Clipboard> {
    let limits = limits.clone();
    Rrt::with_config(
        move |registry| X11Clipboard::new(registry, None, limits.clone()),
        config("rrt-x11"),
    )
}

/// The default restart policy (a display server that restarts within about 16 s is reconnected
/// to), under a thread name of its own.
fn config(thread_name: &str) -> Config {
    Config {
        thread_name: thread_name.to_owned(),
        ..Config::default()
    }
}

/// Whether an adapter ever ran.
#[derive(Debug, PartialEq, Eq)]
enum Opened {
    Yes,
    No,
}

/// Carries values both ways between `node` and a clipboard adapter until either ends.
async fn bridge<W>(node: &Node, adapter: Rrt<W>, name: &str, config: &BridgeConfig) -> Opened
where
    W: Worker<Event = ClipboardEvent, Command = ClipboardCommand>,
{
    let mut adapter_events = adapter.subscribe();
    let mut node_events = node.clipboard().changes();
    let mut opened = Opened::No;
    // Desktop values are read into the store and copied by a task of their own, in order, so a
    // large one (a folder of files) never keeps the bridge from the mesh's values and pastes.
    let (to_copy, copying) = mpsc::channel(4);
    let (copy_outcomes, mut outcomes) = mpsc::unbounded_channel();
    let through = name.to_lowercase();
    tokio::spawn(copy_from_desktop(
        node.clone(),
        through,
        copying,
        copy_outcomes,
    ));
    // Desktop values handed to the copier whose outcome has not come back yet.
    let mut copying = 0usize;
    // Stamps of the values copied from the desktop whose announcement has not come back yet.
    let mut echoes = HashSet::new();
    // This instance's newest value, announced while the copier was busy: an echo only the
    // copier's outcome can tell from a value copied here another way (`rrt clip copy`).
    let mut held: Option<ClipEntry> = None;
    // The value the desktop was last given, whose representations it may ask for.
    let mut offered: Option<ClipEntry> = None;
    let offer = |entry: ClipEntry, offered: &mut Option<ClipEntry>| {
        let offers = offers(&entry);
        *offered = Some(entry);
        if let Err(error) = adapter.send(ClipboardCommand::Set(offers)) {
            tracing::warn!(command = ?error.0, "the {name} clipboard adapter is stopped");
        }
    };
    loop {
        tokio::select! {
            Some(outcome) = outcomes.recv() => {
                copying -= 1;
                match outcome {
                    CopyOutcome::Copied(stamp) => {
                        echoes.insert(stamp);
                    }
                    CopyOutcome::Unchanged => {}
                    CopyOutcome::Stopped => return opened,
                }
                if let Some(entry) = held.take() {
                    if echoes.remove(&entry.stamp) {
                        // The copier's own value, back: an echo.
                    } else if copying > 0 {
                        held = Some(entry);
                    } else {
                        offer(entry, &mut offered);
                    }
                }
            }
            event = adapter_events.recv() => match event {
                Ok(ReactorEvent::Worker(ClipboardEvent::Copied { application, .. }))
                    if from_excluded(application.as_deref(), &config.never_share_from) =>
                {
                    tracing::info!(
                        application,
                        "not sharing a value copied in an application never shared from"
                    );
                }
                Ok(ReactorEvent::Worker(ClipboardEvent::Copied { representations, .. })) => {
                    if to_copy.send(representations).await.is_err() {
                        return opened;
                    }
                    copying += 1;
                }
                Ok(ReactorEvent::Worker(ClipboardEvent::Wanted { request, mime })) => {
                    let entry = offered.clone();
                    let (node, adapter) = (node.clone(), adapter.clone());
                    let pasted_files = config.pasted_files.clone();
                    let max_total = config.max_size;
                    // Fetching may take a while: the bridge goes on meanwhile.
                    tokio::spawn(async move {
                        let source = match entry {
                            Some(entry) => {
                                provide(&node, &entry, &mime, &pasted_files, max_total).await
                            }
                            None => Err("no value from the mesh is on the desktop".to_owned()),
                        };
                        let source = source
                            .inspect_err(|error| tracing::warn!(%mime, %error, "could not give a pasting program the value"))
                            .ok();
                        let _ = adapter.send(ClipboardCommand::Provide { request, source });
                    });
                }
                Ok(ReactorEvent::Started { generation, .. }) => {
                    opened = Opened::Yes;
                    tracing::info!(generation, "following the {name} clipboard");
                }
                Ok(ReactorEvent::Restarting { attempt, cause, .. }) => {
                    config.restarts.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(attempt, %cause, "the {name} clipboard adapter is restarting");
                }
                Ok(ReactorEvent::Shutdown(reason)) => {
                    match reason {
                        ShutdownReason::Failed(error) => tracing::error!(
                            %error,
                            "the {name} clipboard is unavailable; the mesh clipboard goes on without it"
                        ),
                        other => tracing::info!(?other, "the {name} clipboard adapter stopped"),
                    }
                    return opened;
                }
                Err(ReactorRecvError::Lagged { missed }) => {
                    tracing::warn!(missed, "missed system clipboard changes");
                }
                Err(ReactorRecvError::Closed) => return opened,
            },
            change = node_events.next() => match change {
                Some(ClipboardChange::Entry(entry)) => {
                    if echoes.remove(&entry.stamp) {
                        continue;
                    }
                    if copying > 0 && entry.stamp.origin == node.id() {
                        // Ours, while a desktop value is being copied: wait for its outcome.
                        held = Some(entry);
                    } else {
                        // A newer value than any held one (values become current in order).
                        held = None;
                        offer(entry, &mut offered);
                    }
                }
                // Announcements were lost, echoes among them: forget them rather than keep them.
                Some(ClipboardChange::Lagged { .. }) => echoes.clear(),
                None => return opened,
            },
        }
    }
}

/// What became of a desktop value handed to the copier.
enum CopyOutcome {
    /// Copied: the mesh will announce it with this stamp (an echo, not to be set back).
    Copied(rrt_sync::Stamp),
    /// Not copied: already the current value, or refused (logged).
    Unchanged,
    /// The node has stopped.
    Stopped,
}

/// Reads each desktop value into the store and copies it, in order, saying what became of it.
async fn copy_from_desktop(
    node: Node,
    through: String,
    mut values: mpsc::Receiver<Vec<Representation>>,
    outcomes: mpsc::UnboundedSender<CopyOutcome>,
) {
    while let Some(representations) = values.recv().await {
        let outcome = match from_desktop(&node, representations).await {
            Err(ImportError::Stopped(_)) => CopyOutcome::Stopped,
            Err(error) => {
                tracing::warn!(%error, "could not read a system clipboard value");
                CopyOutcome::Unchanged
            }
            Ok(mut copied) => {
                copied.provenance = Some(rrt_sync::Provenance::through(through.clone()));
                match node.clipboard().copy_value(copied).await {
                    Ok(Some(entry)) => CopyOutcome::Copied(entry.stamp),
                    Ok(None) => CopyOutcome::Unchanged,
                    Err(CopyError::Stopped(_)) => CopyOutcome::Stopped,
                    Err(CopyError::NeverShared { rule }) => {
                        tracing::info!(
                            rule,
                            "not sharing a value of the desktop's clipboard: it matches a never-share rule"
                        );
                        CopyOutcome::Unchanged
                    }
                    Err(CopyError::TooLarge { len, max }) => {
                        tracing::warn!(
                            len,
                            max,
                            "not sharing a system clipboard value over the frame limit"
                        );
                        CopyOutcome::Unchanged
                    }
                    // (A full disk, say: this value is not shared; the next may be.)
                    Err(error) => {
                        tracing::warn!(%error, "could not share a system clipboard value");
                        CopyOutcome::Unchanged
                    }
                }
            }
        };
        if outcomes.send(outcome).is_err() {
            return;
        }
    }
}

/// A value copied on the desktop as the mesh holds it: the text, files named by a URI list read
/// into a file list (their contents travel, not their paths), every other type as it is.
async fn from_desktop(
    node: &Node,
    representations: Vec<Representation>,
) -> Result<Copied, ImportError> {
    let clipboard = node.clipboard();
    let mut copied = Copied::default();
    let mut files = Vec::new();
    for representation in representations {
        match representation.mime.as_str() {
            TEXT => copied.text = String::from_utf8_lossy(&representation.data).into_owned(),
            file_uris::URI_LIST | file_uris::GNOME_COPIED_FILES => {
                if files.is_empty() {
                    files = file_uris::paths(&representation.data);
                }
            }
            _ => {
                let mime = representation.mime;
                let imported = clipboard
                    .import(mime, std::io::Cursor::new(representation.data))
                    .await?;
                copied.content.push(imported);
            }
        }
    }
    if !files.is_empty() {
        let listed = clipboard.import_files(files).await?;
        if copied.text.is_empty() {
            copied.text = listed.text;
        }
        copied.content.splice(0..0, listed.content);
    }
    Ok(copied)
}

/// What the desktop is offered of a value from the mesh: its text, inline representations at
/// once, the others (and files, as a URI list) fetched when a program pastes them.
fn offers(entry: &ClipEntry) -> Vec<Offer> {
    let mut offers = Vec::new();
    if !entry.text.is_empty() {
        let text: Arc<[u8]> = entry.text.as_bytes().into();
        offers.push(Offer {
            mime: TEXT.to_owned(),
            source: Source::Bytes(text),
        });
    }
    for representation in &entry.content {
        if representation.mime == FILES {
            for mime in [file_uris::URI_LIST, file_uris::GNOME_COPIED_FILES] {
                offers.push(Offer {
                    mime: mime.to_owned(),
                    source: Source::Later,
                });
            }
            continue;
        }
        let source = match &representation.data {
            Some(inline) => Source::Bytes(Arc::clone(&inline.0)),
            None => Source::Later,
        };
        offers.push(Offer {
            mime: representation.mime.clone(),
            source,
        });
    }
    offers
}

/// The bytes a pasting program asked for: a representation's blob, or, for a URI list, the files
/// written out under `pasted_files` and named.
async fn provide(
    node: &Node,
    entry: &ClipEntry,
    mime: &str,
    pasted_files: &Path,
    max_total: u64,
) -> Result<Source, String> {
    if mime == file_uris::URI_LIST || mime == file_uris::GNOME_COPIED_FILES {
        let list = entry
            .content
            .iter()
            .find(|representation| representation.mime == FILES)
            .ok_or("the value has no files")?;
        let paths = write_files(node, list, pasted_files, max_total).await?;
        let text = if mime == file_uris::URI_LIST {
            file_uris::uri_list(&paths)
        } else {
            file_uris::gnome_copied_files(&paths)
        };
        return Ok(Source::Bytes(text.into_bytes().into()));
    }
    let representation = entry
        .content
        .iter()
        .find(|representation| representation.mime == mime)
        .ok_or_else(|| format!("the value has no {mime}"))?;
    match &representation.data {
        Some(inline) => Ok(Source::Bytes(Arc::clone(&inline.0))),
        None => node
            .clipboard()
            .fetch(representation)
            .await
            .map(Source::File)
            .map_err(|error| error.to_string()),
    }
}

/// Writes a file list's files (fetched if need be) under `root/<list hash>/`, once; returns the
/// top-level paths. Lists of more than `max_total` bytes are refused; what earlier pastes wrote
/// there a day ago goes.
async fn write_files(
    node: &Node,
    list: &rrt_sync::Representation,
    root: &Path,
    max_total: u64,
) -> Result<Vec<PathBuf>, String> {
    let manifest = match &list.data {
        Some(inline) => inline.0.to_vec(),
        None => tokio::fs::read(
            node.clipboard()
                .fetch(list)
                .await
                .map_err(|e| e.to_string())?,
        )
        .await
        .map_err(|error| error.to_string())?,
    };
    let files = FileList::parse(&manifest).map_err(|error| error.to_string())?;
    if files.total_size().is_none_or(|total| total > max_total) {
        return Err(format!("the files are over the limit of {max_total} bytes"));
    }
    let dir = root.join(list.hash.to_string());
    let written = dir.clone();
    let root = root.to_owned();
    tokio::task::spawn_blocking(move || remove_older_pastes(&root, &written))
        .await
        .map_err(|error| error.to_string())?;
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|error| format!("{}: {error}", dir.display()))?;
    for file in &files.files {
        let Some(hash) = file.hash.filter(|_| !file.dir) else {
            let (dir, file) = (dir.clone(), file.clone());
            tokio::task::spawn_blocking(move || file_tree::create_dir(&dir, &file))
                .await
                .map_err(|error| error.to_string())?
                .map_err(|error| error.to_string())?;
            continue;
        };
        if tokio::fs::metadata(file.under(&dir))
            .await
            .is_ok_and(|m| m.len() == file.size)
        {
            continue;
        }
        let blob = rrt_sync::Representation::blob("application/octet-stream", hash, file.size);
        let source = node
            .clipboard()
            .fetch(&blob)
            .await
            .map_err(|error| error.to_string())?;
        let (dir, file) = (dir.clone(), file.clone());
        // A copy, not a link: the desktop may change what it pasted; the store's blob must not.
        tokio::task::spawn_blocking(move || {
            let (mut out, _) = file_tree::create_file(&dir, &file)?;
            std::io::copy(&mut std::fs::File::open(source)?, &mut out)
        })
        .await
        .map_err(|error| error.to_string())?
        .map_err(|error| error.to_string())?;
    }
    Ok(file_uris::top_level(&files, &dir))
}

/// Removes what earlier pastes wrote under `root` more than a day ago (but not `keep`).
fn remove_older_pastes(root: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|metadata| metadata.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(24 * 3600));
        if old && entry.path() != keep {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Writes each value to the daemon's terminal. The terminal may stop reading (Ctrl-S, a stalled
/// ssh session), so writes happen on a blocking thread, one at a time, and values that arrive
/// meanwhile are coalesced into the newest — the async thread never waits for the terminal.
async fn follow_osc52(node: Node) {
    let mut node_events = node.clipboard().changes();
    tracing::info!("sending clipboard values to this terminal with OSC 52");
    let mut newest: Option<String> = None;
    let mut writing: Option<tokio::task::JoinHandle<std::io::Result<()>>> = None;
    loop {
        if writing.is_none()
            && let Some(text) = newest.take()
        {
            writing = Some(tokio::task::spawn_blocking(move || {
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(osc52(&text).as_bytes())?;
                stdout.flush()
            }));
        }
        tokio::select! {
            change = node_events.next() => match change {
                Some(ClipboardChange::Entry(entry)) => newest = Some(entry.text.to_string()),
                // The next value comes as usual; the skipped ones are older than it.
                Some(ClipboardChange::Lagged { .. }) => {}
                None => return,
            },
            written = async {
                match writing.as_mut() {
                    Some(task) => task.await,
                    None => std::future::pending().await,
                }
            } => {
                writing = None;
                if let Ok(Err(error)) | Err(error) = written.map_err(std::io::Error::other) {
                    tracing::warn!(%error, "could not write to the terminal; OSC 52 stops");
                    return;
                }
            }
        }
    }
}
