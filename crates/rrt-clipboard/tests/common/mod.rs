//! What the adapter tests share: an adapter run in its reactor and watched with deadlines,
//! programs run with deadlines, payloads.

#![allow(dead_code, unreachable_pub)]

pub mod sway;
pub mod xvfb;

use std::{
    io::{Read, Write},
    process::{Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use mio::Registry;
use rrt_clipboard::{ClipboardCommand, ClipboardEvent, Representation};
use rrt_reactor::{BoxError, ReactorEvent, Rrt, Subscription, TryRecvError, Worker};

/// How long anything a test waits for may take.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `condition` until it holds; panics naming `what` after [`DEADLINE`].
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let give_up = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < give_up, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Logs of the adapter under test, at `RUST_LOG`'s level (shown for failing tests).
pub fn log() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// `len` bytes that no layer could mistake for another payload (seeded, so a failure repeats).
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut bytes = vec![0; len];
    rng.fill(&mut bytes);
    bytes
}

/// A clipboard adapter running in its reactor, and a subscription to what it reports.
pub struct Adapter<W: Worker<Event = ClipboardEvent, Command = ClipboardCommand>> {
    rrt: Rrt<W>,
    events: Subscription<ClipboardEvent>,
}

impl<W: Worker<Event = ClipboardEvent, Command = ClipboardCommand>> Adapter<W> {
    /// Starts the adapter `factory` makes and waits until it runs.
    pub fn start<F, E>(factory: F) -> Self
    where
        F: Fn(&Registry) -> Result<W, E> + Send + Sync + 'static,
        E: Into<BoxError>,
    {
        let rrt = Rrt::new(factory);
        let mut events = rrt.subscribe();
        let give_up = Instant::now() + DEADLINE;
        loop {
            match events.try_recv() {
                Ok(ReactorEvent::Started { .. }) => break,
                Ok(ReactorEvent::Shutdown(reason)) => {
                    panic!("the adapter did not start: {reason:?}")
                }
                Ok(_) => {}
                Err(TryRecvError::Empty) => {
                    assert!(
                        Instant::now() < give_up,
                        "timed out waiting for the adapter"
                    );
                    thread::sleep(Duration::from_millis(10));
                }
                Err(error) => panic!("the adapter's events: {error}"),
            }
        }
        Self { rrt, events }
    }

    pub fn send(&self, command: ClipboardCommand) {
        self.rrt.send(command).expect("the adapter runs");
    }

    /// The next event `pick` accepts (others are dropped), within [`DEADLINE`].
    pub fn next<T>(&mut self, what: &str, mut pick: impl FnMut(ClipboardEvent) -> Option<T>) -> T {
        let give_up = Instant::now() + DEADLINE;
        loop {
            match self.events.try_recv() {
                Ok(ReactorEvent::Worker(event)) => {
                    if let Some(picked) = pick(event) {
                        return picked;
                    }
                }
                Ok(ReactorEvent::Shutdown(reason)) => panic!("the adapter stopped: {reason:?}"),
                Ok(ReactorEvent::Restarting { cause, .. }) => {
                    panic!("the adapter restarted: {cause}")
                }
                Ok(ReactorEvent::Started { .. }) => {}
                Err(TryRecvError::Empty) => {
                    assert!(Instant::now() < give_up, "timed out waiting for {what}");
                    thread::sleep(Duration::from_millis(10));
                }
                Err(error) => panic!("the adapter's events: {error}"),
            }
        }
    }

    /// The next value someone copied.
    pub fn copied(&mut self, what: &str) -> Vec<Representation> {
        self.copied_in(what).0
    }

    /// The next value someone copied, and the application it was copied in.
    pub fn copied_in(&mut self, what: &str) -> (Vec<Representation>, Option<String>) {
        self.next(what, |event| match event {
            ClipboardEvent::Copied {
                representations,
                application,
            } => Some((representations, application)),
            ClipboardEvent::Wanted { .. } => None,
        })
    }

    /// The next request for a `Later` value: its number and type.
    pub fn wanted(&mut self, what: &str) -> (u64, String) {
        self.next(what, |event| match event {
            ClipboardEvent::Wanted { request, mime } => Some((request, mime)),
            ClipboardEvent::Copied { .. } => None,
        })
    }

    /// Any event already published, for checking that none came.
    pub fn pending(&mut self) -> Vec<ClipboardEvent> {
        std::iter::from_fn(|| match self.events.try_recv() {
            Ok(ReactorEvent::Worker(event)) => Some(Some(event)),
            Ok(_) => Some(None),
            Err(_) => None,
        })
        .flatten()
        .collect()
    }
}

/// A program running in the background, its output collected.
pub struct Running {
    child: std::process::Child,
    stdout: Option<thread::JoinHandle<Vec<u8>>>,
    name: String,
}

impl Running {
    /// Starts `command` with `input` on its standard input (closed after it), collecting its
    /// output.
    pub fn spawn(command: &mut Command, input: Option<Vec<u8>>) -> Self {
        Self::start(command, input, true)
    }

    /// Starts `command` with `input` on its standard input, its output dropped: for programs
    /// that leave a child serving the clipboard behind (`xclip -i`, `wl-copy`), which would hold
    /// a pipe open.
    pub fn spawn_quiet(command: &mut Command, input: Option<Vec<u8>>) -> Self {
        Self::start(command, input, false)
    }

    fn start(command: &mut Command, input: Option<Vec<u8>>, capture: bool) -> Self {
        let name = format!("{command:?}");
        let mut child = command
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(if capture {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            thread::spawn(move || {
                let _ = stdin.write_all(&input);
            });
        }
        let stdout = child.stdout.take().map(|mut out| {
            thread::spawn(move || {
                let mut all = Vec::new();
                let _ = out.read_to_end(&mut all);
                all
            })
        });
        Self {
            child,
            stdout,
            name,
        }
    }

    /// Whether it has ended.
    pub fn ended(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_some()
    }

    /// Waits for it to end (killing it and failing the test after [`DEADLINE`]).
    pub fn finish(self) -> Output {
        self.finish_within(DEADLINE)
    }

    /// Waits for it to end, killing it and failing the test after `deadline`.
    pub fn finish_within(mut self, deadline: Duration) -> Output {
        let give_up = Instant::now() + deadline;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > give_up {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{} did not finish in time", self.name);
            }
            thread::sleep(Duration::from_millis(10));
        };
        let stdout = match self.stdout.take() {
            Some(stdout) => stdout.join().expect("stdout"),
            None => Vec::new(),
        };
        Output {
            status,
            stdout,
            stderr: Vec::new(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `command` to its end, within [`DEADLINE`].
pub fn run(command: &mut Command, input: Option<Vec<u8>>) -> Output {
    Running::spawn(command, input).finish()
}
