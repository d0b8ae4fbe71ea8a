//! Mail-from rules (MAV): which envelope senders a relay client may use, when qmail-smtpd
//! runs with `LOCALMFCHECK=!`. The source `control/mailfromrules` has lines
//! `key&sender1,sender2,...`; qmail-mfrules compiles it into `control/mailfromrules.cdb`.
//!
//! Keys, tried in this order for a client: its TCPREMOTEINFO (the authenticated user) alone,
//! `info@ip`, `info@=host`; then its IP address, `=host`, the IPv6 prefixes ending in `:`,
//! the IPv4 prefixes ending in `.`, `=.suffix` for each dot of the host name, and `=`. An
//! IPv4 key may end in a range of last octets, `10.0.0.5-9`, which the compiler expands.
//!
//! A key with an empty list allows any sender. A key whose list names the sender allows it;
//! a key whose list does not lets the search go on to the next key (as s/qmail does). No key
//! allowing the sender means it is refused. The null sender `<>` is always allowed.
//!
//! A list entry names a sender exactly, or a domain: an entry starting with `@` or `.`
//! matches any sender ending with it, and an entry without `@` also matches the senders of
//! that domain and its subdomains (`example.com` matches `joe@example.com` and
//! `joe@mx.example.com`). Everything is compared without regard to case.

use std::path::Path;

use crate::cdb;
use crate::fail::{Failure, Kind, Result};

/// The source, relative to the qmail home.
pub const SOURCE: &str = "control/mailfromrules";
/// The database qmail-smtpd reads.
pub const CDB: &str = "control/mailfromrules.cdb";
/// The temporary file qmail-mfrules writes first.
pub const TMP: &str = "control/mailfromrules.tmp";

/// What qmail-smtpd knows about the client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Client {
    /// TCPREMOTEIP (or TCP6REMOTEIP, without a v4-mapped prefix).
    pub ip: Vec<u8>,
    /// TCPREMOTEHOST; `None` when unknown.
    pub host: Option<Vec<u8>>,
    /// TCPREMOTEINFO: the authenticated user (or ident answer); `None` when unset.
    pub info: Option<Vec<u8>>,
}

/// The keys tried for a client, in order.
pub fn keys(who: &Client) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let ip = who.ip.to_ascii_lowercase();
    let host = who.host.as_ref().map(|h| h.to_ascii_lowercase());
    if let Some(info) = &who.info {
        out.push(info.clone());
        out.push([info.as_slice(), b"@", &ip].concat());
        if let Some(h) = &host {
            out.push([info.as_slice(), b"@=", h].concat());
        }
    }
    out.push(ip.clone());
    if let Some(h) = &host {
        out.push([&b"="[..], h].concat());
    }
    for sep in [b':', b'.'] {
        for i in (0..ip.len()).rev() {
            if ip.get(i) == Some(&sep) {
                out.push(ip.get(..=i).unwrap_or_default().to_vec());
            }
        }
    }
    if let Some(h) = &host {
        for (i, &c) in h.iter().enumerate() {
            if c == b'.' {
                out.push([&b"="[..], h.get(i..).unwrap_or_default()].concat());
            }
        }
        out.push(b"=".to_vec());
    }
    out
}

/// Whether a list entry names this (lower-cased) sender.
pub fn entry_matches(entry: &[u8], sender: &[u8]) -> bool {
    if entry.is_empty() {
        return false;
    }
    if entry == sender {
        return true;
    }
    if !sender.ends_with(entry) {
        return false;
    }
    let before = sender.get(sender.len() - entry.len() - 1);
    matches!(entry.first(), Some(b'@' | b'.'))
        || (!entry.contains(&b'@') && matches!(before, Some(b'@' | b'.')))
}

/// An open `control/mailfromrules.cdb`.
pub struct MailFromRules {
    db: cdb::Reader,
}

impl MailFromRules {
    /// Opens the database; `None` when it does not exist (qmail-smtpd then falls back to
    /// checking the sender's domain against rcpthosts, as s/qmail does).
    pub fn open(home: &Path) -> Result<Option<MailFromRules>> {
        match cdb::Reader::open(&home.join(CDB)) {
            Ok(db) => Ok(db.map(|db| MailFromRules { db })),
            Err(e) => Err(Failure::temp_io(
                Kind::Config,
                "unable to read control/mailfromrules.cdb",
                e,
            )),
        }
    }

