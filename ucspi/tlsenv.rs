//! The `SSL_*` variables (mod_ssl names, OpenSSL spellings) describing an established TLS
//! connection, for sslserver's and sslclient's programs.
//!
//! Order matters to old consumers: `SSL_PROTOCOL` first, `SSL_SESSION_ID` second,
//! `SSL_CIPHER` third, as ucspi-ssl emits them. Client
//! certificate variables appear only for a certificate that rustls verified, and
//! `SSL_CLIENT_VERIFY` says so (`SUCCESS`) or that none was sent (`NONE`).

use rustls::{Connection, ProtocolVersion};
use rustls_pki_types::CertificateDer;

use crate::tlsconf::suite_name;
use crate::x509;

/// `SSL_VERSION_INTERFACE`.
pub const INTERFACE: &str = "ucspi-ssl";
/// `SSL_VERSION_LIBRARY`.
pub const LIBRARY: &str = "rustls 0.23 (ring)";

/// OpenSSL's name for a protocol version.
pub fn protocol_name(v: Option<ProtocolVersion>) -> String {
    match v {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".into(),
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".into(),
        Some(other) => format!("{other:?}"),
        None => "unknown".into(),
    }
}

/// The negotiated protocol and cipher as `-V` logs them: `TLSv1.3:TLS_AES_256_GCM_SHA384`.
pub fn summary(conn: &Connection) -> String {
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|s| suite_name(s.suite()).0)
        .unwrap_or_default();
    format!("{}:{cipher}", protocol_name(conn.protocol_version()))
}

fn cert_vars(out: &mut Vec<(String, String)>, who: &str, chain: &[CertificateDer<'_>]) {
    let Some(ee) = chain.first() else { return };
    let Some(c) = x509::parse(ee.as_ref()) else {
        return;
    };
    let mut put = |k: &str, v: String| out.push((format!("SSL_{who}_{k}"), v));
    put("M_VERSION", c.version.to_string());
    put("M_SERIAL", c.serial.clone());
    put("S_DN", x509::oneline(&c.subject));
    for (suffix, short) in x509::DN_PARTS {
        if let Some(v) = x509::component(&c.subject, short) {
            put(&format!("S_DN_{suffix}"), v.to_string());
        }
    }
    put("I_DN", x509::oneline(&c.issuer));
    for (suffix, short) in x509::DN_PARTS {
        if let Some(v) = x509::component(&c.issuer, short) {
            put(&format!("I_DN_{suffix}"), v.to_string());
        }
    }
    put("V_START", c.not_before.clone());
    put("V_END", c.not_after.clone());
    put("A_SIG", c.sig_alg.clone());
    put("A_KEY", c.key_alg.clone());
    put("CERT", x509::pem(ee.as_ref()));
    for (i, extra) in chain.iter().skip(1).enumerate() {
        put(&format!("CERT_CHAIN_{i}"), x509::pem(extra.as_ref()));
    }
}

/// `SSL_SESSION_ID`: 32 random bytes in lower-case hex, drawn per connection as OpenSSL
/// draws a TLS 1.3 server's session id (rustls keeps no session ids of its own); empty if
/// the system gives no random bytes.
fn session_id() -> String {
    let mut id = [0u8; 32];
    let rng = rustls::crypto::ring::default_provider().secure_random;
    if rng.fill(&mut id).is_err() {
        return String::new();
    }
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// The variables for a connection. `own` is this side's certificate chain (the server's
/// for sslserver, the client's for sslclient, if any).
pub fn vars(conn: &Connection, own: &[CertificateDer<'_>]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    out.push((
        "SSL_PROTOCOL".into(),
        protocol_name(conn.protocol_version()),
    ));
    out.push(("SSL_SESSION_ID".into(), session_id()));
    let (cipher, bits) = conn
        .negotiated_cipher_suite()
        .map(|s| suite_name(s.suite()))
        .unwrap_or_default();
    out.push(("SSL_CIPHER".into(), cipher));
    out.push((
        "SSL_CIPHER_EXPORT".into(),
        if bits < 56 { "true" } else { "false" }.into(),
    ));
    out.push(("SSL_CIPHER_USEKEYSIZE".into(), bits.to_string()));
    out.push(("SSL_CIPHER_ALGKEYSIZE".into(), bits.to_string()));
    out.push(("SSL_VERSION_INTERFACE".into(), INTERFACE.into()));
    out.push(("SSL_VERSION_LIBRARY".into(), LIBRARY.into()));
    let peer: &[CertificateDer<'_>] = conn.peer_certificates().unwrap_or_default();
    match conn {
        Connection::Server(_) => {
            cert_vars(&mut out, "SERVER", own);
            cert_vars(&mut out, "CLIENT", peer);
            let verify = if peer.is_empty() { "NONE" } else { "SUCCESS" };
            out.push(("SSL_CLIENT_VERIFY".into(), verify.into()));
        }
        Connection::Client(_) => {
            cert_vars(&mut out, "SERVER", peer);
            cert_vars(&mut out, "CLIENT", own);
        }
    }
    out
}
