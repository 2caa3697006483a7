//! The mesh node's single task: reacts to scan reports, incoming links, finished attempts,
//! lost links and due retries. All state is owned here (no lock); attempts and link watches
//! run as child tasks in bounded join sets (at most the link cap of each).

use std::collections::BTreeMap;
use std::sync::Arc;

use bitcraps_transport_core::stream::StreamContext;
use bitcraps_transport_core::{Connection, Error, PeerId};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};

use super::{bump, MeshConfig, MeshConnection, MeshCounters};
use crate::link::{
    BleAdapter, BleLink, DeviceId, DiscoveredDevice, IncomingLinks, LinkWatch, Role, Scan,
};
use crate::registry::LinkRegistry;
use crate::sim::rng::SimRng;
use crate::transport::{raw_stream, source_key, to_core_error};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    Pending,
    Connected,
}

#[derive(Debug)]
struct Known {
    phase: Phase,
    failures: u32,
    retry_at: Option<Instant>,
    rssi: Option<i16>,
    ever_connected: bool,
    /// The identity last proven on this device (to skip dials to a peer linked otherwise).
    peer: Option<PeerId>,
    /// This node itself, seen under another id: never dialed again.
    is_self: bool,
}

/// The live connection to one peer.
#[derive(Debug)]
struct Linked {
    device: DeviceId,
    /// Who dialed it: this node (`Central`) or the peer.
    role: Role,
    watch: LinkWatch,
}

type Attempt = (DeviceId, Role, Result<(Connection, LinkWatch), Error>);

/// Stops advertising when the node's task ends.
struct AdvertisingGuard(Arc<dyn BleAdapter>);

impl Drop for AdvertisingGuard {
    fn drop(&mut self) {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let adapter = self.0.clone();
            handle.spawn(async move {
                let _ = adapter.stop_advertising().await;
            });
        }
    }
}

pub(super) struct Supervisor {
    adapter: Arc<dyn BleAdapter>,
    ctx: StreamContext,
    config: MeshConfig,
    cap: usize,
    local: DeviceId,
    known: BTreeMap<DeviceId, Known>,
    peers: BTreeMap<PeerId, Linked>,
    rng: SimRng,
    attempts: JoinSet<Attempt>,
    watches: JoinSet<(DeviceId, PeerId)>,
    out: mpsc::Sender<MeshConnection>,
    counters: Arc<MeshCounters>,
    links: LinkRegistry,
}

impl Supervisor {
    pub(super) fn new(
        adapter: Arc<dyn BleAdapter>,
        ctx: StreamContext,
        config: MeshConfig,
        cap: usize,
        out: mpsc::Sender<MeshConnection>,
        counters: Arc<MeshCounters>,
        links: LinkRegistry,
    ) -> Self {
        Self {
            local: adapter.local_id(),
            rng: SimRng::new(config.seed),
            adapter,
            ctx,
            config,
            cap,
            known: BTreeMap::new(),
            peers: BTreeMap::new(),
            attempts: JoinSet::new(),
            watches: JoinSet::new(),
            out,
            counters,
            links,
        }
    }

    pub(super) async fn run(mut self, mut scan: Scan, mut incoming: IncomingLinks) {
        let _advertising = AdvertisingGuard(self.adapter.clone());
        loop {
            let due = self.next_retry();
            tokio::select! {
                Some(device) = scan.next_device() => self.on_discovered(device),
                Some(link) = incoming.accept() => self.on_incoming(link),
                Some(Ok(attempt)) = self.attempts.join_next(), if !self.attempts.is_empty() => {
                    self.on_attempt(attempt);
                }
                Some(Ok((device, peer))) = self.watches.join_next(), if !self.watches.is_empty() => {
                    self.on_lost(device, peer);
                }
                _ = sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {}
                else => break,
            }
            self.dial_due();
        }
    }

    fn active(&self) -> usize {
        self.known
            .values()
            .filter(|k| k.phase != Phase::Idle)
            .count()
    }

    /// The lower device id dials (see the module docs).
    fn dials(&self, device: &DeviceId) -> bool {
        self.local < *device
    }

    fn next_retry(&self) -> Option<Instant> {
        if self.active() >= self.cap {
            return None;
        }
        self.known
            .iter()
            .filter(|(d, k)| k.phase == Phase::Idle && self.dials(d))
            .filter_map(|(_, k)| k.retry_at)
            .min()
    }

