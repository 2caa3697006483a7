//! The actor of one peer: a thin loop around the peer's [`PeerMachine`]. It feeds the machine
//! commands, messages to send, transport messages read from the peer's connections, dial
//! results and timeouts (one pinned timer reset to `poll_timeout`), and carries out what the
//! machine asks (see `io`). It never waits on anything but its `select!`, so it always drains
//! its command queue.

use std::sync::Arc;

use bitcraps_transport_core::PeerId;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::io::{clock, Io};
use super::{Ctl, PeerHandle, SendRequest};
use crate::error::{CoordinatorError, Result};
use crate::machine::{DisconnectReason, LinkFailure, LocalReason, MachineConfig, PeerMachine};
use crate::stats::PeerConnections;
use crate::Shared;

/// Messages taken from the API queue per wake-up.
const SUBMIT_BATCH: usize = 256;

/// Creates the peer's handle and starts its actor.
pub(crate) fn spawn_peer(shared: &Arc<Shared>, peer: PeerId) -> Arc<PeerHandle> {
    let config = &shared.config;
    let (ctl_tx, ctl_rx) = mpsc::channel(config.control_queue);
    let (data_tx, data_rx) = mpsc::channel(config.max_unacked);
    let handle = Arc::new(PeerHandle {
        peer,
        ctl: ctl_tx,
        data: data_tx,
        window: tokio::sync::Semaphore::new(config.max_unacked),
        window_bytes: tokio::sync::Semaphore::new(config.max_unacked_bytes),
        counters: Default::default(),
        view: std::sync::Mutex::new(PeerConnections {
            peer,
            active: None,
            connections: Vec::new(),
            routes: Vec::new(),
        }),
        next_id: std::sync::atomic::AtomicU64::new(1),
    });
    let session = loop {
        let s: u64 = rand::random();
        if s != 0 {
            break s;
        }
    };
    let machine = PeerMachine::new(
        machine_config(shared),
        session,
        shared.take_tombstone(&peer),
        clock(),
    );
    let io = Io::new(shared.clone(), handle.clone(), machine);
    // `route` is recorded when a connection carries the peer's traffic (and on each change).
    let span = tracing::debug_span!(
        "peer",
        %peer,
        session = format_args!("{session:016x}"),
        route = tracing::field::Empty,
    );
    tokio::spawn(tracing::Instrument::instrument(
        run(io, ctl_rx, data_rx),
        span,
    ));
    handle
}

/// The machine's settings, from the coordinator's.
pub(crate) fn machine_config(shared: &Shared) -> MachineConfig {
    MachineConfig::from_coordinator(&shared.config, shared.max_payload)
}

async fn run(
    mut io: Io,
    mut ctl_rx: mpsc::Receiver<Ctl>,
    mut data_rx: mpsc::Receiver<SendRequest>,
) {
    let events = io.shared.events.sender();
    let headroom = io.headroom;
    let mut batch = Vec::with_capacity(SUBMIT_BATCH);
    let mut connect_waiters: Vec<oneshot::Sender<Result<()>>> = Vec::new();
    let mut flush_waiters: Vec<oneshot::Sender<()>> = Vec::new();
    let timer = tokio::time::sleep(std::time::Duration::from_secs(3600));
    tokio::pin!(timer);
    loop {
        let now = clock();
        io.drive(now, &events);
        if io.take_connected() || io.machine.active().is_some() {
            for w in connect_waiters.drain(..) {
                let _ = w.send(Ok(()));
            }
        }
        if io.ended.is_some() {
            break;
        }
        if !flush_waiters.is_empty() && io.flushed(&data_rx) {
            for w in flush_waiters.drain(..) {
                let _ = w.send(());
            }
        }
        if let Some(t) = io.machine.poll_timeout() {
            timer.as_mut().reset(tokio::time::Instant::from_std(t));
        } else {
            let far = tokio::time::Instant::now() + std::time::Duration::from_secs(3600);
            timer.as_mut().reset(far);
        }
        let can_deliver = io.machine.has_delivery(now);
        tokio::select! {
            biased;
            cmd = ctl_rx.recv() => match cmd {
                Some(Ctl::Connect { routes, reply }) => {
                    io.connect(routes, clock());
                    connect_waiters.push(reply);
                }
                Some(Ctl::Attach { conn, guard, transport, listener }) => {
                    io.attach(conn, guard, transport, listener, clock());
                }
                Some(Ctl::Flush(reply)) => flush_waiters.push(reply),
                Some(Ctl::Disconnect { reason, done }) => {
                    io.machine.end(DisconnectReason::Local(reason), clock());
                    io.done.extend(done);
                }
                Some(Ctl::ListenerClosed(listener)) => io.listener_closed(listener, clock()),
                None => io.machine.end(DisconnectReason::Local(LocalReason::Dropped), clock()),
            },
            n = data_rx.recv_many(&mut batch, SUBMIT_BATCH) => {
                if n == 0 {
                    io.machine.end(DisconnectReason::Local(LocalReason::Dropped), clock());
                }
                let now = clock();
                for out in batch.drain(..) {
                    io.submit(out, now);
                }
            }
            Some((link, item)) = io.readers.next(), if !io.readers.is_empty() => {
                io.on_read(link, item, clock());
            }
            Some((dial, transport, result)) = io.dials.next(), if !io.dials.is_empty() => {
                io.on_dialed(dial, transport, result, clock());
            }
            Some((link, ready)) = io.ready.next(), if !io.ready.is_empty() => {
                io.on_ready(link, ready, clock());
            }
            permits = events.reserve_many(headroom + 1), if can_deliver => {
                if let Ok(mut permits) = permits {
                    if let Some(permit) = permits.next() {
                        io.deliver_one(permit, clock());
                    }
                } else {
                    io.machine.end(DisconnectReason::Local(LocalReason::Dropped), clock());
                }
            }
            _ = &mut timer => io.machine.handle_timeout(clock()),
        }
    }
    let reason = io
        .ended
        .take()
        .unwrap_or(DisconnectReason::Local(LocalReason::Dropped));
    let error = match &reason {
        DisconnectReason::AllRoutesFailed { failures } => CoordinatorError::AllRoutesFailed {
            peer: io.handle.peer,
            failures: failures.clone(),
        },
        _ => CoordinatorError::Disconnected(io.handle.peer),
    };
    for w in connect_waiters.drain(..) {
        let _ = w.send(Err(error.clone()));
    }
    for w in flush_waiters.drain(..) {
        let _ = w.send(());
    }
    // Messages still in the API queue never reached the machine: report them too.
    data_rx.close();
    let now = clock();
    while let Ok(out) = data_rx.try_recv() {
        io.submit(out, now);
    }
    io.drive(now, &events);
    io.finish(reason).await;
    drop(ctl_rx);
}

/// The remote addresses of a peer's connections and routes, for `connection_stats`.
pub(crate) fn view(peer: PeerId, machine: &PeerMachine) -> PeerConnections {
    PeerConnections {
        peer,
        active: machine.active_address().cloned(),
        connections: machine.connections(),
        routes: machine.routes(),
    }
}

/// Why a read ended, as a link failure.
pub(crate) fn read_failure(
    item: bitcraps_transport_core::Result<Option<bitcraps_transport_core::Bytes>>,
    close: Option<bitcraps_transport_core::CloseReason>,
) -> Option<LinkFailure> {
    match item {
        Ok(Some(_)) => None,
        Ok(None) => Some(LinkFailure::Closed(close.unwrap_or_else(|| {
            bitcraps_transport_core::CloseReason::Remote("closed".into())
        }))),
        Err(e) => Some(LinkFailure::Failed(e)),
    }
}
