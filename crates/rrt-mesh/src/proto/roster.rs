//! Who is in the mesh, when nobody links to everybody: a table every instance keeps of every
//! member — alive or dead, with an *incarnation* — that converges like the sync machines' state:
//! changes spread (on the broadcast tree in a large mesh, over the links in a small one), and a
//! new link starts with both ends sending their whole table (anti-entropy).
//!
//! Merging is a join: of two records of one member, the higher incarnation wins, and at equal
//! incarnations *dead* wins. A member's incarnation starts at its start time (wall-clock
//! milliseconds), so a restart outranks everything said about the previous run; a member that
//! hears itself declared dead answers with its incarnation plus one (SWIM's refutation), so a
//! false verdict lasts one broadcast.
//!
//! Who declares a member dead is the driver's rule, from what its links see: a peer whose link
//! went silent and for whom nobody vouched (the membership's verdict), or whose process is gone.
//!
//! A peer cannot pin a record: incarnations more than [`MAX_AHEAD_MS`] past this instance's clock
//! are refused (a member's own never gets there: it starts at its start time and grows by one per
//! refutation), and dead records are forgotten after [`TOMBSTONE`].

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    time::{Duration, Instant},
};

use rrt_sync::{Arrival, Outgoing};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How far past this instance's clock a record's incarnation may be.
pub const MAX_AHEAD_MS: u64 = 60_000;
/// How far past this instance's clock a verdict of death may be: half as far as a life, so
/// that the refutation of any verdict accepted (its incarnation plus one) is accepted too —
/// a peer cannot declare a member dead at the edge of the window and leave its answer outside.
pub const MAX_DEATH_AHEAD_MS: u64 = MAX_AHEAD_MS / 2;
/// How long a dead member's record is kept, so an older word of it alive cannot bring it back.
pub const TOMBSTONE: Duration = Duration::from_secs(3600);
/// The most members a table holds; records of unknown members beyond are ignored.
pub const MAX_MEMBERS: usize = 100_000;
/// The longest name a record keeps (longer ones are cut) and the longest host (a longer one is
/// dropped), in bytes: a peer cannot make every table hold megabytes per member.
pub const MAX_TEXT: usize = 256;

/// One member, as a `roster` message carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterEntry {
    /// The member's instance id.
    pub instance_id: Uuid,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Which of its lives this is about: its start time in milliseconds since the Unix epoch,
    /// plus one for each time it refuted a verdict of death.
    pub incarnation: u64,
    /// Whether it is alive.
    pub alive: bool,
    /// The host it runs on (its boot id), so that the instances of that host can see for
    /// themselves whether its process still runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Its process on that host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

impl RosterEntry {
    /// Whether this record outranks `other`, a record of the same member.
    fn outranks(&self, other: &RosterEntry) -> bool {
        self.incarnation > other.incarnation
            || (self.incarnation == other.incarnation && other.alive && !self.alive)
    }
}

#[derive(Debug)]
struct Record {
    entry: RosterEntry,
    /// When it was last changed here (for forgetting the dead).
    changed: Instant,
}

/// One instance's table of the mesh's members.
#[derive(Debug)]
pub struct Roster {
    me: Uuid,
    records: BTreeMap<Uuid, Record>,
    /// The dead records by when they changed, oldest first: the timer needs the first alone, and
    /// a table of thousands is not scanned on every wake-up.
    dead: BTreeSet<(Instant, Uuid)>,
    /// How many records are alive (asked on every wake-up of the reactor, so kept, not counted).
    alive: usize,
    peers: BTreeSet<Uuid>,
    outgoing: VecDeque<Outgoing<Vec<RosterEntry>>>,
}

impl Roster {
    /// The table of the instance `me` says it is (alive, its incarnation its start time).
    pub fn new(me: RosterEntry, now: Instant) -> Self {
        let entry = RosterEntry { alive: true, ..me };
        let me = entry.instance_id;
        let records = BTreeMap::from([(
            me,
            Record {
                entry,
                changed: now,
            },
        )]);
        Self {
            me,
            records,
            dead: BTreeSet::new(),
            alive: 1,
            peers: BTreeSet::new(),
            outgoing: VecDeque::new(),
        }
    }

    /// A link to `peer` is up: it gets the whole table.
    pub fn peer_up(&mut self, peer: Uuid) {
        self.peers.insert(peer);
        let table = self.records.values().map(|r| r.entry.clone()).collect();
        self.outgoing.push_back(Outgoing::To(peer, table));
    }

