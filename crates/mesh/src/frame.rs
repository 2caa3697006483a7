//! The application frame: what `MeshTransport` puts inside every payload it originates (the
//! plaintext of a directed packet, or a broadcast's payload), so that a replay is refused
//! even after the duplicate cache forgot the packet.
//!
//! ```text
//! offset  size  field
//! 0       1     version = 0x01
//! 1       8     sent_at: the origin's wall clock, milliseconds since the Unix epoch (u64 BE)
//! 9       ..    the message
//! ```
//!
//! A receiver accepts a frame only if `sent_at` is within its freshness window `F` of its own
//! clock (`|now - sent_at| <= F`), with `F = 0.45 x dedup_expiry` (135 s by default). The frame
//! is signed with the packet (and, directed, encrypted), so relays cannot change `sent_at`. A
//! replay at time `t1` of a packet first accepted at `t0` passes the window only if
//! `t1 - F <= sent_at <= t0 + F`, that is `t1 - t0 <= 2F < dedup_expiry`: the duplicate cache
//! still holds the packet then (it refuses rather than forgets, see `docs/mesh.md`), so no
//! payload is ever delivered twice, whatever the delay. Clocks may differ by up to `F`.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

/// The frame version this crate writes and reads.
pub const FRAME_VERSION: u8 = 0x01;
/// Bytes before the message.
pub const FRAME_HEADER: usize = 9;

/// Why a received frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Shorter than the header.
    #[error("frame of {0} bytes is shorter than its header")]
    Truncated(usize),
    /// An unknown version byte.
    #[error("unknown frame version {0:#04x}")]
    Version(u8),
    /// `sent_at` is outside the freshness window (a replay, or a clock far off).
    #[error("frame sent at {sent_at_ms} ms is outside the freshness window at {now_ms} ms")]
    Stale {
        /// The frame's time.
        sent_at_ms: u64,
        /// The receiver's time.
        now_ms: u64,
    },
}

/// The freshness window for a duplicate cache that remembers packets for `dedup_expiry`.
pub fn freshness(dedup_expiry: Duration) -> Duration {
    dedup_expiry * 9 / 20
}

/// Frames `message`, sent at `sent_at_ms`.
pub fn encode(sent_at_ms: u64, message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(FRAME_HEADER + message.len());
    out.put_u8(FRAME_VERSION);
    out.put_u64(sent_at_ms);
    out.put_slice(message);
    out.freeze()
}

/// The message of `frame` if it is well formed and fresh at `now_ms` (no copy: a slice).
pub fn decode(frame: &Bytes, now_ms: u64, freshness: Duration) -> Result<Bytes, FrameError> {
    if frame.len() < FRAME_HEADER {
        return Err(FrameError::Truncated(frame.len()));
    }
    if frame[0] != FRAME_VERSION {
        return Err(FrameError::Version(frame[0]));
    }
    let mut at = [0u8; 8];
    at.copy_from_slice(&frame[1..FRAME_HEADER]);
    let sent_at_ms = u64::from_be_bytes(at);
    let window = u64::try_from(freshness.as_millis()).unwrap_or(u64::MAX);
    if sent_at_ms.abs_diff(now_ms) > window {
        return Err(FrameError::Stale { sent_at_ms, now_ms });
    }
    Ok(frame.slice(FRAME_HEADER..))
}

/// The wall clock in milliseconds since the Unix epoch (0 before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Duration = Duration::from_secs(135);

    #[test]
    fn a_fresh_frame_round_trips() {
        let f = encode(1_000_000, b"roll 3 4");
        assert_eq!(f.len(), FRAME_HEADER + 8);
        assert_eq!(decode(&f, 1_000_000 + 135_000, F).unwrap(), "roll 3 4");
        assert_eq!(decode(&f, 1_000_000 - 135_000, F).unwrap(), "roll 3 4");
        assert_eq!(decode(&encode(5, b""), 5, F).unwrap(), "");
    }

    #[test]
    fn stale_future_short_and_unknown_frames_are_refused() {
        let f = encode(1_000_000, b"x");
        assert!(matches!(
            decode(&f, 1_000_000 + 135_001, F),
            Err(FrameError::Stale { .. })
        ));
        assert!(matches!(
            decode(&f, 1_000_000 - 135_001, F),
            Err(FrameError::Stale { .. })
        ));
        assert_eq!(decode(&f.slice(..8), 0, F), Err(FrameError::Truncated(8)));
        let mut other = f.to_vec();
        other[0] = 2;
        assert_eq!(
            decode(&other.into(), 1_000_000, F),
            Err(FrameError::Version(2))
        );
    }

    #[test]
    fn the_window_is_less_than_half_the_dedup_expiry() {
        for secs in [1, 60, 300, 3_600] {
            let e = Duration::from_secs(secs);
            assert!(freshness(e) * 2 < e);
        }
        assert_eq!(freshness(Duration::from_secs(300)), F);
    }
}
