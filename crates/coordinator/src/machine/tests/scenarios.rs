//! One scenario per rule of the state machine, in virtual time.

use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::harness::{addr, config, lone, Pair, RouteMode, RouteSpec};
use crate::envelope::{CloseCode, FrameBuilder, Hello, LaneState};
use crate::machine::{Action, DisconnectReason, LinkId, LinkInfo, MessageId, RouteError};
use crate::policy::Priority;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn seqs(n: u64) -> Vec<u64> {
    (1..=n).collect()
}

#[test]
fn messages_arrive_once_in_order_with_receipts() {
    let mut p = Pair::new(vec![RouteSpec::reliable()], 1);
    p.connect();
    p.run_for(ms(10));
    assert!(p.a.active().is_some());
    for i in 0..300 {
        p.send(Priority::Bulk, 100, i % 3 == 0);
    }
    p.run_for(ms(200));
    assert_eq!(p.received(1), seqs(300));
    assert_eq!(p.a.unfinished(), 0);
    assert_eq!(p.apps[0].released, 300);
    assert_eq!(p.apps[0].receipts.len(), 100);
    assert!(p.apps[0].receipts.values().all(|r| r.is_ok()));
    assert!(p.apps[0].undelivered.is_empty());
}

#[test]
fn interactive_overtakes_bulk_and_each_lane_keeps_its_order() {
    let mut p = Pair::new(vec![RouteSpec::reliable()], 2);
    p.connect();
    p.run_for(ms(10));
    for _ in 0..100 {
        p.send(Priority::Bulk, 10, false);
    }
    for _ in 0..10 {
        p.send(Priority::Interactive, 10, false);
    }
    p.run_for(ms(100));
    assert_eq!(p.received(0), (101..=110).collect::<Vec<_>>());
    assert_eq!(p.received(1), seqs(100));
    // The interactive ones were written first (they were all queued at once).
    assert_eq!(p.apps[1].delivered[0].0, 0);
}

#[test]
fn a_slow_application_slows_the_sender_within_the_window() {
    let mut p = Pair::new(vec![RouteSpec::reliable()], 3);
    p.apps[1].pace = Some(1);
    p.connect();
    p.run_for(ms(10));
    for _ in 0..500 {
        p.send(Priority::Bulk, 50, false);
    }
    p.run_for(ms(100));
    // Paced at about one per millisecond, and never more buffered than the window of 64.
    let got = p.received(1).len();
    assert!(got < 200, "{got} delivered in 100 ms at 1/ms");
    assert!(p.b.buffered() <= 64);
    assert!(p.apps[1].ended.is_none() && p.apps[0].ended.is_none());
    p.run_for(Duration::from_secs(2));
    assert_eq!(p.received(1), seqs(500));
}

#[test]
fn the_rate_limit_delays_messages_and_drops_none() {
    let mut b = config();
    b.rate_limits.messages_per_second = 100;
    b.rate_limits.message_burst = 10;
    let mut p = Pair::with_config(vec![RouteSpec::reliable()], 4, config(), b);
    p.connect();
    p.run_for(ms(10));
    let start = p.now;
    for _ in 0..300 {
        p.send(Priority::Bulk, 20, false);
    }
    p.run_for(Duration::from_secs(1));
    let early = p.received(1).len();
    assert!((100..=150).contains(&early), "{early} in the first second");
    p.run_for(Duration::from_secs(3));
    assert_eq!(p.received(1), seqs(300));
    assert!(p.now - start >= Duration::from_secs(2));
    assert!(p.apps[0].ended.is_none());
}

/// The longest gap between two deliveries while a message goes out every 10 ms.
fn longest_gap(p: &mut Pair, total: Duration, mut at: impl FnMut(&mut Pair, Duration)) -> Duration {
    let mut gap = Duration::ZERO;
    let mut last = p.now;
    let mut seen = 0;
    let start = p.now;
    while p.now - start < total {
        at(p, p.now - start);
        p.send(Priority::Interactive, 40, false);
        p.run_for(ms(10));
        let n = p.apps[1].delivered.len();
        if n > seen {
            seen = n;
            last = p.now;
        }
        gap = gap.max(p.now - last);
    }
    gap
}

