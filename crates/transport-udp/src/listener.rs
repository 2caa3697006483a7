//! The listener: one socket task per listening socket. It receives every datagram, feeds it to
//! the sans-IO [`Acceptor`], sends the answers, starts the task of each accepted connection, and
//! routes sealed datagrams to their connections without ever waiting on one (a full queue drops
//! the datagram and counts it).
//!
//! Memory: one read may return many datagrams (GRO, see [`Socket`]); each is copied out of the
//! socket's 64 KiB receive buffer into shared 16 KiB chunks and routed as zero-copy `Bytes`
//! while a connection keeps up; once a few are queued for one connection (8, plus the rest of
//! the socket read that began under that limit), further ones are copied again, so a stalled
//! connection pins at most a dozen chunks shared with other traffic. At most `session_queue`
//! datagrams wait per connection and `max_associations` associations exist.
//!
//! `close` stops accepting at once (new handshakes are ignored, those in progress abandoned).
//! Connections already accepted share the socket, so it stays open until the last of them has
//! ended; with none, `close` returns after the port is free.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rand::SeedableRng;
use tokio::sync::{mpsc, watch};

use bitcraps_transport_core::backend::{new_connection, ListenerCounters};
use bitcraps_transport_core::policy::{Direction, LimitRejection};
use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::{
    AdmissionGuard, ConnectionInfo, Error, Inbound, InboundTicket, Listener, ListenerStats, PeerId,
    Result, SharedLimiter, SourceKey, TransportAddress, TransportKind,
};

use crate::config::{StatCounters, UdpConfig};
use crate::conn::{self, now, Source};
use crate::proto::accept::{Acceptor, AcceptorConfig, Action, Gate, SessionHandle};
use crate::proto::session::Session;
use crate::socket::{Received, RecvBuffers, Sink, Socket};

/// Inbound reports waiting for `accept`.
const INBOUND_QUEUE: usize = 64;
/// Datagrams queued for one connection that may still share the receive chunk.
const SHARE_CHUNK_UP_TO: usize = 8;
/// Socket reads (each may return many datagrams) per wakeup of the socket task, at most.
const DRAIN_AT_ONCE: usize = 64;
/// How often expired handshakes and ended connections are swept out of the table.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

const RUNNING: u8 = 0;
const DRAINING: u8 = 1;
const EXITED: u8 = 2;

impl SessionHandle for mpsc::Sender<Bytes> {
    fn is_closed(&self) -> bool {
        mpsc::Sender::is_closed(self)
    }
}

struct LimiterGate {
    limiter: SharedLimiter,
    events: mpsc::Sender<Inbound>,
}

impl Gate for LimiterGate {
    type Ticket = InboundTicket;
    type Guard = AdmissionGuard;

    fn check_inbound(
        &mut self,
        from: SocketAddr,
    ) -> std::result::Result<InboundTicket, LimitRejection> {
        self.limiter.check_inbound(SourceKey::from(from))
    }

    fn handshake_done(&mut self, ticket: InboundTicket) {
        ticket.succeed();
    }

    fn admit(&mut self, peer: PeerId) -> std::result::Result<AdmissionGuard, LimitRejection> {
        self.limiter.admit(peer, Direction::Inbound)
    }

    fn ready(&self) -> bool {
        self.events.capacity() > 0
    }
}

/// What the socket task needs from the transport.
pub(crate) struct ListenContext {
    pub(crate) identity: Arc<LocalIdentity>,
    pub(crate) config: UdpConfig,
    pub(crate) limiter: SharedLimiter,
    pub(crate) stats: Arc<StatCounters>,
}

/// A UDP [`Listener`].
pub(crate) struct UdpListener {
    local_addr: TransportAddress,
    events: mpsc::Receiver<Inbound>,
    counters: Arc<ListenerCounters>,
    stop: watch::Sender<bool>,
    phase: watch::Receiver<u8>,
}

