//! A soak (not in CI; `cargo xtask soak --minutes N` runs it, or
//! `BITCRAPS_SOAK_SECONDS=N cargo test --release -p bitcraps-coordinator --test soak -- --ignored --nocapture`):
//! churn through coordinators in one process for a while, sampling resident memory, open file
//! descriptors and live tokio tasks every second, then reporting whether each plateaus (its
//! least-squares slope over the second half against the first) and accounting for every message.
//!
//! A hub listens on a memory route (preferred) and a TCP route. Client coordinators come and
//! go (connect, a burst of 1..=200 messages with receipts, goodbye); every few seconds the
//! hub's memory listener is closed and reopened, so live clients fail over to TCP and back.
//! Every message has a global index: the hub marks each delivery in a bitset (a second mark is
//! a duplicate), the clients mark each `Ok` receipt; at the end both sets must be equal and
//! every other message must have been reported undelivered.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bitcraps_coordinator::{CoordinatorConfig, CoordinatorEvent, Priority};
use bitcraps_transport_core::{Keypair, TransportAddress};
use bitcraps_transport_mem::MemoryNetwork;
use common::procfs::{open_fds, rss_kib};
use common::*;
use rand::Rng;

/// A growable bitset; `set` says whether the bit was already set.
#[derive(Default)]
struct Bits(Vec<u64>);

