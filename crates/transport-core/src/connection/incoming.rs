//! The receive path's backend half: [`IncomingSender`] puts received messages on the
//! application's queue (a [`RecvQueue`](super::recv_queue::RecvQueue) in the shared state), one
//! item per message or per batch record, each charged once against the connection's byte budget.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::io::Shared;
use super::recv_queue::TryPush;

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

/// A delivery waiting for budget or room.
type Waiting<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>>;

/// Delivers received messages to the application, holding the link back (backpressure) while
/// the application's byte budget or queue is full.
#[derive(Debug)]
pub struct IncomingSender {
    shared: std::sync::Arc<Shared>,
}

impl Clone for IncomingSender {
    fn clone(&self) -> Self {
        self.shared.recv_queue.add_sender();
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for IncomingSender {
    fn drop(&mut self) {
        self.shared.recv_queue.remove_sender();
    }
}

impl IncomingSender {
    /// The first sender of a connection (the queue starts with one registered).
    pub(crate) fn new(shared: std::sync::Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Delivers one message, counting it. Waits for budget and queue room. Returns false if
    /// the application dropped its receiver (the message is discarded; keep reading so a close
    /// is still seen).
    pub async fn deliver(&self, message: Bytes) -> bool {
        let len = message.len();
        let cost = self.shared.cost(len);
        match self.push(Delivered::One(message), 1, len, cost) {
            Ok(delivered) => delivered,
            Err(waiting) => waiting.await,
        }
    }

    /// Delivers `messages` in order as one queue item: one budget acquisition and one queue
    /// operation for all of them. Same contract as [`IncomingSender::deliver`].
    pub async fn deliver_many(&self, messages: Vec<Bytes>) -> bool {
        match messages.len() {
            0 => return !self.is_closed(),
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
        match self.push(Delivered::Many(messages.into_iter()), count, len, cost) {
            Ok(delivered) => delivered,
            Err(waiting) => waiting.await,
        }
    }

    /// Queues the delivery now if budget and room are free (`Ok`: whether it was queued), or
    /// returns the wait for them. The wait is boxed, so the reader's future (part of every
    /// connection's task, idle or not) stays small and only a link held back by the application
    /// pays for it.
    fn push(
        &self,
        messages: Delivered,
        count: u64,
        len: usize,
        cost: u32,
    ) -> Result<bool, Waiting<'_>> {
        self.shared
            .messages_received
            .fetch_add(count, Ordering::Relaxed);
        self.shared
            .bytes_received
            .fetch_add(len as u64, Ordering::Relaxed);
        let delivery = Delivery { messages, cost };
        match self.shared.budget.try_acquire_many(cost) {
            Ok(budget) => {
                budget.forget();
                match self.shared.recv_queue.try_push(delivery) {
                    Ok(()) => Ok(true),
                    Err(TryPush::Closed(_)) => Ok(false),
                    Err(TryPush::Full(delivery)) => Err(Box::pin(async move {
                        self.shared.recv_queue.push(delivery).await.is_ok()
                    })),
                }
            }
            Err(tokio::sync::TryAcquireError::Closed) => Ok(false),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                Err(Box::pin(self.push_waiting(delivery)))
            }
        }
    }

    /// Waits for budget (closed when the receiver goes), then for room.
    async fn push_waiting(&self, delivery: Delivery) -> bool {
        match self.shared.budget.acquire_many(delivery.cost).await {
            Ok(budget) => budget.forget(),
            Err(_) => return false,
        }
        self.shared.recv_queue.push(delivery).await.is_ok()
    }

    /// True once the application dropped its receiver.
    pub fn is_closed(&self) -> bool {
        self.shared.recv_queue.is_closed()
    }
}
