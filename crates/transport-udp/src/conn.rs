//! The task that drives one established connection: it seals the application's queued
//! messages into DATA datagrams, opens received datagrams through the sans-IO
//! [`Session`], delivers messages, and runs the session's timers (keep-alive, idle expiry,
//! close retransmission).
//!
//! Delivery never blocks the socket: while the application is slow, the task stops taking
//! datagrams from its bounded queue, and the listener's socket task drops (and counts) what
//! does not fit; a dialer's own socket simply fills its kernel buffer.

use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::future::OptionFuture;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use bitcraps_transport_core::backend::{ConnectionIo, SendItem};
use bitcraps_transport_core::Error;

use crate::config::StatCounters;
use crate::proto::session::{DropReason, Ended, Event, Session};

/// Messages taken off the send queue per batch.
const BATCH: usize = 64;
/// Receive buffers are allocated in chunks this large and shared by many datagrams.
pub(crate) const RECV_CHUNK: usize = 16 * 1024;

pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

fn sleep_until(at: Instant) -> tokio::time::Sleep {
    tokio::time::sleep_until(tokio::time::Instant::from_std(at))
}

/// Where a connection's datagrams come from.
pub(crate) enum Source {
    /// Routed by a listener's socket task.
    Channel(mpsc::Receiver<Bytes>),
    /// A dialer's own connected socket.
    Socket {
        socket: Arc<UdpSocket>,
        buf: BytesMut,
        max: usize,
    },
}

impl Source {
    /// The next datagram; `None` once no more can come.
    async fn next(&mut self) -> Option<Bytes> {
        match self {
            Self::Channel(rx) => rx.recv().await,
            Self::Socket { socket, buf, max } => loop {
                if buf.capacity() - buf.len() <= *max {
                    buf.reserve(RECV_CHUNK.max(*max + 1));
                }
                match socket.recv_buf(buf).await {
                    Ok(_) => return Some(buf.split().freeze()),
                    // ICMP errors of earlier sends surface here; the session's timers decide.
                    Err(e) if transient(&e) => buf.clear(),
                    Err(e) => {
                        tracing::debug!(error = %e, "udp receive failed");
                        return None;
                    }
                }
            },
        }
    }
}

impl Source {
    /// A datagram already waiting, if any (errors are left for [`Source::next`]).
    fn try_next(&mut self) -> Option<Bytes> {
        match self {
            Self::Channel(rx) => rx.try_recv().ok(),
            Self::Socket { socket, buf, max } => {
                if buf.capacity() - buf.len() <= *max {
                    buf.reserve(RECV_CHUNK.max(*max + 1));
                }
                match socket.try_recv_buf(buf) {
                    Ok(_) => Some(buf.split().freeze()),
                    Err(_) => {
                        buf.clear();
                        None
                    }
                }
            }
        }
    }
}

pub(crate) fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Where a connection's datagrams go.
pub(crate) struct Sink {
    pub(crate) socket: Arc<UdpSocket>,
    /// `None` for a connected socket.
    pub(crate) to: Option<SocketAddr>,
    pub(crate) stats: Arc<StatCounters>,
}

impl Sink {
    async fn send(&self, datagram: &[u8]) {
        let sent = match self.to {
            Some(to) => self.socket.send_to(datagram, to).await,
            None => self.socket.send(datagram).await,
        };
        if let Err(e) = sent {
            // A datagram backend may lose datagrams; the session's timers handle the rest.
            tracing::trace!(error = %e, "udp send failed");
            StatCounters::bump(&self.stats.send_errors);
        }
    }
}

enum Ending {
    Closed,
    RemoteClosed,
    Failed(Error),
    Aborted,
}

/// Spawns the task of one connection; `guard` (its admission slot) is held until it ends.
pub(crate) fn spawn<G: Send + 'static>(
    session: Session,
    io: ConnectionIo,
    source: Source,
    sink: Sink,
    guard: G,
    max_datagram: usize,
) {
    tokio::spawn(async move {
        let ConnectionIo {
            mut send_queue,
            incoming,
            state,
        } = io;
        let mut session = session;
        let mut source = source;
        let mut out = BytesMut::with_capacity(max_datagram);
        let mut plain = BytesMut::new();
        let ending = {
            let mut task = Task {
                session: &mut session,
                source: &mut source,
                sink: &sink,
                out: &mut out,
                plain: &mut plain,
            };
            task.active(&mut send_queue, &incoming, &state).await
        };
        match ending {
            Ending::Closed | Ending::RemoteClosed | Ending::Aborted => {}
            Ending::Failed(error) => {
                tracing::debug!(peer = %state.info().remote_peer.short(), %error, "udp connection failed");
                state.fail(error);
            }
        }
        // After the failure is recorded: a receiver that sees the end also sees why.
        drop(incoming);
        drop(send_queue);
        state.set_reader_done();
        state.finish();
        drop(guard);
        let mut task = Task {
            session: &mut session,
            source: &mut source,
            sink: &sink,
            out: &mut out,
            plain: &mut plain,
        };
        task.drain().await;
    });
}

