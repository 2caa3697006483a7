//! Payload efficiency and simulated throughput through `BleTransport` (Noise records, fragment
//! headers and ATT/L2CAP headers all counted), at MTU 23, 185 and 247 on the 1M and 2M PHY.
//! Prints the table quoted in docs/backends.md (`cargo test -p bitcraps-transport-ble --test efficiency
//! -- --nocapture`) and checks it against the model: the radio never carries more than the
//! link rate, and the pipeline keeps it busy.

use std::sync::Arc;
use std::time::Duration;

use bitcraps_transport_ble::sim::{LinkRate, SimConfig, SimDeviceConfig, SimRadio};
use bitcraps_transport_ble::BleTransport;
use bitcraps_transport_core::{Bytes, Keypair, Transport, TransportAddress};
use tokio::time::Instant;

const GUARD: Duration = Duration::from_secs(3600);

struct Row {
    efficiency: f64,
    kbps: f64,
}

async fn measure(mtu: u16, rate: LinkRate, size: usize, count: usize) -> Row {
    let radio = SimRadio::new(SimConfig {
        rate,
        ..SimConfig::default()
    });
    let server_dev = Arc::new(radio.add_device(SimDeviceConfig::with_mtu(mtu)));
    let client_dev = Arc::new(radio.add_device(SimDeviceConfig::with_mtu(mtu)));
    let server = BleTransport::new(server_dev, Keypair::generate());
    let client = BleTransport::new(client_dev, Keypair::generate());
    let mut listener = server
        .listen(&TransportAddress::Bluetooth("local".into()))
        .await
        .expect("listen");
    let addr = listener.local_addr().clone();
    let (dialed, accepted) = tokio::join!(
        client.dial(&addr, Some(server.local_peer_id())),
        listener.accept_connection()
    );
    let (dialed, mut accepted) = (dialed.expect("dial"), accepted.expect("accept"));
    let before = radio.stats();
    let started = Instant::now();
    let message = Bytes::from(vec![0x5A; size]);
    let sender = dialed.sender();
    let send = tokio::spawn(async move {
        for _ in 0..count {
            sender.send(message.clone()).await.expect("send");
        }
    });
    let mut received = 0usize;
    for _ in 0..count {
        let m = accepted.recv().await.expect("recv").expect("message");
        received += m.len();
    }
    let elapsed = started.elapsed();
    send.await.expect("sender");
    let after = radio.stats();
    let radio_bytes = after.radio_bytes - before.radio_bytes;
    assert_eq!(received, size * count);
    let efficiency = received as f64 / radio_bytes as f64;
    let kbps = received as f64 * 8.0 / elapsed.as_secs_f64() / 1000.0;
    let airtime = Duration::from_nanos(after.airtime_nanos - before.airtime_nanos);
    // Never faster than the radio allows; and the radio is busy nearly all the time.
    assert!(elapsed >= airtime, "{elapsed:?} < air time {airtime:?}");
    assert!(
        airtime.as_secs_f64() >= 0.9 * elapsed.as_secs_f64(),
        "radio idle too long: {airtime:?} of {elapsed:?}"
    );
    // Efficiency is below the bare fragment format's (chunk / (chunk + 6 + 3 + 4)).
    let chunk = f64::from(mtu - 9);
    assert!(efficiency < chunk / (chunk + 13.0));
    Row { efficiency, kbps }
}

#[tokio::test(start_paused = true)]
async fn payload_efficiency_and_throughput_table() {
    tokio::time::timeout(GUARD, async {
        eprintln!("| MTU | message | efficiency | 1M PHY kbit/s | 2M PHY kbit/s |");
        eprintln!("|---|---|---|---|---|");
        for mtu in [23u16, 185, 247] {
            for (size, count) in [(32usize, 2000usize), (1024, 256), (16 * 1024, 24)] {
                let one = measure(mtu, LinkRate::LE_1M, size, count).await;
                let two = measure(mtu, LinkRate::LE_2M, size, count).await;
                // The bytes on the radio do not depend on the PHY.
                assert!((one.efficiency - two.efficiency).abs() < 0.01);
                assert!(two.kbps > one.kbps * 1.7);
                eprintln!(
                    "| {mtu} | {size} B | {:.3} | {:.0} | {:.0} |",
                    one.efficiency, one.kbps, two.kbps
                );
            }
        }
    })
    .await
    .expect("guard");
}
