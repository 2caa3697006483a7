//! A cache of verified identity bindings: (PeerId, Noise static key) pairs whose identity
//! signature this node has already checked.
//!
//! The identity payload signs the remote's long-lived Noise static key, so the same remote
//! sends the same binding on every connection. Verifying its Ed25519 signature costs about as
//! much as one X25519 operation; a node that reconnects to the peers it knows pays it once.
//!
//! A hit skips only the signature check, never the handshake: the remote still has to complete
//! Noise with that static key, which needs its private half, so a cached binding proves no more
//! than the signature did. The cache is capped (least recently used out first), so handshakes
//! from many identities cannot grow it.
//!
//! It keeps the latest verified static key per PeerId, which is also what a dialer needs for
//! the 1-RTT handshake (Noise IK, see [`super::handshake_ik`]): a dial that expects a PeerId
//! whose static key is cached can encrypt its first message to that key.

use std::sync::Mutex;

use crate::policy::lru_table::LruTable;
use crate::{HandshakeError, PeerId};

use super::payload::decode_identity_payload;

/// Bindings remembered per node by default.
pub(crate) const DEFAULT_BINDINGS: usize = 1024;

/// Verified (PeerId, Noise static key) bindings, capped: a PeerId's bytes to the latest Noise
/// static public key it signed.
pub(crate) struct BindingCache {
    table: Mutex<LruTable<[u8; 32], [u8; 32]>>,
}

impl BindingCache {
    /// An empty cache holding at most `capacity` bindings (at least 1).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            table: Mutex::new(LruTable::new(capacity.max(1))),
        }
    }

    /// [`decode_identity_payload`], skipping the signature check for a binding verified before.
    pub(crate) fn decode(
        &self,
        payload: &[u8],
        noise_static: &[u8; 32],
    ) -> Result<PeerId, HandshakeError> {
        if let Some(peer) = self.known(payload, noise_static) {
            return Ok(peer);
        }
        let peer = decode_identity_payload(payload, noise_static)?;
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        *table.get_or_insert_with(peer.as_bytes(), || *noise_static, |_| false) = *noise_static;
        Ok(peer)
    }

    /// The latest verified Noise static key of `peer`, if cached.
    pub(crate) fn static_key(&self, peer: &PeerId) -> Option<[u8; 32]> {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.get_mut(peer.as_bytes()).copied()
    }

    /// Forgets `peer`'s binding if it is still `noise_static` (the remote no longer holds that
    /// key: a 1-RTT handshake to it fell back). A newer binding is kept.
    pub(crate) fn forget(&self, peer: &PeerId, noise_static: &[u8; 32]) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if table
            .get_mut(peer.as_bytes())
            .is_some_and(|key| key == noise_static)
        {
            table.remove(peer.as_bytes());
        }
    }

    /// The payload's PeerId if the payload is well formed and its binding is cached.
    fn known(&self, payload: &[u8], noise_static: &[u8; 32]) -> Option<PeerId> {
        // The same layout checks as a full decode, before the lookup: a hit is only ever a
        // payload that would have decoded to this PeerId.
        let (&version, rest) = payload.split_first()?;
        if payload.len() != super::payload::IDENTITY_PAYLOAD_LEN
            || version != super::payload::PAYLOAD_VERSION
        {
            return None;
        }
        let key: [u8; 32] = rest[..32].try_into().ok()?;
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if table.get_mut(&key).is_none_or(|key| key != noise_static) {
            return None;
        }
        // Cached keys were valid PeerIds when inserted.
        PeerId::from_bytes(key).ok()
    }

    /// How many bindings are cached.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secure::payload::encode_identity_payload;
    use crate::Keypair;

    #[test]
    fn a_verified_binding_is_remembered_and_a_forged_one_never_is() {
        let cache = BindingCache::new(2);
        let key = Keypair::from_secret_bytes([5; 32]);
        let noise = [7u8; 32];
        let payload = encode_identity_payload(&key, &noise);
        assert_eq!(cache.decode(&payload, &noise), Ok(key.peer_id()));
        assert_eq!(cache.len(), 1);
        // A hit: the same answer.
        assert_eq!(cache.decode(&payload, &noise), Ok(key.peer_id()));
        // The same PeerId with another static key is not covered by the cached binding.
        assert_eq!(
            cache.decode(&payload, &[8u8; 32]),
            Err(HandshakeError::BadSignature)
        );
        // A bad signature is never cached.
        let mut forged = payload;
        forged[40] ^= 1;
        assert!(cache.decode(&forged, &[9u8; 32]).is_err());
        assert_eq!(cache.len(), 1);
        // Malformed payloads fail the same way with or without a cached binding.
        assert!(cache.decode(&payload[..96], &noise).is_err());
        let mut other_version = payload;
        other_version[0] = 2;
        assert!(cache.decode(&other_version, &noise).is_err());
    }

    #[test]
    fn the_latest_static_key_is_kept_and_forgotten_only_if_unchanged() {
        let cache = BindingCache::new(4);
        let key = Keypair::from_secret_bytes([5; 32]);
        let peer = key.peer_id();
        assert_eq!(cache.static_key(&peer), None);
        cache
            .decode(&encode_identity_payload(&key, &[1; 32]), &[1; 32])
            .unwrap();
        assert_eq!(cache.static_key(&peer), Some([1; 32]));
        // The peer restarted with a new static key: the new binding replaces the old one.
        cache
            .decode(&encode_identity_payload(&key, &[2; 32]), &[2; 32])
            .unwrap();
        assert_eq!(cache.static_key(&peer), Some([2; 32]));
        assert_eq!(cache.len(), 1);
        // A fallback for the old key does not forget the new one.
        cache.forget(&peer, &[1; 32]);
        assert_eq!(cache.static_key(&peer), Some([2; 32]));
        cache.forget(&peer, &[2; 32]);
        assert_eq!(cache.static_key(&peer), None);
        // The old binding is no longer a hit: its signature is checked again.
        assert_eq!(
            cache.decode(&encode_identity_payload(&key, &[1; 32]), &[2; 32]),
            Err(HandshakeError::BadSignature)
        );
    }

    #[test]
    fn the_cache_is_capped() {
        let cache = BindingCache::new(2);
        for i in 0..10u8 {
            let key = Keypair::from_secret_bytes([i; 32]);
            let noise = [i; 32];
            cache
                .decode(&encode_identity_payload(&key, &noise), &noise)
                .unwrap();
        }
        assert_eq!(cache.len(), 2);
    }
}
