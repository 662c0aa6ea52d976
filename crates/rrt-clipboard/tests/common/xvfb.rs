//! Virtual X servers (`Xvfb`), and `xclip` to act as a user's programs.

use std::{
    path::Path,
    process::{Child, Command, Output, Stdio},
    sync::{
        atomic::{AtomicU32, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use x11rb::{
    CURRENT_TIME, NONE,
    connection::Connection,
    protocol::{
        Event,
        xproto::{
            Atom, AtomEnum, ConnectionExt as _, CreateWindowAux, EventMask, PropMode,
            SELECTION_NOTIFY_EVENT, SelectionNotifyEvent, Window, WindowClass,
        },
    },
    rust_connection::RustConnection,
    wrapper::ConnectionExt as _,
};

use super::{DEADLINE, Running, run, wait_until};

/// Display numbers handed out in this process, above any a developer's desktop uses (and apart
/// from those of the `rrt` crate's tests, which start at 200).
static NEXT: AtomicU32 = AtomicU32::new(0);

/// An `Xvfb` server, killed on drop.
pub struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    pub fn start() -> Self {
        loop {
            let number =
                4200 + (std::process::id() % 500) * 8 + NEXT.fetch_add(1, Ordering::SeqCst);
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

    pub fn display(&self) -> &str {
        &self.display
    }

    fn xclip(&self, args: &[&str]) -> Command {
        let mut command = Command::new("xclip");
        command
            .args(["-selection", "clipboard"])
            .args(args)
            .env("DISPLAY", &self.display);
        command
    }

    /// Copies `data` as `mime`, as a user's program would: `xclip` owns the clipboard until
    /// replaced (it forks a child that serves it; the parent exits once it owns it).
    pub fn copy(&self, mime: &str, data: Vec<u8>) {
        let copied = Running::spawn_quiet(&mut self.xclip(&["-t", mime, "-i"]), Some(data));
        assert!(copied.finish().status.success(), "xclip -i");
    }

    /// What a program pasting `target` now would get (`xclip -o -t target`).
    pub fn paste(&self, target: &str) -> Output {
        run(&mut self.xclip(&["-o", "-t", target]), None)
    }

    /// Starts pasting `target`, for a paste that waits.
    pub fn start_paste(&self, target: &str) -> Running {
        Running::spawn(&mut self.xclip(&["-o", "-t", target]), None)
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small X client of our own, for what `xclip` cannot do: own the clipboard with several
/// types at once, and look at how an answer comes (whole or INCR).
pub struct Client {
    conn: RustConnection,
    window: Window,
    clipboard: Atom,
    property: Atom,
}

impl Client {
    pub fn connect(x: &Xvfb) -> Self {
        let (conn, screen) = x11rb::connect(Some(x.display())).expect("connect");
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
        let clipboard = intern(&conn, "CLIPBOARD");
        let property = intern(&conn, "RRT_TEST");
        Self {
            conn,
            window,
            clipboard,
            property,
        }
    }

    /// Names this client's window's application, as toolkits do: `WM_CLASS` is the instance
    /// and the class, each ended by a NUL.
    pub fn named(self, instance: &str, class: &str) -> Self {
        let value = format!("{instance}\0{class}\0");
        self.conn
            .change_property8(
                PropMode::REPLACE,
                self.window,
                AtomEnum::WM_CLASS,
                AtomEnum::STRING,
                value.as_bytes(),
            )
            .expect("WM_CLASS");
        self.conn.flush().expect("flush");
        self
    }

    /// Owns the clipboard with `values` (target name and bytes, each small enough for one
    /// property) and serves them from a thread until another owner takes over. Ownership is
    /// taken before this returns; each target asked for is sent to the receiver returned.
    pub fn own(self, values: Vec<(&str, Vec<u8>)>) -> mpsc::Receiver<Atom> {
        let values: Vec<(Atom, Vec<u8>)> = values
            .into_iter()
            .map(|(name, data)| (intern(&self.conn, name), data))
            .collect();
        let targets_atom = intern(&self.conn, "TARGETS");
        self.conn
            .set_selection_owner(self.window, self.clipboard, CURRENT_TIME)
            .expect("own");
        self.conn.flush().expect("flush");
        let (asked, asks) = mpsc::channel();
        thread::spawn(move || {
            let conn = self.conn;
            while let Ok(event) = conn.wait_for_event() {
                match event {
                    Event::SelectionRequest(request) => {
                        let _ = asked.send(request.target);
                        let answered = if request.target == targets_atom {
                            let mut targets = vec![targets_atom];
                            targets.extend(values.iter().map(|(atom, _)| *atom));
                            conn.change_property32(
                                PropMode::REPLACE,
                                request.requestor,
                                request.property,
                                AtomEnum::ATOM,
                                &targets,
                            )
                            .is_ok()
                        } else if let Some((atom, data)) =
                            values.iter().find(|(atom, _)| *atom == request.target)
                        {
                            conn.change_property8(
                                PropMode::REPLACE,
                                request.requestor,
                                request.property,
                                *atom,
                                data,
                            )
                            .is_ok()
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
                            property: if answered { request.property } else { NONE },
                        };
                        let _ =
                            conn.send_event(false, request.requestor, EventMask::NO_EVENT, notify);
                        let _ = conn.flush();
                    }
                    Event::SelectionClear(_) => {
                        // A round trip before closing: the server drops what a closing client
                        // sent but it has not processed yet — answers included.
                        let _ = conn.get_input_focus().map(|cookie| cookie.reply());
                        return;
                    }
                    _ => {}
                }
            }
        });
        asks
    }

    /// The atom of `name`.
    pub fn atom(&self, name: &str) -> Atom {
        intern(&self.conn, name)
    }

    /// The type of the clipboard owner's answer for `target` (`INCR` for a value sent in
    /// chunks), without taking the value; `None` if refused.
    pub fn answer_type(&self, target: &str) -> Option<String> {
        let target = intern(&self.conn, target);
        self.conn
            .convert_selection(
                self.window,
                self.clipboard,
                target,
                self.property,
                CURRENT_TIME,
            )
            .expect("convert");
        self.conn.flush().expect("flush");
        let give_up = Instant::now() + DEADLINE;
        let answer = loop {
            match self.conn.poll_for_event().expect("X connection") {
                Some(Event::SelectionNotify(answer)) => break answer,
                Some(_) => {}
                None => {
                    assert!(Instant::now() < give_up, "timed out waiting for an answer");
                    thread::sleep(Duration::from_millis(10));
                }
            }
        };
        if answer.property == NONE {
            return None;
        }
        let reply = self
            .conn
            .get_property(false, self.window, self.property, AtomEnum::ANY, 0, 1)
            .expect("get")
            .reply()
            .expect("property");
        let name = self
            .conn
            .get_atom_name(reply.type_)
            .expect("name")
            .reply()
            .expect("atom name");
        Some(String::from_utf8_lossy(&name.name).into_owned())
    }
}

fn intern(conn: &RustConnection, name: &str) -> Atom {
    conn.intern_atom(false, name.as_bytes())
        .expect("intern")
        .reply()
        .expect("atom")
        .atom
}
