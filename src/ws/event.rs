//! What the core tells an application: events, and the handler trait that receives them.
//!
//! The core knows nothing of C: `src/ffi` implements [`EventHandler`] for a C delegate and turns
//! each [`Event`] into a `WsEvent*` handle.

use super::connection::Connection;
use super::delegate::CallbackMark;
use std::sync::Arc;

/// Which delegate callback an event is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Open,
    Message,
    Error,
    Close,
}

/// The type of a message event's payload; `None` for open, error and close events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    None,
    Text,
    Binary,
    /// A ping arrived (already answered with a pong).
    Ping,
    Pong,
}

/// One event, borrowed for the duration of the handler call: `data` points into the event
/// loop's receive buffer (or the session's reassembly buffer), without a copy.
pub struct Event<'a> {
    pub kind: EventKind,
    pub message: MessageKind,
    /// The close or error status code (1000…1015); 0 for open and message events.
    pub status: u16,
    /// The message, or the close/error reason.
    pub data: &'a [u8],
    pub connection: &'a Arc<Connection>,
}

/// Receives a connection's events, on the event-loop thread that owns the connection.
pub trait EventHandler: Send + Sync {
    fn handle(&self, event: &Event<'_>);

    /// [`EventHandler::handle`] with the thread marked as inside a callback (a
    /// [`CallbackMark`]) while application code runs: what the delegate calls. A handler that
    /// looks up thread-locals of its own for each event marks the thread itself, next to them:
    /// one lookup then serves both (the library is a shared object, where each function's
    /// first thread-local costs a call).
    fn handle_marked(&self, event: &Event<'_>) {
        let _running = CallbackMark::new();
        self.handle(event);
    }

    /// False when events of `kind` would be ignored (a C delegate without that callback): the
    /// library then skips work done only for them. Asked once, when the delegate is made.
    fn handles(&self, _kind: EventKind) -> bool {
        true
    }
}

impl From<crate::protocol::MessageKind> for MessageKind {
    fn from(kind: crate::protocol::MessageKind) -> MessageKind {
        match kind {
            crate::protocol::MessageKind::Text => MessageKind::Text,
            crate::protocol::MessageKind::Binary => MessageKind::Binary,
        }
    }
}
