//! `rrt daemon`: a [`Node`] in the foreground, serving its control socket until SIGINT or
//! SIGTERM, when it says goodbye to its peers and exits.

use std::{
    fs,
    net::SocketAddr,
    os::unix::fs::PermissionsExt,
    path::PathBuf,
    sync::{Arc, PoisonError, RwLock, atomic::AtomicU64},
    time::Duration,
};

use anyhow::{Context as _, bail};
use clap::Args;
use rrt_control::{
    Answer, ClipboardEvent, DocumentText, ErrorKind, HistoryEntry, PROTOCOL_VERSION, PeerTraffic,
    Refusal, Request, StateSnapshot, Status, Version,
};
use rrt_mesh::{
    ClipboardChange, ContentConfig, CopyError, Edit, EditError, HeartbeatConfig, Identity, MeshDir,
    Node, NodeEvent, PairError, Pairing, PausesError, PinError, ReadError, Relays, STATE, Stopped,
    TcpConfig, TcpSecurity, Ticket, TlsConfig, Topology, TrustStore, WanOptions,
};
use rrt_wire::{Compression, Format};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
    signal::unix::{SignalKind, signal},
    sync::Notify,
};

use crate::{
    Locate,
    accept_backoff::{AcceptBackoff, Pause},
    content_requests::{self, CopyFailed},
    control::{write_error, write_line, write_ok},
    never_share::NeverShare,
    replica,
    request_reader::{Limits, RequestBudget, read_request},
    system_clipboard::{self, SystemClipboard},
};

#[derive(Debug, Args)]
pub(crate) struct DaemonArgs {
    /// How often peers are pinged, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    heartbeat_ms: u64,
    /// How long a silent peer is tolerated before it is declared down, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    peer_timeout_ms: u64,
    /// How many clipboard entries to keep.
    #[arg(long, default_value_t = 50)]
    history: usize,
    /// How far ahead of this host's clock a peer's clipboard stamp may be, in milliseconds (at
    /// least 1000); a copy stamped further in the future is refused (and logged once per peer).
    #[arg(long, default_value_t = rrt_sync::DEFAULT_MAX_OFFSET_MS,
          value_parser = clap::value_parser!(u64).range(1000..))]
    max_clock_offset_ms: u64,
    /// How instances connect: `mesh` (everyone to everyone) or `hub` (everyone to one
    /// coordinator, taken over by another instance when it dies).
    #[arg(long, value_enum, default_value_t = TopologyArg::Mesh)]
    topology: TopologyArg,
    /// In the mesh topology: above this many members the mesh becomes a swarm — each instance
    /// links to a few others (HyParView) and broadcasts travel on a tree (Plumtree) — instead
    /// of everyone linking to everyone.
    #[arg(long, default_value_t = rrt_mesh::network::DEFAULT_SWARM_ABOVE)]
    swarm_above: usize,
    /// Use plain, unauthenticated TCP to other hosts instead of TLS — for a lab only: anyone who
    /// can reach the port can join.
    #[arg(long)]
    insecure: bool,
    /// A file holding the mesh's join secret: a device proving it (inside TLS, bound to the
    /// session) is let in and its key pinned; without it only trusted device ids get in.
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// This device's name for other hosts [default: the host name]
    #[arg(long)]
    device: Option<String>,
    /// Do not announce or browse for peers with mDNS (DNS-SD); `--peer` still works.
    #[arg(long)]
    no_mdns: bool,
    /// Do not listen for or dial other hosts at all.
    #[arg(long, conflicts_with_all = ["insecure", "listen", "peers", "secret_file"])]
    no_tcp: bool,
    /// Where to listen for peers on other hosts [default: 0.0.0.0:47474, else any free port]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// A peer on another host to connect to and keep reconnecting to (repeatable).
    #[arg(long = "peer", value_name = "HOST:PORT")]
    peers: Vec<String>,
    /// Which system clipboard follows the mesh and feeds it.
    #[arg(long, value_enum, default_value_t = SystemClipboard::Auto)]
    system_clipboard: SystemClipboard,
    /// The payload format this daemon proposes when it dials another instance (the other side
    /// follows): `msgpack` carries images and files as raw bytes, `json` as base64 — a third
    /// more bytes and much more work per byte; clients that dial the daemon choose their own.
    #[arg(long, value_enum, default_value_t = WireFormat::Msgpack)]
    wire_format: WireFormat,
    /// Images, HTML and files at most this large (like 16MiB) are fetched as soon as another
    /// device copies them; larger ones when something here pastes them.
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = parse_size)]
    eager_max: u64,
    /// The largest value of any kind shared or fetched.
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_size)]
    max_size: u64,
    /// How much the content store under the state directory keeps; past it, the least recently
    /// used values not current or pinned are removed.
    #[arg(long, value_name = "SIZE", default_value = "4GiB", value_parser = parse_size)]
    blob_quota: u64,
    /// Share a type or not, or cap it: `image/*=off`, `text/html=1MiB`, `image/png=on`
    /// (repeatable; the first that matches a type decides).
    #[arg(long = "share", value_name = "TYPE=off|on|SIZE")]
    share: Vec<rrt_mesh::TypeRule>,
    /// A relay for reaching devices on other networks, instead of iroh's public ones
    /// (repeatable; `rrt relay` serves one). `http://` for a lab relay, `https://` for a real
    /// one (which also lets hosts behind NAT learn their public address and punch through).
    #[arg(long = "relay", value_name = "URL", conflicts_with = "no_relay")]
    relays: Vec<rrt_mesh::RelayUrl>,
    /// Use no relay: devices on other networks are reached only at their direct addresses.
    #[arg(long)]
    no_relay: bool,
    /// A PEM file of certificates to trust for relays besides the usual roots (a self-hosted
    /// relay's self-signed certificate).
    #[arg(long, value_name = "FILE")]
    relay_ca: Option<PathBuf>,
    /// Do not run the wide-area transport (iroh): other networks are not reached, and
    /// `rrt invite`/`rrt join` do not work.
    #[arg(long, conflicts_with_all = ["relays", "no_relay", "relay_ca"])]
    no_wan: bool,
    /// The UDP address the wide-area transport binds [default: 0.0.0.0:0, any port]
    #[arg(long, value_name = "ADDR")]
    wan_listen: Option<SocketAddr>,
    /// Serve the daemon's counters (peers, traffic per peer, refusals, restarts, store sizes)
    /// as OpenMetrics at http://ADDR/metrics, for a Prometheus-style scraper; bind it to
    /// localhost (127.0.0.1:PORT): anyone who reaches it reads peer names.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Text never shared — from the desktop's clipboard or `rrt clip copy` — so it reaches no
    /// peer and no history: `private-keys`, `card-numbers`, `regex:PATTERN`, or `off`
    /// (repeatable; given, the list replaces the default).
    #[arg(
        long = "never-share",
        value_name = "RULE",
        default_values = ["private-keys", "card-numbers"]
    )]
    never_share: Vec<crate::never_share::Rule>,
    /// An application whose copies from the desktop are never shared (repeatable): its X11
    /// `WM_CLASS` class name, ignoring case (`KeePassXC`; `xprop WM_CLASS` shows it second). On
    /// Wayland nothing says which application copied (clients are kept apart by design): this
    /// has no effect there.
    #[arg(long = "never-share-from", value_name = "APP")]
    never_share_from: Vec<String>,
}

