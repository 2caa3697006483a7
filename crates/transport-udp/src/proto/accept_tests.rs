//! Tests of the responder's [`Acceptor`] (anti-amplification, rate limits before DH, the
//! capped table with injected time, rejections) and of the dialer's retransmission.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bitcraps_transport_core::policy::LimitKind;
use bitcraps_transport_core::{ChannelConfig, Error, Keypair};

use super::accept::{Acceptor, Action};
use super::dial::{DialHandshake, DialStep, RetryTiming};
use super::tests::{acceptor, ids, Handle, TestGate, A_ADDR};
use super::wire;

#[test]
fn a_responder_never_sends_more_than_it_received_to_an_unvalidated_address() {
    let (a, b) = ids();
    let mut acc = acceptor(&b, 64);
    let mut gate = TestGate::default();
    let from: SocketAddr = A_ADDR.into();
    let now = Instant::now();
    let (mut received, mut sent) = (0usize, 0usize);
    let mut feed = |acc: &mut Acceptor<TestGate, Handle>, d: &[u8]| {
        received += d.len();
        match acc.handle(from, d, now, &mut gate) {
            Action::Reply(r) => sent += r.len(),
            Action::Ignore(_) | Action::Refused { reply: None, .. } => {}
            _ => panic!("nothing else without a handshake 3"),
        }
    };
    let cfg = ChannelConfig::default();
    for id in 1..=5u32 {
        let hs: DialHandshake<()> =
            DialHandshake::start(&a, &cfg, None, id, RetryTiming::default(), now).unwrap();
        for _ in 0..3 {
            feed(&mut acc, hs.transmit());
        }
        // Unpadded, truncated, garbage and stray handshake 3s get nothing back.
        feed(&mut acc, &hs.transmit()[..wire::HEADER_LEN + 33]);
        feed(&mut acc, &hs.transmit()[..100]);
        feed(&mut acc, &[0xFF; 500]);
        feed(&mut acc, &[wire::TYPE_HANDSHAKE_3; wire::HANDSHAKE_3_LEN]);
    }
    assert!(sent > 0);
    assert!(sent <= received, "sent {sent} > received {received}");
    // Each handshake 1 got exactly one handshake 2 of the same size.
    assert_eq!(sent, 15 * wire::HANDSHAKE_2_LEN);
}

#[test]
fn rate_limit_is_checked_before_any_work_and_retransmissions_cost_nothing() {
    let (a, b) = ids();
    let mut acc = acceptor(&b, 64);
    let from: SocketAddr = A_ADDR.into();
    let now = Instant::now();
    let cfg = ChannelConfig::default();
    let hs: DialHandshake<()> =
        DialHandshake::start(&a, &cfg, None, 9, RetryTiming::default(), now).unwrap();
    let mut gate = TestGate::default();
    let Action::Reply(first) = acc.handle(from, hs.transmit(), now, &mut gate) else {
        panic!()
    };
    let Action::Reply(again) = acc.handle(from, hs.transmit(), now, &mut gate) else {
        panic!()
    };
    assert_eq!(first, again, "a retransmission gets the same answer");
    assert_eq!(gate.checks, 1, "and is not charged again");
    let other: DialHandshake<()> =
        DialHandshake::start(&a, &cfg, None, 10, RetryTiming::default(), now).unwrap();
    gate.refuse_inbound = true;
    match acc.handle(from, other.transmit(), now, &mut gate) {
        Action::Refused {
            reply: None,
            error: Error::Limit(r),
            by_limit: true,
        } => assert_eq!(r.limit, LimitKind::NewConnectionRate),
        _ => panic!("expected a silent refusal"),
    }
    assert_eq!(acc.len(), 1, "a refused attempt leaves nothing behind");
}

#[test]
fn table_is_capped_and_handshakes_expire_with_injected_time() {
    let (a, b) = ids();
    let mut acc = acceptor(&b, 4);
    let mut gate = TestGate::default();
    let t0 = Instant::now();
    let cfg = ChannelConfig::default();
    let h1 = |id| {
        let hs: DialHandshake<()> =
            DialHandshake::start(&a, &cfg, None, id, RetryTiming::default(), t0).unwrap();
        hs.transmit().to_vec()
    };
    for port in 0..4u16 {
        let from = SocketAddr::from(([10, 0, 1, 1], port));
        assert!(matches!(
            acc.handle(from, &h1(1), t0, &mut gate),
            Action::Reply(_)
        ));
    }
    let fifth = SocketAddr::from(([10, 0, 1, 2], 1));
    match acc.handle(fifth, &h1(2), t0, &mut gate) {
        Action::Refused {
            error: Error::Limit(r),
            ..
        } => assert_eq!(r.limit, LimitKind::TotalConnections),
        _ => panic!("the table is full"),
    }
    assert_eq!(acc.len(), 4);
    assert!(acc.sweep(t0 + Duration::from_secs(9)).is_empty());
    let later = t0 + Duration::from_secs(10);
    assert_eq!(acc.sweep(later).len(), 4, "all four handshakes timed out");
    assert!(acc.is_empty());
    assert!(matches!(
        acc.handle(fifth, &h1(2), later, &mut gate),
        Action::Reply(_)
    ));
}

