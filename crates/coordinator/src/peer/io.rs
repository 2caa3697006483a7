//! What the actor does for its machine: the peer's connections (their senders, a stash of
//! transport messages waiting for room, their readers as one stream), dials in flight, and
//! carrying out each [`Action`]: dial, close, events, receipts, window room.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcraps_transport_core::{
    AdmissionGuard, Bytes, Connection, ConnectionReceiver, Error as CoreError, TransportAddress,
    TransportKind,
};
use futures::future::BoxFuture;
use futures::stream::{BoxStream, FuturesUnordered, SelectAll};
use futures::StreamExt;
use tokio::sync::mpsc;

use super::actor::{read_failure, view};
use super::conns::{LinkIo, CLOSE_BUDGET};
use super::{Outcome, PeerHandle, SendRequest};
use crate::event::CoordinatorEvent;
use crate::machine::{
    Action, DialId, DisconnectReason, LinkFailure, LinkId, LinkInfo, MessageId, PeerMachine,
};
use crate::Shared;

/// The clock the machine is fed with (tokio's, so tests can pause it).
pub(crate) fn clock() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Probe floor on BLE links: one large message takes seconds of airtime there.
const BLE_PROBE_FLOOR: Duration = Duration::from_secs(3);

type ReadItem = bitcraps_transport_core::Result<Option<Bytes>>;
type DialResult = bitcraps_transport_core::Result<(Connection, AdmissionGuard)>;

/// The actor's I/O state around its machine.
pub(crate) struct Io {
    pub(crate) shared: Arc<Shared>,
    pub(crate) handle: Arc<PeerHandle>,
    pub(crate) machine: PeerMachine,
    pub(super) links: HashMap<LinkId, LinkIo>,
    pub(crate) readers: SelectAll<BoxStream<'static, (LinkId, ReadItem)>>,
    pub(crate) dials: FuturesUnordered<BoxFuture<'static, (DialId, usize, DialResult)>>,
    pub(crate) ready: FuturesUnordered<BoxFuture<'static, (LinkId, bool)>>,
    receipts: HashMap<MessageId, tokio::sync::oneshot::Sender<Outcome>>,
    undelivered: Vec<CoordinatorEvent>,
    pub(super) connected: bool,
    pub(crate) ended: Option<DisconnectReason>,
    /// Room in the event stream that data never takes, so other events are not crowded out.
    pub(crate) headroom: usize,
    /// The active connection and its RTT sample count last seen (for the RTT histogram).
    pub(super) rtt_seen: Option<(LinkId, u64)>,
    /// The closes started by the end of the session, each with its connection's address.
    pub(super) closing: Vec<tokio::task::JoinHandle<Option<(TransportAddress, CoreError)>>>,
    /// Who waits to hear how the final closes went.
    pub(crate) done: Vec<tokio::sync::oneshot::Sender<super::Unclean>>,
}

/// The reads of one connection as a stream, each read inside the connection's span.
fn reader(
    link: LinkId,
    receiver: ConnectionReceiver,
    span: tracing::Span,
) -> BoxStream<'static, (LinkId, ReadItem)> {
    use tracing::Instrument;
    futures::stream::unfold(Some(receiver), move |state| {
        let span = span.clone();
        async move {
            let mut r = state?;
            let item = r.recv().await;
            let more = matches!(item, Ok(Some(_)));
            Some(((link, item), more.then_some(r)))
        }
        .instrument(span)
    })
    .boxed()
}

impl Io {
    pub(crate) fn new(shared: Arc<Shared>, handle: Arc<PeerHandle>, machine: PeerMachine) -> Self {
        let headroom = (shared.config.event_queue / 4).max(1);
        Self {
            shared,
            handle,
            machine,
            links: HashMap::new(),
            readers: SelectAll::new(),
            dials: FuturesUnordered::new(),
            ready: FuturesUnordered::new(),
            receipts: HashMap::new(),
            undelivered: Vec::new(),
            connected: false,
            ended: None,
            headroom,
            rtt_seen: None,
            closing: Vec::new(),
            done: Vec::new(),
        }
    }

    /// True once after the first connection became active.
    pub(crate) fn take_connected(&mut self) -> bool {
        std::mem::take(&mut self.connected)
    }

