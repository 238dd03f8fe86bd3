//! The rustls session driven through its unbuffered API: rustls holds the keys and the
//! handshake state, and the caller holds every byte — so an idle session holds none (the
//! buffered API keeps a 4 KiB record buffer per connection for as long as it lives).
//!
//! `pump` runs rustls over received records until it needs more of them; what it produces
//! goes where the caller's `Job` says (plaintext to a reader's buffer, records of a write to a
//! scratch buffer), and the rest into `Held`.

use rustls::client::UnbufferedClientConnection;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus,
    WriteTraffic,
};

/// Plaintext of one write call sealed at once: one full record.
pub const WRITE_CHUNK: usize = 16 * 1024;

/// Plaintext written before the handshake ends that is held for it (then writes push back).
const EARLY_LIMIT: usize = 64 * 1024;

/// Bytes a record adds to its plaintext, at most (header, explicit nonce, tag, content type):
/// a first guess of a buffer size that rustls corrects when it is short.
const RECORD_OVERHEAD: usize = 64;

/// The most bytes on the wire up to the end of the record that carries the last of `plain`
/// bytes of plaintext waiting to be written, when more may be written after them. Each write
/// call seals the first `WRITE_CHUNK` bytes of what waits into one record (all of it when
/// less waits), which adds at most `RECORD_OVERHEAD`. So that record is the
/// `plain / WRITE_CHUNK`th, rounded up, and ends at most where its chunk would: it may carry
/// bytes written after the `plain` ones, which the peer must have before it reads the last of
/// these.
pub fn sealed_size_at_most(plain: usize) -> usize {
    let records = plain.div_ceil(WRITE_CHUNK);
    records * (WRITE_CHUNK + RECORD_OVERHEAD)
}

pub enum Session {
    Server(UnbufferedServerConnection),
    Client(UnbufferedClientConnection),
}

/// What a session holds beside rustls; all empty (no allocation) while it is idle.
#[derive(Default)]
pub struct Held {
    /// Plaintext of a record that did not fit into the reader's buffer.
    pub plain: Vec<u8>,
    /// Records the socket has not taken yet.
    pub tx: Vec<u8>,
    /// Plaintext written before the handshake ended.
    pub early: Vec<u8>,
    /// The peer's close_notify arrived: nothing more will be read.
    pub peer_closed: bool,
    /// Our close_notify is to be sent as soon as the session may (once).
    pub close_wanted: bool,
    pub close_sent: bool,
}

/// Why the caller runs rustls.
pub enum Job<'a> {
    /// Reading: plaintext goes to `out[filled..]`, then to `Held::plain` once `out` is full.
    Read { out: &'a mut [u8], filled: usize },
    /// Writing: up to `WRITE_CHUNK` bytes of `data` are sealed into `records[..sealed]` (or
    /// held as early plaintext during the handshake); `accepted` says how many.
    Write {
        data: &'a [u8],
        accepted: usize,
        records: &'a mut Vec<u8>,
        sealed: usize,
    },
    /// Only bringing the session forward (handshake records, close_notify).
    Idle,
}

impl Job<'_> {
    /// A reader's buffer is full.
    pub fn is_full(&self) -> bool {
        self.room() == 0
    }

    /// What a reader's buffer can still take.
    pub fn room(&self) -> usize {
        match self {
            Job::Read { out, filled } => out.len() - filled,
            _ => usize::MAX,
        }
    }
}

impl Session {
    pub fn is_server(&self) -> bool {
        matches!(self, Session::Server(_))
    }

    fn step(
        &mut self,
        incoming: &mut [u8],
        held: &mut Held,
        job: &mut Job<'_>,
    ) -> Result<(usize, bool), (usize, rustls::Error)> {
        match self {
            Session::Server(c) => step(c.process_tls_records(incoming), held, job),
            Session::Client(c) => step(c.process_tls_records(incoming), held, job),
        }
    }

