//! The receiving half of a connection: bytes in, complete messages and control frames out.
//!
//! Complete frames are unmasked where they lie in the caller's buffer and handed out from
//! there, so a message that arrives in one read is never copied. Only a frame cut by the end
//! of a read is kept (`partial`), and only a fragmented message is assembled (`message`); both
//! live in one box the reader has only while it holds either, so an idle connection's reader
//! owns no memory and takes two words. Text is checked for UTF-8 as fragments arrive, so
//! invalid text fails fast even inside a long message.
//!
//! The reader decides nothing about the connection: a violation is reported, and the caller
//! fails the connection through [`super::Endpoint`].

use super::close::{
    INVALID_DATA, PROTOCOL_ERROR, TOO_BIG, Violation, parse_close_payload, violation,
};
use super::frame::{self, FrameInfo, Opcode, Parse};
use super::utf8::{self, Utf8};
use super::{Limits, MessageKind, Role};

mod direct;

/// Frames at least this large are read straight into the reader's own buffer
/// ([`Reader::direct_read_buffer`]): the socket's bytes are then copied once, not twice.
pub const LARGE_FRAME: usize = 16 * 1024;

/// What arrived, borrowed from the input or from the reader until the next call.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A whole message (fragments reassembled, text checked).
    Message {
        kind: MessageKind,
        data: &'a [u8],
    },
    Ping(&'a [u8]),
    Pong(&'a [u8]),
    /// The peer's close frame, checked: its code (1005 when it gave none) and reason.
    Close {
        code: u16,
        reason: &'a [u8],
    },
    /// The peer broke the protocol: the connection must be failed with this code. The rest of
    /// that read is dropped; from later reads only a close frame is reported.
    Violation(Violation),
}

/// Where the frames being parsed lie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The bytes handed to [`Reader::feed`].
    Input,
    /// The reader's own buffer (a frame was cut by the end of an earlier read).
    Partial,
}

/// Newly read bytes being taken apart: hand it to [`Reader::next`] until that says `None`.
pub struct Input<'i> {
    bytes: &'i mut [u8],
    offset: usize,
    source: Source,
}

/// A frame cut by the end of a read: `bytes[consumed..filled]` holds it so far.
#[derive(Default)]
struct PartialFrame {
    bytes: Vec<u8>,
    consumed: usize,
    filled: usize,
    /// The size of the cut frame once its header is known, else 0 (a frame is at most
    /// `message_max`, an i32, so it fits).
    needed: u32,
    /// What the next direct read asks for beyond `filled` (0: `direct::DIRECT_READ`; see there).
    room: u32,
}

/// The fragmented message being assembled (its opcode is the reader's).
#[derive(Default)]
struct Assembly {
    message: Vec<u8>,
    /// How much of `message` is known to be valid UTF-8 (at most `message_max`, an i32).
    utf8_valid_upto: u32,
}

/// What a reader holds between reads: a cut frame, a fragmented message. Boxed, and only while
/// there is something to hold: an idle connection's reader is two words, not eleven.
#[derive(Default)]
struct Held {
    partial: PartialFrame,
    assembly: Assembly,
}

/// What one complete frame means.
enum Step {
    /// A fragment was taken into the message being assembled.
    Absorbed,
    /// Hand out the frame's own payload.
    Deliver(Delivered),
    /// Hand out the assembled message.
    DeliverAssembled(MessageKind),
    Fail(Violation),
}

enum Delivered {
    Message(MessageKind),
    Ping,
    Pong,
    Close(u16),
}

#[derive(Default)]
pub struct Reader {
    /// None while nothing is held (see [`Held`]).
    held: Option<Box<Held>>,
    /// The opcode of the fragmented message being assembled.
    opcode: Option<Opcode>,
    /// The last complete frame was large: keep the partial buffer for the next one.
    large_frames: bool,
    /// An assembled message was handed out: clear it on the next call.
    delivered_assembled: bool,
    /// A violation was reported: only a close frame still matters.
    failed: bool,
}

fn kind_of(opcode: Opcode) -> MessageKind {
    if opcode == Opcode::Text {
        MessageKind::Text
    } else {
        MessageKind::Binary
    }
}

