//! The node on the coordinator: a [`TransportCoordinator`] built from the backends its
//! addresses need, and the [`Pump`] that prints the coordinator's typed events as they happen
//! and keeps the tally `send` decides its exit code with.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use bitcraps_coordinator::{
    CoordinatorConfig, CoordinatorError, CoordinatorEvent, EventStream, Priority,
    TransportCoordinator,
};
use bitcraps_transport_core::{PeerId, TransportAddress};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backends::Backends;
use crate::output::{Event, Output};

/// Ids listed in one `undelivered` event at most.
const IDS_SHOWN: usize = 16;

/// A coordinator over the node's backends.
#[derive(Debug)]
pub(crate) struct Node {
    /// The coordinator.
    pub(crate) coordinator: TransportCoordinator,
}

impl Node {
    /// A coordinator over the backends that serve `addrs`, with `config`.
    pub(crate) fn build(
        backends: &Backends,
        addrs: &[TransportAddress],
        config: CoordinatorConfig,
    ) -> Result<Self> {
        let mut builder = TransportCoordinator::builder().config(config);
        for transport in backends.serving(addrs)? {
            builder = builder.transport(transport);
        }
        let coordinator = builder.build().context("build the coordinator")?;
        Ok(Self { coordinator })
    }

    /// A coordinator over every backend, with `config` (routes not known in advance).
    pub(crate) fn build_all(backends: &Backends, config: CoordinatorConfig) -> Result<Self> {
        let mut builder = TransportCoordinator::builder().config(config);
        for transport in backends.transports() {
            builder = builder.transport(transport);
        }
        let coordinator = builder.build().context("build the coordinator")?;
        Ok(Self { coordinator })
    }

    /// Prints the coordinator's counters: per listener, per transport, and per peer from
    /// `peers` (taken before the peers were shut down).
    pub(crate) fn print_stats(&self, out: Output, peers: &[bitcraps_coordinator::PeerStats]) {
        for (addr, stats) in self.coordinator.listener_stats() {
            out.emit(&Event::listener_stats(&addr, stats));
        }
        for (kind, stats) in self.coordinator.stats().per_transport {
            out.emit(&Event::transport_stats(kind, stats));
        }
        for peer in peers {
            out.emit(&Event::peer_stats(peer));
        }
    }
}

/// What the printer counted, for `send`'s verdict.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Messages reported undelivered.
    pub(crate) undelivered: AtomicU64,
    /// Dials that failed (each reported with its typed error).
    pub(crate) dial_failures: AtomicU64,
    /// The last reason messages were not delivered.
    pub(crate) last_reason: Mutex<Option<String>>,
}

/// The task printing the coordinator's events (and echoing messages with `--echo`).
#[derive(Debug)]
pub(crate) struct Pump {
    task: JoinHandle<()>,
    live: watch::Receiver<usize>,
    stop: watch::Sender<bool>,
    /// What it counted.
    pub(crate) tally: Arc<Tally>,
}

/// What the pump's task owns.
struct Printer {
    coordinator: TransportCoordinator,
    tally: Arc<Tally>,
    out: Output,
    echo: bool,
    live: HashSet<PeerId>,
    live_tx: watch::Sender<usize>,
}

impl Pump {
    /// Starts printing `events` of `node`.
    pub(crate) fn start(node: &Node, mut events: EventStream, out: Output, echo: bool) -> Self {
        let (live_tx, live) = watch::channel(0);
        let (stop, mut stop_rx) = watch::channel(false);
        let tally = Arc::new(Tally::default());
        let mut printer = Printer {
            coordinator: node.coordinator.clone(),
            tally: tally.clone(),
            out,
            echo,
            live: HashSet::new(),
            live_tx,
        };
        let task = tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    biased;
                    event = events.recv() => event,
                    _ = stop_rx.wait_for(|s| *s) => break,
                };
                match event {
                    Some(event) => printer.handle(event, true).await,
                    None => return,
                }
            }
            // Stopping: print what is already queued, echo nothing more.
            while let Some(event) = events.try_recv() {
                printer.handle(event, false).await;
            }
        });
        Self {
            task,
            live,
            stop,
            tally,
        }
    }

    /// Waits (at most `guard`) until every peer that connected was reported disconnected,
    /// then prints what is queued and stops.
    pub(crate) async fn finish(mut self, guard: Duration) {
        if tokio::time::timeout(guard, self.live.wait_for(|n| *n == 0))
            .await
            .is_err()
        {
            tracing::warn!("peers still connected when the event printer stopped");
        }
        self.stop_now().await;
    }

    /// Prints what is queued and stops.
    pub(crate) async fn stop_now(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "event printer failed");
        }
    }
}

