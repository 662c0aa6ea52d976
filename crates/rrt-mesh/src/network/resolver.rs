//! `--peer HOST:PORT` lookups off the reactor thread: `getaddrinfo` blocks for as long as DNS
//! takes, and the reactor thread must never block. A helper thread, started at the first
//! lookup, resolves one target at a time; it hands each result back through a channel and
//! writes a byte to a socket the reactor polls, which wakes the worker to take it.
//!
//! ```text
//!  worker ──resolve(address)──▶ channel ──▶ helper thread: to_socket_addrs
//!  worker ◀──drain() (on wake) ◀── channel ◀──┘ + one byte on the wake socket
//! ```

use std::{
    io::{self, Read, Write},
    net::{SocketAddr, ToSocketAddrs},
    sync::mpsc,
    thread,
};

use mio::{Interest, Registry, Token, net::UnixStream};

/// A lookup's outcome: the target as configured, and its first address or why none.
pub(super) type Resolved = (String, Result<SocketAddr, String>);

/// The helper thread, once started.
struct Helper {
    requests: mpsc::Sender<String>,
    results: mpsc::Receiver<Resolved>,
    wake: UnixStream,
}

/// Lookups of host names for the worker.
pub(super) struct Resolver {
    token: Token,
    helper: Option<Helper>,
}

impl Resolver {
    /// Lookups whose results wake the poll under `token`.
    pub(super) fn new(token: Token) -> Self {
        Self {
            token,
            helper: None,
        }
    }

    /// Starts resolving `address`; the result comes from [`Resolver::drain`] once the poll
    /// reports the token readable.
    pub(super) fn resolve(&mut self, address: String, registry: &Registry) -> io::Result<()> {
        let helper = match &mut self.helper {
            Some(helper) => helper,
            None => self.helper.insert(start(registry, self.token)?),
        };
        helper
            .requests
            .send(address)
            .map_err(|_| io::Error::other("the resolver thread is gone"))
    }

    /// Every lookup finished since the last call.
    pub(super) fn drain(&mut self) -> Vec<Resolved> {
        let Some(helper) = &mut self.helper else {
            return Vec::new();
        };
        let mut bytes = [0; 64];
        // Edge-triggered: empty the wake socket before taking the results it announced.
        while matches!(helper.wake.read(&mut bytes), Ok(read) if read > 0) {}
        helper.results.try_iter().collect()
    }
}

fn start(registry: &Registry, token: Token) -> io::Result<Helper> {
    let (mut wake, mut waker) = UnixStream::pair()?;
    registry.register(&mut wake, token, Interest::READABLE)?;
    let (requests, to_resolve) = mpsc::channel::<String>();
    let (resolved, results) = mpsc::channel();
    thread::Builder::new()
        .name("rrt-resolve".to_owned())
        .spawn(move || {
            // Ends when the worker (the requests' sender) is dropped.
            for address in to_resolve {
                let result = lookup(&address);
                if resolved.send((address, result)).is_err() {
                    return;
                }
                // A full socket already holds a wake-up: nothing is lost by skipping this one.
                let _ = waker.write(&[1]);
            }
        })?;
    Ok(Helper {
        requests,
        results,
        wake,
    })
}

fn lookup(address: &str) -> Result<SocketAddr, String> {
    address
        .to_socket_addrs()
        .map_err(|error| error.to_string())?
        .next()
        .ok_or_else(|| format!("{address} resolves to no address"))
}
