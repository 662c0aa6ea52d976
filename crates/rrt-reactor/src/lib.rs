#![doc = include_str!("../README.md")]
//!
//! # How it works
//!
//! A [`Worker`] exclusively owns some file descriptors (stdin, a socket, a set of peer
//! connections). [`Rrt`] runs it on its own thread, blocked in `epoll` through [`mio::Poll`] at
//! zero CPU, publishes what it produces to any number of async (tokio) or blocking subscribers
//! over a [`tokio::sync::broadcast`] channel, and hands it commands through a queue plus a
//! [`mio::Waker`]. When the worker fails it is restarted with backoff; when it panics, the panic
//! is caught and reported.
//!
//! ```text
//!  ┌ reactor thread ─────────────────────┐  ReactorEvent<E>   ┌ async / blocking code ┐
//!  │ mio::Poll (epoll)                   │ ─────broadcast───▶ │ Subscription::recv()  │
//!  │   ├ worker's fds → Worker::on_ready │                    │                       │
//!  │   ├ deadline     → on_deadline      │ ◀───queue+waker─── │ Rrt::send(command)    │
//!  │   └ Waker        → on_command       │                    └───────────────────────┘
//!  └─────────────────────────────────────┘
//! ```
//!
//! # Lifecycle
//!
//! The thread exists only while someone listens: the first [`Rrt::subscribe`] starts it, dropping
//! the last [`Subscription`] stops it (the waker interrupts the poll, nothing polls a flag on a
//! timer). Every launch is a new *generation*.
//!
//! ```text
//!                first subscribe
//!   ┌─────────┐ ───────────────▶ ┌──────────┐  created   ┌─────────┐
//!   │ Stopped │                  │ Starting │ ─────────▶ │ Running │ ◀──────────┐
//!   └─────────┘ ◀─────────────── └──────────┘            └─────────┘            │
//!     ▲   ▲      create failed or panicked                │  │  │               │
//!     │   │                                               │  │  │ Control::     │ created
//!     │   └────── Control::Stop, panic, last subscriber ──┘  │  │ Restart or    │
//!     │           left (ShutdownReason)                      │  │ poll error    │
//!     │                                                      │  ▼               │
//!     │   restart budget exhausted                       ┌────────────┐         │
//!     └──────────────────────────────────────────────────│ Restarting │─────────┘
//!                                                        └────────────┘
//!                                                      backoff: 100 ms, ×2, ≤ 5 s
//! ```
//!
//! * A worker whose *creation* fails or panics leaves the reactor [`State::Stopped`] with a typed
//!   [`ReactorError`] in [`Status::last_error`] and a [`ReactorEvent::Shutdown`]; the next
//!   subscriber tries again.
//! * Commands sent while the worker restarts wait in the queue and are delivered to the new
//!   worker; [`Rrt::send`] only refuses (returning the command) when the reactor is stopped.
//! * A subscriber that falls behind learns how many events it missed ([`RecvError::Lagged`]).
//! * An [`Rrt`] is an ordinary value: a program (or a test) may run as many as it likes.

mod driver;
mod error;
mod event;
mod policy;
mod rrt;
mod shared;
mod status;
mod subscription;
pub mod terminal;
mod worker;

pub use error::{BoxError, ReactorError, RestartCause, SendError};
pub use event::{ReactorEvent, ShutdownReason};
pub use policy::RestartPolicy;
pub use rrt::{Config, Rrt};
pub use status::{State, Status};
pub use subscription::{RecvError, Subscription, TryRecvError};
pub use worker::{Context, Control, WAKE_TOKEN, Worker};
