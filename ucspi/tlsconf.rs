//! rustls configurations for sslserver's engine and for sslclient, built from ucspi-ssl's
//! environment variables and options. The crypto provider is always ring.
//!
//! Differences from OpenSSL that an operator sees, all documented in sslserver(1):
//! `DHFILE` is accepted and ignored (rustls uses only ECDHE); `CIPHERS` restricts the suites
//! only when it names some (OpenSSL or IANA names), otherwise rustls's safe defaults apply;
//! TLS 1.0 and 1.1 are not offered; encrypted private keys are not supported.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, ring};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CipherSuite, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore,
    ServerConfig, SignatureScheme, SupportedCipherSuite,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use sqmail::fail::{Failure, Kind};

/// The largest certificate, key or CA file read (bytes).
pub const MAX_PEM_FILE: u64 = 1 << 20;
/// The most files read from a CA directory.
pub const MAX_CADIR_FILES: usize = 1000;

fn fatal(what: impl Into<String>) -> Failure {
    Failure::temp(Kind::Config, what)
}

fn read_pem(path: &str) -> Result<Vec<u8>, Failure> {
    let f = std::fs::File::open(path).map_err(|e| Failure::temp_io(Kind::Config, path, e))?;
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_PEM_FILE), &mut buf)
        .map_err(|e| Failure::temp_io(Kind::Config, path, e))?;
    Ok(buf)
}

/// The certificates in a PEM file, in file order.
///
/// # Errors
/// Temporary, when the file cannot be read or holds no certificate.
pub fn certs(path: &str) -> Result<Vec<CertificateDer<'static>>, Failure> {
    let pem = read_pem(path)?;
    let list: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if list.is_empty() {
        return Err(fatal(format!("no certificate in {path}")));
    }
    Ok(list)
}

/// The first private key in a PEM file.
///
/// # Errors
/// Temporary, when there is none (encrypted keys count as none).
pub fn key(path: &str) -> Result<PrivateKeyDer<'static>, Failure> {
    let pem = read_pem(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
        fatal(format!(
            "unable to load key: no unencrypted private key in {path}"
        ))
    })
}

/// Adds the certificates of a file, or of every file in a directory, to a store.
fn add_roots(store: &mut RootCertStore, path: &str, dir: bool) -> Result<(), Failure> {
    if !dir {
        for c in certs(path)? {
            store
                .add(c)
                .map_err(|e| fatal(format!("bad CA certificate in {path}: {e}")))?;
        }
        return Ok(());
    }
    let rd = std::fs::read_dir(path).map_err(|e| Failure::temp_io(Kind::Config, path, e))?;
    for entry in rd.take(MAX_CADIR_FILES).flatten() {
        let p = entry.path();
        if let Some(s) = p.to_str()
            && p.is_file()
            && let Ok(list) = certs(s)
        {
            store.add_parsable_certificates(list);
        }
    }
    Ok(())
}

/// The ring provider, its cipher suites narrowed by a `CIPHERS`-style list.
pub fn provider(ciphers: Option<&str>) -> Arc<CryptoProvider> {
    let mut p = ring::default_provider();
    if let Some(list) = ciphers {
        let wanted: Vec<&str> = list
            .split([':', ',', ' '])
            .filter(|w| !w.is_empty() && !w.starts_with(['!', '-', '+']))
            .collect();
        let named = |s: &SupportedCipherSuite| {
            let (openssl, _) = suite_name(s.suite());
            wanted
                .iter()
                .any(|w| *w == openssl || *w == format!("{:?}", s.suite()))
        };
        let keep12 = p
            .cipher_suites
            .iter()
            .any(|s| s.tls13().is_none() && named(s));
        let keep13 = p
            .cipher_suites
            .iter()
            .any(|s| s.tls13().is_some() && named(s));
        p.cipher_suites.retain(|s| {
            let v13 = s.tls13().is_some();
            (v13 && !keep13) || (!v13 && !keep12) || named(s)
        });
    }
    Arc::new(p)
}

