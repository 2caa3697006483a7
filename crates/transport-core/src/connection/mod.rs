//! [`Connection`]: an authenticated, message-oriented connection, split into a cloneable
//! [`ConnectionSender`] and an owned [`ConnectionReceiver`] so the two directions never contend.
//!
//! Every backend builds its connections with [`new_connection`], which returns the user's
//! `Connection` and the [`ConnectionIo`] the backend's tasks drive: a bounded queue of
//! [`SendItem`] items to put on the wire and an [`IncomingSender`] to deliver received
//! messages, whose memory is bounded by a byte budget (see [`ChannelConfig`]).

#[cfg(test)]
mod close_tests;
mod config;
mod incoming;
mod io;
mod receiver;
mod recv_queue;
#[cfg(test)]
mod send_budget_tests;

pub use config::ChannelConfig;
pub use incoming::IncomingSender;
pub use io::{ConnectionIo, ConnectionState, SendItem};
pub use receiver::ConnectionReceiver;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, SemaphorePermit};

use crate::{CloseReason, Error, PeerId, Result, TransportAddress, TransportKind};
use io::Shared;

/// Who and where a connection connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// This side's identity.
    pub local_peer: PeerId,
    /// The remote's identity, proven by the handshake.
    pub remote_peer: PeerId,
    /// This side's address.
    pub local_addr: TransportAddress,
    /// The remote's address.
    pub remote_addr: TransportAddress,
    /// The backend carrying the connection.
    pub kind: TransportKind,
    /// True if this side dialed.
    pub outbound: bool,
}

/// Counters of one connection (application messages and their payload bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Messages written to the link.
    pub messages_sent: u64,
    /// Messages `send` accepted that have not been written: while the connection is open they
    /// wait in the send queue; once it has ended (the remote closed first, the link failed, a
    /// close timed out) they were never sent, and nothing may be assumed delivered for them.
    /// A graceful [`ConnectionSender::close`] writes everything queued before it, so after one
    /// that returned `Ok` this is 0.
    pub messages_unsent: u64,
    /// Messages received from the link.
    pub messages_received: u64,
    /// Payload bytes written to the link.
    pub bytes_sent: u64,
    /// Payload bytes received from the link.
    pub bytes_received: u64,
    /// Time since the connection was established.
    pub age: Duration,
}

/// A memory connection between two fixed peers with `config`, for tests of the connection
/// halves without a backend.
#[cfg(test)]
pub(crate) fn test_connection(config: &ChannelConfig) -> (Connection, ConnectionIo) {
    let info = ConnectionInfo {
        local_peer: crate::Keypair::from_secret_bytes([1; 32]).peer_id(),
        remote_peer: crate::Keypair::from_secret_bytes([2; 32]).peer_id(),
        local_addr: crate::TransportAddress::Memory(1),
        remote_addr: crate::TransportAddress::Memory(2),
        kind: crate::TransportKind::Memory,
        outbound: true,
    };
    new_connection(info, config)
}

/// Builds a connection for a backend: the user's half and the backend's half.
pub fn new_connection(info: ConnectionInfo, config: &ChannelConfig) -> (Connection, ConnectionIo) {
    let (out_tx, out_rx) = mpsc::channel(config.send_queue.max(1));
    let shared = Arc::new(Shared::new(info, config, Instant::now()));
    let connection = Connection {
        sender: ConnectionSender {
            queue: out_tx,
            shared: shared.clone(),
        },
        receiver: ConnectionReceiver::new(shared.clone()),
    };
    let io = ConnectionIo {
        send_queue: out_rx,
        incoming: IncomingSender::new(shared.clone()),
        state: ConnectionState::new(shared),
    };
    (connection, io)
}

/// An authenticated connection to one peer.
#[derive(Debug)]
pub struct Connection {
    sender: ConnectionSender,
    receiver: ConnectionReceiver,
}

impl Connection {
    /// The remote's identity, proven by the handshake.
    pub fn remote_peer(&self) -> PeerId {
        self.sender.shared.info.remote_peer
    }

    /// The remote's address.
    pub fn remote_addr(&self) -> &TransportAddress {
        &self.sender.shared.info.remote_addr
    }

    /// Everything known about the connection's endpoints.
    pub fn info(&self) -> &ConnectionInfo {
        &self.sender.shared.info
    }

    /// Sends one message; waits while the send queue is full (backpressure).
    pub async fn send(&self, message: Bytes) -> Result<()> {
        self.sender.send(message).await
    }

