//! [`WsError`]: what can go wrong in the WebSocket layer, below the Noise channel.
//!
//! The core's [`Error`] has no WebSocket variant, so these errors travel inside
//! [`Error::Io`] (as the `io::Error`'s inner error, which the byte-stream adapter and the
//! dialer create); [`ws_error`] gets them back out, typed.

use std::io;

use bitcraps_transport_core::Error;

/// A failure of the WebSocket layer (HTTP upgrade, TLS, WebSocket framing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// The listener refused the HTTP request and answered it with this status (404 wrong
    /// path, 405 not GET, 426 not a WebSocket upgrade, 400 malformed or missing subprotocol,
    /// 431 head too large); the connection was closed.
    #[error("upgrade refused with HTTP {status}: {reason}")]
    Rejected {
        /// The HTTP status sent back.
        status: u16,
        /// Why.
        reason: &'static str,
    },
    /// The listener refused the dialer by a source limit before the upgrade (an HTTP 429 with
    /// the limit); the dialer reports it as `Error::RemoteLimit`.
    #[error("refused before the upgrade: {0}")]
    Refused(bitcraps_transport_core::LimitRejection),
    /// The listener answered the dialer's upgrade request with a status other than 101.
    #[error("the server answered the upgrade with HTTP {0}")]
    HttpStatus(u16),
    /// The dialer's WebSocket handshake failed for another reason (bad accept key, no
    /// `bitcraps.v1` subprotocol in the answer, malformed HTTP).
    #[error("websocket client handshake: {0}")]
    ClientHandshake(String),
    /// The TLS handshake failed (wss).
    #[error("tls: {0}")]
    Tls(String),
    /// The link ended before the HTTP upgrade finished.
    #[error("the link ended during the upgrade")]
    ClosedDuringUpgrade,
    /// The remote sent a text message; only binary messages carry the secure channel.
    #[error("text message on the binary channel")]
    TextMessage,
    /// The remote broke the WebSocket protocol (bad frame, unmasked client frame, message over
    /// the size limit, ...).
    #[error("websocket protocol: {0}")]
    Protocol(String),
    /// The upgrade failed earlier; this half of the stream is unusable.
    #[error("the websocket upgrade failed")]
    UpgradeFailed,
}

impl WsError {
    /// The `io::ErrorKind` this error travels under.
    fn kind(&self) -> io::ErrorKind {
        match self {
            Self::ClosedDuringUpgrade => io::ErrorKind::UnexpectedEof,
            Self::UpgradeFailed => io::ErrorKind::BrokenPipe,
            Self::Tls(_) | Self::ClientHandshake(_) | Self::HttpStatus(_) | Self::Refused(_) => {
                io::ErrorKind::ConnectionRefused
            }
            _ => io::ErrorKind::InvalidData,
        }
    }
}

impl From<WsError> for io::Error {
    fn from(e: WsError) -> Self {
        io::Error::new(e.kind(), e)
    }
}

/// The [`WsError`] inside `error`, if the WebSocket layer caused it.
///
/// ```
/// # use bitcraps_transport_core::Error;
/// # use bitcraps_transport_ws::{ws_error, WsError};
/// let e = Error::io("handshake read", WsError::TextMessage.into());
/// assert_eq!(ws_error(&e), Some(&WsError::TextMessage));
/// ```
pub fn ws_error(error: &Error) -> Option<&WsError> {
    match error {
        Error::Io { source, .. } => source.get_ref()?.downcast_ref::<WsError>(),
        _ => None,
    }
}

/// Maps a tungstenite error seen on an established WebSocket.
pub(crate) fn from_tungstenite(e: tokio_tungstenite::tungstenite::Error) -> io::Error {
    use tokio_tungstenite::tungstenite::Error as T;
    match e {
        T::Io(io) => io,
        T::ConnectionClosed | T::AlreadyClosed => io::ErrorKind::BrokenPipe.into(),
        other => WsError::Protocol(other.to_string()).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_errors_survive_the_trip_through_io() {
        let rejected = WsError::Rejected {
            status: 404,
            reason: "wrong path",
        };
        let e = Error::io("handshake read", rejected.clone().into());
        assert_eq!(ws_error(&e), Some(&rejected));
        assert_eq!(ws_error(&Error::ListenerClosed), None);
        let plain = Error::io("read", io::ErrorKind::BrokenPipe.into());
        assert_eq!(ws_error(&plain), None);
    }
}
