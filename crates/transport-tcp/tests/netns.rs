//! Per-source limits from real, distinct hosts: two network namespaces, each joined to this
//! one by its own veth pair, dial a listener bound to this side's veth address. The test makes
//! the namespaces, veth pairs and addresses itself (a private `10.213.n.0/24` and
//! `10.214.n.0/24`, `n` from the process id) and removes them when it ends; where they cannot be
//! made (not root, no `ip`, no namespaces) it says so and passes as skipped. It targets only the
//! addresses it created.
//!
//! The dials run in child processes (`ip netns exec <ns> <this test binary> netns_child`), so
//! each comes from its namespace's own address: host A over its rate is told so
//! (`RemoteLimit(NewConnectionRate)`, the refusal frame), while host B is served.

use std::time::Duration;

use bitcraps_transport_core::{
    ConnectionLimits, Inbound, Keypair, LimitKind, Transport, TransportAddress,
};
use bitcraps_transport_tcp::{TcpConfig, TcpTransport};

const CHILD_ADDR: &str = "BITCRAPS_NETNS_DIAL";
const CHILD_PEER: &str = "BITCRAPS_NETNS_PEER";

#[path = "../../../tests/shared/netns.rs"]
mod netns;
use netns::{exec_in, ip, Namespaces};

/// Two namespaces, each with a veth pair to this one; removed on drop.
struct Hosts {
    ns: Namespaces,
    /// This side's address on host A's link (the listener binds it).
    listen_ip: String,
}

impl Hosts {
    fn create() -> Result<Self, String> {
        let pid = std::process::id();
        let n = pid % 250 + 1;
        let mut hosts = Self {
            ns: Namespaces::default(),
            listen_ip: format!("10.213.{n}.1"),
        };
        for (tag, net) in [("a", 213), ("b", 214)] {
            let ns = format!("bcx{tag}{pid}");
            let outer = format!("bcx{tag}{}r", pid % 1_000_000);
            let inner = format!("bcx{tag}{}n", pid % 1_000_000);
            hosts.ns.add(&ns)?;
            hosts.ns.veth(
                &ns,
                (&outer, &format!("10.{net}.{n}.1/24")),
                (&inner, &format!("10.{net}.{n}.2/24")),
            )?;
            if net == 214 {
                // Host B reaches the listener's address through its own link.
                let route = format!("10.213.{n}.0/24");
                ip(&[
                    "-n",
                    &ns,
                    "route",
                    "add",
                    &route,
                    "via",
                    &format!("10.214.{n}.1"),
                ])?;
            }
        }
        Ok(hosts)
    }
}

/// Runs one dial from namespace `ns` in a child process; returns its outcome line.
fn dial_from(ns: &str, addr: &TransportAddress, peer: &str) -> String {
    let out = exec_in(ns, "netns_child")
        .env(CHILD_ADDR, addr.to_string())
        .env(CHILD_PEER, peer)
        .output()
        .expect("child dial");
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| {
            l.split_once("OUTCOME: ")
                .map(|(_, outcome)| outcome.to_owned())
        })
        .unwrap_or_else(|| {
            format!(
                "no outcome: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// The child side: dials the address in the environment and prints how it went.
#[tokio::test]
async fn netns_child() {
    let (Ok(addr), Ok(peer)) = (std::env::var(CHILD_ADDR), std::env::var(CHILD_PEER)) else {
        return; // Not a child run.
    };
    let addr: TransportAddress = addr.parse().expect("address");
    let client = TcpTransport::with_config(
        Keypair::generate(),
        TcpConfig {
            limits: ConnectionLimits::unlimited(),
            ..TcpConfig::default()
        },
    );
    let dialed = tokio::time::timeout(
        Duration::from_secs(10),
        client.dial(&addr, Some(peer.parse().expect("peer id"))),
    )
    .await;
    match dialed {
        Ok(Ok(conn)) => {
            conn.send("hi".into()).await.expect("send");
            println!("OUTCOME: connected from {}", conn.info().local_addr);
        }
        Ok(Err(e)) => println!("OUTCOME: {e:?}"),
        Err(_) => println!("OUTCOME: hung"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_source_limits_from_real_distinct_hosts() {
    if std::env::var(CHILD_ADDR).is_ok() {
        return;
    }
    let hosts = match Hosts::create() {
        Ok(h) => h,
        Err(why) => {
            eprintln!("skipped: network namespaces cannot be made here ({why})");
            return;
        }
    };
    let server = TcpTransport::with_config(
        Keypair::generate(),
        TcpConfig {
            limits: ConnectionLimits {
                max_new_connections_per_minute: 1,
                ..ConnectionLimits::unlimited()
            },
            ..TcpConfig::default()
        },
    );
    let listen: TransportAddress = format!("tcp://{}:0", hosts.listen_ip).parse().unwrap();
    let mut listener = server
        .listen(&listen)
        .await
        .expect("listen on the veth address");
    let addr = listener.local_addr().clone();
    let peer = server.local_peer_id().to_string();
    let (a, b) = (hosts.ns.names[0].clone(), hosts.ns.names[1].clone());
    let accepting = tokio::spawn(async move {
        let mut events = Vec::new();
        while let Ok(Ok(event)) =
            tokio::time::timeout(Duration::from_secs(15), listener.accept()).await
        {
            match event {
                Inbound::Connection(c) => events.push(format!("accepted {}", c.info().remote_addr)),
                Inbound::Refused { remote, error } => {
                    events.push(format!("refused {remote}: {error}"))
                }
                _ => {}
            }
            if events.len() == 3 {
                break;
            }
        }
        events
    });
    let (addr2, peer2) = (addr.clone(), peer.clone());
    let outcomes = tokio::task::spawn_blocking(move || {
        [
            dial_from(&a, &addr2, &peer2),
            dial_from(&a, &addr2, &peer2),
            dial_from(&b, &addr2, &peer2),
        ]
    })
    .await
    .unwrap();
    let events = accepting.await.unwrap();
    println!("dials: {outcomes:#?}\nlistener: {events:#?}");
    assert!(
        outcomes[0].starts_with("connected"),
        "host A, first dial: {}",
        outcomes[0]
    );
    let limit = format!("{:?}", LimitKind::NewConnectionRate);
    assert!(
        outcomes[1].starts_with("RemoteLimit") && outcomes[1].contains(&limit),
        "host A over its rate: {}",
        outcomes[1]
    );
    assert!(
        outcomes[2].starts_with("connected"),
        "host B is not affected: {}",
        outcomes[2]
    );
    drop(hosts);
}
