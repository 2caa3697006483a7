//! [`RecordKind`]: the kind byte that starts every record's plaintext (`docs/protocol.md` §4).

use crate::ProtocolError;

/// The kind byte of a record (see the table in the module docs and `docs/protocol.md` §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RecordKind {
    /// The last (or only) chunk of a message.
    Data = 0x00,
    /// A chunk with more to follow.
    DataMore = 0x01,
    /// Close, with a reason.
    Close = 0x02,
    /// The responder admitted the connection.
    Accept = 0x03,
    /// The responder refused the connection (a limit).
    Reject = 0x04,
    /// Several whole messages, each `u16` BE length then its bytes (see [`super::batch`]).
    Batch = 0x05,
}

impl RecordKind {
    /// The kind's byte on the wire.
    pub const fn byte(self) -> u8 {
        self as u8
    }

    /// The kind with this byte; [`ProtocolError::UnknownRecord`] for any other byte.
    pub fn from_byte(byte: u8) -> Result<Self, ProtocolError> {
        Ok(match byte {
            0x00 => Self::Data,
            0x01 => Self::DataMore,
            0x02 => Self::Close,
            0x03 => Self::Accept,
            0x04 => Self::Reject,
            0x05 => Self::Batch,
            other => return Err(ProtocolError::UnknownRecord(other)),
        })
    }
}

impl TryFrom<u8> for RecordKind {
    type Error = ProtocolError;

    fn try_from(byte: u8) -> Result<Self, ProtocolError> {
        Self::from_byte(byte)
    }
}

/// Record kind byte: the last (or only) chunk of a message.
pub const KIND_DATA: u8 = RecordKind::Data.byte();
/// Record kind byte: a chunk with more to follow.
pub const KIND_DATA_MORE: u8 = RecordKind::DataMore.byte();
/// Record kind byte: close, with a reason.
pub const KIND_CLOSE: u8 = RecordKind::Close.byte();
/// Record kind byte: the responder admitted the connection.
pub const KIND_ACCEPT: u8 = RecordKind::Accept.byte();
/// Record kind byte: the responder refused the connection (a limit).
pub const KIND_REJECT: u8 = RecordKind::Reject.byte();
/// Record kind byte: several whole messages in one record.
pub const KIND_BATCH: u8 = RecordKind::Batch.byte();