    /// Whether the client may use `sender` (without angle brackets; empty for `<>`).
    pub fn allowed(&self, who: &Client, sender: &[u8]) -> Result<bool> {
        if sender.is_empty() {
            return Ok(true);
        }
        let sender = sender.to_ascii_lowercase();
        for key in keys(who) {
            let data = self.db.get(&key.to_ascii_lowercase()).map_err(|e| {
                Failure::temp_io(Kind::Config, "unable to read control/mailfromrules.cdb", e)
            })?;
            let Some(data) = data else { continue };
            if data.is_empty() {
                return Ok(true);
            }
            if data
                .split(|&b| b == b'+')
                .any(|e| entry_matches(e, &sender))
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

fn parse_error(line: &[u8]) -> Failure {
    Failure::perm(
        Kind::Input,
        format!(
            "unable to parse this line: {}",
            String::from_utf8_lossy(line)
        ),
    )
}

/// The records one source line gives: `(key, data)` with data `+sender+sender...`, keys and
/// data lower-cased, IPv4 last-octet ranges expanded. `Ok(empty)` for comments and blank
/// lines; a line without `&`, with an empty key or an empty list entry is an error.
pub fn records(line: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let line = super::trim_end(line);
    if line.is_empty() || line.first() == Some(&b'#') {
        return Ok(Vec::new());
    }
    let amp = line
        .iter()
        .position(|&b| b == b'&')
        .filter(|&i| i > 0)
        .ok_or_else(|| parse_error(line))?;
    let key = line.get(..amp).unwrap_or_default().to_ascii_lowercase();
    let list = line.get(amp + 1..).unwrap_or_default();
    let mut data = Vec::new();
    if !list.is_empty() {
        for e in list.split(|&b| b == b',') {
            if e.is_empty() || e.iter().any(|b| b.is_ascii_whitespace() || *b == b'+') {
                return Err(parse_error(line));
            }
            data.push(b'+');
            data.extend_from_slice(&e.to_ascii_lowercase());
        }
    }
    let Some(dash) = key.iter().position(|&b| b == b'-') else {
        return Ok(vec![(key, data)]);
    };
    if key.contains(&b'=') || key.contains(&b'@') {
        return Ok(vec![(key, data)]);
    }
    // An IPv4 range in one octet: `prefix.LOW-HIGH[.rest]`.
    let left = key
        .get(..dash)
        .and_then(|k| k.iter().rposition(|&b| b == b'.'))
        .map_or(0, |i| i + 1);
    let right = key
        .get(dash + 1..)
        .and_then(|k| k.iter().position(|&b| b == b'.'))
        .map_or(key.len(), |i| dash + 1 + i);
    let num = |s: &[u8]| -> Result<u32> {
        std::str::from_utf8(s)
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
            .ok_or_else(|| parse_error(line))
    };
    let low = num(key.get(left..dash).unwrap_or_default())?;
    let high = num(key.get(dash + 1..right).unwrap_or_default())?.min(255);
    let mut out = Vec::new();
    for n in low..=high {
        let k = [
            key.get(..left).unwrap_or_default(),
            n.to_string().as_bytes(),
            key.get(right..).unwrap_or_default(),
        ]
        .concat();
        out.push((k, data.clone()));
    }
    Ok(out)
}

/// qmail-mfrules: compiles `control/mailfromrules` into `control/mailfromrules.cdb`. A line
/// that does not parse is a permanent failure (exit 100), naming the line.
pub fn compile(home: &Path) -> Result<()> {
    super::compile(home, SOURCE, CDB, TMP, &mut |line, add| {
        for (k, d) in records(line)? {
            add(&k, &d)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order() {
        let who = Client {
            ip: b"192.0.2.7".to_vec(),
            host: Some(b"Mx.Example.com".to_vec()),
            info: Some(b"joe".to_vec()),
        };
        let want: Vec<&[u8]> = vec![
            b"joe",
            b"joe@192.0.2.7",
            b"joe@=mx.example.com",
            b"192.0.2.7",
            b"=mx.example.com",
            b"192.0.2.",
            b"192.0.",
            b"192.",
            b"=.example.com",
            b"=.com",
            b"=",
        ];
        assert_eq!(
            keys(&who),
            want.iter().map(|k| k.to_vec()).collect::<Vec<_>>()
        );
        let v6 = Client {
            ip: b"2001:db8::1".to_vec(),
            ..Client::default()
        };
        let want: Vec<&[u8]> = vec![b"2001:db8::1", b"2001:db8::", b"2001:db8:", b"2001:"];
        assert_eq!(
            keys(&v6),
            want.iter().map(|k| k.to_vec()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn entries() {
        assert!(entry_matches(b"joe@example.com", b"joe@example.com"));
        assert!(!entry_matches(b"joe@example.com", b"bigjoe@example.com"));
        assert!(entry_matches(b"@example.com", b"joe@example.com"));
        assert!(entry_matches(b"example.com", b"joe@example.com"));
        assert!(entry_matches(b"example.com", b"joe@mx.example.com"));
        assert!(!entry_matches(b"example.com", b"joe@badexample.com"));
        assert!(entry_matches(b".example.com", b"joe@mx.example.com"));
        assert!(!entry_matches(b"", b"joe@example.com"));
    }

    #[test]
    fn source_lines() {
        assert_eq!(records(b"# c").unwrap(), vec![]);
        assert_eq!(
            records(b"Joe&Joe@Example.com,@example.net  \n").unwrap(),
            vec![(b"joe".to_vec(), b"+joe@example.com+@example.net".to_vec())]
        );
        assert_eq!(records(b"=&").unwrap(), vec![(b"=".to_vec(), vec![])]);
        let r = records(b"10.0.0.250-300&x.example").unwrap();
        assert_eq!(r.len(), 6);
        assert_eq!(r[0].0, b"10.0.0.250".to_vec());
        assert_eq!(r[5].0, b"10.0.0.255".to_vec());
        assert_eq!(records(b"10.1-2.&").unwrap().len(), 2);
        assert_eq!(records(b"10.1-2.&").unwrap()[1].0, b"10.2.".to_vec());
        assert_eq!(
            records(b"=mx-1.example&a").unwrap()[0].0,
            b"=mx-1.example".to_vec()
        );
        for bad in [
            &b"no ampersand"[..],
            b"&x",
            b"k&a,,b",
            b"k&a b",
            b"10.a-b&x",
        ] {
            assert!(records(bad).is_err(), "{bad:?}");
        }
    }
}
