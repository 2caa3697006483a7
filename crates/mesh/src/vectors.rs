//! The mesh test vectors of `docs/protocol.md` (section 10): computed here from fixed keys and
//! compared with the document, so a change to the wire format cannot go unnoticed.

use bytes::Bytes;

use bitcraps_transport_core::Keypair;

use crate::crypto::{open_directed, seal_broadcast, seal_directed, seal_neighbours, verify};
use crate::wire::{parse_neighbours, with_relay_fields, MessageId, Packet, FLAG_STORED};

fn compute() -> Vec<(String, String)> {
    let origin = Keypair::from_secret_bytes([0x01; 32]);
    let dest = Keypair::from_secret_bytes([0x02; 32]);
    let mut v = Vec::new();
    v.push((
        "mesh.origin_peer_id".to_string(),
        origin.peer_id().to_string(),
    ));
    v.push((
        "mesh.destination_peer_id".to_string(),
        dest.peer_id().to_string(),
    ));

    let b = seal_broadcast(
        &origin,
        MessageId([0x11; 16]),
        7,
        Bytes::from_static(b"roll 3 4"),
    )
    .unwrap();
    assert!(verify(&b));
    let encoded = b.encode();
    assert_eq!(Packet::decode(&encoded).unwrap(), b);
    v.push((
        "mesh.broadcast_signed_bytes".into(),
        hex::encode(b.signed_bytes()),
    ));
    v.push(("mesh.broadcast".into(), hex::encode(&encoded)));
    v.push((
        "mesh.broadcast_relayed".into(),
        hex::encode(with_relay_fields(&encoded, 6, 1, 0)),
    ));

    let plain = b"pay 10 to seat 2";
    let d = seal_directed(
        &origin,
        MessageId([0x22; 16]),
        7,
        dest.peer_id(),
        [0x33; 32],
        plain,
    )
    .unwrap();
    assert!(verify(&d));
    assert_eq!(open_directed(&dest, &d).unwrap(), Bytes::from_static(plain));
    let encoded = d.encode();
    assert_eq!(Packet::decode(&encoded).unwrap(), d);
    v.push(("mesh.directed_plaintext".into(), hex::encode(plain)));
    v.push(("mesh.directed".into(), hex::encode(&encoded)));
    v.push((
        "mesh.directed_stored".into(),
        hex::encode(with_relay_fields(&encoded, 4, 3, FLAG_STORED)),
    ));
    let peers = [
        dest.peer_id(),
        Keypair::from_secret_bytes([0x03; 32]).peer_id(),
    ];
    let n = seal_neighbours(&origin, MessageId([0x44; 16]), &peers);
    assert!(verify(&n));
    let encoded = n.encode();
    assert_eq!(
        parse_neighbours(&Packet::decode(&encoded).unwrap().payload).unwrap(),
        peers
    );
    v.push(("mesh.neighbours".into(), hex::encode(&encoded)));
    let framed = crate::frame::encode(1_700_000_000_000, b"roll 3 4");
    assert_eq!(
        crate::frame::decode(&framed, 1_700_000_000_000, std::time::Duration::ZERO).unwrap(),
        "roll 3 4"
    );
    v.push(("mesh.frame".into(), hex::encode(&framed)));
    v
}

/// Reads `name = hex` lines from the ```mesh-test-vectors blocks of docs/protocol.md.
fn documented() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md");
    let text = std::fs::read_to_string(path).expect("docs/protocol.md exists");
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```mesh-test-vectors") {
            inside = true;
        } else if trimmed.starts_with("```") {
            inside = false;
        } else if inside {
            if let Some((k, v)) = trimmed.split_once(" = ") {
                out.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
    }
    out
}

#[test]
fn mesh_protocol_document_vectors_match_the_code() {
    let computed = compute();
    if std::env::var_os("BITCRAPS_PRINT_VECTORS").is_some() {
        for (k, v) in &computed {
            println!("{k} = {v}");
        }
    }
    let documented = documented();
    for (name, value) in &computed {
        let doc = documented.iter().find(|(k, _)| k == name);
        assert_eq!(
            doc.map(|(_, v)| v),
            Some(value),
            "vector `{name}` in docs/protocol.md"
        );
    }
    assert_eq!(
        documented.len(),
        computed.len(),
        "no stale mesh vectors in the document"
    );
}
