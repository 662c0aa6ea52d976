//! The one-line requests and the type each is answered with, written once for both clients.

/// Defines each request answered by one line as a method of both clients.
macro_rules! calls {
    ($($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $answer:ty = $request:expr;)*) => {
        impl Client {
            $(
                $(#[$doc])*
                pub fn $name(&mut self, $($arg: $ty),*) -> Result<$answer, ControlError> {
                    self.call(&$request)
                }
            )*
        }

        impl AsyncClient {
            $(
                $(#[$doc])*
                pub async fn $name(&mut self, $($arg: $ty),*) -> Result<$answer, ControlError> {
                    self.call(&$request).await
                }
            )*
        }
    };
}

use std::{collections::BTreeMap, path::PathBuf};

use rrt_mesh::{MeshView, Why};
use rrt_sync::{ClipEntry, Stamp};

use crate::{AsyncClient, Client, ControlError, HistoryEntry, Request, Status, Version};

calls! {
    /// The control protocol's version and the daemon's.
    fn version() -> Version = Request::Version;
    /// The mesh as the daemon sees it.
    fn peers() -> MeshView = Request::Peers;
    /// What the daemon is.
    fn status() -> Status = Request::Status;
    /// Copies a text; the new entry (`None`: it was the current value already).
    fn copy(text: String) -> Option<ClipEntry> = Request::Copy { text };
    /// Copies files and directories (recursively), by path on the daemon's host.
    fn copy_files(paths: Vec<PathBuf>) -> Option<ClipEntry> = Request::CopyFiles { paths };
    /// The current value, if any.
    fn paste() -> Option<ClipEntry> = Request::Paste;
    /// Where the current value came from.
    fn why() -> Why = Request::Why;
    /// The history, newest first.
    fn history() -> Vec<HistoryEntry> = Request::History;
    /// Reads the device's clipboard pauses again and applies them; the pauses in effect.
    fn read_pauses() -> rrt_sync::Pauses = Request::ReadPauses;
    /// Copies the history entry with this stamp again, every representation of it.
    fn copy_again(stamp: Stamp) -> Option<ClipEntry> = Request::CopyAgain { stamp };
    /// Pins (or unpins) the history entry with this stamp.
    fn pin(stamp: Stamp, pinned: bool) -> () = Request::Pin { stamp, pinned };
    /// The documents' names.
    fn documents() -> Vec<String> = Request::ScratchList;
    /// A document's text.
    fn text(name: String) -> String = Request::ScratchCat { name };
    /// Appends to a document, creating it if new.
    fn append(name: String, text: String) -> () = Request::ScratchAppend { name, text };
    /// Makes a document's text `text`; given `base` (the text the caller started from), only
    /// what differs between the two is applied, so edits made meanwhile survive.
    fn replace(name: String, text: String, base: Option<String>) -> () =
        Request::ScratchReplace { name, text, base };
    /// Inserts at a UTF-16 position (of `base`, when given); the text after.
    fn insert(name: String, at: usize, text: String, base: Option<String>) -> String =
        Request::ScratchInsert { name, at, text, base };
    /// Deletes UTF-16 code units at a position (of `base`, when given); the text after.
    fn delete(name: String, at: usize, len: usize, base: Option<String>) -> String =
        Request::ScratchDelete { name, at, len, base };
    /// The app state.
    fn state() -> BTreeMap<String, String> = Request::StateList;
    /// Sets a key of the app state.
    fn set(key: String, value: String) -> () = Request::StateSet { key, value };
    /// Removes a key of the app state.
    fn remove(key: String) -> () = Request::StateDel { key };
}
