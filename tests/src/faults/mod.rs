//! Faults: a seeded userspace proxy for TCP ([`tcp`]) and UDP ([`udp`]) put between a dialer
//! and a listener, the fault profiles it runs under ([`PROFILES`]), and the cases run through it
//! ([`FAULT_CASES`]), so every backend that rides on TCP or UDP (tcp, websocket, wss, udp, quic)
//! is checked on a network that misbehaves, not only on a quiet loopback.
//!
//! What the proxy can do ([`Faults`]), per direction:
//!
//! | fault | TCP (per read chunk of the byte stream) | UDP (per datagram) |
//! |---|---|---|
//! | drop, duplicate, reorder | not applied: a byte stream has no unit to lose or repeat (the kernel hides loss) | each with its probability |
//! | delay | every chunk forwarded `delay` later (pipelined: latency, not a throughput cap) | same |
//! | corrupt | every byte flipped with probability `1 / corrupt_one_in` | same, on the datagram's bytes |
//! | bandwidth | paced to `bandwidth` bytes per second | same |
//! | cut | after `cut_after` bytes from the dialer, both sockets closed (FIN, no close record) | after `cut_after` datagrams from the dialer, nothing more forwarded either way |
//!
//! Every random choice comes from a `StdRng` seeded with [`SEED`] and the direction, so a
//! failing run can be replayed (timing still varies the TCP chunking, not the per-byte draws).
//!
//! What each profile may break, and so what a case expects ([`Expect`]), follows the backend's
//! promises: a reliable backend delivers everything in order under loss, reordering and delay
//! (QUIC retransmits; a byte stream never sees loss); corruption or a cut on a byte stream breaks
//! delivery, so the expected outcome is a typed error (the record's decryption fails, or the link
//! is lost) with every message received before it exact and in order, never silent corruption or
//! a hang; UDP promises integrity and no duplicates, not delivery, so it must deliver most, each
//! exact and at most once.

pub mod cases;
#[cfg(test)]
mod proxy_tests;
pub mod tcp;
pub mod udp;

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use cases::{FaultCase, FAULT_CASES};

/// The seed of every proxy's randomness (mixed with the direction).
pub const SEED: u64 = 0xB17C_4A95;

/// What the proxy does to traffic, in each direction.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Probability a datagram is dropped (UDP only).
    pub drop: f64,
    /// Probability a datagram is sent twice (UDP only).
    pub duplicate: f64,
    /// Probability a datagram is held back and sent after the next one (UDP only).
    pub reorder: f64,
    /// Latency added to every chunk or datagram.
    pub delay: Duration,
    /// Each byte is flipped with probability `1 / corrupt_one_in` (0: never).
    pub corrupt_one_in: u64,
    /// Bytes per second, each direction (0: unlimited).
    pub bandwidth: u64,
    /// Cut the path after this many bytes (TCP) or datagrams (UDP) from the dialer (0: never).
    pub cut_after: u64,
}

/// What a path under a profile breaks, for one kind of backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Every message arrives, exact and in order.
    Deliver,
    /// Most messages arrive (at least [`DATAGRAM_FLOOR_PERCENT`]), each exact and at most once.
    DeliverMost,
    /// The connection fails with a typed error on the receiver (or delivers everything: the
    /// fault may miss); what arrived before is exact and in order.
    TypedFailure,
    /// The dial fails with a typed error; the listener hands out no connection.
    DialFails,
    /// The profile says nothing about this backend: reported as not applicable, with why.
    NotApplicable(&'static str),
}

/// Share of datagrams that must arrive under [`Expect::DeliverMost`].
pub const DATAGRAM_FLOOR_PERCENT: usize = 60;

/// How a backend's path is proxied and what it promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// A byte stream over TCP (tcp, websocket, wss).
    Stream,
    /// QUIC over UDP: reliable, ordered, with its own loss recovery.
    Quic,
    /// Datagrams over UDP: integrity and no duplicates, not delivery.
    Datagram,
}

/// A named set of faults.
#[derive(Debug, Clone, Copy)]
pub struct FaultProfile {
    /// Its name in trial names and the table (`[a-z0-9-]`).
    pub name: &'static str,
    /// The faults.
    pub faults: Faults,
    /// What it breaks, per kind of path.
    pub expect: fn(PathKind) -> Expect,
}

const NO_LOSS_ON_STREAMS: Expect =
    Expect::NotApplicable("n/a: a byte stream has no loss to inject (the kernel hides it)");
const CUT_DATAGRAMS: Expect =
    Expect::NotApplicable("n/a: a cut datagram path is only noticed by the idle timeout (30 s)");

