//! The AEAD of one direction of a secured connection, sealing and opening in place.
//!
//! After the handshake we take Noise's split keys and run the suite's AEAD ourselves with the
//! exact construction Noise specifies (nonce = 32 zero bits || 64-bit counter, big-endian for
//! AESGCM and little-endian for ChaChaPoly; empty associated data), so records are bit-identical
//! to snow's transport messages (the test vectors in `docs/protocol.md` prove it). What we gain:
//! ring's assembly AES-GCM and ChaCha20-Poly1305 (several times faster than the portable
//! implementations snow uses), a key schedule computed once per connection instead of once per
//! record, and records encrypted and decrypted in place, so a received message reaches the
//! application without a copy.

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM, CHACHA20_POLY1305};

use super::CipherSuite;

/// Length of the AEAD tag.
pub(crate) const TAG_LEN: usize = 16;

/// One direction's cipher.
pub(crate) struct DirectionCipher {
    /// Boxed: an expanded AES key schedule is hundreds of bytes, and sealers and openers are
    /// moved around (handshake states, connection tasks).
    key: Box<LessSafeKey>,
    big_endian_nonce: bool,
}

impl DirectionCipher {
    pub(crate) fn new(suite: CipherSuite, key: &[u8; 32]) -> Self {
        let (algorithm, big_endian_nonce) = match suite {
            CipherSuite::AesGcmSha256 => (&AES_256_GCM, true),
            CipherSuite::ChaChaPolyBlake2s => (&CHACHA20_POLY1305, false),
        };
        let key = UnboundKey::new(algorithm, key).expect("both suites take 32-byte keys");
        Self {
            key: Box::new(LessSafeKey::new(key)),
            big_endian_nonce,
        }
    }

    fn nonce(&self, counter: u64) -> Nonce {
        let mut nonce = [0u8; 12];
        if self.big_endian_nonce {
            nonce[4..].copy_from_slice(&counter.to_be_bytes());
        } else {
            nonce[4..].copy_from_slice(&counter.to_le_bytes());
        }
        Nonce::assume_unique_for_key(nonce)
    }

    /// Encrypts `buf` in place with nonce `counter`; returns the tag.
    pub(crate) fn seal(&self, counter: u64, buf: &mut [u8]) -> Result<[u8; TAG_LEN], ()> {
        let tag = self
            .key
            .seal_in_place_separate_tag(self.nonce(counter), Aad::empty(), buf)
            .map_err(|_| ())?;
        tag.as_ref().try_into().map_err(|_| ())
    }

    /// Decrypts `buf` in place with nonce `counter`, checking `tag`.
    pub(crate) fn open(&self, counter: u64, buf: &mut [u8], tag: &[u8; TAG_LEN]) -> Result<(), ()> {
        self.key
            .open_in_place_separate_tag(
                self.nonce(counter),
                Aad::empty(),
                Tag::from(*tag),
                buf,
                0..,
            )
            .map(|_| ())
            .map_err(|_| ())
    }
}
