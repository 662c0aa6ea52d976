//! The mesh's protocol machines, sans-IO: each takes inputs with the time, is polled for what to
//! send and when to wake, and touches no socket — so a simulator drives them in virtual time, as
//! the network reactor drives them over real links. A [`Node`](crate::Node) needs none of this;
//! it is public for simulators, protocol tests and other drivers.
//!
//! * [`membership`]: who is up, over links — hello / goodbye / ping / pong and heartbeats.
//! * [`roster`]: every member of a large mesh, alive or dead, converging like a CRDT.
//! * [`swarm`]: partial views and a broadcast tree (HyParView + Plumtree) above the swarm size.
//! * [`join`]: the join secret's proof, bound to a TLS session.

pub mod join;
pub mod membership;
pub mod roster;
pub mod swarm;
