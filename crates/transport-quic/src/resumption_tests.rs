//! Session resumption end to end: a dial that expects a peer it reached before resumes (no
//! certificate, no signature, both ends still know each other); a dial that expects nobody
//! makes a full handshake; a ticket never lets another listener pass for its peer.

use bitcraps_transport_core::{
    ConnectionLimits, Error, Keypair, Listener, SharedLimiter, Transport, TransportAddress,
};

use crate::{QuicConfig, QuicTransport};

const GUARD: std::time::Duration = std::time::Duration::from_secs(20);

fn transport() -> QuicTransport {
    let config = QuicConfig {
        limits: ConnectionLimits::unlimited(),
        ..QuicConfig::default()
    };
    QuicTransport::with_limiter(Keypair::generate(), config, SharedLimiter::unlimited()).unwrap()
}

async fn listen(server: &QuicTransport) -> (Box<dyn Listener>, TransportAddress) {
    let listener = server
        .listen(&"quic://127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().clone();
    (listener, addr)
}

/// Dials `addr` expecting `expect`, accepts on `listener`, checks both ends' identities and
/// closes; returns how many full handshakes the client has made so far.
async fn connect(
    client: &QuicTransport,
    server: &QuicTransport,
    listener: &mut Box<dyn Listener>,
    addr: &TransportAddress,
    expect: Option<bitcraps_transport_core::PeerId>,
) -> u64 {
    let (dialed, accepted) = tokio::time::timeout(GUARD, async {
        tokio::join!(client.dial(addr, expect), listener.accept_connection())
    })
    .await
    .expect("dial hung");
    let (dialed, accepted) = (dialed.unwrap(), accepted.unwrap());
    assert_eq!(dialed.remote_peer(), server.local_peer_id());
    assert_eq!(accepted.remote_peer(), client.local_peer_id());
    // A message each way: the session works whichever handshake made it.
    dialed.send("bet".into()).await.unwrap();
    let mut accepted = accepted;
    assert_eq!(accepted.recv().await.unwrap().as_deref(), Some(&b"bet"[..]));
    dialed.close("done").await.unwrap();
    client.full_handshakes()
}

#[tokio::test]
async fn a_dial_to_a_known_peer_resumes_and_both_ends_still_know_each_other() {
    let (server, client) = (transport(), transport());
    let (mut listener, addr) = listen(&server).await;
    let peer = Some(server.local_peer_id());
    assert_eq!(
        connect(&client, &server, &mut listener, &addr, peer).await,
        1
    );
    // Each connection brings a new ticket, each ticket is used once: every later dial resumes.
    for _ in 0..3 {
        assert_eq!(
            connect(&client, &server, &mut listener, &addr, peer).await,
            1
        );
    }
}

#[tokio::test]
async fn a_dial_expecting_nobody_makes_a_full_handshake_and_files_its_ticket() {
    let (server, client) = (transport(), transport());
    let (mut listener, addr) = listen(&server).await;
    assert_eq!(
        connect(&client, &server, &mut listener, &addr, None).await,
        1
    );
    assert_eq!(
        connect(&client, &server, &mut listener, &addr, None).await,
        2
    );
    // The ticket of the second dial is filed under the peer it proved.
    let peer = Some(server.local_peer_id());
    assert_eq!(
        connect(&client, &server, &mut listener, &addr, peer).await,
        2
    );
}

#[tokio::test]
async fn a_ticket_never_lets_another_listener_pass_for_its_peer() {
    let (server, other, client) = (transport(), transport(), transport());
    let (mut listener, addr) = listen(&server).await;
    let peer = server.local_peer_id();
    assert_eq!(
        connect(&client, &server, &mut listener, &addr, Some(peer)).await,
        1
    );
    // The client offers `server`'s ticket to `other`, which cannot open it: a full handshake
    // proves `other`, and the dial fails with the mismatch.
    let (mut other_listener, other_addr) = listen(&other).await;
    let (dialed, _) = tokio::time::timeout(GUARD, async {
        tokio::join!(
            client.dial(&other_addr, Some(peer)),
            tokio::time::timeout(std::time::Duration::from_secs(2), other_listener.accept())
        )
    })
    .await
    .expect("dial hung");
    match dialed {
        Err(Error::PeerMismatch { expected, actual }) => {
            assert_eq!((expected, actual), (peer, other.local_peer_id()));
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    assert_eq!(client.full_handshakes(), 2);
    // The ticket it offered was used up; the real peer is still reached (fully, or with a
    // ticket left from before).
    assert!(connect(&client, &server, &mut listener, &addr, Some(peer)).await <= 3);
}
