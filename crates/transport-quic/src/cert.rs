//! The node's TLS certificate, and the check that turns a remote certificate into a [`PeerId`].
//!
//! Wire format: one X.509 v3 certificate, self-signed with the node's Ed25519 identity key.
//! Its SubjectPublicKeyInfo is `id-Ed25519` (OID 1.3.101.112, no parameters) with the 32-byte
//! public key, which *is* the node's `PeerId`; the certificate signature is `id-Ed25519` too,
//! made by that same key. Nothing else in the certificate (names, validity, extensions) is
//! checked or trusted. The TLS 1.3 CertificateVerify signature (checked by the verifiers in
//! `tls`) proves that the remote holds the key; the self-signature is checked here.
//!
//! The parser below is a bounded, allocation-free DER walk: every length is checked against
//! the bytes that remain before it is used.

use bitcraps_transport_core::{Keypair, PeerId};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The fixed PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410): the 32-byte seed follows.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The DER encoding of the `id-Ed25519` object identifier's content (1.3.101.112).
const OID_ED25519: [u8; 3] = [0x2b, 0x65, 0x70];

const TAG_SEQUENCE: u8 = 0x30;
const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OID: u8 = 0x06;
const TAG_VERSION: u8 = 0xa0;

/// Why a remote certificate was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The DER structure is malformed (truncated, bad length, wrong tag, trailing bytes).
    #[error("malformed certificate: {0}")]
    Malformed(&'static str),
    /// The subject key or the signature algorithm is not Ed25519.
    #[error("the certificate is not an Ed25519 certificate")]
    NotEd25519,
    /// The public key is not a valid Ed25519 point.
    #[error("the certificate's Ed25519 key is invalid")]
    BadKey,
    /// The certificate is not signed by its own key.
    #[error("the certificate is not self-signed by its key")]
    BadSelfSignature,
}

/// The node's certificate and private key, in the forms rustls takes.
#[derive(Debug)]
pub(crate) struct LocalCertificate {
    pub(crate) cert: CertificateDer<'static>,
    pub(crate) key: PrivatePkcs8KeyDer<'static>,
}

impl LocalCertificate {
    pub(crate) fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

/// The PKCS#8 v1 DER encoding of `keypair`'s Ed25519 secret seed.
pub fn pkcs8_der(keypair: &Keypair) -> Vec<u8> {
    let mut der = Vec::with_capacity(PKCS8_ED25519_PREFIX.len() + 32);
    der.extend_from_slice(&PKCS8_ED25519_PREFIX);
    der.extend_from_slice(&keypair.secret_bytes());
    der
}

/// Builds the self-signed certificate of `keypair` (see the module docs for its format).
pub fn self_signed_certificate(
    keypair: &Keypair,
) -> Result<(CertificateDer<'static>, PrivatePkcs8KeyDer<'static>), rcgen::Error> {
    let key = PrivatePkcs8KeyDer::from(pkcs8_der(keypair));
    let signing = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&key, &rcgen::PKCS_ED25519)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "bitcraps");
    let cert = params.self_signed(&signing)?;
    Ok((cert.der().clone(), key))
}

pub(crate) fn local_certificate(keypair: &Keypair) -> Result<LocalCertificate, rcgen::Error> {
    let (cert, key) = self_signed_certificate(keypair)?;
    Ok(LocalCertificate { cert, key })
}

/// Checks a remote end-entity certificate and returns the [`PeerId`] it binds: its subject key
/// must be Ed25519 and it must be self-signed by that key.
pub fn peer_id_from_certificate(der: &[u8]) -> Result<PeerId, CertError> {
    let mut outer = Reader::new(der);
    let cert = outer.expect(TAG_SEQUENCE, "certificate")?;
    outer.finish("bytes after the certificate")?;
    let mut cert = Reader::new(cert.content);
    let tbs = cert.expect(TAG_SEQUENCE, "tbsCertificate")?;
    let signature_algorithm = cert.expect(TAG_SEQUENCE, "signatureAlgorithm")?;
    let signature = cert.expect(TAG_BIT_STRING, "signature")?;
    cert.finish("bytes after the signature")?;
    expect_ed25519_algorithm(signature_algorithm.content)?;
    let signature: [u8; 64] = bit_string_bytes(signature.content)?
        .try_into()
        .map_err(|_| CertError::Malformed("the signature is not 64 bytes"))?;

    let mut fields = Reader::new(tbs.content);
    if fields.peek_tag() == Some(TAG_VERSION) {
        fields.next("version")?;
    }
    fields.expect(TAG_INTEGER, "serialNumber")?;
    let inner_algorithm = fields.expect(TAG_SEQUENCE, "signature")?;
    expect_ed25519_algorithm(inner_algorithm.content)?;
    fields.expect(TAG_SEQUENCE, "issuer")?;
    fields.expect(TAG_SEQUENCE, "validity")?;
    fields.expect(TAG_SEQUENCE, "subject")?;
    let spki = fields.expect(TAG_SEQUENCE, "subjectPublicKeyInfo")?;
    let mut spki = Reader::new(spki.content);
    let key_algorithm = spki.expect(TAG_SEQUENCE, "algorithm")?;
    let key = spki.expect(TAG_BIT_STRING, "subjectPublicKey")?;
    spki.finish("bytes after the subject key")?;
    expect_ed25519_algorithm(key_algorithm.content)?;
    let key: [u8; 32] = bit_string_bytes(key.content)?
        .try_into()
        .map_err(|_| CertError::NotEd25519)?;

    let peer = PeerId::from_bytes(key).map_err(|_| CertError::BadKey)?;
    if !peer.verify(tbs.whole, &signature) {
        return Err(CertError::BadSelfSignature);
    }
    Ok(peer)
}

