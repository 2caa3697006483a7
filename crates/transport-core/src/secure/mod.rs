//! The secure channel: Noise XX (or IK, 1-RTT) over X25519 (snow), with each side's Ed25519 identity bound to
//! its Noise static key by a signature in the handshake payload.
//!
//! - [`payload`]: the identity payload and its signature; verified bindings are cached per
//!   node (`bindings.rs`), so a known peer's signature is checked once.
//! - [`handshake`]: the sans-IO Noise XX state machines, shared by every backend.
//! - [`handshake_ik`]: the 1-RTT Noise IK machines, used on streams when the dialer holds a
//!   verified static key for the PeerId it expects.
//! - [`batch`]: BATCH records, several whole messages sealed as one record.
//! - [`record`]: records after the handshake (data chunks, close, accept/reject) and their
//!   encryption with explicit nonces.
//!
//! The byte-level format is specified in `docs/protocol.md`.

pub mod batch;
mod bindings;
mod cipher;
pub mod decoder;
mod dh;
pub mod handshake;
pub mod handshake_ik;
mod kind;
pub mod payload;
pub mod record;

use std::sync::Arc;

use snow::params::{DHChoice, NoiseParams};
use snow::resolvers::{CryptoResolver, DefaultResolver};

use crate::{Keypair, PeerId};
use payload::{encode_identity_payload, IDENTITY_PAYLOAD_LEN};

/// The Noise prologue: both sides must agree on it, or the handshake fails.
pub const PROLOGUE: &[u8] = b"bitcraps-transport/1";

/// The Noise protocols a connection can use. The dialer picks one and names it in the first
/// handshake message; the listener accepts it if it is in its accepted list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CipherSuite {
    /// `Noise_XX_25519_ChaChaPoly_BLAKE2s`: best on CPUs without AES instructions (many phones).
    ChaChaPolyBlake2s,
    /// `Noise_XX_25519_AESGCM_SHA256`: about twice as fast where AES-NI exists.
    AesGcmSha256,
}

impl CipherSuite {
    /// Every suite, in id order.
    pub const ALL: [CipherSuite; 2] = [Self::ChaChaPolyBlake2s, Self::AesGcmSha256];

    /// The suite's id byte on the wire.
    pub fn id(self) -> u8 {
        match self {
            Self::ChaChaPolyBlake2s => 1,
            Self::AesGcmSha256 => 2,
        }
    }

    /// The suite with this wire id.
    pub fn from_id(id: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.id() == id)
    }

    /// The Noise protocol name.
    pub fn noise_name(self) -> &'static str {
        match self {
            Self::ChaChaPolyBlake2s => "Noise_XX_25519_ChaChaPoly_BLAKE2s",
            Self::AesGcmSha256 => "Noise_XX_25519_AESGCM_SHA256",
        }
    }

    /// The Noise protocol name of the 1-RTT handshake (pattern IK) with this suite.
    pub fn noise_name_ik(self) -> &'static str {
        match self {
            Self::ChaChaPolyBlake2s => "Noise_IK_25519_ChaChaPoly_BLAKE2s",
            Self::AesGcmSha256 => "Noise_IK_25519_AESGCM_SHA256",
        }
    }

    /// The id byte that starts message 1 of the 1-RTT handshake with this suite: the suite id
    /// with bit `0x10` set ([`handshake_ik::IK_FLAG`]).
    pub fn ik_id(self) -> u8 {
        handshake_ik::IK_FLAG | self.id()
    }

    pub(crate) fn params(self) -> NoiseParams {
        self.noise_name()
            .parse()
            .expect("suite names are valid Noise protocol names")
    }

    pub(crate) fn ik_params(self) -> NoiseParams {
        self.noise_name_ik()
            .parse()
            .expect("suite names are valid Noise protocol names")
    }
}

impl Default for CipherSuite {
    /// AES-GCM on x86-64 and aarch64 (hardware AES is near-universal there), ChaCha elsewhere.
    fn default() -> Self {
        if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
            Self::AesGcmSha256
        } else {
            Self::ChaChaPolyBlake2s
        }
    }
}

/// Which handshake a dial uses (`docs/protocol.md`, section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum HandshakeMode {
    /// Noise IK, one round trip, when the dial expects a PeerId whose Noise static key this node
    /// verified in an earlier handshake; Noise XX otherwise and after a fallback. A listener
    /// answers both. The default.
    #[default]
    Auto,
    /// Always Noise XX (two round trips). A listener in this mode answers an IK message 1 with
    /// the fallback to XX.
    XxOnly,
}

/// This node's identity prepared for handshakes: the Ed25519 keypair, an X25519 Noise static key,
/// and the signed identity payload, computed once and reused by every handshake.
pub struct LocalIdentity {
    keypair: Keypair,
    noise_private: [u8; 32],
    noise_public: [u8; 32],
    payload: [u8; IDENTITY_PAYLOAD_LEN],
    /// Remote bindings this node has verified (see [`bindings`]).
    bindings: Arc<bindings::BindingCache>,
    /// The static key for snow and the cached static-static DH results (see `dh.rs`).
    statics: Arc<dh::StaticDh>,
}

impl LocalIdentity {
    /// Prepares `keypair` with a fresh random Noise static key.
    pub fn new(keypair: Keypair) -> Arc<Self> {
        let mut private = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut private);
        Self::with_noise_key(keypair, private)
    }

    /// Prepares `keypair` with the given X25519 private key (deterministic; for test vectors).
    pub fn with_noise_key(keypair: Keypair, noise_private: [u8; 32]) -> Arc<Self> {
        let mut dh = DefaultResolver
            .resolve_dh(&DHChoice::Curve25519)
            .expect("the default resolver has X25519");
        dh.set(&noise_private);
        let mut noise_public = [0u8; 32];
        noise_public.copy_from_slice(dh.pubkey());
        let payload = encode_identity_payload(&keypair, &noise_public);
        let noise_private: [u8; 32] = dh.privkey().try_into().expect("32-byte key");
        Arc::new(Self {
            keypair,
            noise_private,
            noise_public,
            payload,
            bindings: Arc::new(bindings::BindingCache::new(bindings::DEFAULT_BINDINGS)),
            statics: Arc::new(dh::StaticDh::new(
                noise_private,
                noise_public,
                dh::DEFAULT_STATIC_DH,
            )),
        })
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.keypair.peer_id()
    }

    /// The Ed25519 keypair.
    pub fn keypair(&self) -> &Keypair {
        &self.keypair
    }

    /// The X25519 Noise static public key.
    pub fn noise_public(&self) -> &[u8; 32] {
        &self.noise_public
    }

    pub(crate) fn noise_private(&self) -> &[u8; 32] {
        &self.noise_private
    }

    pub(crate) fn payload(&self) -> &[u8; IDENTITY_PAYLOAD_LEN] {
        &self.payload
    }

    pub(crate) fn bindings(&self) -> &Arc<bindings::BindingCache> {
        &self.bindings
    }

    pub(crate) fn statics(&self) -> &Arc<dh::StaticDh> {
        &self.statics
    }
}

impl std::fmt::Debug for LocalIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalIdentity")
            .field("peer_id", &self.peer_id())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod vectors;
