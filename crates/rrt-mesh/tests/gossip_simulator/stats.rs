//! What the nodes did, counted as they do it: frames by kind, broadcasts by machine, and for each
//! copy the hops of its tree and when each node first held it.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    hash::{DefaultHasher, Hash, Hasher},
    time::Instant,
};

use rrt_sync::{ClipMessage, Stamp};
use uuid::Uuid;

use super::wire::Spread;

/// One copy's journey.
#[derive(Debug)]
pub(crate) struct CopyTrace {
    pub(crate) made: Instant,
    /// Its broadcast was lost: only anti-entropy carries it.
    pub(crate) lost: bool,
    /// Hops from the origin of the broadcast each node got it from (0: it broadcast it).
    pub(crate) hops: HashMap<Uuid, u32>,
    /// When each node first held it.
    pub(crate) held: HashMap<Uuid, Instant>,
}

/// One machine's broadcasts.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Broadcasts {
    /// Its own news: a local copy; a death declared, a refutation.
    pub(crate) own: u64,
    /// What a catch-up over a link taught it, passed on (`except: Some(peer)`).
    pub(crate) forwarded: u64,
    /// Deliveries of them (a node getting a broadcast for the first time).
    pub(crate) deliveries: u64,
    /// Payload gossip frames carrying them, and their bytes.
    pub(crate) payload_frames: u64,
    pub(crate) payload_bytes: u64,
}

/// The counters.
#[derive(Debug, Default)]
pub(crate) struct Observer {
    pub(crate) clip: Broadcasts,
    pub(crate) roster: Broadcasts,
    /// Gossip frames of HyParView and Plumtree's control (joins, shuffles, IHave, graft, prune).
    pub(crate) control_frames: u64,
    /// The machines' messages over a link (their catch-up on a new link).
    pub(crate) direct_frames: u64,
    /// Roster entries in those (a table is sent whole on every new link).
    pub(crate) direct_roster_entries: u64,
    /// The hashes of every content broadcast: the same content twice is one broadcast to
    /// Plumtree (while it remembers its id).
    distinct: HashSet<u64>,
    pub(crate) copies: BTreeMap<Stamp, CopyTrace>,
}

impl Observer {
    /// A gossip frame: a payload's is told by the content it carries near its start (after the
    /// topic and the message id).
    pub(crate) fn gossip_sent(&mut self, payload: bool, frame: &[u8]) {
        if !payload {
            self.control_frames += 1;
            return;
        }
        let head = &frame[..frame.len().min(128)];
        let counts = if head.windows(7).any(|w| w == b"{\"Clip\"") {
            &mut self.clip
        } else {
            &mut self.roster
        };
        counts.payload_frames += 1;
        counts.payload_bytes += frame.len() as u64;
    }

    pub(crate) fn direct_sent(&mut self, roster_entries: usize) {
        self.direct_frames += 1;
        self.direct_roster_entries += roster_entries as u64;
    }

    /// `origin` copied: the copy with `stamp` is followed from here.
    pub(crate) fn copy_made(&mut self, origin: Uuid, stamp: Stamp, lost: bool, now: Instant) {
        let trace = CopyTrace {
            made: now,
            lost,
            hops: HashMap::new(),
            held: HashMap::from([(origin, now)]),
        };
        self.copies.insert(stamp, trace);
    }

    /// `node` hands `spread` (encoded: `content`) to its swarm; `forwarded`: a catch-up taught it.
    pub(crate) fn broadcast(
        &mut self,
        node: Uuid,
        spread: &Spread,
        content: &[u8],
        forwarded: bool,
    ) {
        let mut hasher = DefaultHasher::new();
        content.hash(&mut hasher);
        self.distinct.insert(hasher.finish());
        let counts = match spread {
            Spread::Clip(message) => {
                if let Some(trace) = self.trace(message) {
                    trace.hops.entry(node).or_insert(0);
                }
                &mut self.clip
            }
            Spread::Roster(_) => &mut self.roster,
        };
        if forwarded {
            counts.forwarded += 1;
        } else {
            counts.own += 1;
        }
    }

    /// `spread` reached `node` on the tree, from its neighbour `from`.
    pub(crate) fn delivered(&mut self, node: Uuid, from: Uuid, spread: &Spread) {
        match spread {
            Spread::Clip(_) => self.clip.deliveries += 1,
            Spread::Roster(_) => self.roster.deliveries += 1,
        }
        if let Spread::Clip(message) = spread
            && let Some(trace) = self.trace(message)
            && let Some(&hops) = trace.hops.get(&from)
        {
            trace.hops.entry(node).or_insert(hops + 1);
        }
    }

    /// `node`'s clipboard holds the entry with `stamp`.
    pub(crate) fn holds(&mut self, node: Uuid, stamp: Stamp, now: Instant) {
        if let Some(trace) = self.copies.get_mut(&stamp) {
            trace.held.entry(node).or_insert(now);
        }
    }

    /// Every call of `Swarm::broadcast`.
    pub(crate) fn broadcasts(&self) -> u64 {
        self.clip.own + self.clip.forwarded + self.roster.own + self.roster.forwarded
    }

    /// Broadcasts of distinct contents.
    pub(crate) fn distinct_broadcasts(&self) -> u64 {
        self.distinct.len() as u64
    }

    /// What the trees were given, for telling a quiet mesh: catch-ups on the transient links
    /// of HyParView's shuffles never stop, broadcasts do.
    pub(crate) fn work(&self) -> u64 {
        self.broadcasts()
    }

    fn trace(&mut self, message: &ClipMessage) -> Option<&mut CopyTrace> {
        let ClipMessage::ClipboardUpdate {
            timestamp,
            counter,
            source_instance,
            ..
        } = message
        else {
            return None;
        };
        let stamp = Stamp {
            time: rrt_sync::Timestamp {
                wall_ms: *timestamp,
                counter: *counter,
            },
            origin: *source_instance,
        };
        self.copies.get_mut(&stamp)
    }
}
