//! Floods: connection attempts from many source addresses (loopback aliases `127.1.x.y`,
//! which Linux routes without setup) against a TCP backend listener and a coordinator's
//! listener, then many concurrent authenticated connections through one coordinator. After
//! each flood a legitimate client (from `127.0.0.1`, a source the flood never used) must still
//! be served. Peak resident memory and open file descriptors are printed.
//!
//! CI runs it scaled down (`BITCRAPS_FLOOD_ATTEMPTS`, default 1,000; `BITCRAPS_FLOOD_CONNS`,
//! default 100); `cargo xtask flood` runs the full sizes (10,000 and 1,000) in release.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcraps_coordinator::{CoordinatorEvent, Priority, TransportCoordinator};
use bitcraps_transport_core::{Inbound, Keypair, PeerId, Transport, TransportAddress};
use bitcraps_transport_tcp::{TcpConfig, TcpTransport};
use common::procfs::snapshot;
use common::*;
use futures::stream::{self, StreamExt};
use tokio::io::AsyncWriteExt;

/// A size from the environment, or `default`.
fn size(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `n` raw connection attempts to `target`, each from its own source address (`127.1.x.y`),
/// 200 at a time; each writes a few garbage bytes and hangs up. Returns how many connected.
async fn flood(target: SocketAddr, n: usize) -> usize {
    let connected = Arc::new(AtomicUsize::new(0));
    stream::iter(0..n)
        .for_each_concurrent(200, |i| {
            let connected = connected.clone();
            async move {
                let source = Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8);
                let Ok(socket) = tokio::net::TcpSocket::new_v4() else {
                    return;
                };
                if socket.bind(SocketAddr::new(source.into(), 0)).is_err() {
                    return;
                }
                let dial = tokio::time::timeout(Duration::from_secs(5), socket.connect(target));
                if let Ok(Ok(mut s)) = dial.await {
                    connected.fetch_add(1, Ordering::Relaxed);
                    let _ = s.write_all(b"not a handshake\r\n").await;
                }
            }
        })
        .await;
    connected.load(Ordering::Relaxed)
}

/// The socket address of a `tcp://` address.
fn socket_addr(addr: &TransportAddress) -> SocketAddr {
    addr.to_string()
        .trim_start_matches("tcp://")
        .parse()
        .expect("tcp address")
}

/// A TCP transport with the default (per-source) limits, as a public listener has.
fn guarded(k: &Keypair) -> Arc<dyn Transport> {
    Arc::new(TcpTransport::with_config(copy(k), TcpConfig::default()))
}

