//! Signing, verifying and end-to-end encryption of mesh packets.
//!
//! A directed payload is sealed to the destination's Ed25519 key converted to X25519: the
//! origin draws an ephemeral X25519 secret `e`, computes `E = e·B` and the shared point
//! `S = e·D` (D = the destination's Montgomery form), derives a ChaCha20-Poly1305 key with
//! HKDF-SHA256 (salt [`E2E_SALT`], info = `E || origin || destination || message id`) and seals
//! with an all-zero nonce (every key is used once). The wire payload is `E || ciphertext || tag`.
//! The destination computes `S = d·E` with the scalar of its Ed25519 secret. The whole payload
//! is covered by the origin's signature, so relays can neither read nor alter it.

use bytes::Bytes;
use curve25519_dalek::montgomery::MontgomeryPoint;
use ed25519_dalek::{SigningKey, VerifyingKey};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use ring::hkdf;

use bitcraps_transport_core::{Keypair, PeerId};

use crate::wire::{Destination, MessageId, Packet, MAX_PAYLOAD};

/// HKDF salt of the end-to-end key.
pub const E2E_SALT: &[u8] = b"bitcraps-mesh-e2e-v1";
/// Bytes a directed payload adds to the plaintext: the ephemeral key and the tag.
pub const E2E_OVERHEAD: usize = 32 + 16;
/// Largest plaintext of a broadcast.
pub const MAX_BROADCAST_PLAINTEXT: usize = MAX_PAYLOAD;
/// Largest plaintext of a directed packet.
pub const MAX_DIRECTED_PLAINTEXT: usize = MAX_PAYLOAD - E2E_OVERHEAD;

/// Why a packet could not be built or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The plaintext is longer than the packet allows.
    #[error("payload of {len} bytes exceeds the maximum {max}")]
    PayloadTooLong {
        /// The plaintext's length.
        len: usize,
        /// The maximum for this kind of packet.
        max: usize,
    },
    /// The ciphertext does not open with our key (not for us, or corrupted by its origin).
    #[error("directed payload does not decrypt")]
    Undecryptable,
    /// A key agreement gave the identity point (a low-order key).
    #[error("low-order key in key agreement")]
    LowOrderKey,
}

/// Builds a signed broadcast packet with the given TTL.
pub fn seal_broadcast(
    keypair: &Keypair,
    id: MessageId,
    ttl: u8,
    plaintext: Bytes,
) -> Result<Packet, CryptoError> {
    if plaintext.len() > MAX_BROADCAST_PLAINTEXT {
        return Err(CryptoError::PayloadTooLong {
            len: plaintext.len(),
            max: MAX_BROADCAST_PLAINTEXT,
        });
    }
    Ok(sign(keypair, id, ttl, Destination::Broadcast, plaintext))
}

/// Builds a signed neighbour list (TTL 0: never relayed).
pub fn seal_neighbours(keypair: &Keypair, id: MessageId, peers: &[PeerId]) -> Packet {
    sign(
        keypair,
        id,
        0,
        Destination::Neighbours,
        crate::wire::neighbours_payload(peers),
    )
}

/// Builds a signed directed packet, its payload sealed to `dest` with the ephemeral X25519
/// secret `ephemeral` (32 random bytes; clamped here).
pub fn seal_directed(
    keypair: &Keypair,
    id: MessageId,
    ttl: u8,
    dest: PeerId,
    ephemeral: [u8; 32],
    plaintext: &[u8],
) -> Result<Packet, CryptoError> {
    if plaintext.len() > MAX_DIRECTED_PLAINTEXT {
        return Err(CryptoError::PayloadTooLong {
            len: plaintext.len(),
            max: MAX_DIRECTED_PLAINTEXT,
        });
    }
    let eph_public = MontgomeryPoint::mul_base_clamped(ephemeral);
    let shared = montgomery_of(&dest)?.mul_clamped(ephemeral);
    let key = aead_key(&shared, &eph_public, &keypair.peer_id(), &dest, &id)?;
    let mut sealed = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key([0; 12]),
        Aad::empty(),
        &mut sealed,
    )
    .map_err(|_| CryptoError::Undecryptable)?;
    let mut payload = Vec::with_capacity(E2E_OVERHEAD + plaintext.len());
    payload.extend_from_slice(eph_public.as_bytes());
    payload.extend_from_slice(&sealed);
    Ok(sign(
        keypair,
        id,
        ttl,
        Destination::Peer(dest),
        Bytes::from(payload),
    ))
}

