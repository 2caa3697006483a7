//! Through the BlueZ emulator with latency on every connect and ATT packet (its own binary:
//! the emulator's latency is global): the handshake, order and both directions hold.
//! Skipped, with a message, where the emulator cannot start.

#![cfg(target_os = "linux")]

mod bluez_support;

use std::time::Duration;

use bluez_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_and_both_directions_hold_under_latency() {
    let Some(emu) = emulator() else { return };
    emu.set_latency(Duration::from_millis(15)).expect("latency");
    let (c, p) = (lease(&emu), lease(&emu));
    let (server, mut listener, target) = listening(&p).await;
    let client = dialer(&c, &target).await;
    let (mut conn, mut accepted) = connect(&client, &server, &mut listener, &target).await;
    for i in 0..50u32 {
        conn.send(i.to_be_bytes().to_vec().into())
            .await
            .expect("send");
    }
    accepted
        .send(vec![9u8; 3000].into())
        .await
        .expect("send back");
    for i in 0..50u32 {
        let got = tokio::time::timeout(GUARD, accepted.recv())
            .await
            .expect("in time")
            .expect("recv")
            .expect("a message");
        assert_eq!(got, i.to_be_bytes().to_vec(), "message {i} out of order");
    }
    let back = tokio::time::timeout(GUARD, conn.recv())
        .await
        .expect("in time")
        .expect("recv")
        .expect("a message");
    assert_eq!(back, vec![9u8; 3000]);
}
