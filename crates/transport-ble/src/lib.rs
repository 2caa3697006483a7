//! Bluetooth LE transport for BitCraps: a GATT link layer with three backends, MTU
//! fragmentation, a byte stream for the core's Noise channel to run on, the core `Transport`
//! ([`BleTransport`]) and a mesh mode ([`MeshNode`]). See `docs/protocol.md` (section 9) and `docs/backends.md` for the wire
//! formats, the simulator's model and measured efficiency.
//!
//! ```no_run
//! # async fn run() -> bitcraps_transport_core::Result<()> {
//! use std::sync::Arc;
//! use bitcraps_transport_ble::sim::{SimConfig, SimDeviceConfig, SimRadio};
//! use bitcraps_transport_ble::BleTransport;
//! use bitcraps_transport_core::{Keypair, Listener, Transport};
//!
//! let radio = SimRadio::new(SimConfig::default());
//! let table = BleTransport::new(Arc::new(radio.add_device(SimDeviceConfig::default())), Keypair::generate());
//! let mut listener = table.listen(&"ble://local".parse()?).await?;
//! let phone = BleTransport::new(Arc::new(radio.add_device(SimDeviceConfig::default())), Keypair::generate());
//! let conn = phone.dial(listener.local_addr(), Some(table.local_peer_id())).await?;
//! let mut accepted = listener.accept_connection().await?;
//! conn.send("bet 5 on 7".into()).await?;
//! assert_eq!(accepted.recv().await?.as_deref(), Some(&b"bet 5 on 7"[..]));
//! # Ok(()) }
//! ```
//!
//! * [`link`]: the link-layer abstraction ([`BleAdapter`], [`BleLink`]).
//! * [`fragment`]: sans-IO [`Fragmenter`] / [`Reassembler`] with caps.
//! * [`sim`]: a deterministic simulated radio implementing the link layer.
//! * [`stream`]: [`BleStream`], `AsyncRead + AsyncWrite` over one link.
//! * `central` (feature `central`, on by default): the central role on btleplug.
//! * `peripheral` (feature `peripheral`, on by default, Linux): the peripheral role on BlueZ
//!   via bluer.
//! * `emulator` (feature `bluez-emulator`, Linux): starts the BlueZ emulator of
//!   `bluez-emu/` (in this crate) for tests of both roles without a radio.
//! * [`mesh`]: mesh mode, advertising and scanning at once, with reconnect backoff.
//! * [`transport`]: [`BleTransport`], the core `Transport` with the Noise channel on each link.
//! * [`uuids`]: the GATT service and characteristic UUIDs.

#[cfg(feature = "central")]
pub mod central;
#[cfg(all(feature = "bluez-emulator", target_os = "linux"))]
pub mod emulator;
pub mod fragment;
pub mod link;
pub mod mesh;
#[cfg(all(feature = "peripheral", target_os = "linux"))]
pub mod peripheral;
mod registry;
pub mod sim;
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
