//! rustls configuration: TLS 1.3 only, ALPN `bitcraps/1`, mutual authentication with
//! self-signed Ed25519 certificates (see `cert`), and the two custom verifiers.
//!
//! There is no CA and no host name: each verifier accepts a certificate exactly when it is a
//! well-formed Ed25519 certificate self-signed by its own key, and the TLS 1.3 handshake
//! signature (CertificateVerify) is checked for the `ed25519` scheme only, with the same strict
//! Ed25519 verification as the self-signature. The client's verifier
//! (one per transport) finds the `PeerId` a dial expects, if any, through the dial's server
//! name, fails the handshake on any other key, and records the key it saw so the dial reports
//! `Error::PeerMismatch`. A listener issues one session ticket per connection, and a dial that
//! expects a `PeerId` resumes a session whose full handshake proved that peer (see
//! `sessions`); a dial that expects nobody always makes a full handshake. No 0-RTT. In a full
//! handshake both certificates and both handshake signatures are checked (a certificate whose
//! self-signature was checked before is recognised by its bytes, see `verified`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bitcraps_transport_core::PeerId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, Resumption};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::cert::LocalCertificate;
use crate::sessions::{Dial, Dials};
use crate::verified::{Verified, VerifiedCertificates};

/// The ALPN protocol id both sides require.
pub const ALPN: &[u8] = b"bitcraps/1";

/// The ring provider every config uses (built once per transport).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Checks the TLS 1.3 CertificateVerify signature, Ed25519 only, with the key of `cert` (a
/// certificate the verifier accepted earlier in this handshake, so known to `verified`), by
/// the same strict Ed25519 verification as the certificate's self-signature.
fn verify_signature(
    verified: &VerifiedCertificates,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    if dss.scheme != SignatureScheme::ED25519 {
        return Err(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
    }
    let key = certificate_identity(verified, cert, &[])?.key;
    let bad = || rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature);
    let signature: &[u8; 64] = dss.signature().try_into().map_err(|_| bad())?;
    let signature = ed25519_dalek::Signature::from_bytes(signature);
    match key.verify_strict(message, &signature) {
        Ok(()) => Ok(HandshakeSignatureValid::assertion()),
        Err(_) => Err(bad()),
    }
}

fn check_certificate(
    verified: &VerifiedCertificates,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Result<PeerId, rustls::Error> {
    certificate_identity(verified, end_entity, intermediates).map(|v| v.peer)
}

fn certificate_identity(
    verified: &VerifiedCertificates,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Result<Verified, rustls::Error> {
    if !intermediates.is_empty() {
        return Err(rustls::Error::General(
            "a bitcraps certificate chain has exactly one certificate".into(),
        ));
    }
    verified.identity(end_entity).map_err(|e| {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
            Arc::new(e),
        )))
    })
}

