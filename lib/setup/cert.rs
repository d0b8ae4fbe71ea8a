//! The instance's TLS server identity: a self-signed certificate and its key, made with
//! rcgen when missing (no openssl needed), and `control/ssl.env`, which the run scripts of
//! the TLS services export to sslserver (CERTFILE, KEYFILE; s/qmail's ssl.env).

use std::path::Path;

use super::{Owners, file, own, sysio};
use crate::fail::{Failure, Kind, Result};
use crate::ids::{Group, User};

/// The certificate, relative to the instance's home.
pub const CERT: &str = "control/servercert.pem";
/// Its private key (mode 0600).
pub const KEY: &str = "control/serverkey.pem";
/// The variables for sslserver.
pub const SSL_ENV: &str = "control/ssl.env";

/// The names the certificate is made for: `me`, then `localhost`, 127.0.0.1 and ::1.
pub fn names(me: &[u8]) -> Vec<String> {
    let mut v = vec![String::from_utf8_lossy(me).into_owned()];
    for n in ["localhost", "127.0.0.1", "::1"] {
        if !v.iter().any(|x| x.eq_ignore_ascii_case(n)) {
            v.push(n.to_string());
        }
    }
    v.retain(|n| !n.is_empty());
    v
}

/// A new self-signed certificate for `names` (the first is the common name) and its key,
/// both PEM.
pub fn self_signed(names: &[String]) -> Result<(String, String)> {
    let bad = |e: rcgen::Error| {
        Failure::temp(
            Kind::System,
            format!("unable to make a certificate for {}: {e}", names.join(" ")),
        )
    };
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(bad)?;
    let mut dn = rcgen::DistinguishedName::new();
    if let Some(cn) = names.first() {
        dn.push(rcgen::DnType::CommonName, cn.as_str());
    }
    params.distinguished_name = dn;
    let key = rcgen::KeyPair::generate().map_err(bad)?;
    let cert = params.self_signed(&key).map_err(bad)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes the certificate and key when either is missing (both are made again, so that
/// they match), then `control/ssl.env` when missing; sets owners and modes on every run.
/// The key belongs to root, who starts sslserver (the instance's account in a single-user
/// instance), mode 0600; sslengine reads it before it gives up root.
pub(super) fn install(home: &Path, me: &[u8], o: &Owners) -> Result<()> {
    let cert = home.join(CERT);
    let key = home.join(KEY);
    let missing = |p: &Path| std::fs::symlink_metadata(p).is_err();
    if missing(&cert) || missing(&key) {
        let (c, k) = self_signed(&names(me))?;
        for p in [&cert, &key] {
            if let Err(e) = std::fs::remove_file(p)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(sysio(p)(e));
            }
        }
        file(&key, k.as_bytes(), o, User::Root, Group::Qmail, 0o600)?;
        file(&cert, c.as_bytes(), o, User::Root, Group::Qmail, 0o644)?;
    } else {
        own(&key, o, User::Root, Group::Qmail, 0o600)?;
        own(&cert, o, User::Root, Group::Qmail, 0o644)?;
    }
    let env = format!(
        "# Exported to sslserver by the run scripts of the TLS services.\n\
         CERTFILE={}\nKEYFILE={}\n",
        cert.display(),
        key.display()
    );
    file(
        &home.join(SSL_ENV),
        env.as_bytes(),
        o,
        User::Root,
        Group::Qmail,
        0o644,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_put_me_first_and_skip_duplicates() {
        assert_eq!(
            names(b"mx.example.org"),
            ["mx.example.org", "localhost", "127.0.0.1", "::1"]
        );
        assert_eq!(names(b"localhost"), ["localhost", "127.0.0.1", "::1"]);
    }

    #[test]
    fn the_certificate_is_usable_by_rustls_for_every_name() {
        let (cert, key) = self_signed(&names(b"mx.example.org")).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        use rustls_pki_types::pem::PemObject;
        let der = rustls_pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        let k = rustls_pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
        let ee = webpki::EndEntityCert::try_from(&der).unwrap();
        for n in ["mx.example.org", "localhost", "127.0.0.1", "::1"] {
            let name = rustls_pki_types::ServerName::try_from(n).unwrap();
            ee.verify_is_valid_for_subject_name(&name).unwrap();
        }
        assert!(
            ee.verify_is_valid_for_subject_name(
                &rustls_pki_types::ServerName::try_from("other.example").unwrap()
            )
            .is_err()
        );
        let provider = rustls::crypto::ring::default_provider();
        let signer = provider.key_provider.load_private_key(k);
        assert!(signer.is_ok());
    }
}
