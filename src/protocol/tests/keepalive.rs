//! Keepalive in the endpoint: pings after the interval without traffic, the pong timeout, and
//! the peer still reading what was queued before its ping; and the close timeout for a peer
//! still reading what was queued before our close frame.

use super::*;

#[test]
fn keepalive_pings_then_gives_up_on_a_silent_peer() {
    let start = Instant::now();
    let mut limits = limits();
    limits.ping_interval = Some(Duration::from_secs(10));
    limits.pong_timeout = Duration::from_secs(2);
    let mut server = Endpoint::new(Role::Server, start, &limits);
    server.opened(start, &limits);
    let mut wire = Wire::default();
    assert_eq!(server.timeout(), Some(start + Duration::from_secs(10)));
    // Traffic at 6 s moves the ping to 16 s, without a new timer per read.
    server.heard(start + Duration::from_secs(6));
    let at_10 = start + Duration::from_secs(10);
    assert_eq!(
        server.on_timeout(at_10, &limits, &mut wire),
        Expired::Nothing
    );
    assert!(wire.0.is_empty());
    assert_eq!(server.timeout(), Some(start + Duration::from_secs(16)));
    let at_16 = start + Duration::from_secs(16);
    assert_eq!(
        server.on_timeout(at_16, &limits, &mut wire),
        Expired::Nothing
    );
    assert_eq!(wire.0, b"\x89\x00", "a ping");
    assert_eq!(server.timeout(), Some(at_16 + Duration::from_secs(2)));
    let at_18 = at_16 + Duration::from_secs(2);
    assert_eq!(
        server.on_timeout(at_18, &limits, &mut wire),
        Expired::PeerSilent
    );
    assert_eq!(server.ended(), close::ABNORMAL);
}

/// A sink over a TCP connection whose peer acknowledges bytes when the test says: the end of
/// what is queued moves as frames are queued, the acknowledged position as the test sets it.
#[derive(Default)]
struct Reading {
    wire: Wire,
    /// What was queued before the first frame (a large message ahead of the ping, say).
    ahead: u32,
    acknowledged: u32,
}

impl FrameSink for Reading {
    fn frame(&mut self, header: &[u8], payload: &[u8], mask: Option<[u8; 4]>) {
        self.wire.frame(header, payload, mask);
    }
    fn queued(&self) -> usize {
        self.wire.queued()
    }
    fn acknowledged(&self) -> Option<(u32, u32)> {
        let end = self.ahead.wrapping_add(self.wire.0.len() as u32);
        Some((self.acknowledged, end))
    }
    fn mask_key(&mut self) -> [u8; 4] {
        self.wire.mask_key()
    }
}

