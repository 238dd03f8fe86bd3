//! TLS streams over real loopback sockets: every byte arrives in order whatever the reader's
//! buffer size, a short read still means "drained", the end is seen on both sides, and a
//! session that has nothing in flight holds no buffer.

use super::{TlsStream, client_target, server_config};
use crate::config::{ClientTls, ServerTls};
use mio::net::TcpStream;
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The test certificates (tests/scripts/make-certs.sh), in the directory the integration tests
/// use (target/tmp/certs), made aside and renamed into place as they are.
pub(crate) fn test_certs() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // target/<profile>/deps/<this test binary>
        let exe = std::env::current_exe().unwrap();
        let target = exe.ancestors().nth(3).unwrap().to_path_buf();
        let dir = target.join("tmp").join("certs");
        if !dir.join("client_privkey.pem").exists() {
            std::fs::create_dir_all(target.join("tmp")).unwrap();
            let scratch = dir.with_extension(format!("tmp{}", std::process::id()));
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripts/make-certs.sh");
            let status = std::process::Command::new("bash")
                .arg(script)
                .arg(&scratch)
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "make-certs.sh failed");
            if std::fs::rename(&scratch, &dir).is_err() {
                let _ = std::fs::remove_dir_all(&scratch);
            }
        }
        dir
    })
    .clone()
}

