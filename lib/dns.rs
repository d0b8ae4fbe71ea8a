//! DNS lookups behind a small synchronous API: A, AAAA, MX (with qmail's A fallback), CNAME,
//! TXT, PTR and TLSA.
//!
//! hickory-resolver is async-only, so a [`Resolver`] owns one tokio current_thread runtime
//! and blocks on each lookup; nothing async leaks out of this module. Programs that need no
//! DNS never build one.
//!
//! Every lookup returns `Ok(vec![])` when the name does not exist or has no record of the
//! type asked for (NXDOMAIN, NODATA: a definite answer), and a temporary [`Failure`] when no
//! answer could be had (timeout, SERVFAIL, REFUSED, no server).
//!
//! Which server is asked:
//! * `$DNSCACHEIP`, as in djbdns: one or more addresses separated by spaces or commas. An
//!   entry may carry a port, `127.0.0.1:5353` or `[::1]:5353` (an extension of this package;
//!   a bare IPv6 address such as `::1` means port 53);
//! * otherwise the `nameserver` lines of `/etc/resolv.conf`;
//! * otherwise 127.0.0.1 port 53.
//!
//! Names are always looked up as absolute names: no search list, no `/etc/hosts`.
//!
//! TLSA queries do not go through hickory's resolver: they are sent by [`Resolver::tlsa`]
//! itself, with the AD and DO bits set, so that the answer says whether the (validating)
//! server authenticated it. Nothing here validates DNSSEC signatures: like djbdns and
//! s/qmail's resolver, the local cache is trusted, and a TLSA answer counts for DANE only
//! when that cache set the AD bit.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{Resolver as Hickory, TokioResolver};

use crate::env;
use crate::fail::{Failure, Kind};

/// Seconds one query waits for an answer before it is sent again.
pub const QUERY_TIMEOUT_SECS: u64 = 5;
/// How many times an unanswered query is sent again (so a dead server costs
/// `QUERY_TIMEOUT_SECS * (RETRIES + 1)`).
pub const RETRIES: usize = 1;
/// At most this many name servers are used, as in resolv.conf.
pub const MAX_SERVERS: usize = 3;
/// The file read when `$DNSCACHEIP` is unset.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// How many CNAME links [`Resolver::cname`] follows (qmail's dns_cname).
pub const CNAME_DEPTH: usize = 10;
/// The UDP payload size announced in TLSA queries (the DNS flag day 2020 value).
pub const EDNS_PAYLOAD: u16 = 1232;
/// The largest DNS message read over TCP.
pub const TCP_MESSAGE_MAX: usize = 65_535;

/// A blocking DNS resolver.
pub struct Resolver {
    rt: tokio::runtime::Runtime,
    r: TokioResolver,
    servers: Vec<SocketAddr>,
}

/// One mail exchanger address: the preference of its MX record (0 when the domain has no
/// MX and its own addresses are used), the exchanger's name and one of its addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MxIp {
    /// The MX preference.
    pub pref: u16,
    /// The exchanger's name, lower-cased, without the final dot.
    pub name: String,
    /// One address of it.
    pub ip: IpAddr,
}

/// The result of [`Resolver::mxip`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MxIps {
    /// The addresses, ordered by preference (random among equal preferences), IPv6 before
    /// IPv4 for the same exchanger. Empty when the names exist but have no address.
    Found(Vec<MxIp>),
    /// The domain does not exist (NXDOMAIN for its MX and for its addresses).
    NoSuchDomain,
}

/// One TLSA record (RFC 6698): certificate usage, selector, matching type and data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tlsa {
    /// 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE.
    pub usage: u8,
    /// 0 the whole certificate, 1 its SubjectPublicKeyInfo.
    pub selector: u8,
    /// 0 exact, 1 SHA-256, 2 SHA-512.
    pub matching: u8,
    /// The association data.
    pub data: Vec<u8>,
}

