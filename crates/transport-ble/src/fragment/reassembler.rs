//! Capped reassembly of fragments into messages.
//!
//! Memory is bounded by the caps alone, whatever a remote sends: at most
//! [`max_sets`](ReassemblerConfig::max_sets) partial messages, each holding at most
//! [`max_message_bytes`](ReassemblerConfig::max_message_bytes) of chunk data in at most
//! [`max_fragments`](ReassemblerConfig::max_fragments) entries. Storage grows with what
//! actually arrived (a map of received chunks), never with a count the remote announced.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::{FragmentError, FragmentHeader};

/// The reassembler's caps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassemblerConfig {
    /// Most fragments one message may announce.
    pub max_fragments: u16,
    /// Most chunk bytes one message may hold.
    pub max_message_bytes: usize,
    /// Most partial messages kept at once; a new one evicts the oldest.
    pub max_sets: usize,
    /// A partial message older than this (since its first fragment) is dropped.
    pub timeout: Duration,
}

impl Default for ReassemblerConfig {
    /// 4096 fragments, 64 KiB, 8 partial messages, 30 s. 64 KiB holds a full Noise message;
    /// 4096 fragments of 14 bytes (MTU 23) hold 56 KiB. Worst case held: 8 x 64 KiB of chunks.
    fn default() -> Self {
        Self {
            max_fragments: 4096,
            max_message_bytes: 64 * 1024,
            max_sets: 8,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Partial messages dropped, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropStats {
    /// Fragments rejected as malformed (truncated, zero count, index out of range, empty chunk).
    pub malformed: u64,
    /// Partial messages dropped for an inconsistent fragment count.
    pub inconsistent: u64,
    /// Fragments rejected for announcing more fragments than the cap.
    pub too_many_fragments: u64,
    /// Partial messages dropped for growing past the byte cap.
    pub too_large: u64,
    /// Partial messages evicted to make room for a newer one.
    pub evicted: u64,
    /// Partial messages dropped for age.
    pub expired: u64,
}

impl DropStats {
    /// All drops together.
    pub fn total(&self) -> u64 {
        self.malformed
            + self.inconsistent
            + self.too_many_fragments
            + self.too_large
            + self.evicted
            + self.expired
    }
}

/// Counters of a [`Reassembler`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReassemblerStats {
    /// Fragments pushed in (including rejected ones).
    pub fragments_in: u64,
    /// Messages completed.
    pub messages_in: u64,
    /// Message bytes completed.
    pub bytes_in: u64,
    /// Duplicate fragments ignored.
    pub duplicates: u64,
    /// Drops by reason.
    pub drops: DropStats,
}

#[derive(Debug)]
struct PartialMessage {
    id: u16,
    count: u16,
    first_seen: Instant,
    bytes: usize,
    chunks: BTreeMap<u16, Bytes>,
}

/// Reassembles fragments (in any order within a message) into messages.
#[derive(Debug)]
pub struct Reassembler {
    config: ReassemblerConfig,
    sets: Vec<PartialMessage>,
    stats: ReassemblerStats,
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new(ReassemblerConfig::default())
    }
}

impl Reassembler {
    /// A reassembler with these caps (`max_sets` is at least 1).
    pub fn new(mut config: ReassemblerConfig) -> Self {
        config.max_sets = config.max_sets.max(1);
        Self {
            config,
            sets: Vec::new(),
            stats: ReassemblerStats::default(),
        }
    }

    /// The caps.
    pub fn config(&self) -> &ReassemblerConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> ReassemblerStats {
        self.stats
    }

    /// Partial messages held now.
    pub fn in_flight(&self) -> usize {
        self.sets.len()
    }

    /// Chunk bytes held now in partial messages.
    pub fn buffered_bytes(&self) -> usize {
        self.sets.iter().map(|s| s.bytes).sum()
    }

    /// When the oldest partial message expires, if any (for the caller's timer).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.sets
            .iter()
            .map(|s| s.first_seen + self.config.timeout)
            .min()
    }

    /// Frees every partial message (the link they came on is gone or being aborted); the
    /// counters are kept. Returns how many were freed.
    pub fn clear(&mut self) -> usize {
        let freed = self.sets.len();
        self.sets = Vec::new();
        freed
    }

