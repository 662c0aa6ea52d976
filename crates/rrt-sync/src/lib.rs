#![doc = include_str!("../README.md")]
//!
//! # What is here
//!
//! * [`HybridClock`] — a hybrid logical clock: wall-clock milliseconds plus a counter, so stamps
//!   stay close to real time yet never go backwards and always move past anything observed —
//!   within a maximum offset: a remote time further ahead is refused.
//! * [`Clipboard`] — a last-writer-wins register ordered by [`Stamp`] = (clock, origin): ties break
//!   deterministically, a value seen once never loses to an older one, and a peer whose clock runs
//!   ahead cannot pin its value: within the offset, observing its stamp moves every clock past
//!   it; beyond, it is refused.
//! * [`ClipSync`] — the clipboard's sync session: local copies staged until they are on disk,
//!   catch-up on connect (only what a peer lacks), peers' entries merged, what is new forwarded.
//!
//! * [`Document`] — a CRDT document (yrs): a text for scratch areas and a map for app state that
//!   converge however their updates travel; updates from the network are untrusted.
//!   Its name is a plain file name ([`valid_name`]), checked on every operation from a peer.
//! * [`Lineage`] — a document's generations: when deletions outweigh the text, a fresh CRDT
//!   seeded with it, the highest generation winning and older ones' edits carried into it.
//!   Not yet driven by [`DocSync`] or the node: documents do not shed their history yet.
//! * [`DocSync`] — the document sync session: versions on connect, diffs of only what is
//!   missing, batched live edits, large updates split into parts.
//! * [`rebase`] — a position in the text an editor saw, moved to the text as it is now (and
//!   [`changed_region`], where two texts differ); [`TextChange`] — positions moved exactly
//!   through an edit or a remote update's delta ([`Document::apply_observed`]).
//!
//! * Content of any kind: a [`ClipEntry`] holds [`Representation`]s by MIME type besides its
//!   text; small ones inline, large ones named by BLAKE3 hash ([`BlobHash`]) and fetched by
//!   [`BlobSync`] in 1 MiB parts, each verified on arrival against the blob's [`outline`].
//!
//! Each sync machine owns its messages ([`ClipMessage`], [`DocMessage`], [`BlobMessage`]); the wire composes them
//! with the link's own and frames them (`rrt-wire`, `rrt-mesh`), so this crate knows nothing of
//! sockets, framing or async runtimes.
//!
//! Everything here is sans-IO: time comes in as an argument, and nothing touches a file or a
//! socket. The stores that keep the clipboard, documents and blobs on disk are `rrt-store`'s.

mod blob_message;
mod blob_sync;
pub mod bytes_as_base64;
mod clip_message;
mod clip_sync;
mod clipboard;
mod content;
mod doc_message;
mod doc_sync;
mod document;
mod document_name;
mod file_list;
mod generation;
mod generation_message;
mod hlc;
mod origins;
mod outgoing;
pub mod outline;
mod pauses;
mod positions;
mod presence;
mod provenance;
mod rebase;
mod text_change;
mod three_way;

pub use blob_message::BlobMessage;
pub use blob_sync::{
    ACTIVE, BLOBS, BlobEvent, BlobSync, MAX_BLOB, MAX_OWED, MAX_SERVED, STALL_MS, WINDOW,
};
pub use clip_message::{ClipMessage, ClipStamp};
pub use clip_sync::{CLIPBOARD_HAVE, ClipEvent, ClipSync, Staged, TooLarge};
pub use clipboard::{ClipEntry, Clipboard, Copied, Merge};
pub use content::{
    BadHash, BlobHash, ContentError, FILES, INLINE_MAX, Inline, MAX_MIME, MAX_REPRESENTATIONS,
    Representation, check_content, dimensions,
};
pub use doc_message::{CrdtOperation, DocMessage, Part};
pub use doc_sync::{Change, DOC_GENERATIONS, DocPeer, DocSync};
pub use document::{Applied, DocError, Document, MAX_UPDATE, TextDelta, merge_updates};
pub use document_name::valid_name;
pub use file_list::{FileEntry, FileList, FileListError, MAX_FILES, MAX_PATH};
pub use generation::{KEPT, Lineage, MAX_NUMBER, OUTGROWN_FACTOR, OUTGROWN_MIN, Received};
pub use generation_message::{EraUpdate, Generation, Header, LineageMessage, Version, Versions};
pub use hlc::{ClockError, DEFAULT_MAX_OFFSET_MS, HybridClock, Stamp, Timestamp};
pub use outgoing::{Arrival, FULL_MESH, Neighbour, Outgoing};
pub use pauses::{MAX_WITHHELD, Pauses};
pub use presence::{
    Cursor, Heard, MAX_AHEAD_MS, MAX_NAME, MAX_PER_LINK, Presence, PresenceMessage,
    PresenceRefused, PresenceSync, REFRESH_MS, TTL_MS,
};
pub use provenance::{MAX_PROVENANCE_NAME, Provenance};
pub use rebase::{Bias, changed_region, rebase, rebase_index};
pub use text_change::TextChange;