pub(crate) fn spawn(
    socket: Socket,
    local_addr: TransportAddress,
    ctx: ListenContext,
) -> UdpListener {
    let (tx, events) = mpsc::channel(INBOUND_QUEUE);
    let counters = Arc::new(ListenerCounters::default());
    let (stop, stop_rx) = watch::channel(false);
    let (phase_tx, phase) = watch::channel(RUNNING);
    let driver = Driver {
        socket: Arc::new(socket),
        local_addr: local_addr.clone(),
        acceptor: Acceptor::new(
            AcceptorConfig {
                identity: ctx.identity.clone(),
                accepted_suites: ctx.config.channel.accepted_suites.clone(),
                handshake_timeout: ctx.config.channel.handshake_timeout,
                max_associations: ctx.config.max_associations,
            },
            rand::rngs::StdRng::from_entropy(),
        ),
        gate: LimiterGate {
            limiter: ctx.limiter.clone(),
            events: tx.clone(),
        },
        events: tx,
        counters: counters.clone(),
        ctx,
    };
    tokio::spawn(driver.run(stop_rx, phase_tx));
    UdpListener {
        local_addr,
        events,
        counters,
        stop,
        phase,
    }
}

struct Driver {
    socket: Arc<Socket>,
    local_addr: TransportAddress,
    acceptor: Acceptor<LimiterGate, mpsc::Sender<Bytes>>,
    gate: LimiterGate,
    events: mpsc::Sender<Inbound>,
    counters: Arc<ListenerCounters>,
    ctx: ListenContext,
}