/// The documented default TCP port.
const DEFAULT_PORT: u16 = 47474;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum TopologyArg {
    Mesh,
    Hub,
}

pub(crate) fn run(locate: &Locate, args: DaemonArgs, config: crate::Config) -> anyhow::Result<()> {
    // One async thread: the actor, the control clients and the watch streams hand work to each
    // other without waking another thread; the reactor threads do the I/O.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(locate, args, config))
}

/// The settings SIGHUP changes while the daemon runs; the others take effect at the next start.
const LIVE_SETTINGS: &[&str] = &["never-share", "never-share-from", "peer"];

/// What SIGHUP replaces while the daemon runs.
struct Live {
    never_share: Arc<RwLock<NeverShare>>,
    never_share_from: Arc<RwLock<Vec<String>>>,
}

/// SIGHUP: the config file is read again. A file in error is reported and changes nothing; the
/// `never-share` and `never-share-from` rules and the `peer` list take effect at once (the flags
/// given at start still override the file); other changed settings are named as taking effect
/// at the next start (each is fixed when its part of the daemon starts). Returns the peers to
/// dial when the list changed (the caller sets them: in order, one SIGHUP after the other).
fn config_read_again(config: &mut crate::Config, live: &Live) -> Option<Vec<String>> {
    let now = match config.reread() {
        Ok(now) => now,
        Err(error) => {
            tracing::error!(
                %error,
                "the config file has an error; going on with the settings the daemon had"
            );
            return None;
        }
    };
    let settings = match crate::daemon_settings(now.as_ref()) {
        Ok(settings) => settings,
        Err(error) => {
            tracing::error!(
                %error,
                "the config file's settings do not go together; going on with the settings the daemon had"
            );
            return None;
        }
    };
    let changed = crate::config::changed(config.file(), now.as_ref());
    let (applied, later): (Vec<String>, Vec<String>) = changed
        .into_iter()
        .partition(|key| LIVE_SETTINGS.contains(&key.as_str()));
    *live
        .never_share
        .write()
        .unwrap_or_else(PoisonError::into_inner) = NeverShare::new(settings.never_share);
    *live
        .never_share_from
        .write()
        .unwrap_or_else(PoisonError::into_inner) = settings.never_share_from;
    if !applied.is_empty() {
        tracing::info!(path = %config.path().display(), ?applied, "config file read again: applied");
    }
    if !later.is_empty() {
        tracing::warn!(
            path = %config.path().display(),
            ?later,
            "config file read again: these settings changed, and take effect when the daemon starts again"
        );
    }
    if applied.is_empty() && later.is_empty() {
        tracing::info!(path = %config.path().display(), "config file read again: nothing changed");
    }
    config.replace_file(now);
    applied
        .iter()
        .any(|key| key == "peer")
        .then_some(settings.peers)
}

