//! The two in-process ends `perf` measures: a dialing and a listening transport of one
//! backend, each with its own identity, built with the backend's default settings and limits
//! off (a wss certificate is made for the run).

use std::sync::Arc;

use anyhow::{bail, Result};
use bitcraps_transport_ble::sim::{SimConfig, SimDeviceConfig, SimRadio};
use bitcraps_transport_ble::BleTransport;
use bitcraps_transport_core::{
    ChannelConfig, ConnectionLimits, Keypair, Transport, TransportAddress,
};
use bitcraps_transport_mem::{MemoryNetwork, MemoryTransport};
use bitcraps_transport_quic::{QuicConfig, QuicTransport};
use bitcraps_transport_tcp::{TcpConfig, TcpTransport};
use bitcraps_transport_udp::{UdpConfig, UdpTransport, DEFAULT_MAX_PAYLOAD, MAX_PAYLOAD_LIMIT};
use bitcraps_transport_ws::{WebSocketTransport, WsConfig};

use super::PerfTransport;

/// Both ends of the measured backend; `_keep` holds what the transports run on.
pub(super) struct Pair {
    pub(super) client: Arc<dyn Transport>,
    pub(super) server: Arc<dyn Transport>,
    pub(super) listen: TransportAddress,
    _keep: (Option<MemoryNetwork>, Option<SimRadio>),
}

pub(super) fn pair(kind: PerfTransport, size: usize) -> Result<Pair> {
    let channel = ChannelConfig {
        max_message_size: size.max(64 * 1024),
        ..ChannelConfig::default()
    };
    let limits = ConnectionLimits::unlimited();
    let (a, b) = (Keypair::generate(), Keypair::generate());
    let mut keep = (None, None);
    let (client, server, listen): (Arc<dyn Transport>, Arc<dyn Transport>, &str) = match kind {
        PerfTransport::Tcp => {
            let c = TcpConfig { channel, limits };
            (
                Arc::new(TcpTransport::with_config(a, c.clone())),
                Arc::new(TcpTransport::with_config(b, c)),
                "tcp://127.0.0.1:0",
            )
        }
        PerfTransport::Udp => {
            if size > MAX_PAYLOAD_LIMIT {
                bail!("udp carries one message per datagram: at most {MAX_PAYLOAD_LIMIT} bytes");
            }
            let c = UdpConfig {
                limits,
                max_payload: size.max(DEFAULT_MAX_PAYLOAD),
                ..UdpConfig::default()
            };
            (
                Arc::new(UdpTransport::with_config(a, c.clone())),
                Arc::new(UdpTransport::with_config(b, c)),
                "udp://127.0.0.1:0",
            )
        }
        PerfTransport::Quic => {
            let c = QuicConfig {
                channel,
                limits,
                ..QuicConfig::default()
            };
            (
                Arc::new(QuicTransport::with_config(a, c.clone())?),
                Arc::new(QuicTransport::with_config(b, c)?),
                "quic://127.0.0.1:0",
            )
        }
        PerfTransport::Ws | PerfTransport::Wss => {
            let mut c = WsConfig {
                channel,
                limits,
                ..WsConfig::default()
            };
            let mut s = c.clone();
            if kind == PerfTransport::Wss {
                let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()])?;
                let der = cert.cert.der().clone();
                let key = rustls_pki_types::PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der());
                s.tls_server = Some(WsConfig::tls_server_config(vec![der.clone()], key.into())?);
                c.tls_client = Some(WsConfig::tls_client_config([der])?);
            }
            (
                Arc::new(WebSocketTransport::with_config(a, c)),
                Arc::new(WebSocketTransport::with_config(b, s)),
                if kind == PerfTransport::Wss {
                    "wss://127.0.0.1:0/perf"
                } else {
                    "ws://127.0.0.1:0/perf"
                },
            )
        }
        PerfTransport::BleSim => {
            let radio = SimRadio::new(SimConfig::default());
            let c = Arc::new(radio.add_device(SimDeviceConfig::default()));
            let s = Arc::new(radio.add_device(SimDeviceConfig::default()));
            keep.1 = Some(radio);
            (
                Arc::new(BleTransport::new(c, a)),
                Arc::new(BleTransport::new(s, b)),
                "ble://local",
            )
        }
        PerfTransport::Memory => {
            let net = MemoryNetwork::new();
            let t = |k| {
                Arc::new(MemoryTransport::with_config(
                    &net,
                    k,
                    channel.clone(),
                    limits.clone(),
                ))
            };
            let (c, s) = (t(a), t(b));
            keep.0 = Some(net);
            (c, s, "memory://0")
        }
    };
    Ok(Pair {
        client,
        server,
        listen: listen.parse()?,
        _keep: keep,
    })
}
