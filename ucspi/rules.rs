//! The tcprules database: compiling rule lines into cdb records, looking a connection up
//! in the order tcpserver uses, and reading the instructions a record holds.
//!
//! Compilation is DJB's tcprules 0.88 byte for byte: every line 0.88 accepts gives the
//! records 0.88 writes. ucspi-tcp6's forms are added where 0.88 has nothing useful: an IPv4
//! CIDR block (`10.0.0.0/8`, `127./8`) becomes the key `_` + bit string; a line that 0.88
//! cannot parse because its address holds colons is read the IPv6 way (the address ends
//! at the last colon before the first comma). An IPv6 CIDR block becomes ucspi-tcp6's `^` +
//! bit string; an IPv6 address, `info@` one, or a prefix of one ending in a colon or dot is
//! kept as written, as the IPv6 patch of 0.88 (Debian's ucspi-tcp-ipv6) keeps it.
//!
//! Lookups try both IPv6 spellings: the address as the server prints it (the 0.88 patch's
//! key, with its prefixes ending in a colon or dot) and the expanded upper-case form that
//! ucspi-tcp6's tcprules writes. So databases from either tcprules work here, and ours work
//! under the 0.88 patch's tcpserver.

use std::io;
use std::net::IpAddr;

use crate::addr;

/// One database record: key and data.
pub type Record = (Vec<u8>, Vec<u8>);

/// A rule line that is neither a comment nor a rule: tcprules stops with
/// `unable to parse this line`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine;

/// Removes what tcprules removes from the end of a line: newlines, spaces and tabs.
pub fn trim(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|&c| c != b'\n' && c != b' ' && c != b'\t')
        .map_or(0, |i| i + 1);
    line.get(..end).unwrap_or_default()
}

/// The records one input line (with or without its newline) adds to the database, in
/// order. Comments, empty lines and lines without a colon add none.
///
/// # Errors
/// [`BadLine`] when the line is not a rule.
pub fn compile(line: &[u8]) -> Result<Vec<Record>, BadLine> {
    if line.first().is_none_or(|&c| c == b'#' || c == b'\n') {
        return Ok(Vec::new());
    }
    let x = trim(line);
    let Some(colon) = x.iter().position(|&c| c == b':') else {
        return Ok(Vec::new());
    };
    let (address, rest) = (x.get(..colon).unwrap_or_default(), x.get(colon + 1..));
    match instructions(rest.unwrap_or_default()) {
        Ok(data) => Ok(keys(address)?
            .into_iter()
            .map(|k| (k, data.clone()))
            .collect()),
        Err(BadLine) => ipv6_line(x).ok_or(BadLine),
    }
}

/// The data of a rule: `D\0` for deny, then `+NAME=value\0` for each variable.
fn instructions(x: &[u8]) -> Result<Vec<u8>, BadLine> {
    let mut data = Vec::new();
    let mut x = if let Some(r) = x.strip_prefix(b"deny") {
        data.extend_from_slice(b"D\0");
        r
    } else {
        x.strip_prefix(b"allow").ok_or(BadLine)?
    };
    while let Some(after) = x.strip_prefix(b",") {
        let eq = after.iter().position(|&c| c == b'=').ok_or(BadLine)?;
        data.push(b'+');
        data.extend_from_slice(after.get(..=eq).ok_or(BadLine)?);
        let value = after.get(eq + 1..).unwrap_or_default();
        let (&quote, value) = value.split_first().ok_or(BadLine)?;
        let end = value.iter().position(|&c| c == quote).ok_or(BadLine)?;
        data.extend_from_slice(value.get(..end).unwrap_or_default());
        data.push(0);
        x = value.get(end + 1..).unwrap_or_default();
    }
    if x.is_empty() { Ok(data) } else { Err(BadLine) }
}

