//! [`QuicListener`]: one quinn endpoint accepting connections.
//!
//! For each incoming QUIC connection attempt, before any TLS work: an unvalidated address is
//! sent a Retry when `always_retry` is set, half the handshakes-in-flight cap is in use, or the
//! source has a single new connection left in its rate allowance; then
//! the limiter checks the source IP (a refusal answers CONNECTION_REFUSED, or nothing at all
//! when the handshakes-in-flight cap is full). After the TLS handshake the remote's `PeerId`
//! is admitted by the per-peer and total limits (a refusal closes the connection with the
//! limit's close code, see `codes`); then the listener waits for the dialer's message stream
//! and answers its opening byte. Everything runs under the handshake timeout, each attempt in
//! its own task: a misbehaving remote costs only its own attempt.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use bitcraps_transport_core::backend::{finish_inbound, ListenerCounters};
use bitcraps_transport_core::policy::Direction;
use bitcraps_transport_core::{
    Error, Inbound, InboundTicket, LimitKind, Listener, ListenerStats, ProtocolError, Result,
    SourceKey, TransportAddress,
};

use crate::codes::{encode_limit, CLOSE_ABORT, CLOSE_PROTOCOL};
use crate::transport::{
    start_connection, CloseOnDrop, Established, Shared, STREAM_ACCEPT, STREAM_OPEN,
};

/// Authenticated connections and refusal reports waiting for `accept`.
const INBOUND_QUEUE: usize = 64;

#[derive(Debug, Default)]
struct Counters {
    /// The counters every listener keeps.
    stats: ListenerCounters,
    /// Connections accepted by this listener and still open (they share its socket).
    live: Arc<AtomicUsize>,
}

/// Counts one accepted connection as live until dropped (when the connection ends).
struct Live(Arc<AtomicUsize>);

impl Live {
    fn new(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A listening QUIC endpoint.
#[derive(Debug)]
pub struct QuicListener {
    local_addr: TransportAddress,
    endpoint: Option<quinn::Endpoint>,
    socket_dropped: Option<oneshot::Receiver<()>>,
    events: mpsc::Receiver<Inbound>,
    task: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
    shared: Arc<Shared>,
}

impl QuicListener {
    pub(crate) fn spawn(
        endpoint: quinn::Endpoint,
        socket_dropped: oneshot::Receiver<()>,
        local_addr: TransportAddress,
        shared: Arc<Shared>,
    ) -> Self {
        let (tx, events) = mpsc::channel(INBOUND_QUEUE);
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(accept_loop(
            endpoint.clone(),
            shared.clone(),
            tx,
            counters.clone(),
        ));
        Self {
            local_addr,
            endpoint: Some(endpoint),
            socket_dropped: Some(socket_dropped),
            events,
            task: Some(task),
            counters,
            shared,
        }
    }
}

/// True when an unvalidated address should prove itself with a Retry first: always if
/// configured, when half the handshakes-in-flight cap is in use, or when this source has one
/// new connection left in its rate allowance (near its limit).
fn wants_retry(shared: &Shared, source: SourceKey) -> bool {
    if shared.config.always_retry {
        return true;
    }
    let now = tokio::time::Instant::now().into_std();
    let (in_flight, cap, allowance) = shared.limiter.with(|l| {
        (
            l.handshakes_in_flight(),
            l.limits().max_handshakes_in_flight,
            l.inbound_allowance(source, now),
        )
    });
    in_flight >= cap / 2 || allowance <= 1
}

async fn accept_loop(
    endpoint: quinn::Endpoint,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Inbound>,
    counters: Arc<Counters>,
) {
    let local = endpoint
        .local_addr()
        .unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut handshakes = JoinSet::new();
    loop {
        let incoming = tokio::select! {
            _ = tx.closed() => break,
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => continue,
            incoming = endpoint.accept() => match incoming {
                Some(i) => i,
                None => break,
            },
        };
        let remote_sock = incoming.remote_address();
        if !incoming.remote_address_validated()
            && incoming.may_retry()
            && wants_retry(&shared, SourceKey::from(remote_sock))
        {
            let _ = incoming.retry();
            continue;
        }
        match shared.limiter.check_inbound(SourceKey::from(remote_sock)) {
            Err(rejection) => {
                counters.stats.refused_by_limit();
                if rejection.limit == LimitKind::HandshakesInFlight {
                    incoming.ignore();
                } else {
                    incoming.refuse();
                }
                tracing::debug!(remote = %remote_sock, %rejection, "quic inbound refused");
                let _ = tx.try_send(Inbound::Refused {
                    remote: TransportAddress::Quic(remote_sock),
                    error: Error::Limit(rejection),
                });
            }
            Ok(ticket) => {
                handshakes.spawn(handshake(
                    incoming,
                    ticket,
                    shared.clone(),
                    tx.clone(),
                    counters.clone(),
                    local,
                ));
            }
        }
    }
}

async fn handshake(
    incoming: quinn::Incoming,
    ticket: InboundTicket,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Inbound>,
    counters: Arc<Counters>,
    local: std::net::SocketAddr,
) {
    let live = counters.live.clone();
    let remote = TransportAddress::Quic(incoming.remote_address());
    let timeout = shared.config.channel.handshake_timeout;
    let result =
        match tokio::time::timeout(timeout, accept_one(incoming, &shared, local, live)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                operation: "quic handshake",
                after: timeout,
            }),
        };
    finish_inbound(result, remote, ticket, &tx, &counters.stats).await;
}

