//! The parts of an X.509 certificate that sslserver and sslclient export to their program,
//! in OpenSSL's spellings (mod_ssl variables): version, serial, subject and issuer names as
//! one-line DNs, validity dates, algorithm names, and the DNS names used to match a peer.
//!
//! A small DER reader over hostile bytes: bounded, never panics, and returns `None` for
//! anything it does not understand. It does not verify anything; rustls has done that.

/// One name component: its short name (`CN`, or the dotted OID when unknown) and value.
pub type Attribute = (String, String);

/// What is exported of a certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cert {
    /// The certificate version, 1 to 3.
    pub version: u8,
    /// The serial number in decimal.
    pub serial: String,
    /// The subject name, component by component, in certificate order.
    pub subject: Vec<Attribute>,
    /// The issuer name.
    pub issuer: Vec<Attribute>,
    /// notBefore as `Mon DD HH:MM:SS YYYY GMT`.
    pub not_before: String,
    /// notAfter, same format.
    pub not_after: String,
    /// The signature algorithm's long name.
    pub sig_alg: String,
    /// The public key algorithm's long name.
    pub key_alg: String,
    /// The dNSName entries of the subjectAltName extension.
    pub dns_names: Vec<String>,
}

/// Splits one DER element off the front: (tag, contents, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, r) = rest.split_at_checked(n)?;
        rest = r;
        bytes.iter().try_fold(0usize, |a, &b| {
            a.checked_mul(256)?.checked_add(usize::from(b))
        })?
    };
    let (content, rest) = rest.split_at_checked(len)?;
    Some((tag, content, rest))
}

fn expect(input: &[u8], want: u8) -> Option<(&[u8], &[u8])> {
    let (tag, c, rest) = tlv(input)?;
    (tag == want).then_some((c, rest))
}

fn oid_string(c: &[u8]) -> String {
    let mut parts: Vec<u64> = Vec::new();
    let mut v: u64 = 0;
    for &b in c {
        v = v.saturating_mul(128).saturating_add(u64::from(b & 0x7f));
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let first = (v / 40).min(2);
                parts.push(first);
                parts.push(v - first * 40);
            } else {
                parts.push(v);
            }
            v = 0;
        }
    }
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// OpenSSL's short name for a name attribute type.
fn short_name(oid: &str) -> String {
    match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.13" => "description",
        "2.5.4.42" => "GN",
        "2.5.4.43" => "initials",
        "2.5.4.46" => "dnQualifier",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        other => other,
    }
    .to_string()
}

/// OpenSSL's long name for a signature or key algorithm.
fn alg_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.1" => "rsaEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.10045.2.1" => "id-ecPublicKey",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.3.101.112" => "ED25519",
        "1.3.101.113" => "ED448",
        other => other,
    }
    .to_string()
}

/// Text of a directory string; bytes outside printable ASCII become `\xXX` as OpenSSL
/// prints them (UTF-8 is kept as bytes for the caller to pass on).
fn string_value(tag: u8, c: &[u8]) -> String {
    let bytes: Vec<u8> = if tag == 0x1e {
        // BMPString: UTF-16BE.
        let units: Vec<u16> = c
            .chunks(2)
            .map(|p| {
                u16::from_be_bytes([
                    p.first().copied().unwrap_or(0),
                    p.get(1).copied().unwrap_or(0),
                ])
            })
            .collect();
        String::from_utf16_lossy(&units).into_bytes()
    } else {
        c.to_vec()
    };
    let mut s = String::with_capacity(bytes.len());
    for b in bytes {
        if (0x20..0x7f).contains(&b) {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("\\x{b:02X}"));
        }
    }
    s
}

