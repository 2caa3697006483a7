//! The UDP datagram backend in the suite. It has no byte-stream raw access (its hostile-datagram
//! handling is covered by the crate's own relay and garbage tests), so the raw cases are
//! reported as not applicable.

use std::sync::Arc;

use async_trait::async_trait;
use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::{ChannelConfig, Keypair, SharedLimiter, Transport, TransportAddress};
use bitcraps_transport_udp::{UdpConfig, UdpTransport};

use crate::{Harness, RawIo};

/// The UDP harness.
pub fn harness() -> Arc<dyn Harness> {
    Arc::new(Udp)
}

struct Udp;

#[async_trait]
impl Harness for Udp {
    fn name(&self) -> &'static str {
        "udp"
    }

    fn transport(
        &self,
        keypair: Keypair,
        channel: ChannelConfig,
        limiter: SharedLimiter,
    ) -> Arc<dyn Transport> {
        let config = UdpConfig {
            channel,
            ..UdpConfig::default()
        };
        Arc::new(UdpTransport::with_limiter(
            LocalIdentity::new(keypair),
            config,
            limiter,
        ))
    }

    fn listen_addr(&self) -> TransportAddress {
        "udp://127.0.0.1:0".parse().expect("valid address")
    }

    fn has_raw_access(&self) -> bool {
        false
    }

    async fn connect_raw(
        &self,
        _addr: &TransportAddress,
        _source: u8,
    ) -> Option<std::io::Result<Box<dyn RawIo>>> {
        None
    }
}