    pub(crate) fn connect(&mut self, routes: Vec<TransportAddress>, now: Instant) {
        let routes = routes
            .into_iter()
            .map(|a| {
                let (b, reported) = self.shared.take_breaker(&a);
                (a, b, reported)
            })
            .collect();
        self.machine.connect(routes, now);
    }

    pub(crate) fn submit(&mut self, out: SendRequest, now: Instant) {
        let receipt = out.receipt.is_some();
        if let Some(tx) = out.receipt {
            self.receipts.insert(out.id, tx);
        }
        self.machine
            .submit(out.id, out.payload, out.priority, receipt, now);
    }

    fn add_link(
        &mut self,
        conn: Connection,
        guard: AdmissionGuard,
        transport: usize,
        listener: Option<u64>,
    ) -> (LinkId, LinkInfo) {
        let id = LinkId(self.shared.next_link_id());
        let caps = self.shared.transports[transport].capabilities();
        let info = LinkInfo {
            remote: conn.remote_addr().clone(),
            reliable: caps.reliable && caps.ordered,
            max_message: conn.sender().max_message_size(),
        };
        let kind = self.shared.transports[transport].kind();
        let span = tracing::debug_span!(
            "conn",
            link = id.0,
            transport = %kind,
            remote = %info.remote,
            inbound = listener.is_some(),
        );
        let (sender, receiver) = conn.split();
        self.readers.push(reader(id, receiver, span.clone()));
        self.shared.transport_counters[transport].connection_opened();
        self.links.insert(
            id,
            LinkIo {
                sender,
                stash: VecDeque::new(),
                transport,
                listener,
                _guard: guard,
                span: span.clone(),
            },
        );
        span.in_scope(|| tracing::debug!("connection attached"));
        (id, info)
    }

    fn probe_floor(&mut self, id: LinkId, transport: usize) {
        if self.shared.transports[transport].kind() == TransportKind::Ble {
            self.machine.set_min_probe(id, BLE_PROBE_FLOOR);
        }
    }

    pub(crate) fn attach(
        &mut self,
        conn: Connection,
        guard: AdmissionGuard,
        transport: usize,
        listener: Option<u64>,
        now: Instant,
    ) {
        let (id, info) = self.add_link(conn, guard, transport, listener);
        self.machine.attach(id, info, now);
        self.probe_floor(id, transport);
    }

    pub(crate) fn on_dialed(
        &mut self,
        dial: DialId,
        transport: usize,
        r: DialResult,
        now: Instant,
    ) {
        match r {
            Ok((conn, guard)) => {
                let (id, info) = self.add_link(conn, guard, transport, None);
                self.machine.dial_succeeded(dial, id, info, now);
                self.probe_floor(id, transport);
            }
            Err(e) => {
                self.handle.counters.error();
                self.shared.transport_counters[transport].error();
                self.shared.transport_counters[transport]
                    .dial_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.machine.dial_failed(dial, e, now);
            }
        }
    }

    pub(crate) fn on_read(&mut self, link: LinkId, item: ReadItem, now: Instant) {
        let close = self.links.get(&link).and_then(|l| l.sender.close_reason());
        match item {
            Ok(Some(frame)) => {
                self.handle.counters.received(frame.len());
                if let Some(l) = self.links.get(&link) {
                    self.shared.transport_counters[l.transport].received(frame.len());
                }
                self.machine.received(link, frame, now);
            }
            other => {
                if let Some(failure) = read_failure(other, close) {
                    self.machine.link_lost(link, failure, now);
                }
            }
        }
    }

