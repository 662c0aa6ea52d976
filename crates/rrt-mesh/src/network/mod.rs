//! The network reactor.

mod worker;

pub use worker::{NetCommand, NetEvent, NetworkConfig, NetworkWorker};