    /// Drops partial messages older than the timeout; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let timeout = self.config.timeout;
        let before = self.sets.len();
        self.sets
            .retain(|s| now.saturating_duration_since(s.first_seen) < timeout);
        let expired = before - self.sets.len();
        self.stats.drops.expired += expired as u64;
        expired
    }

    /// Takes one fragment. Returns the whole message when this fragment completes it.
    ///
    /// Duplicates are ignored (`Ok(None)`). A malformed or over-cap fragment is an error; the
    /// reassembler stays usable and the error says what was dropped.
    pub fn push(&mut self, fragment: Bytes, now: Instant) -> Result<Option<Bytes>, FragmentError> {
        self.stats.fragments_in += 1;
        self.expire(now);
        let (header, chunk_len) = match FragmentHeader::parse(&fragment) {
            Ok((header, chunk)) => (header, chunk.len()),
            Err(err) => {
                self.stats.drops.malformed += 1;
                return Err(err);
            }
        };
        let chunk = fragment.slice(super::HEADER_LEN..super::HEADER_LEN + chunk_len);
        if header.count > self.config.max_fragments {
            self.stats.drops.too_many_fragments += 1;
            return Err(FragmentError::TooManyFragments {
                message_id: header.message_id,
                count: header.count,
                max: self.config.max_fragments,
            });
        }
        let pos = self.sets.iter().position(|s| s.id == header.message_id);
        if let Some(pos) = pos {
            if self.sets[pos].count != header.count {
                let set = self.sets.remove(pos);
                self.stats.drops.inconsistent += 1;
                return Err(FragmentError::InconsistentCount {
                    message_id: header.message_id,
                    expected: set.count,
                    got: header.count,
                });
            }
        }
        if chunk.len() > self.config.max_message_bytes {
            if let Some(pos) = pos {
                self.sets.remove(pos);
            }
            return Err(self.too_large(header.message_id));
        }
        if header.count == 1 {
            // A whole message in one fragment: no state needed.
            return Ok(Some(self.complete(chunk)));
        }
        let pos = match pos {
            Some(pos) => pos,
            None => self.open(header, now),
        };
        let set = &mut self.sets[pos];
        if set.chunks.contains_key(&header.index) {
            self.stats.duplicates += 1;
            return Ok(None);
        }
        if set.bytes + chunk.len() > self.config.max_message_bytes {
            self.sets.remove(pos);
            return Err(self.too_large(header.message_id));
        }
        set.bytes += chunk.len();
        set.chunks.insert(header.index, chunk);
        if set.chunks.len() < usize::from(set.count) {
            return Ok(None);
        }
        let set = self.sets.remove(pos);
        let mut message = BytesMut::with_capacity(set.bytes);
        for chunk in set.chunks.values() {
            message.extend_from_slice(chunk);
        }
        Ok(Some(self.complete(message.freeze())))
    }

    fn complete(&mut self, message: Bytes) -> Bytes {
        self.stats.messages_in += 1;
        self.stats.bytes_in += message.len() as u64;
        message
    }

    fn too_large(&mut self, message_id: u16) -> FragmentError {
        self.stats.drops.too_large += 1;
        FragmentError::MessageTooLarge {
            message_id,
            max: self.config.max_message_bytes,
        }
    }

    /// Opens a partial message, evicting the oldest if at the cap; returns its position.
    fn open(&mut self, header: FragmentHeader, now: Instant) -> usize {
        if self.sets.len() >= self.config.max_sets {
            let oldest = self
                .sets
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.first_seen)
                .map(|(i, _)| i);
            if let Some(oldest) = oldest {
                let evicted = self.sets.remove(oldest);
                self.stats.drops.evicted += 1;
                tracing::debug!(
                    message_id = evicted.id,
                    "reassembly: evicted oldest partial message"
                );
            }
        }
        self.sets.push(PartialMessage {
            id: header.message_id,
            count: header.count,
            first_seen: now,
            bytes: 0,
            chunks: BTreeMap::new(),
        });
        self.sets.len() - 1
    }
}
