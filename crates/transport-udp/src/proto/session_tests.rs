//! Unit tests of [`Session`]: the replay window, authentication, keep-alives, idle expiry and
//! the close exchange, with time passed in by hand.

use std::time::{Duration, Instant};

use bytes::BytesMut;

use bitcraps_transport_core::policy::ReplayWindow;
use bitcraps_transport_core::secure::handshake::{InitiatorHandshake, ResponderHandshake};
use bitcraps_transport_core::secure::{CipherSuite, LocalIdentity};
use bitcraps_transport_core::{Keypair, ProtocolError};

use super::session::{DropReason, Ended, Event, Session, SessionTiming};

fn pair(now: Instant, max_a: usize, max_b: usize) -> (Session, Session) {
    let a = LocalIdentity::new(Keypair::generate());
    let b = LocalIdentity::new(Keypair::generate());
    let (mut i, m1) = InitiatorHandshake::start(&a, CipherSuite::default(), None).unwrap();
    let (r, m2) = ResponderHandshake::respond(&b, &CipherSuite::ALL, &m1).unwrap();
    i.read_message2(&m2).unwrap();
    let (m3, _, sa, oa) = i.write_message3().unwrap();
    let (_, sb, ob) = r.read_message3(&m3).unwrap();
    let t = SessionTiming::default();
    (
        Session::new(11, 22, sa, oa, ReplayWindow::new(), t, max_a, now),
        Session::new(22, 11, sb, ob, ReplayWindow::new(), t, max_b, now),
    )
}

fn seal(s: &mut Session, payload: &[u8], now: Instant) -> Vec<u8> {
    let mut out = BytesMut::new();
    assert!(s.seal_data(payload, now, &mut out));
    out.to_vec()
}

#[test]
fn replays_and_tampering_are_dropped_without_ending_the_session() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now, 1200, 1200);
    let mut plain = BytesMut::new();
    let first = seal(&mut a, b"one", now);
    assert_eq!(
        b.handle_datagram(&first, now, &mut plain),
        Event::Data("one".into())
    );
    assert_eq!(
        b.handle_datagram(&first, now, &mut plain),
        Event::Dropped(DropReason::Replayed)
    );
    let second = seal(&mut a, b"two", now);
    for i in 0..second.len() {
        let mut bad = second.clone();
        bad[i] ^= 0x20;
        let event = b.handle_datagram(&bad, now, &mut plain);
        assert!(
            matches!(event, Event::Dropped(_)),
            "flip at {i} gave {event:?}"
        );
    }
    assert_eq!(
        b.handle_datagram(&second, now, &mut plain),
        Event::Data("two".into()),
        "forgeries did not mark the counter"
    );
    // Out of order within the window is fine, once.
    let later: Vec<_> = (0..10).map(|i| seal(&mut a, &[i], now)).collect();
    for d in later.iter().rev() {
        assert!(matches!(
            b.handle_datagram(d, now, &mut plain),
            Event::Data(_)
        ));
    }
    for d in &later {
        assert_eq!(
            b.handle_datagram(d, now, &mut plain),
            Event::Dropped(DropReason::Replayed)
        );
    }
    // Older than the window: refused before decryption.
    let old = seal(&mut a, b"old", now);
    for _ in 0..ReplayWindow::WINDOW {
        let d = seal(&mut a, b"x", now);
        assert!(matches!(
            b.handle_datagram(&d, now, &mut plain),
            Event::Data(_)
        ));
    }
    assert_eq!(
        b.handle_datagram(&old, now, &mut plain),
        Event::Dropped(DropReason::Replayed)
    );
    assert!(b.is_open());
}

#[test]
fn foreign_session_ids_and_oversized_messages() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now, 2000, 1200);
    let mut plain = BytesMut::new();
    let mut d = seal(&mut a, b"hi", now);
    d[4] ^= 1;
    assert_eq!(
        b.handle_datagram(&d, now, &mut plain),
        Event::Dropped(DropReason::NotOurs)
    );
    let big = seal(&mut a, &[7; 1201], now);
    assert_eq!(
        b.handle_datagram(&big, now, &mut plain),
        Event::Violation(ProtocolError::MessageTooLarge { max: 1200 })
    );
    let mut out = BytesMut::new();
    assert!(
        !b.seal_data(&[0; 1201], now, &mut out),
        "over max is never sealed"
    );
    assert!(b.seal_data(&[0; 1200], now, &mut out));
    assert_eq!(out.len(), 1230);
}

