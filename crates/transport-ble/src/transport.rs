//! [`BleTransport`]: the core [`Transport`] over any [`BleAdapter`] (simulated radio, btleplug
//! central, bluer peripheral), with the core's Noise channel on every link, so a BLE link
//! proves its [`PeerId`] like any other backend.
//!
//! * `listen(ble://local)` (or `ble://<this adapter's id>`) starts advertising the BitCraps
//!   service and accepts incoming links; inbound limits are keyed by
//!   `SourceKey::Opaque(hash of the remote device id)`, checked before the handshake.
//! * `dial(ble://<device id>, expect)` connects as central (bounded by
//!   [`BleConfig::connect_timeout`] and the handshake timeout) and runs the handshake.
//! * Link-layer failures become [`Error::Io`] whose source is the [`LinkError`] (see
//!   [`link_error`]); a connect timeout is [`Error::Timeout`].

mod listener;

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::stream::{spawn_stream_listener, RawStream, StreamContext};
use bitcraps_transport_core::{
    Capabilities, ChannelConfig, Connection, ConnectionLimits, Error, Keypair, Listener, PeerId,
    Result, SharedLimiter, SourceKey, Transport, TransportAddress, TransportKind,
};

use crate::link::{BleAdapter, BleLink, DeviceId, LinkError};
use crate::registry::{LinkRegistry, LinkStats};
use crate::stream::{BleReadHalf, BleStream, BleStreamConfig, BleWriteHalf};
use crate::AdvertisingConfig;

pub use listener::BleListener;

/// The address text that means "this adapter" when listening.
pub const LOCAL: &str = "local";

/// Settings of a [`BleTransport`].
#[derive(Debug, Clone)]
pub struct BleConfig {
    /// Secure-channel and queue settings.
    pub channel: ChannelConfig,
    /// Connection limits (ignored when a shared limiter is given).
    pub limits: ConnectionLimits,
    /// Fragmentation and reassembly settings of every link.
    pub stream: BleStreamConfig,
    /// How long a connect (scan-free: the device must be known to the adapter) may take.
    pub connect_timeout: Duration,
    /// The local name advertised while listening.
    pub local_name: String,
}

impl Default for BleConfig {
    /// Default channel, limits and stream settings, 10 s connects, advertised as `bitcraps`.
    fn default() -> Self {
        Self {
            channel: ChannelConfig::default(),
            limits: ConnectionLimits::default(),
            stream: BleStreamConfig::default(),
            connect_timeout: Duration::from_secs(10),
            local_name: "bitcraps".into(),
        }
    }
}

/// The BLE backend. Cheap to clone.
#[derive(Clone)]
pub struct BleTransport {
    adapter: Arc<dyn BleAdapter>,
    ctx: StreamContext,
    stream: BleStreamConfig,
    connect_timeout: Duration,
    local_name: String,
    links: LinkRegistry,
    listen_generation: Arc<AtomicU64>,
}

impl std::fmt::Debug for BleTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BleTransport")
            .field("adapter", &self.adapter.local_id())
            .field("peer", &self.ctx.identity.peer_id())
            .finish_non_exhaustive()
    }
}

/// A stable 64-bit hash (FNV-1a) of a device id: the inbound limiter's source key.
pub fn source_key(device: &DeviceId) -> SourceKey {
    let hash = device
        .as_str()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    SourceKey::Opaque(hash)
}

/// The link-layer error inside a core error from this backend, if there is one.
pub fn link_error(err: &Error) -> Option<&LinkError> {
    match err {
        Error::Io { source, .. } => source.get_ref()?.downcast_ref::<LinkError>(),
        _ => None,
    }
}

/// Maps a link-layer failure to the core's error, keeping the [`LinkError`] as the source.
pub fn to_core_error(context: &'static str, err: LinkError) -> Error {
    let kind = match &err {
        LinkError::Timeout(after) => {
            return Error::Timeout {
                operation: context,
                after: *after,
            }
        }
        LinkError::Refused(_) | LinkError::LinkCapReached { .. } => {
            io::ErrorKind::ConnectionRefused
        }
        LinkError::DeviceNotFound(_) | LinkError::ServiceMissing(_) => io::ErrorKind::NotFound,
        LinkError::Unreachable(_) => io::ErrorKind::HostUnreachable,
        LinkError::AlreadyListening => io::ErrorKind::AddrInUse,
        LinkError::Unsupported { .. } => io::ErrorKind::Unsupported,
        LinkError::LinkDown(_) | LinkError::Closing => io::ErrorKind::ConnectionAborted,
        _ => io::ErrorKind::Other,
    };
    Error::io(context, io::Error::new(kind, err))
}

/// The address of a device.
pub fn device_address(device: &DeviceId) -> TransportAddress {
    TransportAddress::Bluetooth(device.as_str().to_string())
}

/// Wraps a fresh link in a stream, registers it and splits it for the core.
pub(crate) fn raw_stream(
    link: BleLink,
    config: BleStreamConfig,
    adapter: &Arc<dyn BleAdapter>,
    registry: &LinkRegistry,
    rssi: Option<i16>,
) -> RawStream<BleReadHalf, BleWriteHalf> {
    let watch = link.watch();
    let local = adapter.local_id();
    let remote = device_address(link.remote());
    let stream = BleStream::with_config(link, config);
    registry.register(watch, rssi, stream.counters(), adapter.clone());
    let (reader, writer) = stream.into_split();
    RawStream {
        reader,
        writer,
        local_addr: device_address(&local),
        remote_addr: remote,
    }
}

