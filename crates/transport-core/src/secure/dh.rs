//! The crypto that snow runs our handshakes with: X25519 that knows this node's static key, so
//! it never re-derives its public half and can reuse the static-static DH of a known peer, and
//! ring's SHA-256 and AEADs where ring has them (snow's own code otherwise).
//!
//! Noise IK mixes `ss = DH(local static, remote static)` into every handshake between the same
//! two nodes; it never changes while both keep their static keys, and an X25519 operation is
//! most of a handshake's CPU (about 40 us here). The cache holds it per remote static key, and
//! only for keys whose identity binding a handshake verified: each handshake's DH results go to
//! a per-handshake scratch list first, and the handshake code moves the one for the proven remote
//! static key into the cache ([`HandshakeDh::commit`]). A cached value is one this node computed
//! itself, so nothing a remote sends can put a wrong value in; it is as secret as the static
//! private key it is derived from, which lives in the same process. In XX the static key only
//! ever meets remote ephemeral keys, so nothing is cached. Capped (least recently used out).

use std::sync::{Arc, Mutex};

use curve25519_dalek::montgomery::MontgomeryPoint;
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver, FallbackResolver, RingResolver};
use snow::types::{Cipher, Dh, Hash, Random};

use crate::policy::lru_table::LruTable;

/// Static-static DH results remembered by default (one per remote static key).
pub(crate) const DEFAULT_STATIC_DH: usize = 1024;

/// This node's static key pair and the cached static-static DH results.
pub(crate) struct StaticDh {
    private: [u8; 32],
    public: [u8; 32],
    cache: Mutex<LruTable<[u8; 32], [u8; 32]>>,
}

impl StaticDh {
    /// The static key pair `private`/`public` (public already derived), caching at most
    /// `capacity` results.
    pub(crate) fn new(private: [u8; 32], public: [u8; 32], capacity: usize) -> Self {
        Self {
            private,
            public,
            cache: Mutex::new(LruTable::new(capacity.max(1))),
        }
    }

    fn cached(&self, remote: &[u8; 32]) -> Option<[u8; 32]> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get_mut(remote).copied()
    }

    /// How many results are cached.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// One handshake's DH results with the static key: (remote public key, shared secret).
type Scratch = Arc<Mutex<Vec<([u8; 32], [u8; 32])>>>;

/// The crypto of one handshake: a snow resolver, plus the scratch list of the static key's DH
/// results that [`HandshakeDh::commit`] moves into the cache.
pub(crate) struct HandshakeDh {
    statics: Arc<StaticDh>,
    scratch: Scratch,
}

impl HandshakeDh {
    pub(crate) fn new(statics: Arc<StaticDh>) -> Self {
        Self {
            statics,
            scratch: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The resolver to build this handshake's snow state with.
    pub(crate) fn resolver(&self) -> Box<dyn CryptoResolver + Send> {
        Box::new(Resolver {
            statics: self.statics.clone(),
            scratch: self.scratch.clone(),
            others: FallbackResolver::new(Box::new(RingResolver), Box::new(DefaultResolver)),
        })
    }

    /// Caches the static-static DH with `remote_static`, if this handshake computed one: call it
    /// once the remote's binding of that key to its PeerId is verified.
    pub(crate) fn commit(&self, remote_static: &[u8; 32]) {
        let scratch = std::mem::take(&mut *self.scratch.lock().unwrap_or_else(|p| p.into_inner()));
        if let Some((_, shared)) = scratch.iter().find(|(remote, _)| remote == remote_static) {
            let mut cache = self.statics.cache.lock().unwrap_or_else(|p| p.into_inner());
            *cache.get_or_insert_with(remote_static, || *shared, |_| false) = *shared;
        }
    }
}

struct Resolver {
    statics: Arc<StaticDh>,
    scratch: Scratch,
    others: FallbackResolver,
}

impl CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        self.others.resolve_rng()
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            DHChoice::Curve25519 => Some(Box::new(X25519 {
                private: [0; 32],
                public: [0; 32],
                statics: self.statics.clone(),
                scratch: self.scratch.clone(),
            })),
            _ => None,
        }
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        self.others.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        self.others.resolve_cipher(choice)
    }
}

