//! [`QuicTransport`]: the [`Transport`] implementation: listening endpoints, dials on one
//! lazily bound client endpoint per address family, and the stream opening both sides run.
//!
//! Stream opening (after the TLS handshake): the dialer opens the connection's one
//! bidirectional stream and writes the byte `0x01`; the listener, once it has admitted the
//! dialer's `PeerId` under its limits, answers `0x01`. Only then does the dial return. From
//! there on both directions carry frames: `u32` big-endian length, then the payload.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use bitcraps_transport_core::backend::new_connection;
use bitcraps_transport_core::policy::Direction;
use bitcraps_transport_core::{
    AdmissionGuard, Capabilities, Connection, ConnectionInfo, Error, Keypair, Listener, PeerId,
    ProtocolError, Result, SharedLimiter, Transport, TransportAddress, TransportKind,
};

use crate::codes::{dial_error, CLOSE_ABORT, CLOSE_PEER_MISMATCH, CLOSE_PROTOCOL};
use crate::listener::QuicListener;
use crate::tls::TlsIdentity;
use crate::{socket, QuicConfig};

/// The dialer's first byte on the message stream.
pub(crate) const STREAM_OPEN: u8 = 0x01;
/// The listener's answer once it admitted the dialer.
pub(crate) const STREAM_ACCEPT: u8 = 0x01;
/// Connection attempts quinn may hold before the accept loop takes them.
const MAX_INCOMING: usize = 1024;

/// What a transport's listeners, dials and connections share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) peer: PeerId,
    pub(crate) config: QuicConfig,
    pub(crate) limiter: SharedLimiter,
    pub(crate) tls: TlsIdentity,
    client_v4: Mutex<Option<quinn::Endpoint>>,
    client_v6: Mutex<Option<quinn::Endpoint>>,
}

/// The QUIC backend.
#[derive(Debug, Clone)]
pub struct QuicTransport {
    shared: Arc<Shared>,
}

fn setup_error(
    what: &'static str,
    e: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
) -> Error {
    Error::backend("quic", what, e)
}

impl QuicTransport {
    /// A QUIC transport with default settings and limits.
    pub fn new(keypair: Keypair) -> Result<Self> {
        Self::with_config(keypair, QuicConfig::default())
    }

    /// A QUIC transport with the given settings and its own limiter (from `config.limits`).
    pub fn with_config(keypair: Keypair, config: QuicConfig) -> Result<Self> {
        let limiter = SharedLimiter::new(config.limits.clone());
        Self::with_limiter(keypair, config, limiter)
    }

    /// A QUIC transport sharing `limiter` with other transports (`config.limits` is ignored).
    /// Fails only if the certificate cannot be built from the key (it always can for a valid
    /// Ed25519 key).
    pub fn with_limiter(
        keypair: Keypair,
        config: QuicConfig,
        limiter: SharedLimiter,
    ) -> Result<Self> {
        let local = crate::cert::local_certificate(&keypair)
            .map_err(|e| setup_error("building the certificate", e))?;
        let tls = TlsIdentity::new(local).map_err(|e| setup_error("loading the key", e))?;
        Ok(Self {
            shared: Arc::new(Shared {
                peer: keypair.peer_id(),
                config,
                limiter,
                tls,
                client_v4: Mutex::new(None),
                client_v6: Mutex::new(None),
            }),
        })
    }

    /// The limiter this transport consults.
    pub fn limiter(&self) -> &SharedLimiter {
        &self.shared.limiter
    }

    /// The settings.
    pub fn config(&self) -> &QuicConfig {
        &self.shared.config
    }

    fn socket_addr(addr: &TransportAddress) -> Result<SocketAddr> {
        match addr {
            TransportAddress::Quic(a) => Ok(*a),
            other => Err(Error::Unsupported(other.clone())),
        }
    }

    /// The client endpoint for `remote`'s address family, bound on first use.
    fn client_endpoint(&self, remote: SocketAddr) -> Result<quinn::Endpoint> {
        let (slot, bind): (_, SocketAddr) = if remote.is_ipv4() {
            (&self.shared.client_v4, ([0, 0, 0, 0], 0).into())
        } else {
            (&self.shared.client_v6, ([0u16; 8], 0).into())
        };
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(endpoint) = slot.as_ref() {
            return Ok(endpoint.clone());
        }
        let (socket, _) = socket::bind(bind).map_err(|e| Error::io("quic client bind", e))?;
        let endpoint = quinn::Endpoint::new_with_abstract_socket(
            quinn::EndpointConfig::default(),
            None,
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|e| Error::io("quic client endpoint", e))?;
        *slot = Some(endpoint.clone());
        Ok(endpoint)
    }