#[test]
fn rejection_after_handshake_3_reaches_the_dialer_as_a_remote_limit() {
    let (a, b) = ids();
    let mut acc = acceptor(&b, 8);
    let mut gate = TestGate {
        refuse_admit: true,
        ..TestGate::default()
    };
    let now = Instant::now();
    let from: SocketAddr = A_ADDR.into();
    let mut dial: DialHandshake<()> = DialHandshake::start(
        &a,
        &ChannelConfig::default(),
        None,
        5,
        RetryTiming::default(),
        now,
    )
    .unwrap();
    let Action::Reply(h2) = acc.handle(from, dial.transmit(), now, &mut gate) else {
        panic!()
    };
    assert!(matches!(
        dial.handle(&h2, now, |_| Ok(())),
        Ok(DialStep::Send)
    ));
    let h3 = dial.transmit().to_vec();
    let Action::Refused {
        reply: Some(reject),
        by_limit: true,
        ..
    } = acc.handle(from, &h3, now, &mut gate)
    else {
        panic!("expected a refusal with a reply")
    };
    let Action::Reply(again) = acc.handle(from, &h3, now, &mut gate) else {
        panic!("a retransmitted handshake 3 gets the rejection again")
    };
    assert_eq!(again, reject);
    match dial.handle(&reject, now, |_| Ok(())) {
        Err(Error::RemoteLimit(r)) => assert_eq!(r.limit, LimitKind::ConnectionsPerPeer),
        other => panic!("expected a remote limit, got {other:?}"),
    }
}

#[test]
fn a_dial_expecting_another_peer_fails_with_a_mismatch() {
    let (a, b) = ids();
    let wrong = Keypair::generate().peer_id();
    let mut acc = acceptor(&b, 8);
    let now = Instant::now();
    let mut dial: DialHandshake<()> = DialHandshake::start(
        &a,
        &ChannelConfig::default(),
        Some(wrong),
        5,
        RetryTiming::default(),
        now,
    )
    .unwrap();
    let Action::Reply(h2) = acc.handle(
        A_ADDR.into(),
        dial.transmit(),
        now,
        &mut TestGate::default(),
    ) else {
        panic!()
    };
    match dial.handle(&h2, now, |_| Ok(())) {
        Err(Error::PeerMismatch { expected, actual }) => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, b.peer_id());
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

#[test]
fn an_unanswered_dial_retransmits_a_bounded_number_of_times_then_times_out() {
    let (a, _) = ids();
    let t0 = Instant::now();
    let timing = RetryTiming::default();
    let mut dial: DialHandshake<()> =
        DialHandshake::start(&a, &ChannelConfig::default(), None, 5, timing, t0).unwrap();
    let mut resends = 0;
    let mut last = t0;
    let error = loop {
        let at = dial.poll_timeout();
        assert!(at >= last, "time never goes back");
        last = at;
        match dial.handle_timeout(at) {
            Ok(true) => resends += 1,
            Ok(false) => {}
            Err(e) => break e,
        }
    };
    assert_eq!(resends, timing.attempts - 1);
    assert_eq!(last, t0 + timing.timeout);
    assert!(matches!(error, Error::Timeout { .. }));
    // Stray datagrams never end a dial.
    let mut dial: DialHandshake<()> =
        DialHandshake::start(&a, &ChannelConfig::default(), None, 5, timing, t0).unwrap();
    for junk in [&[][..], &[1, 2, 3], &[0x02; 202], &[0x04; 40]] {
        assert!(matches!(
            dial.handle(junk, t0, |_| Ok(())),
            Ok(DialStep::Ignored)
        ));
    }
}

#[test]
fn two_sessions_from_one_address_are_told_apart_by_session_id() {
    let (a, b) = ids();
    let mut acc = acceptor(&b, 8);
    let mut gate = TestGate::default();
    let now = Instant::now();
    let from: SocketAddr = A_ADDR.into();
    let mut keys = Vec::new();
    for id in [100u32, 200] {
        let mut dial: DialHandshake<()> = DialHandshake::start(
            &a,
            &ChannelConfig::default(),
            None,
            id,
            RetryTiming::default(),
            now,
        )
        .unwrap();
        let Action::Reply(h2) = acc.handle(from, dial.transmit(), now, &mut gate) else {
            panic!()
        };
        assert!(matches!(
            dial.handle(&h2, now, |_| Ok(())),
            Ok(DialStep::Send)
        ));
        let Action::Accepted(x) = acc.handle(from, dial.transmit(), now, &mut gate) else {
            panic!("accepted")
        };
        assert_eq!(x.remote_id, id);
        acc.attach(&x.key, Handle(false));
        keys.push(x.key);
    }
    assert_ne!(keys[0].local_id, keys[1].local_id);
    assert_eq!(acc.live_sessions(), 2);
    // A DATA datagram routes by the session id in its header, and only from that address.
    let mut data = vec![wire::TYPE_DATA; wire::SEALED_OVERHEAD];
    data[1..5].copy_from_slice(&keys[1].local_id.to_be_bytes());
    assert!(matches!(
        acc.handle(from, &data, now, &mut gate),
        Action::Route(_)
    ));
    let elsewhere = SocketAddr::from(([10, 0, 0, 3], 4000));
    assert!(matches!(
        acc.handle(elsewhere, &data, now, &mut gate),
        Action::Ignore(_)
    ));
    assert_eq!(gate.admitted, 2);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Hostile bytes never panic the parser or the acceptor, and never earn a reply larger
    /// than themselves.
    #[test]
    fn arbitrary_datagrams_never_panic_or_amplify(
        d in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        ty in 1u8..=5,
    ) {
        let (_, b) = ids();
        let mut acc = acceptor(&b, 8);
        let mut gate = TestGate::default();
        let from: SocketAddr = A_ADDR.into();
        for datagram in [d.clone(), [&[ty][..], &d].concat()] {
            let _ = wire::parse(&datagram);
            if let Action::Reply(r) = acc.handle(from, &datagram, Instant::now(), &mut gate) {
                proptest::prop_assert!(r.len() <= datagram.len());
            }
        }
    }
}
