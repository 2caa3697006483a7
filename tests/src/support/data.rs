//! Message payloads that prove their own integrity: deterministic noise, and numbered
//! messages whose every byte depends on the number.

use bitcraps_transport_core::Bytes;

/// `len` deterministic pseudo-random bytes (xorshift64*), different per `seed`.
pub(crate) fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// A message of `len` bytes that starts with `seq` (big-endian u64, when it fits) and whose
/// every byte depends on `seq` and its position, so corruption, truncation or mix-ups show.
pub(crate) fn numbered(seq: u64, len: usize) -> Bytes {
    let mut v: Vec<u8> = (0..len)
        .map(|i| {
            (i as u64)
                .wrapping_mul(31)
                .wrapping_add(seq.wrapping_mul(7)) as u8
        })
        .collect();
    let head = seq.to_be_bytes();
    let n = head.len().min(len);
    v[..n].copy_from_slice(&head[..n]);
    Bytes::from(v)
}

/// The sequence number of a [`numbered`] message of `len` bytes, if `m` is exactly what
/// `numbered` builds for it (so corruption and truncation both show).
pub(crate) fn check_numbered(m: &[u8], len: usize) -> Option<u64> {
    if m.len() != len {
        return None;
    }
    let seq = u64::from_be_bytes(m.get(..8)?.try_into().ok()?);
    (numbered(seq, len) == m).then_some(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_deterministic_and_seeded() {
        assert_eq!(noise(1, 64), noise(1, 64));
        assert_ne!(noise(1, 64), noise(2, 64));
        assert_eq!(noise(9, 0).len(), 0);
    }

    #[test]
    fn numbered_round_trips_and_detects_damage() {
        for (seq, len) in [(7, 24), (123_456, 16 * 1024), (u64::MAX, 100)] {
            let m = numbered(seq, len);
            assert_eq!(m.len(), len);
            assert_eq!(check_numbered(&m, len), Some(seq));
            let mut damaged = m.to_vec();
            damaged[len - 1] ^= 1;
            assert_eq!(check_numbered(&damaged, len), None, "corrupt");
            assert_eq!(check_numbered(&m[..len - 1], len), None, "truncated");
        }
        assert_eq!(
            check_numbered(&numbered(3, 4), 4),
            None,
            "too short to carry a number"
        );
    }
}
