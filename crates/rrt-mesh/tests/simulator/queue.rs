//! What happens in a run, in virtual time (`support/timeline.rs`).
//!
//! The queue also counts the events that are work for the sync layer — messages other than
//! heartbeats, link closures, dials, writes — so the end of a run can tell
//! "nothing left to do" from "still settling".

use std::time::Instant;

use super::{routing, writer::Written};
use crate::support::timeline::Timeline;
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

/// The events to come, and how many of them are work.
#[derive(Default)]
pub(crate) struct Queue {
    timeline: Timeline<Event>,
    work: u64,
}

impl Queue {
    pub(crate) fn push(&mut self, at: Instant, event: Event) {
        self.work += u64::from(event.is_work());
        self.timeline.push(at, event);
    }

    pub(crate) fn pop(&mut self) -> Option<(Instant, Event)> {
        let (at, event) = self.timeline.pop()?;
        self.work -= u64::from(event.is_work());
        Some((at, event))
    }

    /// Whether any work for the sync layer is still scheduled.
    pub(crate) fn has_work(&self) -> bool {
        self.work > 0
    }
}