    /// Encodes the fatal alert rustls queued with a failure. It stops there: asked again,
    /// rustls would parse the bytes that failed once more and queue a second fatal alert (a
    /// broken invariant it asserts in debug builds). `incoming` must be the failed call's input
    /// after its discard: rustls' handshake joiner keeps ranges into it.
    fn queued_alert(&mut self, incoming: &mut [u8], tx: &mut Vec<u8>) {
        let mut at = 0;
        while let Some(discard) = match self {
            Session::Server(c) => alert_step(c.process_tls_records(&mut incoming[at..]), tx),
            Session::Client(c) => alert_step(c.process_tls_records(&mut incoming[at..]), tx),
        } {
            at += discard;
        }
    }

    /// Runs rustls over `incoming` (received records, from the first one it has not consumed)
    /// until it needs more of them, or the reader's buffer is full. Returns how many bytes of
    /// `incoming` it consumed: the rest must come first next time.
    pub fn pump(
        &mut self,
        incoming: &mut [u8],
        held: &mut Held,
        job: &mut Job<'_>,
    ) -> Result<usize, rustls::Error> {
        let mut consumed = 0;
        loop {
            match self.step(&mut incoming[consumed..], held, job) {
                Ok((discard, more)) => {
                    consumed += discard;
                    if !more {
                        return Ok(consumed);
                    }
                }
                Err((discard, err)) => {
                    consumed += discard;
                    self.queued_alert(&mut incoming[consumed..], &mut held.tx);
                    return Err(err);
                }
            }
        }
    }
}

/// Handles one state of the session; says whether rustls may go on with the input.
fn step<Data>(
    status: UnbufferedStatus<'_, '_, Data>,
    held: &mut Held,
    job: &mut Job<'_>,
) -> Result<(usize, bool), (usize, rustls::Error)> {
    let discard = status.discard;
    let failed = |err| (discard, err);
    let more = match status.state.map_err(failed)? {
        ConnectionState::ReadTraffic(mut traffic) => {
            while let Some(record) = traffic.next_record() {
                deliver(record.map_err(failed)?.payload, job, &mut held.plain);
            }
            !job.is_full()
        }
        ConnectionState::EncodeTlsData(mut data) => {
            append(&mut held.tx, RECORD_OVERHEAD, |out| {
                match data.encode(out) {
                    Ok(n) => Ok(n),
                    Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size })) => {
                        Err(Some(required_size))
                    }
                    Err(_) => Err(None),
                }
            })
            .map_err(failed)?;
            true
        }
        // The records are in `tx`, in order: the socket takes them when it can.
        ConnectionState::TransmitTlsData(transmit) => {
            transmit.done();
            true
        }
        ConnectionState::WriteTraffic(mut traffic) => {
            if !held.early.is_empty() {
                let early = std::mem::take(&mut held.early);
                append(&mut held.tx, early.len() + RECORD_OVERHEAD * 5, |out| {
                    encrypt(&mut traffic, &early, out)
                })
                .map_err(failed)?;
            }
            if let Job::Write {
                data,
                accepted,
                records,
                sealed,
            } = job
            {
                let take = data.len().min(WRITE_CHUNK);
                *sealed = seal(records, take + RECORD_OVERHEAD, |out| {
                    encrypt(&mut traffic, &data[..take], out)
                })
                .map_err(failed)?;
                *accepted = take;
            }
            if held.close_wanted && !held.close_sent {
                held.close_sent = true;
                append(&mut held.tx, RECORD_OVERHEAD, |out| {
                    traffic.queue_close_notify(out).map_err(size_needed)
                })
                .map_err(failed)?;
            }
            false
        }
        // The handshake waits for the peer; a write meanwhile is kept for its end.
        ConnectionState::BlockedHandshake => {
            if let Job::Write { data, accepted, .. } = job {
                let take = data.len().min(EARLY_LIMIT.saturating_sub(held.early.len()));
                held.early.extend_from_slice(&data[..take]);
                *accepted = take;
            }
            false
        }
        // Nothing more will be read; writing goes on until we close (TLS 1.3 allows a
        // half-closed session, and a WebSocket peer that closed its side still waits for
        // our Close frame). Our close_notify follows with our own close.
        ConnectionState::PeerClosed => {
            held.peer_closed = true;
            true
        }
        // close_notify went both ways: a write is refused (the stream reports it closed).
        ConnectionState::Closed => {
            held.peer_closed = true;
            held.close_sent = true;
            false
        }
        // Early data is never accepted (the server configuration leaves it off).
        _ => false,
    };
    Ok((discard, more))
}