/// An AlgorithmIdentifier's content must be exactly the Ed25519 OID (no parameters).
fn expect_ed25519_algorithm(content: &[u8]) -> Result<(), CertError> {
    let mut r = Reader::new(content);
    let oid = r.expect(TAG_OID, "algorithm")?;
    if oid.content != OID_ED25519 || !r.is_empty() {
        return Err(CertError::NotEd25519);
    }
    Ok(())
}

/// A BIT STRING with no unused bits, without its leading unused-bits byte.
fn bit_string_bytes(content: &[u8]) -> Result<&[u8], CertError> {
    match content.split_first() {
        Some((0, rest)) => Ok(rest),
        _ => Err(CertError::Malformed("bit string with unused bits")),
    }
}

/// One DER element.
struct Element<'a> {
    tag: u8,
    content: &'a [u8],
    /// Tag, length and content.
    whole: &'a [u8],
}

/// A cursor over DER elements.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    fn finish(&self, what: &'static str) -> Result<(), CertError> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(CertError::Malformed(what))
        }
    }

    fn expect(&mut self, tag: u8, what: &'static str) -> Result<Element<'a>, CertError> {
        let element = self.next(what)?;
        if element.tag != tag {
            return Err(CertError::Malformed(what));
        }
        Ok(element)
    }

    fn next(&mut self, what: &'static str) -> Result<Element<'a>, CertError> {
        let data = self.data;
        let [tag, first, rest @ ..] = data else {
            return Err(CertError::Malformed(what));
        };
        if tag & 0x1f == 0x1f {
            return Err(CertError::Malformed("multi-byte tag"));
        }
        let (len, header) = if first & 0x80 == 0 {
            (usize::from(*first), 2)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return Err(CertError::Malformed(what));
            }
            let len = rest[..count]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, 2 + count)
        };
        if len > data.len() - header {
            return Err(CertError::Malformed(what));
        }
        let end = header + len;
        self.data = &data[end..];
        Ok(Element {
            tag: *tag,
            content: &data[header..end],
            whole: &data[..end],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_certificate_yields_own_peer_id() {
        let keypair = Keypair::generate();
        let (cert, _) = self_signed_certificate(&keypair).unwrap();
        assert_eq!(peer_id_from_certificate(&cert).unwrap(), keypair.peer_id());
    }

    #[test]
    fn pkcs8_is_prefix_and_seed() {
        let keypair = Keypair::from_secret_bytes([7; 32]);
        let der = pkcs8_der(&keypair);
        assert_eq!(der.len(), 48);
        assert_eq!(&der[16..], &[7; 32]);
    }

    #[test]
    fn certificate_signed_by_another_key_is_refused() {
        let subject = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let issuer_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let issuer = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&issuer_key)
            .unwrap();
        let cert = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .signed_by(&subject, &issuer, &issuer_key)
            .unwrap();
        assert_eq!(
            peer_id_from_certificate(cert.der()),
            Err(CertError::BadSelfSignature)
        );
    }

    #[test]
    fn non_ed25519_certificate_is_refused() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert_eq!(
            peer_id_from_certificate(cert.der()),
            Err(CertError::NotEd25519)
        );
    }

    #[test]
    fn every_truncation_and_bit_flip_is_refused_without_panicking() {
        let keypair = Keypair::generate();
        let (cert, _) = self_signed_certificate(&keypair).unwrap();
        let der = cert.as_ref();
        for len in 0..der.len() {
            assert!(
                peer_id_from_certificate(&der[..len]).is_err(),
                "prefix {len}"
            );
        }
        for i in 0..der.len() {
            let mut flipped = der.to_vec();
            flipped[i] ^= 0x01;
            // A flip may land in an unchecked field (e.g. a name), but then the
            // self-signature no longer verifies: every flip must be refused.
            assert!(peer_id_from_certificate(&flipped).is_err(), "flip at {i}");
        }
        let mut long = der.to_vec();
        long.push(0);
        assert!(peer_id_from_certificate(&long).is_err());
    }

    #[test]
    fn huge_length_prefixes_are_refused() {
        assert!(peer_id_from_certificate(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(peer_id_from_certificate(&[0x30, 0x80]).is_err());
        assert!(peer_id_from_certificate(&[0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9]).is_err());
    }
}
