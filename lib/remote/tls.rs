//! The TLS client side of qmail-remote with rustls (ring provider): the client
//! configuration for a destination, one certificate verifier for every level of
//! `control/tlsdestinations` and for DANE, and the handshake over a blocking socket.
//!
//! The verifier notes why it refused a certificate, so that the report can say it in
//! s/qmail's words; signatures in the handshake are always checked by the provider.

use std::io;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
    SignatureScheme, StreamOwned,
};

use super::dane;
use super::tlsdest::Roots;
use crate::dns::Tlsa;

/// What the server's certificate must satisfy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// Nothing: encryption only.
    Nothing,
    /// A valid chain to the roots; the name is not checked.
    Chain,
    /// A valid chain and the host name (wildcards allowed).
    Name,
    /// A valid chain and a certificate name equal to the host.
    ExactName,
    /// The end certificate's digest (SHA-1, SHA-224, SHA-256 or SHA-512 by length).
    Pin(Vec<u8>),
    /// DANE: one of these usable TLSA records must match.
    Dane(Vec<Tlsa>),
}

/// Why a handshake did not give a usable connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trouble {
    /// The client certificate file could not be loaded.
    Cert(PathBuf),
    /// The client key could not be loaded.
    Key(PathBuf),
    /// The client key does not belong to the certificate.
    KeyMismatch(PathBuf),
    /// The CA file (first) or directory (second) could not be loaded.
    Ca(String, String),
    /// The configuration could not be built.
    Context,
    /// The handshake failed for another reason (protocol, I/O, timeout).
    Handshake,
    /// The chain did not verify.
    Verify,
    /// The chain verified but the name did not match.
    Name,
    /// The pinned fingerprint did not match.
    Fingerprint,
    /// A pinned fingerprint of a length no digest has.
    Digest,
    /// No usable TLSA record matched.
    Dane,
}

/// Everything a TLS connection to one server needs.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The certificate check.
    pub check: Check,
    /// The roots for chain checks.
    pub roots: Roots,
    /// The name checked by [`Check::Name`] and [`Check::ExactName`].
    pub host: String,
    /// The name sent as SNI (the MX host or relay), when it is a DNS name.
    pub sni: Option<String>,
    /// DANE-TA reference names: the TLSA base domain, then the next-hop domain.
    pub dane_names: Vec<String>,
    /// A client certificate and key (PEM files).
    pub client: Option<(PathBuf, PathBuf)>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn ca_trouble(r: &Roots) -> Trouble {
    match r {
        Roots::File(f) => Trouble::Ca(f.display().to_string(), String::new()),
        Roots::Dir(d) => Trouble::Ca(String::new(), d.display().to_string()),
        Roots::Public => Trouble::Ca(String::new(), String::new()),
    }
}

fn load_roots(r: &Roots) -> Result<RootCertStore, Trouble> {
    let mut store = RootCertStore::empty();
    let files: Vec<PathBuf> = match r {
        Roots::Public => {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            return Ok(store);
        }
        Roots::File(f) => vec![f.clone()],
        Roots::Dir(d) => std::fs::read_dir(d)
            .map_err(|_| ca_trouble(r))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
    };
    for f in files {
        let certs = CertificateDer::pem_file_iter(&f).map_err(|_| ca_trouble(r))?;
        for c in certs.flatten() {
            let _ = store.add(c);
        }
    }
    if store.is_empty() {
        return Err(ca_trouble(r));
    }
    Ok(store)
}

#[derive(Debug)]
struct Verifier {
    check: Check,
    host: String,
    dane_names: Vec<String>,
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    failure: Arc<Mutex<Option<Trouble>>>,
}

impl Verifier {
    fn fail(&self, t: Trouble) -> rustls::Error {
        if let Ok(mut f) = self.failure.lock() {
            *f = Some(t);
        }
        rustls::Error::General("certificate refused".into())
    }

    fn chain(
        &self,
        ee: &CertificateDer<'_>,
        rest: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        let v = self
            .webpki
            .as_ref()
            .ok_or_else(|| self.fail(Trouble::Verify))?;
        let name = ServerName::try_from(self.host.clone()).unwrap_or_else(|_| unreachable_name());
        match v.verify_server_cert(ee, rest, &name, &[], now) {
            Ok(_) => Ok(()),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => {
                if self.check == Check::Chain {
                    Ok(())
                } else {
                    Err(self.fail(Trouble::Name))
                }
            }
            Err(_) => Err(self.fail(Trouble::Verify)),
        }
    }
}

fn unreachable_name() -> ServerName<'static> {
    ServerName::IpAddress(std::net::Ipv4Addr::UNSPECIFIED.into())
}

/// Whether the certificate names `host` itself (no wildcard).
fn names_exactly(ee: &CertificateDer<'_>, host: &str) -> bool {
    webpki::EndEntityCert::try_from(ee)
        .is_ok_and(|c| c.valid_dns_names().any(|n| n.eq_ignore_ascii_case(host)))
}