/// The profiles `cargo xtask conformance --faults` runs.
pub const PROFILES: &[FaultProfile] = &[
    FaultProfile {
        name: "clean",
        faults: Faults {
            drop: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            delay: Duration::ZERO,
            corrupt_one_in: 0,
            bandwidth: 0,
            cut_after: 0,
        },
        expect: |k| match k {
            PathKind::Datagram => Expect::DeliverMost,
            _ => Expect::Deliver,
        },
    },
    FaultProfile {
        name: "loss-1pct",
        faults: Faults { drop: 0.01, ..NONE },
        expect: |k| match k {
            PathKind::Stream => NO_LOSS_ON_STREAMS,
            PathKind::Quic => Expect::Deliver,
            PathKind::Datagram => Expect::DeliverMost,
        },
    },
    FaultProfile {
        name: "loss-5pct-reorder-dup",
        faults: Faults {
            drop: 0.05,
            reorder: 0.05,
            duplicate: 0.02,
            ..NONE
        },
        expect: |k| match k {
            PathKind::Stream => NO_LOSS_ON_STREAMS,
            PathKind::Quic => Expect::Deliver,
            PathKind::Datagram => Expect::DeliverMost,
        },
    },
    FaultProfile {
        name: "delay-2ms-8mbps",
        faults: Faults {
            delay: Duration::from_millis(2),
            bandwidth: 8_000_000,
            ..NONE
        },
        expect: |k| match k {
            PathKind::Datagram => Expect::DeliverMost,
            _ => Expect::Deliver,
        },
    },
    FaultProfile {
        name: "corrupt-1-in-10000",
        faults: Faults {
            corrupt_one_in: 10_000,
            ..NONE
        },
        expect: |k| match k {
            PathKind::Stream => Expect::TypedFailure,
            // Corrupted packets fail authentication and are dropped: QUIC resends them.
            PathKind::Quic => Expect::Deliver,
            PathKind::Datagram => Expect::DeliverMost,
        },
    },
    FaultProfile {
        name: "cut-mid-message",
        faults: Faults {
            cut_after: 40_000,
            ..NONE
        },
        expect: |k| match k {
            PathKind::Stream => Expect::TypedFailure,
            _ => CUT_DATAGRAMS,
        },
    },
    FaultProfile {
        name: "cut-mid-handshake",
        faults: Faults {
            // TCP: inside the first frame (or the HTTP upgrade); UDP: after the first datagram.
            cut_after: 20,
            ..NONE
        },
        expect: |_| Expect::DialFails,
    },
];

/// No fault at all.
pub(crate) const NONE: Faults = Faults {
    drop: 0.0,
    duplicate: 0.0,
    reorder: 0.0,
    delay: Duration::ZERO,
    corrupt_one_in: 0,
    bandwidth: 0,
    cut_after: 0,
};

/// The cut point of a profile for a path: datagrams count one by one, so a handshake cut on
/// UDP is after the first datagram.
pub(crate) fn cut_for(faults: &Faults, kind: PathKind) -> u64 {
    match (kind, faults.cut_after) {
        (_, 0) => 0,
        (PathKind::Stream, n) => n,
        (_, n) if n <= 20 => 1,
        (_, n) => n,
    }
}

/// The seeded randomness of one direction of one proxied connection.
pub(crate) struct Dice {
    rng: StdRng,
    faults: Faults,
}

impl Dice {
    pub(crate) fn new(faults: Faults, direction: u64, connection: u64) -> Self {
        let seed = SEED ^ (direction << 32) ^ connection.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Self {
            rng: StdRng::seed_from_u64(seed),
            faults,
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.gen_bool(p.min(1.0))
    }

    pub(crate) fn drop(&mut self) -> bool {
        let p = self.faults.drop;
        self.chance(p)
    }

    pub(crate) fn duplicate(&mut self) -> bool {
        let p = self.faults.duplicate;
        self.chance(p)
    }

    pub(crate) fn reorder(&mut self) -> bool {
        let p = self.faults.reorder;
        self.chance(p)
    }

    /// Flips bytes of `buf` as the profile says; returns how many.
    pub(crate) fn corrupt(&mut self, buf: &mut [u8]) -> usize {
        let n = self.faults.corrupt_one_in;
        if n == 0 {
            return 0;
        }
        let mut flipped = 0;
        for byte in buf.iter_mut() {
            if self.rng.gen_range(0..n) == 0 {
                *byte ^= self.rng.gen_range(1..=255u8);
                flipped += 1;
            }
        }
        flipped
    }
}

/// Paces one direction to a byte rate (0: unlimited) and adds the profile's latency: the time
/// each unit may leave.
pub(crate) struct Pacer {
    delay: Duration,
    bandwidth: u64,
    next_free: tokio::time::Instant,
}

impl Pacer {
    pub(crate) fn new(faults: &Faults) -> Self {
        Self {
            delay: faults.delay,
            bandwidth: faults.bandwidth,
            next_free: tokio::time::Instant::now(),
        }
    }

    /// When a unit of `len` bytes that arrived now may be forwarded.
    pub(crate) fn due(&mut self, len: usize) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        let arrival = now + self.delay;
        if self.bandwidth == 0 {
            return arrival;
        }
        let start = self.next_free.max(now);
        let wire = Duration::from_secs_f64(len as f64 / self.bandwidth as f64);
        self.next_free = start + wire;
        (start + wire).max(arrival)
    }
}