    /// The link to `peer` is gone.
    pub fn peer_down(&mut self, peer: Uuid) {
        self.peers.remove(&peer);
    }

    /// Records `from` sent, arrived as `arrival`, at wall-clock `now_ms`: what changed the
    /// table is passed on ([`Arrival::Direct`]: to every other peer, or the tree; a tree's
    /// delivery goes nowhere — the tree carries it on).
    pub fn handle(
        &mut self,
        from: Uuid,
        entries: Vec<RosterEntry>,
        arrival: Arrival,
        now_ms: u64,
        now: Instant,
    ) {
        let mut changed = Vec::new();
        for entry in entries {
            let ahead = if entry.alive {
                MAX_AHEAD_MS
            } else {
                MAX_DEATH_AHEAD_MS
            };
            if entry.incarnation > now_ms.saturating_add(ahead) {
                tracing::debug!(%from, member = %entry.instance_id, "a member's incarnation is too far ahead; ignored");
                continue;
            }
            let entry = bounded(entry);
            if entry.instance_id == self.me {
                self.refute(&entry, now);
                continue;
            }
            if let Some(entry) = self.merge(entry, now) {
                changed.push(entry);
            }
        }
        if changed.is_empty() || arrival == Arrival::Spread {
            return;
        }
        if self.peers.iter().any(|peer| *peer != from) {
            self.outgoing.push_back(Outgoing::Broadcast {
                message: changed,
                except: Some(from),
            });
        }
    }

    /// `peer` is dead, by what this instance's links saw: said to everyone.
    pub fn declare_dead(&mut self, peer: Uuid, now: Instant) {
        let Some(record) = self.records.get_mut(&peer) else {
            return;
        };
        if peer == self.me || !record.entry.alive {
            return;
        }
        record.entry.alive = false;
        record.changed = now;
        self.alive -= 1;
        self.dead.insert((now, peer));
        let message = vec![record.entry.clone()];
        self.outgoing.push_back(Outgoing::Broadcast {
            message,
            except: None,
        });
    }

    /// How many members are alive, this instance included.
    pub fn members(&self) -> usize {
        self.alive
    }

    /// Every member alive, this instance included.
    pub fn alive(&self) -> impl Iterator<Item = &RosterEntry> {
        self.records
            .values()
            .map(|r| &r.entry)
            .filter(|entry| entry.alive)
    }

    /// The live members of `host` but this instance, with their processes: to be looked at.
    pub fn on_host<'a>(&'a self, host: &'a str) -> impl Iterator<Item = (Uuid, u32)> + 'a {
        self.alive()
            .filter(move |entry| {
                entry.instance_id != self.me && entry.host.as_deref() == Some(host)
            })
            .filter_map(|entry| Some((entry.instance_id, entry.pid?)))
    }

    /// The next message to send.
    pub fn poll_outgoing(&mut self) -> Option<Outgoing<Vec<RosterEntry>>> {
        self.outgoing.pop_front()
    }

    /// When [`Roster::handle_timeout`] must run next: when the oldest dead record is forgotten.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.dead.first().map(|(changed, _)| *changed + TOMBSTONE)
    }

    /// Forgets the dead records older than [`TOMBSTONE`].
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(changed, member)) = self.dead.first() {
            if changed + TOMBSTONE > now {
                break;
            }
            self.dead.pop_first();
            self.records.remove(&member);
        }
    }

    fn merge(&mut self, entry: RosterEntry, now: Instant) -> Option<RosterEntry> {
        let full = self.records.len() >= MAX_MEMBERS;
        let member = entry.instance_id;
        match self.records.get_mut(&member) {
            Some(record) if entry.outranks(&record.entry) => {
                if record.entry.alive {
                    self.alive -= 1;
                } else {
                    self.dead.remove(&(record.changed, member));
                }
                record.entry = entry.clone();
                record.changed = now;
            }
            Some(_) => return None,
            None if full => return None,
            None => {
                let record = Record {
                    entry: entry.clone(),
                    changed: now,
                };
                self.records.insert(member, record);
            }
        }
        if entry.alive {
            self.alive += 1;
        } else {
            self.dead.insert((now, member));
        }
        Some(entry)
    }

    /// Someone says something of this instance: if it outranks what this instance says of
    /// itself, this instance comes back with a higher incarnation.
    fn refute(&mut self, said: &RosterEntry, now: Instant) {
        let Some(record) = self.records.get_mut(&self.me) else {
            return;
        };
        if !said.outranks(&record.entry) {
            return;
        }
        record.entry.incarnation = said.incarnation + 1;
        record.entry.alive = true;
        record.changed = now;
        tracing::info!(
            incarnation = record.entry.incarnation,
            "declared dead by the mesh while alive; saying otherwise"
        );
        let message = vec![record.entry.clone()];
        self.outgoing.push_back(Outgoing::Broadcast {
            message,
            except: None,
        });
    }
}

