//! Where a message goes: qmail-remote's reading of `control/authsenders`,
//! `control/qmtproutes`, `control/smtproutes` and `control/domainips` (s/qmail 3.x rules).
//!
//! Each file is a list of `key:value` lines; keys compare without regard to case and the
//! first line with a key wins (qmail's constmap). A route value is
//! `relay[;[s]port][|user|password]`: an empty relay means "use the MX records", `s` before
//! the port means TLS from the first byte (RFC 8314). qmail 1.03 separated the port with
//! `:`; such a value (`relay:port`) is refused here as a configuration error, a temporary
//! failure, instead of being looked up as a host name and bounced.

use std::net::IpAddr;

/// The protocol spoken to the next hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// QMTP (port 209; QMTPS on 6209).
    Qmtp,
    /// SMTP (port 25; SMTPS on 465).
    Smtp,
}

/// Port numbers with a meaning of their own.
pub const PORT_SMTP: u16 = 25;
/// QMTP's port.
pub const PORT_QMTP: u16 = 209;
/// SMTP over TLS from the first byte (RFC 8314).
pub const PORT_SMTPS: u16 = 465;
/// QMTP over TLS from the first byte.
pub const PORT_QMTPS: u16 = 6209;

/// The route chosen for one delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The host to connect to instead of the MX hosts; `None` means use MX.
    pub relay: Option<String>,
    /// The port.
    pub port: u16,
    /// SMTP or QMTP.
    pub proto: Proto,
    /// TLS from the first byte (port 465 or 6209, or an `s` port).
    pub implicit_tls: bool,
    /// SMTP AUTH credentials (user, password).
    pub creds: Option<(Vec<u8>, Vec<u8>)>,
}

/// A route line that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRoute(pub String);

/// Finds `key` in `key:value` lines, without regard to case; the first line wins.
pub fn lookup<'a>(lines: &'a [Vec<u8>], key: &[u8]) -> Option<&'a [u8]> {
    lines.iter().find_map(|l| {
        let colon = l.iter().position(|&b| b == b':')?;
        let (k, v) = l.split_at(colon);
        k.eq_ignore_ascii_case(key)
            .then(|| v.get(1..).unwrap_or_default())
    })
}

/// Looks `s` up, then every suffix of it that starts at a `.` (or, with `at`, an `@`),
/// then the empty key; returns the first value found.
pub fn lookup_suffixes<'a>(lines: &'a [Vec<u8>], s: &[u8], at: bool) -> Option<&'a [u8]> {
    (0..=s.len())
        .filter(|&i| {
            i == 0
                || i == s.len()
                || matches!(s.get(i), Some(b'.'))
                || (at && s.get(i) == Some(&b'@'))
        })
        .find_map(|i| lookup(lines, s.get(i..).unwrap_or_default()))
}

/// Parses a route value `relay[;[s]port][|user|password]`; `default_port` applies when no
/// port is given.
///
/// # Errors
/// [`BadRoute`] for a port that is not a number, or a qmail 1.03 style `relay:port`.
pub fn parse_value(v: &[u8], proto: Proto, default_port: u16) -> Result<Route, BadRoute> {
    let text = String::from_utf8_lossy(v).into_owned();
    let bad = || BadRoute(text.clone());
    let (hostport, creds) = match text.split_once('|') {
        Some((hp, rest)) => {
            let (u, p) = rest.split_once('|').unwrap_or((rest, ""));
            (hp, Some((u.as_bytes().to_vec(), p.as_bytes().to_vec())))
        }
        None => (text.as_str(), None),
    };
    let (host, port) = match hostport.split_once(';') {
        Some((h, p)) => (h, Some(p)),
        None => (hostport, None),
    };
    if host.contains(':') && host.parse::<IpAddr>().is_err() && !host.starts_with('[') {
        return Err(bad());
    }
    let (implicit, port) = match port {
        None | Some("") => (false, default_port),
        Some(p) => {
            let (s, digits) = match p.strip_prefix('s') {
                Some(d) => (true, d),
                None => (false, p),
            };
            (s, digits.parse::<u16>().map_err(|_| bad())?)
        }
    };
    let implicit = implicit
        || (proto == Proto::Smtp && port == PORT_SMTPS)
        || (proto == Proto::Qmtp && port == PORT_QMTPS);
    Ok(Route {
        relay: (!host.is_empty()).then(|| host.to_string()),
        port,
        proto,
        implicit_tls: implicit,
        creds: creds.filter(|(u, p)| !u.is_empty() && !p.is_empty()),
    })
}