    /// Makes room for a new device by forgetting the idle one with the most failures.
    fn remember(&mut self, device: &DeviceId) -> bool {
        if self.known.contains_key(device) {
            return true;
        }
        if self.known.len() >= self.config.max_known.max(1) {
            let victim = self
                .known
                .iter()
                .filter(|(_, k)| k.phase == Phase::Idle)
                .max_by_key(|(_, k)| k.failures)
                .map(|(d, _)| d.clone());
            match victim {
                Some(v) => self.known.remove(&v),
                None => return false,
            };
        }
        self.known.insert(
            device.clone(),
            Known {
                phase: Phase::Idle,
                failures: 0,
                retry_at: None,
                rssi: None,
                ever_connected: false,
                peer: None,
                is_self: false,
            },
        );
        true
    }

    fn on_discovered(&mut self, found: DiscoveredDevice) {
        bump(&self.counters.discovered);
        if found.id == self.local || !self.remember(&found.id) {
            return;
        }
        let dials = self.dials(&found.id);
        if let Some(k) = self.known.get_mut(&found.id) {
            k.rssi = found.rssi.or(k.rssi);
            if dials && !k.is_self && k.phase == Phase::Idle && k.retry_at.is_none() {
                k.retry_at = Some(Instant::now());
            }
        }
    }

    fn on_incoming(&mut self, link: BleLink) {
        let device = link.remote().clone();
        let busy = self
            .known
            .get(&device)
            .is_some_and(|k| k.phase != Phase::Idle);
        if busy || self.active() >= self.cap || !self.remember(&device) {
            tracing::debug!(%device, "mesh: incoming link refused (cap or already linked)");
            bump(&self.counters.inbound_refused);
            link.abort();
            return;
        }
        let rssi = self.known.get(&device).and_then(|k| k.rssi);
        if let Some(k) = self.known.get_mut(&device) {
            k.phase = Phase::Pending;
        }
        let watch = link.watch();
        let raw = raw_stream(link, self.config.stream, &self.adapter, &self.links, rssi);
        let ctx = self.ctx.clone();
        self.attempts.spawn(async move {
            let result = inbound(ctx, &device, raw).await.map(|c| (c, watch));
            (device, Role::Peripheral, result)
        });
    }

    fn dial_due(&mut self) {
        let now = Instant::now();
        let due: Vec<DeviceId> = self
            .known
            .iter()
            .filter(|(d, k)| {
                k.phase == Phase::Idle && self.dials(d) && k.retry_at.is_some_and(|t| t <= now)
            })
            .map(|(d, _)| d.clone())
            .collect();
        for device in due {
            if self.active() >= self.cap {
                break;
            }
            let linked_elsewhere = self
                .known
                .get(&device)
                .and_then(|k| k.peer)
                .is_some_and(|p| self.peers.get(&p).is_some_and(|l| l.device != device));
            let Some(k) = self.known.get_mut(&device) else {
                continue;
            };
            if linked_elsewhere {
                // Its peer is connected under another device id: look again later.
                k.retry_at = Some(now + self.config.backoff.max);
                continue;
            }
            k.phase = Phase::Pending;
            k.retry_at = None;
            bump(&self.counters.connects_attempted);
            if k.failures > 0 || k.ever_connected {
                bump(&self.counters.reconnects);
            }
            let rssi = k.rssi;
            let (adapter, ctx, links) =
                (self.adapter.clone(), self.ctx.clone(), self.links.clone());
            let (stream, timeout) = (self.config.stream, self.config.connect_timeout);
            self.attempts.spawn(async move {
                let addr = crate::transport::device_address(&device);
                let watch = Arc::new(std::sync::Mutex::new(None::<LinkWatch>));
                let slot = watch.clone();
                let result = ctx
                    .dial(&addr, None, || async {
                        let link = adapter
                            .connect(&device, timeout)
                            .await
                            .map_err(|e| to_core_error("ble connect", e))?;
                        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(link.watch());
                        Ok(raw_stream(link, stream, &adapter, &links, rssi))
                    })
                    .await;
                let watch = watch.lock().unwrap_or_else(|p| p.into_inner()).take();
                let result = match (result, watch) {
                    (Ok(c), Some(w)) => Ok((c, w)),
                    (Ok(_), None) => Err(Error::LinkLost("link vanished".into())),
                    (Err(e), _) => Err(e),
                };
                (device, Role::Central, result)
            });
        }
    }

