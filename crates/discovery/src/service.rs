//! [`Discovery`]: the async shell around the [`DiscoveryMachine`]. Sources (mDNS, BLE, a test)
//! offer [`DiscoveryInput`]s into a bounded queue; one task feeds them to the machine with the
//! time, reports its `Discovered` / `Lost` outputs through the coordinator's event stream
//! (`PeerDiscovered` / `PeerLost`), keeps the machine told which peers the coordinator has,
//! and carries out its auto-connect dials with `connect_to_peer` (each dial expecting the
//! announced peer id).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bitcraps_coordinator::{DiscoverySource, TransportCoordinator};
use bitcraps_transport_core::{PeerId, TransportAddress};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::{DiscoveryConfig, DiscoveryMachine, DiscoveryOutput, DiscoveryStats};

/// Inputs queued at most; a source offering more while the queue is full loses the excess
/// (counted in [`Discovery::dropped_inputs`]): announcements repeat, so nothing is lost for
/// good, and a flood cannot grow memory.
pub const INPUT_QUEUE: usize = 256;
/// How often the shell tells the machine which peers the coordinator has.
const SYNC_INTERVAL: Duration = Duration::from_millis(500);

/// What a source tells the discovery service.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiscoveryInput {
    /// `peer` announced `routes` (believed for `ttl`, or the configured default).
    Announce {
        /// The announced peer.
        peer: PeerId,
        /// Its routes.
        routes: Vec<TransportAddress>,
        /// Where it was heard.
        source: DiscoverySource,
        /// How long to believe it.
        ttl: Option<Duration>,
    },
    /// `peer` withdrew its announcement.
    Withdraw {
        /// The peer.
        peer: PeerId,
        /// Where it had been heard.
        source: DiscoverySource,
    },
}

/// A peer in the discovery table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownPeer {
    /// The announced peer (not proven until a handshake does).
    pub peer: PeerId,
    /// Its routes, most preferred first.
    pub routes: Vec<TransportAddress>,
    /// Where it was heard.
    pub source: DiscoverySource,
}

#[derive(Debug)]
struct Shared {
    machine: Mutex<DiscoveryMachine>,
    dropped: AtomicU64,
    /// Bumped whenever an input was handled or the table changed.
    version: watch::Sender<u64>,
}

