//! The receive path's backend half: [`IncomingSender`] puts received messages on the
//! application's queue, one item per message or per batch record, each charged once against the
//! connection's byte budget.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::io::Shared;

/// What travels on the receive queue: one message, or the messages of one batch record, with
/// the budget they were charged.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) messages: Delivered,
    pub(crate) cost: u32,
}

/// The messages of one [`Delivery`].
#[derive(Debug)]
pub(crate) enum Delivered {
    One(Bytes),
    Many(std::vec::IntoIter<Bytes>),
}

/// Delivers received messages to the application, holding the link back (backpressure) while
/// the application's byte budget or queue is full.
#[derive(Debug, Clone)]
pub struct IncomingSender {
    tx: mpsc::Sender<Delivery>,
    shared: std::sync::Arc<Shared>,
}

impl IncomingSender {
    pub(crate) fn new(tx: mpsc::Sender<Delivery>, shared: std::sync::Arc<Shared>) -> Self {
        Self { tx, shared }
    }

    /// Delivers one message, counting it. Waits for budget and queue room. Returns false if
    /// the application dropped its receiver (the message is discarded; keep reading so a close
    /// is still seen).
    pub async fn deliver(&self, message: Bytes) -> bool {
        let len = message.len();
        let cost = self.shared.cost(len);
        self.push(Delivered::One(message), 1, len, cost).await
    }

    /// Delivers `messages` in order as one queue item: one budget acquisition and one queue
    /// operation for all of them. Same contract as [`IncomingSender::deliver`].
    pub async fn deliver_many(&self, messages: Vec<Bytes>) -> bool {
        match messages.len() {
            0 => return !self.tx.is_closed(),
            1 => {
                let Some(message) = messages.into_iter().next() else {
                    return false;
                };
                return self.deliver(message).await;
            }
            _ => {}
        }
        let len: usize = messages.iter().map(Bytes::len).sum();
        let cost: u64 = messages
            .iter()
            .map(|m| u64::from(self.shared.cost(m.len())))
            .sum();
        let cost = cost.min(self.shared.budget_total as u64) as u32;
        let count = messages.len() as u64;
        self.push(Delivered::Many(messages.into_iter()), count, len, cost)
            .await
    }

    async fn push(&self, messages: Delivered, count: u64, len: usize, cost: u32) -> bool {
        self.shared
            .messages_received
            .fetch_add(count, Ordering::Relaxed);
        self.shared
            .bytes_received
            .fetch_add(len as u64, Ordering::Relaxed);
        // Fast path: budget free now, no waiting machinery.
        match self.shared.budget.try_acquire_many(cost) {
            Ok(p) => p.forget(),
            Err(tokio::sync::TryAcquireError::Closed) => return false,
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                let permit = tokio::select! {
                    permit = self.shared.budget.acquire_many(cost) => permit,
                    _ = self.tx.closed() => return false,
                };
                match permit {
                    Ok(p) => p.forget(),
                    Err(_) => return false,
                }
            }
        }
        self.tx.send(Delivery { messages, cost }).await.is_ok()
    }

    /// True once the application dropped its receiver.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}
