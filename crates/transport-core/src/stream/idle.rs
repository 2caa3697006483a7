//! When a connection's large buffers go back: after [`RELEASE_AFTER`] without traffic, with one
//! timer per holding period rather than one per wait (a busy writer waits once per batch; a
//! timer registered and cancelled each time cost more than the buffers it was guarding).
//!
//! The timer is armed when a task starts holding large buffers. When it fires, the task gives
//! them back if nothing happened since it was armed (or last looked), and otherwise looks again
//! one period later.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// How long a task holding large buffers stays without traffic before it gives them back. A
/// busy sender whose queue runs dry between bursts keeps (and reuses) its buffer: allocating and
/// freeing a 256 KiB buffer per burst made the allocator hand pages back to the kernel and fault
/// them in again (two page faults per 64 KiB message).
pub(crate) const RELEASE_AFTER: Duration = Duration::from_millis(200);

/// The idle-release state of one task. The timer is allocated only while the task holds large
/// buffers, so an idle connection carries a pointer, not a timer, per task.
#[derive(Debug, Default)]
pub(crate) struct IdleRelease {
    timer: Option<Pin<Box<Sleep>>>,
    active: bool,
}

impl IdleRelease {
    /// Before a wait: arms the timer when the task has just started `holding` large buffers.
    /// Returns whether [`IdleRelease::expired`] should be polled in this wait.
    pub(crate) fn arm(&mut self, holding: bool) -> bool {
        if !holding {
            self.timer = None;
            return false;
        }
        if self.timer.is_none() {
            self.timer = Some(Box::pin(tokio::time::sleep(RELEASE_AFTER)));
            self.active = false;
        }
        true
    }

    /// Traffic happened (a batch written, a read completed).
    pub(crate) fn activity(&mut self) {
        self.active = true;
    }

    /// Completes when the armed timer expires; never if it is not armed.
    pub(crate) async fn expired(&mut self) {
        match &mut self.timer {
            Some(timer) => timer.as_mut().await,
            None => std::future::pending().await,
        }
    }

    /// The timer expired: true if the buffers should go now (a whole period without traffic;
    /// the timer goes too); otherwise it is re-armed for one more period.
    pub(crate) fn fired(&mut self) -> bool {
        match &mut self.timer {
            Some(timer) if self.active => {
                self.active = false;
                timer.as_mut().reset(Instant::now() + RELEASE_AFTER);
                false
            }
            _ => {
                self.timer = None;
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn buffers_go_after_a_whole_quiet_period_and_busy_periods_only_rearm() {
        let mut idle = IdleRelease::default();
        assert!(!idle.arm(false), "nothing held: no timer");
        assert!(idle.timer.is_none());
        let start = Instant::now();
        assert!(idle.arm(true));
        // Traffic during the period: the first expiry only re-arms.
        idle.activity();
        idle.expired().await;
        assert_eq!(start.elapsed(), RELEASE_AFTER);
        assert!(!idle.fired());
        // Arming again while armed does not push the deadline back.
        tokio::time::advance(RELEASE_AFTER / 2).await;
        assert!(idle.arm(true));
        idle.expired().await;
        assert_eq!(start.elapsed(), 2 * RELEASE_AFTER);
        assert!(idle.fired(), "a whole quiet period: release");
        assert!(idle.timer.is_none(), "the timer goes with the buffers");
        // Holding again later starts a new period.
        let again = Instant::now();
        assert!(idle.arm(true));
        idle.expired().await;
        assert_eq!(again.elapsed(), RELEASE_AFTER);
        assert!(idle.fired());
    }
}