/// The keys 0.88 writes for an address (a last-octet range gives one key per number),
/// with IPv4 CIDR blocks turned into ucspi-tcp6 bit-string keys.
fn keys(address: &[u8]) -> Result<Vec<Vec<u8>>, BadLine> {
    if address.contains(&b'=') || address.contains(&b'@') {
        return Ok(vec![address.to_vec()]);
    }
    if let Some((ip, len)) = addr::cidr4(address) {
        let mut k = b"_".to_vec();
        k.extend_from_slice(addr::bits4(&ip).get(..len).unwrap_or_default());
        return Ok(vec![k]);
    }
    match address.iter().position(|&c| c == b'-') {
        Some(dash) => range(address, dash),
        None => Ok(vec![address.to_vec()]),
    }
}

/// `1.2.3.4-20` (or `1.2.3-5.`): the part before the number holding the dash and the part
/// from the next dot on are kept; the number runs from its low to its high value (at most
/// 255). Bounds that are not plain numbers make the line bad, as in 0.88.
fn range(address: &[u8], dash: usize) -> Result<Vec<Vec<u8>>, BadLine> {
    let left = address
        .get(..dash)
        .and_then(|a| a.iter().rposition(|&c| c == b'.'))
        .map_or(0, |i| i + 1);
    let after = address.get(dash + 1..).unwrap_or_default();
    let right = dash + 1 + after.iter().position(|&c| c == b'.').unwrap_or(after.len());
    let bot = whole_number(address.get(left..dash).unwrap_or_default()).ok_or(BadLine)?;
    let top = whole_number(address.get(dash + 1..right).unwrap_or_default()).ok_or(BadLine)?;
    let (head, tail) = (
        address.get(..left).unwrap_or_default(),
        address.get(right..).unwrap_or_default(),
    );
    Ok((bot..=top.min(255))
        .map(|n| {
            let mut k = head.to_vec();
            k.extend_from_slice(n.to_string().as_bytes());
            k.extend_from_slice(tail);
            k
        })
        .collect())
}

/// The whole of `s` as DJB's getnum reads it (digits only; empty is 0).
fn whole_number(s: &[u8]) -> Option<u64> {
    let (v, n) = addr::scan_ulong(s);
    (n == s.len()).then_some(v)
}

/// A line whose address holds colons, read the IPv6 way.
fn ipv6_line(x: &[u8]) -> Option<Vec<Record>> {
    let comma = x.iter().position(|&c| c == b',').unwrap_or(x.len());
    let colon = x.get(..comma)?.iter().rposition(|&c| c == b':')?;
    let (address, rest) = (x.get(..colon)?, x.get(colon + 1..)?);
    if !address.contains(&b':') || address.contains(&b'=') {
        return None;
    }
    let data = instructions(rest).ok()?;
    let ip = address
        .iter()
        .position(|&c| c == b'@')
        .map_or(address, |at| address.get(at + 1..).unwrap_or_default());
    let key = if let Some((ip, len)) = addr::cidr6(address) {
        let mut k = b"^".to_vec();
        k.extend_from_slice(addr::bits6(&ip).get(..len)?);
        k
    } else if addr::ipv6(ip).is_some() || is_ipv6_prefix(ip) {
        address.to_vec()
    } else {
        return None;
    };
    Some(vec![(key, data)])
}

