//! The network reactor: one thread owning every peer socket of an instance.

mod dial;
mod hub;
mod links;
mod stream;
mod tls;
mod worker;

pub use hub::{Role, Topology};
pub use tls::{join_proof, verify_join};
pub use worker::{
    LinkView, NetCommand, NetEvent, NetStatus, NetworkConfig, NetworkWorker, Reach, TcpConfig,
    TcpSecurity, TlsConfig,
};
