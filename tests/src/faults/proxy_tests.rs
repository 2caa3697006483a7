//! The proxies do what the profile says: they prove their own teeth, so a fault run that
//! passes is not a run where nothing was injected.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::tcp::TcpProxy;
use super::udp::UdpProxy;
use super::{Faults, NONE};

const GUARD: Duration = Duration::from_secs(20);

/// Sends `count` numbered datagrams of 100 bytes through a proxy with `faults`, then one final
/// marker until it is seen; returns what arrived (marker excluded).
async fn through_udp(faults: Faults, count: u8) -> Vec<Vec<u8>> {
    let target = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let proxy = UdpProxy::start(target.local_addr().unwrap(), faults, 0)
        .await
        .unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.connect(proxy.addr()).await.unwrap();
    for i in 0..count {
        client.send(&[i; 100]).await.unwrap();
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 200];
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    tokio::time::timeout(GUARD, async {
        loop {
            tokio::select! {
                _ = tick.tick() => { client.send(&[255u8; 1]).await.unwrap(); }
                r = target.recv(&mut buf) => {
                    let n = r.unwrap();
                    if n == 1 && buf[0] == 255 { break; }
                    got.push(buf[..n].to_vec());
                }
            }
        }
    })
    .await
    .expect("udp proxy hung");
    got
}

#[tokio::test]
async fn the_udp_proxy_drops_duplicates_and_corrupts() {
    let clean = through_udp(NONE, 200).await;
    assert_eq!(clean.len(), 200);
    let lossy = through_udp(Faults { drop: 0.5, ..NONE }, 200).await;
    assert!(
        (50..150).contains(&lossy.len()),
        "{} of 200 after 50 % loss",
        lossy.len()
    );
    let doubled = through_udp(
        Faults {
            duplicate: 1.0,
            ..NONE
        },
        100,
    )
    .await;
    assert_eq!(doubled.len(), 200);
    let corrupt = through_udp(
        Faults {
            corrupt_one_in: 10,
            ..NONE
        },
        100,
    )
    .await;
    let damaged = corrupt
        .iter()
        .filter(|d| d.iter().any(|b| *b != d[0]) || d.len() != 100)
        .count();
    assert!(damaged > 50, "{damaged} of 100 damaged at 1 byte in 10");
    let shuffled = through_udp(
        Faults {
            reorder: 0.3,
            ..NONE
        },
        100,
    )
    .await;
    let in_order = shuffled.windows(2).all(|w| w[0][0] < w[1][0]);
    assert_eq!(shuffled.len(), 100);
    assert!(!in_order, "30 % reordering left everything in order");
}

#[tokio::test]
async fn the_tcp_proxy_cuts_after_exactly_n_bytes_and_corrupts() {
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = TcpProxy::start(target.local_addr().unwrap(), NONE, 1000)
        .await
        .unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    let (mut server, _) = target.accept().await.unwrap();
    client.write_all(&[7u8; 5000]).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(GUARD, server.read_to_end(&mut got))
        .await
        .expect("cut never came")
        .unwrap();
    assert_eq!(got.len(), 1000);
    let corrupting = TcpProxy::start(
        target.local_addr().unwrap(),
        Faults {
            corrupt_one_in: 100,
            ..NONE
        },
        0,
    )
    .await
    .unwrap();
    let mut client = TcpStream::connect(corrupting.addr()).await.unwrap();
    let (mut server, _) = target.accept().await.unwrap();
    client.write_all(&[7u8; 10_000]).await.unwrap();
    client.shutdown().await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(GUARD, server.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 10_000);
    let flipped = got.iter().filter(|b| **b != 7).count();
    assert!(
        (30..300).contains(&flipped),
        "{flipped} of 10,000 bytes flipped at 1 in 100"
    );
}
