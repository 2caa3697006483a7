//! [`ConnectionReceiver`]: the receiving half of a connection. It takes deliveries (one message,
//! or the messages of one batch record) off the connection's receive queue, gives their budget
//! back, and hands the messages out one at a time or in bursts.

use std::sync::Arc;

use bytes::Bytes;

use super::incoming::{Delivered, Delivery};
use super::io::Shared;
use crate::{CloseReason, PeerId, Result};

/// The receiving half.
#[derive(Debug)]
pub struct ConnectionReceiver {
    /// The rest of the last batch taken off the queue (its budget is already released).
    pending: std::vec::IntoIter<Bytes>,
    shared: Arc<Shared>,
}

impl Drop for ConnectionReceiver {
    fn drop(&mut self) {
        // The driver stops waiting to deliver and discards what it receives from now on.
        self.shared.recv_queue.close_receiver();
        self.shared.budget.close();
    }
}

impl ConnectionReceiver {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self {
            pending: Vec::new().into_iter(),
            shared,
        }
    }

    /// The remote's identity.
    pub fn remote_peer(&self) -> PeerId {
        self.shared.info.remote_peer
    }

    /// Takes one delivery's messages: the first is returned, the rest kept in `pending`.
    fn unpack(&mut self, delivery: Delivery) -> Option<Bytes> {
        self.shared.release_budget(delivery.cost);
        match delivery.messages {
            Delivered::One(message) => Some(message),
            Delivered::Many(mut messages) => {
                let first = messages.next();
                self.pending = messages;
                first
            }
        }
    }

    /// The end of the stream: `Ok(None)` if clean, the failure once if not.
    fn ended(&self) -> Result<Option<Bytes>> {
        match self.shared.take_failure() {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    /// Receives the next message. `Ok(None)` once the connection closed cleanly (see
    /// [`ConnectionReceiver::close_reason`]); `Err` once if it failed (a protocol violation, an
    /// I/O error, a lost link), then `Ok(None)`. Cancel-safe.
    ///
    /// On stream backends a message is a slice of the buffer it was read into (no copy), and
    /// keeps that buffer (up to 256 KiB on a busy link) alive while it lives: to keep small
    /// messages for long, copy them (`Bytes::copy_from_slice`).
    pub async fn recv(&mut self) -> Result<Option<Bytes>> {
        if let Some(message) = self.pending.next() {
            return Ok(Some(message));
        }
        loop {
            match self.shared.recv_queue.pop().await {
                Some(delivery) => {
                    if let Some(message) = self.unpack(delivery) {
                        return Ok(Some(message));
                    }
                }
                None => return self.ended(),
            }
        }
    }

    /// Receives up to `limit` messages into `out` (appended, in order), waiting only for the
    /// first: a few queue operations for a whole burst. Returns how many were added; `Ok(0)`
    /// (with `limit > 0`) once the connection closed cleanly, `Err` once if it failed, as
    /// [`ConnectionReceiver::recv`]. Cancel-safe.
    pub async fn recv_many(&mut self, out: &mut Vec<Bytes>, limit: usize) -> Result<usize> {
        if limit == 0 {
            return Ok(0);
        }
        let before = out.len();
        if self.pending.len() == 0 {
            match self.recv().await? {
                Some(first) => out.push(first),
                None => return Ok(0),
            }
        }
        loop {
            let room = limit - (out.len() - before);
            out.extend(self.pending.by_ref().take(room));
            if out.len() - before >= limit {
                break;
            }
            match self.shared.recv_queue.try_pop() {
                Ok(delivery) => {
                    if let Some(message) = self.unpack(delivery) {
                        out.push(message);
                    }
                }
                Err(_) => break,
            }
        }
        Ok(out.len() - before)
    }

    /// Why the connection ended, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.close_reason()
    }
}