struct Task<'a> {
    session: &'a mut Session,
    source: &'a mut Source,
    sink: &'a Sink,
    out: &'a mut BytesMut,
    plain: &'a mut BytesMut,
}

impl Task<'_> {
    async fn flush_control(&mut self) {
        while self.session.poll_transmit(now(), self.out) {
            self.sink.send(self.out).await;
        }
    }

    fn count(&self, reason: DropReason) {
        let s = &self.sink.stats;
        StatCounters::bump(match reason {
            DropReason::Replayed => &s.dropped_replayed,
            DropReason::Unauthentic => &s.dropped_unauthentic,
            // Data still in flight when a close began is expected, not suspicious.
            DropReason::AfterClose => return,
            _ => &s.dropped_unknown,
        });
    }

    async fn active(
        &mut self,
        send_queue: &mut mpsc::Receiver<SendItem>,
        incoming: &bitcraps_transport_core::backend::IncomingSender,
        state: &bitcraps_transport_core::backend::ConnectionState,
    ) -> Ending {
        let mut batch = Vec::with_capacity(BATCH);
        let mut pending = pin!(OptionFuture::from(None));
        let mut delivering = false;
        let mut aborted = pin!(state.wait_aborted());
        let mut timer = pin!(sleep_until(now()));
        let mut armed: Option<Instant> = None;
        loop {
            self.flush_control().await;
            let deadline = self.session.poll_timeout();
            if deadline != armed {
                if let Some(at) = deadline {
                    timer.as_mut().reset(tokio::time::Instant::from_std(at));
                }
                armed = deadline;
            }
            tokio::select! {
                biased;
                _ = &mut aborted => return Ending::Aborted,
                _ = &mut pending, if delivering => delivering = false,
                n = send_queue.recv_many(&mut batch, BATCH), if self.session.is_open() => {
                    let now = now();
                    if n == 0 {
                        state.set_local_closing("connection dropped");
                        self.session.close("connection dropped", now);
                    }
                    for item in batch.drain(..) {
                        match item {
                            SendItem::Message(m) => {
                                if self.session.seal_data(&m, now, self.out) {
                                    self.sink.send(self.out).await;
                                    state.record_sent(m.len());
                                }
                            }
                            SendItem::Close(reason) => {
                                state.set_local_closing(&reason);
                                self.session.close(&reason, now);
                                break;
                            }
                        }
                    }
                    batch.clear();
                }
                d = self.source.next(), if !delivering => {
                    let Some(mut d) = d else {
                        return Ending::Failed(Error::LinkLost("the socket closed".into()));
                    };
                    // Handle what is already queued without going back through the select.
                    for _ in 0..BATCH {
                        match self.session.handle_datagram(&d, now(), self.plain) {
                            Event::Data(m) => {
                                if !incoming.is_closed() {
                                    pending.set(Some(incoming.deliver(m)).into());
                                    delivering = futures::poll!(pending.as_mut()).is_pending();
                                }
                            }
                            Event::Nothing => {}
                            Event::RemoteClosed(reason) => {
                                state.remote_closed(reason);
                                self.flush_control().await;
                                return Ending::RemoteClosed;
                            }
                            Event::CloseAcknowledged => return Ending::Closed,
                            Event::Dropped(reason) => self.count(reason),
                            Event::Violation(e) => return Ending::Failed(e.into()),
                        }
                        if delivering {
                            break;
                        }
                        match self.source.try_next() {
                            Some(next) => d = next,
                            None => break,
                        }
                    }
                }
                _ = &mut timer, if armed.is_some() => {
                    armed = None;
                    match self.session.handle_timeout(now()) {
                        None => {}
                        Some(Ended::IdleExpired) => {
                            return Ending::Failed(Error::LinkLost(
                                "no datagram from the remote within the idle timeout".into(),
                            ))
                        }
                        Some(Ended::CloseUnacknowledged) => {
                            return Ending::Failed(Error::Timeout {
                                operation: "close acknowledgement",
                                after: state.close_timeout(),
                            })
                        }
                        Some(Ended::Drained) => return Ending::RemoteClosed,
                    }
                }
            }
        }
    }

    /// After the remote's close: answer its retransmitted CLOSEs until the drain period ends.
    async fn drain(&mut self) {
        while self.session.is_draining() {
            let Some(deadline) = self.session.poll_timeout() else {
                return;
            };
            tokio::select! {
                d = self.source.next() => match d {
                    Some(d) => {
                        let _ = self.session.handle_datagram(&d, now(), self.plain);
                        self.flush_control().await;
                    }
                    None => return,
                },
                _ = sleep_until(deadline) => {
                    self.session.handle_timeout(now());
                }
            }
        }
    }
}
