//! `perf --to`: the same two phases against a remote `bitcraps-node listen`, through the
//! coordinator as `send` uses it (the listener runs one). Throughput counts a message when the
//! remote application has it: the run ends with a receipted message, and the coordinator
//! delivers in order, so its receipt means every earlier message arrived too. Round trips need
//! the remote to run `listen --echo`; without an echo they are not measured (and the
//! throughput phase is echoed too when it runs, loading both directions).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bitcraps_coordinator::{CoordinatorConfig, CoordinatorEvent, Priority};
use bitcraps_transport_core::{
    ConnectionLimits, Keypair, PeerId, SharedLimiter, Ticket, TransportAddress,
};
use bytes::Bytes;
use tokio::sync::Notify;

use super::{Limit, Measured};
use crate::backends::Backends;
use crate::node::Node;
use crate::tls::TlsArgs;

/// How long the echo of the throughput phase may pause before it counts as finished (or, if
/// nothing came back at all, as "the remote does not echo").
const ECHO_QUIET: Duration = Duration::from_secs(2);
/// How long one round trip may take before the run fails.
const ROUND_TIMEOUT: Duration = Duration::from_secs(5);

/// The peer and its routes from `--to` (a ticket, or an address with `--peer`).
fn target(to: &str, peer: Option<PeerId>) -> Result<(PeerId, Vec<TransportAddress>)> {
    if let Ok(ticket) = to.parse::<Ticket>() {
        return Ok((ticket.peer(), ticket.routes().to_vec()));
    }
    let addr: TransportAddress = to
        .parse()
        .with_context(|| format!("--to {to}: neither a ticket nor an address"))?;
    let peer = peer.context("--to ADDR needs --peer ID (or give the listener's ticket)")?;
    Ok((peer, vec![addr]))
}

/// Messages echoed back so far, and a signal for each.
#[derive(Default)]
struct Echoes {
    count: AtomicU64,
    notify: Notify,
}

impl Echoes {
    /// Waits until at least `n` echoes arrived; false after `wait` without a new one.
    async fn reach(&self, n: u64, wait: Duration) -> bool {
        loop {
            let notified = self.notify.notified();
            if self.count.load(Ordering::Acquire) >= n {
                return true;
            }
            if tokio::time::timeout(wait, notified).await.is_err() {
                return self.count.load(Ordering::Acquire) >= n;
            }
        }
    }
}

/// Runs both phases against the remote; returns the figures and the first route's scheme.
pub(super) async fn run(
    to: &str,
    peer: Option<PeerId>,
    size: usize,
    limit: Limit,
    rounds: usize,
) -> Result<(Measured, String)> {
    let (peer, routes) = target(to, peer)?;
    let scheme = routes
        .first()
        .map(|r| r.scheme().to_string())
        .unwrap_or_default();
    let backends = Backends::new(
        Keypair::generate(),
        crate::channel_config(10_000),
        SharedLimiter::new(ConnectionLimits::default()),
        &TlsArgs::default(),
    )?;
    let node = Node::build(&backends, &routes, CoordinatorConfig::default())?;
    let coordinator = node.coordinator.clone();
    let mut events = coordinator.events().context("the event stream")?;
    let echoes = Arc::new(Echoes::default());
    let seen = echoes.clone();
    let pump = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let CoordinatorEvent::DataReceived { peer: from, .. } = event {
                if from == peer {
                    seen.count.fetch_add(1, Ordering::AcqRel);
                    seen.notify.notify_waiters();
                }
            }
        }
    });
    let result = measure(&coordinator, peer, routes, size, limit, rounds, &echoes).await;
    coordinator.shutdown(Duration::from_secs(2)).await;
    pump.abort();
    Ok((result?, scheme))
}

async fn measure(
    coordinator: &bitcraps_coordinator::TransportCoordinator,
    peer: PeerId,
    routes: Vec<TransportAddress>,
    size: usize,
    limit: Limit,
    rounds: usize,
    echoes: &Echoes,
) -> Result<Measured> {
    coordinator.connect_to_peer(peer, routes).await?;
    let sender = coordinator.peer_sender(peer)?;
    let payload = Bytes::from(vec![0xA5u8; size]);
    let total = match limit {
        Limit::Bytes(b) => Some(b.div_ceil(size as u64).max(1)),
        Limit::Time(_) => None,
    };
    let start = Instant::now();
    let mut sent = 0u64;
    loop {
        let last = match (limit, total) {
            (_, Some(t)) => sent + 1 >= t,
            (Limit::Time(d), None) => start.elapsed() >= d,
            (Limit::Bytes(_), None) => true,
        };
        if last {
            break;
        }
        sender.send(payload.clone(), Priority::Bulk).await?;
        sent += 1;
    }
    let receipt = sender
        .send_with_receipt(payload.clone(), Priority::Bulk)
        .await?;
    sent += 1;
    if let Err(reason) = receipt.await {
        bail!("the last throughput message was not delivered: {reason:?}");
    }
    let elapsed = start.elapsed();
    // Let the echo of the throughput phase (if any) drain before timing round trips.
    let echoing = echoes.reach(sent, ECHO_QUIET).await || echoes.count.load(Ordering::Acquire) > 0;
    let mut rtt = Vec::new();
    if echoing {
        let mut expected = echoes.count.load(Ordering::Acquire);
        for i in 0..rounds {
            let begun = Instant::now();
            sender.send(payload.clone(), Priority::Interactive).await?;
            expected += 1;
            if !echoes.reach(expected, ROUND_TIMEOUT).await {
                bail!("round trip {i}: no echo within {ROUND_TIMEOUT:?}");
            }
            rtt.push(begun.elapsed().as_secs_f64() * 1e6);
        }
    }
    Ok(Measured {
        sent,
        delivered: sent,
        elapsed,
        rtt: echoing.then_some(rtt),
        remote: Some(peer.to_string()),
    })
}