    fn server_config(&self) -> Result<quinn::ServerConfig> {
        let tls = self
            .shared
            .tls
            .server_config()
            .map_err(|e| setup_error("tls server config", e))?;
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
            .map_err(|e| setup_error("quic server config", e))?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        config.transport_config(self.shared.config.quinn_transport(1));
        config.migration(false);
        // Bounds the attempts quinn queues before the accept loop takes them.
        config.max_incoming(MAX_INCOMING);
        Ok(config)
    }

    /// How many of this transport's dials made a full TLS handshake since it was made (both
    /// certificates and signatures checked); the others resumed a session (protocol.md
    /// section 7). Dials that failed before the certificate check are not counted.
    pub fn full_handshakes(&self) -> u64 {
        self.shared.tls.full_handshakes()
    }

    /// One dial's quinn config and registration (see `sessions`).
    fn client_config(
        &self,
        expect: Option<PeerId>,
    ) -> Result<(quinn::ClientConfig, crate::sessions::Dial)> {
        let (tls, dial) = self.shared.tls.dial(expect);
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
            .map_err(|e| setup_error("quic client config", e))?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(self.shared.config.quinn_transport(0));
        Ok((config, dial))
    }

    async fn dial_inner(&self, remote: SocketAddr, expect: Option<PeerId>) -> Result<Connection> {
        let endpoint = self.client_endpoint(remote)?;
        let endpoint_addr = endpoint
            .local_addr()
            .map_err(|e| Error::io("quic local address", e))?;
        let (config, dial) = self.client_config(expect)?;
        let connecting = endpoint
            .connect_with(config, remote, &dial.server_name())
            .map_err(|e| setup_error("connect", e))?;
        let conn = match connecting.await {
            Ok(c) => c,
            Err(e) => {
                let actual = dial.slot().seen();
                return Err(match (expect, actual) {
                    (Some(expected), Some(actual)) if expected != actual => {
                        Error::PeerMismatch { expected, actual }
                    }
                    _ => dial_error(&e),
                });
            }
        };
        let mut close_guard = CloseOnDrop::new(&conn);
        let peer = self.shared.tls.remote_identity(&conn).map_err(|m| {
            conn.close(CLOSE_PROTOCOL, m.as_bytes());
            setup_error("handshake", m)
        })?;
        if let Some(expected) = expect.filter(|e| *e != peer) {
            // The verifier already refuses this; checked again before any application byte.
            conn.close(CLOSE_PEER_MISMATCH, b"peer mismatch");
            return Err(Error::PeerMismatch {
                expected,
                actual: peer,
            });
        }
        let guard = self
            .shared
            .limiter
            .admit(peer, Direction::Outbound)
            .inspect_err(|r| {
                let (code, reason) = crate::codes::encode_limit(r);
                conn.close(code, reason.as_bytes());
            })
            .map_err(Error::Limit)?;
        let opened = async {
            let (mut send, mut recv) = conn.open_bi().await.map_err(|e| dial_error(&e))?;
            send.write_all(&[STREAM_OPEN])
                .await
                .map_err(|e| stream_error(&conn, e.to_string()))?;
            let mut answer = [0u8; 1];
            if let Err(e) = recv.read_exact(&mut answer).await {
                return Err(stream_error(&conn, e.to_string()));
            }
            if answer[0] != STREAM_ACCEPT {
                conn.close(CLOSE_PROTOCOL, b"unknown stream answer");
                return Err(ProtocolError::Malformed("unknown stream answer").into());
            }
            Ok((send, recv))
        };
        match opened.await {
            Ok((send, recv)) => Ok({
                close_guard.disarm();
                start_connection(
                    &self.shared,
                    Established {
                        conn,
                        send,
                        recv,
                        peer,
                        guard,
                    },
                    true,
                    endpoint_addr,
                    (),
                )
            }),
            Err(e) => Err(e),
        }
    }
}

/// Closes a half-set-up connection (a failure or a timeout mid-setup) unless disarmed.
pub(crate) struct CloseOnDrop(Option<quinn::Connection>);