fn name(c: &[u8]) -> Option<Vec<Attribute>> {
    let mut out = Vec::new();
    let mut rdns = c;
    while !rdns.is_empty() {
        let (set, rest) = expect(rdns, 0x31)?;
        rdns = rest;
        let mut atvs = set;
        while !atvs.is_empty() {
            let (atv, rest) = expect(atvs, 0x30)?;
            atvs = rest;
            let (oid, v) = expect(atv, 0x06)?;
            let (tag, val, _) = tlv(v)?;
            out.push((short_name(&oid_string(oid)), string_value(tag, val)));
        }
    }
    Some(out)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as OpenSSL prints it.
fn time(tag: u8, c: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(c).ok()?;
    let s = s.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: u32 = s.get(0..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, s.get(2..)?)
        }
        0x18 => (s.get(0..4)?.parse().ok()?, s.get(4..)?),
        _ => return None,
    };
    let num = |r: std::ops::Range<usize>| -> Option<u32> { rest.get(r)?.parse().ok() };
    let month = usize::try_from(num(0..2)?).ok()?;
    let mon = MONTHS.get(month.checked_sub(1)?)?;
    Some(format!(
        "{mon} {:2} {:02}:{:02}:{:02} {year} GMT",
        num(2..4)?,
        num(4..6)?,
        num(6..8)?,
        num(8..10).unwrap_or(0)
    ))
}

/// A big-endian unsigned integer in decimal.
fn decimal(c: &[u8]) -> String {
    let mut digits: Vec<u8> = Vec::new(); // little-endian base 10
    for &b in c {
        let mut carry = u32::from(b);
        for d in &mut digits {
            let v = u32::from(*d) * 256 + carry;
            *d = u8::try_from(v % 10).unwrap_or(0);
            carry = v / 10;
        }
        while carry > 0 {
            digits.push(u8::try_from(carry % 10).unwrap_or(0));
            carry /= 10;
        }
    }
    if digits.is_empty() {
        return "0".to_string();
    }
    digits.iter().rev().map(|d| char::from(b'0' + d)).collect()
}

fn alg(c: &[u8]) -> Option<String> {
    let (oid, _) = expect(c, 0x06)?;
    Some(alg_name(&oid_string(oid)))
}

fn san_dns(exts: &[u8]) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let (list, _) = expect(exts, 0x30)?;
    let mut l = list;
    while !l.is_empty() {
        let (ext, rest) = expect(l, 0x30)?;
        l = rest;
        let (oid, mut v) = expect(ext, 0x06)?;
        if oid_string(oid) != "2.5.29.17" {
            continue;
        }
        if let Some((0x01, _, r)) = tlv(v) {
            v = r;
        }
        let (octets, _) = expect(v, 0x04)?;
        let (gns, _) = expect(octets, 0x30)?;
        let mut g = gns;
        while !g.is_empty() {
            let (tag, c, rest) = tlv(g)?;
            g = rest;
            if tag == 0x82 {
                names.push(String::from_utf8_lossy(c).to_ascii_lowercase());
            }
        }
    }
    Some(names)
}

/// Parses a DER certificate. `None` when it is not one this reader understands.
pub fn parse(der: &[u8]) -> Option<Cert> {
    let (cert, _) = expect(der, 0x30)?;
    let (tbs, _) = expect(cert, 0x30)?;
    let mut c = Cert::default();
    let mut t = tbs;
    c.version = 1;
    if let Some((0xa0, v, rest)) = tlv(t) {
        let (n, _) = expect(v, 0x02)?;
        c.version = n.last().copied().unwrap_or(0).saturating_add(1);
        t = rest;
    }
    let (serial, rest) = expect(t, 0x02)?;
    c.serial = decimal(serial);
    let (sig, rest) = expect(rest, 0x30)?;
    c.sig_alg = alg(sig)?;
    let (issuer, rest) = expect(rest, 0x30)?;
    c.issuer = name(issuer)?;
    let (validity, rest) = expect(rest, 0x30)?;
    let (t1, v1, vr) = tlv(validity)?;
    let (t2, v2, _) = tlv(vr)?;
    c.not_before = time(t1, v1)?;
    c.not_after = time(t2, v2)?;
    let (subject, rest) = expect(rest, 0x30)?;
    c.subject = name(subject)?;
    let (spki, mut rest) = expect(rest, 0x30)?;
    let (keyalg, _) = expect(spki, 0x30)?;
    c.key_alg = alg(keyalg)?;
    while let Some((tag, v, r)) = tlv(rest) {
        rest = r;
        if tag == 0xa3 {
            c.dns_names = san_dns(v).unwrap_or_default();
        }
    }
    Some(c)
}

