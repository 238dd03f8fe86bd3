//! What a session hands on from the reader: a message goes to the delegate where it lies (the
//! reader stays borrowed meanwhile: delivering it needs only the connection); handling a control
//! frame may use the whole session (and release the reader's memory), so its payload is copied
//! out first.

use super::connection::Connection;
use super::event::{Event, EventKind, MessageKind};
use crate::protocol::Incoming;
use crate::protocol::close::Violation;
use std::sync::Arc;

/// Hands one event on `connection` to its delegate.
pub(super) fn emit_to(
    connection: &Arc<Connection>,
    kind: EventKind,
    message: MessageKind,
    status: u16,
    data: &[u8],
) {
    connection.common.delegate.invoke(&Event {
        kind,
        message,
        status,
        data,
        connection,
    });
}

/// What arrived besides a message, owned: a control frame's payload (at most 125 bytes) or a
/// violation. Messages that arrive after our own close frame are still delivered: the
/// peer may have sent them before it saw our close (RFC 6455 section 1.4 discards data only
/// after the peer's close frame).
pub(super) enum Control {
    Ping(ControlPayload),
    Pong(ControlPayload),
    Close { code: u16, reason: ControlPayload },
    Violation(Violation),
}

impl Control {
    pub(super) fn new(incoming: Incoming<'_>) -> Control {
        match incoming {
            Incoming::Ping(data) => Control::Ping(ControlPayload::new(data)),
            Incoming::Pong(data) => Control::Pong(ControlPayload::new(data)),
            Incoming::Close { code, reason } => Control::Close {
                code,
                reason: ControlPayload::new(reason),
            },
            Incoming::Violation(violation) => Control::Violation(violation),
            Incoming::Message { .. } => unreachable!("messages are delivered in place"),
        }
    }
}

/// A control frame's payload: the reader checks it is at most 125 bytes.
pub(super) struct ControlPayload {
    bytes: [u8; 125],
    len: u8,
}

impl ControlPayload {
    fn new(data: &[u8]) -> ControlPayload {
        let mut bytes = [0; 125];
        let len = data.len().min(bytes.len());
        bytes[..len].copy_from_slice(&data[..len]);
        ControlPayload {
            bytes,
            len: len as u8,
        }
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}
