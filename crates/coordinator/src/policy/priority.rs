//! Send priorities: interactive messages (dice rolls, bets) overtake bulk ones.
//!
//! [`PriorityQueue`] is two bounded FIFO queues; memory grows only as items are pushed, never
//! past the capacities, so a huge capacity costs nothing up front.

use std::collections::VecDeque;

/// The class of an outgoing message; `Interactive` sorts first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    /// Latency-sensitive traffic, always sent first.
    Interactive,
    /// Throughput traffic, sent when no interactive item waits.
    Bulk,
}

/// Two bounded FIFO queues; [`pop`](Self::pop) always takes Interactive first.
#[derive(Clone, Debug)]
pub struct PriorityQueue<T> {
    interactive: VecDeque<T>,
    bulk: VecDeque<T>,
    interactive_capacity: usize,
    bulk_capacity: usize,
}

impl<T> PriorityQueue<T> {
    /// An empty queue holding at most the given number of items per priority.
    pub fn new(interactive_capacity: usize, bulk_capacity: usize) -> Self {
        Self {
            interactive: VecDeque::new(),
            bulk: VecDeque::new(),
            interactive_capacity,
            bulk_capacity,
        }
    }

    /// Appends `item` to its priority's queue, or hands it back if that queue is full.
    pub fn push(&mut self, p: Priority, item: T) -> Result<(), T> {
        let (queue, capacity) = match p {
            Priority::Interactive => (&mut self.interactive, self.interactive_capacity),
            Priority::Bulk => (&mut self.bulk, self.bulk_capacity),
        };
        if queue.len() >= capacity {
            return Err(item);
        }
        queue.push_back(item);
        Ok(())
    }

    /// Removes the oldest Interactive item, or failing that the oldest Bulk item.
    pub fn pop(&mut self) -> Option<(Priority, T)> {
        if let Some(item) = self.interactive.pop_front() {
            return Some((Priority::Interactive, item));
        }
        self.bulk.pop_front().map(|item| (Priority::Bulk, item))
    }

    /// Items queued across both priorities.
    pub fn len(&self) -> usize {
        self.interactive.len() + self.bulk.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Items queued at priority `p`.
    pub fn len_of(&self, p: Priority) -> usize {
        match p {
            Priority::Interactive => self.interactive.len(),
            Priority::Bulk => self.bulk.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use Priority::{Bulk, Interactive};

    #[test]
    fn interactive_overtakes_bulk_and_each_is_fifo() {
        let mut q = PriorityQueue::new(4, 4);
        assert!(q.is_empty());
        for (p, x) in [
            (Bulk, 1),
            (Bulk, 2),
            (Interactive, 3),
            (Bulk, 4),
            (Interactive, 5),
        ] {
            assert_eq!(q.push(p, x), Ok(()));
        }
        assert_eq!((q.len(), q.len_of(Interactive), q.len_of(Bulk)), (5, 2, 3));
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            order,
            [
                (Interactive, 3),
                (Interactive, 5),
                (Bulk, 1),
                (Bulk, 2),
                (Bulk, 4)
            ]
        );
        assert!(q.is_empty());
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn capacity_is_per_priority() {
        let mut q = PriorityQueue::new(1, 2);
        assert_eq!(q.push(Interactive, 'a'), Ok(()));
        assert_eq!(q.push(Interactive, 'b'), Err('b'));
        assert_eq!(q.push(Bulk, 'c'), Ok(()));
        assert_eq!(q.push(Bulk, 'd'), Ok(()));
        assert_eq!(q.push(Bulk, 'e'), Err('e'));
        assert_eq!(q.pop(), Some((Interactive, 'a')));
        assert_eq!(q.push(Interactive, 'f'), Ok(()));
        assert_eq!(q.len(), 3);
    }

    #[test]
    fn zero_and_huge_capacities() {
        let mut q = PriorityQueue::new(0, usize::MAX);
        assert_eq!(q.push(Interactive, 1), Err(1));
        assert_eq!(q.push(Bulk, 2), Ok(()));
        assert_eq!(q.pop(), Some((Bulk, 2)));
        assert!(Interactive < Bulk);
    }

    proptest! {
        #[test]
        fn matches_a_naive_model(ops in prop::collection::vec((0u8..3, any::<u16>()), 0..200),
                                 ic in 0usize..5, bc in 0usize..5) {
            let mut q = PriorityQueue::new(ic, bc);
            let mut model: Vec<(Priority, u16)> = Vec::new();
            for (op, x) in ops {
                if op == 2 {
                    let want = model.iter().position(|e| e.0 == Interactive)
                        .or_else(|| (!model.is_empty()).then_some(0))
                        .map(|i| model.remove(i));
                    prop_assert_eq!(q.pop(), want);
                } else {
                    let p = if op == 0 { Interactive } else { Bulk };
                    let cap = if op == 0 { ic } else { bc };
                    let full = model.iter().filter(|e| e.0 == p).count() >= cap;
                    prop_assert_eq!(q.push(p, x), if full { Err(x) } else { Ok(()) });
                    if !full { model.push((p, x)); }
                }
                prop_assert_eq!(q.len(), model.len());
                prop_assert_eq!(q.len_of(Bulk), model.iter().filter(|e| e.0 == Bulk).count());
            }
        }
    }
}