#[test]
fn a_dark_route_moves_traffic_within_half_a_second() {
    let mut p = Pair::new(vec![RouteSpec::reliable(), RouteSpec::reliable()], 5);
    p.connect();
    p.run_for(ms(50));
    assert_eq!(p.a.active_address(), Some(&addr(0)));
    let mut darkened = false;
    let gap = longest_gap(&mut p, Duration::from_secs(3), |p, t| {
        if t >= Duration::from_secs(1) && !darkened {
            darkened = true;
            p.go_dark(0);
        }
    });
    p.run_for(Duration::from_secs(1));
    assert_eq!(p.a.active_address(), Some(&addr(1)));
    eprintln!("dark route: longest gap in delivery {gap:?}");
    assert!(gap <= ms(500), "longest gap {gap:?}");
    let n = p.apps[1].delivered.len() as u64;
    assert_eq!(p.received(0), seqs(n), "no loss, no duplicate");
    assert_eq!(p.a.unfinished(), 0);
}

#[test]
fn a_dark_route_moves_traffic_fast_even_with_a_health_probe_in_flight() {
    // A short health interval: a health probe is usually in flight when the route goes dark.
    let mut c = config();
    c.health_interval = ms(250);
    let mut p = Pair::with_config(
        vec![RouteSpec::reliable(), RouteSpec::reliable()],
        17,
        c.clone(),
        c,
    );
    p.connect();
    p.run_for(ms(300));
    let mut darkened = false;
    let gap = longest_gap(&mut p, Duration::from_secs(3), |p, t| {
        if t >= ms(1_105) && !darkened {
            darkened = true;
            p.go_dark(0);
        }
    });
    eprintln!("dark route, health probe in flight: longest gap in delivery {gap:?}");
    assert!(gap <= ms(500), "longest gap {gap:?}");
    let n = p.apps[1].delivered.len() as u64;
    assert_eq!(p.received(0), seqs(n), "no loss, no duplicate");
}

#[test]
fn a_dead_preferred_route_delays_the_first_message_by_the_stagger_only() {
    let mut dead = RouteSpec::reliable();
    dead.mode = RouteMode::Blackhole;
    let mut p = Pair::new(vec![dead, RouteSpec::reliable()], 6);
    p.connect();
    let start = p.now;
    p.send(Priority::Interactive, 10, false);
    while p.apps[1].delivered.is_empty() && p.now - start < Duration::from_secs(20) {
        p.run_for(ms(5));
    }
    let took = p.now - start;
    eprintln!("dead preferred route: first message after {took:?}");
    assert!(took <= ms(500), "first message after {took:?}");
    assert_eq!(p.a.active_address(), Some(&addr(1)));
}

#[test]
fn every_route_failing_ends_the_session_with_each_typed_failure() {
    let mut refused = RouteSpec::reliable();
    refused.mode = RouteMode::Refused;
    let mut p = Pair::new(vec![refused, refused], 7);
    p.connect();
    let id = p.send(Priority::Bulk, 10, true);
    p.run_for(Duration::from_secs(2));
    let Some(DisconnectReason::AllRoutesFailed { failures }) = &p.apps[0].ended else {
        panic!("{:?}", p.apps[0].ended);
    };
    assert_eq!(failures.len(), 2);
    assert!(failures
        .iter()
        .all(|f| matches!(f.error, RouteError::Dial(_))));
    assert_eq!(p.apps[0].undelivered, vec![id]);
    assert!(p.apps[0].receipts[&id].is_err());
}

#[test]
fn traffic_switches_back_once_the_preferred_route_answers_again() {
    let mut p = Pair::new(vec![RouteSpec::reliable(), RouteSpec::reliable()], 8);
    p.connect();
    p.run_for(ms(50));
    p.cut(0);
    p.go_dark(0);
    p.run_for(ms(100));
    assert_eq!(p.a.active_address(), Some(&addr(1)));
    p.heal(0);
    // Redialed within a health interval, then 3 answered probes of 5 s each.
    p.run_for(Duration::from_secs(30));
    assert_eq!(p.a.active_address(), Some(&addr(0)));
    for _ in 0..20 {
        p.send(Priority::Bulk, 10, false);
    }
    p.run_for(ms(100));
    assert_eq!(p.received(1), seqs(20));
}