/// A leading part of an IPv6 address as the 0.88 patch matches it: hex digits, colons and
/// dots, ending in a colon or a dot.
fn is_ipv6_prefix(s: &[u8]) -> bool {
    s.last().is_some_and(|&c| c == b':' || c == b'.')
        && s.iter()
            .all(|&c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
}

/// Opens a rules database: `Ok(None)` when it does not exist. A file too short or
/// otherwise malformed reads as DJB's reader reports it (an empty file: invalid argument;
/// else: protocol error).
///
/// # Errors
/// The file exists but cannot be used.
pub fn open(path: &std::path::Path) -> io::Result<Option<sqmail::cdb::Reader>> {
    match sqmail::cdb::Reader::open(path) {
        Err(e) if e.raw_os_error().is_none() => {
            let empty = std::fs::metadata(path).is_ok_and(|m| m.len() == 0);
            Err(io::Error::from_raw_os_error(if empty {
                crate::errstr::EINVAL
            } else {
                crate::errstr::EPROTO
            }))
        }
        r => r,
    }
}

/// A database to look keys up in.
pub trait Lookup {
    /// The data of the first record with this key.
    ///
    /// # Errors
    /// An unreadable or malformed database.
    fn find(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>>;
}

impl Lookup for sqmail::cdb::Reader {
    fn find(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        self.get(key)
    }
}

/// The keys tried for a connection, in order; the first that exists wins.
///
/// `ip` is the text of TCPREMOTEIP, `host` TCPREMOTEHOST and `info` TCPREMOTEINFO when
/// known. For an IPv4 address: `info@ip`, `info@=host`, `ip`, `=host`, each prefix of `ip`
/// ending in a dot (longest first), the CIDR keys `_`+bits (/32 down to /1), each suffix
/// of `host` from a dot on preceded by `=`, `=`, and the empty key. For an IPv6 address
/// each address key is tried as written and then expanded, the prefixes end in a colon or a
/// dot, and the CIDR keys are `^`+bits.
pub fn candidates(ip: &[u8], host: Option<&[u8]>, info: Option<&[u8]>) -> Vec<Vec<u8>> {
    let v6 = if ip.contains(&b':') {
        addr::ipv6(ip)
    } else {
        None
    };
    let mut ipkeys: Vec<Vec<u8>> = vec![ip.to_vec()];
    if let Some(a) = v6 {
        let e = addr::expanded(&a).into_bytes();
        if e != ip {
            ipkeys.push(e);
        }
    }
    let cat = |parts: &[&[u8]]| parts.concat();
    let mut out = Vec::new();
    if let Some(info) = info {
        out.extend(ipkeys.iter().map(|k| cat(&[info, b"@", k])));
        if let Some(h) = host {
            out.push(cat(&[info, b"@=", h]));
        }
    }
    out.extend(ipkeys.iter().cloned());
    if let Some(h) = host {
        out.push(cat(&[b"=", h]));
    }
    let six = ip.contains(&b':');
    out.extend(
        (1..ip.len())
            .rev()
            .filter(|&n| {
                matches!(ip.get(n - 1), Some(b'.')) || (six && ip.get(n - 1) == Some(&b':'))
            })
            .map(|n| ip.get(..n).unwrap_or_default().to_vec()),
    );
    if six {
        if let Some(a) = v6 {
            let bits = addr::bits6(&a);
            out.extend(
                (1..=128)
                    .rev()
                    .map(|p| cat(&[b"^", bits.get(..p).unwrap_or_default()])),
            );
        }
    } else if let Some((a, _)) = addr::ip4_scan(ip).filter(|&(_, n)| n == ip.len()) {
        let bits = addr::bits4(&a);
        out.extend(
            (1..=32)
                .rev()
                .map(|p| cat(&[b"_", bits.get(..p).unwrap_or_default()])),
        );
    }
    if let Some(h) = host {
        out.extend(
            (0..h.len())
                .filter(|&i| h.get(i) == Some(&b'.'))
                .map(|i| cat(&[b"=", h.get(i..).unwrap_or_default()])),
        );
        out.push(b"=".to_vec());
    }
    out.push(Vec::new());
    out
}

/// The rule a connection follows: the key that matched and its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The key that matched.
    pub key: Vec<u8>,
    /// Its data.
    pub data: Vec<u8>,
}

/// Looks a connection up; `None` means no rule applies (allow, no variables).
///
/// # Errors
/// The database could not be read.
pub fn lookup(
    db: &impl Lookup,
    ip: &[u8],
    host: Option<&[u8]>,
    info: Option<&[u8]>,
) -> io::Result<Option<Found>> {
    for key in candidates(ip, host, info) {
        if let Some(data) = db.find(&key)? {
            return Ok(Some(Found { key, data }));
        }
    }
    Ok(None)
}

/// One NUL-terminated item of a rule's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// `D...`: drop the connection.
    Deny,
    /// `+...`: the text after the plus (`NAME=value`, or anything for tcprulescheck).
    Set(&'a [u8]),
    /// Anything else: ignored.
    Other,
}

/// The items of a rule's data; bytes after the last NUL are not an item.
pub fn items(data: &[u8]) -> Vec<Item<'_>> {
    let Some(last) = data.iter().rposition(|&c| c == 0) else {
        return Vec::new();
    };
    data.get(..last)
        .unwrap_or_default()
        .split(|&c| c == 0)
        .map(|it| match it.first() {
            Some(b'D') => Item::Deny,
            Some(b'+') => Item::Set(it.get(1..).unwrap_or_default()),
            _ => Item::Other,
        })
        .collect()
}

