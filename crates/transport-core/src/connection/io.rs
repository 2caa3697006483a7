//! The backend's half of a connection: the queues its tasks drive and the shared state they
//! report into. Nothing here is locked on the data path: messages move through bounded queues,
//! counters are atomics, and the state flags are atomic bits with a `Notify` to wait on them.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{mpsc, Notify, Semaphore};

use super::incoming::{Delivery, IncomingSender};
use super::recv_queue::RecvQueue;
use super::{ChannelConfig, ConnectionInfo, ConnectionStats};
use crate::{CloseReason, Error};

/// What the backend's writer takes off the send queue.
#[derive(Debug)]
pub enum SendItem {
    /// An application message.
    Message(Bytes),
    /// Flush what came before, send a close with this reason, and stop writing.
    Close(String),
}

const REMOTE_CLOSED: u8 = 1;
const FINISHED: u8 = 2;
const ABORT: u8 = 4;
const LOCAL_CLOSING: u8 = 8;
const READER_DONE: u8 = 16;

pub(crate) struct Shared {
    pub(crate) info: ConnectionInfo,
    pub(crate) max_message_size: usize,
    pub(crate) close_timeout: std::time::Duration,
    created: Instant,
    pub(super) messages_accepted: AtomicU64,
    messages_sent: AtomicU64,
    pub(super) messages_received: AtomicU64,
    bytes_sent: AtomicU64,
    pub(super) bytes_received: AtomicU64,
    /// The state flags (the data path checks them per message, without a lock).
    flag_bits: AtomicU8,
    /// Woken (all waiters) whenever a flag is newly set. A `Notify` rather than a `watch`
    /// channel: no allocation of its own, and a waiter is a fraction of a `watch` waiter's size
    /// (the connection task waits on flags in both directions at once).
    flag_set: Notify,
    close_reason: Mutex<Option<CloseReason>>,
    failure: Mutex<Option<Error>>,
    failure_taken: AtomicBool,
    /// True once a close was queued: senders enqueue under the read lock and `close` sets it
    /// under the write lock, so no message can be queued behind the close.
    pub(crate) close_queued: RwLock<bool>,
    /// Received deliveries waiting for the application.
    pub(super) recv_queue: RecvQueue<Delivery>,
    /// Received payload bytes the application may have queued; closed when the receiver goes.
    pub(super) budget: Semaphore,
    pub(super) budget_total: usize,
    /// Payload bytes queued for sending: taken by senders, given back as the driver writes
    /// (see [`ConnectionState::record_sent_many`]).
    pub(super) send_budget: Semaphore,
    pub(super) send_budget_total: usize,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("remote_peer", &self.info.remote_peer)
            .field("remote_addr", &self.info.remote_addr)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn lock_read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn lock_write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub(crate) fn new(info: ConnectionInfo, config: &ChannelConfig, now: Instant) -> Self {
        let budget_total = config.effective_recv_budget();
        let send_budget_total = config.effective_send_budget();
        Self {
            info,
            max_message_size: config.max_message_size,
            close_timeout: config.close_timeout,
            created: now,
            messages_accepted: AtomicU64::new(0),
            messages_sent: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            flag_bits: AtomicU8::new(0),
            flag_set: Notify::new(),
            close_reason: Mutex::new(None),
            failure: Mutex::new(None),
            failure_taken: AtomicBool::new(false),
            close_queued: RwLock::new(false),
            recv_queue: RecvQueue::new(config.recv_queue),
            budget: Semaphore::new(budget_total),
            budget_total,
            send_budget: Semaphore::new(send_budget_total),
            send_budget_total,
        }
    }

    pub(super) fn cost(&self, len: usize) -> u32 {
        len.clamp(1, self.budget_total) as u32
    }

    pub(crate) fn release_budget(&self, cost: u32) {
        self.budget.add_permits(cost as usize);
    }

    fn set_flag(&self, flag: u8) {
        if self.flag_bits.fetch_or(flag, Ordering::AcqRel) & flag == 0 {
            self.flag_set.notify_waiters();
        }
    }

    fn has_flag(&self, flag: u8) -> bool {
        self.flag_bits.load(Ordering::Acquire) & flag != 0
    }

    /// Waits until any of the bits of `flags` is set; returns the flags then.
    async fn wait_flag(&self, flags: u8) -> u8 {
        loop {
            // A `Notified` sees every `notify_waiters` from its creation on, so a flag set
            // between this and the check below still wakes it.
            let set = self.flag_set.notified();
            let bits = self.flag_bits.load(Ordering::Acquire);
            if bits & flags != 0 {
                return bits;
            }
            set.await;
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.has_flag(FINISHED)
    }

    pub(crate) async fn wait_finished(&self) {
        self.wait_flag(FINISHED).await;
    }

    pub(crate) fn abort(&self) {
        self.set_close_reason(CloseReason::Failed(
            "aborted after the close timeout".into(),
        ));
        self.set_flag(ABORT);
    }

    pub(crate) fn set_close_reason(&self, reason: CloseReason) {
        let mut slot = lock(&self.close_reason);
        if slot.is_none() {
            *slot = Some(reason);
        }
    }

    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        lock(&self.close_reason).clone()
    }

    pub(crate) fn failure(&self) -> Option<Error> {
        lock(&self.failure).clone()
    }

    pub(crate) fn take_failure(&self) -> Option<Error> {
        if self.failure_taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        self.failure()
    }