impl CloseOnDrop {
    pub(crate) fn new(conn: &quinn::Connection) -> Self {
        Self(Some(conn.clone()))
    }

    pub(crate) fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            conn.close(CLOSE_ABORT, b"connection setup failed");
        }
    }
}

/// The error for a failed stream opening: the connection's close reason if it was closed (a
/// remote limit refusal arrives this way), else `message`.
fn stream_error(conn: &quinn::Connection, message: String) -> Error {
    match conn.close_reason() {
        Some(reason) => dial_error(&reason),
        None => setup_error("opening the message stream", message),
    }
}

/// The source IP the kernel would use to reach `remote` from an endpoint bound to `bound`
/// (a `connect` on a throwaway UDP socket: no packet is sent).
fn source_ip_for(bound: SocketAddr, remote: SocketAddr) -> Option<std::net::IpAddr> {
    if !bound.ip().is_unspecified() {
        return Some(bound.ip());
    }
    let probe = std::net::UdpSocket::bind(SocketAddr::new(bound.ip(), 0)).ok()?;
    probe.connect(remote).ok()?;
    probe.local_addr().ok().map(|a| a.ip())
}

/// A connection whose identity was proven and admitted, with its open message stream.
pub(crate) struct Established {
    pub(crate) conn: quinn::Connection,
    pub(crate) send: quinn::SendStream,
    pub(crate) recv: quinn::RecvStream,
    pub(crate) peer: PeerId,
    pub(crate) guard: AdmissionGuard,
}

/// Builds the user's connection and spawns its driver.
/// `hold` is kept until the connection ends.
pub(crate) fn start_connection<H: Send + 'static>(
    shared: &Shared,
    established: Established,
    outbound: bool,
    endpoint_addr: SocketAddr,
    hold: H,
) -> Connection {
    let Established {
        conn,
        send,
        recv,
        peer,
        guard,
    } = established;
    // The endpoint may be bound to a wildcard address: prefer the IP the packets arrived on
    // (listeners), else the source IP the routing table picks for the remote (dialers).
    let local_ip = conn
        .local_ip()
        .or_else(|| source_ip_for(endpoint_addr, conn.remote_address()))
        .unwrap_or(endpoint_addr.ip());
    let info = ConnectionInfo {
        local_peer: shared.peer,
        remote_peer: peer,
        local_addr: TransportAddress::Quic(SocketAddr::new(local_ip, endpoint_addr.port())),
        remote_addr: TransportAddress::Quic(conn.remote_address()),
        kind: TransportKind::Quic,
        outbound,
    };
    let (connection, io) = new_connection(info, &shared.config.channel);
    crate::driver::spawn(conn, send, recv, io, (guard, hold));
    connection
}

#[async_trait]
impl Transport for QuicTransport {
    fn kind(&self) -> TransportKind {
        TransportKind::Quic
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::reliable(self.shared.config.channel.max_message_size)
    }

    fn local_peer_id(&self) -> PeerId {
        self.shared.peer
    }

    fn supports(&self, addr: &TransportAddress) -> bool {
        matches!(addr, TransportAddress::Quic(_))
    }

    async fn listen(&self, addr: &TransportAddress) -> Result<Box<dyn Listener>> {
        let bind = Self::socket_addr(addr)?;
        let (socket, dropped) = socket::bind(bind).map_err(|e| Error::io("quic bind", e))?;
        let local = quinn::AsyncUdpSocket::local_addr(&*socket)
            .map_err(|e| Error::io("quic local address", e))?;
        let endpoint = quinn::Endpoint::new_with_abstract_socket(
            quinn::EndpointConfig::default(),
            Some(self.server_config()?),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|e| Error::io("quic endpoint", e))?;
        tracing::info!(address = %local, "quic listening");
        Ok(Box::new(QuicListener::spawn(
            endpoint,
            dropped,
            TransportAddress::Quic(local),
            self.shared.clone(),
        )))
    }

    async fn dial(&self, addr: &TransportAddress, expect: Option<PeerId>) -> Result<Connection> {
        let remote = Self::socket_addr(addr)?;
        let timeout = self.shared.config.channel.handshake_timeout;
        self.shared
            .limiter
            .guard_dial(
                addr,
                timeout,
                "quic dial and handshake",
                self.dial_inner(remote, expect),
            )
            .await
    }
}
