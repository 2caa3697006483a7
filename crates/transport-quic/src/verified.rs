//! A small, bounded memo of remote certificates whose self-signature was already checked.
//!
//! Every handshake checks the remote certificate's Ed25519 self-signature (see `cert`), and the
//! identity is read from the same certificate again once the connection is up. A node mostly
//! reconnects to peers it has seen: checking the exact same certificate bytes again gives the
//! same answer, so a certificate accepted before is recognised by a byte comparison instead of
//! a second signature check. Only accepted certificates are remembered, in a fixed number of
//! slots (one per hash of the bytes, a newer certificate replacing an older one), each at most
//! [`MAX_REMEMBERED`] bytes: the memory is bounded per transport, whatever remotes send. The
//! TLS handshake signature (proof that the remote holds the key) is checked on every
//! connection regardless; this memo only skips re-checking a certificate's own signature.

use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use bitcraps_transport_core::PeerId;
use ed25519_dalek::VerifyingKey;

use crate::cert::{peer_id_from_certificate, CertError};

/// Slots of the memo.
const SLOTS: usize = 32;
/// Certificates longer than this are checked every time, never remembered (ours are ~300 B).
pub(crate) const MAX_REMEMBERED: usize = 1024;

/// A certificate's identity: the [`PeerId`] and its key, decoded once for the handshake
/// signature checks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Verified {
    /// The identity the certificate binds.
    pub(crate) peer: PeerId,
    /// The same key, decoded.
    pub(crate) key: VerifyingKey,
}

/// One remembered certificate's bytes and its identity.
type Slot = Option<(Box<[u8]>, Verified)>;

/// Certificates already accepted, and the [`PeerId`] each binds.
#[derive(Debug)]
pub(crate) struct VerifiedCertificates {
    /// Keyed per process at random, so a remote cannot aim at one slot.
    hasher: RandomState,
    slots: Mutex<Vec<Slot>>,
}

impl Default for VerifiedCertificates {
    fn default() -> Self {
        Self {
            hasher: RandomState::new(),
            slots: Mutex::new(vec![None; SLOTS]),
        }
    }
}

impl VerifiedCertificates {
    /// [`peer_id_from_certificate`], answered from the memo when these exact bytes were
    /// accepted before.
    pub(crate) fn peer_id(&self, der: &[u8]) -> Result<PeerId, CertError> {
        self.identity(der).map(|v| v.peer)
    }

    /// The identity of a certificate: checked by [`peer_id_from_certificate`], or answered
    /// from the memo when these exact bytes were accepted before.
    pub(crate) fn identity(&self, der: &[u8]) -> Result<Verified, CertError> {
        let slot = usize::try_from(self.hasher.hash_one(der) % SLOTS as u64).unwrap_or(0);
        if let Some((known, verified)) = &self.lock()[slot] {
            if **known == *der {
                return Ok(*verified);
            }
        }
        // Checked outside the lock: concurrent handshakes do not wait on each other.
        let peer = peer_id_from_certificate(der)?;
        // `PeerId` only holds keys that decode (and are not of small order).
        let key = VerifyingKey::from_bytes(peer.as_bytes()).map_err(|_| CertError::BadKey)?;
        let verified = Verified { peer, key };
        if der.len() <= MAX_REMEMBERED {
            self.lock()[slot] = Some((der.into(), verified));
        }
        Ok(verified)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.lock().iter().flatten().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::self_signed_certificate;
    use bitcraps_transport_core::Keypair;

    #[test]
    fn an_accepted_certificate_is_remembered_and_answers_the_same() {
        let memo = VerifiedCertificates::default();
        let keypair = Keypair::generate();
        let (cert, _) = self_signed_certificate(&keypair).unwrap();
        assert_eq!(memo.peer_id(&cert).unwrap(), keypair.peer_id());
        assert_eq!(memo.remembered(), 1);
        assert_eq!(memo.peer_id(&cert).unwrap(), keypair.peer_id());
        assert_eq!(memo.remembered(), 1);
    }

    #[test]
    fn a_refused_or_altered_certificate_is_never_remembered_or_accepted() {
        let memo = VerifiedCertificates::default();
        let keypair = Keypair::generate();
        let (cert, _) = self_signed_certificate(&keypair).unwrap();
        memo.peer_id(&cert).unwrap();
        // Every single-bit change of a remembered certificate is checked afresh and refused.
        for i in 0..cert.len() {
            let mut flipped = cert.to_vec();
            flipped[i] ^= 0x01;
            assert!(memo.peer_id(&flipped).is_err(), "flip at {i}");
        }
        assert_eq!(memo.remembered(), 1);
    }

    #[test]
    fn memory_stays_bounded_by_the_slots() {
        let memo = VerifiedCertificates::default();
        for _ in 0..3 * SLOTS {
            let keypair = Keypair::generate();
            let (cert, _) = self_signed_certificate(&keypair).unwrap();
            assert_eq!(memo.peer_id(&cert).unwrap(), keypair.peer_id());
        }
        assert!(memo.remembered() <= SLOTS);
    }
}