/// OpenSSL's name for a cipher suite and its key size in bits.
pub fn suite_name(s: CipherSuite) -> (String, u32) {
    let (n, bits) = match s {
        CipherSuite::TLS13_AES_256_GCM_SHA384 => ("TLS_AES_256_GCM_SHA384", 256),
        CipherSuite::TLS13_AES_128_GCM_SHA256 => ("TLS_AES_128_GCM_SHA256", 128),
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => ("TLS_CHACHA20_POLY1305_SHA256", 256),
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => {
            ("ECDHE-ECDSA-AES256-GCM-SHA384", 256)
        }
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => {
            ("ECDHE-ECDSA-AES128-GCM-SHA256", 128)
        }
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => {
            ("ECDHE-ECDSA-CHACHA20-POLY1305", 256)
        }
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => ("ECDHE-RSA-AES256-GCM-SHA384", 256),
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => ("ECDHE-RSA-AES128-GCM-SHA256", 128),
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => {
            ("ECDHE-RSA-CHACHA20-POLY1305", 256)
        }
        other => return (format!("{other:?}"), 0),
    };
    (n.to_string(), bits)
}

/// When sslserver asks for a client certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientCert {
    /// `-Z` (default): never.
    Ignore,
    /// `-m`: require a valid one, no name check.
    Mail,
    /// `-z`: require a valid one whose names match the client's host name when known.
    Host,
}

/// What sslserver's engine reads from its environment to build its TLS configuration.
#[derive(Clone, Debug, Default)]
pub struct ServerFiles {
    /// `CERTCHAINFILE` (wins over `CERTFILE`).
    pub certchainfile: Option<String>,
    /// `CERTFILE`.
    pub certfile: Option<String>,
    /// `KEYFILE`; unset or empty: the key is in the certificate file.
    pub keyfile: Option<String>,
    /// `CAFILE`: trust anchors for client certificates.
    pub cafile: Option<String>,
    /// `CADIR`: more trust anchors, one or more per file.
    pub cadir: Option<String>,
    /// `CCAFILE`: the CAs named in the certificate request (also trusted); `-` disables.
    pub ccafile: Option<String>,
    /// `CIPHERS`.
    pub ciphers: Option<String>,
    /// `VERIFYDEPTH`: most intermediate certificates a client may present (default 1).
    pub verifydepth: usize,
}

fn nonempty(name: &str) -> Option<String> {
    sqmail::env::var(name)
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .filter(|v| !v.is_empty())
}

impl ServerFiles {
    /// Reads the variables.
    pub fn from_env() -> ServerFiles {
        ServerFiles {
            certchainfile: nonempty("CERTCHAINFILE"),
            certfile: nonempty("CERTFILE"),
            keyfile: nonempty("KEYFILE"),
            cafile: nonempty("CAFILE"),
            cadir: nonempty("CADIR"),
            ccafile: nonempty("CCAFILE"),
            ciphers: nonempty("CIPHERS"),
            verifydepth: nonempty("VERIFYDEPTH")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
        }
    }
}

/// A client verifier that also bounds the number of intermediates (`VERIFYDEPTH`).
#[derive(Debug)]
struct Depth {
    inner: Arc<dyn ClientCertVerifier>,
    max: usize,
}

