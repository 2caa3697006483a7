//! A man in the middle on TCP: a proxy that forwards the handshake untouched, then flips one
//! byte of, or replays, a record. The receiver must refuse it with `ProtocolError::Decrypt`
//! and deliver nothing forged.

use std::net::SocketAddr;

use bitcraps_transport_core::{Bytes, Error, Keypair, ProtocolError, Transport, TransportAddress};
use bitcraps_transport_tcp::TcpTransport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to the dialer's first record after the handshake.
#[derive(Clone, Copy)]
enum Attack {
    /// Flip one ciphertext byte.
    Flip,
    /// Send the record twice.
    Replay,
}

/// Reads one length-prefixed frame (the handshake and records are all framed).
async fn frame(from: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    from.read_exact(&mut len).await.expect("frame length");
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    from.read_exact(&mut body).await.expect("frame body");
    [len.to_vec(), body].concat()
}

/// A proxy to `target` that relays the handshake frame by frame, then attacks the dialer's
/// first record.
async fn proxy(target: SocketAddr, attack: Attack) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut client, _) = listener.accept().await.unwrap();
        let mut server = TcpStream::connect(target).await.unwrap();
        // msg1 ->, <- msg2, msg3 ->, <- ACCEPT
        for to_server in [true, false, true, false] {
            let (from, to) = if to_server {
                (&mut client, &mut server)
            } else {
                (&mut server, &mut client)
            };
            let f = frame(from).await;
            to.write_all(&f).await.unwrap();
        }
        let mut record = frame(&mut client).await;
        match attack {
            Attack::Flip => {
                let i = record.len() - 20;
                record[i] ^= 0x01;
                server.write_all(&record).await.unwrap();
            }
            Attack::Replay => {
                server.write_all(&record).await.unwrap();
                server.write_all(&record).await.unwrap();
            }
        }
        // Keep both sockets open until the test ends.
        let mut sink = Vec::new();
        let _ = client.read_to_end(&mut sink).await;
    });
    addr
}

async fn attacked(attack: Attack) -> (Option<Bytes>, Result<Option<Bytes>, Error>) {
    let server = TcpTransport::new(Keypair::generate());
    let mut listener = server
        .listen(&"tcp://127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let TransportAddress::Tcp(target) = listener.local_addr().clone() else {
        unreachable!()
    };
    let via = proxy(target, attack).await;
    let client = TcpTransport::new(Keypair::generate());
    let via = TransportAddress::Tcp(via);
    let (dialed, accepted) = tokio::join!(
        client.dial(&via, Some(server.local_peer_id())),
        listener.accept_connection()
    );
    let dialed = dialed.expect("the handshake passes through the proxy untouched");
    let mut accepted = accepted.unwrap();
    dialed
        .send(Bytes::from_static(b"bet 5 on 7"))
        .await
        .unwrap();
    let first = match attack {
        Attack::Flip => None,
        Attack::Replay => accepted.recv().await.unwrap(),
    };
    let next = accepted.recv().await;
    (first, next)
}

#[tokio::test]
async fn a_flipped_record_byte_is_refused() {
    let (_, next) = attacked(Attack::Flip).await;
    assert!(
        matches!(next, Err(Error::Protocol(ProtocolError::Decrypt))),
        "{next:?}"
    );
}

#[tokio::test]
async fn a_replayed_record_is_refused_after_the_original() {
    let (first, next) = attacked(Attack::Replay).await;
    assert_eq!(first.as_deref(), Some(&b"bet 5 on 7"[..]));
    assert!(
        matches!(next, Err(Error::Protocol(ProtocolError::Decrypt))),
        "the replay must not be delivered: {next:?}"
    );
}
