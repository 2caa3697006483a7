//! Mesh mode: one node advertises and scans at once, connects to the BitCraps devices it
//! discovers up to its link cap, runs the Noise handshake on every link, and reconnects with
//! backoff when a link drops (the seed's `EnhancedBluetoothTransport::start_mesh_mode`).
//!
//! * **Who dials.** Both ends of a pair discover each other; to avoid two links per pair, the
//!   device whose id sorts lower dials and the other accepts. Where ids are not symmetric
//!   (hardware ids seen differently by each side, or a [`DualAdapter`](crate::link::DualAdapter)
//!   whose peers connect in from their central's id), a pair can link twice: after the
//!   handshake both ends keep the connection dialed by the smaller `PeerId` and let the other
//!   go (so they agree without talking), and a device whose peer is linked under another id is
//!   not dialed. A device that turns out to be this node itself is never dialed again.
//! * **Cap.** Links up or being set up, both roles together, never exceed
//!   [`MeshConfig::max_links`] (default: the adapter's cap); incoming links over it are
//!   aborted at once.
//! * **Reconnects.** A failed attempt or a dropped link schedules the next attempt after a
//!   [`Backoff`] delay (exponential, capped, jittered with the seeded generator). A device seen
//!   again by the scan is tried at once only if no attempt is scheduled.
//! * **Delivery.** Authenticated [`Connection`]s arrive through a bounded channel
//!   ([`MeshNode::next_connection`]). If the application falls that far behind, a new
//!   connection is dropped (and counted) instead of queueing without bound.
//! * **Memory.** The table of known devices is capped ([`MeshConfig::max_known`]).

