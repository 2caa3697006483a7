//! A generic listener over any stream acceptor: checks the inbound limits by source before any
//! handshake work, runs handshakes concurrently (bounded by the limiter's in-flight cap, each
//! under the handshake timeout), and hands authenticated connections to the application.
//! A misbehaving remote costs only its own handshake task; the accept loop keeps serving.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use super::{RawStream, StreamContext};
use crate::backend::{finish_inbound, ListenerCounters};
use crate::limits::InboundTicket;
use crate::policy::{LimitRejection, SourceKey};
use crate::refusal::{REFUSALS_IN_FLIGHT, REFUSAL_TIMEOUT};
use crate::{Error, Inbound, Listener, ListenerStats, Result, TransportAddress};

/// Authenticated connections and refusal reports waiting for `accept`.
const INBOUND_QUEUE: usize = 64;

/// One raw inbound stream, before any handshake.
#[derive(Debug)]
pub struct AcceptedStream<R, W> {
    /// The stream and its addresses.
    pub raw: RawStream<R, W>,
    /// The source the inbound limits are keyed by (the IP address, not the port).
    pub source: SourceKey,
}

/// A bounded answer to a refused stream (see [`StreamAcceptor::refusal`]).
pub type RefusalTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A backend's raw accept.
pub trait StreamAcceptor: Send + 'static {
    /// The read half of an accepted stream.
    type Reader: AsyncRead + Unpin + Send + 'static;
    /// The write half of an accepted stream.
    type Writer: AsyncWrite + Unpin + Send + 'static;

    /// Waits for the next raw inbound stream. Errors are logged and retried with a short
    /// backoff (e.g. out of file descriptors); they do not end the listener.
    fn accept(
        &mut self,
    ) -> impl Future<Output = io::Result<AcceptedStream<Self::Reader, Self::Writer>>> + Send;

    /// How to tell a dialer refused by a source limit before the handshake: a task that sends
    /// a few bytes naming the limit (the TCP refusal frame, an HTTP 429) and ends the stream.
    /// The listener runs it under [`REFUSAL_TIMEOUT`], at most [`REFUSALS_IN_FLIGHT`] at a time,
    /// off the accept loop. `None` (the default) closes the stream without a byte.
    fn refusal(
        &self,
        stream: AcceptedStream<Self::Reader, Self::Writer>,
        rejection: LimitRejection,
    ) -> Option<RefusalTask> {
        let _ = (stream, rejection);
        None
    }
}

/// The [`Listener`] of every stream backend.
#[derive(Debug)]
pub struct StreamListener {
    local_addr: TransportAddress,
    events: mpsc::Receiver<Inbound>,
    task: Option<JoinHandle<()>>,
    counters: Arc<ListenerCounters>,
}

/// Starts accepting on `acceptor`, which is bound to `local_addr`.
pub fn spawn_stream_listener<A: StreamAcceptor>(
    acceptor: A,
    local_addr: TransportAddress,
    ctx: StreamContext,
) -> StreamListener {
    let (tx, events) = mpsc::channel(INBOUND_QUEUE);
    let counters = Arc::new(ListenerCounters::default());
    let task = tokio::spawn(accept_loop(acceptor, ctx, tx, counters.clone()));
    StreamListener {
        local_addr,
        events,
        task: Some(task),
        counters,
    }
}

async fn accept_loop<A: StreamAcceptor>(
    mut acceptor: A,
    ctx: StreamContext,
    tx: mpsc::Sender<Inbound>,
    counters: Arc<ListenerCounters>,
) {
    let mut handshakes = JoinSet::new();
    let refusals = Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT));
    let mut consecutive_errors = 0u32;
    loop {
        tokio::select! {
            _ = tx.closed() => break,
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
            accepted = acceptor.accept() => match accepted {
                Err(e) => {
                    consecutive_errors = consecutive_errors.saturating_add(1);
                    let pause = Duration::from_millis(5u64 << consecutive_errors.min(8));
                    tracing::warn!(error = %e, ?pause, "accept failed");
                    tokio::time::sleep(pause).await;
                }
                Ok(accepted) => {
                    consecutive_errors = 0;
                    match ctx.limiter.check_inbound(accepted.source) {
                        Err(rejection) => {
                            counters.refused_by_limit();
                            tracing::debug!(remote = %accepted.raw.remote_addr, %rejection, "inbound refused");
                            let _ = tx.try_send(Inbound::Refused {
                                remote: accepted.raw.remote_addr.clone(),
                                error: Error::Limit(rejection),
                            });
                            // Answered off the loop, bounded in time and number; when the
                            // budget is used up, closed without a byte.
                            if let Ok(permit) = refusals.clone().try_acquire_owned() {
                                if let Some(task) = acceptor.refusal(accepted, rejection) {
                                    handshakes.spawn(async move {
                                        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, task).await;
                                        drop(permit);
                                    });
                                }
                            }
                        }
                        Ok(ticket) => {
                            handshakes.spawn(handshake(accepted.raw, ticket, ctx.clone(), tx.clone(), counters.clone()));
                        }
                    }
                }
            }
        }
    }
}

async fn handshake<R, W>(
    raw: RawStream<R, W>,
    ticket: InboundTicket,
    ctx: StreamContext,
    tx: mpsc::Sender<Inbound>,
    counters: Arc<ListenerCounters>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let remote = raw.remote_addr.clone();
    let timeout = ctx.config.handshake_timeout;
    let result = match tokio::time::timeout(timeout, ctx.secure_inbound(raw)).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout {
            operation: "handshake",
            after: timeout,
        }),
    };
    finish_inbound(result, remote, ticket, &tx, &counters).await;
}

#[async_trait]
impl Listener for StreamListener {
    fn local_addr(&self) -> &TransportAddress {
        &self.local_addr
    }

    async fn accept(&mut self) -> Result<Inbound> {
        self.events.recv().await.ok_or(Error::ListenerClosed)
    }

    fn stats(&self) -> ListenerStats {
        self.counters.stats()
    }

    async fn close(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        self.events.close();
    }
}

impl Drop for StreamListener {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