impl Reader {
    /// Starts on bytes just read. While a frame is cut, they are appended to it (one copy);
    /// otherwise frames are parsed where they lie.
    pub fn feed<'i>(&mut self, bytes: &'i mut [u8]) -> Input<'i> {
        if let Some(held) = &self.held
            && held.partial.filled > held.partial.consumed
        {
            self.append_partial(bytes);
            return Input {
                bytes,
                offset: 0,
                source: Source::Partial,
            };
        }
        Input {
            bytes,
            offset: 0,
            source: Source::Input,
        }
    }

    /// The next thing that happened in `input`, or None once every complete frame in it has
    /// been handed out (a cut frame at its end is kept for the next read).
    #[inline]
    pub fn next<'s>(
        &'s mut self,
        input: &'s mut Input<'_>,
        role: Role,
        limits: &Limits,
    ) -> Option<Incoming<'s>> {
        if input.source == Source::Input && !self.delivered_assembled {
            // The call after a read's last frame (once per read) answers here, without the
            // call into the parser.
            if input.offset >= input.bytes.len() {
                return None;
            }
            // A whole message in one frame outside a fragmented one, on a server (nearly every
            // frame it reads): `parse_whole_message` takes only frames needing nothing more.
            if role == Role::Server
                && self.opcode.is_none()
                && !self.failed
                && let Some((opcode, payload, ascii)) =
                    frame::parse_whole_message(&mut input.bytes[input.offset..], limits.message_max)
            {
                return self.deliver_whole(input, opcode, payload, ascii);
            }
        }
        self.next_frame(input, role, limits)
    }

    /// Delivers, as `next_frame` would, the frame `parse_whole_message` took at `input.offset`.
    #[inline(always)]
    fn deliver_whole<'s>(
        &mut self,
        input: &'s mut Input<'_>,
        opcode: Opcode,
        payload: std::ops::Range<usize>,
        ascii: bool,
    ) -> Option<Incoming<'s>> {
        let start = input.offset + payload.start;
        let end = input.offset + payload.end;
        input.offset = end;
        self.large_frames = payload.len() >= LARGE_FRAME;
        if opcode == Opcode::Text && !ascii && !utf8::is_valid(&input.bytes[start..end]) {
            self.skip_rest(input);
            self.failed = true;
            return Some(Incoming::Violation(violation(
                INVALID_DATA,
                "text message is not UTF-8",
            )));
        }
        Some(Incoming::Message {
            kind: kind_of(opcode),
            data: &input.bytes[start..end],
        })
    }

    fn next_frame<'s>(
        &'s mut self,
        input: &'s mut Input<'_>,
        role: Role,
        limits: &Limits,
    ) -> Option<Incoming<'s>> {
        if self.delivered_assembled {
            self.delivered_assembled = false;
            self.opcode = None;
            if let Some(held) = &mut self.held {
                held.assembly.reset();
            }
            self.drop_held_if_empty();
        }
        loop {
            let assembled = self
                .held
                .as_ref()
                .map_or(0, |held| held.assembly.message.len());
            let (start, buffer): (usize, &mut [u8]) = match input.source {
                Source::Input => (input.offset, input.bytes),
                Source::Partial => {
                    let partial = &mut self.held().partial;
                    (partial.consumed, &mut partial.bytes[..partial.filled])
                }
            };
            if start >= buffer.len() {
                self.input_done(input.source);
                return None;
            }
            let room = limits.message_max.saturating_sub(assembled);
            let (info, payload) =
                match frame::parse(&mut buffer[start..], role == Role::Server, room) {
                    Ok(Parse::Incomplete { frame_len }) => {
                        self.keep_cut_frame(input, frame_len.unwrap_or(0));
                        return None;
                    }
                    Err(violation) => {
                        // Nothing after a framing error can be trusted: drop the rest.
                        self.skip_rest(input);
                        if self.failed {
                            return None;
                        }
                        self.failed = true;
                        return Some(Incoming::Violation(violation));
                    }
                    Ok(Parse::Frame(info)) => {
                        let from = start + info.payload_start;
                        (info, from..from + info.payload_len)
                    }
                };
            match input.source {
                Source::Input => input.offset = payload.end,
                Source::Partial => self.held().partial.consumed = payload.end,
            }
            self.large_frames = info.payload_len >= LARGE_FRAME;
            if self.failed && info.opcode != Opcode::Close {
                continue;
            }
            // A whole message or a control frame (the usual frames) needs no assembly: the
            // reader holds nothing for it.
            let assembles = match info.opcode {
                Opcode::Text | Opcode::Binary => !info.fin && self.opcode.is_none(),
                Opcode::Continuation => self.opcode.is_some(),
                _ => false,
            };
            let step = match input.source {
                Source::Input if !assembles => on_frame(
                    &mut self.opcode,
                    None,
                    info,
                    &input.bytes[payload.clone()],
                    limits,
                ),
                Source::Input => {
                    let assembly = &mut self.held.get_or_insert_default().assembly;
                    let bytes = &input.bytes[payload.clone()];
                    on_frame(&mut self.opcode, Some(assembly), info, bytes, limits)
                }
                Source::Partial => {
                    let Held { partial, assembly } = self.held.get_or_insert_default().as_mut();
                    let bytes = &partial.bytes[payload.clone()];
                    on_frame(&mut self.opcode, Some(assembly), info, bytes, limits)
                }
            };
            match step {
                Step::Absorbed => continue,
                Step::Fail(violation) => {
                    self.skip_rest(input);
                    self.failed = true;
                    return Some(Incoming::Violation(violation));
                }
                Step::DeliverAssembled(kind) => {
                    self.delivered_assembled = true;
                    return Some(Incoming::Message {
                        kind,
                        data: &self.held().assembly.message,
                    });
                }
                Step::Deliver(what) => {
                    let data: &'s [u8] = match input.source {
                        Source::Input => &input.bytes[payload],
                        Source::Partial => &self.held().partial.bytes[payload],
                    };
                    return Some(match what {
                        Delivered::Message(kind) => Incoming::Message { kind, data },
                        Delivered::Ping => Incoming::Ping(data),
                        Delivered::Pong => Incoming::Pong(data),
                        Delivered::Close(code) => Incoming::Close {
                            code,
                            reason: data.get(2..).unwrap_or_default(),
                        },
                    });
                }
            }
        }
    }

    /// Frees what the reader holds (the connection ended).
    pub fn release_memory(&mut self) {
        *self = Reader::default();
    }

    /// Bytes the reader holds for this connection (a cut frame, an assembled message).
    pub fn buffered(&self) -> usize {
        self.held.as_ref().map_or(0, |held| {
            held.partial.bytes.capacity() + held.assembly.message.capacity()
        })
    }

    /// What the reader holds, made when it first holds something.
    fn held(&mut self) -> &mut Held {
        self.held.get_or_insert_default()
    }

    /// Gives the box back once it holds nothing a fresh one would not.
    fn drop_held_if_empty(&mut self) {
        if let Some(held) = &self.held
            && held.partial.bytes.capacity() == 0
            && held.partial.filled == 0
            && held.partial.needed == 0
            && held.assembly.message.capacity() == 0
        {
            self.held = None;
        }
    }

    fn append_partial(&mut self, data: &[u8]) {
        self.compact_partial();
        let partial = &mut self.held().partial;
        let end = partial.filled + data.len();
        if partial.bytes.len() < end {
            partial.bytes.resize(end, 0);
        }
        partial.bytes[partial.filled..end].copy_from_slice(data);
        partial.filled = end;
    }

    /// Moves the unconsumed bytes of the partial buffer to its start.
    fn compact_partial(&mut self) {
        let Some(held) = &mut self.held else {
            return;
        };
        let partial = &mut held.partial;
        if partial.consumed > 0 {
            partial
                .bytes
                .copy_within(partial.consumed..partial.filled, 0);
            partial.filled -= partial.consumed;
            partial.consumed = 0;
        }
    }

    /// The input ends inside a frame: keep its bytes for the next read.
    fn keep_cut_frame(&mut self, input: &mut Input<'_>, frame_len: usize) {
        self.held().partial.needed = u32::try_from(frame_len).unwrap_or(u32::MAX);
        match input.source {
            Source::Input => {
                let rest = std::mem::take(&mut input.bytes);
                let cut = &rest[input.offset..];
                input.offset = 0;
                self.append_partial(cut);
            }
            Source::Partial => self.compact_partial(),
        }
    }

    fn skip_rest(&mut self, input: &mut Input<'_>) {
        match input.source {
            Source::Input => input.offset = input.bytes.len(),
            Source::Partial => {
                let partial = &mut self.held().partial;
                partial.consumed = partial.filled;
            }
        }
        self.input_done(input.source);
    }

    /// Every byte was used: an idle connection keeps no buffer (unless large frames flow).
    fn input_done(&mut self, source: Source) {
        let large_frames = self.large_frames;
        if source == Source::Partial
            && let Some(held) = &mut self.held
            && held.partial.consumed >= held.partial.filled
        {
            let partial = &mut held.partial;
            partial.consumed = 0;
            partial.filled = 0;
            partial.needed = 0;
            // While large frames flow the buffer is kept for the next one (it is read into
            // directly); otherwise an idle connection owns none.
            if !large_frames {
                partial.bytes = Vec::new();
                partial.room = 0;
                self.drop_held_if_empty();
            }
        }
    }
}

