//! `control/tlsdestinations`: whether and how qmail-remote uses TLS towards a host.
//!
//! A line is `rule:value`. The rule names the host the delivery is routed to (the relay
//! or the recipient domain) with a prefix that sets the level:
//!
//! | rule | level |
//! |---|---|
//! | `!host`, `!.domain` | never STARTTLS |
//! | `%host` | TLS required, certificate pinned by the value's `=fingerprint` |
//! | `=host` | TLS required, valid chain, a name in the certificate equal to the host |
//! | `~host`, `~.domain` | TLS required, valid chain, the host name matches (wildcards too) |
//! | `host`, `.domain` | TLS required, valid chain |
//! | `-host`, `-.domain` | TLS required, no certificate check |
//! | `=*`, `~*`, `+*`, `-*` | the same four levels for every host |
//! | `*` | TLS when offered, no certificate check |
//! | `-` | TLS when offered, no certificate check (s/qmail: anonymous DH acceptable) |
//!
//! The most specific name wins (the host itself, then each parent `.domain`), and for one
//! name the prefixes are tried in the order of the table; the `*` rules come last.
//!
//! The value is `cafile|ciphers|verifydepth;port|senderdomain` (every field optional):
//! `cafile` ending in `/` is a directory of PEM files; a value starting with `=` is a
//! certificate fingerprint (hex, colons allowed; SHA-1, SHA-224, SHA-256 or SHA-512 by its
//! length); `;port` (with an optional `s` for TLS from the first byte) overrides the port,
//! and `:;port` alone is the short form; a non-empty `senderdomain` limits the line to
//! senders in that domain (`.domain` for its subdomains), other senders skip it. Without a
//! CA file or directory the chain is checked against the compiled-in public roots
//! (webpki-roots). The cipher list is accepted and ignored: rustls offers only its own
//! safe suites.

use std::path::PathBuf;

/// How much TLS a destination gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// No STARTTLS.
    Never,
    /// STARTTLS when offered, any certificate (`-`).
    OpportunisticAnon,
    /// STARTTLS when offered, any certificate (`*`).
    Opportunistic,
    /// TLS required, any certificate (`-host`, `-*`).
    Encrypted,
    /// TLS required, a valid chain (`host`, `+*`).
    Chain,
    /// TLS required, a valid chain for the host name, wildcards allowed (`~host`, `~*`).
    Name,
    /// TLS required, a valid chain and a certificate name equal to the host (`=host`, `=*`).
    ExactName,
    /// TLS required, the certificate's fingerprint must match (`%host`).
    Pinned,
}

impl Level {
    /// True when delivery must not go on without TLS.
    pub fn mandatory(self) -> bool {
        self >= Level::Encrypted
    }
}

/// Where the CA certificates come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Roots {
    /// The compiled-in public roots.
    Public,
    /// A PEM file.
    File(PathBuf),
    /// A directory of PEM files.
    Dir(PathBuf),
}

/// The policy for one destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The level.
    pub level: Level,
    /// The CA certificates for chain checks.
    pub roots: Roots,
    /// A pinned fingerprint, decoded from hex.
    pub fingerprint: Option<Vec<u8>>,
    /// The fingerprint as written, for reports.
    pub fingerprint_text: String,
    /// A port override and whether it is implicit TLS.
    pub port: Option<(u16, bool)>,
}

impl Policy {
    /// No TLS at all.
    pub fn never() -> Policy {
        Policy {
            level: Level::Never,
            roots: Roots::Public,
            fingerprint: None,
            fingerprint_text: String::new(),
            port: None,
        }
    }
}

/// A value that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadValue(pub String);

fn find<'a>(lines: &'a [Vec<u8>], key: &str, sender_domain: &str) -> Option<&'a [u8]> {
    lines.iter().find_map(|l| {
        let colon = l.iter().position(|&b| b == b':')?;
        let (k, v) = l.split_at(colon);
        let v = v.get(1..).unwrap_or_default();
        (k.eq_ignore_ascii_case(key.as_bytes()) && sender_ok(v, sender_domain)).then_some(v)
    })
}

fn sender_ok(v: &[u8], sender_domain: &str) -> bool {
    let text = String::from_utf8_lossy(v);
    let Some(want) = text.split('|').nth(3).filter(|w| !w.is_empty()) else {
        return true;
    };
    let want = want.to_ascii_lowercase();
    let have = sender_domain.to_ascii_lowercase();
    if want.starts_with('.') {
        have.ends_with(&want)
    } else {
        have == want
    }
}

/// The policy for `host` and a sender in `sender_domain`.
///
/// # Errors
/// [`BadValue`] for a value whose port or fingerprint cannot be read.
pub fn lookup(lines: &[Vec<u8>], host: &str, sender_domain: &str) -> Result<Policy, BadValue> {
    let host = host.to_ascii_lowercase();
    let mut names = vec![host.clone()];
    names.extend(
        host.match_indices('.')
            .filter_map(|(i, _)| host.get(i..))
            .map(str::to_string),
    );
    for (n, name) in names.iter().enumerate() {
        let exact = n == 0;
        for (prefix, level) in [
            ("!", Level::Never),
            ("%", Level::Pinned),
            ("=", Level::ExactName),
            ("~", Level::Name),
            ("", Level::Chain),
            ("-", Level::Encrypted),
        ] {
            if !exact && matches!(level, Level::Pinned | Level::ExactName) {
                continue;
            }
            if let Some(v) = find(lines, &format!("{prefix}{name}"), sender_domain) {
                return parse_value(v, level);
            }
        }
    }
    for (key, level) in [
        ("=*", Level::ExactName),
        ("~*", Level::Name),
        ("+*", Level::Chain),
        ("-*", Level::Encrypted),
        ("*", Level::Opportunistic),
        ("-", Level::OpportunisticAnon),
    ] {
        if let Some(v) = find(lines, key, sender_domain) {
            return parse_value(v, level);
        }
    }
    Ok(Policy::never())
}