/// One state after a failure: plaintext that came before the failure is dropped (Some: the
/// discard, ask again); the queued alert is encoded into `tx`, or there is none (None: done).
fn alert_step<Data>(status: UnbufferedStatus<'_, '_, Data>, tx: &mut Vec<u8>) -> Option<usize> {
    match status.state {
        Ok(ConnectionState::ReadTraffic(mut traffic)) => {
            while traffic.next_record().is_some() {}
            Some(status.discard)
        }
        Ok(ConnectionState::EncodeTlsData(mut data)) => {
            // Encoded or not (no room can be made), nothing more is asked of rustls.
            let _ = append(tx, RECORD_OVERHEAD, |out| {
                data.encode(out).map_err(|e| match e {
                    EncodeError::InsufficientSize(s) => Some(s.required_size),
                    EncodeError::AlreadyEncoded => None,
                })
            });
            None
        }
        _ => None,
    }
}

/// Copies received plaintext to the reader's buffer as far as it reaches; the rest is held.
fn deliver(payload: &[u8], job: &mut Job<'_>, plain: &mut Vec<u8>) {
    let mut rest = payload;
    if let Job::Read { out, filled } = job {
        let n = rest.len().min(out.len() - *filled);
        out[*filled..*filled + n].copy_from_slice(&rest[..n]);
        *filled += n;
        rest = &rest[n..];
    }
    plain.extend_from_slice(rest);
}

fn size_needed(err: EncryptError) -> Option<usize> {
    match err {
        EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => {
            Some(required_size)
        }
        _ => None,
    }
}

fn encrypt<Data>(
    traffic: &mut WriteTraffic<'_, Data>,
    plaintext: &[u8],
    out: &mut [u8],
) -> Result<usize, Option<usize>> {
    traffic.encrypt(plaintext, out).map_err(size_needed)
}

/// Runs `produce` over `buffer[..]` (grown to `guess`, then to what rustls says it needs);
/// returns the bytes produced. `buffer` keeps its length: it is a scratch buffer, initialised
/// once.
fn seal(
    buffer: &mut Vec<u8>,
    guess: usize,
    mut produce: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
) -> Result<usize, rustls::Error> {
    if buffer.len() < guess {
        buffer.resize(guess, 0);
    }
    loop {
        match produce(buffer) {
            Ok(n) => return Ok(n),
            Err(Some(needed)) if needed > buffer.len() => buffer.resize(needed, 0),
            Err(_) => return Err(rustls::Error::EncryptError),
        }
    }
}

/// Runs `produce` over new room at the end of `buffer` and keeps what it wrote there.
fn append(
    buffer: &mut Vec<u8>,
    guess: usize,
    mut produce: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
) -> Result<(), rustls::Error> {
    let start = buffer.len();
    let mut room = guess;
    loop {
        buffer.resize(start + room, 0);
        match produce(&mut buffer[start..]) {
            Ok(n) => {
                buffer.truncate(start + n);
                return Ok(());
            }
            Err(Some(needed)) if needed > room => room = needed,
            Err(_) => {
                buffer.truncate(start);
                return Err(rustls::Error::EncryptError);
            }
        }
    }
}