/// The control files route selection reads.
#[derive(Clone, Debug, Default)]
pub struct Tables {
    /// `control/authsenders`.
    pub authsenders: Vec<Vec<u8>>,
    /// `control/qmtproutes`.
    pub qmtproutes: Vec<Vec<u8>>,
    /// `control/smtproutes`.
    pub smtproutes: Vec<Vec<u8>>,
}

/// Chooses the route for a delivery to `host` from `sender` (s/qmail's order: authsenders
/// by sender; for bounces the `!@` key of qmtproutes then smtproutes; then per suffix of
/// `host`, qmtproutes before smtproutes; else MX on port 25).
///
/// # Errors
/// [`BadRoute`] for an unusable line.
pub fn choose(t: &Tables, host: &[u8], sender: &[u8]) -> Result<Route, BadRoute> {
    if let Some(v) = lookup_suffixes(&t.authsenders, sender, true).filter(|v| !v.is_empty()) {
        return parse_value(v, Proto::Smtp, PORT_SMTP);
    }
    if sender.is_empty() {
        if let Some(v) = lookup(&t.qmtproutes, b"!@").filter(|v| !v.is_empty()) {
            return parse_value(v, Proto::Qmtp, PORT_QMTP);
        }
        if let Some(v) = lookup(&t.smtproutes, b"!@").filter(|v| !v.is_empty()) {
            return parse_value(v, Proto::Smtp, PORT_SMTP);
        }
    }
    for i in 0..=host.len() {
        if !(i == 0 || i == host.len() || host.get(i) == Some(&b'.')) {
            continue;
        }
        let key = host.get(i..).unwrap_or_default();
        if let Some(v) = lookup(&t.qmtproutes, key) {
            return parse_value(v, Proto::Qmtp, PORT_QMTP);
        }
        if let Some(v) = lookup(&t.smtproutes, key) {
            return parse_value(v, Proto::Smtp, PORT_SMTP);
        }
    }
    parse_value(b"", Proto::Smtp, PORT_SMTP)
}

/// A `control/domainips` value: the local address to bind (with an interface name for
/// link-local IPv6) and a HELO name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainIp {
    /// The local address, if one is given.
    pub ip: Option<IpAddr>,
    /// The interface after `%`, if any.
    pub interface: Option<String>,
    /// The HELO name after `|`, if any.
    pub helo: Option<Vec<u8>>,
}

