//! When a connection's large buffers go back: after [`RELEASE_AFTER`] without traffic, with one
//! timer per holding period rather than one per wait (a busy writer waits once per batch; a
//! timer registered and cancelled each time cost more than the buffers it was guarding).
//!
//! The timer is armed when a task starts holding large buffers. When it fires, the task gives
//! them back if nothing happened since it was armed, and otherwise looks again one period later.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// How long a task holding large buffers stays without traffic before it gives them back. A
/// busy sender whose queue runs dry between bursts keeps (and reuses) its buffer: allocating and
/// freeing a 256 KiB buffer per burst made the allocator hand pages back to the kernel and fault
/// them in again (two page faults per 64 KiB message).
pub(crate) const RELEASE_AFTER: Duration = Duration::from_millis(200);

/// The idle-release state of one task (its `Sleep` lives pinned in the task).
#[derive(Debug, Default)]
pub(crate) struct IdleRelease {
    armed: bool,
    active: bool,
}

impl IdleRelease {
    /// Before a wait: arms `timer` when the task has just started `holding` large buffers.
    /// Returns whether the timer should be polled in this wait.
    pub(crate) fn arm(&mut self, holding: bool, timer: Pin<&mut Sleep>) -> bool {
        if !holding {
            self.armed = false;
            return false;
        }
        if !self.armed {
            timer.reset(Instant::now() + RELEASE_AFTER);
            self.armed = true;
            self.active = false;
        }
        true
    }

    /// Traffic happened (a batch written, a read completed).
    pub(crate) fn activity(&mut self) {
        self.active = true;
    }

    /// The timer fired: true if the buffers should go now (a whole period without traffic);
    /// otherwise it is re-armed for one more period.
    pub(crate) fn fired(&mut self, timer: Pin<&mut Sleep>) -> bool {
        if self.active {
            self.active = false;
            timer.reset(Instant::now() + RELEASE_AFTER);
            return false;
        }
        self.armed = false;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn buffers_go_after_a_whole_quiet_period_and_busy_periods_only_rearm() {
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        let mut idle = IdleRelease::default();
        assert!(!idle.arm(false, timer.as_mut()), "nothing held: no timer");
        let start = Instant::now();
        assert!(idle.arm(true, timer.as_mut()));
        // Traffic during the period: the first expiry only re-arms.
        idle.activity();
        timer.as_mut().await;
        assert_eq!(start.elapsed(), RELEASE_AFTER);
        assert!(!idle.fired(timer.as_mut()));
        // Arming again while armed does not push the deadline back.
        tokio::time::advance(RELEASE_AFTER / 2).await;
        assert!(idle.arm(true, timer.as_mut()));
        timer.as_mut().await;
        assert_eq!(start.elapsed(), 2 * RELEASE_AFTER);
        assert!(idle.fired(timer.as_mut()), "a whole quiet period: release");
        // Holding again later starts a new period.
        let again = Instant::now();
        assert!(idle.arm(true, timer.as_mut()));
        timer.as_mut().await;
        assert_eq!(again.elapsed(), RELEASE_AFTER);
        assert!(idle.fired(timer.as_mut()));
    }
}
