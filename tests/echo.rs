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
