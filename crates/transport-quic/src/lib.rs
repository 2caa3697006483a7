//! # bitcraps-transport-quic
//!
//! QUIC on quinn 0.11 and rustls 0.23 (ring), with the node's Ed25519 identity bound into the
//! TLS certificate: every connection proves both sides' [`PeerId`] in the TLS 1.3 handshake,
//! and a dial that expected another identity fails with
//! [`Error::PeerMismatch`](bitcraps_transport_core::Error::PeerMismatch) before any
//! application byte is accepted.
//!
//! Wire summary (details in each module's docs):
//! - TLS 1.3 only, ALPN `bitcraps/1` required, mutual authentication; each side's certificate
//!   is self-signed by its Ed25519 identity key, whose public key is the `PeerId` (see
//!   [`peer_id_from_certificate`]). No CA, no host name check. A dial that expects a peer it
//!   reached before resumes the TLS session (one ticket per connection; no 0-RTT).
//! - One bidirectional stream per connection, opened by the dialer with the byte `0x01` and
//!   answered `0x01` by the listener once the limits admitted the dialer; then frames of a
//!   `u32` big-endian length and the payload, both ways.
//! - Graceful close: FIN both ways, then CONNECTION_CLOSE with code 0 and the reason.
//!   Limit refusals close with code `0x10 + limit id`, the core's limit ids (see [`codes`]).
//! - Keep-alive and idle timeout: see [`QuicConfig`].
//!
//! ```no_run
//! # async fn run() -> bitcraps_transport_core::Result<()> {
//! use bitcraps_transport_core::{Keypair, Listener, Transport};
//! use bitcraps_transport_quic::QuicTransport;
//!
//! let server = QuicTransport::new(Keypair::generate())?;
//! let mut listener = server.listen(&"quic://127.0.0.1:0".parse()?).await?;
//! let addr = listener.local_addr().clone();
//! let client = QuicTransport::new(Keypair::generate())?;
//! let conn = client.dial(&addr, Some(server.local_peer_id())).await?;
//! let mut accepted = listener.accept_connection().await?;
//! conn.send("bet 5 on 7".into()).await?;
//! assert_eq!(accepted.recv().await?.as_deref(), Some(&b"bet 5 on 7"[..]));
//! # Ok(()) }
//! ```

mod cert;
pub mod codes;
mod config;
mod driver;
mod listener;
mod reader;
mod sessions;
mod socket;
mod tls;
mod transport;
mod verified;

#[cfg(test)]
mod resumption_tests;

pub use cert::{peer_id_from_certificate, pkcs8_der, self_signed_certificate, CertError};
pub use config::QuicConfig;
pub use listener::QuicListener;
pub use tls::ALPN;
pub use transport::QuicTransport;
