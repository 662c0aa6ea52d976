//! Virtual time for the simulators: every future happening is an event in one queue, taken in
//! time order, ties in the order they were scheduled — so a run is a function of its seed alone,
//! however fast the machine running it is.

use std::{cmp::Ordering, collections::BinaryHeap, time::Instant};

/// The events `E` to come.
pub(crate) struct Timeline<E> {
    heap: BinaryHeap<Scheduled<E>>,
    seq: u64,
}

impl<E> Default for Timeline<E> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }
}

impl<E> Timeline<E> {
    pub(crate) fn push(&mut self, at: Instant, event: E) {
        self.seq += 1;
        self.heap.push(Scheduled {
            at,
            seq: self.seq,
            event,
        });
    }

    /// The earliest event.
    pub(crate) fn pop(&mut self) -> Option<(Instant, E)> {
        let Scheduled { at, event, .. } = self.heap.pop()?;
        Some((at, event))
    }
}

struct Scheduled<E> {
    at: Instant,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<E> Eq for Scheduled<E> {}

impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Scheduled<E> {
    /// Reversed: the heap's greatest is the earliest.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}
