//! Message throughput over loopback: `UdpTransport` (Noise handshake, per-datagram AEAD,
//! replay window) against raw tokio `UdpSocket`s of the same message size, batched as ours is
//! (quinn-udp: GSO sends, GRO reads), in the same run and measured the same way.
//!
//! Both runs are windowed so the figures measure the data path rather than how much a blasting
//! sender overruns the receiver's socket buffer: the sender keeps at most `WINDOW` messages
//! in flight (the receiver's count is shared in-process, no acknowledgement crosses the
//! network). A lost message releases its window slot after `LOSS_WAIT`. Reported: messages
//! delivered per second from the first send to the last delivery, and the share delivered.
//!
//! ```text
//! cargo run --release -p bitcraps-transport-udp --example udp_throughput [messages]
//! ```

use std::io::IoSliceMut;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::Notify;

use bitcraps_transport_core::{ConnectionLimits, Keypair, Transport};
use bitcraps_transport_udp::{UdpConfig, UdpTransport};

/// The receiver stops once nothing arrived for this long after the sender finished.
const QUIET: Duration = Duration::from_millis(300);
/// Messages in flight at most.
const WINDOW: u64 = 64;
/// How long the sender waits for a window slot before counting the oldest message as lost.
const LOSS_WAIT: Duration = Duration::from_millis(20);

/// The receiver's progress, shared with the sender.
#[derive(Default)]
struct Progress {
    received: AtomicU64,
    notify: Notify,
}

impl Progress {
    fn delivered(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
        self.notify.notify_one();
    }

    /// Window slots free for messages from `i` on.
    fn free(&self, i: u64, skipped: u64) -> u64 {
        (self.received.load(Ordering::Relaxed) + skipped + WINDOW).saturating_sub(i)
    }

    /// Waits until message `i` may be sent; `skipped` counts slots given up as lost.
    async fn wait_for_slot(&self, i: u64, skipped: &mut u64) {
        while i >= self.received.load(Ordering::Relaxed) + *skipped + WINDOW {
            if tokio::time::timeout(LOSS_WAIT, self.notify.notified())
                .await
                .is_err()
            {
                *skipped += 1;
            }
        }
    }
}

struct Figures {
    delivered: u64,
    elapsed: Duration,
}

impl Figures {
    fn mb_per_s(&self, size: usize) -> f64 {
        (self.delivered as f64 * size as f64) / self.elapsed.as_secs_f64() / 1e6
    }

    fn msgs_per_s(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64()
    }
}

/// Raw sockets batched as our transport is (through quinn-udp): every free window slot leaves
/// in one segmented (GSO) send, and reads use GRO/`recvmmsg`.
async fn raw(size: usize, count: u64) -> anyhow::Result<Figures> {
    let rx = UdpSocket::bind("127.0.0.1:0").await?;
    let tx = UdpSocket::bind("127.0.0.1:0").await?;
    tx.connect(rx.local_addr()?).await?;
    let rx_state = UdpSocketState::new((&rx).into())?;
    let tx_state = UdpSocketState::new((&tx).into())?;
    let to = rx.local_addr()?;
    let progress = Arc::new(Progress::default());
    let seen = progress.clone();
    let receiver = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        let mut delivered = 0u64;
        let mut last = Instant::now();
        while delivered < count {
            let mut meta = [RecvMeta::default()];
            let read = rx.async_io(Interest::READABLE, || {
                let mut slices = [IoSliceMut::new(&mut buf)];
                rx_state.recv((&rx).into(), &mut slices, &mut meta)
            });
            let Ok(Ok(_)) = tokio::time::timeout(QUIET, read).await else {
                break;
            };
            for _ in buf[..meta[0].len].chunks(meta[0].stride.max(1)) {
                delivered += 1;
                seen.delivered();
            }
            last = Instant::now();
        }
        (delivered, last)
    });
    let segments = tx_state.max_gso_segments().clamp(1, 65_507 / size);
    let batch = vec![0x5A; size * segments];
    let start = Instant::now();
    let mut skipped = 0;
    let mut i = 0;
    while i < count {
        progress.wait_for_slot(i, &mut skipped).await;
        let k = progress
            .free(i, skipped)
            .min(segments as u64)
            .min(count - i);
        let transmit = Transmit {
            destination: to,
            ecn: None,
            contents: &batch[..k as usize * size],
            segment_size: (k > 1).then_some(size),
            src_ip: None,
        };
        tx.async_io(Interest::WRITABLE, || {
            tx_state.try_send((&tx).into(), &transmit)
        })
        .await?;
        i += k;
    }
    let (delivered, last) = receiver.await?;
    Ok(Figures {
        delivered,
        elapsed: last - start,
    })
}

async fn ours(size: usize, count: u64) -> anyhow::Result<Figures> {
    let config = UdpConfig {
        limits: ConnectionLimits::unlimited(),
        max_payload: size.max(1200),
        ..UdpConfig::default()
    };
    let server = UdpTransport::with_config(Keypair::generate(), config.clone());
    let client = UdpTransport::with_config(Keypair::generate(), config);
    let mut listener = server.listen(&"udp://127.0.0.1:0".parse()?).await?;
    let conn = client
        .dial(listener.local_addr(), Some(server.local_peer_id()))
        .await
        .context("dial")?;
    let mut accepted = listener.accept_connection().await?;
    let progress = Arc::new(Progress::default());
    let seen = progress.clone();
    let receiver = tokio::spawn(async move {
        let mut delivered = 0u64;
        let mut last = Instant::now();
        while let Ok(Ok(Some(_))) = tokio::time::timeout(QUIET, accepted.recv()).await {
            delivered += 1;
            seen.delivered();
            last = Instant::now();
            if delivered == count {
                break;
            }
        }
        (delivered, last)
    });
    let payload = Bytes::from(vec![0x5A; size]);
    let start = Instant::now();
    let mut skipped = 0;
    for i in 0..count {
        progress.wait_for_slot(i, &mut skipped).await;
        conn.send(payload.clone()).await?;
    }
    let (delivered, last) = receiver.await?;
    let stats = server.datagram_stats();
    println!(
        "    (udp transport drops at the receiver: queue full {}, replayed {}, unauthentic {})",
        stats.dropped_queue_full, stats.dropped_replayed, stats.dropped_unauthentic
    );
    Ok(Figures {
        delivered,
        elapsed: last - start,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let count: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(200_000);
    println!("{count} messages per run, loopback, window {WINDOW} messages:");
    for size in [1024usize, 1200] {
        let raw = raw(size, count).await?;
        let ours = ours(size, count).await?;
        for (name, f) in [("raw (GSO/GRO)", &raw), ("UdpTransport", &ours)] {
            println!(
                "  {size:>5} B  {name:<20} {:>8.1} MB/s  {:>9.0} msg/s  delivered {:>6.2}%",
                f.mb_per_s(size),
                f.msgs_per_s(),
                100.0 * f.delivered as f64 / count as f64
            );
        }
        println!(
            "  {size:>5} B  ratio UdpTransport / raw: {:.2}",
            ours.mb_per_s(size) / raw.mb_per_s(size)
        );
    }
    Ok(())
}
