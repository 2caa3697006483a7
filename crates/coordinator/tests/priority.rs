//! Interactive messages overtake bulk ones queued to the same peer.

mod common;

use bitcraps_coordinator::envelope::{Envelope, Envelopes, FrameBuilder, Hello, LaneState};
use bitcraps_coordinator::Priority;
use bitcraps_transport_core::{Bytes, Keypair, Transport, TransportAddress};
use bitcraps_transport_mem::{MemoryNetwork, MemoryTransport};
use common::*;

/// The receiver is a raw connection that does not read at first, so the sender's writer is
/// blocked with 400 bulk messages queued; then one interactive message is queued. Once the
/// receiver reads, the interactive message arrives before the remaining bulk ones.
#[tokio::test(start_paused = true)]
async fn interactive_overtakes_queued_bulk() {
    let net = MemoryNetwork::new();
    let (s, _es, _, _) = mem_node(&net, config()).await;
    let receiver = MemoryTransport::new(&net, Keypair::generate());
    let mut listener = receiver.listen(&TransportAddress::Memory(0)).await.unwrap();
    let addr = listener.local_addr().clone();
    let pr = receiver.local_peer_id();
    s.connect_to_peer(pr, vec![addr]).await.unwrap();
    let mut conn = listener.accept_connection().await.unwrap();
    // The raw receiver grants a window large enough for everything.
    let mut f = FrameBuilder::new(bytes::BytesMut::new(), 1024);
    f.hello(&Hello {
        flags: 0,
        session: 5,
        window_messages: 4096,
        window_bytes: 64 << 20,
        your_session: 0,
        lanes: [LaneState::default(); 2],
    });
    conn.send(f.finish().0).await.unwrap();

    const BULK: u32 = 400;
    let mut bulk = vec![0u8; 16 * 1024];
    for i in 0..BULK {
        bulk[..4].copy_from_slice(&i.to_be_bytes());
        s.send_to_peer(pr, Bytes::copy_from_slice(&bulk), Priority::Bulk)
            .await
            .unwrap();
    }
    s.send_to_peer(pr, Bytes::from_static(b"BET!"), Priority::Interactive)
        .await
        .unwrap();

    let mut order = Vec::new();
    let mut payload_next = false;
    while order.len() < BULK as usize + 1 {
        let frame = conn.recv().await.unwrap().unwrap();
        if std::mem::take(&mut payload_next) {
            order.push(frame);
            continue;
        }
        for env in Envelopes::new(frame) {
            match env.unwrap() {
                Envelope::Data { payload, .. } => order.push(payload),
                Envelope::DataNext { .. } => payload_next = true,
                _ => {}
            }
        }
    }
    let pos = order.iter().position(|p| &p[..] == b"BET!").unwrap();
    // Bulk order is kept; what was already handed to the connection (its queue, the
    // driver's batch, the pipe and the receiver's queue: about 200 messages) cannot be
    // overtaken, everything else is.
    let bulk_order: Vec<u32> = order
        .iter()
        .filter(|p| p.len() > 4)
        .map(|p| num(p))
        .collect();
    assert_eq!(bulk_order, (0..BULK).collect::<Vec<_>>());
    assert!(pos < 300, "interactive message delivered at position {pos}");
    println!(
        "interactive message delivered at position {pos} of {}",
        BULK + 1
    );
}
