//! The identity test vectors of protocol.md section 1 (the `identity-test-vectors` block),
//! checked against [`PeerId::from_bytes`] and [`PeerId::verify`].

use std::collections::HashMap;

use ed25519_dalek::VerifyingKey;

use crate::{Keypair, PeerId};

/// The `name = hex` lines of the `identity-test-vectors` block of docs/protocol.md.
fn vectors() -> HashMap<String, Vec<u8>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md");
    let text = std::fs::read_to_string(path).expect("docs/protocol.md exists");
    let block = text
        .split("```identity-test-vectors\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("protocol.md has an identity-test-vectors block");
    block
        .lines()
        .filter_map(|line| line.split_once(" = "))
        .map(|(name, value)| {
            (
                name.trim().to_owned(),
                hex::decode(value.trim()).expect("hex"),
            )
        })
        .collect()
}

fn key(v: &HashMap<String, Vec<u8>>, name: &str) -> [u8; 32] {
    v[name].as_slice().try_into().expect("32 bytes")
}

#[test]
fn peer_id_validity_follows_the_document() {
    let v = vectors();
    assert!(PeerId::from_bytes(key(&v, "identity.valid")).is_ok());
    for name in [
        "identity.not_on_curve",
        "identity.small_order",
        "identity.order_two",
        "identity.non_canonical",
    ] {
        assert!(
            PeerId::from_bytes(key(&v, name)).is_err(),
            "{name} must be refused"
        );
    }
    // The non-canonical encoding names a good point: only the encoding rule refuses it.
    let canonical = key(&v, "identity.non_canonical_reduced");
    assert!(PeerId::from_bytes(canonical).is_ok());
    let lax = VerifyingKey::from_bytes(&key(&v, "identity.non_canonical")).expect("decodes");
    assert_eq!(lax.to_bytes(), key(&v, "identity.non_canonical"));
}

#[test]
fn signature_validity_follows_the_document() {
    let v = vectors();
    let seed: [u8; 32] = key(&v, "signature.seed");
    let keypair = Keypair::from_secret_bytes(seed);
    assert_eq!(keypair.peer_id().as_bytes(), &key(&v, "identity.valid"));
    let message = &v["signature.message"];
    let good: [u8; 64] = v["signature.valid"]
        .as_slice()
        .try_into()
        .expect("64 bytes");
    assert_eq!(
        keypair.sign(message),
        good,
        "Ed25519 signatures are deterministic"
    );
    assert!(keypair.peer_id().verify(message, &good));
    let high_s: [u8; 64] = v["signature.s_not_reduced"]
        .as_slice()
        .try_into()
        .expect("64 bytes");
    assert_eq!(high_s[..32], good[..32], "same R");
    assert!(!keypair.peer_id().verify(message, &high_s));
    let mut tampered = good;
    tampered[0] ^= 1;
    assert!(!keypair.peer_id().verify(message, &tampered));
}
