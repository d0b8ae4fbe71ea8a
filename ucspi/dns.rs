//! A small DNS stub resolver that behaves as the djbdns client library inside ucspi-tcp:
//! PTR, A and AAAA questions with recursion desired, sent to the servers named in
//! `$DNSCACHEIP` or else in `/etc/resolv.conf` (127.0.0.1 when neither names one), port 53,
//! over UDP with per-server timeouts of 1, 3, 11 and 45 seconds in four rounds, and over TCP
//! when an answer is truncated. The C library and `/etc/hosts` are not consulted.
//!
//! Names come back as djbdns prints them: lower case, with bytes other than letters,
//! digits, `-` and `_` written as `\ooo`, and the root as `.`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::addr;

/// Seconds each server gets in each round.
const ROUNDS_SECS: [u64; 4] = [1, 3, 11, 45];
/// Seconds a TCP exchange gets.
const TCP_SECS: u64 = 10;
/// The most servers consulted.
const SERVERS_MAX: usize = 16;
/// The longest answer read over UDP (no EDNS).
const UDP_MAX: usize = 512;
/// The longest domain name in wire form.
const NAME_MAX: usize = 255;
/// The longest label.
const LABEL_MAX: usize = 63;
/// How much of `/etc/resolv.conf` is read.
const RESOLV_CONF_MAX: usize = 64 * 1024;

const T_A: u16 = 1;
const T_PTR: u16 = 12;
const T_AAAA: u16 = 28;
const C_IN: u16 = 1;

/// Where questions go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolver {
    servers: Vec<IpAddr>,
}

fn protocol_error() -> io::Error {
    io::Error::from_raw_os_error(crate::errstr::EPROTO)
}

impl Resolver {
    /// The servers from `$DNSCACHEIP`, else `/etc/resolv.conf`, else 127.0.0.1.
    pub fn from_env() -> Resolver {
        let cache = crate::environ::var("DNSCACHEIP");
        let mut list = cache_servers(cache.as_deref().unwrap_or_default());
        if list.is_empty() {
            let conf = std::fs::File::open("/etc/resolv.conf").ok().and_then(|f| {
                let mut v = Vec::new();
                f.take(RESOLV_CONF_MAX as u64).read_to_end(&mut v).ok()?;
                Some(v)
            });
            list = conf_servers(conf.as_deref().unwrap_or_default());
        }
        Resolver {
            servers: finish(list),
        }
    }

    /// A resolver asking these servers.
    pub fn with_servers(servers: Vec<IpAddr>) -> Resolver {
        Resolver { servers }
    }

    /// The name an address points back to (PTR); empty when it has none.
    ///
    /// # Errors
    /// No server answered, or the answer was malformed.
    pub fn name(&self, ip: IpAddr) -> io::Result<Vec<u8>> {
        let q = reverse_name(ip);
        let p = self.ask(&q, T_PTR)?;
        let mut r = Reader::new(&p);
        let ancount = r.header()?;
        for _ in 0..ancount {
            let (ty, class, start, len) = r.record()?;
            if ty == T_PTR && class == C_IN {
                let labels = read_name(&p, start)?;
                return Ok(todot(&labels));
            }
            r.pos = start + len;
        }
        Ok(Vec::new())
    }

    /// The IPv4 addresses of a name (A); a name of digits and dots is read, not looked up.
    ///
    /// # Errors
    /// A bad name, no server answered, or the answer was malformed.
    pub fn ip4(&self, name: &[u8]) -> io::Result<Vec<Ipv4Addr>> {
        if let Some(v) = addr::numeric_ip4(name) {
            return Ok(v);
        }
        let q = fromdot(name).ok_or_else(protocol_error)?;
        let data = self.data(&q, T_A, 4)?;
        Ok(data
            .iter()
            .filter_map(|d| <[u8; 4]>::try_from(d.as_slice()).ok())
            .map(Ipv4Addr::from)
            .collect())
    }

