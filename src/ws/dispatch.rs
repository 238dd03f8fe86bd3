//! What a session hands on from the reader: a message goes to the delegate where it lies (the
//! reader stays borrowed meanwhile: delivering it needs only the connection); handling a control
//! frame may use the whole session (and release the reader's memory), so its payload is copied
//! out first.

use super::connection::Connection;
use super::event::{Event, EventKind, MessageKind};
use crate::protocol::close::Violation;
use crate::protocol::{Incoming, Input, Reader};
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

/// Hands the messages at the head of `input` to the delegate where they lie (the reader stays
/// borrowed meanwhile: delivering them needs only the connection). Returns what ended the run:
/// None at the end of the input, else the control frame or violation that came next, copied
/// out. The first message takes the delegate's gate for itself, as any event does; from the
/// second on, the gate is held open for the rest of the run: one shared lock for the messages
/// of a read rather than one each, and a read of one message pays nothing for the hold.
pub(super) fn deliver_messages(
    connection: &Arc<Connection>,
    reader: &mut Reader,
    input: &mut Input<'_>,
) -> Option<Control> {
    let limits = &connection.common.settings.limits;
    let delegate = &connection.common.delegate;
    let mut hold = None;
    let mut first = true;
    loop {
        match reader.next(input, connection.common.role, limits)? {
            Incoming::Message { kind, data } => {
                #[cfg(test)]
                if data == super::tests::PANIC_TRIGGER {
                    panic!("a panic injected by a test");
                }
                let event = Event {
                    kind: EventKind::Message,
                    message: kind.into(),
                    status: 0,
                    data,
                    connection,
                };
                if first {
                    first = false;
                    delegate.invoke(&event);
                } else {
                    delegate.invoke_held(hold.get_or_insert_with(|| delegate.hold()), &event);
                }
            }
            other => return Some(Control::new(other)),
        }
    }
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
