//! The coordinator's wire envelopes (version 1): what a coordinator writes inside every
//! transport message of a connection. One transport message carries one or more envelopes back
//! to back, so many small messages and their acknowledgements share one record.
//!
//! Byte-exact format (all integers big-endian; `lane` is `0` interactive, `1` bulk):
//!
//! | envelope | bytes |
//! |---|---|
//! | `HELLO` | `10` version:u8 flags:u8 session:u64 window_messages:u32 window_bytes:u32 your_session:u64, then for lane 0 and lane 1: delivered:u64 received:u64 (59 bytes) |
//! | `DATA` | `11` lane:u8 seq:u64 len:u32 payload\[len\] |
//! | `DATA_NEXT` | `12` lane:u8 seq:u64 len:u32; the payload is the whole next transport message on this connection, exactly `len` bytes |
//! | `ACK` | `13` lane:u8 received:u64 delivered:u64 |
//! | `PING` | `14` nonce:u64 |
//! | `PONG` | `15` nonce:u64 |
//! | `CLOSE` | `16` code:u8 |
//!
//! `DATA_NEXT` must be the last envelope of its transport message. Anything else (an unknown
//! type, a truncated envelope, a lane other than 0 or 1, a `len` past the end) is an
//! [`EnvelopeError`]: the connection that carried it is closed. Decoding never allocates: a
//! `DATA` payload is a slice of the received transport message.

use bytes::Bytes;

/// `HELLO`: the first envelope on every connection, both ways.
pub const TYPE_HELLO: u8 = 0x10;
/// `DATA`: an application message inline.
pub const TYPE_DATA: u8 = 0x11;
/// `DATA_NEXT`: an application message whose payload is the next transport message.
pub const TYPE_DATA_NEXT: u8 = 0x12;
/// `ACK`: cumulative receive and delivery state of one lane.
pub const TYPE_ACK: u8 = 0x13;
/// `PING`: a probe, answered with a `PONG` on the same connection.
pub const TYPE_PING: u8 = 0x14;
/// `PONG`: the answer to a `PING`.
pub const TYPE_PONG: u8 = 0x15;
/// `CLOSE`: the sender ends the session (see [`CloseCode`]).
pub const TYPE_CLOSE: u8 = 0x16;
/// The envelope version this crate speaks.
pub const VERSION: u8 = 1;
/// Bytes before a `DATA` payload (type, lane, seq, len).
pub const DATA_HEADER: usize = 14;
/// Length of a `HELLO`.
pub const HELLO_LEN: usize = 59;
/// Length of an `ACK`.
pub const ACK_LEN: usize = 18;
/// Length of a `PING` or `PONG`.
pub const PROBE_LEN: usize = 9;
/// Length of a `CLOSE`.
pub const CLOSE_LEN: usize = 2;
/// `HELLO` flag: this session has sent data before (it is resumed, not new).
pub const FLAG_RESUMED: u8 = 0x01;
/// `HELLO` flag: the sender has not yet received the receiver's `HELLO` on this connection.
pub const FLAG_NEED_HELLO: u8 = 0x02;

/// Why a session was closed by the remote (the `CLOSE` code byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseCode {
    /// `0`: the remote application disconnected or shut down.
    Goodbye,
    /// `1`: we sent more than the remote's advertised window.
    FlowControl,
    /// `2`: we broke the envelope protocol.
    Protocol,
    /// `3`: the remote no longer knows our resumed session.
    SessionUnknown,
    /// Any other code (reserved).
    Other(u8),
}

impl CloseCode {
    /// The code byte.
    pub fn byte(self) -> u8 {
        match self {
            Self::Goodbye => 0,
            Self::FlowControl => 1,
            Self::Protocol => 2,
            Self::SessionUnknown => 3,
            Self::Other(b) => b,
        }
    }

    /// The code for a byte.
    pub fn from_byte(b: u8) -> Self {
        match b {
            0 => Self::Goodbye,
            1 => Self::FlowControl,
            2 => Self::Protocol,
            3 => Self::SessionUnknown,
            b => Self::Other(b),
        }
    }
}

impl std::fmt::Display for CloseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Goodbye => f.write_str("goodbye"),
            Self::FlowControl => f.write_str("flow control violated"),
            Self::Protocol => f.write_str("protocol violation"),
            Self::SessionUnknown => f.write_str("session unknown"),
            Self::Other(b) => write!(f, "code {b}"),
        }
    }
}

/// A malformed envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The transport message is empty.
    #[error("empty transport message")]
    Empty,
    /// The type byte is unknown.
    #[error("unknown envelope type {0:#04x}")]
    UnknownType(u8),
    /// The envelope is cut short.
    #[error("envelope of type {kind:#04x} is truncated")]
    Truncated {
        /// The type byte.
        kind: u8,
    },
    /// A lane other than 0 or 1.
    #[error("unknown lane {0}")]
    BadLane(u8),
    /// A `HELLO` of another version.
    #[error("unsupported envelope version {0}")]
    Version(u8),
    /// A `DATA_NEXT` that is not the last envelope of its transport message.
    #[error("DATA_NEXT is not the last envelope")]
    TrailingAfterDataNext,
    /// The payload announced by a `DATA_NEXT` has another length.
    #[error("DATA_NEXT announced {expected} bytes but the payload has {actual}")]
    PayloadLength {
        /// Announced.
        expected: u32,
        /// Received.
        actual: usize,
    },
    /// A field is out of range (an `ACK` with delivered > received, for example).
    #[error("invalid envelope: {0}")]
    Invalid(&'static str),
}

/// One lane's cumulative state as a receiver reports it: every seq below `delivered` reached
/// the application, every seq below `received` arrived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaneState {
    /// Seqs below this reached the remote application.
    pub delivered: u64,
    /// Seqs below this arrived (in order) at the remote.
    pub received: u64,
}

