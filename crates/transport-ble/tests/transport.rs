//! `BleTransport` on the simulated radio, Noise included: identity, max-size messages at the
//! smallest MTU, a link lost mid-message, hostile fragment streams, and link caps. All under
//! paused tokio time.

use std::sync::Arc;
use std::time::Duration;

use bitcraps_transport_ble::link::BleAdapter;
use bitcraps_transport_ble::sim::{SimConfig, SimDevice, SimDeviceConfig, SimRadio};
use bitcraps_transport_ble::{link_error, BleStream, BleTransport, LinkError};
use bitcraps_transport_core::{
    Bytes, Capabilities, Connection, Error, Inbound, Keypair, Listener, Transport,
    TransportAddress, TransportKind,
};
use tokio::io::AsyncReadExt;

const GUARD: Duration = Duration::from_secs(600);

fn ble(id: &str) -> TransportAddress {
    TransportAddress::Bluetooth(id.into())
}

fn transport(radio: &SimRadio, config: SimDeviceConfig) -> (BleTransport, Arc<SimDevice>) {
    let device = Arc::new(radio.add_device(config));
    let transport = BleTransport::new(device.clone(), Keypair::generate());
    (transport, device)
}

async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(GUARD, f).await.expect("hang guard")
}

/// A listening transport on its own device.
async fn server(radio: &SimRadio, mtu: u16) -> (BleTransport, Box<dyn Listener>, Arc<SimDevice>) {
    let (t, device) = transport(radio, SimDeviceConfig::with_mtu(mtu));
    let listener = t.listen(&ble("local")).await.expect("listen");
    assert_eq!(listener.local_addr(), &ble(device.id().as_str()));
    (t, listener, device)
}

async fn connect(
    dialer: &BleTransport,
    server: &BleTransport,
    listener: &mut Box<dyn Listener>,
) -> (Connection, Connection) {
    let addr = listener.local_addr().clone();
    let (dialed, accepted) = within(async {
        tokio::join!(
            dialer.dial(&addr, Some(server.local_peer_id())),
            listener.accept_connection()
        )
    })
    .await;
    (dialed.expect("dial"), accepted.expect("accept"))
}

fn numbered(seed: u8, len: usize) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

#[tokio::test(start_paused = true)]
async fn identity_kind_and_addresses() {
    let radio = SimRadio::new(SimConfig::default());
    let (srv, mut listener, srv_dev) = server(&radio, 247).await;
    let (cli, cli_dev) = transport(&radio, SimDeviceConfig::default());
    assert_eq!(cli.kind(), TransportKind::Ble);
    assert!(cli.supports(&ble("sim:9")));
    assert!(!cli.supports(&TransportAddress::Memory(1)));
    assert!(cli.capabilities().reliable && cli.capabilities().ordered);
    let (dialed, mut accepted) = connect(&cli, &srv, &mut listener).await;
    assert_eq!(dialed.remote_peer(), srv.local_peer_id());
    assert_eq!(accepted.remote_peer(), cli.local_peer_id());
    assert_eq!(accepted.remote_addr(), &ble(cli_dev.id().as_str()));
    assert_eq!(dialed.remote_addr(), &ble(srv_dev.id().as_str()));
    assert_eq!(dialed.info().kind, TransportKind::Ble);
    dialed
        .send(Bytes::from_static(b"roll"))
        .await
        .expect("send");
    assert_eq!(
        accepted.recv().await.expect("recv").as_deref(),
        Some(&b"roll"[..])
    );
    // A dial expecting someone else fails before any application byte.
    let other = Keypair::generate().peer_id();
    let err = cli
        .dial(listener.local_addr(), Some(other))
        .await
        .expect_err("mismatch");
    assert!(matches!(err, Error::PeerMismatch { .. }), "{err:?}");
    // Listening on another device's address is not served here.
    let refused = srv.listen(&ble("sim:77")).await;
    assert!(matches!(refused, Err(e) if e.is_unsupported()));
}

#[tokio::test(start_paused = true)]
async fn a_max_size_message_crosses_a_23_byte_mtu_link_intact() {
    let radio = SimRadio::new(SimConfig {
        rate: bitcraps_transport_ble::sim::LinkRate::LE_2M,
        ..SimConfig::default()
    });
    let (srv, mut listener, _srv_dev) = server(&radio, 23).await;
    let (cli, _cli_dev) = transport(&radio, SimDeviceConfig::default());
    let (mut dialed, mut accepted) = connect(&cli, &srv, &mut listener).await;
    let max = cli.capabilities().max_message_size;
    assert_eq!(max, Capabilities::reliable(1024 * 1024).max_message_size);
    let message = numbered(7, max);
    within(dialed.send(message.clone())).await.expect("send");
    let got = within(accepted.recv())
        .await
        .expect("recv")
        .expect("message");
    assert!(got == message, "the message changed on the way");
    let reply = numbered(9, max);
    within(accepted.send(reply.clone()))
        .await
        .expect("send back");
    assert!(within(dialed.recv()).await.expect("recv").expect("reply") == reply);
    // Both sides saw the link's MTU; nothing was dropped in reassembly.
    for stats in srv.link_stats().iter().chain(cli.link_stats().iter()) {
        assert_eq!(stats.mtu, 23);
        assert_eq!(stats.traffic.drops.total(), 0);
        assert!(stats.traffic.bytes_in > 2 * max as u64 / 2);
    }
    let err = dialed
        .send(numbered(1, max + 1))
        .await
        .expect_err("too big");
    assert!(matches!(err, Error::MessageTooLarge { .. }));
}

