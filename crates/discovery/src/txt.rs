//! The DNS-SD TXT form of an announcement: the node's [`Ticket`] (peer id and routes, see
//! `docs/protocol.md` §12) cut into chunks that fit TXT strings. See `docs/protocol.md` §13.
//!
//! ```text
//! v=1            the format version
//! n=<1..=8>      how many ticket chunks follow
//! t0=<chunk>     the ticket's text (BCT...), in order, 1 to 240 characters each
//! ...
//! t<n-1>=<chunk>
//! ```
//!
//! Other keys are ignored (room for later versions). Nothing in a TXT record is trusted: the
//! ticket's checksum catches damage, and every route is dialed expecting the ticket's peer id.

use bitcraps_transport_core::{Ticket, TicketError};

/// The TXT format version this crate writes and reads.
pub const TXT_VERSION: &str = "1";
/// Characters of ticket text in one TXT value at most (a TXT string is at most 255 bytes,
/// including the key and `=`).
pub const CHUNK_CHARS: usize = 240;
/// Ticket chunks in one record at most (1,920 characters: the record stays well inside one
/// mDNS packet).
pub const MAX_CHUNKS: usize = 8;

/// Why a TXT record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxtError {
    /// No `v` key, or a version this crate does not read.
    #[error("TXT version {0:?} is not supported (this build reads version {TXT_VERSION})")]
    Version(Option<String>),
    /// `n` is missing, not a number, 0, or over [`MAX_CHUNKS`].
    #[error("TXT chunk count is missing or outside 1..={MAX_CHUNKS}")]
    ChunkCount,
    /// Chunk `t<index>` is missing, empty, or longer than [`CHUNK_CHARS`].
    #[error("TXT ticket chunk t{index} is missing, empty or too long")]
    Chunk {
        /// Which chunk.
        index: usize,
    },
    /// The ticket does not parse.
    #[error("the announced ticket is invalid: {0}")]
    Ticket(#[from] TicketError),
    /// The ticket is too long to announce (more than `MAX_CHUNKS * CHUNK_CHARS` characters).
    #[error("a ticket of {0} characters is too long to announce")]
    TooLong(usize),
}

/// The TXT key/value pairs announcing `ticket`.
pub fn encode(ticket: &Ticket) -> Result<Vec<(String, String)>, TxtError> {
    let text = ticket.to_string();
    if text.len() > MAX_CHUNKS * CHUNK_CHARS {
        return Err(TxtError::TooLong(text.len()));
    }
    // The ticket text is ASCII, so byte chunks are character chunks.
    let chunks: Vec<&str> = text
        .as_bytes()
        .chunks(CHUNK_CHARS)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    let mut pairs = vec![
        ("v".to_string(), TXT_VERSION.to_string()),
        ("n".to_string(), chunks.len().to_string()),
    ];
    for (i, chunk) in chunks.iter().enumerate() {
        pairs.push((format!("t{i}"), (*chunk).to_string()));
    }
    Ok(pairs)
}

/// Decodes a TXT record, given a lookup of its values by key (DNS-SD keys are case
/// insensitive; the lookup decides).
pub fn decode<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Ticket, TxtError> {
    match get("v") {
        Some(TXT_VERSION) => {}
        other => {
            // Echo at most a few characters of a hostile value.
            let shown = other.map(|v| v.chars().take(8).collect::<String>());
            return Err(TxtError::Version(shown));
        }
    }
    let count: usize = get("n")
        .filter(|n| n.len() <= 2)
        .and_then(|n| n.parse().ok())
        .filter(|n| (1..=MAX_CHUNKS).contains(n))
        .ok_or(TxtError::ChunkCount)?;
    let mut text = String::with_capacity(count * CHUNK_CHARS);
    for index in 0..count {
        let chunk = get(&format!("t{index}"))
            .filter(|c| !c.is_empty() && c.len() <= CHUNK_CHARS)
            .ok_or(TxtError::Chunk { index })?;
        text.push_str(chunk);
    }
    Ok(text.parse()?)
}

/// Decodes a TXT record given as key/value pairs (the first value of a repeated key wins, as
/// RFC 6763 §6.4 says; keys compare case-insensitively).
pub fn decode_pairs(pairs: &[(&str, &str)]) -> Result<Ticket, TxtError> {
    decode(|key| {
        pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| *v)
    })
}

#[cfg(test)]
mod tests {
    use bitcraps_transport_core::{Keypair, TransportAddress};

    use super::*;

    fn ticket(routes: usize) -> Ticket {
        let peer = Keypair::from_secret_bytes([7; 32]).peer_id();
        let routes: Vec<TransportAddress> = (0..routes)
            .map(|i| {
                format!("tcp://127.0.0.1:{}", 1000 + i)
                    .parse()
                    .expect("route")
            })
            .collect();
        Ticket::new(peer, routes).expect("ticket")
    }

    fn as_refs(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
        pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn one_and_many_chunks_round_trip() {
        for routes in [1, 4, 16] {
            let t = ticket(routes);
            let pairs = encode(&t).expect("encode");
            let n: usize = pairs[1].1.parse().expect("n");
            assert_eq!(pairs.len(), 2 + n);
            assert!(pairs.iter().all(|(k, v)| k.len() + 1 + v.len() <= 255));
            assert_eq!(decode_pairs(&as_refs(&pairs)), Ok(t));
        }
        assert_eq!(encode(&ticket(1)).expect("encode")[1].1, "1");
    }

    #[test]
    fn damaged_records_are_refused_with_a_type() {
        let pairs = encode(&ticket(4)).expect("encode");
        let mut refs = as_refs(&pairs);
        assert!(matches!(
            decode_pairs(&refs[1..]),
            Err(TxtError::Version(None))
        ));
        refs[0].1 = "2";
        assert_eq!(
            decode_pairs(&refs),
            Err(TxtError::Version(Some("2".into())))
        );
        refs[0].1 = "1";
        for bad in ["0", "9", "x", "100", ""] {
            let mut r = refs.clone();
            r[1].1 = bad;
            assert_eq!(decode_pairs(&r), Err(TxtError::ChunkCount), "{bad}");
        }
        let mut r = refs.clone();
        r.remove(2);
        assert_eq!(decode_pairs(&r), Err(TxtError::Chunk { index: 0 }));
        let mut r = refs.clone();
        let long = "A".repeat(CHUNK_CHARS + 1);
        r[2].1 = &long;
        assert_eq!(decode_pairs(&r), Err(TxtError::Chunk { index: 0 }));
        let mut r = refs.clone();
        r[2].1 = "BCTAAAA";
        assert!(matches!(decode_pairs(&r), Err(TxtError::Ticket(_))));
        // Keys are case-insensitive; unknown keys are ignored.
        let upper: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_uppercase(), v.clone()))
            .chain([("table".to_string(), "7".to_string())])
            .collect();
        assert_eq!(decode_pairs(&as_refs(&upper)), Ok(ticket(4)));
    }
}