    pub(crate) fn listener_closed(&mut self, listener: u64, now: Instant) {
        let gone: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, l)| l.listener == Some(listener))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            let reason = bitcraps_transport_core::CloseReason::Local("listener closed".into());
            self.machine.link_lost(id, LinkFailure::Closed(reason), now);
        }
    }

    /// Carries out actions, writes what the machine has to write, and hands the application
    /// what it can take, until nothing is left to do.
    pub(crate) fn drive(&mut self, now: Instant, events: &mpsc::Sender<CoordinatorEvent>) {
        loop {
            let mut busy = false;
            while let Some(action) = self.machine.poll_action() {
                busy = true;
                self.perform(action);
            }
            while let Some((link, frame)) = self.machine.poll_transmit(now) {
                busy = true;
                self.write(link, frame, now);
            }
            while self.machine.has_delivery(now) {
                match events.try_reserve_many(self.headroom + 1) {
                    Ok(mut permits) => {
                        busy = true;
                        if let Some(permit) = permits.next() {
                            self.deliver_one(permit, now);
                        }
                    }
                    Err(_) => break,
                }
            }
            if !busy {
                use std::sync::atomic::Ordering::Relaxed;
                let dups = self.machine.duplicates();
                self.handle.counters.duplicates.store(dups, Relaxed);
                self.observe_rtt();
                return;
            }
        }
    }

    pub(crate) fn deliver_one(&mut self, permit: mpsc::Permit<'_, CoordinatorEvent>, now: Instant) {
        if let Some(d) = self.machine.poll_delivery(now) {
            use std::sync::atomic::Ordering::Relaxed;
            self.handle.counters.delivered.fetch_add(1, Relaxed);
            permit.send(CoordinatorEvent::DataReceived {
                peer: self.handle.peer,
                data: d.payload,
            });
        }
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::Dial {
                dial,
                route: _,
                address,
            } => self.dial(dial, address),
            Action::Close {
                link,
                farewell,
                reason,
            } => self.close(link, farewell, reason),
            Action::Notify(notice) => {
                self.handle.set_view(view(self.handle.peer, &self.machine));
                self.notify(notice);
            }
            Action::Receipt { id, outcome } => {
                if let Some(tx) = self.receipts.remove(&id) {
                    let _ = tx.send(outcome);
                }
            }
            Action::Undelivered { ids, reason } => {
                use std::sync::atomic::Ordering::Relaxed;
                self.handle
                    .counters
                    .undelivered
                    .fetch_add(ids.len() as u64, Relaxed);
                tracing::debug!(count = ids.len(), %reason, "messages undelivered");
                self.undelivered.push(CoordinatorEvent::Undelivered {
                    peer: self.handle.peer,
                    ids,
                    reason,
                });
            }
            Action::Release { messages, bytes } => {
                self.handle.window.add_permits(messages);
                self.handle.window_bytes.add_permits(bytes);
            }
            Action::Ended(reason) => self.ended = Some(reason),
        }
    }

    /// True when nothing accepted is unfinished (including what `send` queued and this actor
    /// has not taken yet: every such message holds a window permit until it finishes).
    pub(crate) fn flushed(&self, data_rx: &mpsc::Receiver<SendRequest>) -> bool {
        self.machine.unfinished() == 0
            && data_rx.is_empty()
            && self.handle.window.available_permits() >= self.shared.config.max_unacked
    }

    /// Tears down after the session ended: closes what is left, keeps the breakers and the
    /// receive state for a later session, reports what was undelivered and the disconnect.
    pub(crate) async fn finish(mut self, reason: DisconnectReason) {
        self.handle.window.close();
        self.handle.window_bytes.close();
        for id in self.links.keys().copied().collect::<Vec<_>>() {
            self.close(id, Vec::new(), "session ended");
        }
        for (addr, breaker, reported) in self.machine.breakers() {
            self.shared.keep_breaker(addr, (breaker, reported));
        }
        let graceful = matches!(
            reason,
            DisconnectReason::Local(_) | DisconnectReason::RemoteClosed(_)
        );
        match self.machine.recv_snapshot() {
            Some(snap) if !graceful => self.shared.keep_tombstone(self.handle.peer, snap),
            _ => {}
        }
        for (_, tx) in self.receipts.drain() {
            drop(tx); // resolved as undelivered by the Receipt future
        }
        self.shared.remove_peer(&self.handle);
        // After it left the table, so `stats()` never counts it twice.
        self.shared.ended.absorb(self.handle.counters.totals());
        tracing::info!(%reason, "session ended");
        // What was undelivered is reported before the disconnect, so a consumer that stops at
        // the disconnect has heard it.
        for event in self.undelivered.drain(..) {
            self.shared.events.deliver_within(event, CLOSE_BUDGET).await;
        }
        if self.machine.was_connected() {
            self.shared.events.emit(CoordinatorEvent::Disconnected {
                peer: self.handle.peer,
                reason,
            });
        }
        if !self.done.is_empty() {
            let mut unclean = Vec::new();
            for task in self.closing.drain(..) {
                if let Ok(Some(failure)) = task.await {
                    unclean.push(failure);
                }
            }
            for done in self.done.drain(..) {
                let _ = done.send(unclean.clone());
            }
        }
    }
}
