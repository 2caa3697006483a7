//! [`UdpConfig`]: the knobs of the UDP backend, and [`DatagramStats`]: what it dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bitcraps_transport_core::{ChannelConfig, ConnectionLimits};

use crate::proto::dial::RetryTiming;
use crate::proto::session::SessionTiming;
use crate::proto::wire::{HANDSHAKE_1_LEN, HANDSHAKE_2_LEN, MAX_UDP_PAYLOAD, SEALED_OVERHEAD};

/// The smallest datagram limit: the handshake datagrams, and a sealed REJECT (limit id, retry
/// time and a reason of up to 256 bytes).
const MIN_DATAGRAM: usize = max_usize(
    max_usize(HANDSHAKE_1_LEN, HANDSHAKE_2_LEN),
    SEALED_OVERHEAD + 5 + 256,
);

const fn max_usize(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// The default largest message: fits one datagram on any path with the IPv6 minimum MTU.
pub const DEFAULT_MAX_PAYLOAD: usize = 1200;
/// The largest `max_payload` accepted (a larger value is clamped to it).
pub const MAX_PAYLOAD_LIMIT: usize = MAX_UDP_PAYLOAD - SEALED_OVERHEAD;

/// Settings of a [`UdpTransport`](crate::UdpTransport).
#[derive(Debug, Clone)]
pub struct UdpConfig {
    /// Secure-channel and queue settings (`handshake_timeout`, suites, queues,
    /// `close_timeout`). Its `max_message_size` is replaced by `max_payload`.
    pub channel: ChannelConfig,
    /// Connection limits (ignored when a shared limiter is given).
    pub limits: ConnectionLimits,
    /// The largest application message, one datagram each (default 1,200 bytes; at most
    /// [`MAX_PAYLOAD_LIMIT`]).
    pub max_payload: usize,
    /// A keep-alive is sent when a connection sent nothing for this long (default 10 s).
    pub keepalive: Duration,
    /// A connection that received nothing authentic for this long ends (default 30 s).
    pub idle_timeout: Duration,
    /// The first handshake retransmission (default 200 ms; doubles, at most 2 s apart).
    pub handshake_resend: Duration,
    /// Transmissions of each handshake datagram, the first included (default 8).
    pub handshake_attempts: u32,
    /// Associations one listening socket holds at most: handshakes, refusals and connections
    /// (default 1,024).
    pub max_associations: usize,
    /// Datagrams queued per connection before further ones are dropped (default 256).
    pub session_queue: usize,
}

impl Default for UdpConfig {
    fn default() -> Self {
        Self {
            channel: ChannelConfig::default(),
            limits: ConnectionLimits::default(),
            max_payload: DEFAULT_MAX_PAYLOAD,
            keepalive: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            handshake_resend: Duration::from_millis(200),
            handshake_attempts: 8,
            max_associations: 1024,
            session_queue: 256,
        }
    }
}

impl UdpConfig {
    /// `max_payload` clamped to what one datagram can carry (at least 1).
    pub fn effective_max_payload(&self) -> usize {
        self.max_payload.clamp(1, MAX_PAYLOAD_LIMIT)
    }

    /// The channel settings connections are built with (`max_message_size` = max payload).
    pub(crate) fn connection_channel(&self) -> ChannelConfig {
        ChannelConfig {
            max_message_size: self.effective_max_payload(),
            ..self.channel.clone()
        }
    }

    pub(crate) fn retry_timing(&self) -> RetryTiming {
        RetryTiming {
            first_resend: self.handshake_resend,
            max_resend: Duration::from_secs(2).max(self.handshake_resend),
            attempts: self.handshake_attempts.max(1),
            timeout: self.channel.handshake_timeout,
        }
    }

    pub(crate) fn session_timing(&self) -> SessionTiming {
        SessionTiming {
            keepalive: self.keepalive,
            idle_timeout: self.idle_timeout,
            close_timeout: self.channel.close_timeout,
            close_resend: Duration::from_millis(100),
        }
    }

    /// The largest datagram this configuration sends or accepts: a sealed message of
    /// `max_payload`, and never less than the handshake datagrams and a sealed REJECT need (so
    /// a small `max_payload` cannot make every handshake datagram too large to be read).
    pub(crate) fn max_datagram(&self) -> usize {
        (self.effective_max_payload() + SEALED_OVERHEAD).max(MIN_DATAGRAM)
    }
}

/// Datagrams a transport dropped, over all its listeners and connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DatagramStats {
    /// Malformed, oversized, or for no known association.
    pub dropped_unknown: u64,
    /// Replayed or older than the replay window.
    pub dropped_replayed: u64,
    /// Failed authentication (tampered or forged).
    pub dropped_unauthentic: u64,
    /// Dropped because the connection's queue was full (the application reads too slowly).
    pub dropped_queue_full: u64,
    /// Sends that failed at the socket.
    pub send_errors: u64,
}

#[derive(Debug, Default)]
pub(crate) struct StatCounters {
    pub(crate) dropped_unknown: AtomicU64,
    pub(crate) dropped_replayed: AtomicU64,
    pub(crate) dropped_unauthentic: AtomicU64,
    pub(crate) dropped_queue_full: AtomicU64,
    pub(crate) send_errors: AtomicU64,
}

impl StatCounters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> DatagramStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DatagramStats {
            dropped_unknown: get(&self.dropped_unknown),
            dropped_replayed: get(&self.dropped_replayed),
            dropped_unauthentic: get(&self.dropped_unauthentic),
            dropped_queue_full: get(&self.dropped_queue_full),
            send_errors: get(&self.send_errors),
        }
    }
}
