//! The pre-handshake refusal on byte streams (`docs/protocol.md`, section 3): what a listener
//! sends to a dialer it refuses by a source limit (new-connection rate, failure cooldown,
//! handshakes in flight) before any handshake work, so the dialer learns the limit and when to
//! retry instead of seeing the link end.
//!
//! ```text
//! refusal frame (10 bytes) = 00 00 00 06 || 0xFF || limit id (1) || retry-after ms (u32 BE)
//! ```
//!
//! It is a stream frame (section 2) whose 6-byte payload starts with the marker `0xFF`. A dialer
//! expecting message 2 reads a 4-byte length: 193 is message 2, 6 is a refusal, anything else is
//! refused as before. The two cannot be confused: their lengths differ, and the refusal's marker
//! is checked too. Limit ids and the retry encoding are those of the REJECT record (`0xFFFFFFFF`:
//! unknown). The refusal is not authenticated (no keys exist yet); it tells the dialer no more
//! than a reset from an on-path attacker could, and a dialer treats its retry time as a hint.
//!
//! Bounds: the refusal is 10 bytes, sent once, before reading anything; the listener then ends
//! its write direction and reads (and discards) at most [`REFUSAL_DRAIN`] bytes until the dialer
//! hangs up, so the dialer's first message is not answered with a TCP reset that could destroy
//! the refusal in its receive buffer. The accept loop runs each refusal as a task under
//! [`REFUSAL_TIMEOUT`], at most [`REFUSALS_IN_FLIGHT`] at a time; beyond that a refused stream is
//! closed without a byte, as before.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::framing::LENGTH_PREFIX_LEN;
use crate::policy::{LimitKind, LimitRejection};
use crate::secure::record::limit_id;
use crate::ProtocolError;

/// The refusal frame's payload length (the value of its length prefix).
pub const REFUSAL_LEN: usize = 6;
/// The whole refusal frame, length prefix included.
pub const REFUSAL_FRAME_LEN: usize = LENGTH_PREFIX_LEN + REFUSAL_LEN;
/// The first payload byte of a refusal.
pub const REFUSAL_MARKER: u8 = 0xFF;
/// The time a listener spends on one refusal: the write, and the wait for the dialer to hang up.
pub const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);
/// Refusals a listener answers at a time; more are closed without a byte.
pub const REFUSALS_IN_FLIGHT: usize = 32;
/// Bytes a listener reads and discards after a refusal, at most.
pub const REFUSAL_DRAIN: usize = 256;

/// The refusal frame for `rejection`.
pub fn encode_refusal(rejection: &LimitRejection) -> [u8; REFUSAL_FRAME_LEN] {
    let ms = retry_ms(rejection.retry_after);
    let mut frame = [0u8; REFUSAL_FRAME_LEN];
    frame[..4].copy_from_slice(&(REFUSAL_LEN as u32).to_be_bytes());
    frame[4] = REFUSAL_MARKER;
    frame[5] = limit_id(rejection.limit);
    frame[6..].copy_from_slice(&ms.to_be_bytes());
    frame
}

/// The wire form of a retry time in milliseconds: `0xFFFFFFFF` for unknown (or never), longer
/// times clipped to `0xFFFFFFFE`.
pub fn retry_ms(retry_after: Option<Duration>) -> u32 {
    match retry_after {
        None | Some(Duration::MAX) => u32::MAX,
        Some(d) => u32::try_from(d.as_millis()).unwrap_or(u32::MAX - 1),
    }
}

/// The limit with this wire id (as in REJECT records), if any.
pub fn limit_from_id(id: u8) -> Option<LimitKind> {
    Some(match id {
        1 => LimitKind::TotalConnections,
        2 => LimitKind::ConnectionsPerPeer,
        3 => LimitKind::NewConnectionRate,
        4 => LimitKind::Cooldown,
        5 => LimitKind::HandshakesInFlight,
        _ => return None,
    })
}

/// True if a frame payload of this length is a refusal rather than a handshake message.
pub fn is_refusal_len(len: usize) -> bool {
    len == REFUSAL_LEN
}

/// Parses a refusal frame's payload (the 6 bytes after the length prefix).
pub fn decode_refusal(payload: &[u8]) -> Result<LimitRejection, ProtocolError> {
    let [marker, id, a, b, c, d] = payload else {
        return Err(ProtocolError::Malformed("refusal of the wrong length"));
    };
    if *marker != REFUSAL_MARKER {
        return Err(ProtocolError::Malformed("refusal without its marker"));
    }
    let limit = limit_from_id(*id).ok_or(ProtocolError::Malformed("unknown limit in refusal"))?;
    let ms = u32::from_be_bytes([*a, *b, *c, *d]);
    let retry_after = (ms != u32::MAX).then(|| Duration::from_millis(u64::from(ms)));
    Ok(LimitRejection { limit, retry_after })
}

/// Sends the refusal for `rejection` on a raw stream, ends the write direction, and discards at
/// most [`REFUSAL_DRAIN`] bytes until the dialer hangs up. Callers bound it with
/// [`REFUSAL_TIMEOUT`]; every error just ends it (the refusal is best effort).
pub async fn send_refusal<R, W>(mut reader: R, mut writer: W, rejection: LimitRejection)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let frame = encode_refusal(&rejection);
    if writer.write_all(&frame).await.is_err() || writer.flush().await.is_err() {
        return;
    }
    let _ = writer.shutdown().await;
    let mut sink = [0u8; 64];
    let mut drained = 0;
    while drained < REFUSAL_DRAIN {
        match reader.read(&mut sink).await {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_vector() {
        let rejection = LimitRejection {
            limit: LimitKind::NewConnectionRate,
            retry_after: Some(Duration::from_millis(2500)),
        };
        let frame = encode_refusal(&rejection);
        assert_eq!(hex::encode(frame), "00000006ff03000009c4");
        assert_eq!(decode_refusal(&frame[4..]), Ok(rejection));
    }

    #[test]
    fn every_limit_and_retry_round_trips() {
        for id in 1..=5 {
            for retry in [None, Some(Duration::ZERO), Some(Duration::from_secs(60))] {
                let rejection = LimitRejection {
                    limit: limit_from_id(id).unwrap(),
                    retry_after: retry,
                };
                let frame = encode_refusal(&rejection);
                assert!(is_refusal_len(
                    usize::try_from(u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]))
                        .unwrap()
                ));
                assert_eq!(decode_refusal(&frame[4..]), Ok(rejection));
            }
        }
    }

    #[test]
    fn malformed_refusals_are_typed_errors() {
        assert!(decode_refusal(&[0xFF, 3, 0, 0, 0]).is_err());
        assert!(decode_refusal(&[0xFE, 3, 0, 0, 0, 0]).is_err());
        assert!(decode_refusal(&[0xFF, 0, 0, 0, 0, 0]).is_err());
        assert!(decode_refusal(&[0xFF, 6, 0, 0, 0, 0]).is_err());
        assert!(!is_refusal_len(crate::secure::handshake::MSG2_LEN));
    }

    #[tokio::test]
    async fn send_refusal_writes_ten_bytes_then_ends() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let (r, w) = tokio::io::split(ours);
        let rejection = LimitRejection {
            limit: LimitKind::Cooldown,
            retry_after: None,
        };
        let task = tokio::spawn(send_refusal(r, w, rejection));
        let mut got = Vec::new();
        theirs.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, encode_refusal(&rejection));
        drop(theirs);
        task.await.unwrap();
    }
}
