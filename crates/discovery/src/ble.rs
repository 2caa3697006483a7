//! [`BleDiscovery`]: discovery from Bluetooth LE advertisements. The [`MeshNode`] scans for
//! devices advertising the bitcraps service and makes an authenticated link to each (its
//! Noise handshake proves the remote's peer id); every link is attached to the coordinator as
//! a route ([`TransportCoordinator::attach_connection`]) and its peer reported discovered over
//! [`DiscoverySource::Ble`]. While the coordinator keeps the peer, the entry is refreshed;
//! once it does not, the peer is withdrawn (reported lost).

use std::collections::HashMap;
use std::time::Duration;

use bitcraps_coordinator::{DiscoverySource, TransportCoordinator};
use bitcraps_transport_ble::MeshNode;
use bitcraps_transport_core::{PeerId, TransportAddress};
use tokio::task::JoinHandle;

use crate::service::DiscoverySender;
use crate::{Discovery, DiscoveryInput};

/// How often BLE peers are refreshed or withdrawn.
const REFRESH: Duration = Duration::from_secs(5);
/// BLE peers remembered at most (a mesh node has a handful of links).
const MAX_BLE_PEERS: usize = 64;

/// A running BLE source; dropping it stops it (links attached stay with the coordinator).
#[derive(Debug)]
pub struct BleDiscovery {
    task: JoinHandle<()>,
}

impl BleDiscovery {
    /// Takes every link `mesh` makes, attaches it to `coordinator` and reports its peer to
    /// `discovery`.
    pub fn start(mesh: MeshNode, coordinator: TransportCoordinator, discovery: &Discovery) -> Self {
        let sender = discovery.sender();
        Self {
            task: tokio::spawn(run(mesh, coordinator, sender)),
        }
    }
}

impl Drop for BleDiscovery {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(mut mesh: MeshNode, coordinator: TransportCoordinator, sender: DiscoverySender) {
    let mut known: HashMap<PeerId, TransportAddress> = HashMap::new();
    let mut refresh = tokio::time::interval(REFRESH);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let announce = |peer: PeerId, route: &TransportAddress| DiscoveryInput::Announce {
        peer,
        routes: vec![route.clone()],
        source: DiscoverySource::Ble,
        ttl: Some(REFRESH * 3),
    };
    loop {
        tokio::select! {
            link = mesh.next_connection() => {
                let Some(link) = link else { return };
                let peer = link.connection.remote_peer();
                let route = link.connection.remote_addr().clone();
                match coordinator.attach_connection(link.connection).await {
                    Ok(()) => {
                        if known.len() < MAX_BLE_PEERS || known.contains_key(&peer) {
                            known.insert(peer, route.clone());
                        }
                        sender.offer(announce(peer, &route));
                    }
                    Err(e) => tracing::debug!(%peer, error = %e, "BLE link not attached"),
                }
            }
            _ = refresh.tick() => {
                let live = coordinator.peers();
                known.retain(|peer, route| {
                    if live.contains(peer) {
                        sender.offer(announce(*peer, route));
                        true
                    } else {
                        sender.offer(DiscoveryInput::Withdraw { peer: *peer, source: DiscoverySource::Ble });
                        false
                    }
                });
            }
        }
    }
}