mod backoff;
mod supervisor;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::stream::StreamContext;
use bitcraps_transport_core::{ChannelConfig, Connection, SharedLimiter, TransportKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use backoff::Backoff;

use crate::link::{AdvertisingConfig, BleAdapter, DeviceId, LinkError, Role};
use crate::registry::{LinkRegistry, LinkStats};
use crate::stream::BleStreamConfig;

/// Settings of a [`MeshNode`].
#[derive(Clone, Debug)]
pub struct MeshConfig {
    /// What the node advertises.
    pub advertising: AdvertisingConfig,
    /// Most links at once, both roles; `None` means the adapter's cap.
    pub max_links: Option<usize>,
    /// Delays between attempts to the same device.
    pub backoff: Backoff,
    /// Seed of the backoff jitter.
    pub seed: u64,
    /// Bound on one connect (the handshake has its own timeout in the channel settings).
    pub connect_timeout: Duration,
    /// Fragmentation and reassembly settings of every link.
    pub stream: BleStreamConfig,
    /// Authenticated connections waiting for the application.
    pub delivery_queue: usize,
    /// Devices remembered (for reconnects) at most.
    pub max_known: usize,
}

impl MeshConfig {
    /// Defaults, advertising `local_name`: the adapter's cap, default backoff, seed 0,
    /// 10 s connects, default stream settings, 16 queued connections, 64 known devices.
    pub fn new(local_name: impl Into<String>) -> Self {
        Self {
            advertising: AdvertisingConfig::new(local_name),
            max_links: None,
            backoff: Backoff::default(),
            seed: 0,
            connect_timeout: Duration::from_secs(10),
            stream: BleStreamConfig::default(),
            delivery_queue: 16,
            max_known: 64,
        }
    }
}

/// One authenticated mesh connection.
#[derive(Debug)]
pub struct MeshConnection {
    /// The device at the other end.
    pub device: DeviceId,
    /// Our role on the link (central: we dialed).
    pub role: Role,
    /// The connection; its remote proved its [`PeerId`](bitcraps_transport_core::PeerId).
    pub connection: Connection,
}

/// Counters of the whole node.
#[derive(Debug, Default)]
pub(crate) struct MeshCounters {
    pub(crate) discovered: AtomicU64,
    pub(crate) connects_attempted: AtomicU64,
    pub(crate) connects_failed: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) links_lost: AtomicU64,
    pub(crate) inbound_accepted: AtomicU64,
    pub(crate) inbound_refused: AtomicU64,
    pub(crate) duplicates_dropped: AtomicU64,
    pub(crate) deliveries_dropped: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Statistics of a mesh node (the seed's `EnhancedBluetoothStats`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnhancedBluetoothStats {
    /// Every live link: RSSI where known, MTU, bytes and fragments each way, reassembly drops
    /// by reason.
    pub links: Vec<LinkStats>,
    /// The node's link cap.
    pub max_links: usize,
    /// Scan reports received.
    pub discovered: u64,
    /// Dials started (first attempts and reconnects).
    pub connects_attempted: u64,
    /// Dials (connects or handshakes) that failed.
    pub connects_failed: u64,
    /// Dials that were retries after a failure or a lost link.
    pub reconnects: u64,
    /// Authenticated links that went down.
    pub links_lost: u64,
    /// Incoming links authenticated.
    pub inbound_accepted: u64,
    /// Incoming links refused (over the cap, already connected, limits, failed handshakes).
    pub inbound_refused: u64,
    /// Second connections to an already connected peer, dropped.
    pub duplicates_dropped: u64,
    /// Connections dropped because the application's queue was full.
    pub deliveries_dropped: u64,
}

/// A running mesh node. Dropping it stops the node (links already delivered stay up until
/// their connections are dropped).
#[derive(Debug)]
pub struct MeshNode {
    connections: mpsc::Receiver<MeshConnection>,
    task: JoinHandle<()>,
    counters: Arc<MeshCounters>,
    links: LinkRegistry,
    max_links: usize,
    local: DeviceId,
}

impl MeshNode {
    /// Starts mesh mode on `adapter`: advertise, listen and scan at once. Fails if the adapter
    /// cannot do one of them (a btleplug central cannot advertise: use a bluer peripheral
    /// alongside, or the simulator).
    pub async fn start(
        adapter: Arc<dyn BleAdapter>,
        identity: Arc<LocalIdentity>,
        channel: ChannelConfig,
        limiter: SharedLimiter,
        config: MeshConfig,
    ) -> Result<Self, LinkError> {
        let incoming = adapter.listen().await?;
        adapter
            .start_advertising(config.advertising.clone())
            .await?;
        let scan = adapter.scan(config.advertising.service).await?;
        let max_links = config
            .max_links
            .unwrap_or_else(|| adapter.max_links())
            .min(adapter.max_links());
        let (tx, connections) = mpsc::channel(config.delivery_queue.max(1));
        let counters = Arc::new(MeshCounters::default());
        let links = LinkRegistry::default();
        let local = adapter.local_id();
        let ctx = StreamContext {
            identity,
            config: Arc::new(channel),
            limiter,
            kind: TransportKind::Ble,
        };
        let supervisor = supervisor::Supervisor::new(
            adapter,
            ctx,
            config,
            max_links,
            tx,
            counters.clone(),
            links.clone(),
        );
        let task = tokio::spawn(supervisor.run(scan, incoming));
        Ok(Self {
            connections,
            task,
            counters,
            links,
            max_links,
            local,
        })
    }

    /// This node's device id.
    pub fn local_id(&self) -> &DeviceId {
        &self.local
    }

    /// The next authenticated connection, or `None` once the node stopped.
    pub async fn next_connection(&mut self) -> Option<MeshConnection> {
        self.connections.recv().await
    }

    /// A snapshot of the node's statistics.
    pub fn stats(&self) -> EnhancedBluetoothStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let c = &self.counters;
        EnhancedBluetoothStats {
            links: self.links.snapshot(),
            max_links: self.max_links,
            discovered: get(&c.discovered),
            connects_attempted: get(&c.connects_attempted),
            connects_failed: get(&c.connects_failed),
            reconnects: get(&c.reconnects),
            links_lost: get(&c.links_lost),
            inbound_accepted: get(&c.inbound_accepted),
            inbound_refused: get(&c.inbound_refused),
            duplicates_dropped: get(&c.duplicates_dropped),
            deliveries_dropped: get(&c.deliveries_dropped),
        }
    }

    /// Stops scanning, advertising and accepting; links already delivered stay up.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for MeshNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}
