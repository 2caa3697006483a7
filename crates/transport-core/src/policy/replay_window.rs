//! Anti-replay window over 64-bit datagram counters, after RFC 6479.
//!
//! The bitmap is a ring of [`ReplayWindow::BITMAP_BITS`] bits in `u64` blocks. Sliding forward
//! clears whole blocks (at most the ring's length, however far the jump), never shifts bits.
//! One block is the slack the RFC needs for that, so the guaranteed window is
//! [`ReplayWindow::WINDOW`] = `BITMAP_BITS - 64` counters: with `h` the highest counter marked,
//! a counter `c` is accepted once if `c > h` or `h - c < WINDOW`, and refused if older.
//!
//! Use: [`check`](ReplayWindow::check) before decrypting (cheap, changes nothing), then
//! [`mark`](ReplayWindow::mark) only after the datagram authenticated, so forged datagrams
//! cannot move the window.

const BLOCK_BITS: u64 = u64::BITS as u64;
const BLOCKS: usize = 32;

/// Sliding anti-replay window over 64-bit counters, RFC 6479 bitmap of
/// [`BITMAP_BITS`](Self::BITMAP_BITS) bits in `u64` blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayWindow {
    bitmap: [u64; BLOCKS],
    highest: Option<u64>,
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayWindow {
    /// Bits in the bitmap (2048).
    pub const BITMAP_BITS: usize = BLOCKS * u64::BITS as usize;

    /// Counters accepted behind the highest one marked, the highest included (1984): `c` is
    /// too old once `highest - c >= WINDOW`.
    pub const WINDOW: u64 = (BLOCKS as u64 - 1) * BLOCK_BITS;

    /// An empty window: every counter is acceptable.
    pub fn new() -> Self {
        Self {
            bitmap: [0; BLOCKS],
            highest: None,
        }
    }

    /// Cheap check before decrypting: false if the counter is a replay or too old.
    pub fn check(&self, counter: u64) -> bool {
        match self.highest {
            None => true,
            Some(highest) if counter > highest => true,
            Some(highest) if highest - counter >= Self::WINDOW => false,
            Some(_) => {
                let (block, bit) = Self::position(counter);
                self.bitmap[block] & bit == 0
            }
        }
    }

    /// After successful decryption: mark the counter seen. Returns false (and changes nothing)
    /// if it was already seen or too old.
    pub fn mark(&mut self, counter: u64) -> bool {
        if !self.check(counter) {
            return false;
        }
        match self.highest {
            Some(highest) if counter > highest => {
                // Clear the blocks the window slides over, at most the whole ring.
                let from = highest / BLOCK_BITS;
                let steps = (counter / BLOCK_BITS - from).min(BLOCKS as u64);
                for step in 1..=steps {
                    self.bitmap[Self::block_index(from + step)] = 0;
                }
                self.highest = Some(counter);
            }
            Some(_) => {}
            None => self.highest = Some(counter),
        }
        let (block, bit) = Self::position(counter);
        self.bitmap[block] |= bit;
        true
    }

    /// The highest counter marked so far.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    fn block_index(block: u64) -> usize {
        (block % BLOCKS as u64) as usize
    }

    /// Ring block index and bit mask of `counter`.
    fn position(counter: u64) -> (usize, u64) {
        (
            Self::block_index(counter / BLOCK_BITS),
            1 << (counter % BLOCK_BITS),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    const W: u64 = ReplayWindow::WINDOW;

    #[test]
    fn sizes() {
        assert_eq!(ReplayWindow::BITMAP_BITS, 2048);
        assert_eq!(W, 1984);
        assert_eq!(ReplayWindow::default(), ReplayWindow::new());
    }

    #[test]
    fn empty_accepts_anything() {
        let window = ReplayWindow::new();
        assert_eq!(window.highest(), None);
        for counter in [0, 1, W, u64::MAX / 2, u64::MAX] {
            assert!(window.check(counter));
        }
    }

    #[test]
    fn duplicates_refused() {
        let mut window = ReplayWindow::new();
        for counter in 0..5000 {
            assert!(window.check(counter));
            assert!(window.mark(counter));
            assert!(!window.check(counter));
            assert!(!window.mark(counter));
        }
        assert_eq!(window.highest(), Some(4999));
    }

    #[test]
    fn check_changes_nothing() {
        let mut window = ReplayWindow::new();
        assert!(window.mark(10));
        let before = window.clone();
        assert!(window.check(11));
        assert!(window.check(5));
        assert!(!window.check(10));
        assert_eq!(window, before);
    }

    #[test]
    fn out_of_order_within_window_accepted_once() {
        let mut window = ReplayWindow::new();
        assert!(window.mark(1000));
        for counter in (0..1000).rev().step_by(3) {
            assert!(window.mark(counter), "{counter}");
        }
        for counter in (0..1000).rev().step_by(3) {
            assert!(!window.mark(counter), "{counter}");
        }
        assert!(window.mark(998));
        assert_eq!(window.highest(), Some(1000));
    }

    #[test]
    fn too_old_refused_at_the_exact_edge() {
        let mut window = ReplayWindow::new();
        let highest = 10_000;
        assert!(window.mark(highest));
        assert!(window.check(highest - (W - 1)));
        assert!(!window.check(highest - W));
        assert!(!window.mark(highest - W));
        assert!(!window.mark(0));
        assert!(window.mark(highest - (W - 1)));
        // The refused marks changed nothing.
        assert_eq!(window.highest(), Some(highest));
    }

    #[test]
    fn sliding_by_one_keeps_the_window() {
        let mut window = ReplayWindow::new();
        for counter in 0..(4 * W) {
            assert!(window.mark(counter));
            // Everything inside the window is still known as seen.
            let oldest_kept = counter.saturating_sub(W - 1);
            assert!(!window.check(oldest_kept));
            if counter >= W {
                assert!(!window.check(counter - W));
            }
        }
    }

    #[test]
    fn gap_counters_stay_acceptable_after_a_slide() {
        let mut window = ReplayWindow::new();
        assert!(window.mark(0));
        assert!(window.mark(W - 1));
        // Everything between was never seen.
        for counter in 1..W - 1 {
            assert!(window.check(counter));
        }
        assert!(window.mark(W)); // 0 is now too old
        assert!(!window.check(0));
        assert!(window.check(1));
    }

    #[test]
    fn large_jumps_clear_the_window() {
        for jump in [
            BLOCK_BITS - 1,
            BLOCK_BITS,
            W - 1,
            W,
            W + 1,
            ReplayWindow::BITMAP_BITS as u64,
            ReplayWindow::BITMAP_BITS as u64 * 7 + 13,
            1 << 40,
        ] {
            let mut window = ReplayWindow::new();
            for counter in 0..200 {
                assert!(window.mark(counter));
            }
            let top = 199 + jump;
            assert!(window.mark(top), "jump {jump}");
            // Every counter in the new window except `top` and the old marks still inside
            // it is acceptable: stale bits from before the jump must be gone.
            for counter in top.saturating_sub(W - 1)..top {
                assert_eq!(
                    window.check(counter),
                    counter >= 200,
                    "jump {jump}, {counter}"
                );
            }
            assert!(!window.check(top));
        }
    }

    #[test]
    fn counter_extremes() {
        let mut window = ReplayWindow::new();
        assert!(window.mark(0));
        assert!(!window.mark(0));
        assert!(window.mark(u64::MAX));
        assert_eq!(window.highest(), Some(u64::MAX));
        assert!(!window.mark(u64::MAX));
        assert!(!window.check(0));
        assert!(window.mark(u64::MAX - (W - 1)));
        assert!(!window.check(u64::MAX - W));
        assert!(window.mark(u64::MAX - 1));

        let mut top_first = ReplayWindow::new();
        assert!(top_first.mark(u64::MAX));
        assert!(!top_first.check(0));
        assert!(top_first.check(u64::MAX - 1));
    }

    /// The reference: every counter seen, and the highest.
    #[derive(Default)]
    struct Model {
        seen: HashSet<u64>,
        highest: Option<u64>,
    }

    impl Model {
        fn check(&self, counter: u64) -> bool {
            let recent = match self.highest {
                None => true,
                Some(highest) => counter > highest || highest - counter < W,
            };
            recent && !self.seen.contains(&counter)
        }

        fn mark(&mut self, counter: u64) -> bool {
            if !self.check(counter) {
                return false;
            }
            self.seen.insert(counter);
            self.highest = self.highest.max(Some(counter));
            true
        }
    }

    fn compare(base: u64, offsets: Vec<u64>) -> Result<(), TestCaseError> {
        let mut window = ReplayWindow::new();
        let mut model = Model::default();
        for offset in offsets {
            let counter = base.wrapping_add(offset);
            prop_assert_eq!(
                window.check(counter),
                model.check(counter),
                "check {}",
                counter
            );
            prop_assert_eq!(
                window.mark(counter),
                model.mark(counter),
                "mark {}",
                counter
            );
            prop_assert_eq!(window.highest(), model.highest);
        }
        Ok(())
    }

    proptest! {
        /// Counters around a random base, dense enough for duplicates, out-of-order arrivals,
        /// counters just outside the window and jumps of several windows.
        #[test]
        fn matches_naive_model(
            base in prop_oneof![Just(0u64), Just(u64::MAX - 20_000), any::<u64>()],
            offsets in prop::collection::vec(
                prop_oneof![0u64..2_500, 0u64..20_000, Just(0u64)],
                0..600,
            ),
        ) {
            compare(base, offsets)?;
        }

        /// Slowly rising counters with reordering, the usual shape of real traffic.
        #[test]
        fn matches_naive_model_rising(
            steps in prop::collection::vec((0u64..100, 0u64..2_100), 0..600),
        ) {
            let mut next = 0u64;
            let offsets = steps
                .into_iter()
                .map(|(forward, back)| {
                    next += forward;
                    next.saturating_sub(back)
                })
                .collect();
            compare(0, offsets)?;
        }
    }
}