impl Bits {
    fn set(&mut self, i: u64) -> bool {
        let (w, b) = ((i / 64) as usize, i % 64);
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        let was = self.0[w] & (1 << b) != 0;
        self.0[w] |= 1 << b;
        was
    }
    fn get(&self, i: u64) -> bool {
        self.0
            .get((i / 64) as usize)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// Health checks fast enough that failover and failback happen within a few seconds.
fn soak_config() -> CoordinatorConfig {
    let mut c = config();
    c.health_interval = Duration::from_millis(500);
    c.dial_timeout = Duration::from_secs(2);
    c.limits.max_total_connections = 1_000;
    c
}

/// Least-squares slope of `ys` per sample (one sample a second).
fn slope(ys: &[f64]) -> f64 {
    let n = ys.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mx = (n - 1.0) / 2.0;
    let my = ys.iter().sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (x, y) in ys.iter().enumerate() {
        num += (x as f64 - mx) * (y - my);
        den += (x as f64 - mx).powi(2);
    }
    num / den
}

/// One metric's report line: range, peak, slopes per minute and the verdict. It plateaus when
/// the second half grows by less than 5 % of its mean (or by at most 2 units) over its length,
/// grows at under a quarter of the first half's rate, or never exceeds the first half's peak
/// (bounded; an oscillating count can have a noisy slope).
fn plateau(name: &str, ys: &[f64]) -> String {
    let half = ys.len() / 2;
    let (first, second) = ys.split_at(half);
    let (s1, s2) = (slope(first) * 60.0, slope(second) * 60.0);
    let mean2 = second.iter().sum::<f64>() / second.len().max(1) as f64;
    let growth2 = slope(second) * second.len() as f64;
    let max = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    let verdict = if growth2 <= (0.05 * mean2).max(2.0) {
        "plateaus (second half flat)"
    } else if s2 <= 0.25 * s1 {
        "plateaus (growth slowing)"
    } else if max(second) <= max(first) {
        "plateaus (bounded by the first half's peak)"
    } else {
        "GROWS"
    };
    format!(
        "{name:>9}: first {:.1}, last {:.1}, peak {:.1}; slope/min first half {s1:+.2}, second half {s2:+.2} -> {verdict}",
        ys.first().unwrap_or(&0.0),
        ys.last().unwrap_or(&0.0),
        max(ys)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak: cargo xtask soak --minutes N"]
async fn soak_churn_accounts_for_every_message_and_plateaus() {
    let seconds: u64 = std::env::var("BITCRAPS_SOAK_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let net = MemoryNetwork::new();
    let kh = Keypair::generate();
    let (hub, mut events) = node(vec![mem(&net, &kh), tcp(&kh)], soak_config());
    let route_a = hub.listen(&TransportAddress::Memory(0)).await.unwrap();
    let route_b = hub
        .listen(&"tcp://127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let hp = hub.local_peer_id();

    let delivered = Arc::new(Mutex::new((Bits::default(), 0u64, 0u64))); // (bits, count, dups)
    let marks = delivered.clone();
    let drain = tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            if let CoordinatorEvent::DataReceived { data, .. } = e {
                let i = u64::from_be_bytes(data[..8].try_into().unwrap());
                let mut m = marks.lock().unwrap();
                if m.0.set(i) {
                    m.2 += 1;
                }
                m.1 += 1;
            }
        }
    });

    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    // (ok bits, ok, undelivered, undelivered by reason)
    let receipts = Arc::new(Mutex::new((
        Bits::default(),
        0u64,
        0u64,
        BTreeMap::<String, u64>::new(),
    )));
    let cycles = Arc::new(AtomicU64::new(0));
    let moves = Arc::new(AtomicU64::new(0)); // route changes seen by clients (failover, failback)
    let mut clients = Vec::new();
    for slot in 0..8 {
        let moves = moves.clone();
        let (net, stop, next, receipts, cycles) = (
            net.clone(),
            stop.clone(),
            next.clone(),
            receipts.clone(),
            cycles.clone(),
        );
        let routes = vec![route_a.clone(), route_b.clone()];
        clients.push(tokio::spawn(async move {
            // About 20 client cycles a second each, so the accounting bitsets stay small.
            let mut pace = tokio::time::interval(Duration::from_millis(50));
            while !stop.load(Ordering::Acquire) {
                pace.tick().await;
                let k = Keypair::generate();
                let (c, mut client_events) = node(vec![mem(&net, &k), tcp(&k)], soak_config());
                if c.connect_to_peer(hp, routes.clone()).await.is_err() {
                    c.shutdown(Duration::from_secs(2)).await;
                    continue; // both routes down for a moment: a new client tries again
                }
                // Two long-lived clients (about 100 bursts a session) live through the
                // route outages and fail over and back; the others are gone in a burst.
                for _ in 0..if slot < 2 { 100 } else { 1 } {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    let burst = rand::thread_rng().gen_range(1..=200u64);
                    let mut pending = Vec::new();
                    for _ in 0..burst {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let data = bytes::Bytes::copy_from_slice(&i.to_be_bytes());
                        match c.send_with_receipt(hp, data, Priority::Bulk).await {
                            Ok(r) => pending.push((i, r)),
                            Err(e) => {
                                // Refused: never sent.
                                let mut rs = receipts.lock().unwrap();
                                rs.2 += 1;
                                *rs.3.entry(format!("send refused: {e}")).or_default() += 1;
                            }
                        }
                    }
                    for (i, r) in pending {
                        let outcome = tokio::time::timeout(GUARD, r).await.expect("receipt");
                        let mut rs = receipts.lock().unwrap();
                        if outcome.is_ok() {
                            rs.0.set(i);
                            rs.1 += 1;
                        } else if let Err(reason) = outcome {
                            rs.2 += 1;
                            let kind = format!("{reason:?}");
                            let kind = kind.split(['(', ' ', '{']).next().unwrap_or("").to_owned();
                            *rs.3.entry(kind).or_default() += 1;
                        }
                    }
                    pace.tick().await;
                }
                c.shutdown(Duration::from_secs(2)).await;
                while let Some(e) = client_events.try_recv() {
                    if let CoordinatorEvent::RouteChanged { from: Some(_), .. } = e {
                        moves.fetch_add(1, Ordering::Relaxed);
                    }
                }
                cycles.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    // Failovers: every 4 s the preferred (memory) route goes away for 1 s.
    let (flapper, stop_flap, ra) = (hub.clone(), stop.clone(), route_a.clone());
    let failovers = tokio::spawn(async move {
        let mut flaps = 0u64;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut n = 0u64;
        while !stop_flap.load(Ordering::Acquire) {
            tick.tick().await;
            n += 1;
            if n % 4 == 2 {
                flapper.close_listener(&ra).await.unwrap();
                flaps += 1;
            } else if n % 4 == 3 {
                assert_eq!(flapper.listen(&ra).await.unwrap(), ra);
            }
        }
        flaps
    });

    let handle = tokio::runtime::Handle::current();
    let (mut rss, mut fds, mut tasks) = (Vec::new(), Vec::new(), Vec::new());
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    for s in 0..seconds {
        tick.tick().await;
        rss.push(rss_kib().0 as f64 / 1024.0);
        fds.push(open_fds() as f64);
        tasks.push(handle.metrics().num_alive_tasks() as f64);
        if s % 10 == 0 {
            println!(
                "t={s:>4}s rss {:.1} MiB, fds {}, tasks {}, messages {}, client cycles {}",
                rss[rss.len() - 1],
                fds[fds.len() - 1],
                tasks[tasks.len() - 1],
                next.load(Ordering::Relaxed),
                cycles.load(Ordering::Relaxed)
            );
        }
    }
    stop.store(true, Ordering::Release);
    for c in clients {
        c.await.unwrap();
    }
    let flaps = failovers.await.unwrap();
    let _ = hub.listen(&route_a).await; // reopened if the last flap left it closed
    let sent = next.load(Ordering::Relaxed);
    let (ok, undelivered, reasons) = {
        let r = receipts.lock().unwrap();
        (r.1, r.2, r.3.clone())
    };
    assert_eq!(ok + undelivered, sent, "every message has an outcome");
    // Every `Ok` receipt means the hub application has it; wait (bounded) until it was read.
    let deadline = Instant::now() + GUARD;
    while delivered.lock().unwrap().1 < ok && Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
    {
        let d = delivered.lock().unwrap();
        let r = receipts.lock().unwrap();
        assert_eq!(d.2, 0, "duplicates delivered");
        assert_eq!(d.1, ok, "deliveries vs Ok receipts");
        let mismatched = (0..sent).filter(|&i| d.0.get(i) != r.0.get(i)).count();
        assert_eq!(
            mismatched, 0,
            "a delivered message without an Ok receipt or the reverse"
        );
    }
    println!(
        "soak {seconds} s ({:.0} s wall): {sent} messages in {} client cycles, {flaps} outages of the preferred route, {} client route changes; \
         delivered once with an Ok receipt: {ok}; reported undelivered: {undelivered} {reasons:?}; duplicates: 0",
        started.elapsed().as_secs_f64(),
        cycles.load(Ordering::Relaxed),
        moves.load(Ordering::Relaxed)
    );
    println!("{}", plateau("RSS MiB", &rss));
    println!("{}", plateau("open fds", &fds));
    println!("{}", plateau("tasks", &tasks));
    hub.shutdown(Duration::from_secs(5)).await;
    drop(hub);
    let _ = drain.await;
}
