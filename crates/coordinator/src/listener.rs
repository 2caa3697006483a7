//! The accept loop of one listener: admits each authenticated connection against the
//! coordinator-level limits (per peer and total, across transports) and attaches it to its
//! peer's actor. Refused attempts become typed `InboundRefused` events; the loop keeps serving.

use std::sync::Arc;

use bitcraps_transport_core::policy::Direction;
use bitcraps_transport_core::{Connection, Inbound, Listener, TransportAddress};
use tokio::sync::oneshot;

use crate::error::CoordinatorError;
use crate::event::CoordinatorEvent;
use crate::peer::Ctl;
use crate::Shared;

pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    mut listener: Box<dyn Listener>,
    transport: usize,
    id: u64,
    mut stop: oneshot::Receiver<()>,
) {
    let local = listener.local_addr().clone();
    shared.record_listener(id, &local, listener.stats());
    loop {
        let inbound = tokio::select! {
            _ = &mut stop => break,
            inbound = listener.accept() => inbound,
        };
        shared.record_listener(id, &local, listener.stats());
        let conn = match inbound {
            Ok(Inbound::Connection(conn)) => conn,
            Ok(Inbound::Refused { remote, error }) => {
                tracing::debug!(%remote, %error, "inbound attempt refused by the listener");
                shared.transport_counters[transport].error();
                shared.events.emit(CoordinatorEvent::InboundRefused {
                    listener: local.clone(),
                    remote,
                    error: CoordinatorError::Transport(error),
                });
                continue;
            }
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "listener ended");
                break;
            }
        };
        if let Err(error) = admit_and_attach(&shared, conn, transport, Some(id)).await {
            shared.transport_counters[transport].error();
            let (remote, error) = *error;
            tracing::debug!(%remote, %error, "inbound connection refused by the coordinator");
            shared.events.emit(CoordinatorEvent::InboundRefused {
                listener: local.clone(),
                remote,
                error,
            });
        }
    }
    listener.close().await;
    shared.record_listener(id, &local, listener.stats());
}

/// Admits `conn` against the coordinator's limits and hands it to its peer's actor.
pub(crate) async fn admit_and_attach(
    shared: &Arc<Shared>,
    conn: Connection,
    transport: usize,
    listener: Option<u64>,
) -> Result<(), Box<(TransportAddress, CoordinatorError)>> {
    let peer = conn.remote_peer();
    let remote = conn.remote_addr().clone();
    let guard = match shared.limiter.admit(peer, Direction::Inbound) {
        Ok(g) => g,
        Err(rejection) => {
            shared.transport_counters[transport]
                .refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio::spawn(async move {
                let _ = conn.close("connection limit").await;
            });
            let e = CoordinatorError::Transport(rejection.into());
            return Err(Box::new((remote, e)));
        }
    };
    let mut attach = Some((conn, guard));
    // Twice at most: a peer whose actor is just stopping gets a fresh one.
    for _ in 0..2 {
        let handle = match shared.get_or_spawn(peer) {
            Ok(h) => h,
            Err(e) => return Err(Box::new((remote, e))),
        };
        let Some((conn, guard)) = attach.take() else {
            break;
        };
        let cmd = Ctl::Attach {
            conn,
            guard,
            transport,
            listener,
        };
        match handle.ctl.send(cmd).await {
            Ok(()) => return Ok(()),
            Err(tokio::sync::mpsc::error::SendError(cmd)) => {
                shared.remove_peer(&handle);
                if let Ctl::Attach { conn, guard, .. } = cmd {
                    attach = Some((conn, guard));
                }
            }
        }
    }
    Err(Box::new((remote, CoordinatorError::Disconnected(peer))))
}
