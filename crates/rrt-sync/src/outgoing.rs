//! What the sync machines hand their driver to send: the driver turns each into a network
//! command, and knows nothing of why.

use rrt_wire::Message;
use uuid::Uuid;

/// A message for the network layer.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// To every peer but `except`.
    Broadcast {
        /// The message.
        message: Message,
        /// The peer a forwarded update came from, which must not get it back.
        except: Option<Uuid>,
    },
    /// To one peer.
    To(Uuid, Message),
}
