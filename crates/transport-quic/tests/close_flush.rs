//! A dialer that closes and then stops at once (its runtime dropped, as when
//! `bitcraps-node send` exits) must still have sent its CONNECTION_CLOSE: the listener sees a
//! remote close with the dialer's reason, every time, never a lost link or a timeout.
//!
//! Each round runs the dialer on its own two-worker runtime (as the node's), which is dropped the moment
//! `close` returns; quinn's connection and endpoint drivers die with it. Without the flush in
//! the driver, the close packet is often never handed to the socket (most rounds fail).

use std::time::Duration;

use bitcraps_transport_core::{
    ChannelConfig, CloseReason, Keypair, Listener, SharedLimiter, Transport, TransportAddress,
};
use bitcraps_transport_quic::QuicTransport;

mod common;
use common::*;

const ROUNDS: usize = 100;

/// Dials `addr`, sends one message, closes with `reason`, and drops its runtime immediately.
fn dial_send_close_exit(
    addr: TransportAddress,
    expect: bitcraps_transport_core::PeerId,
    reason: String,
) {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let client = QuicTransport::with_limiter(
                Keypair::generate(),
                config(ChannelConfig::default()),
                SharedLimiter::unlimited(),
            )
            .unwrap();
            let conn = client.dial(&addr, Some(expect)).await.expect("dial");
            conn.send("hi".into()).await.expect("send");
            conn.close(&reason).await.expect("close");
        });
        // Like a process exit: every task of this runtime (quinn's drivers included) stops.
        drop(rt);
    })
    .join()
    .expect("dialer thread");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_short_lived_dialer_closes_with_its_reason() {
    let channel = ChannelConfig {
        // A missing close costs this long before the listener gives up (and the test fails).
        close_timeout: Duration::from_secs(2),
        ..ChannelConfig::default()
    };
    let server = transport_with(channel, SharedLimiter::unlimited());
    let mut listener: Box<dyn Listener> = server.listen(&loopback()).await.unwrap();
    let addr = listener.local_addr().clone();
    let mut failures = Vec::new();
    for round in 0..ROUNDS {
        let reason = format!("bye {round}");
        let (addr, expect, why) = (addr.clone(), server.local_peer_id(), reason.clone());
        let dialer = tokio::task::spawn_blocking(move || dial_send_close_exit(addr, expect, why));
        let mut accepted = guard("accept", listener.accept_connection()).await.unwrap();
        dialer.await.unwrap();
        let first = guard("recv", accepted.recv()).await;
        assert_eq!(first.unwrap().as_deref(), Some(&b"hi"[..]), "round {round}");
        let end = guard("end", accepted.recv()).await;
        // The reason is final once the connection has fully ended.
        guard("finished", accepted.sender().closed()).await;
        match (end, accepted.close_reason()) {
            (Ok(None), Some(CloseReason::Remote(r))) if r == reason => {}
            other => failures.push(format!("round {round}: {other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ROUNDS} dialers exited without their CONNECTION_CLOSE reaching the listener: {failures:#?}",
        failures.len()
    );
}
