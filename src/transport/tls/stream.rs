//! A TLS session over a non-blocking TCP socket, read and written like the socket itself.
//!
//! `read` fills the caller's buffer until it is full or the socket has nothing more, so a short
//! read still means "drained" (the edge-triggered loop relies on that). Records are read and
//! decrypted in this thread's input buffer; between reads the connection keeps only what rustls
//! has not consumed (a record cut by the end of a read) and plaintext that did not fit — an
//! idle connection keeps nothing. `write` seals up to one record of plaintext in this thread's
//! output buffer and writes it out; what the socket does not take stays with the connection
//! until `flush` is called on the next writable edge, and until then `write` pushes back.

use super::ClientTarget;
use super::failure::{TlsFailure, describe};
use super::records::{Held, Job, Session, sealed_size_at_most};
use crate::error::{Error, Result};
use crate::transport::NoSigPipe;
use mio::net::TcpStream;
use rustls::client::UnbufferedClientConnection;
use rustls::server::UnbufferedServerConnection;
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::sync::Arc;

/// The input buffer of each thread that reads TLS: several records per read, so that the
/// record cut by its end is seldom moved.
const INPUT_SIZE: usize = 64 * 1024;

/// The input buffer grows to this while one handshake message is longer than it (rustls
/// refuses handshake messages over 64 KiB first).
const INPUT_MAX: usize = 128 * 1024;

/// The longest record on the wire (16 KiB of plaintext, TLS 1.2's expansion, the header): one
/// read takes at most this beyond what the caller's buffer can still take.
const RECORD_MAX: usize = 16 * 1024 + 2048 + 5;

thread_local! {
    /// Records being read and decrypted.
    static INPUT: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    /// Records being sealed (at most one record's worth: a few KiB more than `WRITE_CHUNK`).
    static OUTPUT: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

pub struct TlsStream {
    pub tcp: TcpStream,
    tls: Session,
    /// Received bytes rustls has not consumed: a record cut by the end of a read, or records
    /// left when the reader's buffer was full.
    rx: Vec<u8>,
    held: Held,
    /// The TCP peer closed (after close_notify or without it): reads return 0 from now on.
    tcp_closed: bool,
    /// Why the session failed, once it has: rustls is not asked anything after its fatal
    /// alert (it would parse the failed input again, or seal data behind the alert), and every
    /// read and write returns this.
    failure: Option<TlsFailure>,
}

fn cannot_start(err: rustls::Error) -> Error {
    Error::invalid(format!("cannot start a TLS session: {err}"))
}

fn would_block() -> io::Error {
    io::ErrorKind::WouldBlock.into()
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the TLS session is closed (close_notify sent)",
    )
}

