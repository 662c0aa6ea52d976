//! How links come to be, as a sans-IO machine: which peer to dial, when, and when to try again.
//! The worker performs what [`Dialer::poll_action`] asks and reports how it went; the dialer
//! never touches a socket, a clock or the file system, so each rule is a unit test.
//!
//! ```text
//!  peer-<pid>.sock seen ─▶ handle_peer_socket ─┐            ┌▶ DialUnix { pid } ─▶ handle_unix_dialed
//!  --peer HOST:PORT (new, or set again) ───────┤            ├▶ Clean { pid }    (a dead process's socket)
//!  NetCommand::Discovered / Forget ────────────┼─▶ Dialer ──┼▶ Resolve { address } ─▶ handle_resolved
//!  links opened and closed, peers up and down ─┤            └▶ DialTcp { address, to } ─▶ handle_tcp_dialed
//!  poll_timeout / handle_timeout(now) ─────────┘
//! ```
//!
//! The rules:
//! * Same host, full mesh: of two processes the lower pid dials, once per peer socket; a socket
//!   can appear a moment before its process listens, so a refused dial is retried
//!   [`DIAL_ATTEMPTS`] times, [`DIAL_BACKOFF`] more apart each time. A dead process's socket is
//!   cleaned instead. A same-host link that ends (a heartbeat timeout, a reader too slow) is
//!   dialed again after [`REDIAL`] by the lower pid, as long as the peer's process lives: the
//!   instances of a host must stay fully linked, since what one of them sends it sends to every
//!   sibling itself and none passes it on to another (the sync machines' clique rule).
//! * `--peer HOST:PORT` targets are dialed for as long as they are configured, whenever they
//!   have no link, with a backoff from 250 ms doubling to 5 s (reset once a link says hello);
//!   a target whose peer is already up by another link is looked at again later. A host name is
//!   resolved by the worker off the reactor thread, an address literal is dialed as it is. The
//!   targets may be set again while running (the config file read again): a new one is dialed
//!   at once; one no longer listed is not dialed again — dropped at once without a link, when
//!   its link ends otherwise (a live link is not cut: the peer may want it too).
//! * Discovered addresses are dialed like `--peer` targets while discovery lists them; once it
//!   no longer does, a target without a link is dropped and one with a link is dropped when the
//!   link ends. In a swarm a discovered address is a way in, not a link to keep: it is dialed
//!   only while no peer is up. The swarm's own dials to other hosts are one-off.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    net::SocketAddr,
    time::{Duration, Instant},
};

use uuid::Uuid;

use crate::proto::membership::LinkId;

/// A peer's socket can appear a moment before it listens: retry refused dials this many times.
pub(super) const DIAL_ATTEMPTS: u32 = 20;
/// The wait before the first retry of a refused dial; the n-th waits n times this.
pub(super) const DIAL_BACKOFF: Duration = Duration::from_millis(25);
/// The wait before dialing again a same-host peer whose link ended.
pub(super) const REDIAL: Duration = Duration::from_millis(250);
/// The first and the longest wait between attempts to reach a `--peer` or discovered target.
const TARGET_BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(5));

/// What the worker must do for the dialer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Action {
    /// Connect to `peer-<pid>.sock`; report with [`Dialer::handle_unix_dialed`].
    DialUnix {
        /// The peer's process.
        pid: u32,
    },
    /// The process behind `peer-<pid>.sock` is dead: remove its sockets.
    Clean {
        /// The dead process.
        pid: u32,
    },
    /// Resolve the `HOST:PORT` target `address` (off the reactor thread: a lookup may block);
    /// report with [`Dialer::handle_resolved`].
    Resolve {
        /// The target, as configured.
        address: String,
    },
    /// Connect to `to` for the target `address`; report with [`Dialer::handle_tcp_dialed`].
    DialTcp {
        /// The target, as configured or discovered.
        address: String,
        /// Where it resolved to.
        to: SocketAddr,
    },
}

