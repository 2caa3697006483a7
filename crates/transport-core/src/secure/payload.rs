//! The identity payload each side sends inside the Noise handshake.
//!
//! ```text
//! offset  size  field
//! 0       1     version = 0x01
//! 1       32    Ed25519 public key (the PeerId)
//! 33      64    Ed25519 signature over SIGNATURE_DOMAIN || noise static public key (32 bytes)
//! ```
//!
//! Exactly 97 bytes: a fixed layout has no lengths to trust and nothing to allocate, which is why
//! we chose it over a serde encoding (see `docs/protocol.md`).

use crate::{HandshakeError, Keypair, PeerId};

/// Domain separation for the identity signature.
pub const SIGNATURE_DOMAIN: &[u8] = b"bitcraps-noise-static-key-v1:";
/// The identity payload's version byte.
pub const PAYLOAD_VERSION: u8 = 1;
/// The identity payload's exact length.
pub const IDENTITY_PAYLOAD_LEN: usize = 1 + 32 + 64;

fn signed_message(noise_static: &[u8; 32]) -> [u8; SIGNATURE_DOMAIN.len() + 32] {
    let mut msg = [0u8; SIGNATURE_DOMAIN.len() + 32];
    msg[..SIGNATURE_DOMAIN.len()].copy_from_slice(SIGNATURE_DOMAIN);
    msg[SIGNATURE_DOMAIN.len()..].copy_from_slice(noise_static);
    msg
}

/// Builds the payload that binds `noise_static` (an X25519 public key) to `keypair`'s identity.
pub fn encode_identity_payload(
    keypair: &Keypair,
    noise_static: &[u8; 32],
) -> [u8; IDENTITY_PAYLOAD_LEN] {
    let mut out = [0u8; IDENTITY_PAYLOAD_LEN];
    out[0] = PAYLOAD_VERSION;
    out[1..33].copy_from_slice(keypair.peer_id().as_bytes());
    out[33..].copy_from_slice(&keypair.sign(&signed_message(noise_static)));
    out
}

/// Parses a payload and checks its signature over the Noise static key the remote actually used.
/// Returns the proven [`PeerId`].
pub fn decode_identity_payload(
    payload: &[u8],
    noise_static: &[u8; 32],
) -> Result<PeerId, HandshakeError> {
    if payload.len() != IDENTITY_PAYLOAD_LEN {
        return Err(HandshakeError::BadPayload("wrong length"));
    }
    if payload[0] != PAYLOAD_VERSION {
        return Err(HandshakeError::BadPayload("unknown version"));
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&payload[1..33]);
    let peer = PeerId::from_bytes(key).map_err(|_| HandshakeError::BadPayload("invalid key"))?;
    let mut sig = [0u8; 64];
    sig.copy_from_slice(&payload[33..]);
    if !peer.verify(&signed_message(noise_static), &sig) {
        return Err(HandshakeError::BadSignature);
    }
    Ok(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_binds_the_static_key() {
        let key = Keypair::from_secret_bytes([9; 32]);
        let noise = [3u8; 32];
        let payload = encode_identity_payload(&key, &noise);
        assert_eq!(decode_identity_payload(&payload, &noise), Ok(key.peer_id()));
        assert_eq!(
            decode_identity_payload(&payload, &[4u8; 32]),
            Err(HandshakeError::BadSignature),
            "a payload replayed with another static key is refused"
        );
    }

    #[test]
    fn every_malformation_is_refused() {
        let key = Keypair::from_secret_bytes([9; 32]);
        let noise = [3u8; 32];
        let good = encode_identity_payload(&key, &noise);
        assert!(decode_identity_payload(&good[..96], &noise).is_err());
        assert!(decode_identity_payload(&[good.as_slice(), &[0]].concat(), &noise).is_err());
        let mut v = good;
        v[0] = 2;
        assert_eq!(
            decode_identity_payload(&v, &noise),
            Err(HandshakeError::BadPayload("unknown version"))
        );
        for i in 1..IDENTITY_PAYLOAD_LEN {
            let mut t = good;
            t[i] ^= 0x40;
            assert!(decode_identity_payload(&t, &noise).is_err(), "flip at {i}");
        }
    }
}
