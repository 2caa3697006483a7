//! The send side of a session: two lanes (interactive, bulk) of accepted messages, each kept
//! until the remote application acknowledges it, with the resend order and the flow-control
//! window the remote granted.
//!
//! Per lane, messages sit in seq order in one deque: `[delivered .. received .. next_tx ..
//! next_seq)`. Everything below `delivered` is finished (popped, receipts sent); `received` is
//! what the remote holds (it stops resending); `next_tx` is the next seq to write on the
//! active connection; `hi_tx` is the highest seq ever written + 1, which bounds what the
//! remote may have to buffer. A new seq is written only while the remote's window has room:
//! the sum over lanes of `hi_tx - delivered` stays below its window in messages, and the
//! bytes of those messages below its window in bytes (a single message always fits).

use std::collections::VecDeque;

use bytes::Bytes;

use super::types::{Action, MessageId, UndeliveredReason};
use crate::envelope::{EnvelopeError, LaneState};

/// One accepted message.
#[derive(Debug, Clone)]
pub(crate) struct OutMsg {
    pub(crate) id: MessageId,
    pub(crate) payload: Bytes,
    pub(crate) receipt: bool,
}

#[derive(Debug, Default)]
struct Lane {
    /// Seq of `msgs[0]` (= what the remote has delivered, as far as we know).
    delivered: u64,
    received: u64,
    next_tx: u64,
    hi_tx: u64,
    msgs: VecDeque<OutMsg>,
}

impl Lane {
    fn next_seq(&self) -> u64 {
        self.delivered + self.msgs.len() as u64
    }

    fn get(&self, seq: u64) -> Option<&OutMsg> {
        self.msgs.get(usize::try_from(seq - self.delivered).ok()?)
    }
}

/// The remote's receive window, from its `HELLO`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) messages: u64,
    pub(crate) bytes: u64,
}

/// A message chosen for writing.
#[derive(Debug, Clone)]
pub(crate) struct Pick {
    pub(crate) lane: u8,
    pub(crate) seq: u64,
    pub(crate) payload: Bytes,
}

/// Both lanes of the send side.
#[derive(Debug)]
pub(crate) struct Outbox {
    lanes: [Lane; 2],
    window: Option<Window>,
    /// Bytes of messages in `[delivered, hi_tx)` over both lanes.
    window_bytes_used: u64,
    queued: usize,
}

impl Outbox {
    pub(crate) fn new() -> Self {
        Self {
            lanes: [Lane::default(), Lane::default()],
            window: None,
            window_bytes_used: 0,
            queued: 0,
        }
    }

    /// Messages accepted and not finished.
    pub(crate) fn len(&self) -> usize {
        self.queued
    }

    /// True once any message was ever written (the session is resumed on a new connection).
    pub(crate) fn resumed(&self) -> bool {
        self.lanes.iter().any(|l| l.hi_tx > 0)
    }

    /// The remote's window (known once it sent a `HELLO`).
    pub(crate) fn set_window(&mut self, window: Window) {
        self.window = Some(window);
    }

    pub(crate) fn push(&mut self, lane: u8, msg: OutMsg) {
        self.lanes[usize::from(lane & 1)].msgs.push_back(msg);
        self.queued += 1;
    }

    /// Everything the remote does not hold is to be written again (a new connection, or a
    /// retransmission timeout on a connection that may lose messages).
    pub(crate) fn rewind(&mut self) {
        for l in &mut self.lanes {
            l.next_tx = l.received;
        }
    }

    /// True while something written is not yet known to be held by the remote.
    pub(crate) fn awaiting_receipt(&self) -> bool {
        self.lanes
            .iter()
            .any(|l| l.received < l.next_tx.max(l.hi_tx))
    }

    /// True if there is something to write now.
    pub(crate) fn has_sendable(&self) -> bool {
        (0..2).any(|i| self.sendable(i))
    }

    fn in_flight(&self) -> u64 {
        self.lanes.iter().map(|l| l.hi_tx - l.delivered).sum()
    }

    fn sendable(&self, i: usize) -> bool {
        let l = &self.lanes[i];
        if l.next_tx >= l.next_seq() {
            return false;
        }
        if l.next_tx < l.hi_tx {
            return true; // a resend: already inside the window
        }
        let Some(w) = self.window else { return false };
        let Some(m) = l.get(l.next_tx) else {
            return false;
        };
        let flight = self.in_flight();
        flight == 0
            || (flight < w.messages && self.window_bytes_used + m.payload.len() as u64 <= w.bytes)
    }

    /// The next message to write (interactive first), if the window allows; advances.
    pub(crate) fn pick(&mut self) -> Option<Pick> {
        let i = (0..2).find(|&i| self.sendable(i))?;
        let l = &mut self.lanes[i];
        let seq = l.next_tx;
        let payload = l.get(seq)?.payload.clone();
        l.next_tx += 1;
        if l.next_tx > l.hi_tx {
            l.hi_tx = l.next_tx;
            self.window_bytes_used += payload.len() as u64;
        }
        Some(Pick {
            lane: i as u8,
            seq,
            payload,
        })
    }

    /// Puts a picked message back (it could not be written after all).
    pub(crate) fn unpick(&mut self, lane: u8, seq: u64) {
        let l = &mut self.lanes[usize::from(lane & 1)];
        l.next_tx = l.next_tx.min(seq);
    }

