//! The actor of one peer: owns its routes, connections, send queues, unacknowledged window
//! and timers, and is the only writer to the peer's connections.
//!
//! Its loop waits on: commands (bounded queue), new messages from the API, the active
//! connection's send queue having room for the frame in hand, and the next timer (health
//! checks, dials of preferred routes, reconnect grace, idle). It never waits on anything
//! else, so it always drains its command queue.
//!
//! What the active connection gets next, in order: an owed `PONG`, pending `ACK`s, a due
//! `PING`, messages to resend after a route change (by id), then new messages (interactive
//! before bulk, FIFO within each).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bitcraps_transport_core::{Bytes, ConnectionSender, PeerId};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;

use super::delivery::Delivery;
use super::links::{Link, Route};
use super::{byte_cost, Control, Ctl, Outbound, PeerHandle};
use crate::envelope::{Encoder, MAX_ACK_IDS, TYPE_PONG};
use crate::error::{CoordinatorError, Result};
use crate::event::{CoordinatorEvent, DisconnectReason};
use crate::policy::{Priority, PriorityQueue};
use crate::stats::{Counters, PeerConnections};
use crate::Shared;

/// Frames written with `try_send` per loop turn before commands are looked at again.
const FAST_PATH: usize = 64;

/// The frame in hand for the active connection.
pub(super) struct Pending {
    pub(super) link: u64,
    pub(super) frame: Bytes,
    /// For `DATA`: id, priority and payload, to keep until acknowledged.
    pub(super) data: Option<(u64, Priority, Bytes)>,
}

pub(super) struct Actor {
    pub(super) shared: Arc<Shared>,
    pub(super) handle: Arc<PeerHandle>,
    pub(super) peer: PeerId,
    pub(super) ctl_tx: mpsc::Sender<Ctl>,
    pub(super) inbox_tx: mpsc::Sender<(u64, Bytes)>,
    pub(super) routes: Vec<Route>,
    pub(super) links: Vec<Link>,
    pub(super) active: Option<u64>,
    /// The remote address traffic last used (kept after that connection is lost).
    pub(super) last_route: Option<bitcraps_transport_core::TransportAddress>,
    pub(super) announced: bool,
    pub(super) queue: PriorityQueue<(u64, Bytes)>,
    pub(super) resend: VecDeque<(u64, Priority, Bytes)>,
    pub(super) unacked: BTreeMap<u64, (Priority, Bytes)>,
    pub(super) acks: VecDeque<u64>,
    pub(super) current: Option<Pending>,
    pub(super) enc: Encoder,
    pub(super) next_id: u64,
    pub(super) nonce: u64,
    pub(super) connect_waiters: Vec<oneshot::Sender<Result<()>>>,
    pub(super) flush_waiters: Vec<oneshot::Sender<()>>,
    /// The failover pass in progress.
    pub(super) pass: Option<super::routes::Pass>,
    /// No connection and nothing to dial: give up at this time unless the peer comes back.
    pub(super) grace: Option<(Instant, DisconnectReason)>,
    pub(super) idle: (u64, Instant),
    pub(super) done: Option<DisconnectReason>,
}

/// Creates the peer's handle and starts its actor and delivery tasks.
pub(crate) fn spawn_peer(shared: &Arc<Shared>, peer: PeerId) -> Arc<PeerHandle> {
    let config = &shared.config;
    let (ctl_tx, ctl_rx) = mpsc::channel(config.control_queue);
    let (data_tx, data_rx) = mpsc::channel(config.max_unacked);
    let (inbox_tx, inbox_rx) = mpsc::channel(config.max_unacked.saturating_mul(2));
    let handle = Arc::new(PeerHandle {
        peer,
        ctl: ctl_tx.clone(),
        data: data_tx,
        window: Semaphore::new(config.max_unacked),
        window_bytes: Semaphore::new(config.max_unacked_bytes),
        counters: Counters::default(),
        view: std::sync::Mutex::new(PeerConnections {
            peer,
            active: None,
            connections: Vec::new(),
            routes: Vec::new(),
        }),
    });
    let delivery = Delivery {
        peer,
        inbox: inbox_rx,
        ctl: ctl_tx.clone(),
        events: shared.events.clone(),
        handle: handle.clone(),
    };
    let s = shared.clone();
    tokio::spawn(async move { delivery.run(&s.config).await });
    let now = Instant::now();
    let actor = Actor {
        shared: shared.clone(),
        handle: handle.clone(),
        peer,
        ctl_tx,
        inbox_tx,
        routes: Vec::new(),
        links: Vec::new(),
        active: None,
        last_route: None,
        announced: false,
        queue: PriorityQueue::new(config.max_unacked, config.max_unacked),
        resend: VecDeque::new(),
        unacked: BTreeMap::new(),
        acks: VecDeque::new(),
        current: None,
        enc: Encoder::default(),
        next_id: 1,
        nonce: 1,
        connect_waiters: Vec::new(),
        flush_waiters: Vec::new(),
        pass: None,
        grace: None,
        idle: (0, now),
        done: None,
    };
    tokio::spawn(actor.run(ctl_rx, data_rx));
    handle
}

