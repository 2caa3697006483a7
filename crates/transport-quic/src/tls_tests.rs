//! Hostile certificates, end to end through quinn: a certificate whose key is not the one
//! that signs the handshake, and an Ed25519 certificate signed by another key, are refused on
//! both sides; the same harness with an honest certificate connects (so the checks can fail).

use std::sync::Arc;

use bitcraps_transport_core::{ConnectionLimits, Inbound, Keypair, SharedLimiter, Transport};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

use super::*;
use crate::cert::{pkcs8_der, self_signed_certificate};
use crate::{QuicConfig, QuicTransport};

const GUARD: std::time::Duration = std::time::Duration::from_secs(20);

fn server() -> QuicTransport {
    let config = QuicConfig {
        limits: ConnectionLimits::unlimited(),
        ..QuicConfig::default()
    };
    QuicTransport::with_limiter(Keypair::generate(), config, SharedLimiter::unlimited()).unwrap()
}

fn certified(cert: CertificateDer<'static>, signer: &Keypair) -> Arc<CertifiedKey> {
    let key = PrivatePkcs8KeyDer::from(pkcs8_der(signer));
    let key = rustls::crypto::ring::sign::any_eddsa_type(&key).unwrap();
    Arc::new(CertifiedKey::new(vec![cert], key))
}

/// A certificate for `subject`'s key, signed by `issuer`'s key.
fn cert_signed_by_other(subject: &Keypair, issuer: &Keypair) -> CertificateDer<'static> {
    let load = |k: &Keypair| {
        let der = PrivatePkcs8KeyDer::from(pkcs8_der(k));
        rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_ED25519).unwrap()
    };
    let (subject_key, issuer_key) = (load(subject), load(issuer));
    let issuer_cert = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&issuer_key)
        .unwrap();
    rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .signed_by(&subject_key, &issuer_cert, &issuer_key)
        .unwrap()
        .der()
        .clone()
}

/// A raw quinn client endpoint presenting `client_cert`, expecting `server`, and the dial
/// registration whose server name it must connect with.
fn raw_client(
    server: &QuicTransport,
    client_cert: Arc<CertifiedKey>,
) -> (quinn::Endpoint, quinn::ClientConfig, Dial) {
    let dials = Arc::<Dials>::default();
    let verifier = Arc::new(ServerVerifier {
        dials: dials.clone(),
        verified: Arc::default(),
        full_handshakes: Arc::default(),
    });
    let tls = client_config(&provider(), verifier, &client_cert, dials.clone()).unwrap();
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let dial = dials.register(Some(server.local_peer_id()));
    (endpoint, quinn::ClientConfig::new(Arc::new(crypto)), dial)
}