/// Reads a value for a rule of `level`.
///
/// # Errors
/// [`BadValue`] for an unreadable port or fingerprint.
pub fn parse_value(v: &[u8], level: Level) -> Result<Policy, BadValue> {
    let text = String::from_utf8_lossy(v).into_owned();
    let bad = || BadValue(text.clone());
    let mut fields = text.split('|');
    let first = fields.next().unwrap_or("");
    let _ciphers = fields.next();
    let depth_port = fields.next();
    let (ca, port) = match depth_port {
        Some(dp) => (first, dp.split_once(';').map(|x| x.1)),
        None => match first.split_once(';') {
            Some((c, p)) => (c, Some(p)),
            None => (first, None),
        },
    };
    let port = match port.filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => {
            let (s, d) = p.strip_prefix('s').map_or((false, p), |d| (true, d));
            Some((d.parse::<u16>().map_err(|_| bad())?, s))
        }
    };
    let mut policy = Policy {
        level,
        roots: Roots::Public,
        fingerprint: None,
        fingerprint_text: String::new(),
        port,
    };
    if level == Level::Never {
        return Ok(policy);
    }
    if let Some(fp) = ca.strip_prefix('=') {
        policy.fingerprint = Some(unhex(fp).ok_or_else(bad)?);
        policy.fingerprint_text = ca.to_string();
        policy.level = Level::Pinned;
    } else if level == Level::Pinned {
        return Err(bad());
    } else if ca.ends_with('/') {
        policy.roots = Roots::Dir(PathBuf::from(ca));
    } else if !ca.is_empty() {
        policy.roots = Roots::File(PathBuf::from(ca));
    }
    Ok(policy)
}

/// Decodes a hex fingerprint; colons are ignored, case does not matter.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = s.bytes().filter(|&b| b != b':').collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|p| {
            let h = char::from(*p.first()?).to_digit(16)?;
            let l = char::from(*p.get(1)?).to_digit(16)?;
            u8::try_from(h * 16 + l).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<Vec<u8>> {
        crate::control::list_lines(s.as_bytes())
    }

    fn level(t: &str, host: &str, sender: &str) -> Level {
        lookup(&lines(t), host, sender).unwrap().level
    }

    #[test]
    fn the_rule_matrix() {
        let t = "!plain.example:\n%pin.example:=AB:cd\n=exact.example:\n~.wild.example:\n\
                 chain.example:/etc/ca.pem\n-anon.example:\n*:\n";
        assert_eq!(level(t, "plain.example", ""), Level::Never);
        assert_eq!(level(t, "pin.example", ""), Level::Pinned);
        assert_eq!(level(t, "exact.example", ""), Level::ExactName);
        assert_eq!(level(t, "a.wild.example", ""), Level::Name);
        assert_eq!(level(t, "wild.example", ""), Level::Opportunistic);
        assert_eq!(level(t, "chain.example", ""), Level::Chain);
        assert_eq!(level(t, "anon.example", ""), Level::Encrypted);
        assert_eq!(level(t, "other.example", ""), Level::Opportunistic);
        assert_eq!(level("", "other.example", ""), Level::Never);
        assert_eq!(level("-:\n", "x", ""), Level::OpportunisticAnon);
        assert_eq!(level("=*:\n*:\n", "x", ""), Level::ExactName);
        assert_eq!(level("~*:\n", "x", ""), Level::Name);
        assert_eq!(level("+*:\n", "x", ""), Level::Chain);
        assert_eq!(level("-*:\n", "x", ""), Level::Encrypted);
        let p = lookup(&lines(t), "pin.example", "").unwrap();
        assert_eq!(p.fingerprint, Some(vec![0xab, 0xcd]));
        let p = lookup(&lines(t), "chain.example", "").unwrap();
        assert_eq!(p.roots, Roots::File("/etc/ca.pem".into()));
    }

    #[test]
    fn ca_directories_ports_and_sender_domains() {
        let p = parse_value(b"/etc/certs/|HIGH|2;465|", Level::Chain).unwrap();
        assert_eq!(p.roots, Roots::Dir("/etc/certs/".into()));
        assert_eq!(p.port, Some((465, false)));
        let p = parse_value(b";s587", Level::Opportunistic).unwrap();
        assert_eq!((p.roots, p.port), (Roots::Public, Some((587, true))));
        assert!(parse_value(b";x", Level::Chain).is_err());
        assert!(parse_value(b"=xyz", Level::Chain).is_err());
        assert!(parse_value(b"/ca.pem", Level::Pinned).is_err());
        let t = "x.example:|||corp.example\nx.example:|||.other.example\n*:\n";
        assert_eq!(level(t, "x.example", "corp.example"), Level::Chain);
        assert_eq!(level(t, "x.example", "a.other.example"), Level::Chain);
        assert_eq!(level(t, "x.example", "else.example"), Level::Opportunistic);
    }
}
