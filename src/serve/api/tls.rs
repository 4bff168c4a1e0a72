//! The TLS side of the web config file: a rustls server configuration
//! (aws-lc-rs provider) from `tls_server_config`, with the client certificate
//! policy of `client_auth_type`. Built at start, where a bad certificate,
//! key or CA stops the daemon with a message naming the file, and again
//! for each changed reading of the file (`web.rs`).

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme};
use tokio_rustls::TlsAcceptor;

use crate::config::{ClientAuth, Pem, TlsSettings, TlsVersion};

/// The acceptor for `settings`: certificate chain and key, versions,
/// client certificates, and HTTP/1.1 announced by ALPN.
pub(super) fn acceptor(settings: &TlsSettings) -> Result<TlsAcceptor, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let versions: Vec<_> = [(TlsVersion::TLS12, &rustls::version::TLS12), (TlsVersion::TLS13, &rustls::version::TLS13)]
        .into_iter()
        .filter(|(v, _)| (settings.min_version..=settings.max_version).contains(v))
        .map(|(_, version)| version)
        .collect();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;
    let chain = certificates(&settings.cert, "cert_file")?;
    let key = private_key(&settings.key)?;
    let mut config = builder
        .with_client_cert_verifier(verifier(settings, &provider)?)
        .with_single_cert(chain, key)
        .map_err(|e| format!("tls_server_config: the certificate and key cannot be used together: {e}"))?;
    config.ignore_client_order = settings.prefer_server_order;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// How client certificates are asked for and checked.
fn verifier(settings: &TlsSettings, provider: &Arc<CryptoProvider>) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let auth = settings.client_auth;
    match auth {
        ClientAuth::NoClientCert => Ok(WebPkiClientVerifier::no_client_auth()),
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => Ok(Arc::new(Unverified {
            mandatory: auth.requires(),
            algorithms: provider.signature_verification_algorithms,
        })),
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            // The parser refuses a verifying policy without a CA.
            let ca = settings
                .client_ca
                .as_ref()
                .ok_or_else(|| format!("tls_server_config.client_auth_type {auth:?} needs client_ca_file"))?;
            let bad = |e: &dyn std::fmt::Display| format!("tls_server_config.client_ca_file {}: {e}", name(ca));
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca, "client_ca_file")? {
                roots.add(cert).map_err(|e| bad(&e))?;
            }
            let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let builder = if auth.requires() { builder } else { builder.allow_unauthenticated() };
            builder.build().map_err(|e| bad(&e))
        }
    }
}

/// The PEM certificates of `pem`, at least one.
fn certificates(pem: &Pem, key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read(pem, key)?;
    let bad = |why: String| format!("tls_server_config.{key} {}: {why}", name(pem));
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM certificates ({e})")))?;
    match certs.is_empty() {
        true => Err(bad("holds no PEM certificate".into())),
        false => Ok(certs),
    }
}

/// The first private key of `pem` (PKCS#8, PKCS#1 or SEC1).
fn private_key(pem: &Pem) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read(pem, "key_file")?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| format!("tls_server_config.key_file {}: no usable PEM private key ({e})", name(pem)))
}

fn read(pem: &Pem, key: &str) -> Result<Vec<u8>, String> {
    match pem {
        Pem::File(path) => {
            std::fs::read(path).map_err(|e| format!("tls_server_config.{key}: cannot read {}: {e}", path.display()))
        }
        Pem::Inline(text) => Ok(text.as_bytes().to_vec()),
    }
}

/// How an error names the PEM: its path, or "(inline)".
fn name(pem: &Pem) -> String {
    match pem {
        Pem::File(path) => path.display().to_string(),
        Pem::Inline(_) => "(inline)".into(),
    }
}

/// `RequestClientCert` and `RequireAnyClientCert`: a client certificate is
/// asked for (and required by the second) but not checked against any CA;
/// the client must still prove it holds the certificate's key. As insecure
/// as the exporter toolkit says: only for setups that check elsewhere.
#[derive(Debug)]
struct Unverified {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for Unverified {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