/// The dialers' verifier of the listener's certificate, one per transport (rustls resumes a
/// session only with the verifier that made it); each dial's expectation is found by its
/// server name (see `sessions`).
#[derive(Debug)]
pub(crate) struct ServerVerifier {
    pub(crate) dials: Arc<Dials>,
    pub(crate) verified: Arc<VerifiedCertificates>,
    /// Counts the full handshakes of the transport's dials (a resumed one never gets here).
    full_handshakes: Arc<AtomicU64>,
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.full_handshakes.fetch_add(1, Ordering::Relaxed);
        let Some(dial) = self.dials.slot(server_name) else {
            return Err(rustls::Error::General(
                "no dial in flight uses this name".into(),
            ));
        };
        let peer = check_certificate(&self.verified, end_entity, intermediates)?;
        dial.record(peer);
        match dial.expect {
            Some(expected) if expected != peer => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(&self.verified, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// The listener's verifier of the dialer's certificate (mandatory).
#[derive(Debug)]
struct ClientVerifier {
    verified: Arc<VerifiedCertificates>,
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        check_certificate(&self.verified, end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(&self.verified, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// Presents the node's one certificate to every server.
#[derive(Debug)]
pub(crate) struct ClientCert(pub(crate) Arc<CertifiedKey>);

impl ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        sigschemes
            .contains(&SignatureScheme::ED25519)
            .then(|| self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The node's TLS material, prepared once per transport.
#[derive(Debug)]
pub(crate) struct TlsIdentity {
    local: LocalCertificate,
    provider: Arc<CryptoProvider>,
    verified: Arc<VerifiedCertificates>,
    /// Encrypts the listener's session tickets (a key of this transport, rotated by rustls).
    ticketer: Arc<dyn rustls::server::ProducesTickets>,
    /// The dials in flight and the sessions they may resume.
    dials: Arc<Dials>,
    /// The one client config of all dials (see [`ServerVerifier`]).
    client: Arc<rustls::ClientConfig>,
    full_handshakes: Arc<AtomicU64>,
}

impl TlsIdentity {
    pub(crate) fn new(local: LocalCertificate) -> Result<Self, rustls::Error> {
        let key = rustls::crypto::ring::sign::any_eddsa_type(&local.key)?;
        let certified = Arc::new(CertifiedKey::new(vec![local.cert.clone()], key));
        let provider = provider();
        let verified = Arc::<VerifiedCertificates>::default();
        let dials = Arc::<Dials>::default();
        let full_handshakes = Arc::<AtomicU64>::default();
        let verifier = Arc::new(ServerVerifier {
            dials: dials.clone(),
            verified: verified.clone(),
            full_handshakes: full_handshakes.clone(),
        });
        let client = client_config(&provider, verifier, &certified, dials.clone())?;
        Ok(Self {
            local,
            provider,
            verified,
            ticketer: rustls::crypto::ring::Ticketer::new()?,
            dials,
            client: Arc::new(client),
            full_handshakes,
        })
    }

    /// The listener's rustls config.
    pub(crate) fn server_config(&self) -> Result<rustls::ServerConfig, rustls::Error> {
        let verifier = Arc::new(ClientVerifier {
            verified: self.verified.clone(),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.local.cert.clone()], self.local.key_der())?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        // One ticket per connection: the next dial resumes with it (each is usable once).
        config.send_tls13_tickets = 1;
        config.ticketer = self.ticketer.clone();
        config.max_early_data_size = 0;
        Ok(config)
    }

    /// The rustls config of every dial, and the dial's registration, which names the dial and
    /// holds its expectation (`connect_with` must use [`Dial::server_name`]).
    pub(crate) fn dial(&self, expect: Option<PeerId>) -> (Arc<rustls::ClientConfig>, Dial) {
        (self.client.clone(), self.dials.register(expect))
    }

    /// How many of this transport's dials made a full handshake (the others resumed).
    pub(crate) fn full_handshakes(&self) -> u64 {
        self.full_handshakes.load(Ordering::Relaxed)
    }

    /// The remote's identity on an established quinn connection, and a check that ALPN was
    /// agreed.
    pub(crate) fn remote_identity(&self, conn: &quinn::Connection) -> Result<PeerId, &'static str> {
        remote_identity(conn, &self.verified)
    }
}

/// The dialers' rustls config: the shared verifier and certificate, sessions resumed through
/// `dials`, no SNI (the server name only finds the dial, see `sessions`), no 0-RTT.
pub(crate) fn client_config(
    provider: &Arc<CryptoProvider>,
    verifier: Arc<ServerVerifier>,
    certified: &Arc<CertifiedKey>,
    dials: Arc<Dials>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(Arc::new(ClientCert(certified.clone())));
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.enable_sni = false;
    config.resumption = Resumption::store(dials);
    config.enable_early_data = false;
    Ok(config)
}

/// See [`TlsIdentity::remote_identity`]; the certificate was checked by a verifier during the
/// handshake, so `verified` normally answers from its memo.
fn remote_identity(
    conn: &quinn::Connection,
    verified: &VerifiedCertificates,
) -> Result<PeerId, &'static str> {
    let alpn_ok = conn
        .handshake_data()
        .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .is_some_and(|d| d.protocol.as_deref() == Some(ALPN));
    if !alpn_ok {
        return Err("the remote did not agree on ALPN bitcraps/1");
    }
    let certs = conn
        .peer_identity()
        .and_then(|i| i.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or("the remote presented no certificate")?;
    match certs.as_slice() {
        [cert] => verified
            .peer_id(cert)
            .map_err(|_| "the remote's certificate is invalid"),
        _ => Err("the remote must present exactly one certificate"),
    }
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
