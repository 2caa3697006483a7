//! Bluetooth LE transport for BitCraps: a GATT link layer with three backends, MTU
//! fragmentation, and a byte stream for the core's Noise channel to run on.
//!
//! * [`link`]: the link-layer abstraction ([`BleAdapter`], [`BleLink`]).
//! * [`fragment`]: sans-IO [`Fragmenter`] / [`Reassembler`] with caps.
//! * [`sim`]: a deterministic simulated radio implementing the link layer.
//! * [`stream`]: [`BleStream`], `AsyncRead + AsyncWrite` over one link.
//! * [`central`]: the central role on btleplug.
//! * `peripheral` (feature `peripheral`, Linux): the peripheral role on BlueZ via bluer.
//! * [`mesh`]: mesh mode, advertising and scanning at once, with reconnect backoff.
//! * [`transport`]: [`BleTransport`], the core `Transport` with the Noise channel on each link.
//! * [`uuids`]: the GATT service and characteristic UUIDs.

pub mod central;
pub mod fragment;
pub mod link;
pub mod mesh;
#[cfg(all(feature = "peripheral", target_os = "linux"))]
pub mod peripheral;
pub mod sim;
mod registry;
pub mod stream;
pub mod transport;
pub mod uuids;

pub use fragment::{FragmentError, Fragmenter, Reassembler, ReassemblerConfig};
pub use link::{
    AdvertisingConfig, BleAdapter, BleLink, DeviceId, DiscoveredDevice, LinkDownReason, LinkError,
    LinkInfo, QueueConfig, Role,
};
pub use mesh::{EnhancedBluetoothStats, MeshConfig, MeshConnection, MeshNode};
pub use registry::LinkStats;
pub use stream::{BleReadHalf, BleStream, BleStreamConfig, BleWriteHalf, StreamStats};
pub use transport::{link_error, BleConfig, BleListener, BleTransport};
