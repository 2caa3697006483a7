//! Link caps through the BlueZ emulator: a central refuses its 8th link itself, and a
//! peripheral serves seven centrals at once and disconnects the eighth. Skipped, with a
//! message, where the emulator cannot start.

#![cfg(target_os = "linux")]

mod bluez_support;

use std::collections::BTreeSet;

use bitcraps_transport_ble::link::BleAdapter;
use bitcraps_transport_ble::{uuids, LinkError};
use bitcraps_transport_core::{Error, Transport, TransportAddress};
use bluez_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_central_refuses_its_eighth_link() {
    let Some(emu) = emulator() else { return };
    let c = lease(&emu);
    let mut servers = Vec::new();
    let mut targets = BTreeSet::new();
    for _ in 0..8 {
        let (server, listener, target) = listening(&lease(&emu)).await;
        targets.insert(target.clone());
        servers.push((server, listener));
    }
    let central = central(&c).await;
    let mut scan = central.scan(uuids::SERVICE).await.expect("scan");
    let mut seen = BTreeSet::new();
    tokio::time::timeout(GUARD, async {
        while seen.len() < targets.len() {
            let found = scan.next_device().await.expect("scan runs");
            if targets.contains(&found.id) {
                seen.insert(found.id);
            }
        }
    })
    .await
    .expect("all eight peripherals are discovered");
    drop(scan);
    let targets: Vec<_> = targets.into_iter().collect();
    let mut links = Vec::new();
    for target in &targets[..7] {
        links.push(
            central
                .connect(target, GUARD)
                .await
                .expect("one of seven links"),
        );
    }
    let refused = central.connect(&targets[7], GUARD).await;
    assert!(
        matches!(refused, Err(LinkError::LinkCapReached { limit: 7, .. })),
        "{refused:?}"
    );
    // A link going down frees its place.
    links.pop().expect("a link").abort();
    let link = tokio::time::timeout(GUARD, async {
        loop {
            match central.connect(&targets[7], GUARD).await {
                Ok(link) => return link,
                Err(LinkError::LinkCapReached { .. }) => tokio::task::yield_now().await,
                Err(other) => panic!("{other:?}"),
            }
        }
    })
    .await
    .expect("the freed place is usable");
    assert_eq!(link.mtu(), 247);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peripheral_serves_seven_centrals_and_disconnects_the_eighth() {
    let Some(emu) = emulator() else { return };
    let (server, mut listener, target) = listening(&lease(&emu)).await;
    let mut pairs = Vec::new();
    for i in 0..7u8 {
        let client = dialer(&lease(&emu), &target).await;
        let (conn, mut accepted) = connect(&client, &server, &mut listener, &target).await;
        conn.send(vec![i; 600].into()).await.expect("send");
        assert_eq!(
            accepted.recv().await.expect("recv").as_deref(),
            Some(&[i; 600][..])
        );
        pairs.push((client, conn, accepted));
    }
    assert_eq!(server.link_stats().len(), 7);
    let eighth = dialer(&lease(&emu), &target).await;
    let addr = TransportAddress::Bluetooth(target.to_string());
    let refused = eighth.dial(&addr, None).await;
    let err = refused.expect_err("the eighth central is refused");
    assert!(
        !matches!(err, Error::Timeout { .. }),
        "refused at once, not timed out: {err:?}"
    );
    // The seven are untouched: each one still talks both ways.
    for (i, (_client, conn, accepted)) in pairs.iter_mut().enumerate() {
        accepted
            .send(vec![i as u8; 300].into())
            .await
            .expect("send back");
        assert_eq!(
            conn.recv().await.expect("recv").as_deref(),
            Some(&[i as u8; 300][..])
        );
    }
}