#[test]
fn lossy_links_retransmit_until_everything_arrives_once() {
    let mut p = Pair::new(vec![RouteSpec::lossy(0.05, 0.05, 0.2)], 9);
    p.connect();
    p.run_for(ms(100));
    for i in 0..400 {
        let prio = if i % 5 == 0 {
            Priority::Interactive
        } else {
            Priority::Bulk
        };
        p.send(prio, 200, false);
    }
    p.run_for(Duration::from_secs(60));
    let mut all: Vec<u64> = p.received(0).into_iter().chain(p.received(1)).collect();
    all.sort_unstable();
    assert_eq!(all, seqs(400), "every message once");
    let lane0 = p.received(0);
    assert!(lane0.windows(2).all(|w| w[0] < w[1]), "in order");
    assert_eq!(p.a.unfinished(), 0);
}

#[test]
fn a_cut_mid_flight_resends_without_duplicates() {
    let mut p = Pair::new(vec![RouteSpec::reliable(), RouteSpec::reliable()], 10);
    p.connect();
    p.run_for(ms(20));
    for _ in 0..200 {
        p.send(Priority::Bulk, 1000, false);
    }
    // Deliver part of it, then cut the active route with messages and acks in flight.
    p.run_for(Duration::from_micros(1500));
    p.cut(0);
    p.run_for(Duration::from_secs(1));
    assert_eq!(p.received(1), seqs(200));
    assert_eq!(p.a.active_address(), Some(&addr(1)));
}

#[test]
fn large_payloads_travel_uncopied_and_intact() {
    let mut p = Pair::new(vec![RouteSpec::reliable()], 11);
    p.connect();
    p.run_for(ms(10));
    for _ in 0..10 {
        p.send(Priority::Bulk, 20_000, false);
    }
    p.run_for(ms(100));
    assert_eq!(p.received(1), seqs(10));
    assert!(p.apps[1].delivered.iter().all(|(_, d)| d.len() == 20_000));
}

#[test]
fn an_idle_dark_route_is_found_by_health_checks() {
    let mut p = Pair::new(vec![RouteSpec::reliable(), RouteSpec::reliable()], 12);
    p.connect();
    p.run_for(ms(50));
    p.go_dark(0);
    p.run_for(Duration::from_secs(20));
    assert_eq!(p.a.active_address(), Some(&addr(1)));
    assert!(!p.apps[0].link_failures.is_empty());
}

fn hello(session: u64, window: u32) -> Bytes {
    let mut f = FrameBuilder::new(BytesMut::new(), 1024);
    f.hello(&Hello {
        flags: 0,
        session,
        window_messages: window,
        window_bytes: 1 << 20,
        your_session: 0,
        lanes: [LaneState::default(); 2],
    });
    f.finish().0
}

fn data(seq: u64) -> Bytes {
    let mut f = FrameBuilder::new(BytesMut::new(), 1024);
    f.data(1, seq, b"x");
    f.finish().0
}

fn lone_with_link() -> (crate::machine::PeerMachine, std::time::Instant) {
    let now = std::time::Instant::now();
    let mut m = lone(now);
    let info = LinkInfo {
        remote: addr(0),
        reliable: true,
        max_message: 65_536,
    };
    m.attach(LinkId(1), info, now);
    (m, now)
}

fn ended(m: &mut crate::machine::PeerMachine) -> (Option<DisconnectReason>, Vec<Bytes>) {
    let mut reason = None;
    let mut farewell = Vec::new();
    while let Some(a) = m.poll_action() {
        match a {
            Action::Ended(r) => reason = Some(r),
            Action::Close { farewell: f, .. } => farewell.extend(f),
            _ => {}
        }
    }
    (reason, farewell)
}

#[test]
fn writing_past_the_granted_window_ends_the_session_with_a_typed_close() {
    let (mut m, now) = lone_with_link();
    m.received(LinkId(1), hello(9, 4), now);
    m.received(LinkId(1), data(0), now);
    assert!(ended(&mut m).0.is_none());
    m.received(LinkId(1), data(64), now); // the window is 64
    let (reason, farewell) = ended(&mut m);
    assert!(matches!(reason, Some(DisconnectReason::FlowControl)));
    let close = farewell.last().expect("a CLOSE");
    assert_eq!(&close[..], &[0x16, CloseCode::FlowControl.byte()]);
}

#[test]
fn garbage_ends_the_session_as_a_protocol_violation() {
    let (mut m, now) = lone_with_link();
    m.received(LinkId(1), Bytes::from_static(&[0x99, 1, 2]), now);
    assert!(matches!(
        ended(&mut m).0,
        Some(DisconnectReason::Protocol(_))
    ));
    let (mut m, now) = lone_with_link();
    // DATA before HELLO on a connection that promises order.
    m.received(LinkId(1), data(0), now);
    assert!(matches!(
        ended(&mut m).0,
        Some(DisconnectReason::Protocol(_))
    ));
}