/// A decoded `HELLO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// [`FLAG_RESUMED`], [`FLAG_NEED_HELLO`].
    pub flags: u8,
    /// The sender's session id.
    pub session: u64,
    /// Messages the sender accepts beyond what it delivered (its receive window).
    pub window_messages: u32,
    /// Bytes the sender accepts beyond what it delivered.
    pub window_bytes: u32,
    /// The session of ours the sender tracks (0: none).
    pub your_session: u64,
    /// The sender's receive state of that session, per lane.
    pub lanes: [LaneState; 2],
}

/// A decoded envelope (zero-copy: payloads are slices of the received transport message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// The first envelope on a connection.
    Hello(Hello),
    /// An application message.
    Data {
        /// 0 interactive, 1 bulk.
        lane: u8,
        /// Its sequence number in the lane.
        seq: u64,
        /// The application payload.
        payload: Bytes,
    },
    /// An application message whose payload is the next transport message.
    DataNext {
        /// 0 interactive, 1 bulk.
        lane: u8,
        /// Its sequence number in the lane.
        seq: u64,
        /// The payload's length.
        len: u32,
    },
    /// One lane's receive state.
    Ack {
        /// 0 interactive, 1 bulk.
        lane: u8,
        /// The state.
        state: LaneState,
    },
    /// A probe.
    Ping(u64),
    /// The answer to a probe.
    Pong(u64),
    /// The remote ends the session.
    Close(CloseCode),
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

fn lane(b: u8) -> Result<u8, EnvelopeError> {
    if b <= 1 {
        Ok(b)
    } else {
        Err(EnvelopeError::BadLane(b))
    }
}

/// Iterates over the envelopes of one transport message. After the first error it yields
/// nothing more.
#[derive(Debug, Clone)]
pub struct Envelopes {
    frame: Bytes,
    pos: usize,
    failed: bool,
}

impl Envelopes {
    /// The envelopes of `frame`. An empty frame yields one [`EnvelopeError::Empty`].
    pub fn new(frame: Bytes) -> Self {
        Self {
            frame,
            pos: 0,
            failed: false,
        }
    }

    fn next_envelope(&mut self) -> Result<Envelope, EnvelopeError> {
        let b = &self.frame[self.pos..];
        let kind = b[0];
        let need = |n: usize| {
            if b.len() < n {
                Err(EnvelopeError::Truncated { kind })
            } else {
                Ok(())
            }
        };
        let (env, used) = match kind {
            TYPE_HELLO => {
                need(HELLO_LEN)?;
                if b[1] != VERSION {
                    return Err(EnvelopeError::Version(b[1]));
                }
                let lanes = [
                    LaneState {
                        delivered: u64_at(b, 27),
                        received: u64_at(b, 35),
                    },
                    LaneState {
                        delivered: u64_at(b, 43),
                        received: u64_at(b, 51),
                    },
                ];
                if lanes.iter().any(|l| l.delivered > l.received) {
                    return Err(EnvelopeError::Invalid("HELLO lane delivered > received"));
                }
                let hello = Hello {
                    flags: b[2],
                    session: u64_at(b, 3),
                    window_messages: u32_at(b, 11),
                    window_bytes: u32_at(b, 15),
                    your_session: u64_at(b, 19),
                    lanes,
                };
                (Envelope::Hello(hello), HELLO_LEN)
            }
            TYPE_DATA | TYPE_DATA_NEXT => {
                need(DATA_HEADER)?;
                let lane = lane(b[1])?;
                let seq = u64_at(b, 2);
                let len = u32_at(b, 10);
                if kind == TYPE_DATA_NEXT {
                    if b.len() != DATA_HEADER {
                        return Err(EnvelopeError::TrailingAfterDataNext);
                    }
                    (Envelope::DataNext { lane, seq, len }, DATA_HEADER)
                } else {
                    let end = DATA_HEADER
                        .checked_add(len as usize)
                        .filter(|&e| e <= b.len())
                        .ok_or(EnvelopeError::Truncated { kind })?;
                    let start = self.pos + DATA_HEADER;
                    let payload = self.frame.slice(start..self.pos + end);
                    (Envelope::Data { lane, seq, payload }, end)
                }
            }
            TYPE_ACK => {
                need(ACK_LEN)?;
                let lane = lane(b[1])?;
                let state = LaneState {
                    received: u64_at(b, 2),
                    delivered: u64_at(b, 10),
                };
                if state.delivered > state.received {
                    return Err(EnvelopeError::Invalid("ACK delivered > received"));
                }
                (Envelope::Ack { lane, state }, ACK_LEN)
            }
            TYPE_PING | TYPE_PONG => {
                need(PROBE_LEN)?;
                let nonce = u64_at(b, 1);
                let env = if kind == TYPE_PING {
                    Envelope::Ping(nonce)
                } else {
                    Envelope::Pong(nonce)
                };
                (env, PROBE_LEN)
            }
            TYPE_CLOSE => {
                need(CLOSE_LEN)?;
                (Envelope::Close(CloseCode::from_byte(b[1])), CLOSE_LEN)
            }
            other => return Err(EnvelopeError::UnknownType(other)),
        };
        self.pos += used;
        Ok(env)
    }
}

impl Iterator for Envelopes {
    type Item = Result<Envelope, EnvelopeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.frame.is_empty() {
            self.failed = true;
            return Some(Err(EnvelopeError::Empty));
        }
        if self.pos >= self.frame.len() {
            return None;
        }
        let r = self.next_envelope();
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

mod builder;

pub use builder::FrameBuilder;

#[cfg(test)]
mod tests;