/// How a dial of a peer socket went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UnixDialed {
    /// Connected: the link.
    Linked(LinkId),
    /// Connected to a socket that is not ours (another user's), or could not watch the
    /// connection: never retried.
    Abandoned,
    /// The connect failed; `alive` tells whether the process still runs.
    Failed {
        /// Whether the peer's process is alive.
        alive: bool,
    },
}

/// A planned dial of a peer socket.
#[derive(Debug, Clone, Copy)]
struct UnixDial {
    pid: u32,
    at: Instant,
    attempt: u32,
}

/// A `--peer HOST:PORT`, or an address discovery found.
#[derive(Debug)]
struct Target {
    address: String,
    /// Listed by discovery (rather than configured).
    discovered: bool,
    /// No longer listed (by discovery, or by the configuration): dropped once its link ends.
    withdrawn: bool,
    link: Option<LinkId>,
    /// Who answered last time, to avoid dialing a peer already linked another way.
    peer: Option<Uuid>,
    /// When to dial next; `None` while a link, a lookup or a dial is under way.
    next: Option<Instant>,
    backoff: Duration,
}

impl Target {
    fn new(address: String, discovered: bool, now: Instant) -> Self {
        Self {
            address,
            discovered,
            withdrawn: false,
            link: None,
            peer: None,
            next: Some(now),
            backoff: TARGET_BACKOFF.0,
        }
    }

    fn retry_later(&mut self, now: Instant) {
        self.next = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(TARGET_BACKOFF.1);
    }
}

/// The dialing rules of one instance.
#[derive(Debug)]
pub(super) struct Dialer {
    /// This process's id: of two, the lower dials.
    pid: u32,
    /// Whether peer sockets are dialed at all (not in the hub topology, which dials its
    /// coordinator only).
    mesh: bool,
    /// Whether every peer socket is dialed (a full mesh), or only those asked for (a swarm).
    every_peer: bool,
    unix: Vec<UnixDial>,
    /// Peer-socket dials handed to the worker, by pid: the attempt.
    dialing: HashMap<u32, u32>,
    targets: Vec<Target>,
    /// The process behind each same-host link, dialed or accepted.
    linked: HashMap<LinkId, u32>,
    /// Peers up on some link.
    up: HashSet<Uuid>,
    actions: VecDeque<Action>,
}

impl Dialer {
    /// The dialer of process `pid`; `mesh` when peer sockets are to be dialed; `targets` the
    /// `--peer` addresses, first dialed at `now`.
    pub(super) fn new(pid: u32, mesh: bool, targets: &[String], now: Instant) -> Self {
        Self {
            pid,
            mesh,
            every_peer: true,
            unix: Vec::new(),
            dialing: HashMap::new(),
            targets: targets
                .iter()
                .map(|address| Target::new(address.clone(), false, now))
                .collect(),
            linked: HashMap::new(),
            up: HashSet::new(),
            actions: VecDeque::new(),
        }
    }

    /// A peer socket exists for `pid`: clean it if its process is dead, plan a dial if it is
    /// ours to make.
    pub(super) fn handle_peer_socket(&mut self, pid: u32, alive: bool, now: Instant) {
        if !self.mesh || pid == self.pid || self.is_linked(pid) || self.is_planned(pid) {
            return;
        }
        if !alive {
            self.actions.push_back(Action::Clean { pid });
        } else if self.every_peer && self.pid < pid {
            self.unix.push(UnixDial {
                pid,
                at: now,
                attempt: 0,
            });
        }
    }

    /// Whether every peer socket is to be dialed (a full mesh) or only those asked for with
    /// [`Dialer::dial_on_demand`] (a swarm). Going back to a full mesh, the worker hands every
    /// peer socket to [`Dialer::handle_peer_socket`] again.
    pub(super) fn dial_every_peer(&mut self, every_peer: bool) {
        self.every_peer = every_peer;
        if !every_peer {
            self.unix.clear();
        }
    }

    /// Dials `peer-<pid>.sock` now, whichever pid is lower, unless linked or planned already.
    pub(super) fn dial_on_demand(&mut self, pid: u32, now: Instant) {
        if !self.mesh || pid == self.pid || self.is_linked(pid) || self.is_planned(pid) {
            return;
        }
        self.unix.push(UnixDial {
            pid,
            at: now,
            attempt: 0,
        });
    }

