//! The tasks that carry one simulated link: a pipe per direction and a supervisor.
//!
//! A pipe takes one payload at a time from the sender's queue, asks the radio for its fate
//! (retransmissions, drop) and air time, sleeps until the air time is over (tokio time, so
//! paused-time tests run instantly), then delivers into the receiver's queue, waiting while it
//! is full. One payload at a time per direction keeps order. Whichever task first sees an end
//! go down frees the link's slots and then tells the other end.

use std::sync::Arc;

use futures::FutureExt;
use tokio::time::{sleep_until, Instant};

use super::radio::RadioInner;
use super::rng::SimRng;
use super::stats::bump;
use crate::link::{DeviceId, IncomingQueue, LinkControl, LinkDownReason, LinkDriver, SendQueue};

/// Starts the tasks of a link between `a` (central) and `b` (peripheral).
pub(crate) fn spawn_link(
    radio: Arc<RadioInner>,
    link_id: u64,
    (a_id, a): (DeviceId, LinkDriver),
    (b_id, b): (DeviceId, LinkDriver),
    mut rng: SimRng,
) {
    let a_to_b = Pipe {
        radio: radio.clone(),
        link_id,
        from: a_id.clone(),
        to: b_id.clone(),
        from_ctl: a.control.clone(),
        to_ctl: b.control.clone(),
        rng: SimRng::new(rng.next_u64()),
    };
    let b_to_a = Pipe {
        radio: radio.clone(),
        link_id,
        from: b_id,
        to: a_id,
        from_ctl: b.control.clone(),
        to_ctl: a.control.clone(),
        rng: SimRng::new(rng.next_u64()),
    };
    tokio::spawn(a_to_b.run(a.send_queue, b.incoming));
    tokio::spawn(b_to_a.run(b.send_queue, a.incoming));
    tokio::spawn(supervise(radio, link_id, a.control, b.control));
}

/// Resolves when either end is down.
async fn either_down(x: &LinkControl, y: &LinkControl) {
    tokio::select! {
        _ = x.wait_down() => {}
        _ = y.wait_down() => {}
    }
}

struct Pipe {
    radio: Arc<RadioInner>,
    link_id: u64,
    from: DeviceId,
    to: DeviceId,
    from_ctl: LinkControl,
    to_ctl: LinkControl,
    rng: SimRng,
}

impl Pipe {
    async fn run(mut self, out: SendQueue, inc: IncomingQueue) {
        self.carry(out, &inc).await;
        // However it ended, one end is down now: settle the other and free the slots, before
        // the receiver can see its queue end (`inc` is dropped last).
        self.radio.close_link(self.link_id);
        drop(inc);
    }

    async fn carry(&mut self, mut out: SendQueue, inc: &IncomingQueue) {
        // When this direction was last free, on the exact virtual schedule: tokio's timer wakes
        // up to 1 ms late, and a payload already queued by then starts at this instant instead.
        let mut free_at = Instant::now();
        loop {
            let next = match out.next().now_or_never() {
                Some(next) => next,
                None => {
                    let next = tokio::select! {
                        biased;
                        _ = either_down(&self.from_ctl, &self.to_ctl) => return,
                        next = out.next() => next,
                    };
                    free_at = Instant::now();
                    next
                }
            };
            if self.from_ctl.is_down() || self.to_ctl.is_down() {
                return;
            }
            let Some(payload) = next else {
                // Graceful close: everything queued before it has been delivered.
                self.from_ctl.set_down(LinkDownReason::LocalClose);
                return;
            };
            let len = payload.len();
            let plan = self
                .radio
                .plan_packet(&self.from, &self.to, len, free_at, &mut self.rng);
            tokio::select! {
                biased;
                _ = either_down(&self.from_ctl, &self.to_ctl) => return,
                _ = sleep_until(plan.done_at) => {}
            }
            if !plan.delivered {
                tracing::debug!(from = %self.from, to = %self.to, "sim link lost");
                self.from_ctl.set_down(LinkDownReason::ConnectionLost);
                self.to_ctl.set_down(LinkDownReason::ConnectionLost);
                return;
            }
            free_at = plan.done_at;
            let mut delivery = std::pin::pin!(inc.deliver(payload));
            let delivered = match (&mut delivery).now_or_never() {
                Some(delivered) => delivered,
                None => {
                    let delivered = tokio::select! {
                        biased;
                        _ = either_down(&self.from_ctl, &self.to_ctl) => return,
                        delivered = &mut delivery => delivered,
                    };
                    free_at = Instant::now();
                    delivered
                }
            };
            if delivered.is_err() {
                // The receiving application dropped its receiver.
                self.to_ctl.set_down(LinkDownReason::LocalClose);
                return;
            }
            let c = &self.radio.counters;
            bump(&c.packets_delivered, 1);
            bump(&c.payload_bytes_delivered, len as u64);
        }
    }
}

/// Ends the link when the application brings an end down while both pipes are idle.
async fn supervise(radio: Arc<RadioInner>, link_id: u64, a: LinkControl, b: LinkControl) {
    either_down(&a, &b).await;
    radio.close_link(link_id);
}