    /// Applies the remote's state of one lane. `authoritative` (from a `HELLO`) may lower
    /// `received` (the remote lost what it buffered); an `ACK` only raises it. Finished
    /// messages become receipts and window room in `out`. True if anything advanced.
    pub(crate) fn on_state(
        &mut self,
        lane: u8,
        state: LaneState,
        authoritative: bool,
        out: &mut VecDeque<Action>,
    ) -> Result<bool, EnvelopeError> {
        let l = &mut self.lanes[usize::from(lane & 1)];
        if state.received > l.hi_tx || state.received > l.next_seq() {
            return Err(EnvelopeError::Invalid("acknowledges a seq never sent"));
        }
        if state.delivered < l.delivered && !authoritative {
            return Ok(false); // an old ACK overtaken by a newer one
        }
        let mut progressed = false;
        let (mut messages, mut bytes) = (0, 0);
        while l.delivered < state.delivered {
            let Some(m) = l.msgs.pop_front() else { break };
            l.delivered += 1;
            messages += 1;
            bytes += m.payload.len();
            self.window_bytes_used -= m.payload.len() as u64;
            if m.receipt {
                out.push_back(Action::Receipt {
                    id: m.id,
                    outcome: Ok(()),
                });
            }
            progressed = true;
        }
        let received = state.received.max(l.delivered);
        if received > l.received || (authoritative && received < l.received) {
            progressed |= received > l.received;
            l.received = received;
        }
        l.next_tx = if authoritative {
            l.received
        } else {
            l.next_tx.max(l.received)
        };
        if messages > 0 {
            self.queued -= messages;
            out.push_back(Action::Release { messages, bytes });
        }
        Ok(progressed)
    }

    /// Ends every unfinished message with `reason`.
    pub(crate) fn fail_all(&mut self, reason: &UndeliveredReason, out: &mut VecDeque<Action>) {
        let mut ids = Vec::new();
        let mut bytes = 0;
        for l in &mut self.lanes {
            for m in l.msgs.drain(..) {
                bytes += m.payload.len();
                if m.receipt {
                    out.push_back(Action::Receipt {
                        id: m.id,
                        outcome: Err(reason.clone()),
                    });
                }
                ids.push(m.id);
            }
        }
        if ids.is_empty() {
            return;
        }
        ids.sort();
        self.queued = 0;
        self.window_bytes_used = 0;
        out.push_back(Action::Release {
            messages: ids.len(),
            bytes,
        });
        out.push_back(Action::Undelivered {
            ids,
            reason: reason.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: u64, len: usize) -> OutMsg {
        OutMsg {
            id: MessageId(id),
            payload: Bytes::from(vec![0; len]),
            receipt: id.is_multiple_of(2),
        }
    }

    #[test]
    fn nothing_new_is_written_before_the_window_is_known() {
        let mut o = Outbox::new();
        o.push(1, msg(1, 10));
        assert!(o.pick().is_none());
        o.set_window(Window {
            messages: 2,
            bytes: 100,
        });
        assert_eq!(o.pick().unwrap().seq, 0);
    }

    #[test]
    fn the_window_bounds_messages_and_bytes_but_one_always_fits() {
        let mut o = Outbox::new();
        o.set_window(Window {
            messages: 2,
            bytes: 15,
        });
        for i in 0..4 {
            o.push(1, msg(i, 10));
        }
        assert!(o.pick().is_some()); // 10 bytes: alone it always fits
        assert!(o.pick().is_none()); // 20 > 15 bytes
        let mut out = VecDeque::new();
        let st = LaneState {
            delivered: 1,
            received: 1,
        };
        assert!(o.on_state(1, st, false, &mut out).unwrap());
        assert!(matches!(
            out[0],
            Action::Receipt {
                id: MessageId(0),
                outcome: Ok(())
            }
        ));
        assert!(matches!(
            out[1],
            Action::Release {
                messages: 1,
                bytes: 10
            }
        ));
        assert_eq!(o.pick().unwrap().seq, 1);
    }

    #[test]
    fn interactive_goes_first_and_rewind_resends_from_received() {
        let mut o = Outbox::new();
        o.set_window(Window {
            messages: 10,
            bytes: 1000,
        });
        o.push(1, msg(1, 1));
        o.push(0, msg(2, 1));
        assert_eq!(o.pick().unwrap().lane, 0);
        assert_eq!(o.pick().unwrap().lane, 1);
        assert!(o.awaiting_receipt());
        let mut out = VecDeque::new();
        let st = LaneState {
            delivered: 0,
            received: 1,
        };
        o.on_state(0, st, false, &mut out).unwrap();
        o.rewind();
        // Lane 0's message is held by the remote; lane 1's is written again.
        let p = o.pick().unwrap();
        assert_eq!((p.lane, p.seq), (1, 0));
        assert!(o.pick().is_none());
    }

    #[test]
    fn acknowledging_the_unsent_is_an_error_and_fail_all_reports_everything() {
        let mut o = Outbox::new();
        o.set_window(Window {
            messages: 10,
            bytes: 1000,
        });
        o.push(0, msg(1, 3));
        o.push(1, msg(2, 4));
        let mut out = VecDeque::new();
        let st = LaneState {
            delivered: 1,
            received: 1,
        };
        assert!(o.on_state(0, st, false, &mut out).is_err());
        o.fail_all(
            &UndeliveredReason::SessionEnded(super::super::DisconnectReason::Idle),
            &mut out,
        );
        assert_eq!(o.len(), 0);
        assert!(out.iter().any(|a| matches!(
            a,
            Action::Release {
                messages: 2,
                bytes: 7
            }
        )));
        assert!(out.iter().any(
            |a| matches!(a, Action::Undelivered { ids, .. } if ids == &[MessageId(1), MessageId(2)])
        ));
    }
}
