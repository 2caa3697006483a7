//! The task that drives one established connection: it seals the application's queued
//! messages into DATA datagrams (a batch back to back, sent segmented: [`Segments`]), opens
//! received datagrams through the sans-IO [`Session`], delivers what one wakeup found as one
//! queue item, and runs the session's timers (keep-alive, idle expiry, close retransmission).
//!
//! Delivery never blocks the socket: while the application is slow, the task stops taking
//! datagrams from its bounded queue, and the listener's socket task drops (and counts) what
//! does not fit; a dialer's own socket simply fills its kernel buffer.

use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::future::OptionFuture;
use tokio::sync::mpsc;

use bitcraps_transport_core::backend::{ConnectionIo, SendItem};
use bitcraps_transport_core::Error;

use crate::config::StatCounters;
use crate::proto::session::{DropReason, Ended, Event, Session};
use crate::proto::wire::SEALED_OVERHEAD;
use crate::socket::{Received, RecvBuffers, Segments, Sink, Socket};

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
        socket: Arc<Socket>,
        bufs: RecvBuffers,
        /// Datagrams received (one read may return several) and not yet handled.
        queue: Received,
    },
}

impl Source {
    /// A dialer's source reading `socket`.
    pub(crate) fn socket(socket: Arc<Socket>) -> Self {
        Self::Socket {
            socket,
            bufs: RecvBuffers::default(),
            queue: Received::new(),
        }
    }

    /// The next datagram; `None` once no more can come.
    async fn next(&mut self) -> Option<Bytes> {
        match self {
            Self::Channel(rx) => rx.recv().await,
            Self::Socket {
                socket,
                bufs,
                queue,
            } => loop {
                if let Some((_, d)) = queue.pop_front() {
                    return Some(d);
                }
                match socket.recv(bufs, queue).await {
                    Ok(()) => {}
                    // ICMP errors of earlier sends surface here; the session's timers decide.
                    Err(e) if transient(&e) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "udp receive failed");
                        return None;
                    }
                }
            },
        }
    }

    /// A datagram already waiting, if any (errors are left for [`Source::next`]).
    fn try_next(&mut self) -> Option<Bytes> {
        match self {
            Self::Channel(rx) => rx.try_recv().ok(),
            Self::Socket {
                socket,
                bufs,
                queue,
            } => {
                if queue.is_empty() {
                    let _ = socket.try_recv(bufs, queue);
                }
                queue.pop_front().map(|(_, d)| d)
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
                segments: Segments::default(),
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
            segments: Segments::default(),
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
    segments: Segments,
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
                    // Counted (and the send budget given back) once per batch.
                    let (mut sent, mut bytes) = (0u64, 0usize);
                    for item in batch.drain(..) {
                        match item {
                            SendItem::Message(m) => {
                                let len = m.len() + SEALED_OVERHEAD;
                                self.segments.make_room(len, self.sink).await;
                                let before = self.segments.buf.len();
                                if self.session.append_data(&m, now, &mut self.segments.buf) {
                                    self.segments.added(self.segments.buf.len() - before);
                                    sent += 1;
                                    bytes += m.len();
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
                    self.segments.flush(self.sink).await;
                    if sent > 0 {
                        state.record_sent_many(sent, bytes);
                    }
                }
                d = self.source.next(), if !delivering => {
                    let Some(mut d) = d else {
                        return Ending::Failed(Error::LinkLost("the socket closed".into()));
                    };
                    // Handle what is already queued without going back through the select, and
                    // deliver the batch's messages as one queue item.
                    let mut messages = Vec::new();
                    let now = now();
                    let mut ended = None;
                    for _ in 0..BATCH {
                        match self.session.handle_datagram(&d, now, self.plain) {
                            Event::Data(m) => messages.push(m),
                            Event::Nothing => {}
                            Event::RemoteClosed(reason) => {
                                ended = Some(Err(reason));
                                break;
                            }
                            Event::CloseAcknowledged => {
                                ended = Some(Ok(Ending::Closed));
                                break;
                            }
                            Event::Dropped(reason) => self.count(reason),
                            Event::Violation(e) => {
                                ended = Some(Ok(Ending::Failed(e.into())));
                                break;
                            }
                        }
                        match self.source.try_next() {
                            Some(next) => d = next,
                            None => break,
                        }
                    }
                    if !messages.is_empty() && !incoming.is_closed() {
                        if ended.is_some() {
                            // What authenticated before the end is delivered before it
                            // (unless the connection is aborted meanwhile).
                            tokio::select! {
                                _ = incoming.deliver_many(messages) => {}
                                _ = &mut aborted => return Ending::Aborted,
                            }
                        } else {
                            pending.set(Some(incoming.deliver_many(messages)).into());
                            delivering = futures::poll!(pending.as_mut()).is_pending();
                        }
                    }
                    match ended {
                        None => {}
                        Some(Ok(ending)) => return ending,
                        Some(Err(reason)) => {
                            state.remote_closed(reason);
                            self.flush_control().await;
                            return Ending::RemoteClosed;
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