    /// Dials `to` once, for the swarm (no retries: the swarm asks again if it still needs it).
    pub(super) fn dial_address_once(&mut self, to: SocketAddr) {
        self.actions.push_back(Action::DialTcp {
            address: to.to_string(),
            to,
        });
    }

    /// Whether `link` is the link of a `--peer` target (configured, so kept in every shape).
    pub(super) fn is_configured(&self, link: LinkId) -> bool {
        self.targets
            .iter()
            .any(|target| !target.discovered && !target.withdrawn && target.link == Some(link))
    }

    /// The `--peer` targets are now `addresses`: new ones are dialed at `now`, those no longer
    /// listed are withdrawn (see the module docs); a discovered address now listed is kept as
    /// configured.
    pub(super) fn set_configured(&mut self, addresses: &[String], now: Instant) {
        for target in &mut self.targets {
            if !target.discovered && !addresses.contains(&target.address) {
                target.withdrawn = true;
            }
        }
        for address in addresses {
            match self.target(address) {
                Some(target) => {
                    target.discovered = false;
                    target.withdrawn = false;
                }
                None => self.targets.push(Target::new(address.clone(), false, now)),
            }
        }
        self.targets
            .retain(|target| !(target.withdrawn && target.link.is_none()));
    }

    /// How the dial of `peer-<pid>.sock` went.
    pub(super) fn handle_unix_dialed(&mut self, pid: u32, dialed: UnixDialed, now: Instant) {
        let attempt = self.dialing.remove(&pid).unwrap_or(0);
        match dialed {
            UnixDialed::Linked(link) => self.link_opened(link, Some(pid)),
            UnixDialed::Abandoned => {}
            UnixDialed::Failed { alive: false } => self.actions.push_back(Action::Clean { pid }),
            UnixDialed::Failed { alive: true } if attempt + 1 < DIAL_ATTEMPTS => {
                tracing::debug!(pid, attempt, "dial failed; retrying");
                self.unix.push(UnixDial {
                    pid,
                    at: now + DIAL_BACKOFF * (attempt + 1),
                    attempt: attempt + 1,
                });
            }
            UnixDialed::Failed { alive: true } => tracing::warn!(pid, "giving up dialing a peer"),
        }
    }

    /// Discovery lists `address`: dial it unless it is a target already.
    pub(super) fn handle_discovered(&mut self, address: SocketAddr, now: Instant) {
        let text = address.to_string();
        match self
            .targets
            .iter_mut()
            .find(|target| target.address == text)
        {
            // Listed again before its link ended: it stays.
            Some(target) if target.withdrawn => {
                target.withdrawn = false;
                target.discovered = true;
            }
            Some(_) => {}
            None => self.targets.push(Target::new(text, true, now)),
        }
    }

    /// Discovery no longer lists `address`: stop dialing it (a live link stays until it ends).
    pub(super) fn handle_forget(&mut self, address: SocketAddr) {
        let text = address.to_string();
        self.targets.retain(|target| {
            !(target.discovered && target.address == text && target.link.is_none())
        });
        for target in &mut self.targets {
            if target.discovered && target.address == text {
                target.withdrawn = true;
            }
        }
    }

    /// The lookup of the target `address` is done.
    pub(super) fn handle_resolved(
        &mut self,
        address: &str,
        resolved: Result<SocketAddr, String>,
        now: Instant,
    ) {
        let Some(target) = self.target(address) else {
            return;
        };
        match resolved {
            Ok(to) => self.actions.push_back(Action::DialTcp {
                address: address.to_owned(),
                to,
            }),
            Err(error) => {
                tracing::debug!(%error, address, "could not resolve a peer");
                target.retry_later(now);
            }
        }
    }