    /// The IPv6 addresses of a name (AAAA); an IPv6 literal is read, not looked up.
    ///
    /// # Errors
    /// A bad name, no server answered, or the answer was malformed.
    pub fn ip6(&self, name: &[u8]) -> io::Result<Vec<Ipv6Addr>> {
        if let Some(a) = addr::ipv6(name) {
            return Ok(vec![a]);
        }
        let q = fromdot(name).ok_or_else(protocol_error)?;
        let data = self.data(&q, T_AAAA, 16)?;
        Ok(data
            .iter()
            .filter_map(|d| <[u8; 16]>::try_from(d.as_slice()).ok())
            .map(Ipv6Addr::from)
            .collect())
    }

    /// The data of every answer record of type `ty`, class IN and length `len`.
    fn data(&self, q: &[u8], ty: u16, len: usize) -> io::Result<Vec<Vec<u8>>> {
        let p = self.ask(q, ty)?;
        let mut r = Reader::new(&p);
        let ancount = r.header()?;
        let mut out = Vec::new();
        for _ in 0..ancount {
            let (t, class, start, l) = r.record()?;
            if t == ty && class == C_IN && l == len {
                out.push(p.get(start..start + l).ok_or_else(protocol_error)?.to_vec());
            }
            r.pos = start + l;
        }
        Ok(out)
    }

    /// Sends the question to the servers in turn until one gives a usable answer.
    fn ask(&self, qname: &[u8], qtype: u16) -> io::Result<Vec<u8>> {
        let id = random_id();
        let query = build_query(id, qname, qtype);
        let mut last = io::Error::from(io::ErrorKind::TimedOut);
        let mut failed = vec![false; self.servers.len()];
        for secs in ROUNDS_SECS {
            for (server, failed) in self.servers.iter().zip(failed.iter_mut()) {
                if *failed {
                    continue;
                }
                let to = SocketAddr::new(*server, 53);
                match udp(&to, &query, Duration::from_secs(secs)) {
                    Ok(Answer::Good(p)) => return Ok(p),
                    Ok(Answer::Truncated) => match tcp(&to, &query) {
                        Ok(Answer::Good(p)) => return Ok(p),
                        Ok(_) => *failed = true,
                        Err(e) => last = e,
                    },
                    Ok(Answer::ServerFailed) => *failed = true,
                    Err(e) => last = e,
                }
            }
        }
        Err(last)
    }
}

/// The server list from `$DNSCACHEIP` (addresses separated by dots, spaces or commas) or
/// else from the `nameserver` lines of resolv.conf, or else 127.0.0.1.
#[cfg(test)]
fn servers(dnscacheip: Option<&[u8]>, resolv_conf: Option<&[u8]>) -> Vec<IpAddr> {
    let mut out = cache_servers(dnscacheip.unwrap_or_default());
    if out.is_empty() {
        out = conf_servers(resolv_conf.unwrap_or_default());
    }
    finish(out)
}

/// 127.0.0.1 when no server was named; at most [`SERVERS_MAX`].
fn finish(mut out: Vec<IpAddr>) -> Vec<IpAddr> {
    if out.is_empty() {
        out.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    out.truncate(SERVERS_MAX);
    out
}

/// The servers named in `$DNSCACHEIP`.
fn cache_servers(x: &[u8]) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for word in x
        .split(|&c| c == b' ' || c == b',' || c == b'\t')
        .filter(|w| !w.is_empty())
    {
        if let Some(a) = addr::ipv6(word) {
            out.push(IpAddr::V6(a));
            continue;
        }
        let mut rest = word;
        loop {
            if let Some(r) = rest.strip_prefix(b".") {
                rest = r;
                continue;
            }
            let Some((ip, n)) = addr::ip4_scan(rest) else {
                break;
            };
            out.push(IpAddr::V4(ip));
            rest = rest.get(n..).unwrap_or_default();
        }
    }
    out
}

/// The servers named on the `nameserver` lines of resolv.conf (0.0.0.0 means 127.0.0.1).
fn conf_servers(conf: &[u8]) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in conf.split(|&c| c == b'\n') {
        let Some(rest) = line
            .strip_prefix(b"nameserver ")
            .or_else(|| line.strip_prefix(b"nameserver\t"))
        else {
            continue;
        };
        let rest = trim_start(rest);
        let word = rest
            .split(|&c| c == b' ' || c == b'\t' || c == b'\r')
            .next()
            .unwrap_or_default();
        if let Some(a) = addr::ipv6(word) {
            out.push(IpAddr::V6(a));
        } else if let Some((ip, _)) = addr::ip4_scan(rest) {
            out.push(IpAddr::V4(if ip.is_unspecified() {
                Ipv4Addr::LOCALHOST
            } else {
                ip
            }));
        }
    }
    out
}