impl BleTransport {
    /// A BLE transport over `adapter` with default settings and its own limiter.
    pub fn new(adapter: Arc<dyn BleAdapter>, keypair: Keypair) -> Self {
        Self::with_config(adapter, keypair, BleConfig::default())
    }

    /// A BLE transport with these settings and its own limiter.
    pub fn with_config(adapter: Arc<dyn BleAdapter>, keypair: Keypair, config: BleConfig) -> Self {
        let limiter = SharedLimiter::new(config.limits);
        let mut transport = Self::with_limiter(
            adapter,
            LocalIdentity::new(keypair),
            config.channel,
            limiter,
        );
        transport.stream = config.stream;
        transport.connect_timeout = config.connect_timeout;
        transport.local_name = config.local_name;
        transport
    }

    /// A BLE transport sharing `identity` and `limiter` with other transports (default stream
    /// settings, 10 s connects).
    pub fn with_limiter(
        adapter: Arc<dyn BleAdapter>,
        identity: Arc<LocalIdentity>,
        channel: ChannelConfig,
        limiter: SharedLimiter,
    ) -> Self {
        let defaults = BleConfig::default();
        Self {
            adapter,
            ctx: StreamContext {
                identity,
                config: Arc::new(channel),
                limiter,
                kind: TransportKind::Ble,
            },
            stream: defaults.stream,
            connect_timeout: defaults.connect_timeout,
            local_name: defaults.local_name,
            links: LinkRegistry::default(),
            listen_generation: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The adapter this transport runs on.
    pub fn adapter(&self) -> &Arc<dyn BleAdapter> {
        &self.adapter
    }

    /// The limiter this transport consults.
    pub fn limiter(&self) -> &SharedLimiter {
        &self.ctx.limiter
    }

    /// Statistics of every live link (both roles) of this transport.
    pub fn link_stats(&self) -> Vec<LinkStats> {
        self.links.snapshot()
    }

    /// The device an address names, for dialing.
    fn device(&self, addr: &TransportAddress) -> Result<DeviceId> {
        match addr {
            TransportAddress::Bluetooth(id) => Ok(DeviceId::new(id.as_str())),
            other => Err(Error::Unsupported(other.clone())),
        }
    }
}

#[async_trait]
impl Transport for BleTransport {
    fn kind(&self) -> TransportKind {
        TransportKind::Ble
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::reliable(self.ctx.config.max_message_size)
    }

    fn local_peer_id(&self) -> PeerId {
        self.ctx.identity.peer_id()
    }

    fn supports(&self, addr: &TransportAddress) -> bool {
        matches!(addr, TransportAddress::Bluetooth(_))
    }

    async fn listen(&self, addr: &TransportAddress) -> Result<Box<dyn Listener>> {
        let local = self.adapter.local_id();
        let asked = self.device(addr)?;
        if asked.as_str() != LOCAL && asked != local {
            // Another adapter's address: not served here.
            return Err(Error::Unsupported(addr.clone()));
        }
        // Before advertising: a listener dropped earlier must not stop this advertisement.
        let generation = self.listen_generation.fetch_add(1, Ordering::AcqRel) + 1;
        let incoming = self
            .adapter
            .listen()
            .await
            .map_err(|e| to_core_error("ble listen", e))?;
        self.adapter
            .start_advertising(AdvertisingConfig::new(self.local_name.clone()))
            .await
            .map_err(|e| to_core_error("ble advertise", e))?;
        let local_addr = device_address(&local);
        tracing::info!(address = %local_addr, "ble listening");
        let acceptor = listener::BleAcceptor {
            incoming,
            adapter: self.adapter.clone(),
            stream: self.stream,
            links: self.links.clone(),
        };
        let inner = spawn_stream_listener(acceptor, local_addr, self.ctx.clone());
        Ok(Box::new(BleListener::new(
            inner,
            self.adapter.clone(),
            (self.listen_generation.clone(), generation),
        )))
    }

    async fn dial(&self, addr: &TransportAddress, expect: Option<PeerId>) -> Result<Connection> {
        let device = self.device(addr)?;
        let adapter = self.adapter.clone();
        let (timeout, config, links) = (self.connect_timeout, self.stream, self.links.clone());
        self.ctx
            .dial(addr, expect, || async move {
                let link = adapter
                    .connect(&device, timeout)
                    .await
                    .map_err(|e| to_core_error("ble connect", e))?;
                Ok(raw_stream(link, config, &adapter, &links, None))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_keys_are_stable_and_distinct() {
        let a = DeviceId::new("AA:BB:CC:DD:EE:FF");
        assert_eq!(
            source_key(&a),
            source_key(&DeviceId::new("AA:BB:CC:DD:EE:FF"))
        );
        assert_ne!(
            source_key(&a),
            source_key(&DeviceId::new("AA:BB:CC:DD:EE:FE"))
        );
        // FNV-1a of the empty string is the offset basis: the hash is the documented one.
        assert_eq!(
            source_key(&DeviceId::new("")),
            SourceKey::Opaque(0xcbf2_9ce4_8422_2325)
        );
    }

    #[test]
    fn link_errors_stay_inside_core_errors() {
        let cap = LinkError::LinkCapReached {
            device: DeviceId::new("sim:1"),
            limit: 7,
        };
        let err = to_core_error("ble connect", cap);
        assert!(matches!(err, Error::Io { .. }));
        assert!(matches!(
            link_error(&err),
            Some(LinkError::LinkCapReached { limit: 7, .. })
        ));
        let err = to_core_error("ble connect", LinkError::Timeout(Duration::from_secs(3)));
        assert!(matches!(
            err,
            Error::Timeout { operation: "ble connect", after } if after == Duration::from_secs(3)
        ));
        assert!(link_error(&Error::ListenerClosed).is_none());
    }
}
