//! End to end through the real Linux stack without a radio: our btleplug central and our
//! bluer peripheral, each on its own adapter of the BlueZ emulator (`bluez-emu/` (in this crate)),
//! speaking real D-Bus to it. Skipped, with a message, where the emulator cannot start.

#![cfg(target_os = "linux")]

mod bluez_support;

use bitcraps_transport_ble::link::BleAdapter;
use bitcraps_transport_ble::{link_error, uuids, LinkDownReason, LinkError};
use bluez_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticated_messages_both_ways() {
    let Some(emu) = emulator() else { return };
    let (c, p) = (lease(&emu), lease(&emu));
    let (server, mut listener, target) = listening(&p).await;
    let client = dialer(&c, &target).await;
    let (conn, mut accepted) = connect(&client, &server, &mut listener, &target).await;
    let big = vec![0xa5u8; 5000];
    conn.send(big.clone().into()).await.expect("send");
    assert_eq!(
        accepted.recv().await.expect("recv").as_deref(),
        Some(&big[..])
    );
    accepted.send("pong".into()).await.expect("send back");
    let mut conn = conn;
    assert_eq!(
        conn.recv().await.expect("recv back").as_deref(),
        Some(&b"pong"[..])
    );
    // The traffic went through BlueZ's socket hand-over, and both ends use the MTU BlueZ
    // negotiated (247, the emulator's default here), not the central's fallback of 23.
    let stats = emu.stats().expect("stats");
    assert!(
        stats.get("acquire_write").copied().unwrap_or(0) >= 1,
        "{stats:?}"
    );
    assert!(
        stats.get("acquire_notify").copied().unwrap_or(0) >= 1,
        "{stats:?}"
    );
    assert_eq!(client.link_stats()[0].mtu, 247);
    assert_eq!(server.link_stats()[0].mtu, 247);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mtu_bluez_reports_sizes_the_fragments() {
    let Some(emu) = emulator() else { return };
    let (c, p) = (lease(&emu), lease(&emu));
    emu.set_mtu(&c, &p, 100).expect("set mtu");
    let (server, mut listener, target) = listening(&p).await;
    let client = dialer(&c, &target).await;
    let (conn, mut accepted) = connect(&client, &server, &mut listener, &target).await;
    let before = client.link_stats()[0].traffic.fragments_out;
    let message = vec![7u8; 4000];
    conn.send(message.clone().into()).await.expect("send");
    assert_eq!(
        accepted.recv().await.expect("recv").as_deref(),
        Some(&message[..])
    );
    let central = &client.link_stats()[0];
    let peripheral = &server.link_stats()[0];
    assert_eq!((central.mtu, peripheral.mtu), (100, 100));
    // Noise adds 16 bytes a record and the fragment header its own: more than 4000 / 97
    // fragments, and far fewer than at the 23-byte fallback (4000 / 20 = 200).
    let fragments = central.traffic.fragments_out - before;
    assert!((42..120).contains(&fragments), "{fragments} fragments");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_reports_the_advertised_name_and_signal() {
    let Some(emu) = emulator() else { return };
    let (c, p) = (lease(&emu), lease(&emu));
    let (_server, _listener, target) = listening(&p).await;
    let central = central(&c).await;
    let mut scan = central.scan(uuids::SERVICE).await.expect("scan");
    let found = tokio::time::timeout(GUARD, async {
        loop {
            let found = scan.next_device().await.expect("scan runs");
            if found.id == target {
                return found;
            }
        }
    })
    .await
    .expect("discovered");
    assert_eq!(found.name.as_deref(), Some("bitcraps"));
    assert!(found.rssi.is_some_and(|rssi| rssi < 0), "{found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_lost_mid_message_is_a_typed_error_and_reconnect_works() {
    let Some(emu) = emulator() else { return };
    let (c, p) = (lease(&emu), lease(&emu));
    let (server, mut listener, target) = listening(&p).await;
    let client = dialer(&c, &target).await;
    let (conn, mut accepted) = connect(&client, &server, &mut listener, &target).await;
    // 20 kB is about 90 writes at MTU 247: the link goes after 10 of them.
    emu.drop_after(&c, &p, 10).expect("drop after");
    let _ = conn.send(vec![1u8; 20_000].into()).await;
    let err = tokio::time::timeout(GUARD, accepted.recv())
        .await
        .expect("the receiver learns in time")
        .expect_err("a cut message is an error, not a message or a clean end");
    assert!(
        matches!(
            link_error(&err),
            Some(LinkError::LinkDown(
                LinkDownReason::ConnectionLost | LinkDownReason::RemoteClose
            ))
        ),
        "{err:?}"
    );
    let mut conn = conn;
    let err = tokio::time::timeout(GUARD, conn.recv())
        .await
        .expect("the sender learns in time")
        .expect_err("the dialer's side is an error too");
    assert!(link_error(&err).is_some(), "{err:?}");
    // The device is still known: a new dial reaches the same listener.
    let (conn, mut accepted) = connect(&client, &server, &mut listener, &target).await;
    conn.send("again".into()).await.expect("send");
    assert_eq!(
        accepted.recv().await.expect("recv").as_deref(),
        Some(&b"again"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_a_typed_error() {
    let Some(emu) = emulator() else { return };
    let (c, p) = (lease(&emu), lease(&emu));
    let (_server, _listener, target) = listening(&p).await;
    let central = central(&c).await;
    discover(&central, &target).await;
    emu.set_refuse(&p, true).expect("refuse");
    let refused = central.connect(&target, GUARD).await;
    assert!(matches!(refused, Err(LinkError::Stack(_))), "{refused:?}");
    emu.set_refuse(&p, false).expect("accept again");
    let link = central.connect(&target, GUARD).await.expect("connect");
    assert_eq!(link.mtu(), 247);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dial_to_an_unseen_device_works_while_the_app_scans() {
    let Some(emu) = emulator() else { return };
    let (c, p) = (lease(&emu), lease(&emu));
    let central = central(&c).await;
    // The application scans for something else meanwhile (BlueZ allows one discovery
    // session per client: the dial must not need a second one).
    let _scan = central.scan(uuid::Uuid::from_u128(7)).await.expect("scan");
    let (_server, _listener, target) = listening(&p).await;
    let link = central
        .connect(&target, GUARD)
        .await
        .expect("connect while scanning");
    assert_eq!(link.mtu(), 247);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_can_start_again_after_one_is_dropped() {
    let Some(emu) = emulator() else { return };
    let (c, p) = (lease(&emu), lease(&emu));
    let (_server, _listener, target) = listening(&p).await;
    let central = central(&c).await;
    for round in 0..3 {
        // `discover` scans until it sees the target, then drops the scan.
        tokio::time::timeout(GUARD, discover(&central, &target))
            .await
            .unwrap_or_else(|_| panic!("scan round {round}"));
        // BlueZ refuses a second StartDiscovery of one client: the last scan must be
        // stopped before the next one starts, so wait until the adapter stops discovering.
        tokio::time::timeout(GUARD, async {
            while emu.discovering(&c).expect("state") {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the dropped scan stops");
    }
}
