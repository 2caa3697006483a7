//! [`TransportCoordinator`]: the public API. Cheap to clone (one `Arc` inside).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bitcraps_transport_core::{Bytes, PeerId, Transport, TransportAddress};
use futures::future::join_all;
use tokio::sync::oneshot;

use crate::error::{CoordinatorError, Result};
use crate::event::EventStream;
use crate::machine::{LocalReason, MessageId};
use crate::peer::{Ctl, PeerSender, Receipt};
use crate::policy::Priority;
use crate::shared::{lock, ListenerEntry};
use crate::stats::{ConnectionStats, CoordinatorStats, PeerStats};
use crate::{CoordinatorBuilder, CoordinatorConfig, Shared};

/// What [`TransportCoordinator::shutdown`] achieved.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// True if every accepted message was acknowledged before the deadline.
    pub flushed: bool,
    /// Peers that were connected.
    pub peers: usize,
    /// Messages still unfinished at the deadline: each is reported in an `Undelivered` event
    /// (and to its receipt) as the sessions end.
    pub unfinished: usize,
    /// Connections whose final close did not complete cleanly (the goodbye was not
    /// acknowledged by the remote in time, or the connection failed), with the transport's
    /// error.
    pub unclean: Vec<(TransportAddress, bitcraps_transport_core::Error)>,
}

/// Peers, routes, failover, breakers, health checks, broadcast, events and stats over any
/// set of transports. See the crate docs.
#[derive(Debug, Clone)]
pub struct TransportCoordinator {
    pub(crate) shared: Arc<Shared>,
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
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use bitcraps_coordinator::{CoordinatorEvent, Priority, TransportCoordinator};
    /// # let net = bitcraps_transport_mem::MemoryNetwork::new();
    /// # let node = || {
    /// #     let key = bitcraps_transport_core::Keypair::generate();
    /// #     let mem = bitcraps_transport_mem::MemoryTransport::new(&net, key);
    /// #     TransportCoordinator::builder().transport(std::sync::Arc::new(mem)).build()
    /// # };
    /// # let (table, player) = (node()?, node()?);
    /// # let addr = table.listen(&"memory://0".parse()?).await?;
    /// let mut events = table.events().expect("the first call takes the stream");
    /// assert!(table.events().is_none());
    /// player.connect_to_peer(table.local_peer_id(), vec![addr]).await?;
    /// player.send_to_peer(table.local_peer_id(), "bet 5 on 7".into(), Priority::Interactive).await?;
    /// while let Some(event) = events.recv().await {
    ///     if let CoordinatorEvent::DataReceived { peer, data } = event {
    ///         assert_eq!((peer, &data[..]), (player.local_peer_id(), &b"bet 5 on 7"[..]));
    ///         break;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
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
        let span = tracing::info_span!(
            "listener",
            address = %bound,
            transport = %self.shared.transports[transport].kind(),
        );
        let task = tokio::spawn(tracing::Instrument::instrument(
            crate::listener::accept_loop(shared, listener, transport, id, stop_rx),
            span,
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

    /// The counters of every listener opened (the newest 64), closed ones included with
    /// their final counts.
    pub fn listener_stats(
        &self,
    ) -> Vec<(TransportAddress, bitcraps_transport_core::ListenerStats)> {
        lock(&self.shared.listener_stats)
            .iter()
            .map(|(_, a, s)| (a.clone(), *s))
            .collect()
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
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use bitcraps_coordinator::{CoordinatorEvent, Priority, TransportCoordinator};
    /// # let net = bitcraps_transport_mem::MemoryNetwork::new();
    /// # let node = || {
    /// #     let key = bitcraps_transport_core::Keypair::generate();
    /// #     let mem = bitcraps_transport_mem::MemoryTransport::new(&net, key);
    /// #     TransportCoordinator::builder().transport(std::sync::Arc::new(mem)).build()
    /// # };
    /// # let (table, player) = (node()?, node()?);
    /// # let addr = table.listen(&"memory://0".parse()?).await?;
    /// // `addr` is the table's bound address; the dial fails with a typed error unless the
    /// // remote proves this PeerId in the handshake.
    /// player.connect_to_peer(table.local_peer_id(), vec![addr]).await?;
    /// assert_eq!(player.stats().per_peer.len(), 1);
    /// # Ok(()) }
    /// ```
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

    /// Sends `data` to `peer` at `priority` and returns the message's id (see
    /// [`PeerSender::send`]): from then on it is delivered once, or reported undelivered.
    ///
    /// ```no_run
    /// # async fn demo(c: bitcraps_coordinator::TransportCoordinator, peer: bitcraps_transport_core::PeerId) -> Result<(), Box<dyn std::error::Error>> {
    /// use bitcraps_coordinator::Priority;
    /// let id = c.send_to_peer(peer, "bet 5 on 7".into(), Priority::Interactive).await?;
    /// println!("queued as {id}");
    /// # Ok(()) }
    /// ```
    pub async fn send_to_peer(
        &self,
        peer: PeerId,
        data: Bytes,
        priority: Priority,
    ) -> Result<MessageId> {
        self.peer_sender(peer)?.send(data, priority).await
    }

    /// Sends `data` to `peer` and returns a [`Receipt`] to await: `Ok` once the remote
    /// application has it, or the typed reason it never will.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use bitcraps_coordinator::{CoordinatorEvent, Priority, TransportCoordinator};
    /// # let net = bitcraps_transport_mem::MemoryNetwork::new();
    /// # let node = || {
    /// #     let key = bitcraps_transport_core::Keypair::generate();
    /// #     let mem = bitcraps_transport_mem::MemoryTransport::new(&net, key);
    /// #     TransportCoordinator::builder().transport(std::sync::Arc::new(mem)).build()
    /// # };
    /// # let (table, player) = (node()?, node()?);
    /// # let addr = table.listen(&"memory://0".parse()?).await?;
    /// # player.connect_to_peer(table.local_peer_id(), vec![addr]).await?;
    /// let receipt = player
    ///     .send_with_receipt(table.local_peer_id(), "roll 4 3".into(), Priority::Interactive)
    ///     .await?;
    /// match receipt.await {
    ///     Ok(()) => println!("the table has it"),
    ///     Err(reason) => println!("not delivered: {reason}"),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn send_with_receipt(
        &self,
        peer: PeerId,
        data: Bytes,
        priority: Priority,
    ) -> Result<Receipt> {
        self.peer_sender(peer)?
            .send_with_receipt(data, priority)
            .await
    }

    /// Attaches a connection made elsewhere (a discovery service, a BLE mesh node) to its
    /// peer as a route: it is admitted against the coordinator's limits like an accepted one
    /// and carries traffic when it is the best connection the peer has.
    pub async fn attach_connection(&self, conn: bitcraps_transport_core::Connection) -> Result<()> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(CoordinatorError::ShutDown);
        }
        let transport = self
            .shared
            .transport_for(conn.remote_addr())
            .ok_or_else(|| CoordinatorError::NoTransport(conn.remote_addr().clone()))?;
        crate::listener::admit_and_attach(&self.shared, conn, transport, None)
            .await
            .map_err(|e| e.1)
    }

