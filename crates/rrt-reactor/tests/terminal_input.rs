//! The terminal-input reactor driven through a real pseudo-terminal (and a pipe): the test plays
//! the terminal emulator on the master side and the reactor reads the slave side, as it would
//! read stdin.

use std::{
    os::fd::OwnedFd,
    time::{Duration, Instant},
};

use rrt_reactor::{
    ReactorEvent, Rrt, ShutdownReason, State, Subscription,
    terminal::{
        RawMode, TerminalInput,
        terminput::{Event, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEventKind},
    },
};
use rustix::{
    fs::{Mode, OFlags, fcntl_getfl},
    pty::{self, OpenptFlags},
    termios::{self, Winsize},
};

const DEADLINE: Duration = Duration::from_secs(10);

struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
    _raw: RawMode,
}

fn open_pty() -> Pty {
    let master = pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
    pty::grantpt(&master).expect("grantpt");
    pty::unlockpt(&master).expect("unlockpt");
    let name = pty::ptsname(&master, Vec::new()).expect("ptsname");
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY,
        Mode::empty(),
    )
    .expect("open the slave side");
    // As a TUI would: without raw mode the line discipline holds input until Enter.
    let raw = RawMode::enable(&slave).expect("raw mode");
    Pty {
        master,
        slave,
        _raw: raw,
    }
}

fn reactor_on(fd: &OwnedFd) -> Rrt<TerminalInput> {
    let fd = fd.try_clone().expect("dup");
    Rrt::new(move |registry: &mio::Registry| TerminalInput::new(registry, fd.try_clone()?))
}

fn type_bytes(master: &OwnedFd, bytes: &[u8]) {
    let mut written = 0;
    while written < bytes.len() {
        written += rustix::io::write(master, &bytes[written..]).expect("write to the terminal");
    }
}

async fn next(events: &mut Subscription<Event>) -> ReactorEvent<Event> {
    tokio::time::timeout(DEADLINE, events.recv())
        .await
        .expect("an event within the deadline")
        .expect("no lag")
}

/// The next input event, skipping lifecycle events and resizes (other tests in this process
/// raise SIGWINCH too).
async fn next_input(events: &mut Subscription<Event>) -> Event {
    loop {
        match next(events).await {
            ReactorEvent::Worker(Event::Resize { .. }) => continue,
            ReactorEvent::Worker(event) => return event,
            ReactorEvent::Shutdown(reason) => panic!("unexpected shutdown: {reason:?}"),
            _ => continue,
        }
    }
}

async fn shutdown(events: &mut Subscription<Event>) -> ShutdownReason {
    loop {
        if let ReactorEvent::Shutdown(reason) = next(events).await {
            return reason;
        }
    }
}

#[tokio::test]
async fn keys_mouse_and_paste_typed_into_a_pty_arrive_as_events() {
    let pty = open_pty();
    let reactor = reactor_on(&pty.slave);
    let mut events = reactor.subscribe();

    type_bytes(&pty.master, b"a");
    assert_eq!(
        next_input(&mut events).await,
        Event::Key(KeyCode::Char('a').into())
    );
    type_bytes(&pty.master, b"\x03");
    assert_eq!(
        next_input(&mut events).await,
        Event::Key(KeyEvent::new(KeyCode::Char('c')).modifiers(KeyModifiers::CTRL)),
        "raw mode: Ctrl-C is a key, not a signal"
    );
    type_bytes(&pty.master, b"\x1b[A\x1b[<0;10;5M");
    assert_eq!(
        next_input(&mut events).await,
        Event::Key(KeyCode::Up.into())
    );
    match next_input(&mut events).await {
        Event::Mouse(mouse) => {
            assert_eq!(mouse.kind, MouseEventKind::Down(MouseButton::Left));
            assert_eq!((mouse.column, mouse.row), (9, 4));
        }
        other => panic!("expected a mouse event, got {other:?}"),
    }
    type_bytes(&pty.master, b"\x1b[200~pasted\r\ntext\x1b[201~");
    assert_eq!(
        next_input(&mut events).await,
        Event::Paste("pasted\r\ntext".to_owned())
    );
    // An escape sequence split across two writes is still one key.
    type_bytes(&pty.master, b"\x1b[");
    type_bytes(&pty.master, b"B");
    assert_eq!(
        next_input(&mut events).await,
        Event::Key(KeyCode::Down.into())
    );
    // A lone ESC is the Esc key once the escape timeout passes.
    type_bytes(&pty.master, b"\x1b");
    assert_eq!(
        next_input(&mut events).await,
        Event::Key(KeyCode::Esc.into())
    );
}

