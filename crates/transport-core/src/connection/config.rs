//! [`ChannelConfig`]: the knobs of a secured connection, with sane defaults.

use std::time::Duration;

use crate::secure::{CipherSuite, HandshakeMode};

/// Settings of the secure channel and of the connection queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelConfig {
    /// A handshake that has not finished by then fails (and frees its slot). Default 10 s.
    pub handshake_timeout: Duration,
    /// The cipher suite this side proposes when it dials. Default: AES-GCM on x86-64/aarch64.
    pub suite: CipherSuite,
    /// The suites this side accepts when it listens. Default: all.
    pub accepted_suites: Vec<CipherSuite>,
    /// IK (one round trip) when the dialer knows the peer's static key, or always XX. Default:
    /// [`HandshakeMode::Auto`].
    pub handshake: HandshakeMode,
    /// The largest application message, in bytes, either way. Default 1 MiB.
    pub max_message_size: usize,
    /// Messages queued for sending before `send` waits. Default 256.
    pub send_queue: usize,
    /// Payload bytes queued for sending before `send` waits (at least `max_message_size`, so
    /// any message fits). Default 256 KiB. With `send_queue` it bounds a connection's send
    /// memory and how much a message queued later waits behind: many small messages fill the
    /// queue (deep batches), a few large ones the byte budget.
    pub send_buffer_bytes: usize,
    /// Received deliveries (one message, or the messages of one BATCH record) queued for the
    /// application before the link stops reading. Default 64.
    pub recv_queue: usize,
    /// Received payload bytes queued for the application before the link stops reading
    /// (at least `max_message_size`). Default 4 MiB.
    pub recv_buffer_bytes: usize,
    /// How long `close` waits for queued messages to flush and the remote to acknowledge.
    /// Default 5 s.
    pub close_timeout: Duration,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            suite: CipherSuite::default(),
            accepted_suites: CipherSuite::ALL.to_vec(),
            handshake: HandshakeMode::default(),
            max_message_size: 1024 * 1024,
            send_queue: 256,
            send_buffer_bytes: 256 * 1024,
            recv_queue: 64,
            recv_buffer_bytes: 4 * 1024 * 1024,
            close_timeout: Duration::from_secs(5),
        }
    }
}

impl ChannelConfig {
    /// The send budget in bytes actually used: at least one maximum message, at most
    /// `u32::MAX`.
    pub fn effective_send_budget(&self) -> usize {
        self.send_buffer_bytes
            .max(self.max_message_size)
            .clamp(1, u32::MAX as usize)
    }

    /// The receive budget in bytes actually used: at least one maximum message, at most
    /// `u32::MAX`.
    pub fn effective_recv_budget(&self) -> usize {
        self.recv_buffer_bytes
            .max(self.max_message_size)
            .clamp(1, u32::MAX as usize)
    }
}