/// Opens a directed packet addressed to `keypair` (the signature must already be verified).
pub fn open_directed(keypair: &Keypair, packet: &Packet) -> Result<Bytes, CryptoError> {
    let me = keypair.peer_id();
    if packet.destination != Destination::Peer(me) || packet.payload.len() < E2E_OVERHEAD {
        return Err(CryptoError::Undecryptable);
    }
    let mut eph = [0u8; 32];
    eph.copy_from_slice(&packet.payload[..32]);
    let eph_public = MontgomeryPoint(eph);
    let scalar = SigningKey::from_bytes(&keypair.secret_bytes()).to_scalar_bytes();
    let shared = eph_public.mul_clamped(scalar);
    let key = aead_key(&shared, &eph_public, &packet.origin, &me, &packet.id)?;
    let mut sealed = packet.payload[32..].to_vec();
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::empty(),
            &mut sealed,
        )
        .map_err(|_| CryptoError::Undecryptable)?;
    Ok(Bytes::copy_from_slice(plain))
}

/// Whether the packet's signature is the origin's over its signed bytes.
pub fn verify(packet: &Packet) -> bool {
    packet
        .origin
        .verify(&packet.signed_bytes(), &packet.signature)
}

fn sign(
    keypair: &Keypair,
    id: MessageId,
    ttl: u8,
    destination: Destination,
    payload: Bytes,
) -> Packet {
    let mut packet = Packet {
        ttl,
        hops: 0,
        flags: 0,
        origin: keypair.peer_id(),
        id,
        destination,
        payload,
        signature: [0; 64],
    };
    packet.signature = keypair.sign(&packet.signed_bytes());
    packet
}

fn montgomery_of(peer: &PeerId) -> Result<MontgomeryPoint, CryptoError> {
    VerifyingKey::from_bytes(peer.as_bytes())
        .map(|key| key.to_montgomery())
        .map_err(|_| CryptoError::LowOrderKey)
}

struct KeyLen;

impl hkdf::KeyType for KeyLen {
    fn len(&self) -> usize {
        32
    }
}

fn aead_key(
    shared: &MontgomeryPoint,
    eph_public: &MontgomeryPoint,
    origin: &PeerId,
    dest: &PeerId,
    id: &MessageId,
) -> Result<LessSafeKey, CryptoError> {
    if shared.as_bytes() == &[0u8; 32] {
        return Err(CryptoError::LowOrderKey);
    }
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, E2E_SALT);
    let prk = salt.extract(shared.as_bytes());
    let info: [&[u8]; 4] = [
        eph_public.as_bytes(),
        origin.as_bytes(),
        dest.as_bytes(),
        &id.0,
    ];
    let okm = prk
        .expand(&info, KeyLen)
        .map_err(|_| CryptoError::Undecryptable)?;
    let mut key = [0u8; 32];
    okm.fill(&mut key).map_err(|_| CryptoError::Undecryptable)?;
    let unbound =
        UnboundKey::new(&CHACHA20_POLY1305, &key).map_err(|_| CryptoError::Undecryptable)?;
    Ok(LessSafeKey::new(unbound))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> Keypair {
        Keypair::from_secret_bytes([seed; 32])
    }

    #[test]
    fn directed_payload_opens_only_at_its_destination() {
        let (a, b, c) = (key(1), key(2), key(3));
        let p = seal_directed(&a, MessageId([7; 16]), 5, b.peer_id(), [9; 32], b"hi").unwrap();
        assert!(verify(&p));
        assert_eq!(open_directed(&b, &p).unwrap(), Bytes::from_static(b"hi"));
        assert_eq!(open_directed(&c, &p), Err(CryptoError::Undecryptable));
        assert!(
            !p.payload.windows(2).any(|w| w == b"hi"),
            "plaintext visible"
        );
    }

    #[test]
    fn any_change_to_a_signed_field_breaks_the_signature() {
        let a = key(1);
        let p = seal_broadcast(&a, MessageId([1; 16]), 7, Bytes::from_static(b"x")).unwrap();
        let mut q = p.clone();
        q.ttl = 1;
        q.hops = 6;
        assert!(verify(&q), "ttl and hops are not signed");
        let mut q = p.clone();
        q.payload = Bytes::from_static(b"y");
        assert!(!verify(&q));
        let mut q = p;
        q.id = MessageId([2; 16]);
        assert!(!verify(&q));
    }

    #[test]
    fn oversized_plaintexts_are_refused() {
        let a = key(1);
        let big = vec![0u8; MAX_DIRECTED_PLAINTEXT + 1];
        assert!(seal_directed(&a, MessageId([0; 16]), 1, key(2).peer_id(), [1; 32], &big).is_err());
    }
}