/// OpenSSL's one-line form of a name: `/C=US/O=Org/CN=name`.
pub fn oneline(n: &[Attribute]) -> String {
    n.iter().map(|(k, v)| format!("/{k}={v}")).collect()
}

/// The mod_ssl suffixes of the `_DN_x` variables and the short names they stand for.
pub const DN_PARTS: [(&str, &str); 13] = [
    ("C", "C"),
    ("ST", "ST"),
    ("L", "L"),
    ("O", "O"),
    ("OU", "OU"),
    ("CN", "CN"),
    ("T", "title"),
    ("I", "initials"),
    ("G", "GN"),
    ("S", "SN"),
    ("D", "description"),
    ("UID", "UID"),
    ("Email", "emailAddress"),
];

/// The first value of a component, by short name.
pub fn component<'a>(n: &'a [Attribute], short: &str) -> Option<&'a str> {
    n.iter().find(|(k, _)| k == short).map(|(_, v)| v.as_str())
}

/// Whether the certificate names `host`: one of its subjectAltName DNS names (a leading
/// `*.` matches one label), or its CN when it has no DNS names.
pub fn names_host(c: &Cert, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let matches = |pat: &str| {
        let pat = pat.to_ascii_lowercase();
        match pat.strip_prefix("*.") {
            Some(suffix) => host
                .split_once('.')
                .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
            None => pat == host,
        }
    };
    if c.dns_names.is_empty() {
        component(&c.subject, "CN").is_some_and(matches)
    } else {
        c.dns_names.iter().any(|n| matches(n))
    }
}

/// PEM text of a DER certificate.
pub fn pem(der: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len() * 4 / 3 + 4);
    for chunk in der.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let idx = usize::try_from((n >> (18 - 6 * i)) & 63).unwrap_or(0);
                b64.push(char::from(B64.get(idx).copied().unwrap_or(b'A')));
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_are_bounded() {
        assert_eq!(tlv(&[0x30, 0x03, 1, 2]), None, "short content");
        assert_eq!(tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]), None, "5-byte length");
        assert_eq!(
            tlv(&[0x30, 0x81, 0x01, 9]),
            Some((0x30, &[9u8][..], &[][..]))
        );
        assert_eq!(tlv(&[0x1f, 0, 0]), None, "high tag number");
        assert_eq!(parse(b""), None);
        assert_eq!(parse(&[0x30, 0x02, 0x30, 0x00]), None);
    }

    #[test]
    fn serials_print_in_decimal() {
        assert_eq!(decimal(&[]), "0");
        assert_eq!(decimal(&[0x01, 0x00]), "256");
        assert_eq!(decimal(&[0xff; 8]), "18446744073709551615");
    }

    #[test]
    fn times_print_as_openssl_does() {
        assert_eq!(
            time(0x17, b"140112105743Z").as_deref(),
            Some("Jan 12 10:57:43 2014 GMT")
        );
        assert_eq!(
            time(0x18, b"20500301000000Z").as_deref(),
            Some("Mar  1 00:00:00 2050 GMT")
        );
        assert_eq!(time(0x17, b"141312105743Z"), None, "month 13");
    }

    #[test]
    fn host_matching() {
        let c = Cert {
            dns_names: vec!["mail.example.test".into(), "*.mx.example.test".into()],
            ..Cert::default()
        };
        assert!(names_host(&c, "MAIL.example.test."));
        assert!(names_host(&c, "a.mx.example.test"));
        assert!(!names_host(&c, "a.b.mx.example.test"));
        assert!(!names_host(&c, "example.test"));
        let cn = Cert {
            subject: vec![("CN".into(), "h.example.test".into())],
            ..Cert::default()
        };
        assert!(names_host(&cn, "h.example.test"));
    }

    #[test]
    fn pem_wraps_base64() {
        assert_eq!(
            pem(b"Man"),
            "-----BEGIN CERTIFICATE-----\nTWFu\n-----END CERTIFICATE-----\n"
        );
        assert!(pem(b"Ma").contains("TWE=\n"));
    }
}