    fn schedule_retry(&mut self, device: &DeviceId) {
        let backoff = self.config.backoff;
        let dials = self.dials(device);
        if let Some(k) = self.known.get_mut(device) {
            k.phase = Phase::Idle;
            k.failures = k.failures.saturating_add(1);
            k.retry_at = dials.then(|| Instant::now() + backoff.delay(k.failures, &mut self.rng));
        }
    }

    fn on_attempt(&mut self, (device, role, result): Attempt) {
        let (connection, watch) = match result {
            Ok(ok) => ok,
            Err(error) => {
                tracing::debug!(%device, ?role, %error, "mesh: attempt failed");
                match role {
                    Role::Central => bump(&self.counters.connects_failed),
                    Role::Peripheral => bump(&self.counters.inbound_refused),
                }
                self.schedule_retry(&device);
                return;
            }
        };
        let peer = connection.remote_peer();
        let is_self = peer == self.ctx.identity.peer_id();
        if let Some(k) = self.known.get_mut(&device) {
            k.peer = Some(peer);
            if is_self {
                tracing::debug!(%device, "mesh: that device is this node; ignoring it");
                k.is_self = true;
                k.phase = Phase::Idle;
                k.retry_at = None;
            }
        }
        if is_self {
            watch.abort();
            return;
        }
        if let Some(existing) = self.peers.get(&peer) {
            // Two links to one peer (ids seen differently by each side). Both ends keep the
            // one dialed by the smaller PeerId, so they agree without talking.
            let preferred = if self.ctx.identity.peer_id() < peer {
                Role::Central
            } else {
                Role::Peripheral
            };
            bump(&self.counters.duplicates_dropped);
            if role == preferred && existing.role != preferred {
                tracing::debug!(%device, peer = %peer.short(), "mesh: replacing a duplicate connection");
                existing.watch.abort();
            } else {
                tracing::debug!(%device, peer = %peer.short(), "mesh: duplicate connection dropped");
                watch.abort();
                if let Some(k) = self.known.get_mut(&device) {
                    k.phase = Phase::Idle;
                    k.retry_at = None;
                }
                return;
            }
        }
        let delivered = self.out.try_send(MeshConnection {
            device: device.clone(),
            role,
            connection,
        });
        if delivered.is_err() {
            tracing::warn!(%device, "mesh: application queue full; connection dropped");
            bump(&self.counters.deliveries_dropped);
            watch.abort();
            self.schedule_retry(&device);
            return;
        }
        if role == Role::Peripheral {
            bump(&self.counters.inbound_accepted);
        }
        if let Some(k) = self.known.get_mut(&device) {
            k.phase = Phase::Connected;
            k.failures = 0;
            k.ever_connected = true;
        }
        let down = watch.clone();
        self.peers.insert(
            peer,
            Linked {
                device: device.clone(),
                role,
                watch,
            },
        );
        self.watches.spawn(async move {
            down.down().await;
            (device, peer)
        });
    }

    fn on_lost(&mut self, device: DeviceId, peer: PeerId) {
        tracing::debug!(%device, "mesh: link lost");
        bump(&self.counters.links_lost);
        if self.peers.get(&peer).is_some_and(|l| l.device == device) {
            self.peers.remove(&peer);
        }
        self.schedule_retry(&device);
    }
}

/// The listener side of a mesh link: the inbound limits by device, then the handshake under
/// its timeout.
async fn inbound(
    ctx: StreamContext,
    device: &DeviceId,
    raw: bitcraps_transport_core::stream::RawStream<crate::BleReadHalf, crate::BleWriteHalf>,
) -> Result<Connection, Error> {
    let ticket = ctx.limiter.check_inbound(source_key(device))?;
    let timeout = ctx.config.handshake_timeout;
    let result = match tokio::time::timeout(timeout, ctx.secure_inbound(raw)).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout {
            operation: "handshake",
            after: timeout,
        }),
    };
    match &result {
        Ok(_) | Err(Error::Limit(_)) => ticket.succeed(),
        Err(_) => drop(ticket),
    }
    result
}
