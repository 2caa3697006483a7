//! TLS material for `wss://`: `--tls-cert FILE --tls-key FILE` (PEM certificate chain and
//! private key, for listening) and `--tls-ca FILE` (PEM certificates to trust, for dialing),
//! read with `rustls-pki-types`' PEM parser into the WebSocket backend's rustls configs.
//!
//! TLS only protects the hop (and gets through proxies); the remote's identity is always
//! proven by the Noise handshake inside, whatever certificate it presents.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use bitcraps_transport_core::ChannelConfig;
use bitcraps_transport_ws::WsConfig;
use clap::Args;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// TLS options for `wss://` addresses.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct TlsArgs {
    /// PEM certificate chain to present on wss:// listeners (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// PEM root certificate(s) to trust when dialing wss:// addresses.
    #[arg(long, value_name = "FILE")]
    pub(crate) tls_ca: Option<PathBuf>,
}

/// Every certificate in the PEM file at `path` (at least one).
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("read certificates from {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parse certificates in {}", path.display()))?;
    ensure!(!certs.is_empty(), "no certificate in {}", path.display());
    Ok(certs)
}

/// The WebSocket backend's settings: `channel`, plus the TLS configs the options ask for.
pub(crate) fn ws_config(channel: ChannelConfig, tls: &TlsArgs) -> Result<WsConfig> {
    let mut config = WsConfig {
        channel,
        ..WsConfig::default()
    };
    if let (Some(cert), Some(key)) = (&tls.tls_cert, &tls.tls_key) {
        let chain = certificates(cert)?;
        let key = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("read the private key in {}", key.display()))?;
        config.tls_server =
            Some(WsConfig::tls_server_config(chain, key).context("--tls-cert/--tls-key")?);
    }
    if let Some(ca) = &tls.tls_ca {
        let roots = certificates(ca)?;
        config.tls_client = Some(WsConfig::tls_client_config(roots).context("--tls-ca")?);
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, contents: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bitcraps-node-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn pem_files_become_tls_configs() {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let tls = TlsArgs {
            tls_cert: Some(temp("a.crt", &cert.cert.pem())),
            tls_key: Some(temp("a.key", &cert.key_pair.serialize_pem())),
            tls_ca: Some(temp("a.ca", &cert.cert.pem())),
        };
        let config = ws_config(ChannelConfig::default(), &tls).unwrap();
        assert!(config.tls_server.is_some() && config.tls_client.is_some());
        let none = ws_config(ChannelConfig::default(), &TlsArgs::default()).unwrap();
        assert!(none.tls_server.is_none() && none.tls_client.is_none());
    }

    #[test]
    fn files_without_pem_are_refused() {
        let bad = TlsArgs {
            tls_ca: Some(temp("b.ca", "not a certificate")),
            ..TlsArgs::default()
        };
        let err = ws_config(ChannelConfig::default(), &bad).unwrap_err();
        assert!(err.to_string().contains("no certificate"), "{err:#}");
        let missing = TlsArgs {
            tls_ca: Some(PathBuf::from("/nonexistent/ca.pem")),
            ..TlsArgs::default()
        };
        assert!(ws_config(ChannelConfig::default(), &missing).is_err());
    }
}
