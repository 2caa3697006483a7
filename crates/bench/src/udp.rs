//! UDP one-way throughput, ours and raw, measured the same way: the sender keeps at most
//! [`WINDOW`] messages in flight (the receiver's count is shared in-process, no acknowledgement
//! crosses the network), so the figure measures the data path rather than how far a blasting
//! sender overruns the receiver's socket buffer. When the window stays full for [`LOSS_WAIT`]
//! the oldest message is counted lost and its slot released; the figure is delivered bytes from
//! the first send to the last delivery, and the delivered share is reported for both sides.
//!
//! The receiver stops when it has every message or when nothing arrived for [`QUIET`]; the
//! quiet period is not part of the timed interval.

use std::io::IoSliceMut;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use quinn::udp::{RecvMeta, Transmit, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::Notify;

use crate::ours::Setup;

/// The receiver gives up waiting for more after this long without a delivery.
const QUIET: Duration = Duration::from_millis(300);
/// Messages in flight at most (well under what the default socket buffer holds).
const WINDOW: usize = 32;
/// How long a full window waits for a delivery before its oldest message counts as lost.
const LOSS_WAIT: Duration = Duration::from_millis(5);

/// The raw library's name in the report.
pub(crate) const NAME: &str = "tokio UdpSocket (throughput: + quinn-udp GSO/GRO, same window)";
/// Bytes one segmented send carries at most.
const MAX_SEND: usize = 65_507;

/// What one run delivered.
pub(crate) struct Delivery {
    /// First send to last delivery.
    pub(crate) elapsed: Duration,
    /// Messages delivered.
    pub(crate) delivered: usize,
}

impl Delivery {
    /// Delivered payload bytes per second, in GB/s.
    pub(crate) fn gbps(&self, size: usize) -> f64 {
        (self.delivered * size) as f64 / self.elapsed.as_secs_f64().max(1e-9) / 1e9
    }
}

/// The receiver's progress, shared with the sender.
#[derive(Default)]
struct Progress {
    received: AtomicUsize,
    notify: Notify,
}

impl Progress {
    fn delivered(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
        self.notify.notify_one();
    }

    /// Window slots free for messages from `i` on.
    fn free(&self, i: usize, lost: usize) -> usize {
        (self.received.load(Ordering::Relaxed) + lost + WINDOW).saturating_sub(i)
    }

    /// Waits until message `i` may be sent; `lost` counts slots given up.
    async fn wait_for_slot(&self, i: usize, lost: &mut usize) {
        while i >= self.received.load(Ordering::Relaxed) + *lost + WINDOW {
            if tokio::time::timeout(LOSS_WAIT, self.notify.notified())
                .await
                .is_err()
            {
                *lost += 1;
            }
        }
    }
}

/// `count` messages of `size` bytes through our UDP backend.
pub(crate) async fn ours(size: usize, count: usize) -> Result<Delivery> {
    let mut setup = Setup::new("udp", size).await?;
    let (sender, mut receiver) = setup.connect().await?;
    let progress = Arc::new(Progress::default());
    let p = progress.clone();
    let receive = tokio::spawn(async move {
        let mut last = Instant::now();
        let mut delivered = 0;
        while delivered < count {
            match tokio::time::timeout(QUIET, receiver.recv()).await {
                Ok(Ok(Some(_))) => {
                    delivered += 1;
                    last = Instant::now();
                    p.delivered();
                }
                Ok(Ok(None)) | Err(_) => break,
                Ok(Err(e)) => return Err(e.into()),
            }
        }
        anyhow::Ok((delivered, last, receiver))
    });
    let payload = Bytes::from(vec![0xA5u8; size]);
    let mut lost = 0;
    let start = Instant::now();
    for i in 0..count {
        progress.wait_for_slot(i, &mut lost).await;
        sender.send(payload.clone()).await?;
    }
    let (delivered, last, receiver) = receive.await??;
    sender.close("done").await?;
    drop(receiver);
    Ok(Delivery {
        elapsed: last.saturating_duration_since(start),
        delivered,
    })
}

/// `count` datagrams of `size` bytes over raw connected tokio sockets, batched as ours is:
/// every free window slot (up to the kernel's GSO segment limit) leaves in one segmented
/// `sendmsg`, and the receiver reads with `recvmmsg`/GRO, both through quinn-udp.
pub(crate) async fn raw(size: usize, count: usize) -> Result<Delivery> {
    let rx = UdpSocket::bind("127.0.0.1:0").await?;
    let tx = UdpSocket::bind("127.0.0.1:0").await?;
    tx.connect(rx.local_addr()?).await?;
    rx.connect(tx.local_addr()?).await?;
    let rx_state = UdpSocketState::new((&rx).into())?;
    let tx_state = UdpSocketState::new((&tx).into())?;
    let to = rx.local_addr()?;
    let progress = Arc::new(Progress::default());
    let p = progress.clone();
    let receive = tokio::spawn(async move {
        // A GRO read returns at most one 64 KiB IP datagram's worth.
        let mut buf = vec![0u8; 64 * 1024];
        let mut delivered = 0;
        let mut last = Instant::now();
        while delivered < count {
            let mut meta = [RecvMeta::default()];
            let read = rx.async_io(Interest::READABLE, || {
                let mut slices = [IoSliceMut::new(&mut buf)];
                rx_state.recv((&rx).into(), &mut slices, &mut meta)
            });
            match tokio::time::timeout(QUIET, read).await {
                Ok(Ok(_)) => {
                    let m = &meta[0];
                    for datagram in buf[..m.len].chunks(m.stride.max(1)) {
                        std::hint::black_box(Bytes::copy_from_slice(datagram));
                        delivered += 1;
                        p.delivered();
                    }
                    last = Instant::now();
                }
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => break,
            }
        }
        anyhow::Ok((delivered, last))
    });
    let segments = tx_state
        .max_gso_segments()
        .min(MAX_SEND / size.max(1))
        .max(1);
    let batch = vec![0xA5u8; size * segments];
    let mut lost = 0;
    let mut i = 0;
    let start = Instant::now();
    while i < count {
        progress.wait_for_slot(i, &mut lost).await;
        let k = progress.free(i, lost).min(segments).min(count - i);
        let transmit = Transmit {
            destination: to,
            ecn: None,
            contents: &batch[..k * size],
            segment_size: (k > 1).then_some(size),
            src_ip: None,
        };
        tx.async_io(Interest::WRITABLE, || {
            tx_state.try_send((&tx).into(), &transmit)
        })
        .await?;
        i += k;
    }
    let (delivered, last) = receive.await??;
    Ok(Delivery {
        elapsed: last.saturating_duration_since(start),
        delivered,
    })
}

/// `rounds` round trips of one `size`-byte datagram over raw sockets, in microseconds.
pub(crate) async fn raw_rtt(size: usize, rounds: usize) -> Result<Vec<f64>> {
    let a = UdpSocket::bind("127.0.0.1:0").await?;
    let b = UdpSocket::bind("127.0.0.1:0").await?;
    a.connect(b.local_addr()?).await?;
    b.connect(a.local_addr()?).await?;
    let echo = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = b.recv(&mut buf).await {
            if b.send(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    let payload = vec![0x5Au8; size];
    let mut buf = vec![0u8; 65536];
    let mut out = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        a.send(&payload).await?;
        a.recv(&mut buf).await?;
        out.push(start.elapsed().as_secs_f64() * 1e6);
    }
    echo.abort();
    Ok(out)
}
