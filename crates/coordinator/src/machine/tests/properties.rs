//! Property tests over random schedules: sends of both priorities and many sizes, links cut,
//! routes going dark and healing, lossy links that drop, duplicate and reorder, and a slow
//! receiving application. Whatever the schedule:
//!
//! - no message reaches the application twice;
//! - each lane's messages arrive in the order they were accepted;
//! - every accepted message ends exactly once: delivered, or reported undelivered (and only
//!   when the session ended);
//! - while the session lives, nothing is lost: once the network heals, everything arrives;
//! - the receiver never buffers more than the window it granted.

use std::collections::HashSet;
use std::time::Duration;

use proptest::prelude::*;

use super::harness::{Pair, RouteSpec};
use crate::policy::Priority;

#[derive(Debug, Clone)]
enum Op {
    Send {
        interactive: bool,
        len: usize,
        receipt: bool,
    },
    Burst(u8),
    Wait(u16),
    Cut(usize),
    Dark(usize),
    Heal(usize),
    Pace(Option<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<bool>(), prop_oneof![1usize..64, 1000usize..3000, 9000usize..20000], any::<bool>())
            .prop_map(|(interactive, len, receipt)| Op::Send { interactive, len, receipt }),
        2 => (1u8..60).prop_map(Op::Burst),
        4 => (1u16..1500).prop_map(Op::Wait),
        1 => (0usize..2).prop_map(Op::Cut),
        1 => (0usize..2).prop_map(Op::Dark),
        1 => (0usize..2).prop_map(Op::Heal),
        1 => proptest::option::of(1u8..5).prop_map(Op::Pace),
    ]
}

fn routes(lossy: bool, loss: f64) -> Vec<RouteSpec> {
    if lossy {
        vec![
            RouteSpec::reliable(),
            RouteSpec::lossy(loss, loss / 2.0, 0.3),
        ]
    } else {
        vec![RouteSpec::reliable(), RouteSpec::reliable()]
    }
}

fn run(ops: &[Op], lossy: bool, loss: f64, seed: u64) -> Result<(), TestCaseError> {
    let mut p = Pair::new(routes(lossy, loss), seed);
    p.connect();
    let mut sent = 0u64;
    for op in ops {
        match *op {
            Op::Send {
                interactive,
                len,
                receipt,
            } => {
                let prio = if interactive {
                    Priority::Interactive
                } else {
                    Priority::Bulk
                };
                p.send(prio, len, receipt);
                sent += 1;
            }
            Op::Burst(n) => {
                for _ in 0..n {
                    p.send(Priority::Bulk, 30, false);
                    sent += 1;
                }
            }
            Op::Wait(ms) => p.run_for(Duration::from_millis(u64::from(ms))),
            Op::Cut(r) => p.cut(r),
            Op::Dark(r) => p.go_dark(r),
            Op::Heal(r) => p.heal(r),
            Op::Pace(n) => p.apps[1].pace = n.map(usize::from),
        }
        prop_assert!(
            p.b.buffered() <= 64,
            "the receiver buffers beyond its window"
        );
    }
    // Heal everything and let it settle.
    for r in 0..2 {
        p.heal(r);
    }
    p.apps[1].pace = None;
    p.run_for(Duration::from_secs(120));

    let delivered: Vec<u64> = p.received(0).into_iter().chain(p.received(1)).collect();
    let unique: HashSet<u64> = delivered.iter().copied().collect();
    prop_assert_eq!(
        unique.len(),
        delivered.len(),
        "a message was delivered twice"
    );
    for lane in 0..2 {
        let got = p.received(lane);
        prop_assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "lane {} out of order",
            lane
        );
    }
    let undelivered: HashSet<u64> = p.apps[0].undelivered.iter().map(|id| id.0).collect();
    prop_assert_eq!(
        undelivered.len(),
        p.apps[0].undelivered.len(),
        "reported twice"
    );
    prop_assert_eq!(
        p.apps[0].released as u64,
        sent,
        "every message finished once"
    );
    match &p.apps[0].ended {
        None => {
            prop_assert!(undelivered.is_empty());
            prop_assert_eq!(unique.len() as u64, sent, "lost while the session lived");
        }
        Some(_) => {
            // Ended: everything not delivered is reported; some reported ones may have
            // arrived if the session ended with acknowledgements in flight.
            for id in 1..=sent {
                prop_assert!(
                    unique.contains(&id) || undelivered.contains(&id),
                    "{} vanished",
                    id
                );
            }
        }
    }
    for (id, outcome) in &p.apps[0].receipts {
        if outcome.is_ok() {
            prop_assert!(
                unique.contains(&id.0),
                "receipt Ok for {} but never delivered",
                id
            );
            prop_assert!(!undelivered.contains(&id.0));
        } else {
            prop_assert!(undelivered.contains(&id.0));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn reliable_routes_never_lose_or_duplicate(ops in proptest::collection::vec(op(), 1..40), seed in any::<u64>()) {
        run(&ops, false, 0.0, seed)?;
    }

    #[test]
    fn lossy_routes_never_lose_or_duplicate(
        ops in proptest::collection::vec(op(), 1..40),
        loss in 0.0f64..0.15,
        seed in any::<u64>(),
    ) {
        run(&ops, true, loss, seed)?;
    }
}
