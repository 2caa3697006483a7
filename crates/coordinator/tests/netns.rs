//! Failover and failback between two real hosts: the receiving coordinator runs in its own
//! network namespace (a child process, `ip netns exec`), reachable from this one over two veth
//! pairs (`10.215.n.0/24` preferred, `10.216.n.0/24` second; `n` from the process id). The
//! sender streams messages over TCP; the test takes the preferred link down inside the host
//! (`ip link set ... down`), traffic fails over to the second link, the link comes back and
//! traffic fails back. Every message reaches the remote application exactly once, in order,
//! and every receipt is `Ok`; the failover and failback times are printed (not asserted).
//!
//! The test makes and removes the namespace itself and targets only the addresses it created;
//! where namespaces cannot be made (not root, no `ip`) it says so and passes as skipped.

mod common;

#[path = "../../../tests/shared/netns.rs"]
mod netns;

use std::io::BufRead;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcraps_coordinator::{CoordinatorConfig, CoordinatorEvent, Priority};
use bitcraps_transport_core::{Keypair, PeerId, TransportAddress};
use common::*;
use netns::{exec_in, ip, Namespaces};
use tokio::sync::mpsc;

const CHILD: &str = "BITCRAPS_NETNS_COORD";

/// Fast health checks and dials, so a dead link is noticed and a returned one retried soon.
fn fast() -> CoordinatorConfig {
    let mut c = config();
    c.health_interval = Duration::from_millis(250);
    c.dial_timeout = Duration::from_secs(1);
    c
}