/// SIGHUP: the clipboard's pauses are read again from the trust store too (`rrt trust pause`
/// tells the daemons itself; this catches a daemon it could not reach).
async fn pauses_read_again(node: &Node) {
    match node.clipboard().read_pauses().await {
        Ok(pauses) => tracing::info!(
            receive = pauses.receive.len(),
            send = pauses.send.len(),
            "clipboard pauses read again"
        ),
        Err(error) => {
            tracing::error!(%error, "the clipboard pauses could not be read again; going on with those the daemon had")
        }
    }
}

async fn serve(locate: &Locate, args: DaemonArgs, mut config: crate::Config) -> anyhow::Result<()> {
    raise_open_file_limit();
    let pid = std::process::id();
    let state_dir = locate.state_dir();
    let name = locate
        .instance
        .clone()
        .unwrap_or_else(|| format!("{}-{pid}", hostname()));
    // Replaced by SIGHUP.
    let never_share = Arc::new(RwLock::new(NeverShare::new(args.never_share.clone())));
    let never_share_from = Arc::new(RwLock::new(args.never_share_from.clone()));
    let rules = Arc::clone(&never_share);
    let mut builder = Node::builder(locate.mesh.clone())
        .never_share(move |text| {
            rules
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .matching(text)
        })
        .name(name.clone())
        .state_dir(state_dir.clone())
        .heartbeat(HeartbeatConfig {
            interval: Duration::from_millis(args.heartbeat_ms.max(1)),
            timeout: Duration::from_millis(args.peer_timeout_ms.max(1)),
        })
        .history(args.history)
        .wire(rrt_wire::WireConfig {
            format: match args.wire_format {
                WireFormat::Json => Format::Json,
                WireFormat::Msgpack => Format::MessagePack,
            },
            ..rrt_wire::WireConfig::default()
        })
        .content(ContentConfig {
            eager_max: args.eager_max,
            max_size: args.max_size,
            quota: args.blob_quota,
            rules: args.share.clone(),
        })
        .max_clock_offset(Duration::from_millis(args.max_clock_offset_ms))
        .topology(match args.topology {
            TopologyArg::Mesh => Topology::Mesh,
            TopologyArg::Hub => Topology::Hub,
        })
        .swarm_above(args.swarm_above)
        .mdns(!args.no_mdns);
    if let Some(runtime_dir) = &locate.runtime_dir {
        builder = builder.runtime_dir(runtime_dir);
    }
    let dir = MeshDir::locate(locate.runtime_dir.as_deref(), &locate.mesh);
    let control_path = dir.control_socket(pid);
    builder = builder.control_socket(control_path.clone());
    let tcp = if args.no_tcp {
        None
    } else {
        let security = if args.insecure {
            TcpSecurity::Insecure
        } else {
            let secret = match &args.secret_file {
                Some(path) => Some(read_secret(path)?),
                None => None,
            };
            let trust = TrustStore::new(&state_dir);
            trust.set_aside_legacy().with_context(|| {
                format!(
                    "setting aside the older trust store {}",
                    trust.path().display()
                )
            })?;
            // Read at every handshake; a damaged one would refuse every peer, each with a line
            // in the log: say so once, before starting.
            trust.list().with_context(|| {
                format!(
                    "the trust store {} is unreadable; move it aside to start with no trusted devices (they join again by the join secret or `rrt trust add`)",
                    trust.path().display()
                )
            })?;
            TcpSecurity::Tls(TlsConfig {
                identity: Identity::load_or_create(&state_dir)?,
                device: args.device.clone().unwrap_or_else(hostname),
                trust,
                secret,
            })
        };
        Some(TcpConfig {
            listen: args
                .listen
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT))),
            fall_back_to_any_port: args.listen.is_none(),
            peers: args.peers,
            security,
            compression: Compression::Lz4,
        })
    };
    let tls = matches!(
        tcp.as_ref().map(|tcp| &tcp.security),
        Some(TcpSecurity::Tls(_))
    );
    if let Some(tcp) = tcp {
        builder = builder.tcp(tcp);
    }
    if !args.no_wan && tls {
        let relays = if args.no_relay {
            Relays::Disabled
        } else if args.relays.is_empty() {
            Relays::Public
        } else {
            Relays::Custom(args.relays.clone())
        };
        let relay_ca = match &args.relay_ca {
            Some(path) => read_certificates(path)?,
            None => Vec::new(),
        };
        builder = builder.wan(WanOptions {
            relays,
            relay_ca,
            bind: args
                .wan_listen
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
        });
    }
    let clipboard_choice = args.system_clipboard;
    let system_clipboard = clipboard_choice.backend()?;
    let adapter_restarts = Arc::new(AtomicU64::new(0));
    if matches!(
        system_clipboard,
        Some(rrt_clipboard::Backend::X11 | rrt_clipboard::Backend::Wayland)
    ) {
        builder = builder.reactor_restarts("system_clipboard", Arc::clone(&adapter_restarts));
    }
    let bridge = system_clipboard::BridgeConfig {
        limits: rrt_clipboard::ReadLimits {
            max_bytes: usize::try_from(args.max_size.min(MAX_READ_FROM_DESKTOP))
                .unwrap_or(usize::MAX),
        },
        pasted_files: state_dir.join(&locate.mesh).join("pasted"),
        max_size: args.max_size,
        never_share_from: Arc::clone(&never_share_from),
        restarts: adapter_restarts,
    };

    // Signals first: a SIGTERM during start-up must still end in a goodbye.
    let live = Live {
        never_share,
        never_share_from,
    };
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    // Bound before the node starts: an address in use refuses the start, before any peer sees
    // this instance.
    let metrics = match args.metrics {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("binding the metrics endpoint {address}"))?,
        ),
        None => None,
    };
    let node = builder.spawn().await.context("starting the node")?;
    if let Some(listener) = metrics {
        if let Ok(address) = listener.local_addr() {
            tracing::info!(%address, "serving metrics at http://{address}/metrics");
        }
        tokio::spawn(crate::metrics::serve(node.clone(), listener));
    }
    let _ = fs::remove_file(&control_path);
    let listener = UnixListener::bind(&control_path)
        .with_context(|| format!("binding {}", control_path.display()))?;
    fs::set_permissions(&control_path, fs::Permissions::from_mode(0o600))?;
    tracing::info!(%name, id = %node.id(), mesh = %locate.mesh, dir = %dir.path().display(), "rrt daemon running");
    match system_clipboard {
        Some(backend) => {
            let fallback = clipboard_choice == SystemClipboard::Auto;
            tokio::spawn(system_clipboard::follow(
                node.clone(),
                backend,
                fallback,
                bridge,
            ));
        }
        None => tracing::info!("not following a system clipboard"),
    }

    let mut events = node.events();
    // After a failed accept (out of descriptors, usually) accepting pauses until a client of
    // ours closes or the pause passes; see `accept_backoff`.
    let mut backoff = AcceptBackoff::default();
    let mut paused = false;
    let pause = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(pause);
    let client_closed = Arc::new(Notify::new());
    let budget = RequestBudget::daemon();
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            _ = hangup.recv() => {
                // Awaited here, not spawned: two SIGHUPs apply in the order they came.
                if let Some(peers) = config_read_again(&mut config, &live)
                    && let Err(error) = node.set_peers(peers).await
                {
                    tracing::error!(%error, "the config file's peers could not be applied");
                }
                pauses_read_again(&node).await;
            }
            accepted = listener.accept(), if !paused => match accepted {
                Ok((stream, _)) => {
                    if let Some(failures) = backoff.accepted(std::time::Instant::now()) {
                        tracing::info!(failures, "control socket accepting again");
                    }
                    let (node, closed) = (node.clone(), Arc::clone(&client_closed));
                    let budget = budget.clone();
                    tokio::spawn(async move {
                        serve_client(node, stream, budget).await;
                        closed.notify_waiters();
                    });
                }
                Err(error) => {
                    let Pause { duration, first } = backoff.failed(std::time::Instant::now());
                    if first {
                        tracing::warn!(
                            %error,
                            "control socket cannot accept; pausing (retrying when a client \
                             leaves, at least each second)"
                        );
                    }
                    pause.as_mut().reset(tokio::time::Instant::now() + duration);
                    paused = true;
                }
            },
            () = &mut pause, if paused => paused = false,
            () = client_closed.notified(), if paused => paused = false,
            event = events.next() => match event {
                Some(NodeEvent::Clipboard { entry }) => {
                    tracing::info!(bytes = entry.text.len(), types = entry.content.len(), origin = %entry.stamp.origin, "clipboard changed");
                }
                Some(NodeEvent::Lagged { missed }) => tracing::debug!(missed, "event log lagged"),
                Some(_) => {}
                // Only the node's end can close the stream: it stopped without being asked.
                None => {
                    let _ = fs::remove_file(&control_path);
                    bail!("the node stopped unexpectedly (see the log above); exiting");
                }
            },
        }
    }
    tracing::info!("leaving the mesh");
    let _ = fs::remove_file(&control_path);
    node.leave().await.context("leaving the mesh")
}

