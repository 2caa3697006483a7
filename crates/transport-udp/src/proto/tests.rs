//! Tests of the sans-IO core over an in-memory "network" that loses, duplicates and reorders
//! datagrams, with time passed in by hand.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use bitcraps_transport_core::policy::{LimitKind, LimitRejection, ReplayWindow};
use bitcraps_transport_core::secure::{CipherSuite, LocalIdentity};
use bitcraps_transport_core::{ChannelConfig, Error, Keypair, PeerId};

use super::accept::{Acceptor, AcceptorConfig, Action, Gate, Ignored, SessionHandle};
use super::dial::{DialHandshake, DialStep, Established, RetryTiming};
use super::session::{Event, Session, SessionTiming};

pub(super) const A_ADDR: ([u8; 4], u16) = ([10, 0, 0, 1], 4000);

/// A gate that counts and refuses on demand.
#[derive(Default)]
pub(super) struct TestGate {
    pub(super) refuse_inbound: bool,
    pub(super) refuse_admit: bool,
    pub(super) checks: usize,
    pub(super) admitted: usize,
}

impl Gate for TestGate {
    type Ticket = ();
    type Guard = ();
    fn check_inbound(&mut self, _: SocketAddr) -> Result<(), LimitRejection> {
        self.checks += 1;
        if self.refuse_inbound {
            return Err(LimitRejection {
                limit: LimitKind::NewConnectionRate,
                retry_after: Some(Duration::from_secs(6)),
            });
        }
        Ok(())
    }
    fn handshake_done(&mut self, _: ()) {}
    fn admit(&mut self, _: PeerId) -> Result<(), LimitRejection> {
        if self.refuse_admit {
            return Err(LimitRejection {
                limit: LimitKind::ConnectionsPerPeer,
                retry_after: None,
            });
        }
        self.admitted += 1;
        Ok(())
    }
}

/// A session handle that is open until told otherwise.
pub(super) struct Handle(pub(super) bool);

impl SessionHandle for Handle {
    fn is_closed(&self) -> bool {
        self.0
    }
}

pub(super) fn ids() -> (Arc<LocalIdentity>, Arc<LocalIdentity>) {
    (
        LocalIdentity::new(Keypair::generate()),
        LocalIdentity::new(Keypair::generate()),
    )
}

pub(super) fn acceptor(b: &Arc<LocalIdentity>, cap: usize) -> Acceptor<TestGate, Handle> {
    Acceptor::new(
        AcceptorConfig {
            identity: b.clone(),
            accepted_suites: CipherSuite::ALL.to_vec(),
            handshake_timeout: Duration::from_secs(10),
            max_associations: cap,
        },
        StdRng::seed_from_u64(7),
    )
}

/// Datagrams in flight: each is lost, delayed (so reordered) or duplicated by a seeded RNG.
struct Net {
    rng: StdRng,
    loss: f64,
    dup: f64,
    flight: Vec<(Instant, bool, Vec<u8>)>,
}

impl Net {
    fn send(&mut self, now: Instant, to_b: bool, d: &[u8]) {
        let copies = if self.rng.gen_bool(self.dup) { 2 } else { 1 };
        for _ in 0..copies {
            if !self.rng.gen_bool(self.loss) {
                let delay = Duration::from_millis(self.rng.gen_range(1..80));
                self.flight.push((now + delay, to_b, d.to_vec()));
            }
        }
    }

    fn due(&mut self, now: Instant) -> Vec<(bool, Vec<u8>)> {
        self.flight.sort_by_key(|f| f.0);
        let n = self.flight.iter().take_while(|f| f.0 <= now).count();
        self.flight.drain(..n).map(|(_, b, d)| (b, d)).collect()
    }
}

struct Run {
    a: Session,
    b: Session,
    a_peer: PeerId,
    b_peer: PeerId,
    b_id: u32,
    net: Net,
    now: Instant,
    acceptor: Acceptor<TestGate, Handle>,
}