/// `entry` with its name cut to [`MAX_TEXT`] bytes and a longer host dropped.
fn bounded(mut entry: RosterEntry) -> RosterEntry {
    if entry.name.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !entry.name.is_char_boundary(end) {
            end -= 1;
        }
        entry.name.truncate(end);
    }
    if entry
        .host
        .as_ref()
        .is_some_and(|host| host.len() > MAX_TEXT)
    {
        entry.host = None;
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: u64 = 1_700_000_000_000;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn entry(n: u128, incarnation: u64, alive: bool) -> RosterEntry {
        RosterEntry {
            instance_id: id(n),
            name: format!("i{n}"),
            incarnation,
            alive,
            host: Some("here".into()),
            pid: Some(n as u32),
        }
    }

    fn roster(n: u128) -> Roster {
        Roster::new(entry(n, NOW_MS, true), Instant::now())
    }

    /// What a tree delivered from peer 2.
    fn heard(roster: &mut Roster, entries: Vec<RosterEntry>, now: Instant) {
        roster.handle(id(2), entries, Arrival::Spread, NOW_MS, now);
    }

    fn drain(roster: &mut Roster) -> Vec<Outgoing<Vec<RosterEntry>>> {
        std::iter::from_fn(|| roster.poll_outgoing()).collect()
    }

    #[test]
    fn a_new_link_gets_the_whole_table_and_news_go_on_to_the_others() {
        let mut here = roster(1);
        here.peer_up(id(2));
        here.peer_up(id(3));
        let sent = drain(&mut here);
        assert_eq!(sent.len(), 2);
        assert!(sent.iter().all(|out| out.message().len() == 1));
        let now = Instant::now();
        here.handle(
            id(2),
            vec![entry(4, NOW_MS, true)],
            Arrival::Direct,
            NOW_MS,
            now,
        );
        assert_eq!(here.members(), 2);
        assert_eq!(
            drain(&mut here),
            [Outgoing::Broadcast {
                message: vec![entry(4, NOW_MS, true)],
                except: Some(id(2))
            }]
        );
        // Old news changes nothing and goes nowhere.
        here.handle(
            id(3),
            vec![entry(4, NOW_MS, true)],
            Arrival::Direct,
            NOW_MS,
            now,
        );
        assert!(drain(&mut here).is_empty());
        // What a tree delivered is not passed on.
        here.handle(
            id(3),
            vec![entry(5, NOW_MS, true)],
            Arrival::Spread,
            NOW_MS,
            now,
        );
        assert_eq!(here.members(), 3);
        assert!(drain(&mut here).is_empty());
    }

    #[test]
    fn the_live_members_of_a_host_are_listed_with_their_processes() {
        let mut here = roster(1);
        let now = Instant::now();
        let elsewhere = RosterEntry {
            host: Some("there".into()),
            ..entry(3, 10, true)
        };
        let entries = vec![entry(2, 10, true), elsewhere, entry(4, 10, false)];
        here.handle(id(9), entries, Arrival::Spread, NOW_MS, now);
        assert_eq!(here.on_host("here").collect::<Vec<_>>(), [(id(2), 2)]);
    }

    #[test]
    fn a_verdict_at_the_edge_of_the_window_still_leaves_room_for_the_answer() {
        let now = Instant::now();
        let edge = NOW_MS + MAX_DEATH_AHEAD_MS;
        // Too far ahead for a verdict, though not for a life.
        let mut third = roster(3);
        third.handle(
            id(2),
            vec![entry(1, edge + 1, false)],
            Arrival::Direct,
            NOW_MS,
            now,
        );
        assert!(drain(&mut third).is_empty());
        // At the edge: taken, refuted, and the refutation taken by others.
        let mut member = roster(1);
        member.handle(
            id(2),
            vec![entry(1, edge, false)],
            Arrival::Direct,
            NOW_MS,
            now,
        );
        third.handle(
            id(2),
            vec![entry(1, edge, false)],
            Arrival::Direct,
            NOW_MS,
            now,
        );
        assert_eq!(third.members(), 1, "counted dead");
        let answer = drain(&mut member).remove(0).message().clone();
        third.handle(id(1), answer, Arrival::Direct, NOW_MS, now);
        assert_eq!(third.members(), 2, "and alive again");
    }

    #[test]
    fn dead_wins_ties_and_a_later_life_wins_over_death() {
        let mut here = roster(1);
        let now = Instant::now();
        heard(&mut here, vec![entry(4, 10, true)], now);
        heard(&mut here, vec![entry(4, 10, false)], now);
        assert_eq!(here.members(), 1);
        heard(&mut here, vec![entry(4, 10, true)], now);
        assert_eq!(here.members(), 1, "the same life is not brought back");
        heard(&mut here, vec![entry(4, 11, true)], now);
        assert_eq!(here.members(), 2, "a restart outranks the death");
    }

    #[test]
    fn declared_dead_while_alive_it_refutes_with_a_higher_incarnation() {
        let mut here = roster(1);
        here.handle(
            id(2),
            vec![entry(1, NOW_MS, false)],
            Arrival::Spread,
            NOW_MS,
            Instant::now(),
        );
        assert_eq!(here.members(), 1, "still alive for itself");
        let sent = drain(&mut here);
        assert_eq!(
            sent,
            [Outgoing::Broadcast {
                message: vec![entry(1, NOW_MS + 1, true)],
                except: None
            }]
        );
    }

    #[test]
    fn a_verdict_spreads_once_and_only_for_a_member_alive_here() {
        let mut here = roster(1);
        let now = Instant::now();
        heard(&mut here, vec![entry(4, 10, true)], now);
        here.declare_dead(id(4), now);
        assert_eq!(here.members(), 1);
        assert_eq!(drain(&mut here).len(), 1);
        here.declare_dead(id(4), now);
        here.declare_dead(id(9), now);
        here.declare_dead(id(1), now);
        assert!(drain(&mut here).is_empty());
        assert_eq!(here.members(), 1);
    }

    #[test]
    fn incarnations_far_ahead_are_refused_and_the_dead_are_forgotten_in_time() {
        let mut here = roster(1);
        let now = Instant::now();
        let pinned = entry(4, NOW_MS + MAX_AHEAD_MS + 1, true);
        here.handle(id(2), vec![pinned], Arrival::Direct, NOW_MS, now);
        assert_eq!(here.members(), 1);
        let huge = RosterEntry {
            name: "x".repeat(MAX_TEXT + 1),
            ..entry(5, 10, true)
        };
        here.handle(id(2), vec![huge], Arrival::Direct, NOW_MS, now);
        let kept = here
            .alive()
            .find(|e| e.instance_id == id(5))
            .expect("counted");
        assert_eq!(kept.name.len(), MAX_TEXT, "its name cut");
        // A peer claiming this instance far ahead cannot push its incarnation out of reach.
        here.handle(
            id(2),
            vec![entry(1, u64::MAX, false)],
            Arrival::Direct,
            NOW_MS,
            now,
        );
        assert!(drain(&mut here).is_empty());

        heard(&mut here, vec![entry(4, 10, false)], now);
        assert_eq!(here.poll_timeout(), Some(now + TOMBSTONE));
        here.handle_timeout(now + TOMBSTONE);
        assert_eq!(here.poll_timeout(), None, "forgotten");
    }

    #[test]
    fn only_the_dead_are_forgotten_each_at_its_time() {
        let mut here = roster(1);
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        for (member, at) in [(4, now), (5, now), (6, later)] {
            here.handle(
                id(2),
                vec![entry(member, 10, true)],
                Arrival::Spread,
                NOW_MS,
                at,
            );
            here.declare_dead(id(member), at);
        }
        // Member 5 comes back in a later life: nothing of it is forgotten any more.
        here.handle(
            id(2),
            vec![entry(5, 11, true)],
            Arrival::Spread,
            NOW_MS,
            later,
        );
        assert_eq!(here.poll_timeout(), Some(now + TOMBSTONE));
        here.handle_timeout(now + TOMBSTONE);
        assert_eq!(here.poll_timeout(), Some(later + TOMBSTONE));
        assert_eq!(here.members(), 2, "this instance and member 5");
        // Member 4's record is gone: an old word of it alive counts it again.
        here.handle(
            id(2),
            vec![entry(4, 10, true)],
            Arrival::Spread,
            NOW_MS,
            later,
        );
        assert_eq!(here.members(), 3);
        here.handle_timeout(later + TOMBSTONE);
        assert_eq!(here.poll_timeout(), None);
        assert_eq!(here.members(), 3, "the living are never forgotten");
    }
}
