//! What happens in a run, in virtual time (`support/timeline.rs`).

use super::{network::LinkId, wire::Frame};
use crate::support::timeline::Timeline;

/// Something that happens at a virtual instant. Nodes are named by their index.
#[derive(Debug)]
pub(crate) enum Event {
    /// A dial's connection attempt ends: the link opens at both ends, or the dial fails.
    Connect {
        link: LinkId,
    },
    /// A frame reaches node `to` over `link`.
    Deliver {
        link: LinkId,
        to: usize,
        frame: Frame,
    },
    /// Node `to` learns that its end of `link` is gone (the other end closed it, crashed, or
    /// the connection broke), or that its dial failed; `peer_died` if it can tell that its peer
    /// crashed (the connection was reset, or the dial refused, by the peer's host).
    Closed {
        link: LinkId,
        to: usize,
        peer_died: bool,
    },
    /// A node's machines asked to be woken at this instant.
    Timer {
        node: usize,
    },
    /// A new node starts and joins.
    Join,
    /// Node `node` joins again if its active view is still empty.
    Rejoin {
        node: usize,
    },
    /// A random live node crashes.
    Crash,
    /// A copy on a random live node; `lost`: its broadcast is lost (the origin's tree drops
    /// it).
    Copy {
        lost: bool,
    },
    /// The nodes split into two groups; `Heal` joins them again.
    Partition,
    Heal,
    /// Faults on links start (with the churn and the copies).
    StartFaults,
    /// Faults stop (the churn and the copies have).
    EndFaults,
    /// A minute has passed: a line of progress.
    Minute,
    /// Has the mesh converged and gone quiet yet?
    Probe,
}

/// The events to come.
pub(crate) type Queue = Timeline<Event>;
