//! The backends' harnesses, one module each, independent of one another. Each module exposes
//! `pub fn harness() -> Arc<dyn Harness>`, which `tests/conformance.rs` lists in `BACKENDS`.

#[cfg(target_os = "linux")]
pub mod ble_bluez;
pub mod ble_sim;
pub mod memory;
pub mod quic;
pub mod tcp;
pub mod udp;
pub mod websocket;
