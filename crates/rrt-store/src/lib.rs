#![doc = include_str!("../README.md")]

mod blob_store;
mod clipboard_store;
mod document_store;
pub mod locked_file;

pub use blob_store::{BlobStore, BlobStoreError, Evicted};
pub use clipboard_store::{ClipboardStore, ClipboardStoreError};
pub use document_store::{DocumentStore, DocumentStoreError};