    /// Receives the next message; `Ok(None)` once the connection closed cleanly.
    pub async fn recv(&mut self) -> Result<Option<Bytes>> {
        self.receiver.recv().await
    }

    /// Flushes queued messages, closes with `reason` and waits for the remote to acknowledge
    /// (at most the configured close timeout).
    pub async fn close(&self, reason: &str) -> Result<()> {
        self.sender.close(reason).await
    }

    /// The connection's counters.
    pub fn stats(&self) -> ConnectionStats {
        self.sender.stats()
    }

    /// Why the connection ended, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.sender.close_reason()
    }

    /// A new handle for sending.
    pub fn sender(&self) -> ConnectionSender {
        self.sender.clone()
    }

    /// Splits into the sending and receiving halves.
    pub fn split(self) -> (ConnectionSender, ConnectionReceiver) {
        (self.sender, self.receiver)
    }
}

/// The sending half: cheap to clone, usable from many tasks at once.
#[derive(Debug, Clone)]
pub struct ConnectionSender {
    queue: mpsc::Sender<SendItem>,
    shared: Arc<Shared>,
}

impl ConnectionSender {
    /// The remote's identity.
    pub fn remote_peer(&self) -> PeerId {
        self.shared.info.remote_peer
    }

    /// Everything known about the connection's endpoints.
    pub fn info(&self) -> &ConnectionInfo {
        &self.shared.info
    }

    /// The largest message [`ConnectionSender::send`] accepts.
    pub fn max_message_size(&self) -> usize {
        self.shared.max_message_size
    }

    /// A connection that has ended takes no more messages, even in the moment between its end
    /// and its driver dropping the queue (a `close` that returned is always followed by
    /// `Error::Closed`).
    fn check_open(&self) -> Result<()> {
        if self.shared.is_finished() {
            return Err(self.shared.closed_error());
        }
        Ok(())
    }

    fn check_size(&self, message: &Bytes) -> Result<()> {
        if message.len() > self.shared.max_message_size {
            return Err(Error::MessageTooLarge {
                len: message.len(),
                max: self.shared.max_message_size,
            });
        }
        Ok(())
    }

    /// Queues one message for sending; waits while the queue is full. A message over the
    /// maximum size fails with [`Error::MessageTooLarge`] and the connection stays usable; a
    /// message sent once a close was queued fails with [`Error::Closed`] (it is never queued
    /// behind the close and silently dropped).
    pub async fn send(&self, message: Bytes) -> Result<()> {
        self.check_size(&message)?;
        self.check_open()?;
        // Budget and queue room free now (the common case): queued without any future or
        // waiting machinery. Otherwise the boxed wait, so the future a caller builds per
        // message stays small.
        let budget = match self.budget_cost(message.len()) {
            None => None,
            Some(bytes) => match self.shared.send_budget.try_acquire_many(bytes) {
                Ok(permit) => Some(permit),
                Err(_) => return Box::pin(self.send_waiting(None, message)).await,
            },
        };
        match self.queue.try_reserve() {
            Ok(permit) => self.enqueue(permit, budget, message),
            Err(mpsc::error::TrySendError::Closed(())) => Err(self.shared.closed_error()),
            Err(mpsc::error::TrySendError::Full(())) => {
                Box::pin(self.send_waiting(Some(budget), message)).await
            }
        }
    }

    /// The slow path of [`send`](Self::send): waits for the budget (unless `budget` holds it
    /// already), then for queue room. The budget is held as a permit until the message is
    /// queued: a send cancelled while it waits gives its bytes back.
    async fn send_waiting(
        &self,
        budget: Option<Option<SemaphorePermit<'_>>>,
        message: Bytes,
    ) -> Result<()> {
        let budget = match budget {
            Some(budget) => budget,
            None => self.take_budget(message.len()).await?,
        };
        let permit = self
            .queue
            .reserve()
            .await
            .map_err(|_| self.shared.closed_error())?;
        self.enqueue(permit, budget, message)
    }

