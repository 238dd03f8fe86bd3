//! Server and client of this library against each other, through the C ABI.

mod common;
use common::*;
use oasisnet::ffi::*;

#[test]
fn text_binary_and_close_roundtrip() {
    init();
    let server_events = Recorder::new(true);
    let (server, port) = start_server(&server_events, &[]);
    let client_events = Recorder::new(false);
    let client = open(
        &format!("ws://127.0.0.1:{port}/path?q=1"),
        &client_events,
        &[],
        5000,
    );
    assert!(!client.is_null(), "open: {}", last_error());
    // A blocking open returns after onOpen has run, as the SDK's client sample expects.
    assert_eq!(client_events.seen().first(), Some(&Seen::Open));

    assert_eq!(send_text(client, "hello"), 0);
    let blob: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    assert_eq!(
        unsafe { wsSendBinary(client, blob.as_ptr().cast(), blob.len()) },
        0
    );
    assert_eq!(send_text(client, ""), 0);
    client_events.wait_messages(3);
    let messages: Vec<Seen> = client_events
        .seen()
        .into_iter()
        .filter(|s| matches!(s, Seen::Message(..)))
        .collect();
    assert_eq!(
        messages[0],
        Seen::Message(ws_message_t::kWsMessageText, b"hello".to_vec())
    );
    assert_eq!(
        messages[1],
        Seen::Message(ws_message_t::kWsMessageBinary, blob)
    );
    assert_eq!(
        messages[2],
        Seen::Message(ws_message_t::kWsMessageText, Vec::new())
    );

    let reason = std::ffi::CString::new("bye").unwrap();
    assert_eq!(
        unsafe { wsCloseConnectionWithStatus(client, 4001, reason.as_ptr()) },
        0
    );
    client_events.wait_for("client onClose", |e| e.iter().any(|(_, s)| is_close(s)));
    server_events.wait_for("server onClose", |e| e.iter().any(|(_, s)| is_close(s)));
    assert_eq!(
        server_events.seen().last(),
        Some(&Seen::Close(4001, b"bye".to_vec()))
    );
    assert!(matches!(
        client_events.seen().last(),
        Some(Seen::Close(4001, _))
    ));
    assert_eq!(send_text(client, "late"), -1);
    assert_eq!(errno(), libc::ENOTCONN);
    assert_eq!(wsConnectionRelease(client), 0);
    assert_eq!(destroyWsServer(server), 0);
    assert_eq!(oasis_finalize(), 0);
    assert!(
        *server_events.released.lock() && *client_events.released.lock(),
        "delegates released"
    );
}

#[test]
fn stop_server_closes_clients_with_1001() {
    init();
    let server_events = Recorder::new(true);
    let (server, port) = start_server(&server_events, &[]);
    let client_events = Recorder::new(false);
    let client = open(&format!("ws://127.0.0.1:{port}"), &client_events, &[], 5000);
    assert!(!client.is_null());
    server_events.wait_for("server onOpen", |e| e.iter().any(|(_, s)| *s == Seen::Open));
    assert_eq!(stopWsServer(server), 0);
    // stopWsServer returns after the server side's onClose.
    assert_eq!(server_events.count(is_close), 1);
    client_events.wait_for("client onClose", |e| e.iter().any(|(_, s)| is_close(s)));
    assert!(matches!(
        client_events.seen().last(),
        Some(Seen::Close(1001, _))
    ));
    wsConnectionRelease(client);
    destroyWsServer(server);
    oasis_finalize();
}

/// Replies made from callbacks while the server works through one read go out in the order the
/// messages came, large ones (written at once) and small ones (collected, written after the
/// read) alike.
#[test]
fn replies_to_a_burst_of_small_and_large_messages_keep_their_order() {
    use std::io::Write;
    init();
    let server_events = Recorder::new(true);
    let (server, port) = start_server(&server_events, &[]);
    let mut client = RawClient::connect(port);
    let mut sent: Vec<(u8, Vec<u8>)> = Vec::new();
    for round in 0..3u8 {
        sent.push((0x81, vec![b'a' + round]));
        sent.push((0x81, vec![b'x'; 20_000]));
        sent.push((0x81, format!("small {round}").into_bytes()));
        sent.push((0x82, (0..70_000u32).map(|i| (i as u8) ^ round).collect()));
        sent.push((0x81, vec![b'y'; 16 * 1024]));
        sent.push((0x82, vec![round]));
    }
    // All frames in one write: the server finds many of them in each read.
    let mask = [0x5au8, 0x0f, 0xc3, 0x96];
    let mut burst = Vec::new();
    for (first, payload) in &sent {
        burst.push(*first);
        match payload.len() {
            n if n < 126 => burst.push(0x80 | n as u8),
            n if n < 65536 => {
                burst.push(0x80 | 126);
                burst.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                burst.push(0x80 | 127);
                burst.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        burst.extend_from_slice(&mask);
        burst.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    }
    let mut writer = client.stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || writer.write_all(&burst).unwrap());
    for (index, expected) in sent.iter().enumerate() {
        let echo = client.read_frame().expect("an echo");
        assert!(
            echo == *expected,
            "echo {index}: got opcode {:#x} with {} bytes, expected {:#x} with {}",
            echo.0,
            echo.1.len(),
            expected.0,
            expected.1.len()
        );
    }
    sending.join().unwrap();
    client.send_frame(0x88, &1000u16.to_be_bytes());
    assert_eq!(client.read_close_code(), Some(1000));
    assert_eq!(destroyWsServer(server), 0);
    assert_eq!(oasis_finalize(), 0);
}