/// A keepalive ping queued behind a large message: the peer reads the message (its TCP
/// acknowledges more of it) for longer than the pong timeout, and cannot answer a ping it has
/// not received. It gets another pong timeout for each in which its TCP acknowledged more of
/// what comes before the ping, and one after the timeout in which its TCP got the ping; after
/// that, or after a timeout in which it acknowledged nothing, no more.
#[test]
fn keepalive_gives_a_peer_that_reads_time_to_reach_the_ping() {
    let start = Instant::now();
    let mut limits = limits();
    limits.ping_interval = Some(Duration::from_secs(10));
    limits.pong_timeout = Duration::from_secs(2);
    let at = |secs| start + Duration::from_secs(secs);
    let opened = || {
        let mut server = Endpoint::new(Role::Server, start, &limits);
        server.opened(start, &limits);
        server
    };
    // 1 MiB waits before the ping (positions near the wrap of the count, which must not
    // matter); the ping ends 2 bytes after it.
    let base = u32::MAX - 1000;
    let mut sink = Reading {
        ahead: base.wrapping_add(1 << 20),
        acknowledged: base,
        ..Reading::default()
    };
    let mut server = opened();
    assert_eq!(
        server.on_timeout(at(10), &limits, &mut sink),
        Expired::Nothing
    );
    assert_eq!(sink.wire.0, b"\x89\x00", "a ping");
    sink.acknowledged = base.wrapping_add(300_000);
    assert_eq!(
        server.on_timeout(at(12), &limits, &mut sink),
        Expired::Nothing
    );
    assert_eq!(server.timeout(), Some(at(14)), "another pong timeout");
    sink.acknowledged = base.wrapping_add(900_000);
    assert_eq!(
        server.on_timeout(at(14), &limits, &mut sink),
        Expired::Nothing
    );
    // Nothing more acknowledged in the next two seconds, and no pong.
    assert_eq!(
        server.on_timeout(at(16), &limits, &mut sink),
        Expired::PeerSilent
    );

    // A peer whose TCP acknowledges the ping, and more sent after it, but which never
    // answers (its application is stuck, or pongs are lost): one pong timeout after it has
    // the ping.
    let mut sink = Reading {
        ahead: 5000,
        acknowledged: 0,
        ..Reading::default()
    };
    let mut server = opened();
    assert_eq!(
        server.on_timeout(at(10), &limits, &mut sink),
        Expired::Nothing
    );
    sink.acknowledged = 4000;
    assert_eq!(
        server.on_timeout(at(12), &limits, &mut sink),
        Expired::Nothing
    );
    // Its TCP got the ping in that timeout, perhaps at its end: a whole timeout more to read
    // it, and no more.
    sink.acknowledged = 5002 + 70_000;
    assert_eq!(
        server.on_timeout(at(14), &limits, &mut sink),
        Expired::Nothing
    );
    sink.acknowledged = 5002 + 140_000;
    assert_eq!(
        server.on_timeout(at(16), &limits, &mut sink),
        Expired::PeerSilent
    );

    // A ping that waited behind nothing reached the peer's TCP at the start of the timeout:
    // a peer that does not answer it within the timeout is done (a stuck application is
    // detected within interval + timeout), though its TCP acknowledged the ping.
    let mut sink = Reading::default();
    let mut server = opened();
    assert_eq!(
        server.on_timeout(at(10), &limits, &mut sink),
        Expired::Nothing
    );
    sink.acknowledged = 2;
    assert_eq!(
        server.on_timeout(at(12), &limits, &mut sink),
        Expired::PeerSilent
    );

    // A sink that cannot tell (a system that does not say): the pong timeout is final.
    let mut server = opened();
    let mut wire = Wire::default();
    assert_eq!(
        server.on_timeout(at(10), &limits, &mut wire),
        Expired::Nothing
    );
    assert_eq!(
        server.on_timeout(at(12), &limits, &mut wire),
        Expired::PeerSilent
    );

    // A peer that answers in time needs none of this: heard, it is not outstanding.
    let mut server = opened();
    let mut sink = Reading::default();
    assert_eq!(
        server.on_timeout(at(10), &limits, &mut sink),
        Expired::Nothing
    );
    server.heard(at(11));
    assert_eq!(
        server.on_timeout(at(12), &limits, &mut sink),
        Expired::Nothing
    );
    assert_eq!(
        server.timeout(),
        Some(at(21)),
        "the next ping, 10 s after the pong"
    );
}

/// Our close frame queued behind a large message: the peer reads the message for longer than
/// the close timeout, and cannot answer a close frame it has not received. As with a ping, it
/// gets another timeout for each in which its TCP acknowledged more, and one after the timeout
/// in which its TCP got our close frame; then, or after a timeout in which it acknowledged
/// nothing, the connection ends (1006).
#[test]
fn the_close_timeout_gives_a_peer_that_reads_time_to_reach_our_close() {
    let start = Instant::now();
    let mut limits = limits();
    limits.close_timeout = Duration::from_secs(2);
    let at = |secs| start + Duration::from_secs(secs);
    let opened = || {
        let mut server = Endpoint::new(Role::Server, start, &limits);
        server.opened(start, &limits);
        server
    };
    // 1 MiB waits before the close frame, which is 4 bytes (code 1000, no reason).
    let mut sink = Reading {
        ahead: 1 << 20,
        ..Reading::default()
    };
    let mut server = opened();
    let started = server.close(1000, "", CloseBy::Application, at(1), &limits, &mut sink);
    assert_eq!(started, Ok(CloseStarted::Started));
    assert_eq!(sink.wire.0, b"\x88\x02\x03\xe8", "our close frame");
    sink.acknowledged = 400_000;
    assert_eq!(
        server.on_timeout(at(3), &limits, &mut sink),
        Expired::Nothing
    );
    assert_eq!(server.timeout(), Some(at(5)), "another close timeout");
    // Its TCP got our close frame in this one, perhaps at its end: one more, and no more.
    sink.acknowledged = (1 << 20) + 4;
    assert_eq!(
        server.on_timeout(at(5), &limits, &mut sink),
        Expired::Nothing
    );
    assert_eq!(server.on_timeout(at(7), &limits, &mut sink), Expired::Close);

    // A peer that stops acknowledging before our close frame: the next timeout is final.
    let mut sink = Reading {
        ahead: 1 << 20,
        ..Reading::default()
    };
    let mut server = opened();
    let started = server.close(1000, "", CloseBy::Application, at(1), &limits, &mut sink);
    assert_eq!(started, Ok(CloseStarted::Started));
    sink.acknowledged = 400_000;
    assert_eq!(
        server.on_timeout(at(3), &limits, &mut sink),
        Expired::Nothing
    );
    assert_eq!(server.on_timeout(at(5), &limits, &mut sink), Expired::Close);

    // Nothing before our close frame: its TCP got it at the start of the timeout, which is
    // final, as always.
    let mut sink = Reading::default();
    let mut server = opened();
    let started = server.close(1000, "", CloseBy::Application, at(1), &limits, &mut sink);
    assert_eq!(started, Ok(CloseStarted::Started));
    sink.acknowledged = 4;
    assert_eq!(server.on_timeout(at(3), &limits, &mut sink), Expired::Close);

    // A sink that cannot tell: final, as always.
    let mut wire = Wire::default();
    let mut server = opened();
    let started = server.close(1000, "", CloseBy::Application, at(1), &limits, &mut wire);
    assert_eq!(started, Ok(CloseStarted::Started));
    assert_eq!(server.on_timeout(at(3), &limits, &mut wire), Expired::Close);
}