    /// Sends `data` to every known peer concurrently (interactive priority): one result per
    /// peer, each with the message's id for that peer. `data` is shared, not copied, between
    /// the peers' queues.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use bitcraps_coordinator::{CoordinatorEvent, Priority, TransportCoordinator};
    /// # let net = bitcraps_transport_mem::MemoryNetwork::new();
    /// # let node = || {
    /// #     let key = bitcraps_transport_core::Keypair::generate();
    /// #     let mem = bitcraps_transport_mem::MemoryTransport::new(&net, key);
    /// #     TransportCoordinator::builder().transport(std::sync::Arc::new(mem)).build()
    /// # };
    /// # let (table, player) = (node()?, node()?);
    /// # let addr = table.listen(&"memory://0".parse()?).await?;
    /// # player.connect_to_peer(table.local_peer_id(), vec![addr]).await?;
    /// let results = player.broadcast("round 3: come-out roll".into()).await;
    /// assert_eq!(results.len(), 1); // the table is the one peer the player knows
    /// for (peer, result) in results {
    ///     let id = result?; // accepted: delivered once, or reported undelivered with this id
    ///     println!("{peer}: queued as {id}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn broadcast(&self, data: Bytes) -> Vec<(PeerId, Result<MessageId>)> {
        self.broadcast_with(data, Priority::Interactive).await
    }

    /// [`broadcast`](Self::broadcast) at a chosen priority.
    pub async fn broadcast_with(
        &self,
        data: Bytes,
        priority: Priority,
    ) -> Vec<(PeerId, Result<MessageId>)> {
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
    pub async fn send_batch(&self, batch: Vec<(PeerId, Bytes)>) -> Vec<Result<MessageId>> {
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
        let mut results: Vec<Option<Result<MessageId>>> = (0..n).map(|_| None).collect();
        for (i, r) in join_all(groups).await.into_iter().flatten() {
            results[i] = Some(r);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(CoordinatorError::ShutDown)))
            .collect()
    }

    /// Ends `peer`'s session now: each connection gets a goodbye and is closed; every message
    /// not yet acknowledged is reported in an `Undelivered` event.
    pub async fn disconnect(&self, peer: PeerId) -> Result<()> {
        let handle = self
            .shared
            .peer(&peer)
            .ok_or(CoordinatorError::NotConnected(peer))?;
        handle
            .ctl
            .send(Ctl::Disconnect {
                reason: LocalReason::DisconnectRequested,
                done: None,
            })
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

    /// Traffic counters per transport and per peer, and message totals since the start.
    pub fn stats(&self) -> CoordinatorStats {
        use std::sync::atomic::Ordering::Relaxed;
        // The ended sessions are read before the live peers, and a session is absorbed only
        // after it left the table: one ending in between is counted at most once, so the
        // totals never go down (it is counted by the next call).
        let ended = self.shared.ended.totals();
        let handles = self.shared.handles();
        let per_peer: Vec<PeerStats> = handles
            .iter()
            .map(|h| {
                let mut traffic = h.counters.snapshot();
                traffic.connection_count = h.view().connections.len();
                let t = h.counters.totals();
                let srtt = h.counters.srtt_micros.load(Relaxed);
                PeerStats {
                    peer: h.peer,
                    traffic,
                    delivered: t.delivered,
                    undelivered: t.undelivered,
                    duplicates: t.duplicates,
                    route_changes: t.route_changes,
                    breaker_trips: t.breaker_trips,
                    breakers_open: h.counters.breakers_open.load(Relaxed),
                    srtt: (srtt > 0).then(|| Duration::from_micros(srtt)),
                }
            })
            .collect();
        let totals = handles
            .iter()
            .fold(ended, |acc, h| acc + h.counters.totals());
        CoordinatorStats {
            per_transport: self
                .shared
                .transports
                .iter()
                .zip(&self.shared.transport_counters)
                .map(|(t, c)| (t.kind(), c.snapshot()))
                .collect(),
            per_peer,
            totals,
        }
    }

    /// Graceful shutdown: stops listening, waits (until `deadline` from now) for every accepted
    /// message to be acknowledged, then ends every session with a goodbye. Messages still
    /// unfinished then are reported undelivered (events and receipts).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use bitcraps_coordinator::{CoordinatorEvent, Priority, TransportCoordinator};
    /// # let net = bitcraps_transport_mem::MemoryNetwork::new();
    /// # let node = || {
    /// #     let key = bitcraps_transport_core::Keypair::generate();
    /// #     let mem = bitcraps_transport_mem::MemoryTransport::new(&net, key);
    /// #     TransportCoordinator::builder().transport(std::sync::Arc::new(mem)).build()
    /// # };
    /// # let (table, player) = (node()?, node()?);
    /// # let addr = table.listen(&"memory://0".parse()?).await?;
    /// # player.connect_to_peer(table.local_peer_id(), vec![addr]).await?;
    /// let receipt = player
    ///     .send_with_receipt(table.local_peer_id(), "cash out".into(), Priority::Interactive)
    ///     .await?;
    /// let report = player.shutdown(std::time::Duration::from_secs(5)).await;
    /// // Everything accepted was acknowledged before the goodbye.
    /// assert!(report.flushed);
    /// assert_eq!(report.unfinished, 0);
    /// assert!(receipt.await.is_ok());
    /// # Ok(()) }
    /// ```
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
        let max = self.shared.config.max_unacked;
        let unfinished = handles
            .iter()
            .map(|h| max.saturating_sub(h.window.available_permits()))
            .sum();
        let mut waiting = Vec::new();
        for h in &handles {
            // The actor always drains its commands, so this does not wait long.
            let (done, rx) = oneshot::channel();
            let cmd = Ctl::Disconnect {
                reason: LocalReason::Shutdown,
                done: Some(done),
            };
            if h.ctl.send(cmd).await.is_ok() {
                waiting.push(rx);
            }
        }
        let mut unclean = Vec::new();
        for rx in waiting {
            unclean.extend(rx.await.unwrap_or_default());
        }
        ShutdownReport {
            flushed,
            peers: handles.len(),
            unfinished,
            unclean,
        }
    }
}
