//! The adapter trait ([`BleAdapter`]) and the bounded streams it hands out: scan results
//! ([`Scan`]) and incoming links ([`IncomingLinks`]).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use futures::Stream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::{AdvertisingConfig, BleLink, DeviceId, DiscoveredDevice, LinkError};

/// One local Bluetooth LE adapter in one or both GATT roles.
///
/// Object-safe: held as `Arc<dyn BleAdapter>` (see the [module docs](super) for why).
/// An operation a backend cannot do fails with [`LinkError::Unsupported`].
#[async_trait]
pub trait BleAdapter: Send + Sync + 'static {
    /// This adapter's own device identifier.
    fn local_id(&self) -> DeviceId;

    /// The most links (both roles together) this adapter keeps at once.
    fn max_links(&self) -> usize;

    /// Starts advertising (peripheral role), replacing any advertisement already running.
    /// Centrals can connect while it runs and someone is [listening](Self::listen).
    async fn start_advertising(&self, config: AdvertisingConfig) -> Result<(), LinkError>;

    /// Stops advertising. Links already up stay up. Idempotent.
    async fn stop_advertising(&self) -> Result<(), LinkError>;

    /// Starts scanning (central role) for advertisers of `service`. Results arrive on the
    /// returned [`Scan`] until it is dropped.
    async fn scan(&self, service: Uuid) -> Result<Scan, LinkError>;

    /// Connects to `device` as central, giving up after `timeout`. The link is up (service
    /// discovered, notifications subscribed, MTU known) when this returns.
    async fn connect(&self, device: &DeviceId, timeout: Duration) -> Result<BleLink, LinkError>;

    /// Starts taking incoming links (peripheral role). One [`IncomingLinks`] at a time; a second
    /// call while the first is alive fails with [`LinkError::AlreadyListening`].
    async fn listen(&self) -> Result<IncomingLinks, LinkError>;
}

/// Aborts a backend task when the owning stream is dropped.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A running scan: a bounded stream of discovered devices. Scanning stops when it is dropped.
///
/// The queue is bounded; when the application falls behind, backends drop reports (an
/// advertiser is reported again on its next advertisement).
#[derive(Debug)]
pub struct Scan {
    rx: mpsc::Receiver<DiscoveredDevice>,
    _task: Option<AbortOnDrop>,
}

impl Scan {
    /// A scan fed through `rx`. If `task` is given, it is aborted when the scan is dropped.
    pub fn new(rx: mpsc::Receiver<DiscoveredDevice>, task: Option<JoinHandle<()>>) -> Self {
        Self {
            rx,
            _task: task.map(AbortOnDrop),
        }
    }

    /// The next discovered device, or `None` when the backend stopped the scan.
    pub async fn next_device(&mut self) -> Option<DiscoveredDevice> {
        self.rx.recv().await
    }
}

impl Stream for Scan {
    type Item = DiscoveredDevice;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// Incoming links (peripheral role), as a bounded stream. Incoming connections are refused
/// once it is dropped.
#[derive(Debug)]
pub struct IncomingLinks {
    rx: mpsc::Receiver<BleLink>,
    _task: Option<AbortOnDrop>,
}

impl IncomingLinks {
    /// Incoming links fed through `rx`. If `task` is given, it is aborted on drop.
    pub fn new(rx: mpsc::Receiver<BleLink>, task: Option<JoinHandle<()>>) -> Self {
        Self {
            rx,
            _task: task.map(AbortOnDrop),
        }
    }

    /// The next incoming link, or `None` when the adapter stopped listening.
    pub async fn accept(&mut self) -> Option<BleLink> {
        self.rx.recv().await
    }
}

impl Stream for IncomingLinks {
    type Item = BleLink;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}
