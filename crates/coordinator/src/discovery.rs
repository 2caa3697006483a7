//! The discovery hook: a discovery service (mDNS on a LAN, BLE advertisements, anything else)
//! reports the peers it found and lost through [`TransportCoordinator::report_discovered`] and
//! [`TransportCoordinator::report_lost`]; the application reads them from the coordinator's one
//! event stream as [`CoordinatorEvent::PeerDiscovered`] and [`CoordinatorEvent::PeerLost`].
//!
//! A discovered peer is only a hint: nothing is dialed here, and when the application (or the
//! discovery service's auto-connect) dials the routes, each dial expects the announced peer id,
//! so a forged announcement can only name routes that fail the handshake. Like every non-data
//! event these are dropped and counted (`Lagged`) when the queue is full; the discovery service
//! keeps the authoritative table.

use bitcraps_transport_core::{PeerId, TransportAddress};

use crate::{CoordinatorEvent, TransportCoordinator};

/// Where a discovered peer was heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DiscoverySource {
    /// Multicast DNS / DNS-SD on a local network.
    Mdns,
    /// A Bluetooth LE advertisement (and the mesh link made to it).
    Ble,
}

impl DiscoverySource {
    /// A short lowercase name (`mdns`, `ble`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Mdns => "mdns",
            Self::Ble => "ble",
        }
    }
}

impl std::fmt::Display for DiscoverySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TransportCoordinator {
    /// Reports that `peer` was discovered (or its routes changed) over `source`: emits
    /// [`CoordinatorEvent::PeerDiscovered`]. Announcements of this node itself are ignored.
    pub fn report_discovered(
        &self,
        peer: PeerId,
        routes: Vec<TransportAddress>,
        source: DiscoverySource,
    ) {
        if peer == self.local_peer_id() {
            return;
        }
        self.shared.events.emit(CoordinatorEvent::PeerDiscovered {
            peer,
            routes,
            source,
        });
    }

    /// Reports that `peer`, discovered before over `source`, is no longer announced: emits
    /// [`CoordinatorEvent::PeerLost`]. Its connections, if any, are not touched.
    pub fn report_lost(&self, peer: PeerId, source: DiscoverySource) {
        if peer == self.local_peer_id() {
            return;
        }
        self.shared
            .events
            .emit(CoordinatorEvent::PeerLost { peer, source });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bitcraps_transport_core::Keypair;
    use bitcraps_transport_mem::{MemoryNetwork, MemoryTransport};

    use super::*;

    fn coordinator(seed: u8) -> TransportCoordinator {
        let network = MemoryNetwork::new();
        let mem = MemoryTransport::new(&network, Keypair::from_secret_bytes([seed; 32]));
        TransportCoordinator::builder()
            .transport(Arc::new(mem))
            .build()
            .expect("coordinator")
    }

    #[tokio::test]
    async fn discovery_reports_become_events_and_self_is_ignored() {
        let c = coordinator(1);
        let mut events = c.events().expect("events");
        let other = Keypair::from_secret_bytes([2; 32]).peer_id();
        let route: TransportAddress = "tcp://127.0.0.1:9".parse().expect("route");
        c.report_discovered(
            c.local_peer_id(),
            vec![route.clone()],
            DiscoverySource::Mdns,
        );
        c.report_discovered(other, vec![route.clone()], DiscoverySource::Mdns);
        c.report_lost(c.local_peer_id(), DiscoverySource::Ble);
        c.report_lost(other, DiscoverySource::Ble);
        match events.try_recv() {
            Some(CoordinatorEvent::PeerDiscovered {
                peer,
                routes,
                source,
            }) => {
                assert_eq!(peer, other);
                assert_eq!(routes, vec![route]);
                assert_eq!(source, DiscoverySource::Mdns);
            }
            e => panic!("expected PeerDiscovered, got {e:?}"),
        }
        match events.try_recv() {
            Some(CoordinatorEvent::PeerLost { peer, source }) => {
                assert_eq!(peer, other);
                assert_eq!(source.to_string(), "ble");
            }
            e => panic!("expected PeerLost, got {e:?}"),
        }
        assert!(events.try_recv().is_none());
    }
}