async fn serve_client(node: Node, stream: UnixStream, budget: RequestBudget) {
    match stream.peer_cred() {
        Ok(credentials) if credentials.uid() == rustix::process::getuid().as_raw() => {}
        Ok(credentials) => {
            tracing::warn!(
                uid = credentials.uid(),
                "refused a control connection from another user"
            );
            return;
        }
        Err(error) => {
            tracing::warn!(%error, "refused a control connection: no credentials");
            return;
        }
    }
    let (reader, mut writer) = stream.into_split();
    if let Err(error) = converse(&node, BufReader::new(reader), &mut writer, &budget).await {
        tracing::debug!(%error, "control client went away");
    }
}

/// Answers requests, one per line, in order, until the client closes its side or asks for a
/// stream (which then runs until either side goes away: see [`until_closed`]). A request that
/// cannot be read within the bounds of `request_reader` is answered with why, and the connection
/// closed.
async fn converse(
    node: &Node,
    mut reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: &mut (impl AsyncWriteExt + Unpin),
    budget: &RequestBudget,
) -> std::io::Result<()> {
    let mut answered = false;
    loop {
        // Held until the request is answered: its parsed form weighs what its line did.
        let mut charge = budget.charge();
        let read = read_request(&mut reader, &mut charge, answered, Limits::DAEMON).await;
        let request = match read {
            Ok(None) => return Ok(()),
            Ok(Some(line)) => Request::parse(&line),
            Err(error) => {
                tracing::debug!(%error, "control request refused");
                return write_error(writer, ErrorKind::Refused, error.to_string()).await;
            }
        };
        answered = true;
        let request = match request {
            Ok(request) => request,
            Err(refusal) => {
                write_line(writer, &Answer::<()>::Error(refusal)).await?;
                continue;
            }
        };
        if request.is_stream() {
            // A stream keeps nothing of its request but a name: its charge goes back now.
            drop(charge);
        }
        match request {
            Request::Invite { ttl_s } => {
                let pairing = node.invite(Duration::from_secs(ttl_s.clamp(1, 86_400)));
                return pair(pairing.map_err(failed), reader, writer).await;
            }
            Request::Join { ticket } => {
                let pairing = ticket
                    .parse::<Ticket>()
                    .map_err(|error| Refusal::new(ErrorKind::BadRequest, error.to_string()))
                    .and_then(|ticket| node.join(ticket).map_err(failed));
                return pair(pairing, reader, writer).await;
            }
            Request::Watch => return until_closed(reader, watch(node, writer)).await,
            Request::ScratchWatch { name } => {
                return until_closed(reader, watch_document(node, Some(name), writer)).await;
            }
            Request::StateWatch => {
                return until_closed(reader, watch_document(node, None, writer)).await;
            }
            Request::Open { name } => {
                return replica::serve(node, name, reader, writer, budget).await;
            }
            Request::CopyContent { items } => {
                match content_requests::copy_content(node, &mut reader, items).await {
                    Ok(entry) => write_ok(writer, entry).await?,
                    Err(CopyFailed::Refused(error)) => {
                        write_error(writer, ErrorKind::Failed, error).await?;
                    }
                    Err(CopyFailed::Upload(error)) => {
                        let error = format!("the upload failed: {error}");
                        return write_error(writer, ErrorKind::Refused, error).await;
                    }
                }
            }
            Request::PasteType { mime } => {
                content_requests::paste_type(node, writer, &mime).await?;
            }
            Request::Blob { hash, size } => {
                content_requests::blob(node, writer, hash, size).await?;
            }
            request => {
                let answer = match answer(node, request).await {
                    Ok(value) => Answer::Ok(value),
                    Err(refusal) => Answer::Error(refusal),
                };
                write_line(writer, &answer).await?;
            }
        }
    }
}

