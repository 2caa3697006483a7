//! The AEAD of one direction of a secured connection, sealing and opening in place.
//!
//! After the handshake we take Noise's split keys and run the suite's AEAD ourselves with the
//! exact construction Noise specifies (nonce = 32 zero bits || 64-bit counter, big-endian for
//! AESGCM and little-endian for ChaChaPoly; empty associated data), so records are bit-identical
//! to snow's transport messages (the test vectors prove it), but: the cipher's key schedule is
//! computed once per connection instead of once per record, and records are encrypted and
//! decrypted in place, so a received message is handed to the application without a copy.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::Aes256Gcm;
use chacha20poly1305::ChaCha20Poly1305;

use super::CipherSuite;

/// Length of the AEAD tag.
pub(crate) const TAG_LEN: usize = 16;

/// One direction's cipher.
pub(crate) enum DirectionCipher {
    Aes(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

impl DirectionCipher {
    pub(crate) fn new(suite: CipherSuite, key: &[u8; 32]) -> Self {
        match suite {
            CipherSuite::AesGcmSha256 => Self::Aes(Box::new(Aes256Gcm::new(key.into()))),
            CipherSuite::ChaChaPolyBlake2s => {
                Self::ChaCha(Box::new(ChaCha20Poly1305::new(key.into())))
            }
        }
    }

    fn nonce(&self, counter: u64) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        match self {
            Self::Aes(_) => nonce[4..].copy_from_slice(&counter.to_be_bytes()),
            Self::ChaCha(_) => nonce[4..].copy_from_slice(&counter.to_le_bytes()),
        }
        nonce
    }

    /// Encrypts `buf` in place with nonce `counter`; returns the tag.
    pub(crate) fn seal(&self, counter: u64, buf: &mut [u8]) -> Result<[u8; TAG_LEN], ()> {
        let nonce = self.nonce(counter);
        let tag = match self {
            Self::Aes(c) => c.encrypt_in_place_detached(&nonce.into(), &[], buf),
            Self::ChaCha(c) => c.encrypt_in_place_detached(&nonce.into(), &[], buf),
        }
        .map_err(|_| ())?;
        Ok(tag.into())
    }

    /// Decrypts `buf` in place with nonce `counter`, checking `tag`.
    pub(crate) fn open(&self, counter: u64, buf: &mut [u8], tag: &[u8; TAG_LEN]) -> Result<(), ()> {
        let nonce = self.nonce(counter);
        match self {
            Self::Aes(c) => c.decrypt_in_place_detached(&nonce.into(), &[], buf, tag.into()),
            Self::ChaCha(c) => c.decrypt_in_place_detached(&nonce.into(), &[], buf, tag.into()),
        }
        .map_err(|_| ())
    }
}
