//! The GATT link layer: what every BLE backend (btleplug central, bluer peripheral, the
//! simulated radio) provides, and what the fragmenter and [`BleStream`](crate::BleStream) use.
//!
//! # Shape of the abstraction, and why
//!
//! * [`BleAdapter`] is an **object-safe** trait (`async_trait`). The transport and the mesh
//!   (phase 2) hold adapters as `Arc<dyn BleAdapter>`: a mesh node drives a btleplug central and a
//!   bluer peripheral side by side, and tests swap in the simulated radio, all chosen at run time.
//!   The cost, one boxed future per call, is nothing next to a BLE round trip (milliseconds).
//! * A link is **not** a trait but one concrete type, [`BleLink`], built from bounded queues by
//!   [`new_link`]. Every backend has the same shape (an ordered queue of ATT payloads each way,
//!   a negotiated MTU, a down state), so the backend only runs a driver task on the other ends
//!   of the queues ([`LinkDriver`]). This gives every backend the same backpressure, ordering
//!   and close semantics for free, keeps the link `Send + 'static` with no generics leaking into
//!   the stream and transport layers, and lets the two directions be split
//!   ([`BleLink::into_split`]) so sending and receiving never contend for a lock.
//!
//! # Semantics every backend keeps
//!
//! * Payloads are ATT payloads (one write or one notification), at most
//!   [`LinkInfo::max_payload`] bytes (normally MTU - 3).
//! * Write credit: the send queue holds [`QueueConfig::send_credit`] payloads; `send` waits when
//!   it is full. Writes leave in the order they were queued, and arrive in that order or not at
//!   all (a connected BLE link retransmits until it delivers or drops).
//! * The receive queue holds [`QueueConfig::recv_capacity`] payloads; when the application stops
//!   reading, the backend stops reading the radio, and the remote writer is held back.
//! * Close: [`LinkSender::close`] is graceful (queued payloads go out first, then the link goes
//!   down); dropping every sender does the same; [`LinkSender::abort`] drops the link at once.
//!   The remote side sees [`LinkDownReason::RemoteClose`].

mod adapter;
mod driver;
mod dual;
mod error;
mod handle;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

pub use adapter::{BleAdapter, IncomingLinks, Scan};
pub use driver::{new_link, IncomingQueue, LinkControl, LinkDriver, ReceiverGone, SendQueue};
pub use dual::DualAdapter;
pub use error::{LinkDownReason, LinkError};
pub use handle::{BleLink, LinkReceiver, LinkSender, LinkSink, LinkWatch};

/// The smallest ATT MTU a BLE link can have (the default before an MTU exchange).
pub const MIN_MTU: u16 = 23;
/// The largest ATT MTU a BLE link can negotiate (a 512-byte attribute value plus headers).
pub const MAX_MTU: u16 = 517;
/// Bytes of ATT header in a write command or a notification (opcode + handle).
pub const ATT_HEADER_LEN: u16 = 3;

/// The identifier of a remote (or local) BLE device, in the backend's stable text form: a MAC
/// address (`AA:BB:CC:DD:EE:FF`) or platform id for hardware, `sim:N` for the simulated radio.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(Arc<str>);

impl DeviceId {
    /// Wraps a backend's text form of a device identifier.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({})", self.0)
    }
}

/// Which side of the GATT connection this end of the link is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The GATT client: it scanned, connected, writes to the write characteristic and receives
    /// notifications.
    Central,
    /// The GATT server: it advertised, accepted, receives writes and sends notifications.
    Peripheral,
}

/// Facts about one link, fixed when the link comes up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    role: Role,
    remote: DeviceId,
    mtu: u16,
    max_payload: u16,
}

impl LinkInfo {
    /// A link with the given negotiated ATT MTU; the largest payload is `mtu - 3`.
    ///
    /// Fails with [`LinkError::InvalidMtu`] outside `23..=517`.
    pub fn new(role: Role, remote: DeviceId, mtu: u16) -> Result<Self, LinkError> {
        if !(MIN_MTU..=MAX_MTU).contains(&mtu) {
            return Err(LinkError::InvalidMtu { mtu });
        }
        Ok(Self {
            role,
            remote,
            mtu,
            max_payload: mtu - ATT_HEADER_LEN,
        })
    }

    /// Lowers the largest payload below `mtu - 3`, for stacks that cannot use the full MTU
    /// (BlueZ's notify socket loses the tail of a full-MTU packet, so bluer allows `mtu - 5`).
    /// Values above `mtu - 3` are clamped to it; the result is at least 1.
    pub fn with_max_payload(mut self, max_payload: u16) -> Self {
        self.max_payload = max_payload.clamp(1, self.mtu - ATT_HEADER_LEN);
        self
    }

    /// Central or peripheral.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The device at the other end.
    pub fn remote(&self) -> &DeviceId {
        &self.remote
    }

    /// The negotiated ATT MTU, in `23..=517`.
    pub fn mtu(&self) -> u16 {
        self.mtu
    }

    /// The largest payload one `send` accepts (normally `mtu - 3`).
    pub fn max_payload(&self) -> usize {
        usize::from(self.max_payload)
    }
}

/// Sizes of a link's bounded queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// Write credit: payloads queued for sending before `send` waits. At least 1.
    pub send_credit: usize,
    /// Payloads received and not yet read before the backend stops reading. At least 1.
    pub recv_capacity: usize,
}

impl Default for QueueConfig {
    /// 8 payloads of write credit (Android and iOS let a handful of write-without-response
    /// packets be in flight per connection event) and 32 received payloads.
    fn default() -> Self {
        Self {
            send_credit: 8,
            recv_capacity: 32,
        }
    }
}

/// What a peripheral advertises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdvertisingConfig {
    /// The local name put in the advertisement (truncated by the stack if it does not fit).
    pub local_name: String,
    /// The service UUID advertised; scanners filter on it. Normally [`crate::uuids::SERVICE`].
    pub service: Uuid,
    /// Requested transmit power in dBm, a hint the stack may ignore.
    pub tx_power_dbm: Option<i8>,
    /// Requested advertising interval, a hint the stack may ignore (BLE allows 20 ms..10.24 s).
    pub interval: Option<Duration>,
}

impl AdvertisingConfig {
    /// Advertise the BitCraps service under `local_name`, with the stack's default power and
    /// interval.
    pub fn new(local_name: impl Into<String>) -> Self {
        Self {
            local_name: local_name.into(),
            service: crate::uuids::SERVICE,
            tx_power_dbm: None,
            interval: None,
        }
    }
}

/// One advertiser seen by a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveredDevice {
    /// The device to pass to [`BleAdapter::connect`].
    pub id: DeviceId,
    /// The advertised local name, if any.
    pub name: Option<String>,
    /// Received signal strength in dBm, where the backend reports it.
    pub rssi: Option<i16>,
}