/// Writes `bytes` until the socket is full; returns how many went.
fn send(tcp: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    let mut sent = 0;
    while sent < bytes.len() {
        match NoSigPipe(tcp).write(&bytes[sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}

/// Moves held plaintext to the front of `buffer`; returns how much.
fn take_plain(plain: &mut Vec<u8>, buffer: &mut [u8]) -> usize {
    let n = plain.len().min(buffer.len());
    buffer[..n].copy_from_slice(&plain[..n]);
    if n == plain.len() {
        *plain = Vec::new();
    } else {
        plain.drain(..n);
    }
    n
}

impl TlsStream {
    /// The server side of a session on an accepted socket.
    pub fn accept(tcp: TcpStream, config: &Arc<rustls::ServerConfig>) -> Result<TlsStream> {
        let session = UnbufferedServerConnection::new(config.clone()).map_err(cannot_start)?;
        Ok(TlsStream::new(tcp, Session::Server(session)))
    }

    /// The client side of a session on a connected socket, towards the target's server name.
    pub fn connect(tcp: TcpStream, (config, name): &ClientTarget) -> Result<TlsStream> {
        let session =
            UnbufferedClientConnection::new(config.clone(), name.clone()).map_err(cannot_start)?;
        let mut stream = TlsStream::new(tcp, Session::Client(session));
        // The ClientHello waits in `tx` for the first flush.
        stream
            .tls
            .pump(&mut [], &mut stream.held, &mut Job::Idle)
            .map_err(cannot_start)?;
        Ok(stream)
    }

    fn new(tcp: TcpStream, tls: Session) -> TlsStream {
        TlsStream {
            tcp,
            tls,
            rx: Vec::new(),
            held: Held::default(),
            tcp_closed: false,
            failure: None,
        }
    }

    /// Bytes the session holds allocated beside rustls (an idle one holds none).
    #[cfg(test)]
    pub(super) fn held_capacity(&self) -> usize {
        self.rx.capacity()
            + self.held.plain.capacity()
            + self.held.tx.capacity()
            + self.held.early.capacity()
    }

    pub fn at_end(&self) -> bool {
        (self.held.peer_closed || self.tcp_closed) && self.held.plain.is_empty()
    }

    /// True while records wait for the socket.
    pub fn wants_write(&self) -> bool {
        !self.held.tx.is_empty()
    }

    /// The most bytes the socket is still to be given for the records held here and for
    /// `plain` bytes of plaintext written after them.
    pub fn wire_bytes_at_most(&self, plain: usize) -> usize {
        self.held.tx.len() + sealed_size_at_most(plain)
    }

    /// Writes pending TLS records; `Ok(false)` when the socket is full.
    pub fn flush(&mut self) -> io::Result<bool> {
        let tx = &mut self.held.tx;
        if tx.is_empty() {
            return Ok(true);
        }
        let sent = send(&self.tcp, tx)?;
        if sent == tx.len() {
            *tx = Vec::new();
            return Ok(true);
        }
        tx.drain(..sent);
        Ok(false)
    }

    fn failed(&mut self, err: rustls::Error) -> io::Error {
        // Send the alert rustls queued, so the peer learns why.
        let _ = self.flush();
        let text = describe(&err, self.tls.is_server());
        self.failure = Some(text.clone());
        io::Error::new(io::ErrorKind::InvalidData, text)
    }

    /// The failure again, for a call after it.
    fn has_failed(&self) -> io::Result<()> {
        match &self.failure {
            Some(failure) => Err(io::Error::new(io::ErrorKind::InvalidData, failure.clone())),
            None => Ok(()),
        }
    }

    pub fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        self.has_failed()?;
        let filled = take_plain(&mut self.held.plain, buffer);
        if filled == buffer.len() || self.held.peer_closed || self.tcp_closed {
            return Ok(filled);
        }
        let mut input = INPUT.take();
        if input.len() < INPUT_SIZE {
            input = vec![0; INPUT_SIZE];
        }
        let result = self.read_records(buffer, filled, &mut input);
        // One grown for a long handshake message is not kept.
        if input.len() == INPUT_SIZE {
            INPUT.set(input);
        }
        result
    }

    fn read_records(
        &mut self,
        buffer: &mut [u8],
        filled: usize,
        input: &mut Vec<u8>,
    ) -> io::Result<usize> {
        // input[start..used]: received, not consumed by rustls yet.
        let (mut start, mut used) = (0, self.rx.len());
        if used > input.len() {
            input.resize(used, 0);
        }
        input[..used].copy_from_slice(&self.rx);
        self.rx = Vec::new();
        let mut job = Job::Read {
            out: buffer,
            filled,
        };
        let outcome = loop {
            match self
                .tls
                .pump(&mut input[start..used], &mut self.held, &mut job)
            {
                Ok(consumed) => start += consumed,
                Err(err) => break Err(self.failed(err)),
            }
            // Handshake records and alerts go out as soon as rustls has them.
            if let Err(e) = self.flush() {
                break Err(e);
            }
            if job.is_full() || self.held.peer_closed {
                break Ok(());
            }
            if start == used {
                (start, used) = (0, 0);
            } else if input.len() - used < RECORD_MAX {
                // No room for a whole record behind the unconsumed bytes: they move to the
                // front (only then, so that a cut record is rarely copied).
                if start > 0 {
                    input.copy_within(start..used, 0);
                    (start, used) = (0, used - start);
                }
                if used == input.len() {
                    if used >= INPUT_MAX {
                        break Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "TLS handshake message too long",
                        ));
                    }
                    input.resize((used * 2).min(INPUT_MAX), 0);
                }
            }
            // No more than the caller's buffer can take, plus the record that may straddle it.
            let end = input
                .len()
                .min(used.saturating_add(job.room()).saturating_add(RECORD_MAX));
            match self.tcp.read(&mut input[used..end]) {
                Ok(0) => {
                    self.tcp_closed = true;
                    break Ok(());
                }
                Ok(n) => used += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        let Job::Read { filled, .. } = job else {
            unreachable!("the job is a read")
        };
        outcome?;
        // What rustls has not consumed comes first next time; usually nothing.
        if start < used && !self.tcp_closed && !self.held.peer_closed {
            self.rx = input[start..used].to_vec();
        }
        if filled > 0 || self.held.peer_closed || self.tcp_closed {
            Ok(filled)
        } else {
            Err(would_block())
        }
    }

    pub fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // Records the socket has not taken go first; until they are out, nothing more is taken.
        self.has_failed()?;
        if !self.flush()? {
            return Err(would_block());
        }
        if data.is_empty() {
            return Ok(0);
        }
        // After our close_notify the peer reads nothing more: the write fails as a socket's
        // would after shutdown (the data is not silently dropped).
        if self.held.close_wanted {
            return Err(closed());
        }
        let mut records = OUTPUT.take();
        let result = self.seal_and_send(data, &mut records);
        OUTPUT.set(records);
        result
    }

    fn seal_and_send(&mut self, data: &[u8], records: &mut Vec<u8>) -> io::Result<usize> {
        let mut job = Job::Write {
            data,
            accepted: 0,
            records,
            sealed: 0,
        };
        // rustls starts from the received bytes it has not consumed (records left by a full
        // reader's buffer are decrypted now, their plaintext held for the next read).
        let mut rx = std::mem::take(&mut self.rx);
        let pumped = self.tls.pump(&mut rx, &mut self.held, &mut job);
        if let Ok(consumed) = pumped
            && consumed < rx.len()
        {
            rx.drain(..consumed);
            self.rx = rx;
        }
        if let Err(err) = pumped {
            return Err(self.failed(err));
        }
        let Job::Write {
            accepted,
            records,
            sealed,
            ..
        } = job
        else {
            unreachable!("the job is a write")
        };
        let records = &records[..sealed];
        if self.held.tx.is_empty() {
            let sent = send(&self.tcp, records)?;
            self.held.tx.extend_from_slice(&records[sent..]);
        } else {
            // Records rustls queued before these (the handshake's, early data) keep their place.
            self.held.tx.extend_from_slice(records);
            self.flush()?;
        }
        if accepted == 0 {
            return Err(if self.held.close_sent {
                closed()
            } else {
                would_block()
            });
        }
        Ok(accepted)
    }

    fn send_close_notify(&mut self) {
        // After a failure the fatal alert was the last word.
        if self.held.close_wanted || self.failure.is_some() {
            return;
        }
        self.held.close_wanted = true;
        let mut rx = std::mem::take(&mut self.rx);
        if let Ok(consumed) = self.tls.pump(&mut rx, &mut self.held, &mut Job::Idle)
            && consumed < rx.len()
        {
            rx.drain(..consumed);
            self.rx = rx;
        }
        let _ = self.flush();
    }

    /// Sends close_notify and FIN.
    pub fn shutdown_write(&mut self) {
        self.send_close_notify();
        let _ = self.tcp.shutdown(std::net::Shutdown::Write);
    }

    /// Sends close_notify before the socket is dropped (a TLS peer then sees a clean end).
    pub fn close(&mut self) {
        self.send_close_notify();
    }
}