/// The digest of `der` with the algorithm a fingerprint of `len` bytes implies.
pub fn fingerprint(der: &[u8], len: usize) -> Option<Vec<u8>> {
    use sha2::Digest;
    Some(match len {
        20 => ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der)
            .as_ref()
            .to_vec(),
        28 => sha2::Sha224::digest(der).to_vec(),
        32 => ring::digest::digest(&ring::digest::SHA256, der)
            .as_ref()
            .to_vec(),
        64 => ring::digest::digest(&ring::digest::SHA512, der)
            .as_ref()
            .to_vec(),
        _ => return None,
    })
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        ee: &CertificateDer<'_>,
        rest: &[CertificateDer<'_>],
        _name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.check {
            Check::Nothing => {}
            Check::Chain | Check::Name => self.chain(ee, rest, now)?,
            Check::ExactName => {
                self.chain(ee, rest, now)?;
                if !names_exactly(ee, &self.host) {
                    return Err(self.fail(Trouble::Name));
                }
            }
            Check::Pin(want) => match fingerprint(ee.as_ref(), want.len()) {
                None => return Err(self.fail(Trouble::Digest)),
                Some(got) if &got != want => return Err(self.fail(Trouble::Fingerprint)),
                Some(_) => {}
            },
            Check::Dane(records) => {
                if !dane::verify(records, ee, rest, &self.dane_names, now, &self.provider) {
                    return Err(self.fail(Trouble::Dane));
                }
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn client_auth(
    b: rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>,
    client: Option<&(PathBuf, PathBuf)>,
) -> Result<ClientConfig, Trouble> {
    let Some((cert, key)) = client else {
        return Ok(b.with_no_client_auth());
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|_| Trouble::Cert(cert.clone()))?
        .collect::<Result<_, _>>()
        .map_err(|_| Trouble::Cert(cert.clone()))?;
    if chain.is_empty() {
        return Err(Trouble::Cert(cert.clone()));
    }
    let k = PrivateKeyDer::from_pem_file(key).map_err(|_| Trouble::Key(key.clone()))?;
    b.with_client_auth_cert(chain, k)
        .map_err(|_| Trouble::KeyMismatch(key.clone()))
}

/// A TLS stream over a socket.
pub type Stream = StreamOwned<ClientConnection, TcpStream>;

/// Runs the client handshake on `tcp` (whose timeouts bound it).
///
/// # Errors
/// The [`Trouble`] that stopped it.
pub fn handshake(setup: &Setup, tcp: TcpStream) -> Result<Stream, Trouble> {
    let provider = provider();
    let failure = Arc::new(Mutex::new(None));
    let webpki = match setup.check {
        Check::Chain | Check::Name | Check::ExactName => {
            let roots = load_roots(&setup.roots)?;
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|_| Trouble::Context)?,
            )
        }
        _ => None,
    };
    let verifier = Verifier {
        check: setup.check.clone(),
        host: setup.host.clone(),
        dane_names: setup.dane_names.clone(),
        webpki,
        provider: provider.clone(),
        failure: failure.clone(),
    };
    let b = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| Trouble::Context)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let cfg = client_auth(b, setup.client.as_ref())?;
    let name = setup
        .sni
        .clone()
        .and_then(|n| ServerName::try_from(n).ok())
        .or_else(|| {
            tcp.peer_addr()
                .ok()
                .map(|a| ServerName::IpAddress(a.ip().into()))
        })
        .ok_or(Trouble::Context)?;
    let conn = ClientConnection::new(Arc::new(cfg), name).map_err(|_| Trouble::Context)?;
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        if let Err(e) = s.conn.complete_io(&mut s.sock) {
            return Err(why(&failure, &e));
        }
    }
    Ok(s)
}

fn why(failure: &Mutex<Option<Trouble>>, _e: &io::Error) -> Trouble {
    failure
        .lock()
        .ok()
        .and_then(|mut f| f.take())
        .unwrap_or(Trouble::Handshake)
}

/// Whether a PEM file can be read at all (for early, clear reports).
pub fn readable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_lengths_choose_the_digest() {
        let der = b"certificate bytes";
        assert_eq!(fingerprint(der, 20).map(|d| d.len()), Some(20));
        assert_eq!(fingerprint(der, 28).map(|d| d.len()), Some(28));
        assert_eq!(fingerprint(der, 32).map(|d| d.len()), Some(32));
        assert_eq!(fingerprint(der, 64).map(|d| d.len()), Some(64));
        assert_eq!(fingerprint(der, 16), None);
        assert_ne!(fingerprint(der, 32), fingerprint(b"other", 32));
    }

    #[test]
    fn dane_records_match_certificates_and_keys() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["mx.example.org".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = CertificateDer::from(cert.der().to_vec());
        let spki = rustls::server::ParsedCertificate::try_from(&der)
            .unwrap()
            .subject_public_key_info()
            .as_ref()
            .to_vec();
        let sha256 = |b: &[u8]| {
            ring::digest::digest(&ring::digest::SHA256, b)
                .as_ref()
                .to_vec()
        };
        let rec = |usage, selector, matching, data| Tlsa {
            usage,
            selector,
            matching,
            data,
        };
        let provider = provider();
        let now = UnixTime::now();
        let names = vec!["mx.example.org".to_string()];
        for (t, want) in [
            (rec(3, 1, 1, sha256(&spki)), true),
            (rec(3, 0, 1, sha256(der.as_ref())), true),
            (rec(3, 0, 0, der.as_ref().to_vec()), true),
            (rec(3, 1, 0, spki.clone()), true),
            (rec(3, 1, 1, vec![0; 32]), false),
            (rec(1, 1, 1, sha256(&spki)), false),
            (rec(2, 0, 1, sha256(der.as_ref())), true),
        ] {
            let got = dane::verify(std::slice::from_ref(&t), &der, &[], &names, now, &provider);
            assert_eq!(got, want, "{t:?}");
        }
        let other = vec!["other.example.org".to_string()];
        let ta = rec(2, 0, 1, sha256(der.as_ref()));
        assert!(
            !dane::verify(&[ta], &der, &[], &other, now, &provider),
            "DANE-TA checks names"
        );
    }
}
