//! The QUIC backend in the suite.

use std::sync::Arc;

use async_trait::async_trait;
use bitcraps_transport_core::{ChannelConfig, Keypair, SharedLimiter, Transport, TransportAddress};
use bitcraps_transport_quic::{QuicConfig, QuicTransport};

use crate::{Harness, RawIo};

/// The QUIC harness.
pub fn harness() -> Arc<dyn Harness> {
    Arc::new(Quic)
}

struct Quic;

#[async_trait]
impl Harness for Quic {
    fn name(&self) -> &'static str {
        "quic"
    }

    fn transport(
        &self,
        keypair: Keypair,
        channel: ChannelConfig,
        limiter: SharedLimiter,
    ) -> Arc<dyn Transport> {
        let config = QuicConfig {
            channel,
            ..QuicConfig::default()
        };
        // Fails only if rcgen cannot build a certificate from a valid Ed25519 key.
        Arc::new(QuicTransport::with_limiter(keypair, config, limiter).expect("quic transport"))
    }

    fn listen_addr(&self) -> TransportAddress {
        "quic://127.0.0.1:0".parse().expect("valid address")
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
