//! QUIC application close codes, the limit-refusal encoding, and the mapping of quinn's
//! connection errors to the core [`Error`].
//!
//! | code | meaning | reason text |
//! |---|---|---|
//! | `0x00` | graceful close | the application's reason (UTF-8, at most 256 bytes) |
//! | `0x01` | protocol violation | what was violated |
//! | `0x02` | aborted (close timed out, link failed, listener shut down) | why |
//! | `0x03` | the dialer refused the listener's identity | `peer mismatch` |
//! | `0x10 + id` | refused by a connection limit | `retry_after_ms=<decimal>`, `retry_after_ms=never`, or empty (retry when a connection or handshake ends) |
//!
//! Limit ids are the core's, as in REJECT records and refusal frames: `1` total connections,
//! `2` connections per peer, `3` new connections per minute, `4` failure cooldown, `5`
//! handshakes in flight (codes `0x11` to `0x15`).

use std::time::Duration;

use bitcraps_transport_core::refusal::limit_from_id;
use bitcraps_transport_core::secure::record::limit_id;
use bitcraps_transport_core::{CloseReason, Error, HandshakeError, LimitRejection};
use quinn::{ConnectionError, VarInt};

/// Graceful close; the reason is the application's.
pub const CLOSE_NORMAL: VarInt = VarInt::from_u32(0x00);
/// The remote broke the protocol.
pub const CLOSE_PROTOCOL: VarInt = VarInt::from_u32(0x01);
/// The connection was aborted.
pub const CLOSE_ABORT: VarInt = VarInt::from_u32(0x02);
/// The dialer refused the listener's identity.
pub const CLOSE_PEER_MISMATCH: VarInt = VarInt::from_u32(0x03);
/// The first limit code; `0x10 + id` (see the module docs).
pub const CLOSE_LIMIT_BASE: u32 = 0x10;

/// Reasons are clipped to this many bytes (on a character boundary).
const MAX_REASON: usize = 256;