#[tokio::test(start_paused = true)]
async fn a_link_lost_mid_message_fails_only_that_connection() {
    let radio = SimRadio::new(SimConfig::default());
    let (srv, mut listener, srv_dev) = server(&radio, 23).await;
    let (a, a_dev) = transport(&radio, SimDeviceConfig::default());
    let (b, _b_dev) = transport(&radio, SimDeviceConfig::default());
    let (mut a_dialed, mut a_accepted) = connect(&a, &srv, &mut listener).await;
    let (b_dialed, mut b_accepted) = connect(&b, &srv, &mut listener).await;

    // 64 KiB at MTU 23 on the 1M PHY takes about 1.4 s of air time; drop the link after 300 ms.
    let sender = a_dialed.sender();
    let big = numbered(3, 64 * 1024);
    let send = tokio::spawn(async move { sender.send(big).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before: Vec<_> = srv.link_stats();
    let a_link = before
        .iter()
        .find(|s| s.remote == *a_dev.id())
        .expect("a's link");
    assert!(
        a_link.traffic.fragments_in > 100 && a_link.traffic.bytes_in < 64 * 1024,
        "the drop must come mid-message: {a_link:?}"
    );
    assert_eq!(radio.drop_link(a_dev.id(), srv_dev.id()), 1);

    // That connection fails with a typed error on both sides, then ends.
    let err = within(a_accepted.recv())
        .await
        .expect_err("lost mid-message");
    assert!(
        matches!(err, Error::LinkLost(_) | Error::Io { .. }),
        "{err:?}"
    );
    assert!(matches!(within(a_accepted.recv()).await, Ok(None)));
    let err = within(a_dialed.recv()).await.expect_err("dialer side");
    assert!(
        matches!(err, Error::LinkLost(_) | Error::Io { .. }),
        "{err:?}"
    );
    within(send).await.expect("task").ok();
    // Its reassembly state went with the link: only b's link is left.
    let after = srv.link_stats();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].remote, *_b_dev.id());

    // The other connection carries on.
    b_dialed
        .send(Bytes::from_static(b"still here"))
        .await
        .expect("send");
    assert_eq!(
        within(b_accepted.recv()).await.expect("recv").as_deref(),
        Some(&b"still here"[..])
    );
    // And a reconnect works.
    let (again, mut again_accepted) = connect(&a, &srv, &mut listener).await;
    again.send(numbered(5, 5000)).await.expect("send");
    assert_eq!(
        within(again_accepted.recv()).await.expect("recv"),
        Some(numbered(5, 5000))
    );
}

