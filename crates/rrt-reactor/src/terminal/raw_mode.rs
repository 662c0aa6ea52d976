//! Putting a terminal into raw mode for as long as a guard lives.

use std::{
    io,
    os::fd::{AsFd, OwnedFd},
};

use rustix::termios::{self, OptionalActions, Termios};

/// Raw mode on a terminal (no line buffering, no echo, no signal keys) until dropped, when the
/// original settings come back.
///
/// Raw mode is what lets a [`TerminalInput`](super::TerminalInput) see each key as it is pressed.
#[derive(Debug)]
pub struct RawMode {
    fd: OwnedFd,
    original: Termios,
}

impl RawMode {
    /// Switches the terminal behind `fd` (usually stdin) to raw mode.
    pub fn enable(fd: impl AsFd) -> io::Result<Self> {
        let fd = fd.as_fd().try_clone_to_owned()?;
        let original = termios::tcgetattr(&fd)?;
        let mut raw = original.clone();
        raw.make_raw();
        termios::tcsetattr(&fd, OptionalActions::Now, &raw)?;
        Ok(Self { fd, original })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Err(error) = termios::tcsetattr(&self.fd, OptionalActions::Now, &self.original) {
            tracing::warn!(%error, "could not restore the terminal's settings");
        }
    }
}