/// A TLSA answer and whether the server said it was DNSSEC-authenticated (the AD bit).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsaAnswer {
    /// The records (empty for NXDOMAIN or no data).
    pub records: Vec<Tlsa>,
    /// True when the AD bit was set in the answer.
    pub authenticated: bool,
}

/// Parses one `$DNSCACHEIP` entry: an address, `v4:port` or `[v6]:port`.
pub fn parse_server(s: &str) -> Option<SocketAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    s.parse::<SocketAddr>().ok()
}

/// The servers named by a `$DNSCACHEIP` value (invalid entries are skipped, as djbdns does).
pub fn parse_servers(v: &str) -> Vec<SocketAddr> {
    v.split([' ', ',', '\t', '\n'])
        .filter(|e| !e.is_empty())
        .filter_map(parse_server)
        .take(MAX_SERVERS)
        .collect()
}

/// The `nameserver` lines of a resolv.conf text.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next()).flatten()
        })
        .filter_map(|a| a.split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .take(MAX_SERVERS)
        .collect()
}

/// The servers this process should ask (see the module documentation).
pub fn servers() -> Vec<SocketAddr> {
    if let Some(v) = env::var("DNSCACHEIP") {
        let list = parse_servers(&String::from_utf8_lossy(&v));
        if !list.is_empty() {
            return list;
        }
    }
    let list = std::fs::read_to_string(RESOLV_CONF)
        .map(|t| parse_resolv_conf(&t))
        .unwrap_or_default();
    if list.is_empty() {
        vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53)]
    } else {
        list
    }
}

fn temp(what: &str, e: &NetError) -> Failure {
    Failure::temp(
        Kind::System,
        format!("temporary DNS failure for {what}: {e}"),
    )
}