impl Driver {
    async fn run(mut self, mut stop: watch::Receiver<bool>, phase: watch::Sender<u8>) {
        let max = self.ctx.config.max_datagram();
        let mut bufs = RecvBuffers::default();
        let mut queue = Received::new();
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut accepting = true;
        loop {
            tokio::select! {
                _ = async { drop(stop.wait_for(|s| *s).await) }, if accepting => {
                    accepting = false;
                    self.acceptor.stop_accepting();
                    if self.acceptor.live_sessions() == 0 {
                        break;
                    }
                    phase.send_replace(DRAINING);
                }
                _ = sweep.tick() => {
                    for addr in self.acceptor.sweep(now()) {
                        self.counters.failed_handshake();
                        let _ = self.events.try_send(Inbound::Refused {
                            remote: TransportAddress::Udp(addr),
                            error: Error::Timeout {
                                operation: "udp handshake",
                                after: self.ctx.config.channel.handshake_timeout,
                            },
                        });
                    }
                    if !accepting && self.acceptor.live_sessions() == 0 {
                        break;
                    }
                }
                received = self.socket.recv(&mut bufs, &mut queue) => match received {
                    Ok(()) => {
                        // Then what is already waiting, without going back through the select.
                        let mut reads = 1;
                        loop {
                            // Each read starts a new run of shared datagrams (see `handle`).
                            let mut run = None;
                            while let Some((from, datagram)) = queue.pop_front() {
                                self.handle(from, datagram, max, &mut run).await;
                            }
                            // Errors (and "nothing waiting") are left to the select.
                            if reads == DRAIN_AT_ONCE
                                || self.socket.try_recv(&mut bufs, &mut queue).is_err()
                            {
                                break;
                            }
                            reads += 1;
                        }
                    }
                    Err(e) => {
                        if !conn::transient(&e) {
                            tracing::warn!(error = %e, "udp receive failed");
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                },
            }
        }
        drop(self);
        phase.send_replace(EXITED);
    }

    /// Handles one datagram. `run` is the connection the previous datagram of the same socket
    /// read was routed to sharing its chunk, if any.
    async fn handle(
        &mut self,
        from: SocketAddr,
        datagram: Bytes,
        max: usize,
        run: &mut Option<mpsc::Sender<Bytes>>,
    ) {
        let stats = &self.ctx.stats;
        if datagram.len() > max {
            StatCounters::bump(&stats.dropped_unknown);
            return;
        }
        let action = self.acceptor.handle(from, &datagram, now(), &mut self.gate);
        match action {
            Action::Ignore(_) => StatCounters::bump(&stats.dropped_unknown),
            Action::Route(handle) => {
                // A queued datagram keeps its whole receive chunk alive. Past a few queued
                // datagrams (a slow application), copy so a stalled connection pins only its
                // own bytes, never chunks shared with everyone else's traffic. A run that
                // started under the limit goes on sharing to the end of its socket read: those
                // datagrams lie back to back (at most one 64 KiB read, a few chunks).
                let queued = handle.max_capacity() - handle.capacity();
                let continues = run.as_ref().is_some_and(|r| r.same_channel(handle));
                let datagram = if continues {
                    datagram
                } else if queued < SHARE_CHUNK_UP_TO {
                    *run = Some(handle.clone());
                    datagram
                } else {
                    *run = None;
                    Bytes::copy_from_slice(&datagram)
                };
                match handle.try_send(datagram) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        StatCounters::bump(&stats.dropped_queue_full)
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        StatCounters::bump(&stats.dropped_unknown)
                    }
                }
            }
            Action::Reply(reply) => self.send(&reply, from).await,
            Action::Refused {
                reply,
                error,
                by_limit,
            } => {
                if let Some(reply) = reply {
                    self.send(&reply, from).await;
                }
                if by_limit {
                    self.counters.refused_by_limit();
                } else {
                    self.counters.failed_handshake();
                }
                tracing::debug!(%from, %error, "udp inbound refused");
                let _ = self.events.try_send(Inbound::Refused {
                    remote: TransportAddress::Udp(from),
                    error,
                });
            }
            Action::Accepted(accepted) => {
                let accepted = *accepted;
                self.send(&accepted.confirm, from).await;
                let channel = self.ctx.config.connection_channel();
                let info = ConnectionInfo {
                    local_peer: self.ctx.identity.peer_id(),
                    remote_peer: accepted.peer,
                    local_addr: self.local_addr.clone(),
                    remote_addr: TransportAddress::Udp(from),
                    kind: TransportKind::Udp,
                    outbound: false,
                };
                let (connection, io) = new_connection(info, &channel);
                let (tx, rx) = mpsc::channel(self.ctx.config.session_queue.max(1));
                self.acceptor.attach(&accepted.key, tx);
                let session = Session::new(
                    accepted.key.local_id,
                    accepted.remote_id,
                    accepted.sealer,
                    accepted.opener,
                    // Nothing of the initiator's was sealed yet: the window starts empty.
                    bitcraps_transport_core::policy::ReplayWindow::new(),
                    self.ctx.config.session_timing(),
                    self.ctx.config.effective_max_payload(),
                    now(),
                );
                conn::spawn(
                    session,
                    io,
                    Source::Channel(rx),
                    Sink {
                        socket: self.socket.clone(),
                        to: from,
                        stats: self.ctx.stats.clone(),
                    },
                    accepted.guard,
                    self.ctx.config.max_datagram(),
                );
                if self
                    .events
                    .try_send(Inbound::Connection(connection))
                    .is_ok()
                {
                    self.counters.accepted();
                }
            }
        }
    }

    async fn send(&self, datagram: &[u8], to: SocketAddr) {
        if let Err(e) = self.socket.send(to, datagram, datagram.len()).await {
            tracing::trace!(error = %e, %to, "udp send failed");
            StatCounters::bump(&self.ctx.stats.send_errors);
        }
    }
}

#[async_trait]
impl Listener for UdpListener {
    fn local_addr(&self) -> &TransportAddress {
        &self.local_addr
    }

    async fn accept(&mut self) -> Result<Inbound> {
        if *self.stop.borrow() {
            return Err(Error::ListenerClosed);
        }
        self.events.recv().await.ok_or(Error::ListenerClosed)
    }

    fn stats(&self) -> ListenerStats {
        self.counters.stats()
    }

    async fn close(&mut self) {
        self.stop.send_replace(true);
        self.events.close();
        drop(self.phase.wait_for(|p| *p != RUNNING).await);
    }
}

impl Drop for UdpListener {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}
