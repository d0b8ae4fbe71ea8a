//! DANE for SMTP (RFC 7672) over TLSA records (RFC 6698): which records are usable and
//! whether a server's certificate chain matches them. Pure: certificates and records in,
//! a verdict out; the handshake hook lives in [`super::tls`].
//!
//! Usable records are DANE-TA(2) and DANE-EE(3) with selector 0 (certificate) or 1
//! (SubjectPublicKeyInfo) and matching type 0 (exact), 1 (SHA-256) or 2 (SHA-512); the
//! rest (PKIX-TA, PKIX-EE, unknown values) are ignored. DANE-EE ignores names and dates;
//! DANE-TA makes the matching certificate of the chain the only trust anchor and checks
//! the chain and one of the reference names.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use crate::dns::Tlsa;

/// DANE-TA: a trust anchor.
pub const USAGE_DANE_TA: u8 = 2;
/// DANE-EE: the server's own certificate.
pub const USAGE_DANE_EE: u8 = 3;

/// True when a record can be used for SMTP DANE.
pub fn usable(t: &Tlsa) -> bool {
    matches!(t.usage, USAGE_DANE_TA | USAGE_DANE_EE)
        && matches!(t.selector, 0 | 1)
        && match t.matching {
            0 => !t.data.is_empty(),
            1 => t.data.len() == 32,
            2 => t.data.len() == 64,
            _ => false,
        }
}

/// The usable records of an RRset.
pub fn usable_records(all: &[Tlsa]) -> Vec<Tlsa> {
    all.iter().filter(|t| usable(t)).cloned().collect()
}

/// Whether `cert` (DER) matches the selector and matching type of `t`.
pub fn matches(t: &Tlsa, cert: &CertificateDer<'_>) -> bool {
    let selected: Vec<u8> = match t.selector {
        0 => cert.as_ref().to_vec(),
        1 => match rustls::server::ParsedCertificate::try_from(cert) {
            Ok(p) => p.subject_public_key_info().as_ref().to_vec(),
            Err(_) => return false,
        },
        _ => return false,
    };
    match t.matching {
        0 => selected == t.data,
        1 => ring::digest::digest(&ring::digest::SHA256, &selected).as_ref() == t.data.as_slice(),
        2 => ring::digest::digest(&ring::digest::SHA512, &selected).as_ref() == t.data.as_slice(),
        _ => false,
    }
}

/// Checks a presented chain (`ee` first, then `rest`) against usable `records`;
/// `names` are the reference identifiers for DANE-TA (the TLSA base domain first).
pub fn verify(
    records: &[Tlsa],
    ee: &CertificateDer<'_>,
    rest: &[CertificateDer<'_>],
    names: &[String],
    now: UnixTime,
    provider: &Arc<CryptoProvider>,
) -> bool {
    for t in records.iter().filter(|t| usable(t)) {
        if t.usage == USAGE_DANE_EE {
            if matches(t, ee) {
                return true;
            }
            continue;
        }
        for anchor in rest.iter().chain(std::iter::once(ee)) {
            if matches(t, anchor) && chain_ok(anchor, ee, rest, names, now, provider) {
                return true;
            }
        }
    }
    false
}

fn chain_ok(
    anchor: &CertificateDer<'_>,
    ee: &CertificateDer<'_>,
    rest: &[CertificateDer<'_>],
    names: &[String],
    now: UnixTime,
    provider: &Arc<CryptoProvider>,
) -> bool {
    let Ok(ta) = webpki::anchor_from_trusted_cert(anchor) else {
        return false;
    };
    let roots = RootCertStore {
        roots: vec![ta.to_owned()],
    };
    let Ok(v) =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()
    else {
        return false;
    };
    names.iter().any(|n| {
        ServerName::try_from(n.clone())
            .is_ok_and(|sn| v.verify_server_cert(ee, rest, &sn, &[], now).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(usage: u8, selector: u8, matching: u8, data: Vec<u8>) -> Tlsa {
        Tlsa {
            usage,
            selector,
            matching,
            data,
        }
    }

    #[test]
    fn only_dane_ta_and_ee_with_known_parameters_are_usable() {
        assert!(usable(&rec(3, 1, 1, vec![0; 32])));
        assert!(usable(&rec(2, 0, 2, vec![0; 64])));
        assert!(usable(&rec(3, 0, 0, vec![1])));
        assert!(!usable(&rec(0, 1, 1, vec![0; 32])), "PKIX-TA");
        assert!(!usable(&rec(1, 1, 1, vec![0; 32])), "PKIX-EE");
        assert!(!usable(&rec(3, 2, 1, vec![0; 32])), "selector 2");
        assert!(!usable(&rec(3, 1, 3, vec![0; 32])), "matching 3");
        assert!(!usable(&rec(3, 1, 1, vec![0; 31])), "short digest");
        assert!(!usable(&rec(3, 0, 0, vec![])), "empty data");
        assert_eq!(
            usable_records(&[rec(0, 0, 0, vec![1]), rec(3, 0, 0, vec![1])]).len(),
            1
        );
    }
}
