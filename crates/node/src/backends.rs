//! The backends this build of the node serves, and the choice of one for an address.
//!
//! Every backend shares one identity and one connection limiter, so limits hold across all of
//! them. Adding a backend is one line in [`Backends::new`]: the node picks, for each address,
//! the first backend whose `supports()` accepts it, and hands the coordinator the backends its
//! addresses need ([`Backends::serving`]).

use std::sync::Arc;

use anyhow::{bail, Result};
use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::{ChannelConfig, Keypair, SharedLimiter, Transport, TransportAddress};
use bitcraps_transport_quic::{QuicConfig, QuicTransport};
use bitcraps_transport_tcp::TcpTransport;
use bitcraps_transport_udp::{UdpConfig, UdpTransport};
use bitcraps_transport_ws::WebSocketTransport;

use crate::tls::{ws_config, TlsArgs};

/// The transports of one node, in preference order.
#[derive(Clone)]
pub(crate) struct Backends {
    transports: Vec<Arc<dyn Transport>>,
    identity: Arc<LocalIdentity>,
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
    /// Every network backend this build supports, sharing `keypair`, `channel` and `limiter`;
    /// `wss://` as far as `tls` provides certificates. Fails if the TLS files do not load.
    pub(crate) fn new(
        keypair: Keypair,
        channel: ChannelConfig,
        limiter: SharedLimiter,
        tls: &TlsArgs,
    ) -> Result<Self> {
        let ws = ws_config(channel.clone(), tls)?;
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
        transports.push(Arc::new(WebSocketTransport::with_limiter(
            identity.clone(),
            ws,
            limiter.clone(),
        )));
        Ok(Self {
            transports,
            identity,
        })
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

    /// The backends that serve `addrs`, each once, in preference order (what a coordinator
    /// for these addresses needs). Fails on the first address no backend serves.
    pub(crate) fn serving(&self, addrs: &[TransportAddress]) -> Result<Vec<Arc<dyn Transport>>> {
        let mut used = Vec::new();
        for addr in addrs {
            let t = self.for_address(addr)?;
            if !used.iter().any(|u: &Arc<dyn Transport>| Arc::ptr_eq(u, &t)) {
                used.push(t);
            }
        }
        used.sort_by_key(|u| {
            self.transports
                .iter()
                .position(|t| Arc::ptr_eq(t, u))
                .unwrap_or(usize::MAX)
        });
        Ok(used)
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

    /// This node's keypair.
    pub(crate) fn keypair(&self) -> &Keypair {
        self.identity.keypair()
    }

    /// The transports, in preference order.
    pub(crate) fn transports(&self) -> Vec<Arc<dyn Transport>> {
        self.transports.clone()
    }

    /// Adds a backend built on the others (the mesh), last in preference.
    pub(crate) fn add(&mut self, transport: Arc<dyn Transport>) {
        self.transports.push(transport);
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
            &TlsArgs::default(),
        )
        .unwrap()
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
    }

    #[test]
    fn websocket_is_served_and_wss_only_with_tls() {
        let b = backends();
        let ws: TransportAddress = "ws://127.0.0.1:0/bitcraps".parse().unwrap();
        assert_eq!(b.for_address(&ws).unwrap().kind(), TransportKind::WebSocket);
        let wss: TransportAddress = "wss://127.0.0.1:0/bitcraps".parse().unwrap();
        assert!(b.for_address(&wss).is_err());
    }

    #[test]
    fn serving_lists_each_needed_backend_once_in_preference_order() {
        let b = backends();
        let addrs: Vec<TransportAddress> = [
            "ws://127.0.0.1:1/x",
            "tcp://127.0.0.1:1",
            "tcp://127.0.0.1:2",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        let kinds: Vec<TransportKind> = b
            .serving(&addrs)
            .unwrap()
            .iter()
            .map(|t| t.kind())
            .collect();
        assert_eq!(kinds, [TransportKind::Tcp, TransportKind::WebSocket]);
    }

    #[test]
    fn every_backend_shares_the_identity() {
        let b = backends();
        assert!(b.transports.len() >= 4);
        assert!(b
            .transports
            .iter()
            .all(|t| t.local_peer_id() == b.peer_id()));
    }
}
