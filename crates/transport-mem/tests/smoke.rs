//! Smoke tests of the memory backend (the conformance suite covers the contract in depth).

use bitcraps_transport_core::{Bytes, CloseReason, Keypair, Transport, TransportAddress};
use bitcraps_transport_mem::{MemoryNetwork, MemoryTransport};

#[tokio::test]
async fn messages_flow_both_ways_and_close_is_seen() {
    let net = MemoryNetwork::new();
    let a = MemoryTransport::new(&net, Keypair::generate());
    let b = MemoryTransport::new(&net, Keypair::generate());
    let mut listener = b.listen(&TransportAddress::Memory(0)).await.unwrap();
    let addr = listener.local_addr().clone();
    let (dialed, accepted) = tokio::join!(
        a.dial(&addr, Some(b.local_peer_id())),
        listener.accept_connection()
    );
    let mut dialed = dialed.unwrap();
    let mut accepted = accepted.unwrap();
    assert_eq!(dialed.remote_peer(), b.local_peer_id());
    assert_eq!(accepted.remote_peer(), a.local_peer_id());
    dialed.send(Bytes::from_static(b"roll")).await.unwrap();
    assert_eq!(
        accepted.recv().await.unwrap().unwrap(),
        Bytes::from_static(b"roll")
    );
    let big = Bytes::from(vec![7u8; 200_000]);
    accepted.send(big.clone()).await.unwrap();
    assert_eq!(dialed.recv().await.unwrap().unwrap(), big);
    dialed.close("bye").await.unwrap();
    assert_eq!(accepted.recv().await.unwrap(), None);
    assert_eq!(
        accepted.close_reason(),
        Some(CloseReason::Remote("bye".into()))
    );
    assert_eq!(
        dialed.close_reason(),
        Some(CloseReason::Local("bye".into()))
    );
}
