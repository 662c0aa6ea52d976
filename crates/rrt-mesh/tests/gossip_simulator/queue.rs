//! Virtual time: every future happening is an event in one queue, taken in time order, ties in the
//! order they were scheduled — so a run is a function of its seed alone, however fast the machine
//! running it is.

use std::{cmp::Ordering, collections::BinaryHeap, time::Instant};

use super::{network::LinkId, wire::Frame};

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

struct Scheduled {
    at: Instant,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    /// Reversed: the heap's greatest is the earliest.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// The events to come.
#[derive(Default)]
pub(crate) struct Queue {
    heap: BinaryHeap<Scheduled>,
    seq: u64,
}

impl Queue {
    pub(crate) fn push(&mut self, at: Instant, event: Event) {
        self.seq += 1;
        self.heap.push(Scheduled {
            at,
            seq: self.seq,
            event,
        });
    }

    pub(crate) fn pop(&mut self) -> Option<(Instant, Event)> {
        let Scheduled { at, event, .. } = self.heap.pop()?;
        Some((at, event))
    }
}
