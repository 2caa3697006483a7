//! Bluetooth LE transport for BitCraps: a GATT link layer with three backends, MTU
//! fragmentation, and a byte stream for the core's Noise channel to run on.
//!
//! * [`link`]: the link-layer abstraction ([`BleAdapter`], [`BleLink`]).
//! * [`fragment`]: sans-IO [`Fragmenter`] / [`Reassembler`] with caps.
//! * [`sim`]: a deterministic simulated radio implementing the link layer.
//! * [`stream`]: [`BleStream`], `AsyncRead + AsyncWrite` over one link.
//! * [`central`]: the central role on btleplug.
//! * `peripheral` (feature `peripheral`, Linux): the peripheral role on BlueZ via bluer.
//! * [`uuids`]: the GATT service and characteristic UUIDs.

pub mod central;
pub mod fragment;
pub mod link;
#[cfg(all(feature = "peripheral", target_os = "linux"))]
pub mod peripheral;
pub mod sim;
pub mod stream;
pub mod uuids;

pub use fragment::{FragmentError, Fragmenter, Reassembler, ReassemblerConfig};
pub use link::{
    AdvertisingConfig, BleAdapter, BleLink, DeviceId, DiscoveredDevice, LinkDownReason, LinkError,
    LinkInfo, QueueConfig, Role,
};
pub use stream::{BleStream, BleStreamConfig};
