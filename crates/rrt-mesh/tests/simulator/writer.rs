//! A node's writer, as the daemon's writer thread (`src/writer.rs`): one ordered queue of jobs
//! that alone writes the node's disk, each job landing a little later than it was queued.
//!
//! ```text
//! driver ──Job──▶ queue ─(0–30 ms each, in order)─▶ Disk
//!                   └ a local copy's or edit's result ──Written──▶ driver (acknowledge or take back)
//! ```
//!
//! As in the daemon: a register snapshot is skipped when a newer one is queued behind it; a
//! local write may fail (the world decides, seeded); after a failed edit of a document the
//! writer refuses that document's local edits until `Job::Resume` (the driver queues it right
//! after taking the failed edit back); background writes (the register, peers' updates) are
//! never waited for. A crash loses the queue: none of it was acknowledged.

use std::collections::{BTreeSet, VecDeque};

use rrt_sync::{Clipboard, EraUpdate, Staged};

use super::disk::Disk;

/// A write for the writer.
#[derive(Debug)]
pub(crate) enum Job {
    /// A local copy's register, which the copy waits for; the node crashes right after it is
    /// saved, before the commit, if `crash_after_save`.
    Copy {
        staged: Staged,
        crash_after_save: bool,
    },
    /// The register as peers changed it.
    Clipboard(Clipboard),
    /// A local edit's update, which the edit (appending `token`) waits for (of generation 0:
    /// no node of the simulation starts another).
    Edit {
        name: String,
        update: EraUpdate,
        token: String,
    },
    /// A peer's update, applied here.
    PeerUpdate { name: String, update: Vec<u8> },
    /// A failed edit of this document was taken back.
    Resume(String),
}

/// A write someone waits for, done.
#[derive(Debug)]
pub(crate) enum Written {
    Copy {
        staged: Staged,
        crash_after_save: bool,
        saved: bool,
    },
    Edit {
        name: String,
        update: EraUpdate,
        token: String,
        result: EditResult,
    },
}

/// What became of a local edit's update.
#[derive(Debug)]
pub(crate) enum EditResult {
    Stored,
    /// The append failed; the document as stored (its snapshot).
    Failed {
        stored: Vec<u8>,
    },
    /// An earlier edit of the document failed, and this one built on it.
    EarlierFailed,
}

/// The queue and the writer's own state.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    queue: VecDeque<Job>,
    /// A step is scheduled.
    busy: bool,
    /// Documents whose local edits are refused until `Job::Resume`.
    failed: BTreeSet<String>,
}

impl Writer {
    pub(crate) fn push(&mut self, job: Job) {
        self.queue.push_back(job);
    }

    /// Whether the world must schedule a step: jobs are queued and none is.
    pub(crate) fn due(&mut self) -> bool {
        let due = !self.busy && !self.queue.is_empty();
        self.busy |= due;
        due
    }

    /// The process is gone: so are its queue and its state.
    pub(crate) fn crash(&mut self) {
        *self = Self::default();
    }

    /// Carries out the next job (skipping superseded snapshots); a local write fails if `fail`.
    /// The result, if someone waits for it.
    pub(crate) fn step(&mut self, disk: &mut Disk, fail: bool, now_ms: u64) -> Option<Written> {
        self.busy = false;
        loop {
            let job = self.queue.pop_front()?;
            let superseded = matches!(job, Job::Clipboard(_))
                && self
                    .queue
                    .iter()
                    .any(|later| matches!(later, Job::Clipboard(_)));
            if !superseded {
                return self.write(job, disk, fail, now_ms);
            }
        }
    }

    fn write(&mut self, job: Job, disk: &mut Disk, fail: bool, now_ms: u64) -> Option<Written> {
        match job {
            Job::Copy {
                staged,
                crash_after_save,
            } => {
                if !fail {
                    disk.save_clipboard(staged.register(), now_ms);
                }
                Some(Written::Copy {
                    staged,
                    crash_after_save,
                    saved: !fail,
                })
            }
            Job::Clipboard(register) => {
                disk.save_clipboard(&register, now_ms);
                None
            }
            Job::Edit {
                name,
                update,
                token,
            } => {
                let result = if self.failed.contains(&name) {
                    EditResult::EarlierFailed
                } else if fail {
                    self.failed.insert(name.clone());
                    EditResult::Failed {
                        stored: disk.stored_snapshot(&name),
                    }
                } else {
                    disk.append_update(&name, &update.update);
                    EditResult::Stored
                };
                Some(Written::Edit {
                    name,
                    update,
                    token,
                    result,
                })
            }
            Job::PeerUpdate { name, update } => {
                disk.append_update(&name, &update);
                None
            }
            Job::Resume(name) => {
                self.failed.remove(&name);
                None
            }
        }
    }
}
