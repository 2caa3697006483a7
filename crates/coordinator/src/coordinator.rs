//! [`TransportCoordinator`]: the public API. Cheap to clone (one `Arc` inside).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bitcraps_transport_core::{Bytes, PeerId, Transport, TransportAddress};
use futures::future::join_all;
use tokio::sync::oneshot;

use crate::error::{CoordinatorError, Result};
use crate::event::{DisconnectReason, EventStream};
use crate::peer::{Ctl, PeerSender};
use crate::policy::Priority;
use crate::shared::{lock, ListenerEntry};
use crate::stats::{ConnectionStats, CoordinatorStats, PeerStats};
use crate::{CoordinatorBuilder, CoordinatorConfig, Shared};

/// What [`TransportCoordinator::shutdown`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// True if every queued message was acknowledged before the deadline.
    pub flushed: bool,
    /// Peers that were connected.
    pub peers: usize,
}

/// Peers, routes, failover, breakers, health checks, broadcast, events and stats over any
/// set of transports. See the crate docs.
#[derive(Debug, Clone)]
pub struct TransportCoordinator {
    shared: Arc<Shared>,
}

impl TransportCoordinator {
    /// A builder with the default settings.
    pub fn builder() -> CoordinatorBuilder {
        CoordinatorBuilder::default()
    }

    pub(crate) fn new(transports: Vec<Arc<dyn Transport>>, config: CoordinatorConfig) -> Self {
        Self {
            shared: Arc::new(Shared::new(transports, config)),
        }
    }

    /// This node's identity.
    pub fn local_peer_id(&self) -> PeerId {
        self.shared.transports[0].local_peer_id()
    }

    /// The settings in force.
    pub fn config(&self) -> &CoordinatorConfig {
        &self.shared.config
    }

    /// The largest payload `send_to_peer` accepts (the smallest transport maximum, less the
    /// envelope header).
    pub fn max_payload(&self) -> usize {
        self.shared.max_payload
    }

    /// The event stream. There is one: the first call takes it, later calls get `None`.
    /// Take it before connecting: data events wait for room in it (see [`crate::event`]).
    pub fn events(&self) -> Option<EventStream> {
        lock(&self.shared.events_rx).take()
    }

