//! The core's typed errors.
//!
//! [`Error`] is what every transport operation returns. Hostile input maps to
//! [`ProtocolError`] or [`HandshakeError`]; limit refusals carry a [`LimitRejection`] that says
//! which limit and when a retry can succeed.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::policy::LimitRejection;
use crate::{AddressError, KeyError, PeerId, TransportAddress};

/// Result with the core [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a transport operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// This transport does not serve the address (a distinct error from a failure, so a
    /// composite can try the next transport).
    #[error("address {0} is not served by this transport")]
    Unsupported(TransportAddress),
    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: Arc<io::Error>,
    },
    /// An operation did not finish in time.
    #[error("{operation} timed out after {after:?}")]
    Timeout {
        /// What timed out (e.g. `"handshake"`).
        operation: &'static str,
        /// The limit that was exceeded.
        after: Duration,
    },
    /// The remote proved an identity other than the one the dial expected.
    #[error("expected peer {expected} but the remote proved it is {actual}")]
    PeerMismatch {
        /// The identity the dialer asked for.
        expected: PeerId,
        /// The identity the remote proved.
        actual: PeerId,
    },
    /// The secure-channel handshake failed.
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// The remote broke the wire protocol; the connection was closed.
    #[error("protocol violation: {0}")]
    Protocol(#[from] ProtocolError),
    /// A message to send is larger than the connection allows; nothing was sent and the
    /// connection is still usable.
    #[error("message of {len} bytes exceeds the maximum of {max} bytes")]
    MessageTooLarge {
        /// The message's size.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A local connection limit refused the connection.
    #[error("connection refused by a local limit: {0}")]
    Limit(LimitRejection),
    /// The remote's connection limit refused the connection.
    #[error("connection refused by the remote's limit: {0}")]
    RemoteLimit(LimitRejection),
    /// The connection is closed.
    #[error("connection closed: {0}")]
    Closed(CloseReason),
    /// The link ended without a close (the peer vanished or the network failed).
    #[error("link lost: {0}")]
    LinkLost(String),
    /// The listener is closed.
    #[error("listener closed")]
    ListenerClosed,
    /// A malformed address.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// A key or key-file problem.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A backend-specific failure that fits no other variant. `source` is the backend's own
    /// typed error (quinn's, rustls's, ...): reach it the same way for every backend with
    /// [`Error::backend_source`] and `downcast_ref`.
    #[error("{backend}: {context}: {source}")]
    Backend {
        /// The backend's name.
        backend: &'static str,
        /// What was being done.
        context: &'static str,
        /// The backend's error.
        source: Arc<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl Error {
    /// A backend-specific failure: `source` is the backend's typed error.
    pub fn backend(
        backend: &'static str,
        context: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self::Backend {
            backend,
            context,
            source: Arc::from(source.into()),
        }
    }

    /// The backend's own error inside [`Error::Backend`], to `downcast_ref` to the library's
    /// type (the same way for every backend).
    ///
    /// ```
    /// # use bitcraps_transport_core::Error;
    /// let e = Error::backend("example", "parsing", "bad input".parse::<u8>().unwrap_err());
    /// let inner = e.backend_source().and_then(|s| s.downcast_ref::<std::num::ParseIntError>());
    /// assert!(inner.is_some());
    /// ```
    pub fn backend_source(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            Self::Backend { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(context: &'static str, source: io::Error) -> Self {
        Self::Io {
            context,
            source: Arc::new(source),
        }
    }

    /// A stable name for the kind of error, the variant's name (for JSON output, logs and
    /// metrics; it never changes for an existing variant).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unsupported(_) => "Unsupported",
            Self::Io { .. } => "Io",
            Self::Timeout { .. } => "Timeout",
            Self::PeerMismatch { .. } => "PeerMismatch",
            Self::Handshake(_) => "Handshake",
            Self::Protocol(_) => "Protocol",
            Self::MessageTooLarge { .. } => "MessageTooLarge",
            Self::Limit(_) => "Limit",
            Self::RemoteLimit(_) => "RemoteLimit",
            Self::Closed(_) => "Closed",
            Self::LinkLost(_) => "LinkLost",
            Self::ListenerClosed => "ListenerClosed",
            Self::Address(_) => "Address",
            Self::Key(_) => "Key",
            Self::Backend { .. } => "Backend",
        }
    }

    /// A finer stable name where the variant has one: the handshake or protocol error's kind,
    /// or the limit that refused.
    pub fn detail(&self) -> Option<&'static str> {
        match self {
            Self::Handshake(h) => Some(h.kind()),
            Self::Protocol(p) => Some(p.kind()),
            Self::Limit(r) | Self::RemoteLimit(r) => Some(r.limit.name()),
            _ => None,
        }
    }

    /// True for [`Error::Unsupported`]: another transport may serve the address.
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Self::Unsupported(_))
    }

    /// The limit rejection, local or remote, if this error is one.
    pub fn limit_rejection(&self) -> Option<&LimitRejection> {
        match self {
            Self::Limit(r) | Self::RemoteLimit(r) => Some(r),
            _ => None,
        }
    }
}

impl From<LimitRejection> for Error {
    fn from(r: LimitRejection) -> Self {
        Self::Limit(r)
    }
}