/// The TLS handshake, admission, and the opening of the message stream.
async fn accept_one(
    incoming: quinn::Incoming,
    shared: &Shared,
    local: std::net::SocketAddr,
    live: Arc<AtomicUsize>,
) -> Result<bitcraps_transport_core::Connection> {
    let connecting = incoming
        .accept()
        .map_err(|e| crate::codes::dial_error(&e))?;
    let conn = connecting.await.map_err(|e| crate::codes::dial_error(&e))?;
    // If anything below fails, the connection is closed with an abort code.
    let mut close_guard = CloseOnDrop::new(&conn);
    let peer = shared
        .tls
        .remote_identity(&conn)
        .map_err(|m| Error::backend("quic", "the remote identity", m.to_string()))?;
    let guard = match shared.limiter.admit(peer, Direction::Inbound) {
        Ok(g) => g,
        Err(rejection) => {
            let (code, reason) = encode_limit(&rejection);
            conn.close(code, reason.as_bytes());
            return Err(Error::Limit(rejection));
        }
    };
    let (mut send, mut recv) = conn
        .accept_bi()
        .await
        .map_err(|e| crate::codes::dial_error(&e))?;
    let mut first = [0u8; 1];
    recv.read_exact(&mut first)
        .await
        .map_err(|e| Error::backend("quic", "reading the stream opening", e))?;
    if first[0] != STREAM_OPEN {
        conn.close(CLOSE_PROTOCOL, b"unknown stream kind");
        return Err(ProtocolError::Malformed("unknown stream kind").into());
    }
    send.write_all(&[STREAM_ACCEPT])
        .await
        .map_err(|e| Error::backend("quic", "accepting the stream", e))?;
    close_guard.disarm();
    Ok(start_connection(
        shared,
        Established {
            conn,
            send,
            recv,
            peer,
            guard,
        },
        false,
        local,
        Live::new(live),
    ))
}

#[async_trait]
impl Listener for QuicListener {
    fn local_addr(&self) -> &TransportAddress {
        &self.local_addr
    }

    async fn accept(&mut self) -> Result<Inbound> {
        self.events.recv().await.ok_or(Error::ListenerClosed)
    }

    fn stats(&self) -> ListenerStats {
        self.counters.stats.stats()
    }

    /// Stops accepting (new attempts are refused), abandons handshakes in progress, and frees
    /// the UDP port. Accepted connections keep running on the socket, so when some are still
    /// open the port is freed only once the last of them ends.
    async fn close(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        self.events.close();
        // Connections accepted but never taken by the application are dropped (closed).
        while self.events.try_recv().is_ok() {}
        let Some(endpoint) = self.endpoint.take() else {
            return;
        };
        endpoint.set_server_config(None);
        // Only abandoned handshakes (if any) remain when no accepted connection is live: close
        // them and free the port now, each step bounded by the close timeout.
        let idle = self.counters.live.load(Ordering::Relaxed) == 0;
        let limit = self.shared.config.channel.close_timeout;
        if idle {
            endpoint.close(CLOSE_ABORT, b"listener closed");
            let _ = tokio::time::timeout(limit, endpoint.wait_idle()).await;
        }
        drop(endpoint);
        if let (true, Some(dropped)) = (idle, self.socket_dropped.take()) {
            let _ = tokio::time::timeout(limit, dropped).await;
        }
    }
}

impl Drop for QuicListener {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(endpoint) = self.endpoint.take() {
            endpoint.set_server_config(None);
        }
    }
}
