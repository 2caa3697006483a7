//! The accept loop of one listener: admits each authenticated connection against the
//! coordinator-level limits (per peer and total, across transports) and attaches it to its
//! peer's actor. Refused attempts become `Error` events; the loop keeps serving.

use std::sync::Arc;

use bitcraps_transport_core::policy::Direction;
use bitcraps_transport_core::{Inbound, Listener};
use tokio::sync::oneshot;

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
    loop {
        let inbound = tokio::select! {
            _ = &mut stop => break,
            inbound = listener.accept() => inbound,
        };
        let conn = match inbound {
            Ok(Inbound::Connection(conn)) => conn,
            Ok(Inbound::Refused { remote, error }) => {
                shared.transport_counters[transport].error();
                shared.events.emit(CoordinatorEvent::Error {
                    peer: None,
                    error: format!("inbound from {remote} refused: {error}"),
                });
                continue;
            }
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "listener ended");
                break;
            }
        };
        let peer = conn.remote_peer();
        let guard = match shared.limiter.admit(peer, Direction::Inbound) {
            Ok(g) => g,
            Err(rejection) => {
                shared.transport_counters[transport].error();
                shared.events.emit(CoordinatorEvent::Error {
                    peer: Some(peer),
                    error: format!("inbound connection refused by the coordinator: {rejection}"),
                });
                tokio::spawn(async move {
                    let _ = conn.close("connection limit").await;
                });
                continue;
            }
        };
        let mut attach = Some((conn, guard));
        // Twice at most: a peer whose actor is just stopping gets a fresh one.
        for _ in 0..2 {
            let handle = match shared.get_or_spawn(peer) {
                Ok(h) => h,
                Err(e) => {
                    shared.events.emit(CoordinatorEvent::Error {
                        peer: Some(peer),
                        error: format!("inbound connection dropped: {e}"),
                    });
                    break;
                }
            };
            let Some((conn, guard)) = attach.take() else {
                break;
            };
            let cmd = Ctl::Attach {
                conn,
                guard,
                transport,
                listener: Some(id),
            };
            match handle.ctl.send(cmd).await {
                Ok(()) => break,
                Err(tokio::sync::mpsc::error::SendError(cmd)) => {
                    shared.remove_peer(&handle);
                    if let Ctl::Attach { conn, guard, .. } = cmd {
                        attach = Some((conn, guard));
                    }
                }
            }
        }
    }
    listener.close().await;
}