/// A legitimate coordinator client sends one message to `peer` at `addr` and gets its receipt
/// (retrying a refused connect until the guard; a refusal names its retry time).
async fn legitimate_client(peer: PeerId, addr: &TransportAddress) -> (Duration, u32) {
    let started = Instant::now();
    let k = Keypair::generate();
    let (c, _events) = node(vec![tcp(&k)], config());
    let mut tries = 0;
    loop {
        tries += 1;
        if c.connect_to_peer(peer, vec![addr.clone()]).await.is_ok() {
            let receipt = c
                .send_with_receipt(peer, "legitimate".into(), Priority::Interactive)
                .await
                .expect("accepted");
            let outcome = tokio::time::timeout(GUARD, receipt).await.expect("receipt");
            if outcome.is_ok() {
                break;
            }
        }
        assert!(started.elapsed() < GUARD, "legitimate client never served");
        tokio::time::sleep(Duration::from_millis(100)).await; // retry pacing, not a wait
    }
    c.shutdown(Duration::from_secs(5)).await;
    (started.elapsed(), tries)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_leave_the_listeners_serving() {
    let attempts = size("BITCRAPS_FLOOD_ATTEMPTS", 1_000);
    let conns = size("BITCRAPS_FLOOD_CONNS", 100);
    println!("before: {}", snapshot());

    // 1. The TCP backend's listener.
    let server = TcpTransport::with_config(Keypair::generate(), TcpConfig::default());
    let mut listener = server
        .listen(&"tcp://127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().clone();
    let refused = Arc::new(AtomicUsize::new(0));
    let (tx, mut served) = tokio::sync::mpsc::channel(4);
    let counting = refused.clone();
    let accepting = tokio::spawn(async move {
        while let Ok(inbound) = listener.accept().await {
            match inbound {
                Inbound::Connection(c) => {
                    if tx.send(c).await.is_err() {
                        break;
                    }
                }
                _ => {
                    counting.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    let started = Instant::now();
    let connected = flood(socket_addr(&addr), attempts).await;
    println!(
        "tcp listener: {attempts} attempts from {attempts} sources ({connected} connected) in {:?}; \
         {} refusals reported; {}",
        started.elapsed(),
        refused.load(Ordering::Relaxed),
        snapshot()
    );
    assert!(served.try_recv().is_err(), "garbage was authenticated");
    let client = TcpTransport::with_config(Keypair::generate(), TcpConfig::default());
    let expect = server.local_peer_id();
    let legit =
        tokio::spawn(
            async move { tokio::time::timeout(GUARD, client.dial(&addr, Some(expect))).await },
        );
    let conn = legit
        .await
        .unwrap()
        .expect("dial hung")
        .expect("legitimate dial");
    let served = tokio::time::timeout(GUARD, served.recv())
        .await
        .expect("listener stopped serving")
        .expect("listener ended");
    assert_eq!(served.info().remote_peer, conn.info().local_peer);
    println!("tcp listener: legitimate client served after the flood");
    accepting.abort();
    drop((conn, served));

    // 2. A coordinator's listener.
    let kh = Keypair::generate();
    let (hub, mut events) = node(vec![guarded(&kh)], config());
    let haddr = hub
        .listen(&"tcp://127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let started = Instant::now();
    let connected = flood(socket_addr(&haddr), attempts).await;
    println!(
        "coordinator listener: {attempts} attempts ({connected} connected) in {:?}; {}",
        started.elapsed(),
        snapshot()
    );
    let drain = tokio::spawn(async move {
        let mut data = 0usize;
        while let Some(e) = events.recv().await {
            if matches!(e, CoordinatorEvent::DataReceived { .. }) {
                data += 1;
            }
        }
        data
    });
    let (took, tries) = legitimate_client(hub.local_peer_id(), &haddr).await;
    println!("coordinator listener: legitimate client served after {took:?} ({tries} tries)");
    hub.shutdown(Duration::from_secs(5)).await;
    drop(hub);
    let _ = drain.await;

    // 3. Many concurrent authenticated connections through one coordinator.
    let kh = Keypair::generate();
    let mut hc = config();
    hc.limits.max_total_connections = conns + 16;
    hc.max_peers = conns + 16;
    let (hub, mut events) = node(vec![tcp(&kh)], hc);
    let haddr = hub
        .listen(&"tcp://127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let hp = hub.local_peer_id();
    let drain = tokio::spawn(async move {
        let mut data = 0usize;
        while let Some(e) = events.recv().await {
            if matches!(e, CoordinatorEvent::DataReceived { .. }) {
                data += 1;
            }
        }
        data
    });
    let started = Instant::now();
    let clients: Vec<TransportCoordinator> = stream::iter(0..conns)
        .map(|i| {
            let haddr = haddr.clone();
            async move {
                let k = Keypair::generate();
                let (c, _) = node(vec![tcp(&k)], config());
                c.connect_to_peer(hp, vec![haddr]).await.expect("connect");
                let receipt = c
                    .send_with_receipt(hp, msg(i as u32), Priority::Bulk)
                    .await
                    .expect("accepted");
                let outcome = tokio::time::timeout(GUARD, receipt).await.expect("receipt");
                assert!(outcome.is_ok(), "client {i}: {outcome:?}");
                c
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let open = hub.connection_stats().peers.len();
    println!(
        "hub: {conns} concurrent authenticated clients, each message receipted, in {:?}; \
         hub has {open} peers; {}",
        started.elapsed(),
        snapshot()
    );
    assert_eq!(open, conns);
    let (took, tries) = legitimate_client(hp, &haddr).await;
    println!("hub: legitimate client served after {took:?} ({tries} tries) with {conns} open");
    for c in &clients {
        c.shutdown(Duration::from_secs(5)).await;
    }
    drop(clients);
    hub.shutdown(Duration::from_secs(5)).await;
    drop(hub);
    let data = drain.await.unwrap();
    assert_eq!(
        data,
        conns + 1,
        "one message per client and the legitimate one"
    );
    println!("after: {}", snapshot());
}
