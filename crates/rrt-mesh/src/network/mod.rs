//! The network reactor: one thread owning every peer socket of an instance.

mod hub;
mod worker;

pub use hub::{Role, Topology};
pub use worker::{NetCommand, NetEvent, NetStatus, NetworkConfig, NetworkWorker};
