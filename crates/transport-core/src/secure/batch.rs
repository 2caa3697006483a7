//! BATCH records: several whole application messages sealed as one record (one AEAD operation,
//! one frame), so small messages do not each pay for a record.
//!
//! ```text
//! BATCH body = entry || entry || ...   (at least one entry, at most MAX_BATCH_BODY bytes)
//! entry      = length (u16 BE) || length bytes of one whole message (length may be 0)
//! ```
//!
//! The sender batches only what is already queued when it writes (it never waits to fill a
//! batch); a message too big for an entry goes as DATA / DATA_MORE records. The receiver checks
//! the whole body before it delivers any entry ([`split_batch`]), then hands out each entry as a
//! slice of the decrypted record: no copy.

use bytes::{BufMut, Bytes, BytesMut};

use super::record::{RecordSealer, KIND_BATCH, MAX_CHUNK};
use crate::{BatchError, ProtocolError};

/// Bytes of an entry's length prefix.
pub const BATCH_ENTRY_HEADER: usize = 2;
/// The largest BATCH body: a record's largest body.
pub const MAX_BATCH_BODY: usize = MAX_CHUNK;
/// The largest message one entry carries (a full body with a single entry).
pub const MAX_BATCH_ENTRY: usize = MAX_BATCH_BODY - BATCH_ENTRY_HEADER;

/// The entries of a checked BATCH body, in order, each sharing the body's memory.
#[derive(Debug, Clone)]
pub struct BatchEntries {
    body: Bytes,
    offset: usize,
    remaining: usize,
}

impl Iterator for BatchEntries {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        if self.remaining == 0 {
            return None;
        }
        let at = self.offset;
        let len = usize::from(u16::from_be_bytes([self.body[at], self.body[at + 1]]));
        let start = at + BATCH_ENTRY_HEADER;
        self.offset = start + len;
        self.remaining -= 1;
        Some(self.body.slice(start..start + len))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for BatchEntries {}

/// Checks a BATCH body and returns its entries. Every byte must belong to an entry: an empty
/// body, a length cut short, or an entry running past the end is a [`BatchError`], and nothing
/// is handed out. The body's size is the caller's to bound (a record is at most 64 KiB).
pub fn split_batch(body: Bytes) -> Result<BatchEntries, ProtocolError> {
    split_checked(body, usize::MAX)
}

/// [`split_batch`], also refusing any entry over `max` bytes ([`ProtocolError::MessageTooLarge`]).
pub(super) fn split_checked(body: Bytes, max: usize) -> Result<BatchEntries, ProtocolError> {
    if body.is_empty() {
        return Err(BatchError::Empty.into());
    }
    let mut offset = 0;
    let mut count = 0;
    while offset < body.len() {
        if body.len() - offset < BATCH_ENTRY_HEADER {
            return Err(BatchError::TruncatedLength { offset }.into());
        }
        let len = usize::from(u16::from_be_bytes([body[offset], body[offset + 1]]));
        if body.len() - offset - BATCH_ENTRY_HEADER < len {
            return Err(BatchError::PastEnd { offset, len }.into());
        }
        if len > max {
            return Err(ProtocolError::MessageTooLarge { max });
        }
        offset += BATCH_ENTRY_HEADER + len;
        count += 1;
    }
    Ok(BatchEntries {
        body,
        offset: 0,
        remaining: count,
    })
}

/// The body length of a batch of `messages`, or `None` if it is empty, an entry is too large,
/// or the whole exceeds [`MAX_BATCH_BODY`].
pub fn batch_body_len<M: AsRef<[u8]>>(messages: &[M]) -> Option<usize> {
    if messages.is_empty() {
        return None;
    }
    let mut total = 0usize;
    for m in messages {
        let len = m.as_ref().len();
        if len > MAX_BATCH_ENTRY {
            return None;
        }
        total += BATCH_ENTRY_HEADER + len;
        if total > MAX_BATCH_BODY {
            return None;
        }
    }
    Some(total)
}

/// Appends the BATCH body of `messages` (plaintext, no record header) to `out`.
pub fn encode_batch_body<M: AsRef<[u8]>>(
    messages: &[M],
    out: &mut BytesMut,
) -> Result<(), ProtocolError> {
    let len = batch_body_len(messages).ok_or(ProtocolError::MessageTooLarge {
        max: MAX_BATCH_ENTRY,
    })?;
    out.reserve(len);
    put_entries(messages, out);
    Ok(())
}

fn put_entries<M: AsRef<[u8]>>(messages: &[M], out: &mut BytesMut) {
    for m in messages {
        let m = m.as_ref();
        // `batch_body_len` checked every entry fits a u16.
        out.put_u16(m.len() as u16);
        out.put_slice(m);
    }
}

/// How many messages from the front of `messages` go into one batch, and its body length:
/// the longest run that fits one record.
fn batch_run<M: AsRef<[u8]>>(messages: &[M]) -> (usize, usize) {
    let mut body = 0;
    for (i, m) in messages.iter().enumerate() {
        let len = m.as_ref().len();
        if len > MAX_BATCH_ENTRY || body + BATCH_ENTRY_HEADER + len > MAX_BATCH_BODY {
            return (i, body);
        }
        body += BATCH_ENTRY_HEADER + len;
    }
    (messages.len(), body)
}

impl RecordSealer {
    /// Appends one BATCH record carrying all of `messages` to `out` (see [`batch_body_len`] for
    /// what fits).
    pub fn seal_batch<M: AsRef<[u8]>>(
        &mut self,
        messages: &[M],
        out: &mut BytesMut,
    ) -> Result<(), ProtocolError> {
        let len = batch_body_len(messages).ok_or(ProtocolError::MessageTooLarge {
            max: MAX_BATCH_ENTRY,
        })?;
        let start = self.begin(KIND_BATCH, len, out)?;
        put_entries(messages, out);
        self.finish(start, out)
    }

    /// Appends `messages`, in order, as few records as it can: each run of two or more that fits
    /// one record becomes a BATCH record, any other message its DATA / DATA_MORE records.
    /// Returns the number of records written.
    pub fn seal_messages<M: AsRef<[u8]>>(
        &mut self,
        messages: &[M],
        out: &mut BytesMut,
    ) -> Result<usize, ProtocolError> {
        let mut rest = messages;
        let mut records = 0;
        while let Some(first) = rest.first() {
            let (n, _) = batch_run(rest);
            if n >= 2 {
                self.seal_batch(&rest[..n], out)?;
                rest = &rest[n..];
                records += 1;
            } else {
                let m = first.as_ref();
                self.seal_message(m, out)?;
                records += m.len().div_ceil(MAX_CHUNK).max(1);
                rest = &rest[1..];
            }
        }
        Ok(records)
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