#[tokio::test(start_paused = true)]
async fn fragments_that_never_complete_cannot_grow_memory() {
    let radio = SimRadio::new(SimConfig::default());
    let (_srv, mut listener, srv_dev) = server(&radio, 247).await;
    // A raw peer that opens partial messages (count 4, only index 0) and never finishes them.
    let evil = radio.add_device(SimDeviceConfig::default());
    let link = evil.connect(srv_dev.id(), GUARD).await.expect("connect");
    let mut sent = 0u16;
    for id in 0..64u16 {
        let mut fragment = Vec::with_capacity(6 + 200);
        fragment.extend_from_slice(&id.to_be_bytes());
        fragment.extend_from_slice(&0u16.to_be_bytes());
        fragment.extend_from_slice(&4u16.to_be_bytes());
        fragment.extend_from_slice(&[0xEE; 200]);
        if link.send(Bytes::from(fragment)).await.is_err() {
            break;
        }
        sent += 1;
    }
    // The listener gives up on this link (the 9th partial message evicts one: a dropped
    // message on a reliable link is an attack) and reports the refusal.
    let refusal = match within(listener.accept()).await.expect("listener alive") {
        Inbound::Refused { error, .. } => error,
        Inbound::Connection(c) => panic!("unexpected connection from {}", c.remote_peer()),
        other => panic!("unexpected inbound event {other:?}"),
    };
    assert!(
        matches!(refusal, Error::Io { .. } | Error::Handshake(_)),
        "{refusal:?}"
    );
    assert!(sent >= 9, "{sent}");
    within(link.down()).await;

    // The same at the stream level, where the reassembler can be inspected.
    let (_b, mut incoming) = {
        let b = radio.add_device(SimDeviceConfig::with_mtu(247));
        b.start_advertising(bitcraps_transport_ble::AdvertisingConfig::new("b"))
            .await
            .expect("adv");
        let incoming = b.listen().await.expect("listen");
        (b, incoming)
    };
    let la = evil.connect(_b.id(), GUARD).await.expect("connect");
    let lb = incoming.accept().await.expect("accept");
    let (mut reader, _writer) = BleStream::new(lb).into_split();
    let cap = bitcraps_transport_ble::ReassemblerConfig::default();
    let writer = tokio::spawn(async move {
        for id in 0..(cap.max_sets as u16 + 1) {
            let mut f = id.to_be_bytes().to_vec();
            f.extend_from_slice(&[0, 0, 0, 4]);
            f.extend_from_slice(&[1; 100]);
            if la.send(Bytes::from(f)).await.is_err() {
                break;
            }
        }
        la
    });
    let mut buf = [0u8; 64];
    let err = within(reader.read(&mut buf)).await.expect_err("eviction");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    let stats = reader.reassembler_stats();
    assert_eq!(stats.drops.evicted, 1);
    assert_eq!(stats.fragments_in, cap.max_sets as u64 + 1);
    // The partial state was freed with the failure, and the link aborted.
    assert_eq!(reader.buffered_bytes(), 0);
    let la = within(writer).await.expect("writer");
    within(la.down()).await;

    // The listener still serves everyone else.
    let (cli, _dev) = transport(&radio, SimDeviceConfig::default());
    let addr = listener.local_addr().clone();
    let (dialed, accepted) =
        within(async { tokio::join!(cli.dial(&addr, None), listener.accept_connection()) }).await;
    let (dialed, mut accepted) = (dialed.expect("dial"), accepted.expect("accept"));
    dialed.send(Bytes::from_static(b"ok")).await.expect("send");
    assert_eq!(
        within(accepted.recv()).await.expect("recv").as_deref(),
        Some(&b"ok"[..])
    );
}

#[tokio::test(start_paused = true)]
async fn the_eighth_link_fails_with_a_typed_error() {
    let radio = SimRadio::new(SimConfig::default());
    let (srv, mut listener, srv_dev) = server(&radio, 247).await;
    assert_eq!(srv_dev.max_links(), 7);
    let mut kept = Vec::new();
    for _ in 0..7 {
        let (cli, dev) = transport(&radio, SimDeviceConfig::default());
        let pair = connect(&cli, &srv, &mut listener).await;
        kept.push((cli, dev, pair));
    }
    assert_eq!(radio.link_count(srv_dev.id()), 7);
    let (eighth, _dev) = transport(&radio, SimDeviceConfig::default());
    let err = within(eighth.dial(listener.local_addr(), None))
        .await
        .expect_err("8th");
    match link_error(&err) {
        Some(LinkError::LinkCapReached { device, limit }) => {
            assert_eq!(device, srv_dev.id());
            assert_eq!(*limit, 7);
        }
        other => panic!("expected LinkCapReached, got {other:?} in {err:?}"),
    }
    // Closing one frees a slot. (A new dialer: the failed one is in its limiter's backoff.)
    let (_cli, _dev, (dialed, _accepted)) = kept.pop().expect("one");
    within(dialed.close("bye")).await.expect("close");
    // The radio frees the slot in the link's own task, right after the close: let it run.
    within(async {
        while radio.link_count(srv_dev.id()) > 6 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let (ninth, _dev9) = transport(&radio, SimDeviceConfig::default());
    let (dialed, _accepted) = connect(&ninth, &srv, &mut listener).await;
    assert_eq!(dialed.remote_peer(), srv.local_peer_id());
    drop(eighth);
}

/// Connections outlive the transport that made them (as with TCP): the adapter stays alive,
/// and on the medium, while a link is up.
#[tokio::test(start_paused = true)]
async fn connections_outlive_their_transport() {
    let radio = SimRadio::new(SimConfig::default());
    let (srv, mut listener, srv_dev) = server(&radio, 247).await;
    let (cli, cli_dev) = transport(&radio, SimDeviceConfig::default());
    let cli_id = cli_dev.id().clone();
    let (dialed, mut accepted) = connect(&cli, &srv, &mut listener).await;
    drop((cli, cli_dev));
    dialed
        .send(Bytes::from_static(b"still"))
        .await
        .expect("send");
    assert_eq!(
        within(accepted.recv()).await.expect("recv").as_deref(),
        Some(&b"still"[..])
    );
    assert_eq!(radio.link_count(&cli_id), 1);
    within(dialed.close("done")).await.expect("close");
    assert!(matches!(within(accepted.recv()).await, Ok(None)));
    // Once its last link is down, the device leaves the medium.
    within(async {
        while radio.partition(&cli_id).is_some() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert_eq!(radio.link_count(srv_dev.id()), 0);
}