/// A pairing's stream: each event as a line, and the client's one `confirm` line passed on as
/// the person's answer. Ends after the outcome, or when the client goes (an unanswered
/// pairing is a no).
async fn pair(
    pairing: Result<Pairing, Refusal>,
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: &mut (impl AsyncWriteExt + Unpin),
) -> std::io::Result<()> {
    let Pairing {
        mut events,
        confirm,
    } = match pairing {
        Ok(pairing) => pairing,
        Err(refusal) => return write_line(writer, &Answer::<()>::Error(refusal)).await,
    };
    let mut confirm = Some(confirm);
    // A pairing's client sends one short line; `next_line` is cancel-safe, so a line read half
    // when an event is written is not lost, and `take` bounds what a client can make us hold.
    let mut lines = reader.take(MAX_PAIRING_INPUT).lines();
    let mut reading = true;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => write_ok(writer, event).await?,
                None => return Ok(()),
            },
            line = lines.next_line(), if reading => match line {
                Ok(Some(line)) => {
                    if let Ok(Request::Confirm { accepted }) = Request::parse(line.as_bytes())
                        && let Some(confirm) = confirm.take()
                    {
                        let _ = confirm.send(accepted);
                    }
                }
                Ok(None) | Err(_) => {
                    // The client left: no answer is a no.
                    reading = false;
                    confirm.take();
                }
            },
        }
    }
}