#[test]
fn keepalives_keep_a_live_session_and_silence_expires_it() {
    let t0 = Instant::now();
    let (mut a, mut b) = pair(t0, 1200, 1200);
    let t = SessionTiming::default();
    let mut plain = BytesMut::new();
    let mut out = BytesMut::new();
    assert!(!a.poll_transmit(t0, &mut out), "nothing due yet");
    assert_eq!(a.poll_timeout(), Some(t0 + t.keepalive));
    // Both sides exchange keep-alives for five minutes: nothing expires.
    let mut now = t0;
    for _ in 0..30 {
        now += t.keepalive;
        for a_sends in [true, false] {
            let (x, y) = if a_sends {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            assert_eq!(x.handle_timeout(now), None);
            assert!(x.poll_transmit(now, &mut out));
            assert_eq!(y.handle_datagram(&out, now, &mut plain), Event::Nothing);
        }
    }
    // Then `a` goes silent: `b` keeps sending keep-alives but expires after the idle timeout.
    let silent_from = now;
    let mut ended = None;
    while ended.is_none() {
        now = b.poll_timeout().unwrap();
        ended = b.handle_timeout(now);
        b.poll_transmit(now, &mut out);
    }
    assert_eq!(ended, Some(Ended::IdleExpired));
    assert_eq!(now, silent_from + t.idle_timeout);
    assert!(b.is_done());
    assert_eq!(b.poll_timeout(), None);
}

#[test]
fn close_is_answered_and_acknowledged_and_retransmitted_until_then() {
    let t0 = Instant::now();
    let (mut a, mut b) = pair(t0, 1200, 1200);
    let mut plain = BytesMut::new();
    let mut out = BytesMut::new();
    a.close("game over", t0);
    assert!(!a.is_open());
    assert!(!a.seal_data(b"late", t0, &mut out));
    assert!(a.poll_transmit(t0, &mut out));
    let close1 = out.to_vec();
    assert!(
        !a.poll_transmit(t0, &mut out),
        "not again before the resend timer"
    );
    let t1 = a.poll_timeout().unwrap();
    assert_eq!(t1, t0 + Duration::from_millis(100));
    assert!(a.poll_transmit(t1, &mut out));
    let close2 = out.to_vec();
    assert_eq!(
        b.handle_datagram(&close1, t1, &mut plain),
        Event::RemoteClosed("game over".into())
    );
    assert!(b.is_draining());
    assert!(b.poll_transmit(t1, &mut out));
    let answer = out.to_vec();
    assert!(!b.poll_transmit(t1, &mut out));
    // The retransmitted CLOSE is answered again while draining.
    assert_eq!(b.handle_datagram(&close2, t1, &mut plain), Event::Nothing);
    assert!(b.poll_transmit(t1, &mut out));
    assert_eq!(
        a.handle_datagram(&answer, t1, &mut plain),
        Event::CloseAcknowledged
    );
    assert!(a.is_done());
    let drained = b.poll_timeout().unwrap();
    assert_eq!(b.handle_timeout(drained), Some(Ended::Drained));

    // Unanswered: resent with backoff, then given up at the close timeout.
    let (mut c, _) = pair(t0, 1200, 1200);
    c.close("bye", t0);
    let mut sends = 0;
    let mut now = t0;
    let ended = loop {
        while c.poll_transmit(now, &mut out) {
            sends += 1;
        }
        now = c.poll_timeout().unwrap();
        if let Some(e) = c.handle_timeout(now) {
            break e;
        }
    };
    assert_eq!(ended, Ended::CloseUnacknowledged);
    assert_eq!(now, t0 + SessionTiming::default().close_timeout);
    assert!((4..=10).contains(&sends), "{sends} sends");
}

#[test]
fn datagrams_appended_back_to_back_open_one_by_one() {
    let now = Instant::now();
    let (mut a, mut b) = pair(now, 1200, 1200);
    let mut out = BytesMut::from(&b"held"[..]);
    let messages: [&[u8]; 3] = [b"one", b"", &[7; 1200]];
    let mut ends = Vec::new();
    for m in messages {
        assert!(a.append_data(m, now, &mut out));
        ends.push(out.len());
    }
    assert!(
        !a.append_data(&[0; 1201], now, &mut out),
        "over the maximum"
    );
    assert_eq!(out.len(), ends[2], "nothing appended");
    assert_eq!(&out[..4], b"held", "what was held is kept");
    let mut plain = BytesMut::new();
    let mut start = 4;
    for (m, end) in messages.into_iter().zip(ends) {
        assert_eq!(end - start, m.len() + super::wire::SEALED_OVERHEAD);
        assert_eq!(
            b.handle_datagram(&out[start..end], now, &mut plain),
            Event::Data(bytes::Bytes::copy_from_slice(m))
        );
        start = end;
    }
}