/// Why the secure-channel handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The Noise state machine refused a message (bad key material, failed decryption, wrong
    /// length).
    #[error("noise: {0}")]
    Noise(String),
    /// The first message named a cipher suite this side does not accept.
    #[error("cipher suite {0} is not accepted")]
    UnsupportedSuite(u8),
    /// A handshake message has the wrong length.
    #[error("handshake message {message} has {len} bytes, expected {expected}")]
    BadLength {
        /// Which message (1, 2 or 3).
        message: u8,
        /// Its length.
        len: usize,
        /// The length the protocol fixes.
        expected: usize,
    },
    /// The identity payload is malformed.
    #[error("identity payload: {0}")]
    BadPayload(&'static str),
    /// The identity signature over the Noise static key does not verify.
    #[error("identity signature does not verify")]
    BadSignature,
    /// The link ended during the handshake.
    #[error("link ended during the handshake")]
    UnexpectedEof,
    /// The TLS handshake failed (QUIC and other TLS-based backends): a certificate that does
    /// not prove the expected identity, no common protocol, or an alert from the remote.
    #[error("tls: {0}")]
    Tls(String),
    /// The responder answered the handshake with something other than accept or reject.
    #[error("unexpected record {0:#04x} after the handshake")]
    UnexpectedRecord(u8),
    /// A 1-RTT (IK) message 1 was not encrypted to this node's current static key (the dialer
    /// cached an older one, or the bytes were damaged). On a stream the listener answers with
    /// a fallback to XX instead of closing.
    #[error("1-RTT handshake to a static key this node does not hold")]
    StaleKey,
    /// The remote asked for a fallback from the 1-RTT handshake to XX a second time on the
    /// same connection, or where no fallback is possible.
    #[error("unexpected handshake fallback")]
    UnexpectedFallback,
}

impl HandshakeError {
    /// A stable name for the kind of failure (the variant's name).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Noise(_) => "Noise",
            Self::UnsupportedSuite(_) => "UnsupportedSuite",
            Self::BadLength { .. } => "BadLength",
            Self::BadPayload(_) => "BadPayload",
            Self::BadSignature => "BadSignature",
            Self::UnexpectedEof => "UnexpectedEof",
            Self::Tls(_) => "Tls",
            Self::UnexpectedRecord(_) => "UnexpectedRecord",
            Self::StaleKey => "StaleKey",
            Self::UnexpectedFallback => "UnexpectedFallback",
        }
    }
}

/// A violation of the wire protocol after (or around) the handshake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame's length prefix exceeds the maximum; nothing was allocated for it.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    FrameTooLarge {
        /// The announced length.
        len: u64,
        /// The maximum.
        max: usize,
    },
    /// A record failed authentication (tampered, replayed or out of order).
    #[error("record failed authentication")]
    Decrypt,
    /// A record is shorter than its header.
    #[error("empty record")]
    EmptyRecord,
    /// A record has an unknown kind byte.
    #[error("unknown record kind {0:#04x}")]
    UnknownRecord(u8),
    /// A record arrived where the protocol does not allow it.
    #[error("unexpected record kind {0:#04x}")]
    UnexpectedRecord(u8),
    /// A reassembled message would exceed the maximum message size.
    #[error("incoming message exceeds the maximum of {max} bytes")]
    MessageTooLarge {
        /// The maximum.
        max: usize,
    },
    /// A datagram or record is malformed.
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// A BATCH record's body is malformed.
    #[error("malformed batch record: {0}")]
    Batch(#[from] BatchError),
}

/// What is wrong with a BATCH record's body (`docs/protocol.md` §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The body holds no entry.
    #[error("no entry")]
    Empty,
    /// Fewer than the two bytes of an entry's length are left at `offset`.
    #[error("truncated entry length at offset {offset}")]
    TruncatedLength {
        /// Where the entry starts in the body.
        offset: usize,
    },
    /// The entry at `offset` announces `len` bytes, past the end of the body.
    #[error("entry at offset {offset} announces {len} bytes, past the end of the body")]
    PastEnd {
        /// Where the entry starts in the body.
        offset: usize,
        /// The announced length.
        len: usize,
    },
}

impl ProtocolError {
    /// A stable name for the kind of violation (the variant's name).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::FrameTooLarge { .. } => "FrameTooLarge",
            Self::Decrypt => "Decrypt",
            Self::EmptyRecord => "EmptyRecord",
            Self::UnknownRecord(_) => "UnknownRecord",
            Self::UnexpectedRecord(_) => "UnexpectedRecord",
            Self::MessageTooLarge { .. } => "MessageTooLarge",
            Self::Malformed(_) => "Malformed",
            Self::Batch(_) => "Batch",
        }
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// This side closed it, with this reason.
    Local(String),
    /// The remote closed it, with this reason.
    Remote(String),
    /// It failed: a protocol violation, an I/O error, or the link was lost.
    Failed(String),
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(r) => write!(f, "closed locally ({r})"),
            Self::Remote(r) => write!(f, "closed by the remote ({r})"),
            Self::Failed(r) => write!(f, "failed ({r})"),
        }
    }
}