/// How many bytes a pairing's client may send after its request (one `confirm` line).
const MAX_PAIRING_INPUT: u64 = 64 * 1024;

/// A node's error, as the client reads it: a kind to match on, and the error's message.
trait Failure: std::fmt::Display {
    /// What kind of failure a client sees.
    fn kind(&self) -> ErrorKind {
        ErrorKind::Failed
    }
}

impl Failure for Stopped {}
impl Failure for CopyError {}
impl Failure for PinError {}
impl Failure for EditError {}
impl Failure for PairError {}
impl Failure for PausesError {}
/// An error already told as a message.
impl Failure for String {}
impl Failure for ReadError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Stopped(_) => ErrorKind::Failed,
        }
    }
}

/// A node's failure as the client reads it.
fn failed(error: impl Failure) -> Refusal {
    Refusal::new(error.kind(), error.to_string())
}

/// Answers a request of one line.
async fn answer(node: &Node, request: Request) -> Result<serde_json::Value, Refusal> {
    match request {
        Request::Version => json(Ok::<_, Stopped>(Version {
            protocol: PROTOCOL_VERSION,
            rrt: env!("CARGO_PKG_VERSION").to_owned(),
        })),
        Request::Peers => json(node.peers().await),
        Request::Status => {
            let node_status = node.status().await.map_err(failed)?;
            let traffic = node
                .peers()
                .await
                .map_err(failed)?
                .peers
                .into_iter()
                .filter_map(|peer| {
                    peer.traffic.map(|traffic| PeerTraffic {
                        id: peer.peer.id,
                        name: peer.peer.name,
                        traffic,
                    })
                })
                .collect();
            json(Ok::<_, Stopped>(Status {
                node: node_status,
                wan: node.wan_status().await,
                traffic,
            }))
        }
        Request::Copy { text } => json(node.clipboard().copy_value(through_control(text)).await),
        Request::CopyFiles { paths } => json(content_requests::copy_files(node, paths).await),
        Request::Paste => json(node.clipboard().current().await),
        Request::Why => json(node.clipboard().why().await),
        Request::ReadPauses => json(node.clipboard().read_pauses().await),
        Request::History => history(node).await,
        Request::CopyAgain { stamp } => {
            let history = node.clipboard().history().await.map_err(failed)?;
            let entry = history
                .into_iter()
                .find(|entry| entry.stamp == stamp)
                .ok_or_else(|| {
                    Refusal::new(ErrorKind::NotFound, "no history entry has that stamp")
                })?;
            let copied = rrt_sync::Copied {
                text: entry.text.to_string(),
                content: entry.content,
                provenance: Some(rrt_sync::Provenance::through(THROUGH_CONTROL)),
            };
            json(node.clipboard().copy_value(copied).await)
        }
        Request::Pin { stamp, pinned } => json(node.clipboard().pin(stamp, pinned).await),
        Request::ScratchList => json(node.documents().await),
        Request::ScratchCat { name } => json(node.document(name).text().await),
        Request::ScratchAppend { name, text } => json(node.document(name).append(text).await),
        Request::ScratchReplace { name, text, base } => {
            let edit = match base {
                Some(base) => Edit::ReplaceFrom { base, text },
                None => Edit::Replace(text),
            };
            json(node.document(name).edit(edit).await)
        }
        Request::ScratchInsert {
            name,
            at,
            text,
            base,
        } => edit_and_read(node, &name, Edit::Insert { at, text, base }).await,
        Request::ScratchDelete {
            name,
            at,
            len,
            base,
        } => edit_and_read(node, &name, Edit::Delete { at, len, base }).await,
        Request::StateList => json(node.document(STATE).entries().await),
        Request::StateSet { key, value } => json(node.document(STATE).set(key, value).await),
        Request::StateDel { key } => json(node.document(STATE).remove(key).await),
        Request::Confirm { .. } => Err(Refusal::new(
            ErrorKind::BadRequest,
            "nothing to confirm: no pairing under way",
        )),
        Request::Update { .. } | Request::Presence { .. } => Err(Refusal::new(
            ErrorKind::BadRequest,
            "updates and presence belong in an `open` stream",
        )),
        // Streams and raw requests are served by `converse`.
        Request::Watch
        | Request::ScratchWatch { .. }
        | Request::StateWatch
        | Request::Open { .. }
        | Request::Invite { .. }
        | Request::Join { .. }
        | Request::CopyContent { .. }
        | Request::PasteType { .. }
        | Request::Blob { .. } => Err(Refusal::new(
            ErrorKind::BadRequest,
            "this request is served as a stream or with raw bytes",
        )),
    }
}