fn absolute(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

impl Resolver {
    /// A resolver asking the servers of [`servers`].
    ///
    /// # Errors
    /// Temporary, when the runtime or the resolver cannot be built.
    pub fn from_env() -> Result<Resolver, Failure> {
        Resolver::new(&servers())
    }

    /// A resolver asking the given servers, in order.
    ///
    /// # Errors
    /// Temporary, when the runtime or the resolver cannot be built.
    pub fn new(servers: &[SocketAddr]) -> Result<Resolver, Failure> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::temp_io(Kind::System, "unable to start DNS runtime", e))?;
        let ns = servers
            .iter()
            .map(|s| {
                let mut udp = ConnectionConfig::udp();
                udp.port = s.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = s.port();
                NameServerConfig::new(s.ip(), true, vec![udp, tcp])
            })
            .collect();
        let cfg = ResolverConfig::from_parts(None, vec![], ns);
        let mut o = ResolverOpts::default();
        o.timeout = Duration::from_secs(QUERY_TIMEOUT_SECS);
        o.attempts = RETRIES;
        o.use_hosts_file = ResolveHosts::Never;
        o.ndots = 0;
        let r = Hickory::builder_with_config(cfg, TokioRuntimeProvider::default())
            .with_options(o)
            .build()
            .map_err(|e| temp("resolver", &e))?;
        Ok(Resolver {
            rt,
            r,
            servers: servers.to_vec(),
        })
    }

    fn records(&self, name: &str, rtype: RecordType) -> Result<Vec<RData>, Failure> {
        Ok(self.answer(name, rtype)?.unwrap_or_default())
    }

    /// The answer's records of any type; `None` for NXDOMAIN, empty for no data.
    fn answer(&self, name: &str, rtype: RecordType) -> Result<Option<Vec<RData>>, Failure> {
        match self.rt.block_on(self.r.lookup(absolute(name), rtype)) {
            Ok(l) => Ok(Some(l.answers().iter().map(|r| r.data.clone()).collect())),
            Err(e) if e.is_nx_domain() => Ok(None),
            Err(e) if e.is_no_records_found() => Ok(Some(vec![])),
            Err(e) => Err(temp(name, &e)),
        }
    }

    /// The MX records of `name` as (preference, exchanger), exchangers lower-cased and
    /// without the final dot; `None` when the name does not exist.
    ///
    /// # Errors
    /// Temporary, when no answer could be had.
    pub fn mx(&self, name: &str) -> Result<Option<Vec<(u16, String)>>, Failure> {
        Ok(self.answer(name, RecordType::MX)?.map(|v| {
            v.into_iter()
                .filter_map(|d| match d {
                    RData::MX(m) => Some((m.preference, plain_name(&m.exchange.to_ascii()))),
                    _ => None,
                })
                .collect()
        }))
    }

    /// The IPv6 then IPv4 addresses of `name`; `None` when the name does not exist.
    ///
    /// # Errors
    /// Temporary, when no answer could be had.
    pub fn ip(&self, name: &str) -> Result<Option<Vec<IpAddr>>, Failure> {
        if let Some(ip) = literal(name) {
            return Ok(Some(vec![ip]));
        }
        let six = self.answer(name, RecordType::AAAA)?;
        let four = self.answer(name, RecordType::A)?;
        if six.is_none() && four.is_none() {
            return Ok(None);
        }
        Ok(Some(
            six.into_iter()
                .chain(four)
                .flatten()
                .filter_map(|d| match d {
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    _ => None,
                })
                .collect(),
        ))
    }

    /// qmail's dns_mxip: the addresses of the mail exchangers of `domain`, or of the domain
    /// itself when it has no MX record. `random` orders exchangers of equal preference.
    ///
    /// # Errors
    /// Temporary, when an answer could not be had for the MX query or for any exchanger.
    pub fn mxip(&self, domain: &str, random: u64) -> Result<MxIps, Failure> {
        if let Some(ip) = literal(domain) {
            return Ok(MxIps::Found(vec![MxIp {
                pref: 0,
                name: domain.to_string(),
                ip,
            }]));
        }
        let mxs = match self.mx(domain)? {
            Some(m) if !m.is_empty() => m,
            _ => {
                return Ok(match self.ip(domain)? {
                    None => MxIps::NoSuchDomain,
                    Some(ips) => MxIps::Found(
                        ips.into_iter()
                            .map(|ip| MxIp {
                                pref: 0,
                                name: plain_name(domain),
                                ip,
                            })
                            .collect(),
                    ),
                });
            }
        };
        let mut out = Vec::new();
        for (pref, name) in order_mx(mxs, random) {
            for ip in self.ip(&name)?.unwrap_or_default() {
                out.push(MxIp {
                    pref,
                    name: name.clone(),
                    ip,
                });
            }
        }
        Ok(MxIps::Found(out))
    }

    /// qmail's dns_cname: the canonical name of `name`, following at most
    /// [`CNAME_DEPTH`] CNAME records; the name itself when it has none (or does not exist,
    /// or the chain is too long).
    ///
    /// # Errors
    /// Temporary, when no answer could be had.
    pub fn cname(&self, name: &str) -> Result<String, Failure> {
        let mut cur = plain_name(name);
        for _ in 0..CNAME_DEPTH {
            let next = self
                .answer(&cur, RecordType::CNAME)?
                .unwrap_or_default()
                .into_iter()
                .find_map(|d| match d {
                    RData::CNAME(c) => Some(plain_name(&c.0.to_ascii())),
                    _ => None,
                });
            match next {
                Some(n) if n != cur => cur = n,
                _ => return Ok(cur),
            }
        }
        Ok(plain_name(name))
    }

    /// The TLSA records at `name` (such as `_25._tcp.mx.example.org`), with the AD bit of
    /// the answer. The query is sent to each server in turn over UDP (TCP when the answer
    /// is truncated).
    ///
    /// # Errors
    /// Temporary, when no server gave an answer.
    pub fn tlsa(&self, name: &str) -> Result<TlsaAnswer, Failure> {
        let qname = Name::from_ascii(absolute(name))
            .map_err(|_| Failure::perm(Kind::Input, format!("bad DNS name {name}")))?;
        let mut last = Failure::temp(Kind::System, format!("no DNS server for {name}"));
        for s in &self.servers {
            match query_raw(*s, &qname, RecordType::TLSA) {
                Ok(m) => return tlsa_answer(&m, name),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The IPv4 addresses of `name`.
    ///
    /// # Errors
    /// Temporary, when no answer could be had.
    pub fn a(&self, name: &str) -> Result<Vec<Ipv4Addr>, Failure> {
        Ok(self
            .records(name, RecordType::A)?
            .into_iter()
            .filter_map(|d| match d {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect())
    }

    /// The IPv6 addresses of `name`.
    ///
    /// # Errors
    /// Temporary, when no answer could be had.
    pub fn aaaa(&self, name: &str) -> Result<Vec<Ipv6Addr>, Failure> {
        Ok(self
            .records(name, RecordType::AAAA)?
            .into_iter()
            .filter_map(|d| match d {
                RData::AAAA(a) => Some(a.0),
                _ => None,
            })
            .collect())
    }

    /// The mail exchangers of `name`, lower-cased and without the final dot; empty when the
    /// name does not exist or has none.
    ///
    /// # Errors
    /// Temporary, when no answer could be had.
    pub fn mx_names(&self, name: &str) -> Result<Vec<String>, Failure> {
        Ok(self
            .mx(name)?
            .unwrap_or_default()
            .into_iter()
            .map(|(_, host)| host)
            .collect())
    }

    /// The TXT records of `name`, each with its character strings joined.
    ///
    /// # Errors
    /// Temporary, when no answer could be had.
    pub fn txt(&self, name: &str) -> Result<Vec<Vec<u8>>, Failure> {
        Ok(self
            .records(name, RecordType::TXT)?
            .into_iter()
            .filter_map(|d| match d {
                RData::TXT(t) => Some(t.txt_data.iter().flat_map(|s| s.iter().copied()).collect()),
                _ => None,
            })
            .collect())
    }

    /// The names a PTR lookup of `ip` gives, lower-cased and without the final dot.
    ///
    /// # Errors
    /// Temporary, when no answer could be had.
    pub fn ptr(&self, ip: IpAddr) -> Result<Vec<String>, Failure> {
        Ok(self
            .records(&reverse_name(ip), RecordType::PTR)?
            .into_iter()
            .filter_map(|d| match d {
                RData::PTR(p) => {
                    let n = p.0.to_ascii().to_ascii_lowercase();
                    Some(n.strip_suffix('.').unwrap_or(&n).to_string())
                }
                _ => None,
            })
            .collect())
    }
}

/// An address literal host, `[1.2.3.4]` or `[IPv6:...]` / `[...]`, as qmail accepts.
pub fn literal(host: &str) -> Option<IpAddr> {
    let inner = host.strip_prefix('[')?.strip_suffix(']')?;
    let inner = inner
        .strip_prefix("IPv6:")
        .or_else(|| inner.strip_prefix("ipv6:"))
        .unwrap_or(inner);
    inner.parse().ok()
}

/// A host name lower-cased and without its final dot.
pub fn plain_name(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    n.strip_suffix('.').map(str::to_string).unwrap_or(n)
}

/// MX records ordered by preference, shuffled among equal preferences by `random` (a
/// small linear congruential sequence seeded with it: order, not secrecy, is wanted).
pub fn order_mx(mut mxs: Vec<(u16, String)>, random: u64) -> Vec<(u16, String)> {
    let mut x = random | 1;
    let mut keyed: Vec<(u16, u64, (u16, String))> = mxs
        .drain(..)
        .map(|m| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (m.0, x >> 33, m)
        })
        .collect();
    keyed.sort_by_key(|k| (k.0, k.1));
    keyed.into_iter().map(|k| k.2).collect()
}

fn query_raw(server: SocketAddr, name: &Name, rtype: RecordType) -> Result<Message, Failure> {
    let fail = |what: &str, e: std::io::Error| {
        Failure::temp_io(Kind::System, format!("temporary DNS failure: {what}"), e)
    };
    let mut idb = [0u8; 2];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut idb)
        .map_err(|_| Failure::temp(Kind::System, "temporary DNS failure: no random numbers"))?;
    let id = u16::from_be_bytes(idb);
    let mut q = Message::query();
    q.metadata.id = id;
    q.metadata.recursion_desired = true;
    q.metadata.authentic_data = true;
    q.add_query(Query::query(name.clone(), rtype));
    let mut edns = Edns::new();
    edns.set_dnssec_ok(true).set_max_payload(EDNS_PAYLOAD);
    q.set_edns(edns);
    let wire = q
        .to_vec()
        .map_err(|e| Failure::temp(Kind::System, format!("unable to build DNS query: {e}")))?;
    let bind: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind).map_err(|e| fail("socket", e))?;
    sock.connect(server).map_err(|e| fail("connect", e))?;
    let mut buf = vec![0u8; usize::from(EDNS_PAYLOAD).max(4096)];
    let mut last = None;
    for _ in 0..=RETRIES {
        sock.send(&wire).map_err(|e| fail("send", e))?;
        let deadline = std::time::Instant::now() + Duration::from_secs(QUERY_TIMEOUT_SECS);
        loop {
            // Answers with the wrong id or name do not extend the wait.
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            sock.set_read_timeout(Some(left))
                .map_err(|e| fail("socket", e))?;
            match sock.recv(&mut buf) {
                Ok(n) => {
                    let Some(m) = buf.get(..n).and_then(|b| Message::from_vec(b).ok()) else {
                        continue;
                    };
                    if m.metadata.id != id
                        || m.metadata.message_type != MessageType::Response
                        || m.queries.first().map(|q| q.name()) != Some(name)
                    {
                        continue;
                    }
                    if m.metadata.truncation {
                        return query_tcp(server, &wire, id);
                    }
                    return Ok(m);
                }
                Err(e) => {
                    last = Some(e);
                    break;
                }
            }
        }
    }
    Err(fail(
        "no answer",
        last.unwrap_or_else(|| std::io::Error::from(std::io::ErrorKind::TimedOut)),
    ))
}

fn query_tcp(server: SocketAddr, wire: &[u8], id: u16) -> Result<Message, Failure> {
    let fail = |e: std::io::Error| Failure::temp_io(Kind::System, "temporary DNS failure", e);
    let t = Duration::from_secs(QUERY_TIMEOUT_SECS);
    let mut s = TcpStream::connect_timeout(&server, t).map_err(fail)?;
    s.set_read_timeout(Some(t)).map_err(fail)?;
    s.set_write_timeout(Some(t)).map_err(fail)?;
    let len =
        u16::try_from(wire.len()).map_err(|_| fail(std::io::ErrorKind::InvalidData.into()))?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(wire);
    s.write_all(&out).map_err(fail)?;
    let mut l = [0u8; 2];
    s.read_exact(&mut l).map_err(fail)?;
    let n = usize::from(u16::from_be_bytes(l)).min(TCP_MESSAGE_MAX);
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).map_err(fail)?;
    let m = Message::from_vec(&buf).map_err(|e| {
        Failure::temp(
            Kind::System,
            format!("temporary DNS failure: bad answer: {e}"),
        )
    })?;
    if m.metadata.id != id {
        return Err(Failure::temp(
            Kind::System,
            "temporary DNS failure: wrong id",
        ));
    }
    Ok(m)
}