/// The child in the namespace: listens on both addresses in the environment, prints
/// `READY <peer> <addr> <addr>`, then `DATA <n>` for each message, until `end`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_coordinator_child() {
    let Ok(ips) = std::env::var(CHILD) else {
        return; // Not a child run.
    };
    let k = Keypair::generate();
    let (c, mut events) = node(vec![tcp(&k)], fast());
    let mut addrs = Vec::new();
    for ip in ips.split(',') {
        let addr: TransportAddress = format!("tcp://{ip}:0").parse().unwrap();
        addrs.push(c.listen(&addr).await.expect("listen").to_string());
    }
    println!("READY {} {}", c.local_peer_id(), addrs.join(" "));
    loop {
        match tokio::time::timeout(GUARD, events.recv()).await {
            Ok(Some(CoordinatorEvent::DataReceived { data, .. })) if &data[..] == b"end" => break,
            Ok(Some(CoordinatorEvent::DataReceived { data, .. })) => {
                println!("DATA {}", num(&data));
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let stats = c.stats();
    let duplicates: u64 = stats.per_peer.iter().map(|p| p.duplicates).sum();
    println!("END duplicates_dropped={duplicates}");
    // Stay until the sender has its last receipt and says goodbye.
    let _ = tokio::time::timeout(GUARD, async {
        while let Some(e) = events.recv().await {
            if matches!(e, CoordinatorEvent::Disconnected { .. }) {
                break;
            }
        }
    })
    .await;
}

/// The child process; killed if still running when the test ends.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A line of the child's output, or the parent's own event.
enum Seen {
    Line(String),
    Event(CoordinatorEvent),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_and_failback_across_namespaces() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let pid = std::process::id();
    let (n, tag) = (pid % 250 + 1, pid % 1_000_000);
    let ns = format!("bcc{pid}");
    let link1 = format!("bcc{tag}an");
    let mut hosts = Namespaces::default();
    let made = (|| {
        hosts.add(&ns)?;
        for (net, side) in [(215, "a"), (216, "b")] {
            hosts.veth(
                &ns,
                (&format!("bcc{tag}{side}r"), &format!("10.{net}.{n}.1/24")),
                (&format!("bcc{tag}{side}n"), &format!("10.{net}.{n}.2/24")),
            )?;
        }
        Ok::<_, String>(())
    })();
    if let Err(why) = made {
        eprintln!("skipped: network namespaces cannot be made here ({why})");
        return;
    }

    // The receiver, in the namespace; its stdout lines come through a bounded channel.
    let mut child = exec_in(&ns, "netns_coordinator_child");
    child
        .env(CHILD, format!("10.215.{n}.2,10.216.{n}.2"))
        .stdout(Stdio::piped());
    let mut child = ChildGuard(child.spawn().expect("child"));
    let stdout = child.0.stdout.take().unwrap();
    let (tx, mut rx) = mpsc::channel::<Seen>(4096);
    let lines = tx.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines.blocking_send(Seen::Line(line)).is_err() {
                break;
            }
        }
    });
    let ready = tokio::time::timeout(GUARD, async {
        loop {
            match rx.recv().await {
                // libtest's "test ... " may precede it on the line.
                Some(Seen::Line(l)) if l.contains("READY ") => {
                    return l.split_once("READY ").map(|(_, r)| r.to_owned())
                }
                Some(_) => {}
                None => return None,
            }
        }
    })
    .await
    .expect("child ready")
    .expect("child output ended before READY");
    let mut words = ready.split_whitespace();
    let pr: PeerId = words.next().unwrap().parse().unwrap();
    let routes: Vec<TransportAddress> = words.map(|w| w.parse().unwrap()).collect();
    assert_eq!(routes.len(), 2);

    let ks = Keypair::generate();
    let (s, mut es) = node(vec![tcp(&ks)], fast());
    s.connect_to_peer(pr, routes.clone())
        .await
        .expect("connect");
    tokio::spawn(async move {
        while let Some(e) = es.recv().await {
            if tx.send(Seen::Event(e)).await.is_err() {
                break;
            }
        }
    });

    // A steady stream, one message every 2 ms, each with a receipt.
    let stop = Arc::new(AtomicBool::new(false));
    let (sender, stopping) = (s.clone(), stop.clone());
    let stream = tokio::spawn(async move {
        let mut receipts = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(2));
        let mut i = 0u32;
        while !stopping.load(Ordering::Acquire) {
            tick.tick().await;
            let r = sender.send_with_receipt(pr, msg(i), Priority::Bulk).await;
            receipts.push(r.expect("accepted"));
            i += 1;
        }
        receipts
    });

    // 0: 200 delivered -> link down; 1: failed over, 200 more -> link up;
    // 2: failed back, 200 more -> stop.
    let mut delivered: Vec<u32> = Vec::new();
    let (mut phase, mut mark) = (0, 0);
    let (mut down_at, mut up_at) = (None, None);
    let (mut failover, mut failback, mut resumed) = (None, None, None);
    let (mut stream, mut sent, mut receipts) = (Some(stream), 0usize, Vec::new());
    let mut duplicates_dropped = String::new();
    let run = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(seen) = rx.recv().await {
            match seen {
                Seen::Line(l) if l.starts_with("DATA ") => {
                    delivered.push(l[5..].parse().unwrap());
                    if phase == 1 && failover.is_some() && resumed.is_none() {
                        resumed = Some(down_at.map(|t: Instant| t.elapsed()).unwrap());
                    }
                }
                Seen::Line(l) if l.starts_with("END ") => {
                    duplicates_dropped = l[4..].to_owned();
                    break;
                }
                Seen::Line(_) => {}
                Seen::Event(CoordinatorEvent::RouteChanged { to, .. }) => {
                    if phase == 1 && to == routes[1] {
                        failover = down_at.map(|t: Instant| t.elapsed());
                        mark = delivered.len();
                    } else if phase == 2 && to == routes[0] {
                        failback = up_at.map(|t: Instant| t.elapsed());
                        mark = delivered.len();
                    }
                }
                Seen::Event(_) => {}
            }
            let ahead = delivered.len() >= mark + 200;
            if phase == 0 && ahead {
                ip(&["-n", &ns, "link", "set", &link1, "down"]).expect("link down");
                down_at = Some(Instant::now());
                phase = 1;
            } else if phase == 1 && failover.is_some() && ahead {
                ip(&["-n", &ns, "link", "set", &link1, "up"]).expect("link up");
                up_at = Some(Instant::now());
                phase = 2;
            } else if phase == 2 && failback.is_some() && ahead {
                phase = 3;
                stop.store(true, Ordering::Release);
                let mut all = stream.take().unwrap().await.unwrap();
                sent = all.len();
                all.push(
                    s.send_with_receipt(pr, "end".into(), Priority::Bulk)
                        .await
                        .unwrap(),
                );
                receipts = all;
            }
        }
    })
    .await;
    assert!(
        run.is_ok(),
        "stuck in phase {phase} after {} delivered",
        delivered.len()
    );
    for (i, r) in receipts.into_iter().enumerate() {
        let outcome = tokio::time::timeout(GUARD, r).await.expect("receipt");
        assert!(outcome.is_ok(), "message {i}: {outcome:?}");
    }
    let expected: Vec<u32> = (0..sent as u32).collect();
    assert_eq!(delivered.len(), sent, "delivered count");
    assert!(delivered == expected, "each message once, in order");
    assert!(s.shutdown(Duration::from_secs(5)).await.flushed);
    println!(
        "netns failover (link {link1} down -> traffic on {}): {:?}, first delivery after the cut {:?}; \
         failback (link up -> traffic on {}): {:?}; {sent} messages, each delivered once \
         in order, every receipt Ok; receiver {duplicates_dropped}",
        routes[1],
        failover.unwrap(),
        resumed.unwrap(),
        routes[0],
        failback.unwrap()
    );
    drop(child);
    drop(hosts);
}