/// The history, newest first, each entry marked when pinned.
async fn history(node: &Node) -> Result<serde_json::Value, Refusal> {
    let clipboard = node.clipboard();
    let history = clipboard.history().await.map_err(failed)?;
    let pinned = clipboard.pinned().await.map_err(failed)?;
    json(Ok::<_, Stopped>(
        history
            .into_iter()
            .map(|entry| HistoryEntry {
                pinned: pinned.contains(&entry.stamp),
                entry,
            })
            .collect::<Vec<_>>(),
    ))
}

/// Applies `edit` and answers with the text after it (and after anything applied before it).
async fn edit_and_read(node: &Node, name: &str, edit: Edit) -> Result<serde_json::Value, Refusal> {
    let document = node.document(name);
    document.edit(edit).await.map_err(failed)?;
    json(document.text().await)
}

fn json(value: Result<impl serde::Serialize, impl Failure>) -> Result<serde_json::Value, Refusal> {
    let value = value.map_err(failed)?;
    serde_json::to_value(value).map_err(|error| Refusal::new(ErrorKind::Failed, error.to_string()))
}

/// Runs `stream` until it ends or the client closes its side (an end of file: shutting down
/// writing counts as leaving). A stream only writes, so without this a client that left would
/// hold its descriptor until a change failed to reach it — for a quiet document, forever. What
/// a client sends during a stream is read and ignored.
async fn until_closed(
    mut reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    stream: impl Future<Output = std::io::Result<()>>,
) -> std::io::Result<()> {
    let closed = async {
        loop {
            let read = reader.fill_buf().await?.len();
            if read == 0 {
                return Ok(());
            }
            reader.consume(read);
        }
    };
    tokio::select! {
        result = stream => result,
        result = closed => result,
    }
}

/// Streams the current value, then every change. Subscribing before reading the current value
/// leaves no gap in which a change could be missed.
async fn watch(node: &Node, writer: &mut (impl AsyncWriteExt + Unpin)) -> std::io::Result<()> {
    let clipboard = node.clipboard();
    let mut changes = clipboard.changes();
    if let Ok(Some(current)) = clipboard.current().await {
        write_ok(writer, ClipboardEvent::Entry(current)).await?;
    }
    while let Some(change) = changes.next().await {
        match change {
            ClipboardChange::Entry(entry) => {
                write_ok(writer, ClipboardEvent::Entry(entry)).await?;
            }
            ClipboardChange::Lagged { missed } => {
                write_ok(writer, ClipboardEvent::Lagged { missed }).await?;
            }
        }
    }
    Ok(())
}

