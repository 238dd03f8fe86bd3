//! A small HTTP/1.1 client for the HTTP server's tests, over a real socket (plain or TLS): it
//! sends raw bytes and reads one response at a time (the head parsed by httparse, then exactly
//! Content-Length body bytes; none for HEAD, 1xx, 204 and 304), so pipelined answers are read in
//! sequence and a body the server should not have sent shows as a response that does not parse.

use super::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

// ---- the client ------------------------------------------------------------------------------

/// One response as read from the wire.
#[derive(Debug, Clone)]
pub struct Response {
    pub version: u8,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header of that name, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How reading stopped when no complete response came: the bytes received before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Eof(Vec<u8>),
    Reset(Vec<u8>),
    Timeout(Vec<u8>),
}

impl End {
    /// The peer closed (FIN or reset) without sending anything.
    pub fn is_silent_close(&self) -> bool {
        matches!(self, End::Eof(b) | End::Reset(b) if b.is_empty())
    }
}

trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}

/// An HTTP/1.1 client on one connection. Whatever arrives beyond the response being read stays
/// buffered for the next one.
pub struct Client {
    io: Box<dyn Io>,
    /// The same socket: timeouts and half-closes.
    pub tcp: TcpStream,
    pending: Vec<u8>,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_nodelay(true).unwrap();
        tcp.set_read_timeout(Some(WAIT)).unwrap();
        Client {
            io: Box::new(tcp.try_clone().unwrap()),
            tcp,
            pending: Vec::new(),
        }
    }

    /// Over TLS, verifying the server's certificate for "localhost" against RootCA.pem. The
    /// handshake happens with the first send.
    pub fn connect_tls(port: u16) -> Client {
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_nodelay(true).unwrap();
        tcp.set_read_timeout(Some(WAIT)).unwrap();
        let stream = super::tls_client(tcp.try_clone().unwrap());
        Client {
            io: Box::new(stream),
            tcp,
            pending: Vec::new(),
        }
    }

    pub fn set_timeout(&self, timeout: Duration) {
        self.tcp.set_read_timeout(Some(timeout)).unwrap();
    }

    pub fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.io.write_all(bytes)?;
        self.io.flush()
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.try_send(bytes).expect("sending to the server");
    }

    /// Sends one byte per write (TCP_NODELAY is on, so each goes out on its own); stops quietly
    /// at the first failed write, since the server may answer and close before the end.
    pub fn send_bytewise(&mut self, bytes: &[u8]) {
        for b in bytes {
            if self.try_send(std::slice::from_ref(b)).is_err() {
                return;
            }
        }
    }

    /// Sends a request and reads its response.
    pub fn exchange(&mut self, request: &[u8]) -> Response {
        self.send(request);
        self.response()
    }

    /// GET `target` on this connection.
    pub fn get(&mut self, target: &str) -> Response {
        self.exchange(&get(target))
    }

    /// Reads the next response (not one to a HEAD request); panics when none comes.
    pub fn response(&mut self) -> Response {
        self.try_response(false)
            .unwrap_or_else(|end| panic!("no complete response: {}", describe(&end)))
    }

    /// Reads the next response to a HEAD request: its Content-Length announces no body.
    pub fn head_response(&mut self) -> Response {
        self.try_response(true)
            .unwrap_or_else(|end| panic!("no complete response: {}", describe(&end)))
    }

    /// Reads the next response, or says how the connection ended instead. Panics on bytes that
    /// are not an HTTP response.
    pub fn try_response(&mut self, to_head: bool) -> Result<Response, End> {
        loop {
            if let Some(response) = self.take_response(to_head) {
                return Ok(response);
            }
            self.read_more()?;
        }
    }

    /// Reads until the connection ends or the read timeout passes; what arrives is returned.
    pub fn end(&mut self) -> End {
        loop {
            if let Err(end) = self.read_more() {
                return end;
            }
        }
    }

    fn read_more(&mut self) -> Result<(), End> {
        let mut chunk = [0u8; 64 * 1024];
        match self.io.read(&mut chunk) {
            Ok(0) => Err(End::Eof(std::mem::take(&mut self.pending))),
            Ok(n) => {
                self.pending.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) => Err(match e.kind() {
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => {
                    End::Reset(std::mem::take(&mut self.pending))
                }
                // rustls: the peer closed without close_notify.
                std::io::ErrorKind::UnexpectedEof => End::Eof(std::mem::take(&mut self.pending)),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    End::Timeout(std::mem::take(&mut self.pending))
                }
                _ => End::Reset(std::mem::take(&mut self.pending)),
            }),
        }
    }

    /// A complete response at the front of `pending`, removed from it.
    fn take_response(&mut self, to_head: bool) -> Option<Response> {
        let mut headers = [httparse::EMPTY_HEADER; 100];
        let mut parsed = httparse::Response::new(&mut headers);
        let head_len = match parsed.parse(&self.pending) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return None,
            Err(e) => panic!(
                "not an HTTP response ({e}): {:?}",
                String::from_utf8_lossy(&self.pending[..self.pending.len().min(300)])
            ),
        };
        let status = parsed.code.unwrap();
        let headers: Vec<(String, String)> = parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        let mut response = Response {
            version: parsed.version.unwrap(),
            status,
            reason: parsed.reason.unwrap_or("").to_string(),
            headers,
            body: Vec::new(),
        };
        let no_body = to_head || (100..200).contains(&status) || status == 204 || status == 304;
        let length = if no_body {
            0
        } else {
            let lengths = response.all("content-length");
            assert_eq!(lengths.len(), 1, "one Content-Length: {response:?}");
            lengths[0]
                .parse::<usize>()
                .expect("a numeric Content-Length")
        };
        if self.pending.len() < head_len + length {
            return None;
        }
        response.body = self.pending[head_len..head_len + length].to_vec();
        self.pending.drain(..head_len + length);
        Some(response)
    }

    /// The plain socket alone (for a WebSocket peer after a 101): the client's other handle on
    /// it is closed, so dropping the result closes the connection.
    pub fn into_tcp(self) -> TcpStream {
        assert!(self.pending.is_empty(), "bytes behind the last response");
        self.tcp
    }

    /// Raw bytes: what is buffered first, then what the socket gives (0 at its end or on an
    /// error).
    pub fn read_raw(&mut self, buffer: &mut [u8]) -> usize {
        if !self.pending.is_empty() {
            let n = self.pending.len().min(buffer.len());
            buffer[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            return n;
        }
        self.io.read(buffer).unwrap_or(0)
    }

    /// Bytes received but not part of any response read so far.
    pub fn leftover(&self) -> &[u8] {
        &self.pending
    }
}

fn describe(end: &End) -> String {
    let (how, bytes) = match end {
        End::Eof(b) => ("EOF", b),
        End::Reset(b) => ("reset", b),
        End::Timeout(b) => ("timeout", b),
    };
    format!(
        "{how} after {} bytes: {:?}",
        bytes.len(),
        String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
    )
}

/// A request with `Host: test`, the extra headers, and a Content-Length for a non-empty body.
pub fn request(method: &str, target: &str, extra: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n");
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

pub fn get(target: &str) -> Vec<u8> {
    request("GET", target, &[], b"")
}

/// Connects, sends `request` and reads one response, on a connection of its own.
pub fn fetch(port: u16, request: &[u8]) -> Response {
    Client::connect(port).exchange(request)
}