/// Dials `server`'s listener presenting `client_cert` and returns whether the message stream
/// was accepted, and the listener's report.
async fn attack(client_cert: Arc<CertifiedKey>) -> (bool, Inbound, u64) {
    let server = server();
    let mut listener = server
        .listen(&"quic://127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().socket_addr().unwrap();
    let (endpoint, config, dial) = raw_client(&server, client_cert);
    let attempt = async {
        let conn = endpoint
            .connect_with(config, addr, &dial.server_name())
            .unwrap()
            .await
            .ok()?;
        let (mut send, mut recv) = conn.open_bi().await.ok()?;
        send.write_all(&[crate::transport::STREAM_OPEN])
            .await
            .ok()?;
        let mut answer = [0u8; 1];
        recv.read_exact(&mut answer).await.ok()?;
        Some(answer[0] == crate::transport::STREAM_ACCEPT)
    };
    let (accepted, report) =
        tokio::time::timeout(GUARD, async { tokio::join!(attempt, listener.accept()) })
            .await
            .expect("attack hung");
    (
        accepted == Some(true),
        report.unwrap(),
        listener.stats().failed_handshakes,
    )
}

#[tokio::test]
async fn honest_certificate_is_accepted_by_the_harness() {
    let me = Keypair::generate();
    let (cert, _) = self_signed_certificate(&me).unwrap();
    let (accepted, report, failed) = attack(certified(cert, &me)).await;
    assert!(accepted);
    match report {
        Inbound::Connection(c) => assert_eq!(c.remote_peer(), me.peer_id()),
        other => panic!("expected a connection, got {other:?}"),
    }
    assert_eq!(failed, 0);
}

#[tokio::test]
async fn certificate_for_another_key_than_the_signer_is_refused() {
    let claimed = Keypair::generate();
    let signer = Keypair::generate();
    let (cert, _) = self_signed_certificate(&claimed).unwrap();
    let (accepted, report, failed) = attack(certified(cert, &signer)).await;
    assert!(!accepted);
    assert_refused(report, "BadSignature");
    assert_eq!(failed, 1);
}

fn assert_refused(report: Inbound, why: &str) {
    match report {
        Inbound::Refused { error, .. } => {
            let text = error.to_string();
            assert!(text.contains(why), "{text}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn certificate_signed_by_another_key_is_refused() {
    let me = Keypair::generate();
    let issuer = Keypair::generate();
    let cert = cert_signed_by_other(&me, &issuer);
    let (accepted, report, failed) = attack(certified(cert, &me)).await;
    assert!(!accepted);
    assert_refused(report, "BadSelfSignature");
    assert_eq!(failed, 1);
}

/// Presents one certificate to every client that sends no SNI.
#[derive(Debug)]
struct ServerCert(Arc<CertifiedKey>);

impl rustls::server::ResolvesServerCert for ServerCert {
    fn resolve(&self, hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // protocol.md section 7: the dialer sends no SNI (its server name only finds the dial
        // locally). A hello carrying one gets no certificate, so every dial here would fail.
        hello.server_name().is_none().then(|| self.0.clone())
    }
}

/// A raw quinn listener presenting `cert` (and answering the stream opening), dialed by a
/// real transport.
async fn dial_raw_server(
    cert: Arc<CertifiedKey>,
) -> Result<bitcraps_transport_core::Connection, bitcraps_transport_core::Error> {
    dial_raw_server_expecting(cert, None).await.0
}

/// [`dial_raw_server`] with the dial expecting `expect`; also returns how the raw server's
/// handshake ended when it failed (the close the dialer sent).
async fn dial_raw_server_expecting(
    cert: Arc<CertifiedKey>,
    expect: Option<bitcraps_transport_core::PeerId>,
) -> (
    Result<bitcraps_transport_core::Connection, bitcraps_transport_core::Error>,
    Option<quinn::ConnectionError>,
) {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(Arc::new(ClientVerifier {
            verified: Arc::default(),
        }))
        .with_cert_resolver(Arc::new(ServerCert(cert)));
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).unwrap();
    let endpoint = quinn::Endpoint::server(
        quinn::ServerConfig::with_crypto(Arc::new(crypto)),
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let addr = endpoint.local_addr().unwrap();
    let serve = endpoint.clone();
    let (failed_tx, mut failed_rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        while let Some(incoming) = serve.accept().await {
            let failed_tx = failed_tx.clone();
            tokio::spawn(async move {
                let conn = match incoming.await {
                    Ok(conn) => conn,
                    Err(e) => {
                        let _ = failed_tx.send(e).await;
                        return None;
                    }
                };
                let (mut send, mut recv) = conn.accept_bi().await.ok()?;
                let mut first = [0u8; 1];
                recv.read_exact(&mut first).await.ok()?;
                send.write_all(&[crate::transport::STREAM_ACCEPT])
                    .await
                    .ok()?;
                conn.closed().await;
                Some(())
            });
        }
    });
    let client = server();
    let result = tokio::time::timeout(
        GUARD,
        client.dial(
            &bitcraps_transport_core::TransportAddress::Quic(addr),
            expect,
        ),
    )
    .await
    .expect("dial hung");
    let server_failure = if result.is_err() {
        tokio::time::timeout(GUARD, failed_rx.recv())
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    endpoint.close(0u32.into(), b"");
    (result, server_failure)
}

#[tokio::test]
async fn a_peer_mismatch_is_the_tls_alert_access_denied_on_the_wire() {
    // protocol.md section 7: the listener sees CONNECTION_CLOSE with transport error
    // 0x0100 + 49 (access_denied), not an application close code.
    let me = Keypair::generate();
    let (cert, _) = self_signed_certificate(&me).unwrap();
    let other = Keypair::generate().peer_id();
    let (result, server) = dial_raw_server_expecting(certified(cert, &me), Some(other)).await;
    assert!(
        matches!(
            result,
            Err(bitcraps_transport_core::Error::PeerMismatch { .. })
        ),
        "{result:?}"
    );
    assert_alert(server, 0x0131);
}

/// The dial failed in the TLS handshake (not by a timeout or anything else).
fn assert_tls_refusal(
    result: Result<bitcraps_transport_core::Connection, bitcraps_transport_core::Error>,
    why: &str,
) {
    match result {
        Err(bitcraps_transport_core::Error::Handshake(
            bitcraps_transport_core::HandshakeError::Tls(message),
        )) => {
            assert!(message.contains(why), "{message}");
        }
        other => panic!("expected a TLS refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn honest_raw_server_is_accepted_by_the_harness() {
    let me = Keypair::generate();
    let (cert, _) = self_signed_certificate(&me).unwrap();
    let conn = dial_raw_server(certified(cert, &me)).await.unwrap();
    assert_eq!(conn.remote_peer(), me.peer_id());
}

#[tokio::test]
async fn server_certificate_for_another_key_than_the_signer_is_refused() {
    let claimed = Keypair::generate();
    let signer = Keypair::generate();
    let (cert, _) = self_signed_certificate(&claimed).unwrap();
    let (result, server) = dial_raw_server_expecting(certified(cert, &signer), None).await;
    assert_tls_refusal(result, "BadSignature");
    // protocol.md section 7: decrypt_error (51) on the wire.
    assert_alert(server, 0x0133);
}

/// The raw server's handshake ended with the TLS alert transport error `code`.
fn assert_alert(server: Option<quinn::ConnectionError>, code: u64) {
    match server {
        Some(quinn::ConnectionError::ConnectionClosed(close)) => {
            assert_eq!(u64::from(close.error_code), code, "{close:?}");
        }
        other => panic!("expected a TLS alert close, got {other:?}"),
    }
}

#[tokio::test]
async fn server_certificate_signed_by_another_key_is_refused() {
    let me = Keypair::generate();
    let issuer = Keypair::generate();
    let cert = certified(cert_signed_by_other(&me, &issuer), &me);
    let (result, server) = dial_raw_server_expecting(cert, None).await;
    assert_tls_refusal(result, "BadSelfSignature");
    // protocol.md section 7: certificate_unknown (46) on the wire.
    assert_alert(server, 0x012e);
}

#[tokio::test(start_paused = true)]
async fn a_dialer_that_never_opens_the_stream_times_out_on_the_listener() {
    let config = QuicConfig {
        limits: ConnectionLimits::unlimited(),
        channel: bitcraps_transport_core::ChannelConfig {
            handshake_timeout: std::time::Duration::from_secs(2),
            ..Default::default()
        },
        ..QuicConfig::default()
    };
    let server =
        QuicTransport::with_limiter(Keypair::generate(), config, SharedLimiter::unlimited())
            .unwrap();
    let mut listener = server
        .listen(&"quic://127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().socket_addr().unwrap();
    let me = Keypair::generate();
    let (cert, _) = self_signed_certificate(&me).unwrap();
    let (endpoint, client_config, dial) = raw_client(&server, certified(cert, &me));
    let conn = endpoint
        .connect_with(client_config, addr, &dial.server_name())
        .unwrap()
        .await
        .unwrap();
    // The TLS handshake is done; the stream is never opened.
    let report = tokio::time::timeout(GUARD, listener.accept())
        .await
        .expect("listener hung")
        .unwrap();
    match report {
        Inbound::Refused { error, .. } => assert!(
            matches!(error, bitcraps_transport_core::Error::Timeout { .. }),
            "{error:?}"
        ),
        other => panic!("expected a timeout, got {other:?}"),
    }
    // The listener closed the half-open connection.
    let closed = tokio::time::timeout(GUARD, conn.closed()).await.unwrap();
    assert!(
        matches!(closed, quinn::ConnectionError::ApplicationClosed(_)),
        "{closed:?}"
    );
    assert_eq!(listener.stats().failed_handshakes, 1);
}