/// Runs a handshake over a lossy network; returns both sessions once established.
fn handshake(seed: u64, loss: f64, dup: f64) -> Result<Run, Error> {
    let (a, b) = ids();
    let mut now = Instant::now();
    let mut net = Net {
        rng: StdRng::seed_from_u64(seed),
        loss,
        dup,
        flight: Vec::new(),
    };
    let mut gate = TestGate::default();
    let mut acc = acceptor(&b, 16);
    let cfg = ChannelConfig::default();
    let mut dial: DialHandshake<()> =
        DialHandshake::start(&a, &cfg, Some(b.peer_id()), 77, RetryTiming::default(), now)?;
    net.send(now, true, dial.transmit());
    let mut a_done: Option<Box<Established<()>>> = None;
    let mut b_done = None;
    while a_done.is_none() || b_done.is_none() {
        now += Duration::from_millis(5);
        for (to_b, d) in net.due(now) {
            if to_b {
                match acc.handle(A_ADDR.into(), &d, now, &mut gate) {
                    Action::Reply(r) => net.send(now, false, &r),
                    Action::Accepted(x) => {
                        net.send(now, false, &x.confirm);
                        acc.attach(&x.key, Handle(false));
                        b_done = Some(x);
                    }
                    Action::Ignore(_) | Action::Route(_) => {}
                    Action::Refused { error, .. } => panic!("refused: {error}"),
                }
            } else if a_done.is_none() {
                match dial.handle(&d, now, |_| Ok(()))? {
                    DialStep::Send => net.send(now, true, dial.transmit()),
                    DialStep::Established(e) => a_done = Some(e),
                    DialStep::Ignored => {}
                }
            }
        }
        if a_done.is_none() && now >= dial.poll_timeout() && dial.handle_timeout(now)? {
            net.send(now, true, dial.transmit());
        }
    }
    let (ea, eb) = (a_done.unwrap(), b_done.unwrap());
    assert_eq!(ea.peer, b.peer_id());
    assert_eq!(eb.peer, a.peer_id());
    assert_eq!((ea.local_id, ea.remote_id), (eb.remote_id, eb.key.local_id));
    let mut seen = ReplayWindow::new();
    seen.mark(ea.confirm_counter);
    let t = SessionTiming::default();
    let eb = *eb;
    Ok(Run {
        a: Session::new(
            ea.local_id,
            ea.remote_id,
            ea.sealer,
            ea.opener,
            seen,
            t,
            1200,
            now,
        ),
        b: Session::new(
            eb.key.local_id,
            eb.remote_id,
            eb.sealer,
            eb.opener,
            ReplayWindow::new(),
            t,
            1200,
            now,
        ),
        a_peer: a.peer_id(),
        b_peer: b.peer_id(),
        b_id: eb.key.local_id,
        net,
        now,
        acceptor: acc,
    })
}

#[test]
fn handshake_completes_despite_loss_duplication_and_reordering() {
    // 30% loss each way: a handshake needs two round trips through it, so an unlucky seed
    // can exhaust the retransmissions; those must fail by timeout, and be rare.
    let mut timeouts = 0;
    for seed in 0..40 {
        match handshake(seed, 0.3, 0.3) {
            Ok(run) => {
                assert_ne!(run.a_peer, run.b_peer);
                assert!(run.a.is_open() && run.b.is_open());
            }
            Err(Error::Timeout { .. }) => timeouts += 1,
            Err(e) => panic!("seed {seed}: {e}"),
        }
    }
    assert!(timeouts <= 2, "{timeouts} of 40 handshakes timed out");
    for seed in 0..20 {
        handshake(seed, 0.1, 0.5).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
}

#[test]
fn data_over_a_lossy_network_is_authentic_and_never_duplicated() {
    let mut run = handshake(3, 0.2, 0.5).unwrap();
    let mut out = BytesMut::new();
    let mut plain = BytesMut::new();
    for i in 0u32..500 {
        assert!(run.a.seal_data(&i.to_be_bytes(), run.now, &mut out));
        run.net.send(run.now, true, &out);
    }
    let mut got = Vec::new();
    let mut dropped_replays = 0;
    for _ in 0..100 {
        run.now += Duration::from_millis(5);
        for (to_b, d) in run.net.due(run.now) {
            assert!(to_b);
            let from: SocketAddr = A_ADDR.into();
            let Action::Route(_) = run
                .acceptor
                .handle(from, &d, run.now, &mut TestGate::default())
            else {
                panic!("data must route to the session")
            };
            match run.b.handle_datagram(&d, run.now, &mut plain) {
                Event::Data(m) => got.push(u32::from_be_bytes(m[..].try_into().unwrap())),
                Event::Dropped(super::session::DropReason::Replayed) => dropped_replays += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    let mut sorted = got.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), got.len(), "no message delivered twice");
    assert!(got.iter().all(|&i| i < 500));
    assert!(got.len() > 300, "most arrive: {}", got.len());
    assert!(
        dropped_replays > 100,
        "duplicates were dropped: {dropped_replays}"
    );
    assert!(got.windows(2).any(|w| w[0] > w[1]), "the network reordered");
}

#[test]
fn closed_sessions_leave_the_table_and_stop_accepting_keeps_sessions() {
    let mut run = handshake(5, 0.0, 0.0).unwrap();
    assert_eq!(run.acceptor.live_sessions(), 1);
    run.acceptor.stop_accepting();
    assert_eq!(run.acceptor.len(), 1, "sessions survive stop_accepting");
    let (a, _) = ids();
    let hs: DialHandshake<()> = DialHandshake::start(
        &a,
        &ChannelConfig::default(),
        None,
        3,
        RetryTiming::default(),
        run.now,
    )
    .unwrap();
    let from = SocketAddr::from(([10, 9, 9, 9], 1));
    assert!(matches!(
        run.acceptor
            .handle(from, hs.transmit(), run.now, &mut TestGate::default()),
        Action::Ignore(Ignored::NotAccepting)
    ));
    let key = super::table::AssocKey {
        addr: A_ADDR.into(),
        local_id: run.b_id,
    };
    run.acceptor.attach(&key, Handle(true));
    assert!(run.acceptor.sweep(run.now).is_empty());
    assert!(run.acceptor.is_empty(), "a closed session is swept out");
}
