//! A cache of verified identity bindings: (PeerId, Noise static key) pairs whose identity
//! signature this node has already checked.
//!
//! The identity payload signs the remote's long-lived Noise static key, so the same remote
//! sends the same binding on every connection. Verifying its Ed25519 signature costs about as
//! much as one X25519 operation; a node that reconnects to the peers it knows pays it once.
//!
//! A hit skips only the signature check, never the handshake: the remote still has to complete
//! Noise XX with that static key, which needs its private half, so a cached binding proves no
//! more than the signature did. The cache is capped (least recently used out first), so
//! handshakes from many identities cannot grow it.

use std::sync::Mutex;

use crate::policy::lru_table::LruTable;
use crate::{HandshakeError, PeerId};

use super::payload::decode_identity_payload;

/// Bindings remembered per node by default.
pub(crate) const DEFAULT_BINDINGS: usize = 1024;

/// A binding: a PeerId's bytes and the Noise static public key it signed.
type Binding = ([u8; 32], [u8; 32]);

/// Verified (PeerId, Noise static key) bindings, capped.
pub(crate) struct BindingCache {
    table: Mutex<LruTable<Binding, ()>>,
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
        let key = (*peer.as_bytes(), *noise_static);
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.get_or_insert_with(&key, || (), |_| false);
        Ok(peer)
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
        table.get_mut(&(key, *noise_static))?;
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
