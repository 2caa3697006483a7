//! [`QuicConfig`]: the settings of a [`QuicTransport`](crate::QuicTransport).

use std::sync::Arc;
use std::time::Duration;

use bitcraps_transport_core::{ChannelConfig, ConnectionLimits};

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
    /// The quinn transport settings for one side. `accept_streams`: how many bidirectional
    /// streams the remote may open (1 on the listener's side, 0 on the dialer's).
    pub(crate) fn transport(&self, accept_streams: u32) -> Arc<quinn::TransportConfig> {
        let mut t = quinn::TransportConfig::default();
        t.keep_alive_interval(Some(self.keep_alive_interval));
        t.max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(self.idle_timeout)
                .unwrap_or_else(|_| quinn::IdleTimeout::from(quinn::VarInt::MAX)),
        ));
        t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(accept_streams));
        t.max_concurrent_uni_streams(quinn::VarInt::from_u32(0));
        t.datagram_receive_buffer_size(None);
        Arc::new(t)
    }
}
