//! DNS lookups behind a small synchronous API: A, AAAA, MX, TXT and PTR.
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

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
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

/// A blocking DNS resolver.
pub struct Resolver {
    rt: tokio::runtime::Runtime,
    r: TokioResolver,
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
        Ok(Resolver { rt, r })
    }

    fn records(&self, name: &str, rtype: RecordType) -> Result<Vec<RData>, Failure> {
        match self.rt.block_on(self.r.lookup(absolute(name), rtype)) {
            Ok(l) => Ok(l.answers().iter().map(|r| r.data.clone()).collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(vec![]),
            Err(e) => Err(temp(name, &e)),
        }
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

    /// The mail exchangers of `name`, lower-cased and without the final dot.
    ///
    /// # Errors
    /// Temporary, when no answer could be had.
    pub fn mx(&self, name: &str) -> Result<Vec<String>, Failure> {
        Ok(self
            .records(name, RecordType::MX)?
            .into_iter()
            .filter_map(|d| match d {
                RData::MX(m) => {
                    let n = m.exchange.to_ascii().to_ascii_lowercase();
                    Some(n.strip_suffix('.').unwrap_or(&n).to_string())
                }
                _ => None,
            })
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