impl Printer {
    async fn handle(&mut self, event: CoordinatorEvent, live: bool) {
        let out = self.out;
        match event {
            CoordinatorEvent::Connected { peer, address } => {
                self.live.insert(peer);
                self.live_tx.send_replace(self.live.len());
                out.emit(&Event::connected(peer, &address));
            }
            CoordinatorEvent::Disconnected { peer, reason } => {
                self.live.remove(&peer);
                self.live_tx.send_replace(self.live.len());
                out.emit(&Event::Disconnected {
                    peer_id: peer.to_string(),
                    reason: reason.to_string(),
                });
            }
            CoordinatorEvent::DataReceived { peer, data } => {
                out.emit(&Event::message(peer, &data));
                if self.echo && live {
                    // Waits while the peer's window is full (at most the send timeout):
                    // backpressure from a peer that does not read, not buffering.
                    let sent = self
                        .coordinator
                        .send_to_peer(peer, data, Priority::Interactive)
                        .await;
                    match sent {
                        Ok(_)
                        | Err(CoordinatorError::NotConnected(_))
                        | Err(CoordinatorError::Disconnected(_))
                        | Err(CoordinatorError::ShutDown) => {}
                        Err(e) => out.emit(&Event::coordinator_error(Some(peer), None, &e)),
                    }
                }
            }
            CoordinatorEvent::RouteChanged { peer, from, to } => {
                out.emit(&Event::route_changed(peer, from.as_ref(), &to));
            }
            CoordinatorEvent::Breaker { peer, route, state } => {
                out.emit(&Event::breaker(peer, &route, state));
            }
            CoordinatorEvent::DialFailed { peer, route, error } => {
                self.tally.dial_failures.fetch_add(1, Ordering::Relaxed);
                if out.is_json() {
                    out.emit(&Event::error(Some(peer), Some(&route), &error));
                } else {
                    let (kind, detail) = crate::output::error_kind(&error);
                    let detail = detail.map(|d| format!(": {d}")).unwrap_or_default();
                    eprintln!("error: dial {route}: {error} ({kind}{detail})");
                }
            }
            CoordinatorEvent::InboundRefused { remote, error, .. } => {
                out.emit(&Event::coordinator_error(None, Some(&remote), &error));
            }
            CoordinatorEvent::LinkFailed {
                peer,
                address,
                failure,
            } => out.emit(&Event::LinkFailed {
                peer_id: peer.to_string(),
                address: address.to_string(),
                reason: failure.to_string(),
            }),
            CoordinatorEvent::Undelivered { peer, ids, reason } => {
                let reason = reason.to_string();
                self.tally
                    .undelivered
                    .fetch_add(ids.len() as u64, Ordering::Relaxed);
                *self
                    .tally
                    .last_reason
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(reason.clone());
                out.emit(&Event::Undelivered {
                    peer_id: peer.to_string(),
                    count: ids.len(),
                    ids: ids.iter().take(IDS_SHOWN).map(|id| id.0).collect(),
                    reason,
                });
            }
            CoordinatorEvent::Lagged { missed } => out.emit(&Event::Lagged { missed }),
            CoordinatorEvent::PeerDiscovered {
                peer,
                routes,
                source,
            } => out.emit(&Event::peer_discovered(peer, &routes, source)),
            CoordinatorEvent::PeerLost { peer, source } => {
                out.emit(&Event::peer_lost(peer, source));
            }
            other => tracing::debug!(?other, "unknown coordinator event ignored"),
        }
    }
}