impl Actor {
    async fn run(mut self, mut ctl_rx: mpsc::Receiver<Ctl>, mut data_rx: mpsc::Receiver<Outbound>) {
        while self.done.is_none() {
            self.fast_path();
            let sender = self.current_sender();
            let deadline = self.next_deadline();
            tokio::select! {
                biased;
                cmd = ctl_rx.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    None => self.done = Some(DisconnectReason::Local("dropped".into())),
                },
                Some(out) = data_rx.recv() => {
                    self.enqueue(out);
                    // Take whatever else is waiting, so priorities apply to the whole batch.
                    while let Ok(out) = data_rx.try_recv() {
                        self.enqueue(out);
                    }
                }
                sent = send_frame(sender), if self.current.is_some() => self.on_sent(sent),
                _ = tokio::time::sleep_until(deadline) => self.on_timer(Instant::now()),
            }
        }
        self.finish(ctl_rx, data_rx);
    }

    fn enqueue(&mut self, out: Outbound) {
        let id = self.next_id;
        self.next_id += 1;
        if let Err((id, payload)) = self.queue.push(out.priority, (id, out.payload)) {
            // Unreachable while the window bounds the queue; never lose the message silently.
            self.resend.push_back((id, out.priority, payload));
        }
    }

    fn current_sender(&self) -> Option<(ConnectionSender, Bytes)> {
        let pending = self.current.as_ref()?;
        let link = self.links.iter().find(|l| l.id == pending.link)?;
        Some((link.sender.clone(), pending.frame.clone()))
    }

    /// Writes as many frames as the active connection's queue takes right now.
    fn fast_path(&mut self) {
        for _ in 0..FAST_PATH {
            if self.current.is_none() {
                self.current = self.next_frame();
            }
            let Some((sender, frame)) = self.current_sender() else {
                // The frame's link is gone: put data back for the next active link.
                if let Some(p) = self.current.take() {
                    if let Some(d) = p.data {
                        self.resend.push_front(d);
                    }
                }
                return;
            };
            match sender.try_send(frame) {
                Ok(true) => self.on_sent(Ok(())),
                Ok(false) => return,
                Err(e) => {
                    self.on_sent(Err(e));
                    return;
                }
            }
        }
    }

    /// Picks the next frame for the active link, by the order in the module docs.
    fn next_frame(&mut self) -> Option<Pending> {
        let link_id = self.active?;
        let link = self.links.iter_mut().find(|l| l.id == link_id)?;
        if let Some(nonce) = link.pong_due.take() {
            let frame = self.enc.probe(TYPE_PONG, nonce);
            return Some(Pending {
                link: link_id,
                frame,
                data: None,
            });
        }
        if !self.acks.is_empty() {
            let frame = self.enc.ack(&mut self.acks);
            return Some(Pending {
                link: link_id,
                frame,
                data: None,
            });
        }
        if let Some(nonce) = link.ping_due.take() {
            let frame = self.enc.probe(crate::envelope::TYPE_PING, nonce);
            return Some(Pending {
                link: link_id,
                frame,
                data: None,
            });
        }
        let (id, priority, payload) = match self.resend.pop_front() {
            Some(d) => d,
            None => {
                let (priority, (id, payload)) = self.queue.pop()?;
                (id, priority, payload)
            }
        };
        let frame = self.enc.data(id, &payload);
        Some(Pending {
            link: link_id,
            frame,
            data: Some((id, priority, payload)),
        })
    }

    fn on_sent(&mut self, result: bitcraps_transport_core::Result<()>) {
        let Some(pending) = self.current.take() else {
            return;
        };
        match result {
            Ok(()) => {
                self.handle.counters.sent(pending.frame.len());
                if let Some(link) = self.links.iter().find(|l| l.id == pending.link) {
                    self.shared.transport_counters[link.transport].sent(pending.frame.len());
                }
                if let Some((id, priority, payload)) = pending.data {
                    self.unacked.insert(id, (priority, payload));
                }
            }
            Err(e) => {
                if let Some(d) = pending.data {
                    self.resend.push_front(d);
                }
                self.handle.counters.error();
                let end = super::LinkEnd::Closed(bitcraps_transport_core::CloseReason::Failed(
                    e.to_string(),
                ));
                self.on_link_ended(pending.link, end);
            }
        }
    }

    fn on_command(&mut self, cmd: Ctl) {
        let now = Instant::now();
        match cmd {
            Ctl::Connect { routes, reply } => self.on_connect(routes, reply, now),
            Ctl::Attach {
                conn,
                guard,
                transport,
                listener,
            } => self.attach(conn, guard, transport, None, listener, now),
            Ctl::Dialed { route, result } => self.on_dialed(route, result, now),
            Ctl::Received { link, control } => match control {
                Control::Ack(ids) => {
                    for id in ids.iter() {
                        self.on_ack(id);
                    }
                    self.check_flushed();
                }
                Control::Ping(nonce) => self.on_ping(link, nonce),
                Control::Pong(nonce) => self.on_pong(link, nonce, now),
            },
            Ctl::LinkEnded { link, end } => self.on_link_ended(link, end),
            Ctl::Acks(ids) => {
                self.acks.extend(ids);
                let cap = self
                    .shared
                    .config
                    .max_unacked
                    .saturating_mul(4)
                    .max(MAX_ACK_IDS);
                while self.acks.len() > cap {
                    self.acks.pop_front();
                }
            }
            Ctl::Flood => self.done = Some(DisconnectReason::RateLimitFlood),
            Ctl::Flush(reply) => {
                self.flush_waiters.push(reply);
                self.check_flushed();
            }
            Ctl::Disconnect(reason) => self.done = Some(reason),
            Ctl::ListenerClosed(listener) => self.on_listener_closed(listener, now),
        }
    }

    fn on_ack(&mut self, id: u64) {
        if let Some((_, payload)) = self.unacked.remove(&id) {
            self.release(&payload);
        } else if let Some(pos) = self.resend.iter().position(|(i, _, _)| *i == id) {
            // Acknowledged after a route change queued it for resending: no need to resend.
            if let Some((_, _, payload)) = self.resend.remove(pos) {
                self.release(&payload);
            }
        }
    }

    fn release(&self, payload: &Bytes) {
        self.handle.window.add_permits(1);
        let cost = byte_cost(payload.len(), self.shared.config.max_unacked_bytes);
        self.handle.window_bytes.add_permits(cost as usize);
    }

    pub(super) fn check_flushed(&mut self) {
        let data_in_hand = self.current.as_ref().is_some_and(|p| p.data.is_some());
        // Every accepted message holds a window permit from `send` until its ack, including
        // ones still waiting in the input queue that this actor has not taken yet: the window
        // being whole is what proves nothing is outstanding.
        let window_whole = self.handle.window.available_permits() >= self.shared.config.max_unacked;
        if self.queue.is_empty()
            && self.resend.is_empty()
            && self.unacked.is_empty()
            && !data_in_hand
            && window_whole
        {
            for w in self.flush_waiters.drain(..) {
                let _ = w.send(());
            }
        }
    }

    pub(super) fn emit(&self, event: CoordinatorEvent) {
        self.shared.events.emit(event);
    }

    fn finish(mut self, ctl_rx: mpsc::Receiver<Ctl>, data_rx: mpsc::Receiver<Outbound>) {
        let reason = self
            .done
            .take()
            .unwrap_or(DisconnectReason::Local("stopped".into()));
        self.handle.window.close();
        self.handle.window_bytes.close();
        drop(data_rx);
        let text = reason.to_string();
        for link in self.links.drain(..) {
            link.close(&self.shared, &text);
        }
        for route in self.routes.drain(..) {
            self.shared
                .keep_breaker(route.addr, (route.breaker, route.reported));
        }
        for w in self.connect_waiters.drain(..) {
            let _ = w.send(Err(CoordinatorError::AllRoutesFailed {
                peer: self.peer,
                last: text.clone(),
            }));
        }
        for w in self.flush_waiters.drain(..) {
            let _ = w.send(());
        }
        self.shared.remove_peer(&self.handle);
        if self.announced {
            self.emit(CoordinatorEvent::Disconnected {
                peer: self.peer,
                reason,
            });
        }
        drop(ctl_rx);
    }
}

async fn send_frame(
    sender: Option<(ConnectionSender, Bytes)>,
) -> bitcraps_transport_core::Result<()> {
    match sender {
        Some((s, frame)) => s.send(frame).await,
        None => std::future::pending().await,
    }
}