impl Assembly {
    /// After a delivered message: nothing is kept, so an idle connection owns no buffer.
    fn reset(&mut self) {
        self.message = Vec::new();
        self.utf8_valid_upto = 0;
    }

    /// Adds a fragment of a message of `opcode`; `ascii`: it is all ASCII (known from
    /// unmasking it).
    fn append(
        &mut self,
        opcode: Opcode,
        payload: &[u8],
        ascii: bool,
        limits: &Limits,
    ) -> Result<(), Violation> {
        if self.message.len() + payload.len() > limits.message_max {
            return Err(violation(
                TOO_BIG,
                "message larger than websocket-message-size-max",
            ));
        }
        let before = self.message.len();
        self.message.extend_from_slice(payload);
        if opcode == Opcode::Text {
            // Check as fragments arrive, so invalid text fails fast; an incomplete sequence at
            // the end may still be completed by the next fragment. ASCII after text that ends
            // on a whole character is valid as it stands; after a cut sequence it is not, and
            // the check from that sequence's start says so.
            let checked = self.utf8_valid_upto as usize;
            let valid = if ascii && checked == before {
                self.message.len()
            } else {
                match utf8::check(&self.message[checked..]) {
                    Utf8::Valid => self.message.len(),
                    Utf8::Incomplete(upto) => checked + upto,
                    Utf8::Invalid => {
                        return Err(violation(INVALID_DATA, "text message is not UTF-8"));
                    }
                }
            };
            // At most message_max, which the table bounds to i32::MAX.
            self.utf8_valid_upto = u32::try_from(valid).unwrap_or(u32::MAX);
        }
        Ok(())
    }
}