/// `reason` clipped to at most 256 bytes, on a character boundary.
pub fn clip_reason(reason: &str) -> &str {
    if reason.len() <= MAX_REASON {
        return reason;
    }
    let mut end = MAX_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// The close code and reason that tell a dialer which limit refused it.
pub fn encode_limit(rejection: &LimitRejection) -> (VarInt, String) {
    let code = VarInt::from_u32(CLOSE_LIMIT_BASE + u32::from(limit_id(rejection.limit)));
    let reason = match rejection.retry_after {
        None => String::new(),
        Some(Duration::MAX) => "retry_after_ms=never".to_string(),
        Some(d) => format!("retry_after_ms={}", d.as_millis()),
    };
    (code, reason)
}

/// The limit rejection a close code and reason carry, if they carry one.
pub fn decode_limit(code: VarInt, reason: &[u8]) -> Option<LimitRejection> {
    let id = code.into_inner().checked_sub(u64::from(CLOSE_LIMIT_BASE))?;
    let limit = limit_from_id(u8::try_from(id).ok()?)?;
    let retry_after = match std::str::from_utf8(reason)
        .ok()
        .and_then(|r| r.strip_prefix("retry_after_ms="))
    {
        Some("never") => Some(Duration::MAX),
        Some(ms) => ms.parse::<u64>().ok().map(Duration::from_millis),
        None => None,
    };
    Some(LimitRejection { limit, retry_after })
}

fn text(reason: &[u8]) -> String {
    String::from_utf8_lossy(reason).into_owned()
}

/// How a connection ended, as seen by the connection driver.
#[derive(Debug)]
pub(crate) enum Ended {
    /// The remote closed gracefully with this reason.
    Remote(String),
    /// This side closed it.
    Local,
    /// It failed.
    Failed(Error),
}

/// Classifies a quinn connection error for an established connection.
pub(crate) fn ended(error: &ConnectionError) -> Ended {
    match error {
        ConnectionError::ApplicationClosed(close) if close.error_code == CLOSE_NORMAL => {
            Ended::Remote(text(&close.reason))
        }
        ConnectionError::LocallyClosed => Ended::Local,
        other => Ended::Failed(dial_error(other)),
    }
}

/// True for the TLS alert range of QUIC transport error codes (0x0100-0x01ff, RFC 9001 4.8).
fn is_crypto(code: quinn::TransportErrorCode) -> bool {
    (0x100..0x200).contains(&u64::from(code))
}

/// Maps a quinn connection error to the core error (dials and established connections).
pub(crate) fn dial_error(error: &ConnectionError) -> Error {
    match error {
        ConnectionError::ApplicationClosed(close) => {
            if let Some(rejection) = decode_limit(close.error_code, &close.reason) {
                return Error::RemoteLimit(rejection);
            }
            if close.error_code == CLOSE_NORMAL {
                return Error::Closed(CloseReason::Remote(text(&close.reason)));
            }
            Error::LinkLost(format!(
                "closed by the remote with code {}: {}",
                close.error_code,
                text(&close.reason)
            ))
        }
        ConnectionError::TransportError(e) if is_crypto(e.code) => {
            HandshakeError::Tls(e.to_string()).into()
        }
        ConnectionError::ConnectionClosed(c) if is_crypto(c.error_code) => {
            HandshakeError::Tls(c.to_string()).into()
        }
        ConnectionError::TimedOut => Error::LinkLost("the QUIC idle timeout expired".into()),
        ConnectionError::Reset => Error::LinkLost("reset by the remote".into()),
        ConnectionError::LocallyClosed => Error::Closed(CloseReason::Local("closed".into())),
        other => Error::backend("quic", "connection", other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcraps_transport_core::LimitKind;

    #[test]
    fn other_quinn_errors_keep_their_type_for_downcasting() {
        let e = dial_error(&ConnectionError::VersionMismatch);
        assert_eq!(e.kind(), "Backend");
        let inner = e
            .backend_source()
            .and_then(|s| s.downcast_ref::<ConnectionError>());
        assert_eq!(inner, Some(&ConnectionError::VersionMismatch));
    }

    #[test]
    fn limit_rejections_round_trip() {
        // The codes carry the core's limit ids (protocol.md section 7).
        let per_peer = LimitRejection {
            limit: LimitKind::ConnectionsPerPeer,
            retry_after: None,
        };
        assert_eq!(encode_limit(&per_peer).0, VarInt::from_u32(0x12));
        for limit in [
            LimitKind::TotalConnections,
            LimitKind::ConnectionsPerPeer,
            LimitKind::NewConnectionRate,
            LimitKind::Cooldown,
            LimitKind::HandshakesInFlight,
        ] {
            for retry_after in [None, Some(Duration::MAX), Some(Duration::from_millis(1500))] {
                let rejection = LimitRejection { limit, retry_after };
                let (code, reason) = encode_limit(&rejection);
                assert_eq!(decode_limit(code, reason.as_bytes()), Some(rejection));
            }
        }
    }

    #[test]
    fn other_codes_are_not_limits() {
        assert_eq!(decode_limit(CLOSE_NORMAL, b""), None);
        assert_eq!(decode_limit(CLOSE_ABORT, b"retry_after_ms=5"), None);
        assert_eq!(decode_limit(VarInt::from_u32(0x10), b""), None);
        assert_eq!(decode_limit(VarInt::from_u32(0x16), b""), None);
        let garbage = decode_limit(VarInt::from_u32(0x11), b"retry_after_ms=x\xff");
        assert_eq!(garbage.map(|r| r.retry_after), Some(None));
    }

    #[test]
    fn reasons_are_clipped_on_a_char_boundary() {
        let long = "é".repeat(200);
        let clipped = clip_reason(&long);
        assert!(clipped.len() <= 256);
        assert!(long.starts_with(clipped));
        assert_eq!(clip_reason("bye"), "bye");
    }
}
