//! Virtual X servers for the system clipboard tests and benchmarks; `xclip`, and small X clients
//! of our own, to act as a user's programs.

use std::{
    io::Write,
    path::Path,
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant},
};

use x11rb::{
    CURRENT_TIME, NONE,
    connection::Connection,
    protocol::{
        Event,
        xfixes::{ConnectionExt as _, SelectionEventMask},
        xproto::{
            Atom, AtomEnum, ConnectionExt as _, CreateWindowAux, EventMask, PropMode,
            SELECTION_NOTIFY_EVENT, SelectionNotifyEvent, Window, WindowClass,
        },
    },
    rust_connection::RustConnection,
    wrapper::ConnectionExt as _,
};

use super::wait_until;

/// Display numbers handed out in this process, above any a developer's desktop uses.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// An `Xvfb` server, killed on drop.
pub struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    pub fn start() -> Self {
        loop {
            let number = 200 + (std::process::id() % 500) * 8 + NEXT.fetch_add(1, Ordering::SeqCst);
            if Path::new(&format!("/tmp/.X{number}-lock")).exists() {
                continue;
            }
            if let Some(server) = Self::serve(&format!(":{number}")) {
                return server;
            }
        }
    }

    /// An Xvfb on `display`, once it listens; `None` if it exited instead.
    fn serve(display: &str) -> Option<Self> {
        let child = Command::new("Xvfb")
            .arg(display)
            .args(["-nolisten", "tcp", "-screen", "0", "64x64x24"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (apt-get install xvfb)");
        let socket = format!("/tmp/.X11-unix/X{}", &display[1..]);
        let mut server = Self {
            child,
            display: display.to_owned(),
        };
        wait_until(&format!("Xvfb {display} to listen"), || {
            Path::new(&socket).exists() || server.child.try_wait().ok().flatten().is_some()
        });
        server
            .child
            .try_wait()
            .ok()
            .flatten()
            .is_none()
            .then_some(server)
    }

    /// Stops this server and starts a new one on the same display, as after a desktop restart.
    pub fn restart(&mut self) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("a pid");
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let _ = self.child.wait();
        let display = self.display.clone();
        wait_until("the old server to clean up", || {
            !Path::new(&format!("/tmp/.X{}-lock", &display[1..])).exists()
        });
        // The old child is reaped, so dropping it signals nothing.
        *self = Self::serve(&display).expect("a new server on the same display");
    }

    pub fn display(&self) -> &str {
        &self.display
    }

    /// Copies `text` as a user's program would: `xclip` owns the clipboard until replaced.
    pub fn copy(&self, text: &str) {
        self.xclip_in(&[], text.as_bytes());
    }

    /// Copies `bytes` as type `mime` only (an X target of that name), as `xclip -t` does.
    pub fn copy_type(&self, mime: &str, bytes: &[u8]) {
        self.xclip_in(&["-t", mime], bytes);
    }

    fn xclip_in(&self, args: &[&str], bytes: &[u8]) {
        let mut xclip = Command::new("xclip")
            .args(["-selection", "clipboard"])
            .args(args)
            .arg("-i")
            .env("DISPLAY", &self.display)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("xclip (apt-get install xclip)");
        xclip
            .stdin
            .take()
            .expect("stdin")
            .write_all(bytes)
            .expect("write to xclip");
        // xclip forks a child that serves the selection; the parent exits once it owns it.
        assert!(xclip.wait().expect("xclip").success());
    }

    /// What a program pasting type `mime` now would get (`None`: the clipboard does not offer
    /// it, or its owner refused). Fails the test if the paste has not ended within the deadline.
    pub fn paste_type(&self, mime: &str) -> Option<Vec<u8>> {
        let output = super::output_within(
            Command::new("xclip")
                .args(["-selection", "clipboard", "-o", "-t", mime])
                .env("DISPLAY", &self.display),
        );
        output.status.success().then_some(output.stdout)
    }

    /// What a program pasting now would get.
    pub fn paste(&self) -> Option<String> {
        let output = Command::new("xclip")
            .args(["-selection", "clipboard", "-o"])
            .env("DISPLAY", &self.display)
            .stderr(Stdio::null())
            .output()
            .expect("xclip");
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl Xvfb {
    /// Owns the clipboard with `text`, as a program that copied it — also offering the password
    /// manager's `x-kde-passwordManagerHint` when `secret` — and serves it from a thread until
    /// another owner takes over. Ownership is taken before this returns.
    pub fn own(&self, text: String, secret: bool) -> thread::JoinHandle<()> {
        let client = Client::owner(&self.display, None);
        thread::spawn(move || client.serve(text.as_bytes(), secret, None))
    }

    /// Owns the clipboard with `text` as the application `class` (its window's `WM_CLASS`),
    /// serving it from a thread until another owner takes over; the receiver hears each time
    /// the text is read.
    pub fn own_as(
        &self,
        text: String,
        class: &str,
    ) -> (thread::JoinHandle<()>, std::sync::mpsc::Receiver<()>) {
        let client = Client::owner(&self.display, Some(class));
        let (served, reads) = std::sync::mpsc::channel();
        let owner = thread::spawn(move || client.serve(text.as_bytes(), false, Some(served)));
        (owner, reads)
    }

    /// Owns the clipboard and never answers a request, as a hung program would.
    pub fn own_and_hang(&self) -> thread::JoinHandle<()> {
        let client = Client::owner(&self.display, None);
        thread::spawn(move || {
            while let Ok(event) = client.conn.wait_for_event() {
                if let Event::SelectionClear(_) = event {
                    return;
                }
            }
        })
    }

    /// Follows this display's clipboard as a pasting program would.
    pub fn reader(&self) -> ClipboardReader {
        let client = Client::connect(&self.display);
        client
            .conn
            .xfixes_query_version(5, 0)
            .expect("xfixes")
            .reply()
            .expect("xfixes version");
        client
            .conn
            .xfixes_select_selection_input(
                client.window,
                client.atoms.clipboard,
                SelectionEventMask::SET_SELECTION_OWNER,
            )
            .expect("select");
        client.conn.flush().expect("flush");
        ClipboardReader { client }
    }
}

struct Atoms {
    clipboard: Atom,
    targets: Atom,
    utf8: Atom,
    hint: Atom,
    property: Atom,
}

/// An X client with a window of its own.
struct Client {
    conn: RustConnection,
    window: Window,
    atoms: Atoms,
}

impl Client {
    fn connect(display: &str) -> Self {
        let (conn, screen) = x11rb::connect(Some(display)).expect("connect");
        let intern = |name: &[u8]| {
            conn.intern_atom(false, name)
                .expect("intern")
                .reply()
                .expect("atom")
                .atom
        };
        let atoms = Atoms {
            clipboard: intern(b"CLIPBOARD"),
            targets: intern(b"TARGETS"),
            utf8: intern(b"UTF8_STRING"),
            hint: intern(b"x-kde-passwordManagerHint"),
            property: intern(b"RRT_TEST"),
        };
        let window = conn.generate_id().expect("id");
        let root = conn.setup().roots[screen].root;
        conn.create_window(
            0,
            window,
            root,
            0,
            0,
            1,
            1,
            0,
            WindowClass::INPUT_ONLY,
            0,
            &CreateWindowAux::new(),
        )
        .expect("window");
        Self {
            conn,
            window,
            atoms,
        }
    }

    /// A client that owns the clipboard (from before this returns), as the application
    /// `class` if given (its window's `WM_CLASS`).
    fn owner(display: &str, class: Option<&str>) -> Self {
        let client = Self::connect(display);
        if let Some(class) = class {
            let value = format!("{}\0{class}\0", class.to_lowercase());
            client
                .conn
                .change_property8(
                    PropMode::REPLACE,
                    client.window,
                    AtomEnum::WM_CLASS,
                    AtomEnum::STRING,
                    value.as_bytes(),
                )
                .expect("WM_CLASS");
        }
        client
            .conn
            .set_selection_owner(client.window, client.atoms.clipboard, CURRENT_TIME)
            .expect("own");
        client.conn.flush().expect("flush");
        client
    }

    fn serve(self, value: &[u8], secret: bool, served: Option<std::sync::mpsc::Sender<()>>) {
        let Self { conn, atoms, .. } = self;
        while let Ok(event) = conn.wait_for_event() {
            match event {
                Event::SelectionRequest(request) => {
                    let mut targets = vec![atoms.targets, atoms.utf8];
                    if secret {
                        targets.push(atoms.hint);
                    }
                    let property = request.property;
                    let answered = if request.target == atoms.targets {
                        let targets = conn.change_property32(
                            PropMode::REPLACE,
                            request.requestor,
                            property,
                            AtomEnum::ATOM,
                            &targets,
                        );
                        targets.is_ok()
                    } else if request.target == atoms.utf8 || secret && request.target == atoms.hint
                    {
                        let bytes = if request.target == atoms.utf8 {
                            value
                        } else {
                            b"secret"
                        };
                        let text = conn.change_property8(
                            PropMode::REPLACE,
                            request.requestor,
                            property,
                            atoms.utf8,
                            bytes,
                        );
                        if let Some(served) = &served {
                            let _ = served.send(());
                        }
                        text.is_ok()
                    } else {
                        false
                    };
                    let notify = SelectionNotifyEvent {
                        response_type: SELECTION_NOTIFY_EVENT,
                        sequence: 0,
                        time: request.time,
                        requestor: request.requestor,
                        selection: request.selection,
                        target: request.target,
                        property: if answered { property } else { NONE },
                    };
                    let _ = conn.send_event(false, request.requestor, EventMask::NO_EVENT, notify);
                    let _ = conn.flush();
                }
                Event::SelectionClear(_) => {
                    // A round trip before closing: the server drops what a closing client sent
                    // but it has not processed yet — answers included.
                    let _ = conn.get_input_focus().map(|cookie| cookie.reply());
                    return;
                }
                _ => {}
            }
        }
    }
}

/// A pasting program that notices every new clipboard owner (XFixes).
pub struct ClipboardReader {
    client: Client,
}

impl ClipboardReader {
    /// The next value a new owner offers as UTF-8 text, within `timeout`.
    pub fn next_value(&self, timeout: Duration) -> Option<String> {
        let Client {
            conn,
            window,
            atoms,
        } = &self.client;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let Some(event) = conn.poll_for_event().expect("X connection") else {
                thread::sleep(Duration::from_micros(100));
                continue;
            };
            match event {
                Event::XfixesSelectionNotify(notify) if notify.owner != NONE => {
                    conn.convert_selection(
                        *window,
                        atoms.clipboard,
                        atoms.utf8,
                        atoms.property,
                        notify.timestamp,
                    )
                    .expect("convert");
                    conn.flush().expect("flush");
                }
                Event::SelectionNotify(answer) if answer.property != NONE => {
                    let reply = conn
                        .get_property(
                            true,
                            *window,
                            atoms.property,
                            AtomEnum::ANY,
                            0,
                            u32::MAX / 4,
                        )
                        .expect("get")
                        .reply()
                        .expect("property");
                    return Some(String::from_utf8_lossy(&reply.value).into_owned());
                }
                _ => {}
            }
        }
        None
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