    /// Listens on `addr` with the first transport that supports it and accepts in the
    /// background. Returns the bound address (with the real port when 0 was asked for).
    pub async fn listen(&self, addr: &TransportAddress) -> Result<TransportAddress> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(CoordinatorError::ShutDown);
        }
        let transport = self
            .shared
            .transport_for(addr)
            .ok_or_else(|| CoordinatorError::NoTransport(addr.clone()))?;
        let listener = self.shared.transports[transport].listen(addr).await?;
        let bound = listener.local_addr().clone();
        let id = self.shared.next_link_id();
        let (stop_tx, stop_rx) = oneshot::channel();
        let shared = self.shared.clone();
        let task = tokio::spawn(crate::listener::accept_loop(
            shared, listener, transport, id, stop_rx,
        ));
        lock(&self.shared.listeners).insert(
            id,
            ListenerEntry {
                addr: bound.clone(),
                stop: Some(stop_tx),
                task: Some(task),
            },
        );
        Ok(bound)
    }

    /// Addresses listened on now.
    pub fn listen_addrs(&self) -> Vec<TransportAddress> {
        lock(&self.shared.listeners)
            .values()
            .map(|l| l.addr.clone())
            .collect()
    }

    /// Stops the listener bound to `addr` and closes every connection it accepted (their
    /// peers fail over to other connections).
    pub async fn close_listener(&self, addr: &TransportAddress) -> Result<()> {
        let entry = {
            let mut listeners = lock(&self.shared.listeners);
            let id = listeners
                .iter()
                .find(|(_, l)| &l.addr == addr)
                .map(|(id, _)| *id);
            id.and_then(|id| listeners.remove(&id).map(|l| (id, l)))
        };
        let Some((id, mut entry)) = entry else {
            return Err(CoordinatorError::NoTransport(addr.clone()));
        };
        if let Some(stop) = entry.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = entry.task.take() {
            // The address is free again once the accept loop has closed the listener.
            let _ = task.await;
        }
        for handle in self.shared.handles() {
            let _ = handle.ctl.send(Ctl::ListenerClosed(id)).await;
        }
        Ok(())
    }

    /// Connects to `peer` over `routes` (most preferred first): dials them in order until one
    /// proves `peer`'s identity. Later failures move traffic between these routes. Calling it
    /// again replaces the routes (breakers of routes kept are kept).
    pub async fn connect_to_peer(&self, peer: PeerId, routes: Vec<TransportAddress>) -> Result<()> {
        if routes.is_empty() {
            return Err(CoordinatorError::NoRoutes);
        }
        if let Some(addr) = routes
            .iter()
            .find(|a| self.shared.transport_for(a).is_none())
        {
            return Err(CoordinatorError::NoTransport(addr.clone()));
        }
        for _ in 0..2 {
            let handle = self.shared.get_or_spawn(peer)?;
            let (reply, rx) = oneshot::channel();
            let cmd = Ctl::Connect {
                routes: routes.clone(),
                reply,
            };
            if handle.ctl.send(cmd).await.is_err() {
                self.shared.remove_peer(&handle);
                continue;
            }
            return rx
                .await
                .unwrap_or(Err(CoordinatorError::Disconnected(peer)));
        }
        Err(CoordinatorError::Disconnected(peer))
    }

    /// A handle for sending to `peer` without a table lookup per message.
    pub fn peer_sender(&self, peer: PeerId) -> Result<PeerSender> {
        let handle = self
            .shared
            .peer(&peer)
            .ok_or(CoordinatorError::NotConnected(peer))?;
        Ok(PeerSender {
            handle,
            shared: self.shared.clone(),
        })
    }

    /// Sends `data` to `peer` at `priority` (see [`PeerSender::send`]).
    pub async fn send_to_peer(&self, peer: PeerId, data: Bytes, priority: Priority) -> Result<()> {
        self.peer_sender(peer)?.send(data, priority).await
    }

    /// Sends `data` to every known peer concurrently (interactive priority), best effort:
    /// one result per peer. `data` is shared, not copied, between the peers' queues.
    pub async fn broadcast(&self, data: Bytes) -> Vec<(PeerId, Result<()>)> {
        self.broadcast_with(data, Priority::Interactive).await
    }

    /// [`broadcast`](Self::broadcast) at a chosen priority.
    pub async fn broadcast_with(
        &self,
        data: Bytes,
        priority: Priority,
    ) -> Vec<(PeerId, Result<()>)> {
        let sends = self.shared.handles().into_iter().map(|handle| {
            let sender = PeerSender {
                handle,
                shared: self.shared.clone(),
            };
            let data = data.clone();
            async move { (sender.peer(), sender.send(data, priority).await) }
        });
        join_all(sends).await
    }

    /// Sends many messages (bulk priority): each peer's messages in the given order, the
    /// peers concurrently. One result per message, in the input order.
    pub async fn send_batch(&self, batch: Vec<(PeerId, Bytes)>) -> Vec<Result<()>> {
        let mut by_peer: HashMap<PeerId, Vec<(usize, Bytes)>> = HashMap::new();
        let n = batch.len();
        for (i, (peer, data)) in batch.into_iter().enumerate() {
            by_peer.entry(peer).or_default().push((i, data));
        }
        let groups = by_peer.into_iter().map(|(peer, items)| async move {
            let sender = self.peer_sender(peer);
            let mut out = Vec::with_capacity(items.len());
            for (i, data) in items {
                let r = match &sender {
                    Ok(s) => s.send(data, Priority::Bulk).await,
                    Err(e) => Err(e.clone()),
                };
                out.push((i, r));
            }
            out
        });
        let mut results: Vec<Option<Result<()>>> = (0..n).map(|_| None).collect();
        for (i, r) in join_all(groups).await.into_iter().flatten() {
            results[i] = Some(r);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(CoordinatorError::ShutDown)))
            .collect()
    }

    /// Disconnects `peer` now: its connections are closed gracefully (what they already
    /// queued is flushed), messages not yet handed to a connection are dropped.
    pub async fn disconnect(&self, peer: PeerId) -> Result<()> {
        let handle = self
            .shared
            .peer(&peer)
            .ok_or(CoordinatorError::NotConnected(peer))?;
        let reason = DisconnectReason::Local("disconnect requested".into());
        handle
            .ctl
            .send(Ctl::Disconnect(reason))
            .await
            .map_err(|_| CoordinatorError::NotConnected(peer))
    }

    /// Peers known now (connected, or failing over).
    pub fn peers(&self) -> Vec<PeerId> {
        self.shared.handles().iter().map(|h| h.peer).collect()
    }

    /// Connections per transport and per peer.
    pub fn connection_stats(&self) -> ConnectionStats {
        let by_transport: Vec<_> = self
            .shared
            .transports
            .iter()
            .zip(&self.shared.transport_counters)
            .map(|(t, c)| (t.kind(), c.snapshot().connection_count))
            .collect();
        ConnectionStats {
            total_connections: by_transport.iter().map(|(_, n)| n).sum(),
            connections_by_transport: by_transport,
            connection_limit: self.shared.config.limits.max_total_connections,
            peers: self.shared.handles().iter().map(|h| h.view()).collect(),
        }
    }

    /// Traffic counters per transport and per peer.
    pub fn stats(&self) -> CoordinatorStats {
        use std::sync::atomic::Ordering::Relaxed;
        CoordinatorStats {
            per_transport: self
                .shared
                .transports
                .iter()
                .zip(&self.shared.transport_counters)
                .map(|(t, c)| (t.kind(), c.snapshot()))
                .collect(),
            per_peer: self
                .shared
                .handles()
                .iter()
                .map(|h| {
                    let mut traffic = h.counters.snapshot();
                    traffic.connection_count = h.view().connections.len();
                    PeerStats {
                        peer: h.peer,
                        traffic,
                        delivered: h.counters.delivered.load(Relaxed),
                        rate_limited: h.counters.rate_limited.load(Relaxed),
                        duplicates: h.counters.duplicates.load(Relaxed),
                    }
                })
                .collect(),
        }
    }

    /// Graceful shutdown: stops listening, waits (until `deadline` from now) for every queued
    /// message to be acknowledged, then closes every connection.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        self.shared.closed.store(true, Ordering::Release);
        let entries: Vec<_> = lock(&self.shared.listeners)
            .drain()
            .map(|(_, l)| l)
            .collect();
        for mut l in entries {
            if let Some(stop) = l.stop.take() {
                let _ = stop.send(());
            }
            if let Some(task) = l.task.take() {
                let _ = task.await;
            }
        }
        let handles = self.shared.handles();
        let flush = join_all(handles.iter().map(|h| async move {
            let (tx, rx) = oneshot::channel();
            if h.ctl.send(Ctl::Flush(tx)).await.is_ok() {
                let _ = rx.await;
            }
        }));
        let flushed = tokio::time::timeout(deadline, flush).await.is_ok();
        for h in &handles {
            // The actor always drains its commands, so this does not wait long.
            let reason = DisconnectReason::Local("shutdown".into());
            let _ = h.ctl.send(Ctl::Disconnect(reason)).await;
        }
        ShutdownReport {
            flushed,
            peers: handles.len(),
        }
    }
}