/// What one complete frame means. `opcode`: the fragmented message's (the reader's);
/// `assembly`: given for a fragment (`next_frame` decides which frames are, as here).
/// Inlined into `next_frame`, as it was when it took the assembly itself: called apart, it cost
/// 30 instructions per echoed message.
#[inline(always)]
fn on_frame(
    opcode: &mut Option<Opcode>,
    assembly: Option<&mut Assembly>,
    info: FrameInfo,
    payload: &[u8],
    limits: &Limits,
) -> Step {
    match info.opcode {
        Opcode::Text | Opcode::Binary => {
            if opcode.is_some() {
                return Step::Fail(violation(
                    PROTOCOL_ERROR,
                    "new message inside a fragmented one",
                ));
            }
            if info.fin {
                if info.opcode == Opcode::Text && !info.ascii && !utf8::is_valid(payload) {
                    return Step::Fail(violation(INVALID_DATA, "text message is not UTF-8"));
                }
                return Step::Deliver(Delivered::Message(kind_of(info.opcode)));
            }
            let Some(assembly) = assembly else {
                unreachable!("next_frame gives the assembly for a first fragment");
            };
            *opcode = Some(info.opcode);
            assembly
                .append(info.opcode, payload, info.ascii, limits)
                .map_or_else(Step::Fail, |()| Step::Absorbed)
        }
        Opcode::Continuation => {
            let Some(message) = *opcode else {
                return Step::Fail(violation(PROTOCOL_ERROR, "continuation without a message"));
            };
            let Some(assembly) = assembly else {
                unreachable!("next_frame gives the assembly for a continuation");
            };
            if let Err(violation) = assembly.append(message, payload, info.ascii, limits) {
                return Step::Fail(violation);
            }
            if !info.fin {
                return Step::Absorbed;
            }
            if message == Opcode::Text
                && assembly.utf8_valid_upto as usize != assembly.message.len()
            {
                return Step::Fail(violation(
                    INVALID_DATA,
                    "text message ends inside a UTF-8 sequence",
                ));
            }
            Step::DeliverAssembled(kind_of(message))
        }
        Opcode::Ping => Step::Deliver(Delivered::Ping),
        Opcode::Pong => Step::Deliver(Delivered::Pong),
        Opcode::Close => match parse_close_payload(payload) {
            Ok((code, _reason)) => Step::Deliver(Delivered::Close(code)),
            Err(violation) => Step::Fail(violation),
        },
    }
}
