//! The memory backend's harness: one [`MemoryNetwork`] per harness instance (so trials never
//! see each other), and raw streams from `MemoryNetwork::connect_raw` with the source number as
//! the device id (transports' own ids start at 2^32, so they never collide).

use std::io;
use std::sync::Arc;

use async_trait::async_trait;
use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::{ChannelConfig, Keypair, SharedLimiter, Transport, TransportAddress};
use bitcraps_transport_mem::{MemoryNetwork, MemoryTransport};

use crate::{Harness, RawIo};

/// Runs the suite on [`MemoryTransport`].
#[derive(Debug)]
pub struct MemoryHarness {
    network: MemoryNetwork,
}

/// A fresh memory harness on its own network.
pub fn harness() -> Arc<dyn Harness> {
    Arc::new(MemoryHarness {
        network: MemoryNetwork::new(),
    })
}

#[async_trait]
impl Harness for MemoryHarness {
    fn refuses_explicitly(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "memory"
    }

    fn transport(
        &self,
        keypair: Keypair,
        channel: ChannelConfig,
        limiter: SharedLimiter,
    ) -> Arc<dyn Transport> {
        Arc::new(MemoryTransport::with_limiter(
            &self.network,
            LocalIdentity::new(keypair),
            channel,
            limiter,
        ))
    }

    fn listen_addr(&self) -> TransportAddress {
        TransportAddress::Memory(0)
    }

    async fn connect_raw(
        &self,
        addr: &TransportAddress,
        source: u8,
    ) -> Option<io::Result<Box<dyn RawIo>>> {
        let TransportAddress::Memory(port) = addr else {
            return Some(Err(io::Error::other(format!(
                "not a memory address: {addr}"
            ))));
        };
        let stream = self
            .network
            .connect_raw(*port, u64::from(source))
            .await
            .map(|s| Box::new(s) as Box<dyn RawIo>)
            .map_err(io::Error::other);
        Some(stream)
    }
}