/// A stop waits about a close timeout for its connections' ends, so the close it starts is
/// final at its timeout, even for a peer still reading; and a closing handshake the
/// application started before the stop is not extended again.
#[test]
fn a_stops_close_timeout_is_final() {
    let start = Instant::now();
    let mut limits = limits();
    limits.close_timeout = Duration::from_secs(2);
    let at = |secs| start + Duration::from_secs(secs);
    let opened = |limits: &Limits| {
        let mut server = Endpoint::new(Role::Server, start, limits);
        server.opened(start, limits);
        server
    };
    let reading = || Reading {
        ahead: 1 << 20,
        ..Reading::default()
    };

    // The stop's own close, to a peer reading what came before it: 1006 at its timeout.
    let mut sink = reading();
    let mut server = opened(&limits);
    let started = server.close(1001, "", CloseBy::Stop, at(1), &limits, &mut sink);
    assert_eq!(started, Ok(CloseStarted::Started));
    assert_eq!(sink.wire.0, b"\x88\x02\x03\xe9", "our close frame, 1001");
    sink.acknowledged = 400_000;
    assert_eq!(server.on_timeout(at(3), &limits, &mut sink), Expired::Close);

    // The application's close, extended once; then a stop: its deadline stays, and is final.
    let mut sink = reading();
    let mut server = opened(&limits);
    let started = server.close(1000, "", CloseBy::Application, at(1), &limits, &mut sink);
    assert_eq!(started, Ok(CloseStarted::Started));
    sink.acknowledged = 400_000;
    assert_eq!(
        server.on_timeout(at(3), &limits, &mut sink),
        Expired::Nothing
    );
    let stopped = server.close(1001, "", CloseBy::Stop, at(4), &limits, &mut sink);
    assert_eq!(stopped, Ok(CloseStarted::AlreadyClosing));
    assert_eq!(
        server.timeout(),
        Some(at(5)),
        "within a close timeout of the stop"
    );
    sink.acknowledged = 800_000;
    assert_eq!(server.on_timeout(at(5), &limits, &mut sink), Expired::Close);

    // With keepalive on (its state already boxed), the same.
    limits.ping_interval = Some(Duration::from_secs(10));
    let mut sink = reading();
    let mut server = opened(&limits);
    let started = server.close(1000, "", CloseBy::Application, at(1), &limits, &mut sink);
    assert_eq!(started, Ok(CloseStarted::Started));
    assert_eq!(
        server.close(1001, "", CloseBy::Stop, at(2), &limits, &mut sink),
        Ok(CloseStarted::AlreadyClosing)
    );
    // A second close by the application gives back no extension either.
    assert_eq!(
        server.close(1000, "", CloseBy::Application, at(2), &limits, &mut sink),
        Ok(CloseStarted::AlreadyClosing)
    );
    sink.acknowledged = 400_000;
    assert_eq!(server.on_timeout(at(3), &limits, &mut sink), Expired::Close);
}
