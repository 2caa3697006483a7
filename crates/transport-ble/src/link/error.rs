//! Link-layer errors and the reasons a link goes down.

use std::fmt;
use std::time::Duration;

use super::DeviceId;

/// Why a link went down.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkDownReason {
    /// This side closed the link (graceful close, abort, or every handle dropped).
    LocalClose,
    /// The remote side closed the link.
    RemoteClose,
    /// The radio connection was lost (supervision timeout, too many retransmissions, or the
    /// simulator's random or explicit drop).
    ConnectionLost,
    /// The remote moved out of range (the simulator's partitions).
    OutOfRange,
    /// The local adapter went away (powered off, removed, or the simulated device dropped).
    AdapterGone,
    /// The platform stack reported an error; the text is the stack's.
    Failed(String),
}

impl fmt::Display for LinkDownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LocalClose => f.write_str("closed locally"),
            Self::RemoteClose => f.write_str("closed by the remote"),
            Self::ConnectionLost => f.write_str("connection lost"),
            Self::OutOfRange => f.write_str("remote out of range"),
            Self::AdapterGone => f.write_str("local adapter gone"),
            Self::Failed(why) => write!(f, "stack error: {why}"),
        }
    }
}

impl LinkDownReason {
    /// The reason the other end of the link should see when this end goes down for `self`.
    pub fn for_remote(&self) -> Self {
        match self {
            Self::LocalClose => Self::RemoteClose,
            Self::RemoteClose => Self::LocalClose,
            Self::AdapterGone | Self::Failed(_) => Self::ConnectionLost,
            other => other.clone(),
        }
    }
}

/// Errors of the link layer and of the adapters.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The backend does not offer this operation (a btleplug central cannot advertise; a bluer
    /// peripheral cannot scan). Try another adapter; this is not a failure of the device.
    #[error("{operation} is not supported by the {backend} backend")]
    Unsupported {
        /// What was asked.
        operation: &'static str,
        /// Which backend refused.
        backend: &'static str,
    },
    /// No usable Bluetooth adapter (none present, powered off, or no system D-Bus).
    #[error("no usable Bluetooth adapter: {0}")]
    AdapterUnavailable(String),
    /// The device is not known to the adapter (never discovered, or gone).
    #[error("device {0} not found")]
    DeviceNotFound(DeviceId),
    /// The device is known but cannot be reached (out of range / in another partition).
    #[error("device {0} is unreachable")]
    Unreachable(DeviceId),
    /// The device is not accepting connections (not advertising, or nobody listening).
    #[error("device {0} refused the connection")]
    Refused(DeviceId),
    /// A side of the link already has as many links as its cap allows.
    #[error("link cap reached on {device} ({limit} links)")]
    LinkCapReached {
        /// The device whose cap was hit (the local one or the remote).
        device: DeviceId,
        /// Its cap.
        limit: usize,
    },
    /// The operation did not complete in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The link is down; sends fail from then on.
    #[error("link down: {0}")]
    LinkDown(LinkDownReason),
    /// The link is closing gracefully; no more sends are accepted.
    #[error("link is closing")]
    Closing,
    /// The send queue is full (only from the non-waiting `try_send`).
    #[error("send queue full")]
    QueueFull,
    /// A payload larger than the link's maximum ATT payload.
    #[error("payload of {len} bytes exceeds the link maximum of {max}")]
    PayloadTooLarge {
        /// The payload's length.
        len: usize,
        /// The link's maximum payload.
        max: usize,
    },
    /// An MTU outside `23..=517`.
    #[error("MTU {mtu} outside 23..=517")]
    InvalidMtu {
        /// The rejected MTU.
        mtu: u16,
    },
    /// Incoming links are already being taken by another [`IncomingLinks`](super::IncomingLinks).
    #[error("already listening for incoming links")]
    AlreadyListening,
    /// The peer does not offer the BitCraps GATT service or one of its characteristics.
    #[error("GATT service or characteristic missing on {0}")]
    ServiceMissing(DeviceId),
    /// The platform Bluetooth stack failed; the text is the stack's.
    #[error("Bluetooth stack error: {0}")]
    Stack(String),
}