    pub(crate) fn closed_error(&self) -> Error {
        Error::Closed(
            self.close_reason()
                .unwrap_or_else(|| CloseReason::Local("connection dropped".into())),
        )
    }

    pub(crate) fn stats(&self) -> ConnectionStats {
        let sent = self.messages_sent.load(Ordering::Relaxed);
        ConnectionStats {
            messages_sent: sent,
            messages_unsent: self
                .messages_accepted
                .load(Ordering::Relaxed)
                .saturating_sub(sent),
            messages_received: self.messages_received.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            age: self.created.elapsed(),
        }
    }
}

/// Everything a backend's tasks need to drive one connection.
#[derive(Debug)]
pub struct ConnectionIo {
    /// Items to write, in order. `None` from `recv` means every sender was dropped: close
    /// gracefully.
    pub send_queue: mpsc::Receiver<SendItem>,
    /// Where received messages go.
    pub incoming: IncomingSender,
    /// State and counters shared with the user's handles.
    pub state: ConnectionState,
}

/// The backend's view of a connection's shared state.
#[derive(Debug, Clone)]
pub struct ConnectionState {
    shared: std::sync::Arc<Shared>,
}

impl ConnectionState {
    pub(crate) fn new(shared: std::sync::Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The connection's endpoints.
    pub fn info(&self) -> &ConnectionInfo {
        &self.shared.info
    }

    /// The receive budget: payload bytes received and not yet taken by the application, at most
    /// (what the reader may have delivered ahead of the application).
    pub fn recv_budget(&self) -> usize {
        self.shared.budget_total
    }

    /// The largest application message allowed.
    pub fn max_message_size(&self) -> usize {
        self.shared.max_message_size
    }

    /// Counts one message written to the link.
    pub fn record_sent(&self, bytes: usize) {
        self.record_sent_many(1, bytes);
    }

    /// Counts `messages` messages of `bytes` payload bytes in all written to the link, and
    /// gives their bytes back to the send budget. Every driver calls it (or
    /// [`record_sent`](Self::record_sent)) for each message it takes off the queue and writes.
    pub fn record_sent_many(&self, messages: u64, bytes: usize) {
        self.shared
            .send_budget
            .add_permits(bytes.min(self.shared.send_budget_total));
        self.shared
            .messages_sent
            .fetch_add(messages, Ordering::Relaxed);
        self.shared
            .bytes_sent
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// The remote closed with `reason`: the writer should answer with its own close.
    pub fn remote_closed(&self, reason: String) {
        self.shared.set_close_reason(CloseReason::Remote(reason));
        self.shared.set_flag(REMOTE_CLOSED);
    }

    /// True once the remote closed.
    pub fn is_remote_closed(&self) -> bool {
        self.shared.has_flag(REMOTE_CLOSED)
    }

    /// Waits until the remote closes.
    pub async fn wait_remote_closed(&self) {
        self.shared.wait_flag(REMOTE_CLOSED).await;
    }

    /// Waits until the connection is aborted or the remote closes, whichever comes first (one
    /// waiter for both, for a writer that stops on either); true if it was aborted.
    pub async fn wait_aborted_or_remote_closed(&self) -> bool {
        self.shared.wait_flag(ABORT | REMOTE_CLOSED).await & ABORT != 0
    }

    /// This side started closing: the reader discards further data.
    pub fn set_local_closing(&self, reason: &str) {
        self.shared
            .set_close_reason(CloseReason::Local(reason.to_string()));
        self.shared.set_flag(LOCAL_CLOSING);
    }

    /// True once this side started closing.
    pub fn is_local_closing(&self) -> bool {
        self.shared.has_flag(LOCAL_CLOSING)
    }

    /// The connection failed with `error`: recorded for the application's next `recv`.
    pub fn fail(&self, error: Error) {
        self.shared
            .set_close_reason(CloseReason::Failed(error.to_string()));
        let mut slot = lock(&self.shared.failure);
        if slot.is_none() {
            *slot = Some(error);
        }
    }

    /// The link is fully done (both directions); wakes `close` and `closed`.
    pub fn finish(&self) {
        self.shared
            .set_close_reason(CloseReason::Failed("link ended".into()));
        self.shared.set_flag(FINISHED);
    }

    /// True once the connection was aborted (close timed out); the tasks should stop.
    pub fn is_aborted(&self) -> bool {
        self.shared.has_flag(ABORT)
    }

    /// Waits until the connection is aborted.
    pub async fn wait_aborted(&self) {
        self.shared.wait_flag(ABORT).await;
    }

    /// Tells the other direction to stop at once (after a failure recorded with `fail`).
    pub fn abort(&self) {
        self.shared.set_flag(ABORT);
    }

    /// The receiving direction ended, with `failure` if it failed: the failure is recorded for
    /// the application, the other direction is told to stop, then the reader is marked done.
    pub fn end_reading(&self, failure: Option<Error>) {
        if let Some(error) = failure {
            tracing::debug!(peer = %self.info().remote_peer.short(), %error, "connection failed");
            self.fail(error);
            self.abort();
        }
        self.set_reader_done();
    }

    /// The receiving direction is done.
    pub fn set_reader_done(&self) {
        self.shared.set_flag(READER_DONE);
    }

    /// Waits until the receiving direction is done.
    pub async fn wait_reader_done(&self) {
        self.shared.wait_flag(READER_DONE).await;
    }

    /// How long a close may take.
    pub fn close_timeout(&self) -> std::time::Duration {
        self.shared.close_timeout
    }
}