/// One X25519 key of a handshake (the static or the ephemeral one).
struct X25519 {
    private: [u8; 32],
    public: [u8; 32],
    statics: Arc<StaticDh>,
    scratch: Scratch,
}

impl X25519 {
    fn is_static(&self) -> bool {
        self.public == self.statics.public && self.private == self.statics.private
    }
}

impl Dh for X25519 {
    fn name(&self) -> &'static str {
        "25519"
    }

    fn pub_len(&self) -> usize {
        32
    }

    fn priv_len(&self) -> usize {
        32
    }

    fn set(&mut self, private: &[u8]) {
        let mut key = [0u8; 32];
        let n = private.len().min(32);
        key[..n].copy_from_slice(&private[..n]);
        self.private = key;
        self.public = if key == self.statics.private {
            // The static key: its public half was derived once, when the identity was made.
            self.statics.public
        } else {
            MontgomeryPoint::mul_base_clamped(key).to_bytes()
        };
    }

    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        let mut key = [0u8; 32];
        rng.try_fill_bytes(&mut key)?;
        self.set(&key);
        Ok(())
    }

    fn pubkey(&self) -> &[u8] {
        &self.public
    }

    fn privkey(&self) -> &[u8] {
        &self.private
    }

    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        let remote: [u8; 32] = pubkey
            .get(..32)
            .and_then(|k| k.try_into().ok())
            .ok_or(snow::Error::Dh)?;
        let is_static = self.is_static();
        let shared = match is_static.then(|| self.statics.cached(&remote)).flatten() {
            Some(shared) => shared,
            None => MontgomeryPoint(remote).mul_clamped(self.private).to_bytes(),
        };
        if is_static {
            let mut scratch = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
            // A handshake makes at most two DH with its static key; keep the list tiny anyway.
            if scratch.len() < 4 {
                scratch.push((remote, shared));
            }
        }
        out.get_mut(..32)
            .ok_or(snow::Error::Dh)?
            .copy_from_slice(&shared);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(private: [u8; 32]) -> [u8; 32] {
        MontgomeryPoint::mul_base_clamped(private).to_bytes()
    }

    fn dh_of(hs: &HandshakeDh, private: [u8; 32], remote: [u8; 32]) -> [u8; 32] {
        let mut key = hs.resolver().resolve_dh(&DHChoice::Curve25519).unwrap();
        key.set(&private);
        let mut out = [0u8; 32];
        key.dh(&remote, &mut out).unwrap();
        out
    }

    #[test]
    fn results_equal_plain_x25519_and_only_committed_statics_are_cached() {
        let (local, remote, eph) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        let statics = Arc::new(StaticDh::new(local, public(local), 8));
        let expected = MontgomeryPoint(public(remote))
            .mul_clamped(local)
            .to_bytes();
        let hs = HandshakeDh::new(statics.clone());
        assert_eq!(dh_of(&hs, local, public(remote)), expected);
        // An ephemeral key's DH is never recorded.
        dh_of(&hs, eph, public(remote));
        assert_eq!(statics.len(), 0, "nothing cached before commit");
        hs.commit(&public(eph));
        assert_eq!(statics.len(), 0, "no DH with that key: nothing to cache");
        let hs = HandshakeDh::new(statics.clone());
        dh_of(&hs, local, public(remote));
        hs.commit(&public(remote));
        assert_eq!(statics.len(), 1);
        assert_eq!(statics.cached(&public(remote)), Some(expected));
        // A hit gives the same bytes.
        let hs = HandshakeDh::new(statics.clone());
        assert_eq!(dh_of(&hs, local, public(remote)), expected);
    }

    #[test]
    fn the_static_public_key_is_not_derived_again() {
        let local = [7u8; 32];
        let statics = Arc::new(StaticDh::new(local, public(local), 8));
        let hs = HandshakeDh::new(statics);
        let mut key = hs.resolver().resolve_dh(&DHChoice::Curve25519).unwrap();
        key.set(&local);
        assert_eq!(key.pubkey(), public(local));
        key.set(&[9u8; 32]);
        assert_eq!(key.pubkey(), public([9u8; 32]));
    }
}
