//! Building transport messages: what each connection owes (a `HELLO`, `PONG`s, a `PING`, a
//! `CLOSE`), acknowledgements, and data on the active connection, coalesced into one transport
//! message up to the coalescing limit. A payload over the inline limit, on a connection that
//! promises order, goes as a `DATA_NEXT` header closing one transport message and the payload
//! itself as the next one, so it is never copied.

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::links::Link;
use super::{PeerMachine, Phase};
use crate::envelope::{
    FrameBuilder, Hello, DATA_HEADER, FLAG_NEED_HELLO, FLAG_RESUMED, TYPE_PING, TYPE_PONG,
};

impl PeerMachine {
    /// The next transport message to write, and the connection to write it on. Call it until
    /// it returns `None`; after [`set_blocked`](Self::set_blocked) a connection gets nothing.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<(super::LinkId, Bytes)> {
        if self.phase != Phase::Running {
            return None;
        }
        // The active connection first, then the others (control envelopes only).
        let mut order = self.links.ids();
        if let Some(a) = self.active {
            order.retain(|&id| id != a);
            order.insert(0, a);
        }
        let ack_link = self.ack_link();
        for id in order {
            if let Some(frame) = self.build(id, ack_link == Some(id), now) {
                return Some((id, frame));
            }
        }
        None
    }

    /// The connection acknowledgements go on: the active one, else one whose `HELLO` came.
    pub(super) fn ack_link(&self) -> Option<super::LinkId> {
        self.active
            .or_else(|| self.links.iter().find(|l| l.hello_received).map(|l| l.id))
    }

    fn hello_for(&self, link: &Link) -> Hello {
        let mut flags = 0;
        if link.resumed_at_open {
            flags |= FLAG_RESUMED;
        }
        if !link.hello_received {
            flags |= FLAG_NEED_HELLO;
        }
        Hello {
            flags,
            session: self.session,
            window_messages: self.config.recv_window,
            window_bytes: self.config.recv_window_bytes,
            your_session: self.inbox.session().unwrap_or(0),
            lanes: [self.inbox.state(0), self.inbox.state(1)],
        }
    }

    fn build(&mut self, id: super::LinkId, carries_acks: bool, now: Instant) -> Option<Bytes> {
        let active = self.active == Some(id);
        let limit = self.config.coalesce_limit;
        let inline_limit = self.config.inline_limit;
        let link = self.links.get(id)?;
        if link.blocked {
            return None;
        }
        let link_max = link.info.max_message;
        let limit = limit.min(link_max).max(DATA_HEADER + 1);
        let hello = link.hello_due.then(|| self.hello_for(link));
        let link = self.links.get_mut(id)?;
        if let Some(p) = link.pending_payload.take() {
            return Some(p);
        }
        let mut f = FrameBuilder::new(std::mem::take(&mut self.buf), limit);
        if let Some(h) = hello {
            if f.hello(&h) {
                link.hello_due = false;
            }
        }
        if let Some(code) = link.close_due {
            if f.close(code) {
                link.close_due = None;
            }
        }
        while let Some(&nonce) = link.pongs_due.front() {
            if !f.probe(TYPE_PONG, nonce) {
                break;
            }
            link.pongs_due.pop_front();
        }
        if let Some(nonce) = link.ping_due {
            if f.probe(TYPE_PING, nonce) {
                link.ping_due = None;
            }
        }
        let (reliable, hello_received) = (link.info.reliable, link.hello_received);
        let data_now = active && hello_received && self.out.has_sendable();
        let ack_now = self
            .inbox
            .ack_due(self.config.ack_delay)
            .is_some_and(|due| now >= due);
        // Acknowledgements ride along with anything else, or go alone once due.
        if carries_acks && (ack_now || data_now || !f.is_empty()) {
            for lane in 0..2 {
                if self.inbox.any_dirty() && self.inbox.take_dirty(lane) {
                    let state = self.inbox.state(lane);
                    if !f.ack(lane as u8, state) {
                        self.inbox.mark_dirty(lane);
                    }
                }
            }
        }
        let mut next_payload = None;
        if active && hello_received {
            let was_awaiting = self.out.awaiting_receipt();
            while let Some(pick) = self.out.pick() {
                let len = pick.payload.len();
                if reliable && len > inline_limit {
                    if f.data_next(pick.lane, pick.seq, len as u32) {
                        next_payload = Some(pick.payload);
                    } else {
                        self.out.unpick(pick.lane, pick.seq);
                    }
                    break;
                }
                if !f.data(pick.lane, pick.seq, &pick.payload) {
                    // Larger than the coalescing limit: it goes alone (with what is already
                    // in the message), up to the connection's own maximum.
                    let need = f.len() + DATA_HEADER + len;
                    if need <= link_max {
                        f.set_limit(need);
                        let written = f.data(pick.lane, pick.seq, &pick.payload);
                        debug_assert!(written);
                    } else {
                        self.out.unpick(pick.lane, pick.seq);
                    }
                    break;
                }
            }
            if !was_awaiting && self.out.awaiting_receipt() {
                self.progress_at = now;
            }
        }
        if let Some(p) = next_payload {
            if let Some(link) = self.links.get_mut(id) {
                link.pending_payload = Some(p);
            }
        }
        if f.is_empty() {
            self.buf = f.finish().1;
            return None;
        }
        let (frame, buf) = f.finish();
        self.buf = if buf.capacity() >= 4096 {
            buf
        } else {
            BytesMut::new()
        };
        Some(frame)
    }
}