    /// The permit for `bytes` of the send budget, waiting while it is spent (the driver gives
    /// bytes back as it writes them). Fails once the driver is gone.
    async fn take_budget(&self, bytes: usize) -> Result<Option<SemaphorePermit<'_>>> {
        let Some(bytes) = self.budget_cost(bytes) else {
            return Ok(None);
        };
        if let Ok(permit) = self.shared.send_budget.try_acquire_many(bytes) {
            return Ok(Some(permit));
        }
        tokio::select! {
            permit = self.shared.send_budget.acquire_many(bytes) => permit
                .map(Some)
                .map_err(|_| self.shared.closed_error()),
            () = self.queue.closed() => Err(self.shared.closed_error()),
        }
    }

    /// What a message of `len` bytes costs of the send budget; `None` for an empty one. A
    /// message is never larger than the budget (at least one maximum message).
    fn budget_cost(&self, len: usize) -> Option<u32> {
        (len > 0).then(|| len.min(self.shared.send_budget_total) as u32)
    }

    /// Queues one message if there is room now; never waits. `Ok(false)` means the queue or
    /// the send budget is full (the message was not queued).
    pub fn try_send(&self, message: Bytes) -> Result<bool> {
        self.check_size(&message)?;
        self.check_open()?;
        let budget = match self.budget_cost(message.len()) {
            None => None,
            Some(bytes) => match self.shared.send_budget.try_acquire_many(bytes) {
                Ok(permit) => Some(permit),
                Err(_) => return Ok(false),
            },
        };
        match self.queue.try_reserve() {
            Ok(permit) => self.enqueue(permit, budget, message).map(|()| true),
            Err(mpsc::error::TrySendError::Full(())) => Ok(false),
            Err(mpsc::error::TrySendError::Closed(())) => Err(self.shared.closed_error()),
        }
    }

    /// Queues `message`; its budget now belongs to the queue until the driver writes it (and
    /// gives the bytes back through `ConnectionState::record_sent_many`).
    fn enqueue(
        &self,
        permit: mpsc::Permit<'_, SendItem>,
        budget: Option<SemaphorePermit<'_>>,
        message: Bytes,
    ) -> Result<()> {
        let closing = io::lock_read(&self.shared.close_queued);
        if *closing {
            return Err(self.shared.closed_error());
        }
        permit.send(SendItem::Message(message));
        self.shared
            .messages_accepted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(budget) = budget {
            budget.forget();
        }
        Ok(())
    }

    /// Waits until the send queue has room for at least one message of any size up to the
    /// maximum (then a [`try_send`](Self::try_send) from the only writer succeeds), or the
    /// connection ended.
    /// Cancel-safe; nothing is queued.
    pub async fn ready(&self) -> Result<()> {
        // Budget for the largest message (the budget holds at least one), handed straight
        // back: it only waits for the driver to have written enough.
        let need = self
            .shared
            .max_message_size
            .clamp(1, self.shared.send_budget_total) as u32;
        tokio::select! {
            permit = self.shared.send_budget.acquire_many(need) => {
                if permit.is_err() {
                    return Err(self.shared.closed_error());
                }
            }
            () = self.queue.closed() => return Err(self.shared.closed_error()),
        }
        match self.queue.reserve().await {
            Ok(_permit) => Ok(()),
            Err(_) => Err(self.shared.closed_error()),
        }
    }

    /// Flushes every message queued before this call, sends a close with `reason`, and waits
    /// until the remote acknowledges or the link ends, at most the configured close timeout.
    /// Closing an already-closed connection succeeds at once.
    pub async fn close(&self, reason: &str) -> Result<()> {
        if self.shared.is_finished() {
            return Ok(());
        }
        let timeout = self.shared.close_timeout;
        let first = {
            let mut closing = io::lock_write(&self.shared.close_queued);
            if !*closing {
                // Before any sender can see the flag, so its error names this close.
                self.shared
                    .set_close_reason(CloseReason::Local(reason.to_string()));
            }
            !std::mem::replace(&mut *closing, true)
        };
        if !first {
            // Another close is under way: wait for it like it does.
            let _ = tokio::time::timeout(timeout, self.shared.wait_finished()).await;
            return Ok(());
        }
        let queued = tokio::time::timeout(
            timeout,
            self.queue.send(SendItem::Close(reason.to_string())),
        );
        // Queued, or refused because the writer has already stopped (the remote closed first,
        // or the link failed) and the connection is ending: either way, wait for the end.
        if let Ok(_queued_or_writer_gone) = queued.await {
            if tokio::time::timeout(timeout, self.shared.wait_finished())
                .await
                .is_ok()
            {
                return match self.shared.failure() {
                    Some(e) => Err(e),
                    None => Ok(()),
                };
            }
        }
        self.shared.abort();
        Err(Error::Timeout {
            operation: "close",
            after: timeout,
        })
    }

    /// True once the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.is_finished()
    }

    /// Why the connection ended, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.close_reason()
    }

    /// The connection's counters.
    pub fn stats(&self) -> ConnectionStats {
        self.shared.stats()
    }

    /// Waits until the connection has ended.
    pub async fn closed(&self) {
        self.shared.wait_finished().await
    }
}