    /// The dial of the target `address` is done: its link, or why not.
    pub(super) fn handle_tcp_dialed(
        &mut self,
        address: &str,
        dialed: Result<LinkId, String>,
        now: Instant,
    ) {
        let Some(target) = self.target(address) else {
            return;
        };
        match dialed {
            Ok(link) => target.link = Some(link),
            Err(error) => {
                tracing::debug!(%error, address, "dial failed");
                target.retry_later(now);
            }
        }
    }

    /// A link opened (dialed or accepted), with the process behind it if it is on this host.
    pub(super) fn link_opened(&mut self, link: LinkId, pid: Option<u32>) {
        if let Some(pid) = pid {
            self.linked.insert(link, pid);
        }
    }

    /// The peer `id` said hello on `link`: a target's link starts its backoff afresh.
    pub(super) fn peer_up(&mut self, link: LinkId, id: Uuid) {
        self.up.insert(id);
        if let Some(target) = self.targets.iter_mut().find(|t| t.link == Some(link)) {
            target.peer = Some(id);
            target.backoff = TARGET_BACKOFF.0;
        }
    }

    /// The peer `id` is down.
    pub(super) fn peer_down(&mut self, id: Uuid) {
        self.up.remove(&id);
    }

    /// `link` is gone: its target is dialed again after the backoff, unless withdrawn.
    pub(super) fn link_closed(&mut self, link: LinkId, now: Instant) {
        if let Some(pid) = self.linked.remove(&link)
            && self.mesh
            && self.every_peer
            && self.pid < pid
            && !self.is_linked(pid)
            && !self.is_planned(pid)
        {
            // A dead process's socket is cleaned when this dial fails.
            self.unix.push(UnixDial {
                pid,
                at: now + REDIAL,
                attempt: 0,
            });
        }
        if let Some(target) = self.targets.iter_mut().find(|t| t.link == Some(link)) {
            target.link = None;
            target.retry_later(now);
        }
        self.targets
            .retain(|target| !(target.withdrawn && target.link.is_none()));
    }

