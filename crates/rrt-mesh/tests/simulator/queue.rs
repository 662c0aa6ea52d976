//! Virtual time: every future happening is an event in one queue, taken in time order (ties in
//! the order they were scheduled, so a run is a function of its seed alone).
//!
//! The queue also counts the events that are work for the sync layer — messages other than
//! heartbeats, link closures, dials, writes — so the end of a run can tell
//! "nothing left to do" from "still settling".

use std::{cmp::Ordering, collections::BinaryHeap, time::Instant};

use super::{routing, writer::Written};
use rrt_mesh::Message;

/// Something that happens at a virtual instant.
#[derive(Debug)]
pub(crate) enum Event {
    /// A frame reaches end `to` (0: the dialer, 1: the acceptor) of `link`.
    Deliver {
        link: usize,
        to: usize,
        message: Message,
    },
    /// End `end` of `link` learns that the connection is gone.
    Closed {
        link: usize,
        end: usize,
    },
    /// The dialer of `edge` connects (again).
    Dial {
        edge: usize,
    },
    /// A node's machines asked to be woken.
    Timer {
        node: usize,
    },
    /// A node's writer carries out its next job, unless the node crashed since (`incarnation`).
    WriterStep {
        node: usize,
        incarnation: u64,
    },
    /// A node's writer's result for a local copy or edit reaches its node.
    Written {
        node: usize,
        incarnation: u64,
        written: Written,
    },
    /// A node crashes; `Restart` starts it again from its disk.
    Crash {
        node: usize,
    },
    Restart {
        node: usize,
    },
    /// These edges go silent (counted: partitions may overlap); `Heal` undoes one `Cut`.
    Cut {
        edges: Vec<usize>,
    },
    Heal {
        edges: Vec<usize>,
    },
    /// A local copy on a node, which crashes after saving it and before committing it if
    /// `crash_after_save`.
    Copy {
        node: usize,
        crash_after_save: bool,
    },
    /// An append of a fresh token to document number `document` on a node.
    Append {
        node: usize,
        document: usize,
    },
    /// Faults stop, every edge heals, every node runs.
    EndFaults,
    /// Is the mesh quiescent yet?
    Probe,
}

impl Event {
    fn is_work(&self) -> bool {
        match self {
            Event::Deliver { message, .. } => routing::kind(message).is_work(),
            Event::Closed { .. }
            | Event::Dial { .. }
            | Event::WriterStep { .. }
            | Event::Written { .. } => true,
            _ => false,
        }
    }
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
    work: u64,
}

impl Queue {
    pub(crate) fn push(&mut self, at: Instant, event: Event) {
        self.work += u64::from(event.is_work());
        self.seq += 1;
        self.heap.push(Scheduled {
            at,
            seq: self.seq,
            event,
        });
    }

    pub(crate) fn pop(&mut self) -> Option<(Instant, Event)> {
        let Scheduled { at, event, .. } = self.heap.pop()?;
        self.work -= u64::from(event.is_work());
        Some((at, event))
    }

    /// Whether any work for the sync layer is still scheduled.
    pub(crate) fn has_work(&self) -> bool {
        self.work > 0
    }
}