/// What a rule tells tcpserver: whether to drop the connection and which variables to set
/// (in order; a later one wins).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// Drop the connection.
    pub deny: bool,
    /// NAME, value pairs.
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Reads a rule's data the way tcpserver does: any `D` item denies; a `+` item sets the
/// variable named before its first `=`; a `+` item without `=` is ignored.
pub fn decide(data: &[u8]) -> Decision {
    let mut d = Decision::default();
    for it in items(data) {
        match it {
            Item::Deny => d.deny = true,
            Item::Set(nv) => {
                if let Some(eq) = nv.iter().position(|&c| c == b'=') {
                    let (n, v) = (nv.get(..eq), nv.get(eq + 1..));
                    d.env.push((
                        n.unwrap_or_default().to_vec(),
                        v.unwrap_or_default().to_vec(),
                    ));
                }
            }
            Item::Other => {}
        }
    }
    d
}

/// The remote address as a rule key sees it (dotted decimal or compact IPv6 text).
pub fn ip_text(ip: IpAddr) -> Vec<u8> {
    addr::text(ip).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn one(line: &str) -> Vec<Record> {
        compile(line.as_bytes()).unwrap()
    }

    #[test]
    fn data_follows_tcprules_088() {
        assert_eq!(one(":allow\n"), vec![(vec![], vec![])]);
        assert_eq!(one(":deny"), vec![(vec![], b"D\0".to_vec())]);
        assert_eq!(
            one("10.0.:allow,RELAYCLIENT=\"\"  \t\n"),
            vec![(b"10.0.".to_vec(), b"+RELAYCLIENT=\0".to_vec())]
        );
        assert_eq!(
            one("=.spam.example:deny,X=/y:z/,Y=vav"),
            vec![(b"=.spam.example".to_vec(), b"D\0+X=y:z\0+Y=a\0".to_vec())]
        );
        assert!(one("# comment:deny").is_empty());
        assert!(one("no colon here").is_empty());
        assert!(one("   ").is_empty());
        assert!(one("\n").is_empty());
        assert_eq!(
            one(" 1.2.3.4:allow")[0].0,
            b" 1.2.3.4",
            "leading space is kept"
        );
    }

    #[test]
    fn bad_lines_are_refused() {
        for l in [
            "1.2.3.4:allo",
            "1.2.3.4:allow junk",
            "1.2.3.4:allow,X",
            "1.2.3.4:allow,X=",
            "1.2.3.4:allow,X=\"open",
            "1.2.3.4: allow",
            "a:b:allow",
        ] {
            assert_eq!(compile(l.as_bytes()), Err(BadLine), "{l}");
        }
    }

    #[test]
    fn ranges_write_one_key_per_number() {
        let k: Vec<_> = one("1.2.3.4-6:allow").into_iter().map(|r| r.0).collect();
        assert_eq!(
            k,
            vec![
                b"1.2.3.4".to_vec(),
                b"1.2.3.5".to_vec(),
                b"1.2.3.6".to_vec()
            ]
        );
        let k: Vec<_> = one("1.2.3-4.:allow").into_iter().map(|r| r.0).collect();
        assert_eq!(k, vec![b"1.2.3.".to_vec(), b"1.2.4.".to_vec()]);
        assert_eq!(one("1.2.3.250-300:allow").len(), 6, "capped at 255");
        assert!(one("1.2.3.9-5:allow").is_empty());
        assert_eq!(one("x@1.2.3.4-6:allow").len(), 1, "not a range with @");
        assert_eq!(compile(b"1.2.3.x-5:allow"), Err(BadLine));
        assert_eq!(compile(b"1.2.3.4-5x:allow"), Err(BadLine));
        assert_eq!(one("1.2.3.-2:allow").len(), 3, "an empty bound is 0");
    }

    #[test]
    fn ucspi_tcp6_forms() {
        assert_eq!(one("10.0.0.0/8:deny")[0].0, b"_0000e0g0");
        assert_eq!(one("127./8:allow")[0].0, b"_0bcdefgh");
        assert_eq!(
            one("2001:db8::1:allow,X=\"a:b\"")[0],
            (b"2001:db8::1".to_vec(), b"+X=a:b\0".to_vec())
        );
        assert_eq!(one("joe@::1:deny")[0].0, b"joe@::1");
        assert_eq!(one("2001:db8:1::allow")[0].0, b"2001:db8:1:");
        assert_eq!(one("::ffff:1.2.3.:allow")[0].0, b"::ffff:1.2.3.");
        let k = &one("2002::/16:deny")[0].0;
        assert_eq!(k.len(), 17);
        assert_eq!(k[0], b'^');
        assert_eq!(compile(b"2001:zz::1:allow"), Err(BadLine));
    }

    struct Db(HashMap<Vec<u8>, Vec<u8>>);
    impl Lookup for Db {
        fn find(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
            Ok(self.0.get(key).cloned())
        }
    }

    fn db(lines: &[&str]) -> Db {
        let mut m = HashMap::new();
        for l in lines {
            for (k, v) in one(l) {
                m.entry(k).or_insert(v);
            }
        }
        Db(m)
    }

    #[test]
    fn lookup_order_is_djbs() {
        let d = db(&[
            "joe@127.0.0.1:allow,R=\"1\"",
            "18.23.0.32:allow,R=\"2\"",
            ":allow,R=\"3\"",
            "127.:allow,R=\"4\"",
            "=.example:allow,R=\"5\"",
            "10.0.0.0/8:allow,R=\"6\"",
        ]);
        let r = |ip: &str, host: Option<&str>, info: Option<&str>| {
            let f = lookup(
                &d,
                ip.as_bytes(),
                host.map(str::as_bytes),
                info.map(str::as_bytes),
            )
            .unwrap()
            .unwrap();
            decide(&f.data).env[0].1.clone()
        };
        assert_eq!(r("10.119.75.38", None, None), b"6");
        assert_eq!(r("11.119.75.38", None, None), b"3");
        assert_eq!(r("18.23.0.32", None, None), b"2");
        assert_eq!(r("127.0.0.1", None, Some("bill")), b"4");
        assert_eq!(r("127.0.0.1", None, Some("joe")), b"1");
        assert_eq!(r("9.9.9.9", Some("a.b.example"), None), b"5");
    }

    #[test]
    fn candidates_for_ipv6() {
        let c = candidates(b"::1", Some(b"h.x"), Some(b"u"));
        assert_eq!(c[0], b"u@::1");
        assert_eq!(c[1], b"u@0000:0000:0000:0000:0000:0000:0000:0001");
        assert_eq!(c[2], b"u@=h.x");
        assert_eq!(c[3], b"::1");
        assert_eq!(c[4], b"0000:0000:0000:0000:0000:0000:0000:0001");
        assert_eq!(c[5], b"=h.x");
        assert_eq!(&c[6..8], [b"::".to_vec(), b":".to_vec()]);
        assert_eq!(c[8].len(), 129);
        let p = candidates(b"2001:db8:1::7", None, None);
        let want: [&[u8]; 4] = [b"2001:db8:1::", b"2001:db8:1:", b"2001:db8:", b"2001:"];
        assert_eq!(&p[2..6], want);
        assert_eq!(c.last().unwrap(), b"");
        assert!(c.contains(&b"=.x".to_vec()));
    }

    #[test]
    fn items_and_decisions() {
        let d = decide(b"D\0+A=1\0+B\0xjunk\0+C=2");
        assert!(d.deny);
        assert_eq!(d.env, vec![(b"A".to_vec(), b"1".to_vec())]);
        assert_eq!(items(b"+X=\0"), vec![Item::Set(b"X=")]);
        assert!(items(b"").is_empty());
    }
}