/// Looks up the sender's domain (every suffix starting at `.`, then `*`) in
/// `control/domainips`.
///
/// # Errors
/// [`BadRoute`] when the address is not an IP address.
pub fn domain_ip(lines: &[Vec<u8>], sender_domain: &[u8]) -> Result<Option<DomainIp>, BadRoute> {
    let found = if sender_domain.is_empty() {
        None
    } else {
        (0..=sender_domain.len())
            .filter(|&i| i == 0 || i == sender_domain.len() || sender_domain.get(i) == Some(&b'.'))
            .find_map(|i| lookup(lines, sender_domain.get(i..).unwrap_or_default()))
    };
    let Some(v) = found.or_else(|| lookup(lines, b"*")) else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(v).into_owned();
    let (addr, helo) = match text.split_once('|') {
        Some((a, h)) => (a, Some(h.as_bytes().to_vec())),
        None => (text.as_str(), None),
    };
    let (addr, interface) = match addr.split_once('%') {
        Some((a, i)) => (a, Some(i.to_string())),
        None => (addr, None),
    };
    let ip = if addr.is_empty() {
        None
    } else {
        Some(addr.parse().map_err(|_| BadRoute(text.clone()))?)
    };
    Ok(Some(DomainIp {
        ip,
        interface,
        helo: helo.filter(|h| !h.is_empty()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<Vec<u8>> {
        crate::control::list_lines(s.as_bytes())
    }

    #[test]
    fn values_parse_with_port_tls_and_credentials() {
        let r = parse_value(b"relay.example;2525|u|p", Proto::Smtp, 25).unwrap();
        assert_eq!(r.relay.as_deref(), Some("relay.example"));
        assert_eq!((r.port, r.implicit_tls), (2525, false));
        assert_eq!(r.creds, Some((b"u".to_vec(), b"p".to_vec())));
        let r = parse_value(b"relay.example;s587", Proto::Smtp, 25).unwrap();
        assert_eq!((r.port, r.implicit_tls), (587, true));
        assert!(parse_value(b"r;465", Proto::Smtp, 25).unwrap().implicit_tls);
        assert!(
            parse_value(b"r;6209", Proto::Qmtp, 209)
                .unwrap()
                .implicit_tls
        );
        assert!(
            !parse_value(b"r;6209", Proto::Smtp, 25)
                .unwrap()
                .implicit_tls
        );
        assert_eq!(parse_value(b"", Proto::Smtp, 25).unwrap().relay, None);
        assert_eq!(parse_value(b"[::1];25", Proto::Smtp, 25).unwrap().port, 25);
        assert_eq!(parse_value(b"::1;26", Proto::Smtp, 25).unwrap().port, 26);
        // The qmail 1.03 port separator is a configuration error, not a host name.
        assert!(parse_value(b"relay.example:2525", Proto::Smtp, 25).is_err());
        assert!(parse_value(b"relay;x", Proto::Smtp, 25).is_err());
    }

    #[test]
    fn routes_follow_s_qmails_order() {
        let t = Tables {
            authsenders: lines("@corp.example:smarthost;587|joe|secret\n"),
            qmtproutes: lines("q.example:qmtp.example\n!@:bounce-q.example\n"),
            smtproutes: lines(".sub.example:sub-relay\n:default-relay;26\nnomx.example:\n"),
        };
        let r = choose(&t, b"any.example", b"a@corp.example").unwrap();
        assert_eq!((r.relay.as_deref(), r.port), (Some("smarthost"), 587));
        assert!(r.creds.is_some());
        let r = choose(&t, b"x.example", b"").unwrap();
        assert_eq!(
            (r.relay.as_deref(), r.proto),
            (Some("bounce-q.example"), Proto::Qmtp)
        );
        let r = choose(&t, b"q.example", b"a@b").unwrap();
        assert_eq!((r.port, r.proto), (209, Proto::Qmtp));
        let r = choose(&t, b"a.sub.example", b"a@b").unwrap();
        assert_eq!(r.relay.as_deref(), Some("sub-relay"));
        let r = choose(&t, b"NOMX.example", b"a@b").unwrap();
        assert_eq!(r.relay, None, "an empty relay means MX");
        let r = choose(&t, b"else.example", b"a@b").unwrap();
        assert_eq!((r.relay.as_deref(), r.port), (Some("default-relay"), 26));
        let r = choose(&Tables::default(), b"else.example", b"a@b").unwrap();
        assert_eq!((r.relay, r.port, r.proto), (None, 25, Proto::Smtp));
    }

    #[test]
    fn domainips_by_sender_domain_then_star() {
        let l = lines(".example.org:192.0.2.1|helo.example.org\n*:::1%lo\nbad.example:nonsense\n");
        let d = domain_ip(&l, b"mail.example.org").unwrap().unwrap();
        assert_eq!(d.ip, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(d.helo.as_deref(), Some(&b"helo.example.org"[..]));
        let d = domain_ip(&l, b"other.example").unwrap().unwrap();
        assert_eq!(
            (d.ip, d.interface.as_deref()),
            (Some("::1".parse().unwrap()), Some("lo"))
        );
        assert!(domain_ip(&l, b"bad.example").is_err());
        assert_eq!(domain_ip(&[], b"x").unwrap(), None);
    }
}