/// Streams a document's text (`Some(name)`) or the app state (`None`): now, then after each
/// change (once for a run of changes the stream fell behind on).
async fn watch_document(
    node: &Node,
    name: Option<String>,
    writer: &mut (impl AsyncWriteExt + Unpin),
) -> std::io::Result<()> {
    let document = node.document(name.as_deref().unwrap_or(STATE));
    let mut changes = document.changes();
    let current = || async {
        match &name {
            Some(name) => serde_json::to_value(DocumentText {
                document: name.clone(),
                text: document.text().await.unwrap_or_default(),
            }),
            None => serde_json::to_value(StateSnapshot {
                state: document.entries().await.unwrap_or_default(),
            }),
        }
        .unwrap_or_default()
    };
    write_ok(writer, current().await).await?;
    while changes.next().await.is_some() {
        write_ok(writer, current().await).await?;
    }
    Ok(())
}

/// A payload format, as `--wire-format` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum WireFormat {
    Json,
    Msgpack,
}

/// The most read into memory of one type a desktop program offers (a screenshot is a few MB;
/// a larger value is better copied with `rrt clip copy --file`).
const MAX_READ_FROM_DESKTOP: u64 = 256 << 20;

fn parse_size(text: &str) -> Result<u64, String> {
    rrt_mesh::parse_size(text)
        .ok_or_else(|| format!("{text:?} is not a size (like 512KiB, 16MiB, 1GiB)"))
}

/// Every peer is a file descriptor: take the hard limit, so that a flood of idle connections
/// (each closed after the handshake deadline) cannot starve real peers at the soft limit of 1,024.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(error) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!(%error, "could not raise the open-file limit");
        }
    }
}

/// Reads the join secret, refusing a file that is not [`private`].
/// The certificates of a PEM file (`--relay-ca`).
fn read_certificates(
    path: &std::path::Path,
) -> anyhow::Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    use rustls::pki_types::{CertificateDer, pem::PemObject as _};
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("reading the relay certificates {}", path.display()))?;
    if certificates.is_empty() {
        bail!("{} holds no PEM certificate", path.display());
    }
    Ok(certificates)
}

fn read_secret(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use std::{io::Read as _, os::unix::fs::MetadataExt as _};
    let reading = || format!("reading the join secret {}", path.display());
    let mut file = fs::File::open(path).with_context(reading)?;
    // The mode and owner of the file opened, not of whatever the path names a moment later.
    let metadata = file.metadata().with_context(reading)?;
    let (mode, owner, ours) = (metadata.mode(), metadata.uid(), rustix::process::getuid());
    // Another user's file is theirs to read and to change: a secret they know. (As ssh, a file
    // of root's is fine: no one but root could change it.)
    if owner != ours.as_raw() && owner != 0 {
        bail!(
            "the join secret {path} belongs to uid {owner}, not to us (uid {ours}); use a file of \
             your own",
            path = path.display(),
            ours = ours.as_raw(),
        );
    }
    if !private(mode) {
        bail!(
            "the join secret {path} is open to other users (mode {mode:04o}), and whoever reads \
             it can join the mesh; make it yours alone with `chmod 600 {path}`",
            path = path.display(),
            mode = mode & 0o7777,
        );
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).with_context(reading)?;
    let secret = bytes.trim_ascii().to_vec();
    if secret.len() < 16 {
        anyhow::bail!(
            "the join secret in {} is shorter than 16 bytes",
            path.display()
        );
    }
    Ok(secret)
}

/// Whether a secret file's mode keeps it to its owner: no access at all for the group or others,
/// as ssh demands of a private key — the join secret is as good as one (whoever has it joins),
/// and a group is rarely as small as it looks.
fn private(mode: u32) -> bool {
    mode & 0o077 == 0
}

fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// How a value copied through the control socket is said to be copied.
pub(crate) const THROUGH_CONTROL: &str = "control";

/// `text`, copied through the control socket (`rrt clip copy`, the TUI, any client).
fn through_control(text: String) -> rrt_sync::Copied {
    rrt_sync::Copied {
        provenance: Some(rrt_sync::Provenance::through(THROUGH_CONTROL)),
        ..text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_private_only_when_neither_group_nor_others_have_any_access() {
        for mode in [0o100600, 0o100400, 0o100700, 0o100200] {
            assert!(private(mode), "{mode:o}");
        }
        for mode in [0o100644, 0o100640, 0o100604, 0o100620, 0o100601, 0o100610] {
            assert!(!private(mode), "{mode:o}");
        }
    }
}
