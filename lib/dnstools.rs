//! The DNS tools: dnsip, dnsmxip, dnsptr, dnstxt and dnstlsa. Each takes names (or
//! addresses) as arguments, asks the resolver of [`crate::dns`] and prints one line per
//! argument (dnsmxip and dnstlsa: one line per address or record), in the formats of
//! djbdns's dnsip, dnsname and dnstxt and qmail's dnsmxip.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::dns::{MxIps, Resolver};
use crate::fail::{Failure, Kind, Result};

/// Which tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// `dnsip name...`: the addresses of each name, IPv4 then IPv6, on one line.
    Ip,
    /// `dnsmxip name...`: `address preference` per mail exchanger address.
    MxIp,
    /// `dnsptr ip...`: the first PTR name of each address.
    Ptr,
    /// `dnstlsa host [port]`: the TLSA records at `_port._tcp.host`.
    Tlsa,
    /// `dnstxt name...`: the TXT records of each name, concatenated.
    Txt,
}

fn usage(t: Tool) -> Failure {
    let u = match t {
        Tool::Ip => "dnsip name ...",
        Tool::MxIp => "dnsmxip name ...",
        Tool::Ptr => "dnsptr ip ...",
        Tool::Tlsa => "dnstlsa host [port]",
        Tool::Txt => "dnstxt name ...",
    };
    Failure::perm(Kind::Usage, format!("usage: {u}"))
}

/// Runs a tool on its arguments (program name excluded) and returns what it prints.
///
/// # Errors
/// Permanent for a usage error or a bad address; temporary when the DNS gave no answer.
pub fn run(tool: Tool, args: &[String]) -> Result<Vec<u8>> {
    if args.is_empty() {
        return Err(usage(tool));
    }
    let r = Resolver::from_env()?;
    let mut out = String::new();
    match tool {
        Tool::Ip => {
            for a in args {
                let mut ips = r.ip(a)?.unwrap_or_default();
                ips.sort_by_key(IpAddr::is_ipv6);
                for ip in ips {
                    let _ = write!(out, "{ip} ");
                }
                out.push('\n');
            }
        }
        Tool::MxIp => {
            for a in args {
                if let MxIps::Found(v) = r.mxip(a, random())? {
                    for m in v {
                        let _ = writeln!(out, "{} {}", m.ip, m.pref);
                    }
                }
            }
        }
        Tool::Ptr => {
            for a in args {
                let ip: IpAddr = a
                    .parse()
                    .map_err(|_| Failure::perm(Kind::Input, format!("bad address {a}")))?;
                let names = r.ptr(ip)?;
                let _ = writeln!(out, "{}", names.first().map_or("", String::as_str));
            }
        }
        Tool::Txt => {
            let mut bytes = Vec::new();
            for a in args {
                for t in r.txt(a)? {
                    bytes.extend_from_slice(&t);
                }
                bytes.push(b'\n');
            }
            return Ok(bytes);
        }
        Tool::Tlsa => {
            let (host, port) = match args {
                [h] => (h, "25"),
                [h, p] => (h, p.as_str()),
                _ => return Err(usage(tool)),
            };
            let name = if host.starts_with('_') {
                host.clone()
            } else {
                tlsa_name(host, port)
            };
            let a = r.tlsa(&name)?;
            let how = if a.authenticated {
                "secure"
            } else {
                "insecure"
            };
            for t in &a.records {
                let _ = writeln!(
                    out,
                    "{how} {} {} {} {}",
                    t.usage,
                    t.selector,
                    t.matching,
                    hex(&t.data)
                );
            }
        }
    }
    Ok(out.into_bytes())
}

/// The owner name of the TLSA records for a service: `_port._tcp.host`.
pub fn tlsa_name(host: &str, port: &str) -> String {
    format!("_{port}._tcp.{host}")
}

/// Lower-case hexadecimal.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// A number that differs between runs, to order equal MX preferences.
pub fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_hex() {
        assert_eq!(tlsa_name("mx.example.org", "25"), "_25._tcp.mx.example.org");
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
        assert!(run(Tool::Tlsa, &[]).is_err());
    }
}
