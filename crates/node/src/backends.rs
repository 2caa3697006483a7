//! The backends this build of the node serves, and the choice of one for an address.
//!
//! Every backend shares one identity and one connection limiter, so limits hold across all of
//! them. Adding a backend (QUIC, WebSocket, UDP) is one line in [`Backends::new`]: the node
//! picks, for each address, the first backend whose `supports()` accepts it.

use std::sync::Arc;

use anyhow::{bail, Result};
use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::{ChannelConfig, Keypair, SharedLimiter, Transport, TransportAddress};
use bitcraps_transport_mem::{MemoryNetwork, MemoryTransport};
use bitcraps_transport_quic::{QuicConfig, QuicTransport};
use bitcraps_transport_tcp::TcpTransport;
use bitcraps_transport_udp::{UdpConfig, UdpTransport};

/// The transports of one node, in preference order.
#[derive(Clone)]
pub(crate) struct Backends {
    transports: Vec<Arc<dyn Transport>>,
    identity: Arc<LocalIdentity>,
    channel: ChannelConfig,
    limiter: SharedLimiter,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: Vec<String> = self
            .transports
            .iter()
            .map(|t| t.kind().to_string())
            .collect();
        f.debug_struct("Backends").field("kinds", &kinds).finish()
    }
}

impl Backends {
    /// Every network backend this build supports, sharing `keypair`, `channel` and `limiter`.
    pub(crate) fn new(keypair: Keypair, channel: ChannelConfig, limiter: SharedLimiter) -> Self {
        let identity = LocalIdentity::new(keypair);
        let quic = QuicConfig {
            channel: channel.clone(),
            ..QuicConfig::default()
        };
        let mut transports: Vec<Arc<dyn Transport>> = vec![Arc::new(TcpTransport::with_limiter(
            identity.clone(),
            channel.clone(),
            limiter.clone(),
        ))];
        // A certificate is built from the key; that cannot fail for a valid Ed25519 key, but if
        // it ever did the node still serves its other backends (and says so when asked).
        match QuicTransport::with_limiter(identity.keypair().clone(), quic, limiter.clone()) {
            Ok(t) => transports.push(Arc::new(t)),
            Err(e) => tracing::warn!(error = %e, "QUIC backend unavailable"),
        }
        let udp = UdpConfig {
            channel: channel.clone(),
            ..UdpConfig::default()
        };
        transports.push(Arc::new(UdpTransport::with_limiter(
            identity.clone(),
            udp,
            limiter.clone(),
        )));
        Self {
            transports,
            identity,
            channel,
            limiter,
        }
    }

    /// Adds the in-memory backend on `network` (the demo; in-process only).
    pub(crate) fn with_memory(mut self, network: &MemoryNetwork) -> Self {
        self.transports.push(Arc::new(MemoryTransport::with_limiter(
            network,
            self.identity.clone(),
            self.channel.clone(),
            self.limiter.clone(),
        )));
        self
    }

    /// The transport that serves `addr`: the first whose `supports()` accepts it.
    pub(crate) fn for_address(&self, addr: &TransportAddress) -> Result<Arc<dyn Transport>> {
        match self.transports.iter().find(|t| t.supports(addr)) {
            Some(t) => Ok(t.clone()),
            None => bail!(
                "no backend in this build serves {addr} (scheme {}://); supported: {}",
                addr.scheme(),
                self.schemes()
            ),
        }
    }

    /// The schemes served, for messages.
    fn schemes(&self) -> String {
        let mut kinds: Vec<String> = self
            .transports
            .iter()
            .map(|t| t.kind().to_string())
            .collect();
        kinds.dedup();
        kinds.join(", ")
    }

    /// This node's identity.
    pub(crate) fn peer_id(&self) -> bitcraps_transport_core::PeerId {
        self.identity.peer_id()
    }

    /// The limiter shared by every backend.
    pub(crate) fn limiter(&self) -> &SharedLimiter {
        &self.limiter
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcraps_transport_core::TransportKind;

    fn backends() -> Backends {
        Backends::new(
            Keypair::generate(),
            ChannelConfig::default(),
            SharedLimiter::unlimited(),
        )
    }

    #[test]
    fn tcp_addresses_go_to_tcp() {
        let b = backends();
        let addr: TransportAddress = "tcp://127.0.0.1:0".parse().unwrap();
        assert_eq!(b.for_address(&addr).unwrap().kind(), TransportKind::Tcp);
    }

    #[test]
    fn unserved_schemes_are_refused_with_the_list() {
        let b = backends();
        let addr: TransportAddress = "memory://7".parse().unwrap();
        let Err(err) = b.for_address(&addr) else {
            panic!("memory served without the memory backend")
        };
        let err = err.to_string();
        assert!(err.contains("memory"), "{err}");
        assert!(err.contains("supported: tcp"), "{err}");
        let b = b.with_memory(&MemoryNetwork::new());
        assert_eq!(b.for_address(&addr).unwrap().kind(), TransportKind::Memory);
    }

    #[test]
    fn every_backend_shares_the_identity() {
        let b = backends().with_memory(&MemoryNetwork::new());
        assert!(b
            .transports
            .iter()
            .all(|t| t.local_peer_id() == b.peer_id()));
    }
}
