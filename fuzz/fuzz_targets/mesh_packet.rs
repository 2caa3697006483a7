//! The mesh packet decoder (`bitcraps_mesh::wire`) and the engine's inbound path on hostile
//! bytes. Invariants: decoding never panics; an accepted packet re-encodes to exactly the input
//! (the format has one encoding); its length is within MAX_PACKET and its payload within
//! MAX_PAYLOAD; a neighbour list parses to at most MAX_NEIGHBOURS keys; an engine fed the bytes
//! never delivers or relays them unless the signature verifies, and stays within its caps.
#![no_main]

use std::time::{Duration, Instant};

use bitcraps_mesh::wire::{parse_neighbours, Packet, MAX_NEIGHBOURS, MAX_PACKET, MAX_PAYLOAD};
use bitcraps_mesh::{crypto, Action, Destination, Keypair, LinkId, Mesh, MeshConfig};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    let decoded = Packet::decode(&bytes);
    if let Ok(packet) = &decoded {
        assert_eq!(packet.encode(), bytes, "decode -> encode is the identity");
        assert_eq!(packet.encoded_len(), data.len());
        assert!(data.len() <= MAX_PACKET && packet.payload.len() <= MAX_PAYLOAD);
        if packet.destination == Destination::Neighbours {
            if let Ok(list) = parse_neighbours(&packet.payload) {
                assert!(list.len() <= MAX_NEIGHBOURS);
            }
        }
    }
    let t0 = Instant::now();
    let config = MeshConfig::default();
    let Ok(mut mesh) = Mesh::new(Keypair::from_secret_bytes([7; 32]), config.clone(), [1; 32]) else {
        return;
    };
    let peer = Keypair::from_secret_bytes([8; 32]).peer_id();
    mesh.link_up(LinkId(1), peer, t0);
    mesh.link_up(LinkId(2), Keypair::from_secret_bytes([9; 32]).peer_id(), t0);
    // Our own neighbour list goes out 50 ms after the links came up: let it go first.
    mesh.handle_timeout(t0 + Duration::from_secs(1));
    while mesh.poll_action().is_some() {}
    let t1 = t0 + Duration::from_secs(1);
    let result = mesh.handle_packet(LinkId(1), bytes, t1);
    mesh.handle_timeout(t1 + Duration::from_secs(5));
    let valid = decoded.as_ref().is_ok_and(crypto::verify);
    while let Some(action) = mesh.poll_action() {
        assert!(valid, "acted on an unverified packet: {action:?} ({result:?})");
        if let Action::Transmit { link, .. } = action {
            assert_ne!(link, LinkId(1), "relayed back out of its arrival link");
        }
    }
    let m = mesh.memory();
    assert!(m.dedup_entries <= 1 && m.pending_relays <= 1 && m.stored_packets <= 1);
});