impl ClientCertVerifier for Depth {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }
    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        ee: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if intermediates.len() > self.max {
            return Err(rustls::Error::General(
                "certificate chain longer than VERIFYDEPTH".into(),
            ));
        }
        self.inner.verify_client_cert(ee, intermediates, now)
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Builds sslserver's configuration. A client certificate is requested and required when
/// `want` is not [`ClientCert::Ignore`] or `$CCAVERIFY` is set, unless `CCAFILE` is `-`.
///
/// # Errors
/// Temporary (exit 111): a file cannot be read, the key does not match, no CA is given
/// while client certificates are required.
pub fn server_config(
    f: &ServerFiles,
    want: ClientCert,
    ccaverify: bool,
) -> Result<Arc<ServerConfig>, Failure> {
    let p = provider(f.ciphers.as_deref());
    let builder = ServerConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| fatal(format!("unable to create SSL context: {e}")))?;
    let request = (want != ClientCert::Ignore || ccaverify) && f.ccafile.as_deref() != Some("-");
    let builder = if request {
        let mut roots = RootCertStore::empty();
        for (path, dir) in [(&f.cafile, false), (&f.ccafile, false), (&f.cadir, true)] {
            if let Some(path) = path {
                add_roots(&mut roots, path, dir)?;
            }
        }
        if roots.is_empty() {
            return Err(fatal("unable to load CA list: no CAFILE, CCAFILE or CADIR"));
        }
        let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), p)
            .build()
            .map_err(|e| fatal(format!("unable to load client CA list: {e}")))?;
        let depth = Arc::new(Depth {
            inner: v,
            max: f.verifydepth.max(1),
        });
        builder.with_client_cert_verifier(depth)
    } else {
        builder.with_no_client_auth()
    };
    let (chain_path, chain_file) = match (&f.certchainfile, &f.certfile) {
        (Some(c), _) => (c.as_str(), true),
        (None, Some(c)) => (c.as_str(), false),
        (None, None) => return Err(fatal("unable to load certificate: CERTFILE is not set")),
    };
    let chain = certs(chain_path).map_err(|e| fatal(format!("unable to load certificate: {e}")))?;
    let key_path = f.keyfile.as_deref().unwrap_or(chain_path);
    let key = key(key_path)?;
    let mut cfg = match builder
        .clone()
        .with_single_cert(chain.clone(), key.clone_key())
    {
        Ok(c) => c,
        Err(rustls::Error::InconsistentKeys(_)) if chain_file => {
            // ucspi-ssl's CERTCHAINFILE lists the root first and the host last.
            let mut rev = chain;
            rev.reverse();
            builder
                .with_single_cert(rev, key)
                .map_err(|e| fatal(format!("key does not match certificate: {e}")))?
        }
        Err(e) => return Err(fatal(format!("key does not match certificate: {e}"))),
    };
    cfg.ignore_client_order = false;
    Ok(Arc::new(cfg))
}

/// How sslclient checks the server.
#[derive(Clone, Debug, Default)]
pub struct ClientSettings {
    /// `-a`: trust anchors file (a public CA bundle or a pinned private CA).
    pub cafile: Option<String>,
    /// `-A`: trust anchors directory.
    pub cadir: Option<String>,
    /// `-c`: client certificate chain.
    pub certfile: Option<String>,
    /// `-k`: its key (default: in the certificate file).
    pub keyfile: Option<String>,
    /// `-z`: cipher list.
    pub ciphers: Option<String>,
    /// `-X`: do not verify the server at all.
    pub no_verify: bool,
    /// `-N`: verify the chain but not the host name.
    pub no_name_check: bool,
}

/// Accepts whatever the server presents, but still checks its handshake signatures (`-X`),
/// or verifies the chain and ignores a name mismatch (`-N`).
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        ee: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.chain {
            None => Ok(ServerCertVerified::assertion()),
            Some(v) => match v.verify_server_cert(ee, intermediates, name, ocsp, now) {
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. },
                )) => Ok(ServerCertVerified::assertion()),
                other => other,
            },
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            m,
            c,
            d,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            m,
            c,
            d,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Builds sslclient's configuration.
///
/// # Errors
/// Temporary (exit 111): unreadable files, no trust anchor while verifying, a key that
/// does not match.
pub fn client_config(s: &ClientSettings) -> Result<Arc<ClientConfig>, Failure> {
    let p = provider(s.ciphers.as_deref());
    let builder = ClientConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| fatal(format!("unable to create SSL context: {e}")))?;
    let mut roots = RootCertStore::empty();
    if let Some(a) = &s.cafile {
        add_roots(&mut roots, a, false)?;
    }
    if let Some(d) = &s.cadir {
        add_roots(&mut roots, d, true)?;
    }
    let builder = if s.no_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Lenient {
                chain: None,
                provider: p,
            }))
    } else {
        if roots.is_empty() {
            return Err(fatal(
                "unable to load CA list: give -a cafile or -A cadir, or -X",
            ));
        }
        let v = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), p.clone())
            .build()
            .map_err(|e| fatal(format!("unable to load CA list: {e}")))?;
        if s.no_name_check {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Lenient {
                    chain: Some(v),
                    provider: p,
                }))
        } else {
            builder.with_webpki_verifier(v)
        }
    };
    let cfg = match &s.certfile {
        Some(c) => {
            let chain = certs(c)?;
            let k = key(s.keyfile.as_deref().unwrap_or(c))?;
            builder
                .with_client_auth_cert(chain, k)
                .map_err(|e| fatal(format!("key does not match certificate: {e}")))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}
