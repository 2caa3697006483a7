//! [`WsConfig`] and the wire constants of the WebSocket mapping, plus helpers that build the
//! rustls configs (ring provider) from a certificate and key or a set of trusted roots.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use bitcraps_transport_core::{ChannelConfig, ConnectionLimits, Error};

/// The WebSocket subprotocol (`Sec-WebSocket-Protocol`) every bitcraps connection offers and
/// the listener requires.
pub const SUBPROTOCOL: &str = "bitcraps.v1";

/// The largest WebSocket message (and frame) payload a receiver accepts: 1 MiB. Bigger ones
/// are a protocol error (close 1009 from tungstenite, typed error to us).
///
/// This is a wire constant, not a setting: the messages carry a byte stream (the Noise
/// channel's length-prefixed records, each at most 65,535 + 4 bytes), so writers split their
/// batches to fit and the limit does not depend on the application's maximum message size.
/// Two peers with different [`ChannelConfig`]s still agree on it.
pub const MAX_WS_MESSAGE: usize = 1024 * 1024;

/// The largest WebSocket message payload our writers send: 64 KiB (a batch of records is cut
/// into messages of this size). Smaller than [`MAX_WS_MESSAGE`] on purpose: tungstenite's
/// buffers handle messages of this size without re-zeroing or shifting megabytes per
/// partial read or write, and it bounds what sits in the write queue.
pub const WRITE_CHUNK: usize = 64 * 1024;

// A full Noise record frame (length prefix + 65,535 bytes) fits in one message.
const _: () = assert!(MAX_WS_MESSAGE >= 65_535 + 4 && WRITE_CHUNK <= MAX_WS_MESSAGE);

/// The largest HTTP upgrade request head the listener reads before answering 431.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// Settings of a [`WebSocketTransport`](crate::WebSocketTransport).
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// Secure-channel and queue settings.
    pub channel: ChannelConfig,
    /// Connection limits (ignored when a shared limiter is given).
    pub limits: ConnectionLimits,
    /// The TLS server config used by `wss://` listeners; without it, `wss://` listen addresses
    /// are unsupported. See [`WsConfig::tls_server_config`].
    pub tls_server: Option<Arc<rustls::ServerConfig>>,
    /// The TLS client config used by `wss://` dials (its roots decide which servers are
    /// trusted); without it, `wss://` dial addresses are unsupported. See
    /// [`WsConfig::tls_client_config`].
    pub tls_client: Option<Arc<rustls::ClientConfig>>,
    /// tungstenite's read buffer per connection, in bytes (allocated when the upgrade
    /// completes). Default 64 KiB.
    pub read_buffer_size: usize,
    /// tungstenite's write buffer target per connection, in bytes. Default 128 KiB.
    pub write_buffer_size: usize,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            channel: ChannelConfig::default(),
            limits: ConnectionLimits::default(),
            tls_server: None,
            tls_client: None,
            read_buffer_size: 64 * 1024,
            write_buffer_size: 128 * 1024,
        }
    }
}

fn tls_error(context: &'static str, e: rustls::Error) -> Error {
    Error::backend("websocket", context, e)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl WsConfig {
    /// A rustls server config (ring provider, TLS 1.2 and 1.3) presenting `chain` and `key`.
    pub fn tls_server_config(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Arc<rustls::ServerConfig>, Error> {
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("tls server protocol versions", e))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| tls_error("tls server certificate", e))?;
        Ok(Arc::new(config))
    }

    /// A rustls client config (ring provider, TLS 1.2 and 1.3) trusting exactly `roots`.
    pub fn tls_client_config(
        roots: impl IntoIterator<Item = CertificateDer<'static>>,
    ) -> Result<Arc<rustls::ClientConfig>, Error> {
        let mut store = rustls::RootCertStore::empty();
        for root in roots {
            store
                .add(root)
                .map_err(|e| tls_error("tls client root", e))?;
        }
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("tls client protocol versions", e))?
            .with_root_certificates(store)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }

    /// The tungstenite settings: message and frame payloads capped at [`MAX_WS_MESSAGE`], the
    /// write buffer bounded (one buffer target plus one of our messages and a control frame),
    /// RFC 6455 masking enforced.
    pub(crate) fn websocket_config(&self) -> WebSocketConfig {
        let write = self.write_buffer_size;
        WebSocketConfig::default()
            .read_buffer_size(self.read_buffer_size.max(4096))
            .write_buffer_size(write)
            .max_write_buffer_size(write + WRITE_CHUNK + 1024)
            .max_message_size(Some(MAX_WS_MESSAGE))
            .max_frame_size(Some(MAX_WS_MESSAGE))
            .accept_unmasked_frames(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_fit_a_full_noise_record_and_bound_buffers() {
        let config = WsConfig::default().websocket_config();
        assert_eq!(config.max_message_size, Some(MAX_WS_MESSAGE));
        assert_eq!(config.max_frame_size, Some(MAX_WS_MESSAGE));
        assert!(config.max_write_buffer_size < 2 * MAX_WS_MESSAGE);
        assert!(!config.accept_unmasked_frames);
    }

    #[test]
    fn tls_helpers_accept_a_self_signed_certificate() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let der = CertificateDer::from(cert.cert.der().to_vec());
        let key = PrivateKeyDer::try_from(cert.key_pair.serialize_der()).unwrap();
        assert!(WsConfig::tls_server_config(vec![der.clone()], key).is_ok());
        assert!(WsConfig::tls_client_config([der]).is_ok());
        let garbage = CertificateDer::from(vec![1, 2, 3]);
        assert!(WsConfig::tls_client_config([garbage]).is_err());
    }
}