fn trim_start(s: &[u8]) -> &[u8] {
    let i = s
        .iter()
        .position(|&c| c != b' ' && c != b'\t')
        .unwrap_or(s.len());
    s.get(i..).unwrap_or_default()
}

fn random_id() -> u16 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    #[allow(clippy::cast_possible_truncation)] // any 16 bits of the hash will do
    {
        h.finish() as u16
    }
}

/// The wire-form name of the PTR question for an address.
pub fn reverse_name(ip: IpAddr) -> Vec<u8> {
    let mut labels: Vec<Vec<u8>> = match ip {
        IpAddr::V4(a) => {
            let mut l: Vec<Vec<u8>> = a
                .octets()
                .iter()
                .rev()
                .map(|o| o.to_string().into_bytes())
                .collect();
            l.push(b"in-addr".to_vec());
            l
        }
        IpAddr::V6(a) => {
            let mut l: Vec<Vec<u8>> = a
                .octets()
                .iter()
                .rev()
                .flat_map(|o| [o & 15, o >> 4])
                .map(|n| {
                    vec![
                        b"0123456789abcdef"
                            .get(usize::from(n))
                            .copied()
                            .unwrap_or(b'0'),
                    ]
                })
                .collect();
            l.push(b"ip6".to_vec());
            l
        }
    };
    labels.push(b"arpa".to_vec());
    wire(&labels)
}

fn wire(labels: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in labels {
        out.push(u8::try_from(l.len()).unwrap_or(0));
        out.extend_from_slice(l);
    }
    out.push(0);
    out
}

/// djbdns's `dns_domain_fromdot`: dotted text (with `\ooo` and `\c` escapes) to wire form;
/// empty labels are skipped. `None` for an overlong label or name.
pub fn fromdot(text: &[u8]) -> Option<Vec<u8>> {
    let mut labels: Vec<Vec<u8>> = Vec::new();
    let mut label = Vec::new();
    let mut i = 0;
    while let Some(&c) = text.get(i) {
        i += 1;
        let ch = match c {
            b'.' => {
                if !label.is_empty() {
                    labels.push(std::mem::take(&mut label));
                }
                continue;
            }
            b'\\' => {
                let mut v: u32 = 0;
                let mut n = 0;
                while n < 3 {
                    match text.get(i) {
                        Some(&d) if (b'0'..=b'7').contains(&d) => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                            n += 1;
                        }
                        _ => break,
                    }
                }
                if n > 0 {
                    u8::try_from(v & 255).unwrap_or(0)
                } else {
                    let d = text.get(i).copied()?;
                    i += 1;
                    d
                }
            }
            other => other,
        };
        if label.len() >= LABEL_MAX {
            return None;
        }
        label.push(ch);
    }
    if !label.is_empty() {
        labels.push(label);
    }
    let w = wire(&labels);
    (w.len() <= NAME_MAX).then_some(w)
}

/// djbdns's `dns_domain_todot_cat`.
pub fn todot(labels: &[Vec<u8>]) -> Vec<u8> {
    if labels.is_empty() {
        return b".".to_vec();
    }
    let mut out = Vec::new();
    for (k, l) in labels.iter().enumerate() {
        if k > 0 {
            out.push(b'.');
        }
        for &c in l {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_' {
                out.push(c);
            } else {
                out.extend_from_slice(&[
                    b'\\',
                    b'0' + (c >> 6),
                    b'0' + ((c >> 3) & 7),
                    b'0' + (c & 7),
                ]);
            }
        }
    }
    out
}

fn build_query(id: u16, qname: &[u8], qtype: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(12 + qname.len() + 4);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(qname);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&C_IN.to_be_bytes());
    q
}

/// What one exchange with a server gave.
enum Answer {
    Good(Vec<u8>),
    Truncated,
    ServerFailed,
}