    /// When [`Dialer::handle_timeout`] must run next.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let unix = self.unix.iter().map(|dial| dial.at);
        let targets = self.targets.iter().filter_map(|target| target.next);
        unix.chain(targets).min()
    }

    /// Turns every dial whose time has come into an action.
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        let (due, later): (Vec<UnixDial>, Vec<UnixDial>) = std::mem::take(&mut self.unix)
            .into_iter()
            .partition(|dial| dial.at <= now);
        self.unix = later;
        for dial in due {
            if !self.is_linked(dial.pid) {
                self.dialing.insert(dial.pid, dial.attempt);
                self.actions.push_back(Action::DialUnix { pid: dial.pid });
            }
        }
        for target in &mut self.targets {
            if target.link.is_some() || target.next.is_none_or(|at| at > now) {
                continue;
            }
            if target.peer.is_some_and(|id| self.up.contains(&id))
                || (target.discovered && !self.every_peer && !self.up.is_empty())
            {
                // Already linked another way (it dialed us), or a swarm that is in touch: a
                // discovered host is a way in, not a link to keep. Look again later.
                target.next = Some(now + TARGET_BACKOFF.1);
                continue;
            }
            target.next = None;
            let address = target.address.clone();
            self.actions.push_back(match address.parse() {
                Ok(to) => Action::DialTcp { address, to },
                Err(_) => Action::Resolve { address },
            });
        }
    }

    /// The next thing the worker must do.
    pub(super) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn is_linked(&self, pid: u32) -> bool {
        self.linked.values().any(|linked| *linked == pid)
    }

    fn is_planned(&self, pid: u32) -> bool {
        self.unix.iter().any(|dial| dial.pid == pid) || self.dialing.contains_key(&pid)
    }

    fn target(&mut self, address: &str) -> Option<&mut Target> {
        self.targets
            .iter_mut()
            .find(|target| target.address == address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(dialer: &mut Dialer) -> Vec<Action> {
        std::iter::from_fn(|| dialer.poll_action()).collect()
    }

    /// Runs the dialer's timeouts at `now` and returns what it asks.
    fn tick(dialer: &mut Dialer, now: Instant) -> Vec<Action> {
        if dialer.poll_timeout().is_some_and(|at| at <= now) {
            dialer.handle_timeout(now);
        }
        drain(dialer)
    }

    fn address(text: &str) -> SocketAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn the_lower_pid_dials_and_a_dead_processs_socket_is_cleaned() {
        let now = Instant::now();
        let mut dialer = Dialer::new(100, true, &[], now);
        dialer.handle_peer_socket(50, true, now);
        dialer.handle_peer_socket(100, true, now);
        dialer.handle_peer_socket(200, true, now);
        dialer.handle_peer_socket(300, false, now);
        assert_eq!(drain(&mut dialer), [Action::Clean { pid: 300 }]);
        assert_eq!(tick(&mut dialer, now), [Action::DialUnix { pid: 200 }]);
        dialer.handle_unix_dialed(200, UnixDialed::Linked(16), now);
        dialer.handle_peer_socket(200, true, now);
        assert_eq!(tick(&mut dialer, now), [], "linked already");
        assert_eq!(dialer.poll_timeout(), None);
    }

    #[test]
    fn a_same_host_link_that_ends_is_dialed_again_by_the_lower_pid() {
        let now = Instant::now();
        let mut low = Dialer::new(100, true, &[], now);
        low.handle_peer_socket(200, true, now);
        assert_eq!(tick(&mut low, now), [Action::DialUnix { pid: 200 }]);
        low.handle_unix_dialed(200, UnixDialed::Linked(16), now);
        low.link_closed(16, now);
        assert_eq!(tick(&mut low, now), [], "not at once");
        assert_eq!(
            tick(&mut low, now + REDIAL),
            [Action::DialUnix { pid: 200 }]
        );
        // The higher pid waits to be dialed.
        let mut high = Dialer::new(200, true, &[], now);
        high.link_opened(17, Some(100));
        high.link_closed(17, now);
        assert_eq!(tick(&mut high, now + REDIAL), []);
    }

    #[test]
    fn a_swarm_dials_only_on_demand_and_does_not_redial() {
        let now = Instant::now();
        let mut dialer = Dialer::new(100, true, &[], now);
        dialer.dial_every_peer(false);
        dialer.handle_peer_socket(200, true, now);
        dialer.handle_peer_socket(300, false, now);
        assert_eq!(drain(&mut dialer), [Action::Clean { pid: 300 }]);
        assert_eq!(tick(&mut dialer, now), [], "no dial unasked");
        dialer.dial_on_demand(50, now);
        dialer.dial_on_demand(50, now);
        assert_eq!(
            tick(&mut dialer, now),
            [Action::DialUnix { pid: 50 }],
            "asked for, once, whichever pid is lower"
        );
        dialer.handle_unix_dialed(50, UnixDialed::Linked(16), now);
        dialer.link_closed(16, now);
        assert_eq!(tick(&mut dialer, now + REDIAL), [], "not dialed again");
        // Back to a full mesh: peer sockets are dialed by the lower pid again.
        dialer.dial_every_peer(true);
        dialer.handle_peer_socket(200, true, now);
        assert_eq!(tick(&mut dialer, now), [Action::DialUnix { pid: 200 }]);
    }

    #[test]
    fn a_swarm_dials_discovered_hosts_only_to_get_in() {
        let now = Instant::now();
        let mut dialer = Dialer::new(100, true, &[], now);
        dialer.dial_every_peer(false);
        dialer.handle_discovered(address("10.0.0.2:47474"), now);
        assert_eq!(
            tick(&mut dialer, now),
            [Action::DialTcp {
                address: "10.0.0.2:47474".into(),
                to: address("10.0.0.2:47474")
            }],
            "alone: the way in"
        );
        dialer.handle_tcp_dialed("10.0.0.2:47474", Ok(16), now);
        dialer.peer_up(16, Uuid::from_u128(2));
        dialer.link_closed(16, now);
        dialer.peer_up(17, Uuid::from_u128(3));
        assert_eq!(
            tick(&mut dialer, now + TARGET_BACKOFF.1),
            [],
            "in touch through another peer: not dialed again"
        );
        assert!(!dialer.is_configured(16));
        dialer.dial_address_once(address("10.0.0.3:47474"));
        assert_eq!(drain(&mut dialer).len(), 1, "the swarm's own dial, once");
    }

    #[test]
    fn the_hub_topology_dials_no_peer_socket() {
        let now = Instant::now();
        let mut dialer = Dialer::new(1, false, &[], now);
        dialer.handle_peer_socket(2, true, now);
        dialer.handle_peer_socket(3, false, now);
        assert_eq!(tick(&mut dialer, now), []);
    }

    #[test]
    fn a_socket_that_does_not_listen_yet_is_retried_with_growing_waits_then_given_up() {
        let start = Instant::now();
        let mut dialer = Dialer::new(1, true, &[], start);
        dialer.handle_peer_socket(2, true, start);
        let mut now = start;
        let mut waits = Vec::new();
        loop {
            assert_eq!(tick(&mut dialer, now), [Action::DialUnix { pid: 2 }]);
            dialer.handle_unix_dialed(2, UnixDialed::Failed { alive: true }, now);
            let Some(next) = dialer.poll_timeout() else {
                break;
            };
            waits.push(next - now);
            now = next;
        }
        assert_eq!(waits.len() as u32, DIAL_ATTEMPTS - 1);
        assert_eq!(waits[0], DIAL_BACKOFF);
        assert_eq!(waits[2], DIAL_BACKOFF * 3);
        // A process that died meanwhile is cleaned, not retried.
        dialer.handle_peer_socket(3, true, now);
        assert_eq!(tick(&mut dialer, now), [Action::DialUnix { pid: 3 }]);
        dialer.handle_unix_dialed(3, UnixDialed::Failed { alive: false }, now);
        assert_eq!(drain(&mut dialer), [Action::Clean { pid: 3 }]);
        assert_eq!(dialer.poll_timeout(), None);
    }

    #[test]
    fn a_peer_target_is_redialed_forever_with_a_capped_backoff() {
        let start = Instant::now();
        let targets = ["10.0.0.2:7000".to_owned()];
        let mut dialer = Dialer::new(1, true, &targets, start);
        let mut now = start;
        let mut waits = Vec::new();
        for _ in 0..10 {
            let asked = tick(&mut dialer, now);
            assert_eq!(
                asked,
                [Action::DialTcp {
                    address: targets[0].clone(),
                    to: address("10.0.0.2:7000")
                }]
            );
            dialer.handle_tcp_dialed(&targets[0], Err("refused".into()), now);
            let next = dialer.poll_timeout().expect("dialed again");
            waits.push(next - now);
            now = next;
        }
        assert_eq!(waits[0], Duration::from_millis(250));
        assert_eq!(waits[1], Duration::from_millis(500));
        assert_eq!(waits[9], Duration::from_secs(5));
        // A link that said hello resets the backoff; when it ends, the target is dialed again.
        assert_eq!(tick(&mut dialer, now).len(), 1);
        dialer.handle_tcp_dialed(&targets[0], Ok(20), now);
        assert_eq!(dialer.poll_timeout(), None, "linked: nothing to dial");
        dialer.peer_up(20, Uuid::from_u128(2));
        dialer.link_closed(20, now);
        dialer.peer_down(Uuid::from_u128(2));
        assert_eq!(
            dialer.poll_timeout(),
            Some(now + Duration::from_millis(250))
        );
    }

    #[test]
    fn a_target_whose_peer_is_up_by_another_link_is_looked_at_later() {
        let now = Instant::now();
        let targets = ["10.0.0.2:7000".to_owned()];
        let mut dialer = Dialer::new(1, true, &targets, now);
        assert_eq!(tick(&mut dialer, now).len(), 1);
        dialer.handle_tcp_dialed(&targets[0], Ok(20), now);
        dialer.peer_up(20, Uuid::from_u128(2));
        // The peer dialed us too and the membership kept its link; ours closed.
        dialer.peer_up(21, Uuid::from_u128(2));
        dialer.link_closed(20, now);
        let due = dialer.poll_timeout().expect("a look later");
        assert_eq!(tick(&mut dialer, due), []);
        assert_eq!(dialer.poll_timeout(), Some(due + Duration::from_secs(5)));
    }

    #[test]
    fn a_host_name_is_resolved_before_it_is_dialed() {
        let now = Instant::now();
        let targets = ["desk.local:7000".to_owned()];
        let mut dialer = Dialer::new(1, true, &targets, now);
        assert_eq!(
            tick(&mut dialer, now),
            [Action::Resolve {
                address: targets[0].clone()
            }]
        );
        assert_eq!(
            dialer.poll_timeout(),
            None,
            "nothing more while it resolves"
        );
        dialer.handle_resolved(&targets[0], Err("no such host".into()), now);
        let later = dialer.poll_timeout().expect("retried");
        assert_eq!(tick(&mut dialer, later).len(), 1);
        dialer.handle_resolved(&targets[0], Ok(address("10.0.0.3:7000")), later);
        assert_eq!(
            drain(&mut dialer),
            [Action::DialTcp {
                address: targets[0].clone(),
                to: address("10.0.0.3:7000")
            }]
        );
    }

    #[test]
    fn targets_set_again_dial_the_new_and_drop_the_old_once_their_links_end() {
        let now = Instant::now();
        let (kept, linked, idle) = (
            "10.0.0.6:7000".to_owned(),
            "10.0.0.7:7000".to_owned(),
            "10.0.0.8:7000".to_owned(),
        );
        let mut dialer = Dialer::new(1, true, &[kept.clone(), linked.clone(), idle.clone()], now);
        assert_eq!(tick(&mut dialer, now).len(), 3);
        dialer.handle_tcp_dialed(&kept, Ok(40), now);
        dialer.handle_tcp_dialed(&linked, Ok(41), now);
        dialer.handle_tcp_dialed(&idle, Err("refused".into()), now);
        let new = "10.0.0.9:7000".to_owned();
        dialer.set_configured(&[kept.clone(), new.clone()], now);
        assert_eq!(
            tick(&mut dialer, now),
            [Action::DialTcp {
                address: new.clone(),
                to: address(&new)
            }],
            "the new one at once; the unlisted one without a link is not retried"
        );
        assert!(dialer.is_configured(40));
        assert!(
            !dialer.is_configured(41),
            "unlisted: no longer kept in every shape"
        );
        dialer.link_closed(41, now);
        dialer.link_closed(40, now);
        let later = now + Duration::from_secs(10);
        assert_eq!(
            tick(&mut dialer, later),
            [Action::DialTcp {
                address: kept.clone(),
                to: address(&kept)
            }],
            "only the listed target whose link ended is dialed again"
        );
    }

    #[test]
    fn discovered_addresses_are_dialed_while_listed_and_dropped_when_their_link_ends() {
        let now = Instant::now();
        let (one, two) = (address("10.0.0.4:7000"), address("10.0.0.5:7000"));
        let mut dialer = Dialer::new(1, true, &[], now);
        dialer.handle_discovered(one, now);
        dialer.handle_discovered(one, now);
        dialer.handle_discovered(two, now);
        assert_eq!(tick(&mut dialer, now).len(), 2, "each address once");
        dialer.handle_tcp_dialed(&one.to_string(), Ok(30), now);
        dialer.handle_tcp_dialed(&two.to_string(), Err("refused".into()), now);
        // Unlisted without a link: gone at once; with a link: gone when it ends.
        dialer.handle_forget(two);
        dialer.handle_forget(one);
        assert_eq!(dialer.poll_timeout(), None);
        dialer.link_closed(30, now);
        assert_eq!(dialer.poll_timeout(), None, "not redialed once withdrawn");
        // Listed again while its link lives: it stays a target.
        dialer.handle_discovered(one, now);
        assert_eq!(tick(&mut dialer, now).len(), 1);
        dialer.handle_tcp_dialed(&one.to_string(), Ok(31), now);
        dialer.handle_forget(one);
        dialer.handle_discovered(one, now);
        dialer.link_closed(31, now);
        assert!(dialer.poll_timeout().is_some(), "listed again: redialed");
    }
}
