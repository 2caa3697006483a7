//! The connections of one peer as its actor holds them: writing transport messages (with a
//! stash while a connection's queue is full, and a wait for room), dialing routes, and closing
//! connections in the background (a farewell, then a graceful close, bounded).

use std::time::{Duration, Instant};

use bitcraps_transport_core::policy::Direction;
use std::collections::VecDeque;

use bitcraps_transport_core::{
    AdmissionGuard, Bytes, ConnectionSender, Error as CoreError, TransportAddress,
};
use futures::FutureExt;

use super::actor::view;
use super::io::Io;
use crate::machine::{DialId, LinkFailure, LinkId};

/// How long a farewell and close of one connection may take in the background.
pub(super) const CLOSE_BUDGET: Duration = Duration::from_secs(5);

/// One connection: its sender, what waits for room in its queue, and where it came from.
pub(super) struct LinkIo {
    pub(super) sender: ConnectionSender,
    pub(super) stash: VecDeque<Bytes>,
    pub(super) transport: usize,
    pub(super) listener: Option<u64>,
    pub(super) _guard: AdmissionGuard,
    /// The connection's span (`conn`: link id, transport, remote address).
    pub(super) span: tracing::Span,
}

impl Io {
    pub(super) fn write(&mut self, link: LinkId, frame: Bytes, now: Instant) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        let len = frame.len();
        if !l.stash.is_empty() {
            l.stash.push_back(frame);
            return;
        }
        match l.sender.try_send(frame.clone()) {
            Ok(true) => {
                self.handle.counters.sent(len);
                self.shared.transport_counters[l.transport].sent(len);
            }
            Ok(false) => {
                l.stash.push_back(frame);
                let sender = l.sender.clone();
                self.ready
                    .push(async move { (link, sender.ready().await.is_ok()) }.boxed());
                self.machine.set_blocked(link, true);
            }
            Err(e) => self.machine.link_lost(link, LinkFailure::Failed(e), now),
        }
    }

    pub(crate) fn on_ready(&mut self, link: LinkId, ready: bool, now: Instant) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        if !ready {
            let e = CoreError::Closed(l.sender.close_reason().unwrap_or_else(|| {
                bitcraps_transport_core::CloseReason::Failed("send queue closed".into())
            }));
            return self.machine.link_lost(link, LinkFailure::Failed(e), now);
        }
        while let Some(frame) = l.stash.pop_front() {
            let len = frame.len();
            match l.sender.try_send(frame.clone()) {
                Ok(true) => {
                    self.handle.counters.sent(len);
                    self.shared.transport_counters[l.transport].sent(len);
                }
                Ok(false) => {
                    l.stash.push_front(frame);
                    let sender = l.sender.clone();
                    self.ready
                        .push(async move { (link, sender.ready().await.is_ok()) }.boxed());
                    return;
                }
                Err(e) => return self.machine.link_lost(link, LinkFailure::Failed(e), now),
            }
        }
        self.machine.set_blocked(link, false);
    }

    pub(super) fn dial(&mut self, dial: DialId, address: TransportAddress) {
        let Some(transport) = self.shared.transport_for(&address) else {
            let e = CoreError::Unsupported(address);
            self.dials.push(async move { (dial, 0, Err(e)) }.boxed());
            return;
        };
        let t = self.shared.transports[transport].clone();
        let peer = self.handle.peer;
        let timeout = self.shared.config.dial_timeout;
        let limiter = self.shared.limiter.clone();
        let fut = async move {
            let result = match tokio::time::timeout(timeout, t.dial(&address, Some(peer))).await {
                Err(_) => Err(CoreError::Timeout {
                    operation: "dial",
                    after: timeout,
                }),
                Ok(Err(e)) => Err(e),
                Ok(Ok(conn)) => match limiter.admit(peer, Direction::Outbound) {
                    Ok(guard) => Ok((conn, guard)),
                    Err(rejection) => {
                        tokio::spawn(async move {
                            let _ = conn.close("coordinator connection limit").await;
                        });
                        Err(CoreError::Limit(rejection))
                    }
                },
            };
            (dial, transport, result)
        };
        self.dials.push(fut.boxed());
    }

    pub(super) fn close(&mut self, link: LinkId, farewell: Vec<Bytes>, reason: &'static str) {
        let Some(l) = self.links.remove(&link) else {
            return;
        };
        self.shared.transport_counters[l.transport].connection_closed();
        self.handle.set_view(view(self.handle.peer, &self.machine));
        let LinkIo {
            sender,
            stash,
            span,
            ..
        } = l;
        span.in_scope(|| tracing::debug!(reason, "closing connection"));
        let remote = sender.info().remote_addr.clone();
        let task = tokio::spawn(tracing::Instrument::instrument(
            async move {
                let work = async {
                    for frame in stash.into_iter().chain(farewell) {
                        sender.send(frame).await?;
                    }
                    sender.close(reason).await
                };
                match tokio::time::timeout(CLOSE_BUDGET, work).await {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some((remote, e)),
                    Err(_) => Some((
                        remote,
                        CoreError::Timeout {
                            operation: "close",
                            after: CLOSE_BUDGET,
                        },
                    )),
                }
            },
            span,
        ));
        if self.machine.is_ended() {
            self.closing.push(task);
        }
    }
}
