//! The hostile-input acceptance test: raw TCP connections from many loopback sources send
//! garbage, a 4 GiB length prefix, or nothing at all. Each is disconnected with a typed error
//! reported by the listener, which keeps serving: a real `send` afterwards is delivered, and
//! the listener's memory stays bounded.

#![cfg(target_os = "linux")]

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::task::JoinSet;

use common::{of_kind, run_json, Listening, GUARD};

#[derive(Clone, Copy, Debug)]
enum Attack {
    /// A well-framed first message full of junk (an unknown cipher suite byte).
    Garbage,
    /// A length prefix of 4 GiB - 1.
    HugePrefix,
    /// Connects and says nothing.
    Silent,
}

impl Attack {
    fn all() -> [Self; 3] {
        [Self::Garbage, Self::HugePrefix, Self::Silent]
    }

    /// The error kinds the listener may report for it.
    fn expected_kind(self) -> &'static str {
        match self {
            Self::Garbage => "Handshake",
            Self::HugePrefix => "FrameTooLarge",
            Self::Silent => "Timeout",
        }
    }
}

/// Connects from `source`, attacks, and returns once the listener has dropped the connection
/// (a read returns 0 or an error). Panics if it is never dropped.
async fn attack(source: Ipv4Addr, target: SocketAddr, how: Attack) -> SocketAddr {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    let mut stream = socket.connect(target).await.unwrap();
    let local = stream.local_addr().unwrap();
    let written = match how {
        Attack::Garbage => {
            let mut frame = vec![0, 0, 0, 33];
            frame.extend((0..33u8).map(|i| 0xAB ^ i.wrapping_mul(37)));
            stream.write_all(&frame).await
        }
        Attack::HugePrefix => stream.write_all(&[0xFF; 4]).await,
        Attack::Silent => Ok(()),
    };
    // A write may already fail if the listener dropped us first: that is a disconnect too.
    if written.is_ok() {
        let mut buf = [0u8; 512];
        let dropped = tokio::time::timeout(GUARD, async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    // The listener answers nothing before the handshake's first message is
                    // valid, but tolerate bytes: what matters is that it hangs up.
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(
            dropped.is_ok(),
            "{how:?} from {local} was never disconnected"
        );
    }
    local
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn is_error_from(e: &Value, source: SocketAddr) -> bool {
    e["event"] == "error" && e["remote"] == format!("tcp://{source}").as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_connections_get_typed_errors_and_the_listener_keeps_serving() {
    let mut listener =
        Listening::start(&["tcp://127.0.0.1:0", "--handshake-timeout-ms", "500"]).await;
    let target = listener.socket_addr();
    let pid = listener.pid();
    let rss_before = vm_rss_kib(pid);

    // One of each, from its own source, each answered by a typed error event.
    for (i, how) in Attack::all().into_iter().enumerate() {
        let source = Ipv4Addr::new(127, 0, 0, 2 + i as u8);
        let local = attack(source, target, how).await;
        let event = listener
            .wait_for("the error event", |e| is_error_from(e, local))
            .await;
        assert_eq!(event["kind"], how.expected_kind(), "{how:?}: {event}");
        assert!(event["peer_id"].is_null(), "{event}");
        assert!(!event["error"].as_str().unwrap().is_empty());
    }

    // The wave: 200 more from other sources, 50 at a time.
    let sources: Vec<Ipv4Addr> = (1..=2u8)
        .flat_map(|b| (1..=100u8).map(move |c| Ipv4Addr::new(127, 0, b, c)))
        .collect();
    for (batch_no, batch) in sources.chunks(50).enumerate() {
        let mut tasks = JoinSet::new();
        for (i, &source) in batch.iter().enumerate() {
            let how = Attack::all()[(batch_no + i) % 3];
            tasks.spawn(attack(source, target, how));
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("attack task");
        }
    }

    // Still serving: a real send from the default source is delivered.
    let sent = run_json(&[
        "send",
        &listener.address,
        "--peer",
        &listener.peer_id,
        "--message",
        "hello",
    ])
    .await;
    assert!(sent.success, "send after the wave failed: {}", sent.stderr);
    let mut wave_errors = 0;
    let hello = listener
        .wait_for("the hello message", |e| {
            if e["event"] == "error" {
                let kind = e["kind"].as_str().unwrap_or_default();
                assert!(
                    ["Handshake", "FrameTooLarge", "Timeout", "Limit"].contains(&kind),
                    "unexpected error kind: {e}"
                );
                wave_errors += 1;
            }
            e["event"] == "message"
        })
        .await;
    assert_eq!(hello["text"], "hello");
    assert_eq!(hello["bytes"], 5);
    assert!(wave_errors > 0, "the wave produced no error events");

    let rss_after = vm_rss_kib(pid);
    let grown = rss_after.saturating_sub(rss_before);
    assert!(
        grown < 64 * 1024,
        "listener RSS grew by {grown} KiB ({rss_before} -> {rss_after} KiB)"
    );

    // The counters are exact even if some refusal reports were dropped under load: every
    // hostile attempt failed or was refused, and exactly one connection was accepted.
    let rest = listener.interrupt().await;
    let stats = of_kind(&rest, "listener_stats");
    assert_eq!(stats.len(), 1, "{rest:?}");
    let failed = stats[0]["failed_handshakes"].as_u64().unwrap();
    let refused = stats[0]["refused_by_limit"].as_u64().unwrap();
    assert_eq!(failed + refused, 203, "{}", stats[0]);
    assert_eq!(stats[0]["accepted"], 1, "{}", stats[0]);
}
