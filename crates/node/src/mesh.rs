//! The node's mesh: `--relay ADDR` and `--mesh-via ADDR` run a `MeshTransport` over the node's
//! own backends. Its direct links are connections on those backends (the relay accepts them on
//! ADDR, `--mesh-via` dials them); the coordinator then reaches `mesh://<peer-id>` routes over
//! any number of hops, and a relaying node is itself reachable at `mesh://<its peer id>`.

use std::sync::Arc;

use anyhow::{Context, Result};
use bitcraps_mesh::{MeshTransport, MeshTransportConfig};
use bitcraps_transport_core::{PeerId, Transport, TransportAddress};
use clap::Args;

use crate::backends::Backends;
use crate::output::{Event, Output};

/// The mesh options of `listen` and `send`.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct MeshArgs {
    /// Relay for the mesh: take direct mesh links from neighbours on ADDR (repeatable; any
    /// backend's address, e.g. tcp://0.0.0.0:9000). The node relays its neighbours' packets
    /// and is reachable at mesh://<its peer id>.
    #[arg(long, value_name = "ADDR")]
    pub(crate) relay: Vec<TransportAddress>,
    /// Make a direct mesh link to ADDR, a neighbour's --relay address (repeatable). A
    /// mesh://<peer-id> route needs at least one.
    #[arg(long = "mesh-via", value_name = "ADDR")]
    pub(crate) via: Vec<TransportAddress>,
}

impl MeshArgs {
    /// The mesh transport, added to `backends`, if the options or `routes` need one.
    pub(crate) fn start(
        &self,
        backends: &mut Backends,
        routes: &[TransportAddress],
    ) -> Result<Option<MeshTransport>> {
        let mesh_route = routes
            .iter()
            .any(|a| matches!(a, TransportAddress::Mesh(_)));
        if self.relay.is_empty() && self.via.is_empty() && !mesh_route {
            return Ok(None);
        }
        if mesh_route && self.relay.is_empty() && self.via.is_empty() {
            anyhow::bail!("a mesh:// route needs a direct mesh link: add --mesh-via ADDR");
        }
        let mesh = MeshTransport::new(
            backends.keypair().clone(),
            MeshTransportConfig::default(),
            backends.transports(),
        )
        .context("start the mesh")?;
        backends.add(Arc::new(mesh.clone()) as Arc<dyn Transport>);
        Ok(Some(mesh))
    }

    /// Opens the relay listeners and dials the `--mesh-via` links, reporting each.
    pub(crate) async fn link(&self, mesh: &MeshTransport, out: Output) -> Result<()> {
        let me = mesh.local_peer_id().to_string();
        for addr in &self.relay {
            let bound = mesh
                .listen_direct(addr)
                .await
                .with_context(|| format!("relay on {addr}"))?;
            out.emit(&Event::Relaying {
                address: bound.to_string(),
                peer_id: me.clone(),
            });
        }
        for addr in &self.via {
            let peer: PeerId = mesh
                .dial_direct(addr, None)
                .await
                .with_context(|| format!("mesh link to {addr}"))?;
            out.emit(&Event::MeshLinked {
                address: addr.to_string(),
                peer_id: peer.to_string(),
            });
        }
        Ok(())
    }
}
