//! The receive queue between a connection's driver and its [`ConnectionReceiver`]: bounded,
//! multi-producer, single-consumer, and lazy about memory. It lives inside the connection's
//! shared state, allocates nothing until the first delivery and gives its storage back when
//! it runs dry, so an idle connection pays a few words for it (a tokio `mpsc` channel keeps a
//! block of 32 slots, about 1.5 KiB, plus its own shared allocation, from creation on).
//!
//! Room is a semaphore of `capacity` slots (a sender takes one before it pushes, the receiver
//! gives it back when it pops), arrival is a [`Notify`] (its stored permit means a push between
//! the receiver's check and its wait is never missed), and the ends are tracked by a sender
//! count and a receiver flag.
//!
//! [`ConnectionReceiver`]: super::ConnectionReceiver

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use tokio::sync::{Notify, Semaphore};

/// A queue that ran dry gives back storage beyond this many slots.
const KEEP_SLOTS: usize = 4;

/// The queue's shared state.
#[derive(Debug)]
pub(crate) struct RecvQueue<T> {
    state: Mutex<State<T>>,
    /// Free slots.
    room: Semaphore,
    /// Something was pushed, or the last sender left.
    arrived: Notify,
    /// The receiver is gone: pushes fail.
    receiver_gone: AtomicBool,
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    senders: usize,
}

/// Why [`RecvQueue::try_push`] queued nothing (the item is given back).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TryPush<T> {
    /// No room now.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

/// Why [`RecvQueue::try_pop`] found nothing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Empty {
    /// Nothing queued now.
    Now,
    /// Nothing queued and every sender is gone: nothing ever will be.
    Ended,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<T> RecvQueue<T> {
    /// A queue of `capacity` items (at least one) with one sender registered.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                senders: 1,
            }),
            room: Semaphore::new(capacity.max(1)),
            arrived: Notify::new(),
            receiver_gone: AtomicBool::new(false),
        }
    }

    /// Registers one more sender (a clone of a sender handle).
    pub(crate) fn add_sender(&self) {
        lock(&self.state).senders += 1;
    }

    /// Unregisters a sender; the last one ends the queue once it is drained.
    pub(crate) fn remove_sender(&self) {
        let last = {
            let mut state = lock(&self.state);
            state.senders -= 1;
            state.senders == 0
        };
        if last {
            self.arrived.notify_one();
        }
    }

    /// True once the receiver is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.receiver_gone.load(Ordering::Acquire)
    }

    /// Pushes `item` if there is room now; never waits. Gives the item back with why not.
    pub(crate) fn try_push(&self, item: T) -> Result<(), TryPush<T>> {
        match self.room.try_acquire() {
            Ok(permit) => self.put(permit, item).map_err(TryPush::Closed),
            Err(tokio::sync::TryAcquireError::NoPermits) => Err(TryPush::Full(item)),
            Err(tokio::sync::TryAcquireError::Closed) => Err(TryPush::Closed(item)),
        }
    }

    /// Pushes `item`, waiting while the queue is full. Gives the item back if the receiver is
    /// gone. Cancel-safe: a push cancelled while waiting for room queued nothing.
    pub(crate) async fn push(&self, item: T) -> Result<(), T> {
        let permit = match self.room.try_acquire() {
            Ok(permit) => permit,
            Err(_) => match self.room.acquire().await {
                Ok(permit) => permit,
                Err(_) => return Err(item),
            },
        };
        self.put(permit, item)
    }

    /// Queues `item` in the slot `permit` holds.
    fn put(&self, permit: tokio::sync::SemaphorePermit<'_>, item: T) -> Result<(), T> {
        {
            let mut state = lock(&self.state);
            if self.is_closed() {
                return Err(item);
            }
            state.items.push_back(item);
        }
        // The slot now belongs to the item; the receiver gives it back when it pops it.
        permit.forget();
        self.arrived.notify_one();
        Ok(())
    }

    /// Takes the oldest item if there is one.
    pub(crate) fn try_pop(&self) -> Result<T, Empty> {
        let mut state = lock(&self.state);
        match state.items.pop_front() {
            Some(item) => {
                if state.items.is_empty() && state.items.capacity() > KEEP_SLOTS {
                    state.items = VecDeque::new();
                }
                drop(state);
                self.room.add_permits(1);
                Ok(item)
            }
            None if state.senders == 0 => Err(Empty::Ended),
            None => Err(Empty::Now),
        }
    }

    /// Takes the oldest item, waiting for one; `None` once every sender is gone and the queue
    /// is drained. Only the single receiver calls it. Cancel-safe.
    pub(crate) async fn pop(&self) -> Option<T> {
        loop {
            // Registered before the check, so a push right after it is not missed (and the
            // `Notify` permit covers a push before it).
            let arrived = self.arrived.notified();
            match self.try_pop() {
                Ok(item) => return Some(item),
                Err(Empty::Ended) => return None,
                Err(Empty::Now) => arrived.await,
            }
        }
    }

    /// The receiver is gone: waiting and later pushes fail, queued items are dropped.
    pub(crate) fn close_receiver(&self) {
        self.receiver_gone.store(true, Ordering::Release);
        self.room.close();
        let items = std::mem::take(&mut lock(&self.state).items);
        drop(items);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn items_arrive_in_order_and_the_end_follows_the_last_sender() {
        let q = RecvQueue::new(2);
        q.add_sender();
        q.push(1).await.unwrap();
        q.push(2).await.unwrap();
        assert_eq!(q.pop().await, Some(1));
        q.remove_sender();
        assert_eq!(q.try_pop(), Ok(2));
        assert_eq!(q.try_pop(), Err(Empty::Now));
        q.remove_sender();
        assert_eq!(q.pop().await, None);
        assert_eq!(q.try_pop(), Err(Empty::Ended));
    }

    #[tokio::test]
    async fn a_full_queue_holds_the_sender_until_the_receiver_pops() {
        let q = std::sync::Arc::new(RecvQueue::new(1));
        q.push(1).await.unwrap();
        assert_eq!(q.try_push(2), Err(TryPush::Full(2)));
        let pushing = tokio::spawn({
            let q = q.clone();
            async move { q.push(2).await }
        });
        // Runs the push until it waits for room (the runtime is single-threaded).
        tokio::task::yield_now().await;
        assert!(!pushing.is_finished());
        assert_eq!(q.pop().await, Some(1));
        pushing.await.unwrap().unwrap();
        assert_eq!(q.pop().await, Some(2));
    }

    #[tokio::test]
    async fn a_gone_receiver_fails_waiting_and_later_pushes_and_frees_the_queue() {
        let q = std::sync::Arc::new(RecvQueue::new(1));
        q.push(1).await.unwrap();
        let pushing = tokio::spawn({
            let q = q.clone();
            async move { q.push(2).await }
        });
        tokio::task::yield_now().await;
        q.close_receiver();
        assert!(q.is_closed());
        assert_eq!(pushing.await.unwrap(), Err(2));
        assert_eq!(q.push(3).await, Err(3));
        assert_eq!(q.try_push(4), Err(TryPush::Closed(4)));
        assert_eq!(lock(&q.state).items.capacity(), 0);
    }

    #[tokio::test]
    async fn a_drained_queue_gives_its_storage_back() {
        let q = RecvQueue::new(64);
        for i in 0..64 {
            q.push(i).await.unwrap();
        }
        for i in 0..64 {
            assert_eq!(q.try_pop(), Ok(i));
        }
        assert!(lock(&q.state).items.capacity() <= KEEP_SLOTS);
        // Every slot is free again.
        for i in 0..64 {
            q.push(i).await.unwrap();
        }
    }
}