impl Shared {
    fn machine(&self) -> MutexGuard<'_, DiscoveryMachine> {
        self.machine.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The discovery service of one coordinator. Dropping it stops it (sources holding a
/// [`DiscoverySender`] then see their offers refused).
#[derive(Debug)]
pub struct Discovery {
    shared: Arc<Shared>,
    inputs: mpsc::Sender<DiscoveryInput>,
    task: JoinHandle<()>,
}

/// A cheap handle sources offer inputs through.
#[derive(Debug, Clone)]
pub struct DiscoverySender {
    shared: Arc<Shared>,
    inputs: mpsc::Sender<DiscoveryInput>,
}

impl DiscoverySender {
    /// Offers one input; `false` if the queue is full (counted) or the service stopped.
    pub fn offer(&self, input: DiscoveryInput) -> bool {
        match self.inputs.try_send(input) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

impl Discovery {
    /// Starts the service for `coordinator` (its events carry what is found).
    pub fn start(coordinator: TransportCoordinator, config: DiscoveryConfig) -> Self {
        let now = Instant::now().into_std();
        let local = coordinator.local_peer_id();
        let dial_slots = config.max_auto_peers.max(1);
        let (version, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            machine: Mutex::new(DiscoveryMachine::new(local, config, now)),
            dropped: AtomicU64::new(0),
            version,
        });
        let (inputs, rx) = mpsc::channel(INPUT_QUEUE);
        // Every dial in flight has a slot here, so its result is never dropped.
        let (dial_tx, dial_rx) = mpsc::channel(dial_slots);
        let shell = Shell {
            shared: shared.clone(),
            coordinator,
            dial_tx,
        };
        let task = tokio::spawn(shell.run(rx, dial_rx));
        Self {
            shared,
            inputs,
            task,
        }
    }

    /// A handle for sources to offer inputs with.
    pub fn sender(&self) -> DiscoverySender {
        DiscoverySender {
            shared: self.shared.clone(),
            inputs: self.inputs.clone(),
        }
    }

    /// Offers one input (see [`DiscoverySender::offer`]).
    pub fn offer(&self, input: DiscoveryInput) -> bool {
        self.sender().offer(input)
    }

    /// The peers known now.
    pub fn peers(&self) -> Vec<KnownPeer> {
        let mut peers: Vec<KnownPeer> = self
            .shared
            .machine()
            .peers()
            .map(|(peer, routes, source)| KnownPeer {
                peer,
                routes: routes.to_vec(),
                source,
            })
            .collect();
        peers.sort_by_key(|p| p.peer);
        peers
    }

    /// Waits until a known peer matches `filter` and returns it (the caller bounds the wait
    /// with a timeout).
    pub async fn wait_for_peer(&self, filter: impl Fn(&KnownPeer) -> bool) -> KnownPeer {
        let mut version = self.shared.version.subscribe();
        loop {
            if let Some(p) = self.peers().into_iter().find(|p| filter(p)) {
                return p;
            }
            if version.changed().await.is_err() {
                // The service stopped: nothing new will come.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Waits until the counters satisfy `pred` and returns them (the caller bounds the wait
    /// with a timeout).
    pub async fn wait_stats(&self, pred: impl Fn(&DiscoveryStats) -> bool) -> DiscoveryStats {
        let mut version = self.shared.version.subscribe();
        loop {
            let stats = self.stats();
            if pred(&stats) {
                return stats;
            }
            if version.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// What the machine counted.
    pub fn stats(&self) -> DiscoveryStats {
        self.shared.machine().stats()
    }

    /// Inputs lost because the queue was full.
    pub fn dropped_inputs(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The task's side.
struct Shell {
    shared: Arc<Shared>,
    coordinator: TransportCoordinator,
    dial_tx: mpsc::Sender<(PeerId, bool)>,
}

impl Shell {
    async fn run(
        self,
        mut inputs: mpsc::Receiver<DiscoveryInput>,
        mut dials: mpsc::Receiver<(PeerId, bool)>,
    ) {
        let mut sync = tokio::time::interval(SYNC_INTERVAL);
        sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self.shared.machine().poll_timeout();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                input = inputs.recv() => {
                    let Some(input) = input else { return };
                    let now = Instant::now().into_std();
                    let mut m = self.shared.machine();
                    match input {
                        DiscoveryInput::Announce { peer, routes, source, ttl } => {
                            if let Err(why) = m.on_announce(now, peer, routes, source, ttl) {
                                tracing::trace!(%peer, ?why, "announcement not taken");
                            }
                        }
                        DiscoveryInput::Withdraw { peer, source } => m.on_withdraw(now, peer, source),
                    }
                    drop(m);
                    self.shared.version.send_modify(|v| *v += 1);
                }
                Some((peer, ok)) = dials.recv() => {
                    self.shared.machine().dial_finished(Instant::now().into_std(), peer, ok);
                }
                _ = sync.tick() => {
                    let peers = self.coordinator.peers();
                    self.shared.machine().set_connected(Instant::now().into_std(), peers);
                }
                () = sleep => self.shared.machine().handle_timeout(Instant::now().into_std()),
            }
            self.carry_out();
        }
    }

    /// Acts on every output the machine has.
    fn carry_out(&self) {
        let outputs: Vec<DiscoveryOutput> = {
            let mut m = self.shared.machine();
            std::iter::from_fn(|| m.poll_output()).collect()
        };
        let mut changed = false;
        for output in outputs {
            match output {
                DiscoveryOutput::Discovered {
                    peer,
                    routes,
                    source,
                } => {
                    changed = true;
                    tracing::debug!(%peer, ?routes, %source, "peer discovered");
                    self.coordinator.report_discovered(peer, routes, source);
                }
                DiscoveryOutput::Lost { peer, source } => {
                    changed = true;
                    tracing::debug!(%peer, %source, "peer lost");
                    self.coordinator.report_lost(peer, source);
                }
                DiscoveryOutput::Dial { peer, routes } => {
                    let coordinator = self.coordinator.clone();
                    let done = self.dial_tx.clone();
                    tokio::spawn(async move {
                        // connect_to_peer dials expecting `peer`: the handshake proves it.
                        let result = coordinator.connect_to_peer(peer, routes).await;
                        if let Err(e) = &result {
                            tracing::debug!(%peer, error = %e, "auto-connect failed");
                        }
                        let _ = done.send((peer, result.is_ok())).await;
                    });
                }
            }
        }
        if changed {
            self.shared.version.send_modify(|v| *v += 1);
        }
    }
}