#[test]
fn a_restarted_receiver_resumes_dedup_from_its_kept_state_or_refuses() {
    for keep in [true, false] {
        let mut p = Pair::new(vec![RouteSpec::reliable()], 13);
        p.connect();
        p.run_for(ms(10));
        for _ in 0..50 {
            p.send(Priority::Bulk, 10, false);
        }
        p.run_for(ms(50));
        assert_eq!(p.received(1), seqs(50));
        // b restarts: a new machine, with or without the old one's receive state.
        let snap = p.b.recv_snapshot();
        p.cut(0);
        p.b = crate::machine::PeerMachine::new(config(), 0xB2, snap.filter(|_| keep), p.now);
        for _ in 0..10 {
            p.send(Priority::Bulk, 10, false);
        }
        p.run_for(Duration::from_secs(2));
        if keep {
            assert_eq!(p.received(1), seqs(60), "nothing twice, nothing lost");
            assert!(p.apps[0].ended.is_none());
        } else {
            // a's session cannot continue safely: it ends and reports what was unfinished.
            assert!(matches!(
                p.apps[0].ended,
                Some(DisconnectReason::SessionLost)
            ));
            assert_eq!(p.apps[0].undelivered.len(), 10);
            assert_eq!(p.received(1), seqs(50));
        }
    }
}

#[test]
fn ending_reports_every_unfinished_message_once() {
    let mut p = Pair::new(vec![RouteSpec::reliable()], 14);
    p.connect();
    p.run_for(ms(10));
    p.go_dark(0);
    let ids: Vec<MessageId> = (0..5).map(|_| p.send(Priority::Bulk, 10, true)).collect();
    p.a.end(
        DisconnectReason::Local(crate::machine::LocalReason::Shutdown),
        p.now,
    );
    p.run_for(ms(10));
    assert_eq!(p.apps[0].undelivered, ids);
    assert_eq!(p.apps[0].released, 5);
    assert!(ids.iter().all(|id| p.apps[0].receipts[id].is_err()));
    // Sending after the end is reported at once.
    let late = p.send(Priority::Bulk, 10, true);
    p.run_for(ms(1));
    assert!(p.apps[0].receipts[&late].is_err());
}

#[test]
fn acknowledgements_ride_along_with_replies() {
    let mut p = Pair::new(vec![RouteSpec::reliable()], 15);
    p.connect();
    p.run_for(Duration::from_secs(1));
    let before = [p.apps[0].frames, p.apps[1].frames];
    for round in 0..10u64 {
        p.send(Priority::Interactive, 64, false);
        p.run_for(Duration::from_micros(1500)); // one way, the delivery, not the ack delay
        assert_eq!(p.apps[1].delivered.len() as u64, round + 1);
        // b's application answers at once: its acknowledgement goes in the same message.
        let reply = Bytes::from(vec![1u8; 64]);
        p.b.submit(
            MessageId(round + 1),
            reply,
            Priority::Interactive,
            false,
            p.now,
        );
        p.run_for(ms(10));
    }
    // b: one transport message per round (the reply carries the acknowledgement); a: its
    // message, and a lone acknowledgement of the reply once the delay passed (a's next
    // message is 10 ms later).
    assert_eq!(p.apps[1].frames - before[1], 10);
    assert_eq!(p.apps[0].frames - before[0], 20);
    // A lone acknowledgement still goes out after the delay.
    p.send(Priority::Interactive, 64, false);
    p.run_for(ms(5));
    assert_eq!(p.a.unfinished(), 0);
}

#[test]
fn a_payload_larger_than_the_coalescing_limit_still_goes() {
    // Inline (no DATA_NEXT) on a lossy link, and a coalescing limit below the payload.
    let mut a = config();
    a.coalesce_limit = 1024;
    a.inline_limit = 1 << 20;
    let mut p = Pair::with_config(vec![RouteSpec::lossy(0.0, 0.0, 0.0)], 16, a, config());
    p.connect();
    p.run_for(ms(100));
    for _ in 0..5 {
        p.send(Priority::Bulk, 3000, false);
    }
    p.run_for(Duration::from_secs(1));
    assert_eq!(p.received(1), seqs(5));
}