/// Judges a reply to `query`: `None` when it is not a reply to it at all.
fn judge(query: &[u8], reply: &[u8]) -> Option<Answer> {
    if reply.len() < 12 || reply.get(..2) != query.get(..2) {
        return None;
    }
    let flags = reply.get(2).copied()?;
    if flags & 0x80 == 0 {
        return None;
    }
    let question = query.get(12..)?;
    let qd = u16::from_be_bytes([*reply.get(4)?, *reply.get(5)?]);
    let theirs = reply.get(12..12 + question.len())?;
    if qd != 1 || !theirs.eq_ignore_ascii_case(question) {
        return None;
    }
    let rcode = reply.get(3).copied()? & 15;
    if rcode != 0 && rcode != 3 {
        return Some(Answer::ServerFailed);
    }
    if flags & 2 != 0 {
        return Some(Answer::Truncated);
    }
    Some(Answer::Good(reply.to_vec()))
}

fn udp(to: &SocketAddr, query: &[u8], wait: Duration) -> io::Result<Answer> {
    let local: SocketAddr = if to.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(local)?;
    s.connect(to)?;
    s.send(query)?;
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; UDP_MAX];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        }
        s.set_read_timeout(Some(left))?;
        match s.recv(&mut buf) {
            Ok(n) => {
                if let Some(a) = judge(query, buf.get(..n).unwrap_or_default()) {
                    return Ok(a);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(io::Error::from(io::ErrorKind::TimedOut));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn tcp(to: &SocketAddr, query: &[u8]) -> io::Result<Answer> {
    let wait = Duration::from_secs(TCP_SECS);
    let mut s = TcpStream::connect_timeout(to, wait)?;
    s.set_read_timeout(Some(wait))?;
    s.set_write_timeout(Some(wait))?;
    let len = u16::try_from(query.len()).map_err(|_| protocol_error())?;
    let mut msg = len.to_be_bytes().to_vec();
    msg.extend_from_slice(query);
    s.write_all(&msg)?;
    let mut lb = [0u8; 2];
    s.read_exact(&mut lb)?;
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(lb))];
    s.read_exact(&mut reply)?;
    match judge(query, &reply) {
        Some(Answer::Truncated) | None => Err(protocol_error()),
        Some(a) => Ok(a),
    }
}

/// Walks the answer section of a reply.
struct Reader<'a> {
    p: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(p: &'a [u8]) -> Reader<'a> {
        Reader { p, pos: 0 }
    }

    fn u16_at(&self, at: usize) -> io::Result<u16> {
        match (self.p.get(at), self.p.get(at + 1)) {
            (Some(&a), Some(&b)) => Ok(u16::from_be_bytes([a, b])),
            _ => Err(protocol_error()),
        }
    }

    /// Skips the header and the question; returns the answer count.
    fn header(&mut self) -> io::Result<u16> {
        let ancount = self.u16_at(6)?;
        self.pos = skip_name(self.p, 12)? + 4;
        Ok(ancount)
    }

    /// The next record's type, class, data position and data length.
    fn record(&mut self) -> io::Result<(u16, u16, usize, usize)> {
        let at = skip_name(self.p, self.pos)?;
        let ty = self.u16_at(at)?;
        let class = self.u16_at(at + 2)?;
        let len = usize::from(self.u16_at(at + 8)?);
        let start = at + 10;
        if start + len > self.p.len() {
            return Err(protocol_error());
        }
        Ok((ty, class, start, len))
    }
}

fn skip_name(p: &[u8], mut pos: usize) -> io::Result<usize> {
    loop {
        let c = *p.get(pos).ok_or_else(protocol_error)?;
        if c >= 192 {
            return if pos + 2 <= p.len() {
                Ok(pos + 2)
            } else {
                Err(protocol_error())
            };
        }
        if c >= 64 {
            return Err(protocol_error());
        }
        pos += 1 + usize::from(c);
        if c == 0 {
            return Ok(pos);
        }
    }
}

/// Reads a possibly compressed name at `pos` into its labels.
fn read_name(p: &[u8], mut pos: usize) -> io::Result<Vec<Vec<u8>>> {
    let mut labels = Vec::new();
    let mut total = 1;
    let mut hops = 0;
    loop {
        let c = *p.get(pos).ok_or_else(protocol_error)?;
        if c >= 192 {
            hops += 1;
            if hops > 100 {
                return Err(protocol_error());
            }
            let lo = *p.get(pos + 1).ok_or_else(protocol_error)?;
            pos = (usize::from(c & 63) << 8) | usize::from(lo);
            continue;
        }
        if c >= 64 {
            return Err(protocol_error());
        }
        if c == 0 {
            return Ok(labels);
        }
        let l = p
            .get(pos + 1..pos + 1 + usize::from(c))
            .ok_or_else(protocol_error)?;
        total += 1 + l.len();
        if total > NAME_MAX {
            return Err(protocol_error());
        }
        labels.push(l.to_vec());
        pos += 1 + usize::from(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lists() {
        let v4 = |s: &str| IpAddr::V4(s.parse().unwrap());
        assert_eq!(servers(Some(b"10.0.0.1"), None), vec![v4("10.0.0.1")]);
        assert_eq!(
            servers(Some(b"10.0.0.1.10.0.0.2"), None),
            vec![v4("10.0.0.1"), v4("10.0.0.2")]
        );
        assert_eq!(
            servers(Some(b"10.0.0.1 ::1"), None),
            vec![v4("10.0.0.1"), IpAddr::V6(Ipv6Addr::LOCALHOST)]
        );
        let conf = b"domain x\nnameserver 1.2.3.4\nnameserver\t 0.0.0.0\n#nameserver 9.9.9.9\n";
        assert_eq!(
            servers(None, Some(conf)),
            vec![v4("1.2.3.4"), v4("127.0.0.1")]
        );
        assert_eq!(servers(Some(b""), None), vec![v4("127.0.0.1")]);
    }

    #[test]
    fn names_convert_as_djbdns_does() {
        assert_eq!(
            reverse_name(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))),
            b"\x011\x010\x010\x03127\x07in-addr\x04arpa\0"
        );
        let six = reverse_name(IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert!(six.starts_with(b"\x011\x010\x010"));
        assert!(six.ends_with(b"\x03ip6\x04arpa\0"));
        assert_eq!(
            fromdot(b"Mx.A.example."),
            Some(b"\x02Mx\x01A\x07example\0".to_vec())
        );
        assert_eq!(fromdot(b"a\\056b..c"), Some(b"\x03a.b\x01c\0".to_vec()));
        assert_eq!(fromdot(&[b'a'; 64]), None);
        assert_eq!(
            todot(&[b"Mx".to_vec(), b"A b.".to_vec()]),
            b"mx.a\\040b\\056"
        );
        assert_eq!(todot(&[]), b".");
    }

    #[test]
    fn replies_are_matched_to_their_question() {
        let q = build_query(7, &fromdot(b"a.example").unwrap(), T_A);
        let mut r = q.clone();
        r[2] |= 0x80;
        r[7] = 1;
        r.extend_from_slice(b"\xc0\x0c\0\x01\0\x01\0\0\0\x10\0\x04\x01\x02\x03\x04");
        assert!(matches!(judge(&q, &r), Some(Answer::Good(_))));
        let p = match judge(&q, &r) {
            Some(Answer::Good(p)) => p,
            _ => unreachable!(),
        };
        let mut rd = Reader::new(&p);
        assert_eq!(rd.header().unwrap(), 1);
        let (ty, class, start, len) = rd.record().unwrap();
        assert_eq!((ty, class, len), (T_A, C_IN, 4));
        assert_eq!(&p[start..start + len], &[1, 2, 3, 4]);
        let mut other = r.clone();
        other[1] = 8;
        assert!(judge(&q, &other).is_none(), "wrong id");
        let mut fail = r.clone();
        fail[3] = 2;
        assert!(matches!(judge(&q, &fail), Some(Answer::ServerFailed)));
        let mut nx = r;
        nx[3] = 3;
        assert!(matches!(judge(&q, &nx), Some(Answer::Good(_))));
    }

    #[test]
    fn compressed_names_are_bounded() {
        let p = b"\x03abc\xc0\x00";
        assert!(read_name(p, 0).is_err(), "a pointer loop ends");
        let p = b"\x03abc\x00\xc0\x00";
        assert_eq!(read_name(p, 5).unwrap(), vec![b"abc".to_vec()]);
        assert!(skip_name(b"\x05ab", 0).is_err(), "a label past the end");
    }
}