#[tokio::test]
async fn resizing_the_pty_publishes_its_new_size() {
    let pty = open_pty();
    let reactor = reactor_on(&pty.slave);
    let mut events = reactor.subscribe();
    assert!(matches!(
        next(&mut events).await,
        ReactorEvent::Started { .. }
    ));

    let size = Winsize {
        ws_row: 42,
        ws_col: 117,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    termios::tcsetwinsize(&pty.master, size).expect("resize the pty");
    // The kernel signals the terminal's foreground process group, which a test process is not
    // part of; deliver the SIGWINCH a shell session would get.
    signal_hook::low_level::raise(signal_hook::consts::SIGWINCH).expect("raise SIGWINCH");

    let give_up = Instant::now() + DEADLINE;
    loop {
        assert!(
            Instant::now() < give_up,
            "no resize event with the new size"
        );
        if let ReactorEvent::Worker(Event::Resize { rows, cols }) = next(&mut events).await
            && (rows, cols) == (42, 117)
        {
            break;
        }
    }
}

#[tokio::test]
async fn a_hung_up_terminal_stops_the_reactor() {
    let pty = open_pty();
    let reactor = reactor_on(&pty.slave);
    let mut events = reactor.subscribe();
    type_bytes(&pty.master, b"x");
    assert_eq!(
        next_input(&mut events).await,
        Event::Key(KeyCode::Char('x').into())
    );
    let Pty {
        master,
        slave,
        _raw,
    } = pty;
    drop(master);
    assert!(matches!(
        shutdown(&mut events).await,
        ShutdownReason::Stopped
    ));
    assert_eq!(reactor.status().state, State::Stopped);
    drop((slave, _raw));
}

#[tokio::test]
async fn keys_typed_faster_than_they_are_read_wait_and_none_is_lost() {
    let (read_end, write_end) = rustix::pipe::pipe().expect("pipe");
    let reactor = reactor_on(&read_end);
    let mut events = reactor.subscribe();
    // Far more keys than the channel holds (1,024 events), typed while nobody reads them.
    let typed: Vec<u8> = (0..20_000).map(|i| b'a' + (i % 26) as u8).collect();
    type_bytes(&write_end, &typed);
    // Give a reactor that would overflow the channel every chance to (the outcome below is
    // the same however long this takes: keys wait in the pipe).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut received = Vec::with_capacity(typed.len());
    while received.len() < typed.len() {
        if let Event::Key(key) = next_input(&mut events).await {
            let terminput::KeyCode::Char(c) = key.code else {
                panic!("not a character: {key:?}");
            };
            received.push(c as u8);
        }
    }
    assert_eq!(received, typed, "every key, in order");
}

#[tokio::test]
async fn end_of_input_stops_the_reactor_and_restores_blocking_mode() {
    let (read_end, write_end) = rustix::pipe::pipe().expect("pipe");
    assert!(
        !fcntl_getfl(&read_end)
            .expect("flags")
            .contains(OFlags::NONBLOCK)
    );
    let reactor = reactor_on(&read_end);
    let mut events = reactor.subscribe();
    type_bytes(&write_end, b"hi");
    assert_eq!(
        next_input(&mut events).await,
        Event::Key(KeyCode::Char('h').into())
    );
    assert!(
        fcntl_getfl(&read_end)
            .expect("flags")
            .contains(OFlags::NONBLOCK),
        "non-blocking while the worker owns it"
    );
    assert_eq!(
        next_input(&mut events).await,
        Event::Key(KeyCode::Char('i').into())
    );
    drop(write_end);
    assert!(matches!(
        shutdown(&mut events).await,
        ShutdownReason::Stopped
    ));
    assert!(
        !fcntl_getfl(&read_end)
            .expect("flags")
            .contains(OFlags::NONBLOCK),
        "blocking mode restored when the worker was dropped"
    );
}