/// Waits (poll(2), 10 s at most) until the socket has something to read.
fn wait_readable(stream: &TlsStream) {
    let mut fd = libc::pollfd {
        fd: stream.tcp.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the duration of the call.
    let ready = unsafe { libc::poll(&mut fd, 1, 10_000) };
    assert_eq!(ready, 1, "nothing arrived within 10 s");
}

/// A server and a client session over one loopback connection, with the handshake done.
fn pair() -> (TlsStream, TlsStream) {
    let dir = test_certs();
    let config = server_config(&ServerTls {
        cert_file: dir.join("fullchain.pem"),
        key_file: dir.join("privkey.pem"),
        ..ServerTls::default()
    })
    .unwrap();
    let target = client_target(
        &ClientTls {
            ca_files: vec![dir.join("RootCA.pem")],
            ..ClientTls::default()
        },
        "localhost",
    )
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    for socket in [&client, &server] {
        socket.set_nonblocking(true).unwrap();
    }
    let mut server = TlsStream::accept(TcpStream::from_std(server), &config).unwrap();
    let mut client = TlsStream::connect(TcpStream::from_std(client), &target).unwrap();
    // The client's first bytes wait for the handshake's end; the server reads them after it.
    assert_eq!(client.write(b"hello").unwrap(), 5);
    assert!(client.flush().unwrap());
    let mut got = [0u8; 5];
    let mut filled = 0;
    while filled < got.len() {
        wait_readable(&server);
        match server.read(&mut got[filled..]) {
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("server read: {e}"),
        }
        // The client reads the server's flight (and its session tickets).
        match client.read(&mut [0u8; 64]) {
            Ok(n) => panic!("the server sent {n} bytes of data"),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("client read: {e}"),
        }
    }
    assert_eq!(&got, b"hello");
    (server, client)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Sends `data` from one side and reads it on the other in reads of `chunk`, both
/// non-blocking and interleaved (the socket buffers need not hold it all). After the last
/// byte the reader has nothing more: a short read meant "drained".
fn transfer(from: &mut TlsStream, to: &mut TlsStream, data: &[u8], chunk: usize) -> Vec<u8> {
    let (mut written, mut got) = (0, Vec::new());
    let mut buffer = vec![0u8; chunk];
    while got.len() < data.len() {
        while written < data.len() {
            match from.write(&data[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("write: {e}"),
            }
        }
        from.flush().unwrap();
        loop {
            match to.read(&mut buffer) {
                Ok(0) => panic!("the stream ended after {} bytes", got.len()),
                Ok(n) => {
                    got.extend_from_slice(&buffer[..n]);
                    if n < chunk {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("read: {e}"),
            }
        }
        if got.len() < data.len() {
            // Drained: only new bytes on the socket can bring more.
            wait_readable(to);
        }
    }
    let e = to.read(&mut buffer).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    got
}

#[test]
fn every_byte_arrives_in_order_whatever_the_reader_s_buffer() {
    let (mut server, mut client) = pair();
    // Several records per write, records cut by the socket reads, records larger than the
    // reader's buffer.
    for (len, chunk) in [
        (1, 1),
        (60_000, 7),
        (60_000, 1000),
        (60_000, 64 * 1024),
        (17_000, 16 * 1024),
    ] {
        let data = pattern(len);
        let got = transfer(&mut client, &mut server, &data, chunk);
        assert!(got == data, "{len} bytes in reads of {chunk}");
        let got = transfer(&mut server, &mut client, &data, chunk);
        assert!(got == data, "{len} bytes back in reads of {chunk}");
    }
}

#[test]
fn an_idle_session_holds_no_buffer() {
    let (mut server, mut client) = pair();
    // Small reader's buffers leave records and plaintext with the session between reads.
    for (len, chunk) in [
        (32, 64 * 1024),
        (5000, 7),
        (40_000, 1000),
        (40_000, 64 * 1024),
    ] {
        let data = pattern(len);
        assert!(transfer(&mut client, &mut server, &data, chunk) == data);
        assert!(transfer(&mut server, &mut client, &data, chunk) == data);
        assert_eq!(
            server.held_capacity(),
            0,
            "server after {len} bytes each way"
        );
        assert_eq!(
            client.held_capacity(),
            0,
            "client after {len} bytes each way"
        );
    }
}

#[test]
fn close_notify_ends_the_stream_on_both_sides() {
    let (mut server, mut client) = pair();
    assert_eq!(client.write(b"last words").unwrap(), 10);
    client.close();
    let mut buffer = [0u8; 64];
    let mut got = Vec::new();
    loop {
        wait_readable(&server);
        match server.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("server read: {e}"),
        }
        if server.at_end() {
            break;
        }
    }
    assert_eq!(got, b"last words");
    assert!(server.at_end());
    assert_eq!(server.read(&mut buffer).unwrap(), 0);
    // The peer's close_notify closes only its side: the server closes its own.
    server.close();
    wait_readable(&client);
    assert_eq!(client.read(&mut buffer).unwrap(), 0);
    assert!(client.at_end());
    // After close_notify both ways a late write fails as on a shut-down socket: not dropped
    // in silence, not left waiting for a socket.
    assert_eq!(
        server.write(b"late").unwrap_err().kind(),
        io::ErrorKind::BrokenPipe
    );
    assert!(!server.wants_write());
}

/// Waits until everything `stream` sent has reached the peer's socket (the send queue's
/// unacknowledged bytes drop to 0; on loopback the acknowledgement follows the delivery).
fn wait_delivered(stream: &TlsStream) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut queued: i32 = 0;
        // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int through the valid pointer.
        let status = unsafe { libc::ioctl(stream.tcp.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
        assert_eq!(status, 0, "ioctl(SIOCOUTQ)");
        if queued == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not delivered in 10 s"
        );
        std::thread::yield_now();
    }
}

/// Reads until the end of the stream; what came.
fn read_to_end(stream: &mut TlsStream) -> Vec<u8> {
    let (mut got, mut buffer) = (Vec::new(), [0u8; 64]);
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_readable(stream),
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// The peer's data and close_notify wait unread (the reader's buffer was full) when a reply
/// is written: the reply is sealed and goes out, and our close_notify only with our close.
#[test]
fn a_reply_written_while_the_peers_close_notify_waits_reaches_the_peer() {
    let (mut server, mut client) = pair();
    for _ in 0..3 {
        assert_eq!(client.write(b"aaaa").unwrap(), 4);
    }
    client.close();
    assert!(client.flush().unwrap());
    wait_delivered(&client);
    let mut four = [0u8; 4];
    assert_eq!(server.read(&mut four).unwrap(), 4);
    assert_eq!(server.write(b"reply").unwrap(), 5);
    assert!(server.flush().unwrap());
    wait_readable(&client);
    let mut got = [0u8; 64];
    assert_eq!(client.read(&mut got).unwrap(), 5);
    assert_eq!(&got[..5], b"reply");
    assert_eq!(read_to_end(&mut server), b"aaaaaaaa");
    server.close();
    assert_eq!(read_to_end(&mut client), b"");
}

/// TLS 1.3 lets a peer close its side and still read: a WebSocket client may send its Close
/// frame and close_notify together, and must still get the server's Close frame.
#[test]
fn a_peer_that_closed_its_side_still_reads_the_answer() {
    let (mut server, mut client) = pair();
    assert_eq!(client.write(b"close-frame").unwrap(), 11);
    client.close();
    assert!(client.flush().unwrap());
    assert_eq!(read_to_end(&mut server), b"close-frame");
    assert_eq!(server.write(b"close-reply").unwrap(), 11);
    server.close();
    assert_eq!(read_to_end(&mut client), b"close-reply");
}

/// After a failure rustls is asked nothing more: the peer gets one fatal alert and nothing
/// after it, and every later call returns the same failure.
#[test]
fn after_a_failure_the_peer_gets_one_alert_and_nothing_more() {
    use std::io::{Read, Write};
    let (mut server, client) = pair();
    // An application-data record that cannot be decrypted.
    let mut bad = vec![0x17, 0x03, 0x03, 0x00, 0x20];
    bad.extend([0u8; 32]);
    let mut buffer = [0u8; 64];
    (&client.tcp).write_all(&bad).unwrap();
    wait_readable(&server);
    let first = server.read(&mut buffer).unwrap_err();
    assert_eq!(first.kind(), io::ErrorKind::InvalidData);
    (&client.tcp).write_all(&bad).unwrap();
    let again = server.read(&mut buffer).unwrap_err();
    assert_eq!(again.to_string(), first.to_string());
    let write = server.write(b"after the alert").unwrap_err();
    assert_eq!(write.to_string(), first.to_string());
    server.shutdown_write();
    // What the server sent after the handshake: records until its FIN.
    let mut raw = Vec::new();
    let mut tcp = &client.tcp;
    loop {
        let mut fd = libc::pollfd {
            fd: client.tcp.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the duration of the call.
        assert_eq!(
            unsafe { libc::poll(&mut fd, 1, 10_000) },
            1,
            "no FIN in 10 s"
        );
        match tcp.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("client read: {e}"),
        }
    }
    let mut records = 0;
    let mut at = 0;
    while at + 5 <= raw.len() {
        records += 1;
        at += 5 + usize::from(u16::from_be_bytes([raw[at + 3], raw[at + 4]]));
    }
    assert_eq!(at, raw.len(), "whole records");
    assert_eq!(records, 1, "one record (the alert) in {raw:02x?}");
}

/// Keepalive takes `Transport::wire_bytes_at_most` for where its ping ends on the wire. Short
/// of the truth, it would drop a live peer still reading what came before the ping: so the
/// plaintext of every size, written as the send buffer writes it, takes no more on the wire.
#[test]
fn written_plaintext_takes_no_more_on_the_wire_than_keepalive_counts() {
    use super::records::WRITE_CHUNK;
    use crate::transport::Transport;
    fn stream(transport: &mut Transport) -> &mut TlsStream {
        match transport {
            Transport::Tls(tls) => tls,
            Transport::Plain(_) => unreachable!("a TLS transport"),
        }
    }
    let (server, mut client) = pair();
    let mut server = Transport::Tls(Box::new(server));
    for len in [
        1,
        100,
        WRITE_CHUNK - 1,
        WRITE_CHUNK,
        WRITE_CHUNK + 1,
        5 * WRITE_CHUNK + 7,
        1 << 20,
    ] {
        wait_delivered(stream(&mut server));
        assert_eq!(server.wire_bytes_at_most(0), 0, "nothing is held");
        let acknowledged_before = server.bytes_acknowledged().unwrap();
        let bound = server.wire_bytes_at_most(len);
        let data = pattern(len);
        let got = transfer(stream(&mut server), &mut client, &data, 64 * 1024);
        assert!(got == data);
        wait_delivered(stream(&mut server));
        let on_the_wire = (server.bytes_acknowledged().unwrap() - acknowledged_before) as usize;
        assert!(
            on_the_wire > len && on_the_wire <= bound,
            "{len} bytes of plaintext took {on_the_wire} on the wire; counted at most {bound}"
        );
    }
}

/// Keepalive's ping is sealed with what follows it when the application sends more before the
/// ping leaves the send buffer: the ping's record then ends up to 16 KiB of plaintext past the
/// ping. The peer can read the ping only once it has that whole record, so where keepalive
/// takes the ping to end must not fall short of that record's end. (Records are read raw off
/// the client's socket; TLS 1.3 adds 17 bytes to the plaintext inside a record's length.)
#[test]
fn the_record_that_carries_the_last_byte_counted_ends_within_the_count() {
    use super::records::WRITE_CHUNK;
    use crate::transport::Transport;
    use std::io::Read;
    for counted in [
        1,
        100,
        WRITE_CHUNK - 1,
        WRITE_CHUNK + 1,
        5 * WRITE_CHUNK + 7,
    ] {
        let (server, client) = pair();
        let mut server = Transport::Tls(Box::new(server));
        let bound = server.wire_bytes_at_most(counted);
        // What was counted, then as much again and 16 KiB more, written as the send buffer
        // writes: all that waits, each time.
        let data = pattern(2 * counted + WRITE_CHUNK);
        let (mut written, mut raw) = (0, Vec::new());
        let mut record_end = None;
        while record_end.is_none() {
            while written < data.len() {
                match server.write(&data[written..]) {
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("write: {e}"),
                }
            }
            wait_readable(&client);
            let mut buffer = [0u8; 64 * 1024];
            match (&client.tcp).read(&mut buffer) {
                Ok(n) => raw.extend_from_slice(&buffer[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("read: {e}"),
            }
            // Whole records so far: where the one that brings the plaintext past `counted` ends.
            let (mut at, mut plain) = (0, 0);
            while at + 5 <= raw.len() {
                let length = u16::from_be_bytes([raw[at + 3], raw[at + 4]]) as usize;
                if at + 5 + length > raw.len() {
                    break;
                }
                at += 5 + length;
                plain += length - 17;
                if plain >= counted {
                    record_end = Some(at);
                    break;
                }
            }
        }
        let record_end = record_end.unwrap();
        assert!(
            record_end <= bound,
            "{counted} bytes counted: their last one's record ends at {record_end}, counted {bound}"
        );
    }
}
