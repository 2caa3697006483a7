//! # bitcraps-conformance
//!
//! The cross-backend conformance suite: every case is written once, against the core
//! [`Transport`] trait, and run on every backend through a [`Harness`] that the backend
//! implements for the suite (see [`harness`]). The test target `tests/conformance.rs` turns
//! `backends x cases` into libtest trials named `<backend>::<case>`; a case that does not apply to
//! a backend (by its [`Capabilities`](bitcraps_transport_core::Capabilities), or because the
//! backend has no raw byte access) is reported as ignored with the reason, never passed.
//!
//! ## Adding a backend
//!
//! 1. Write `tests/src/harness/<name>.rs`: a type implementing [`Harness`] and
//!    `pub fn harness() -> Arc<dyn Harness>` returning a fresh instance (one per trial, so any
//!    shared state such as a simulated network is never shared between trials). `transport`
//!    must honour the given `ChannelConfig` and `SharedLimiter`; `connect_raw` must map
//!    distinct `source` numbers to distinct limiter sources (or return `None` and override
//!    [`Harness::has_raw_access`] to `false`, which reports the raw cases as ignored).
//! 2. Declare it in `harness/mod.rs` and add `harness::<name>::harness` to `BACKENDS` in
//!    `tests/conformance.rs`.
//! 3. Add the backend crate to `tests/Cargo.toml`.
//!
//! Cases are gated by `capabilities()`: a datagram backend (`reliable: false`) skips the
//! order/backpressure cases and runs `datagram_no_duplicates_authentic` instead. Every case
//! asserts typed errors; hostile input must be refused with `Error::Handshake(_)` or
//! `Error::Protocol(_)` (`FrameTooLarge` for a 4 GiB length prefix), a silent peer with
//! `Error::Timeout { after: handshake_timeout, .. }`.

#[macro_use]
mod support;
pub mod cases;
pub mod faults;
pub mod harness;

use std::sync::Arc;

use async_trait::async_trait;
use bitcraps_transport_core::{ChannelConfig, Keypair, SharedLimiter, Transport, TransportAddress};
use tokio::io::{AsyncRead, AsyncWrite};

pub use cases::{Case, Profile, Requirement, CASES};

/// What one backend provides to the suite.
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// Backend name as it appears in test names and the results table: `"tcp"`, `"memory"`
    /// (later `"quic"`, `"websocket"`, `"wss"`, `"udp"`, `"ble-sim-23"`, `"ble-sim-247"`).
    fn name(&self) -> &'static str;

    /// A fresh transport with its own identity, these channel settings and this limiter. All
    /// transports made by one harness instance can reach each other (the memory harness, for
    /// example, keeps one `MemoryNetwork`).
    fn transport(
        &self,
        keypair: Keypair,
        channel: ChannelConfig,
        limiter: SharedLimiter,
    ) -> Arc<dyn Transport>;

    /// An address to listen on that picks a free port.
    fn listen_addr(&self) -> TransportAddress;

    /// Why this backend cannot run on this machine (a missing system service), or `None`.
    /// When it is `Some`, every case is reported ignored with that reason.
    fn unavailable(&self) -> Option<String> {
        None
    }

    /// True if one pair of endpoints can hold only one connection at a time (BLE on a real
    /// stack: one LE link per pair of devices). The cases that hold two are then ignored.
    fn one_link_per_pair(&self) -> bool {
        false
    }

    /// True if [`Harness::connect_raw`] gives byte-level access. The cases that speak raw bytes
    /// (hostile input, per-source limits) are reported as ignored when it is false.
    fn has_raw_access(&self) -> bool {
        true
    }

    /// True if a dialer refused by a source limit before the handshake is told the limit and
    /// its dial fails with `Error::RemoteLimit` (TCP, memory, `ws://`); false where the refusal
    /// is silent (QUIC, UDP, `wss://`, BLE). Gates `refused_dialer_learns_the_limit`.
    fn refuses_explicitly(&self) -> bool {
        false
    }

    /// A raw, unauthenticated byte connection to `addr` from source number `source`. Distinct
    /// sources must be distinct for the listener's limiter (TCP binds the client socket to
    /// `127.0.0.{source + 1}`; memory uses `MemoryNetwork::connect_raw` with a distinct id).
    /// `None` if the backend has no byte-level raw access; `Some(Err(_))` if connecting failed.
    async fn connect_raw(
        &self,
        addr: &TransportAddress,
        source: u8,
    ) -> Option<std::io::Result<Box<dyn RawIo>>>;
}

/// A raw byte connection to a listener, for the hostile-input cases.
pub trait RawIo: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> RawIo for T {}

/// Builds a fresh harness instance (each trial gets its own, so trials never share state).
pub type HarnessFactory = fn() -> Arc<dyn Harness>;