fn tlsa_answer(m: &Message, name: &str) -> Result<TlsaAnswer, Failure> {
    match m.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => {
            return Ok(TlsaAnswer {
                records: vec![],
                authenticated: m.metadata.authentic_data,
            });
        }
        rc => {
            return Err(Failure::temp(
                Kind::System,
                format!("temporary DNS failure for {name}: {rc}"),
            ));
        }
    }
    let records = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TLSA(t) => Some(Tlsa {
                usage: u8::from(t.cert_usage),
                selector: u8::from(t.selector),
                matching: u8::from(t.matching),
                data: t.cert_data.clone(),
            }),
            _ => None,
        })
        .collect();
    Ok(TlsaAnswer {
        records,
        authenticated: m.metadata.authentic_data,
    })
}

/// The name under which `ip` is listed in reverse zones and DNS block lists, without a
/// suffix: `4.3.2.1` for 1.2.3.4, 32 nibbles for IPv6.
pub fn reversed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.{}", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(a) => {
            let mut s = String::with_capacity(64);
            for b in a.octets().iter().rev() {
                for n in [b & 15, b >> 4] {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push(char::from_digit(u32::from(n), 16).unwrap_or('0'));
                }
            }
            s
        }
    }
}

/// The PTR name of an address (`4.3.2.1.in-addr.arpa`, `...ip6.arpa`).
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(_) => format!("{}.in-addr.arpa", reversed(ip)),
        IpAddr::V6(_) => format!("{}.ip6.arpa", reversed(ip)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dnscacheip_entries_take_an_optional_port() {
        let cases: &[(&str, Option<&str>)] = &[
            ("127.0.0.1", Some("127.0.0.1:53")),
            ("127.0.0.1:5353", Some("127.0.0.1:5353")),
            ("::1", Some("[::1]:53")),
            ("[::1]:5353", Some("[::1]:5353")),
            ("nonsense", None),
            ("1.2.3.4:99999", None),
        ];
        for (input, want) in cases {
            let got = parse_server(input).map(|a| a.to_string());
            assert_eq!(got.as_deref(), *want, "{input}");
        }
        assert_eq!(parse_servers("1.2.3.4, 5.6.7.8:54 x").len(), 2);
    }

    #[test]
    fn resolv_conf_nameservers() {
        let t = "# c\nsearch x\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\nnameserver\n";
        let got: Vec<String> = parse_resolv_conf(t)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["10.0.0.1:53", "[fe80::1]:53"]);
    }

    #[test]
    fn literals_and_names() {
        assert_eq!(literal("[127.0.0.1]"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(literal("[IPv6:::1]"), Some("::1".parse().unwrap()));
        assert_eq!(literal("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(literal("127.0.0.1"), None);
        assert_eq!(literal("[nonsense]"), None);
        assert_eq!(plain_name("MX.Example.ORG."), "mx.example.org");
    }

    #[test]
    fn equal_preferences_are_shuffled_and_lower_ones_come_first() {
        let mxs = vec![
            (20, "c".to_string()),
            (10, "a".to_string()),
            (10, "b".to_string()),
            (5, "z".to_string()),
        ];
        let mut seen = std::collections::BTreeSet::new();
        for r in 0..64 {
            let o = order_mx(mxs.clone(), r);
            assert_eq!(o[0].1, "z");
            assert_eq!(o[3].1, "c");
            seen.insert(o[1].1.clone());
        }
        assert_eq!(seen.len(), 2, "both orders of the equal pair occur");
    }

    #[test]
    fn reversed_names() {
        assert_eq!(reversed("1.2.3.4".parse().unwrap()), "4.3.2.1");
        let v6 = reversed("2001:db8::1".parse().unwrap());
        assert!(v6.starts_with("1.0.0.0.0.0.0.0"), "{v6}");
        assert!(v6.ends_with("8.b.d.0.1.0.0.2"), "{v6}");
        assert_eq!(v6.len(), 63);
        assert_eq!(
            reverse_name("127.0.0.2".parse().unwrap()),
            "2.0.0.127.in-addr.arpa"
        );
    }
}
