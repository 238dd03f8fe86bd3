//! A file going out as an answer's body, in chunks as the socket takes them: never read whole
//! into memory. Over plain TCP the kernel copies it (`sendfile`); over TLS it is read in
//! records' worth and encrypted.

use crate::ws::connection::Writer;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::time::Instant;

/// The most one `sendfile` call sends. A stream goes on until the socket is full, so what
/// bounds the time one connection holds its loop is the socket's send buffer, not this.
const SENDFILE_CHUNK: u64 = 256 * 1024;

/// The most read from the file per TLS write: one TLS record.
const TLS_CHUNK: usize = 16 * 1024;

pub(crate) struct FileStream {
    file: File,
    offset: u64,
    remaining: u64,
    /// The last time the peer took bytes: a peer that stops reading is dropped after the
    /// request timeout.
    pub(crate) last_progress: Instant,
}

pub(crate) enum Pump {
    /// All sent (the socket may still hold some of it).
    Done,
    /// The socket is full: go on at its next writable edge.
    Blocked,
    /// The peer is gone, or the file changed under us (its length can no longer be honoured).
    Failed,
}

impl FileStream {
    pub(crate) fn new(file: File, offset: u64, length: u64) -> FileStream {
        FileStream {
            file,
            offset,
            remaining: length,
            last_progress: Instant::now(),
        }
    }

    /// Sends as much as the socket takes.
    pub(crate) fn pump(&mut self, writer: &mut Writer) -> Pump {
        loop {
            // What waits in the send buffer (the head, a TLS chunk) goes first.
            if writer.queued() > 0 || writer.transport.as_ref().is_some_and(|t| t.has_pending()) {
                let empty = writer.flush();
                if writer.broken {
                    return Pump::Failed;
                }
                if !empty {
                    return Pump::Blocked;
                }
            }
            if self.remaining == 0 {
                return Pump::Done;
            }
            let Some(transport) = writer.transport.as_ref() else {
                return Pump::Failed;
            };
            let sent = if transport.is_tls() {
                // (`remaining` cut to a chunk before it becomes a usize: on 32-bit targets a file
                // with 4 GiB or more left would otherwise give a chunk of what is left modulo
                // 4 GiB, and none, which ends the stream, with exactly 4 GiB left.)
                let mut chunk = vec![0; self.remaining.min(TLS_CHUNK as u64) as usize];
                match self.file.read_at(&mut chunk, self.offset) {
                    Ok(0) => return Pump::Failed,
                    Ok(n) => {
                        writer.write_raw(&chunk[..n]);
                        n
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return Pump::Failed,
                }
            } else {
                let mut offset = self.offset as i64;
                let count = self.remaining.min(SENDFILE_CHUNK) as usize;
                let transport = writer.transport.as_mut().expect("checked above");
                match transport.send_file(self.file.as_raw_fd(), &mut offset, count) {
                    Ok(0) => return Pump::Failed, // the file shrank
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Pump::Blocked,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        writer.broken = true;
                        return Pump::Failed;
                    }
                }
            };
            self.offset += sent as u64;
            self.remaining -= sent as u64;
            self.last_progress = Instant::now();
        }
    }
}
