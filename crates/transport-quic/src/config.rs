//! [`QuicConfig`]: the settings of a [`QuicTransport`](crate::QuicTransport).

use std::sync::Arc;
use std::time::Duration;

use bitcraps_transport_core::{ChannelConfig, ConnectionLimits};

/// The smallest MTU change path MTU discovery probes for: from quinn's initial 1200 bytes,
/// one probe at 1326, then one at its upper bound 1452 (two probes per side on a path that
/// carries 1452-byte datagrams, as most do; a path that carries 1326 but not 1452 stays at 1326).
const MTU_PROBE_STEP: u16 = 100;

/// Settings of a [`QuicTransport`](crate::QuicTransport).
///
/// Of [`ChannelConfig`], QUIC uses `handshake_timeout` (the whole dial or accept: QUIC and
/// TLS handshakes plus the stream opening), `max_message_size`, the queue sizes, the receive
/// budget and `close_timeout`; the Noise cipher-suite fields do not apply (TLS 1.3 negotiates
/// its own AEAD).
#[derive(Debug, Clone)]
pub struct QuicConfig {
    /// Connection and queue settings.
    pub channel: ChannelConfig,
    /// Connection limits (ignored when a shared limiter is given).
    pub limits: ConnectionLimits,
    /// How often an idle connection sends a QUIC PING so that NATs and the remote's idle timer
    /// keep it open (default 5 s; must be below `idle_timeout`).
    pub keep_alive_interval: Duration,
    /// A connection that hears nothing from the remote for this long is closed
    /// (`Error::LinkLost`); the effective value is the smaller of both sides' (default 30 s).
    pub idle_timeout: Duration,
    /// Ask every new remote address to prove it can receive (a QUIC Retry, one extra round
    /// trip) before any handshake work. Off by default: a Retry is then sent only when half the
    /// limiter's handshakes-in-flight cap is in use.
    pub always_retry: bool,
}

impl Default for QuicConfig {
    fn default() -> Self {
        Self {
            channel: ChannelConfig::default(),
            limits: ConnectionLimits::default(),
            keep_alive_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            always_retry: false,
        }
    }
}

impl QuicConfig {
    /// The quinn transport settings this backend gives one side of a connection
    /// (`accept_streams`: how many bidirectional streams the remote may open, 1 on the
    /// listener's side, 0 on the dialer's): these keep-alive and idle timeouts, one stream, no
    /// unidirectional streams or datagrams, path MTU discovery in 100-byte steps. Public so
    /// that tools and baselines (the raw quinn side of `cargo xtask bench`) run quinn exactly
    /// as this backend does.
    pub fn quinn_transport(&self, accept_streams: u32) -> Arc<quinn::TransportConfig> {
        let mut t = quinn::TransportConfig::default();
        t.keep_alive_interval(Some(self.keep_alive_interval));
        t.max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(self.idle_timeout)
                .unwrap_or_else(|_| quinn::IdleTimeout::from(quinn::VarInt::MAX)),
        ));
        t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(accept_streams));
        t.max_concurrent_uni_streams(quinn::VarInt::from_u32(0));
        t.datagram_receive_buffer_size(None);
        // Path MTU discovery in coarse steps: quinn's default (20-byte steps) spends about five
        // padded probes per side of every connection on a binary search between 1200 and 1452
        // bytes, about a sixth of a connection setup's instructions on loopback.
        let mut mtud = quinn::MtuDiscoveryConfig::default();
        mtud.minimum_change(MTU_PROBE_STEP);
        t.mtu_discovery_config(Some(mtud));
        Arc::new(t)
    }
}
