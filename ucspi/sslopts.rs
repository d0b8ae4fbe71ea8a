//! sslserver's options (fehcom ucspi-ssl), parsed once by the server and again, from the
//! same argument list, by each connection's engine; plus the small getopt the TLS tools and
//! rblsmtpd share (options before operands, clustering, `--`, any bytes).

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::unix::ffi::OsStrExt;

use sqmail::fail::{Failure, Kind};

use crate::tlsconf::ClientCert;

/// One parsed option: its letter and argument.
pub type Opt = (char, Option<String>);

/// getopt over bytes: `spec` lists the letters, a `:` after one means it takes an argument.
/// Returns the options in order and the index of the first operand.
///
/// # Errors
/// Permanent (usage): an unknown letter or a missing argument.
pub fn getopt(args: &[OsString], spec: &str) -> Result<(Vec<Opt>, usize), Failure> {
    let usage = |m: String| Failure::perm(Kind::Usage, m);
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let b = a.as_bytes();
        if b == b"--" {
            return Ok((out, i + 1));
        }
        if b.len() < 2 || b.first() != Some(&b'-') {
            break;
        }
        let mut j = 1;
        while let Some(&c) = b.get(j) {
            let c = char::from(c);
            let pos = spec
                .find(c)
                .filter(|_| c != ':')
                .ok_or_else(|| usage(format!("unknown option -{c}")))?;
            j += 1;
            if spec.as_bytes().get(pos + 1) == Some(&b':') {
                let val = if j < b.len() {
                    String::from_utf8_lossy(b.get(j..).unwrap_or_default()).into_owned()
                } else {
                    i += 1;
                    let v = args
                        .get(i)
                        .ok_or_else(|| usage(format!("option -{c} needs an argument")))?;
                    v.to_string_lossy().into_owned()
                };
                out.push((c, Some(val)));
                break;
            }
            out.push((c, None));
        }
        i += 1;
    }
    Ok((out, i))
}

/// Parses a decimal number option.
///
/// # Errors
/// Permanent (usage) when it is not one.
pub fn number(c: char, v: Option<&str>) -> Result<u64, Failure> {
    v.unwrap_or_default()
        .parse()
        .map_err(|_| Failure::perm(Kind::Usage, format!("option -{c} needs a number")))
}

/// sslserver's settings.
#[derive(Clone, Debug)]
pub struct Opts {
    /// 0 `-q`, 1 `-Q` (default), 2 `-v`, 3 `-V`.
    pub verbosity: u8,
    /// `-c`: concurrent connections.
    pub limit: u64,
    /// `-x`: rules cdb.
    pub rules: Option<String>,
    /// `-X`: a missing rules cdb allows.
    pub allow_norules: bool,
    /// `-B`: banner.
    pub banner: String,
    /// `-u`, `-g` (or `-U`): the program's ids.
    pub uid: Option<u32>,
    /// See `uid`.
    pub gid: Option<u32>,
    /// `-1`: print the port.
    pub print_port: bool,
    /// `-3`: read a key password from fd 3.
    pub password_fd3: bool,
    /// `-4` / `-6`.
    pub ipv4: bool,
    /// See `ipv4`.
    pub ipv6: bool,
    /// `-b`: listen backlog.
    pub backlog: u64,
    /// `-l`: local host name.
    pub localhost: Option<String>,
    /// `-h` (default) / `-H`: look up the remote host name.
    pub remotehost: bool,
    /// `-p` / `-P` (default): paranoid host name check.
    pub paranoid: bool,
    /// `-r` / `-R` (default): ask the client's ident server.
    pub remoteinfo: bool,
    /// `-O` (default) / `-o`: remove IP options from IPv4 connections.
    pub kill_ip_options: bool,
    /// `-D` / `-d` (default): TCP_NODELAY.
    pub nodelay: bool,
    /// `-e` / `-E` (default): tcpserver variables too.
    pub tcpenv: bool,
    /// `-s` / `-S` (default): `SSL_*` variables.
    pub sslenv: bool,
    /// `-n` / `-N` (default): delayed TLS (UCSPI-TLS).
    pub delayed: bool,
    /// `-m`, `-z`, `-Z` (default).
    pub clientcert: ClientCert,
    /// `-t`: ident timeout, seconds.
    pub ident_timeout: u64,
    /// `-T`: handshake timeout, seconds.
    pub ssl_timeout: u64,
    /// `-w`: relay idle timeout, seconds.
    pub prog_timeout: u64,
    /// `-I`: interface for link-local addresses (a bind address of the form `addr%if`
    /// names it too).
    pub interface: Option<String>,
    /// The host operand.
    pub host: String,
    /// The port operand.
    pub port: String,
    /// The program and its arguments.
    pub prog: Vec<OsString>,
}

/// sslserver's option letters.
pub const SPEC: &str = "1346dDvVqQhHrRUXx:t:T:u:g:l:b:B:c:pPoOI:EeSsw:nNzZm";

/// The usage line.
pub const USAGE: &str = "sslserver: usage: sslserver [ -1346UXpPhHrRoOdDqQvVeEsSnNmzZ ] \
[ -c limit ] [ -x rules.cdb ] [ -B banner ] [ -g gid ] [ -u uid ] [ -b backlog ] \
[ -l localname ] [ -t timeout ] [ -I interface ] [ -T ssltimeout ] [ -w progtimeout ] \
host port program";

fn id(c: char, v: Option<&str>) -> Result<u32, Failure> {
    u32::try_from(number(c, v)?).map_err(|_| Failure::perm(Kind::Usage, "id out of range"))
}

fn env_id(name: &str) -> Option<u32> {
    sqmail::env::var(name).and_then(|v| String::from_utf8_lossy(&v).trim().parse().ok())
}

/// Parses sslserver's arguments (without argv\[0\]).
///
/// # Errors
/// Permanent (usage, exit 100).
pub fn parse(args: &[OsString]) -> Result<Opts, Failure> {
    let (opts, first) = getopt(args, SPEC)?;
    let mut o = Opts {
        verbosity: 1,
        limit: 40,
        rules: None,
        allow_norules: false,
        banner: String::new(),
        uid: None,
        gid: None,
        print_port: false,
        password_fd3: false,
        ipv4: false,
        ipv6: false,
        backlog: 20,
        localhost: None,
        remotehost: true,
        paranoid: false,
        remoteinfo: false,
        nodelay: false,
        tcpenv: false,
        sslenv: false,
        delayed: false,
        clientcert: ClientCert::Ignore,
        ident_timeout: 26,
        kill_ip_options: true,
        ssl_timeout: 26,
        prog_timeout: 3600,
        interface: None,
        host: String::new(),
        port: String::new(),
        prog: Vec::new(),
    };
    for (c, v) in opts {
        let v = v.as_deref();
        match c {
            'b' => o.backlog = number(c, v)?,
            'c' => o.limit = number(c, v)?.max(1),
            'X' => o.allow_norules = true,
            'x' => o.rules = v.map(str::to_string),
            'B' => o.banner = v.unwrap_or_default().to_string(),
            'd' => o.nodelay = false,
            'D' => o.nodelay = true,
            'v' => o.verbosity = 2,
            'V' => o.verbosity = 3,
            'q' => o.verbosity = 0,
            'Q' => o.verbosity = 1,
            'P' => o.paranoid = false,
            'p' => o.paranoid = true,
            'H' => o.remotehost = false,
            'h' => o.remotehost = true,
            'R' => o.remoteinfo = false,
            'r' => o.remoteinfo = true,
            't' => o.ident_timeout = number(c, v)?,
            'T' => o.ssl_timeout = number(c, v)?,
            'w' => o.prog_timeout = number(c, v)?,
            'U' => {
                o.uid = env_id("UID").or(o.uid);
                o.gid = env_id("GID").or(o.gid);
            }
            'u' => o.uid = Some(id(c, v)?),
            'g' => o.gid = Some(id(c, v)?),
            'I' => o.interface = v.map(str::to_string),
            'l' => o.localhost = v.map(str::to_string),
            '1' => o.print_port = true,
            '3' => o.password_fd3 = true,
            '4' => o.ipv4 = true,
            '6' => o.ipv6 = true,
            'Z' => o.clientcert = ClientCert::Ignore,
            'z' => o.clientcert = ClientCert::Host,
            'm' => o.clientcert = ClientCert::Mail,
            'S' => o.sslenv = false,
            's' => o.sslenv = true,
            'E' => o.tcpenv = false,
            'e' => o.tcpenv = true,
            'n' => o.delayed = true,
            'N' => o.delayed = false,
            'o' => o.kill_ip_options = false,
            'O' => o.kill_ip_options = true,
            _ => {}
        }
    }
    let rest = args.get(first..).unwrap_or_default();
    let [host, port, prog @ ..] = rest else {
        return Err(Failure::perm(Kind::Usage, USAGE));
    };
    if prog.is_empty() {
        return Err(Failure::perm(Kind::Usage, USAGE));
    }
    o.host = host.to_string_lossy().into_owned();
    o.port = port.to_string_lossy().into_owned();
    o.prog = prog.to_vec();
    Ok(o)
}

/// A port: decimal, or a name from `/etc/services`.
///
/// # Errors
/// Temporary when the name is unknown (ucspi-ssl exits 111 there).
pub fn port(p: &str) -> Result<u16, Failure> {
    if let Ok(n) = p.parse::<u16>() {
        return Ok(n);
    }
    let services = std::fs::read_to_string("/etc/services").unwrap_or_default();
    for line in services.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut w = line.split_whitespace();
        let (Some(name), Some(pp)) = (w.next(), w.next()) else {
            continue;
        };
        let mut names = std::iter::once(name).chain(w);
        if let Some((num, "tcp")) = pp.split_once('/')
            && names.any(|n| n == p)
            && let Ok(n) = num.parse()
        {
            return Ok(n);
        }
    }
    Err(Failure::temp(
        Kind::Config,
        format!("unable to figure out port number for {p}"),
    ))
}

/// The address to bind and whether an IPv6 socket refuses IPv4 clients: `0` or empty is
/// every IPv4 address (every address on one socket with `-6`), `:0` every address on one
/// socket, a literal itself (IPv6 with `%interface` or `-I`), and a name the first address
/// the DNS gives for it (as tcpserver finds it: IPv6 first with `-6`).
///
/// # Errors
/// Temporary when the name has no address or the interface is unknown.
pub fn bind_addr(
    host: &str,
    port: u16,
    ipv6: bool,
    interface: Option<&str>,
) -> Result<(SocketAddr, bool), Failure> {
    let any6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
    if host.is_empty() || host == "0" {
        if ipv6 {
            return Ok((any6, false));
        }
        return Ok((
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            true,
        ));
    }
    if host == ":0" {
        return Ok((any6, false));
    }
    let (text, scope) = match host.split_once('%') {
        Some((a, i)) => (a, Some(i)),
        None => (host, interface),
    };
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(match ip {
            IpAddr::V6(a) => {
                let scope_id = match scope {
                    Some(name) => crate::addr::interface_index(name).ok_or_else(|| {
                        Failure::temp(Kind::Config, format!("unknown interface {name}"))
                    })?,
                    None => 0,
                };
                (
                    SocketAddr::V6(SocketAddrV6::new(a, port, 0, scope_id)),
                    true,
                )
            }
            IpAddr::V4(_) => (SocketAddr::new(ip, port), true),
        });
    }
    let r = crate::dns::Resolver::from_env();
    let temp = |e: std::io::Error| {
        Failure::temp_io(
            Kind::Config,
            format!("temporarily unable to figure out IP address for {host}"),
            e,
        )
    };
    let mut found: Vec<IpAddr> = Vec::new();
    if ipv6 {
        found.extend(
            r.ip6(host.as_bytes())
                .map_err(temp)?
                .into_iter()
                .map(IpAddr::V6),
        );
    }
    if found.is_empty() {
        found.extend(
            r.ip4(host.as_bytes())
                .map_err(temp)?
                .into_iter()
                .map(IpAddr::V4),
        );
    }
    let ip = found
        .first()
        .copied()
        .ok_or_else(|| Failure::temp(Kind::Config, format!("no IP address for {host}")))?;
    Ok((SocketAddr::new(ip, port), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn getopt_clusters_and_stops_at_the_program() {
        let (o, i) = getopt(
            &a(&["-seVn", "-c10", "-x", "r.cdb", "0", "25", "prog", "-v"]),
            SPEC,
        )
        .unwrap();
        let letters: String = o.iter().map(|(c, _)| *c).collect();
        assert_eq!(letters, "seVncx");
        assert_eq!(o[4].1.as_deref(), Some("10"));
        assert_eq!(o[5].1.as_deref(), Some("r.cdb"));
        assert_eq!(i, 4);
        assert!(getopt(&a(&["-k"]), SPEC).is_err());
        assert!(getopt(&a(&["-c"]), SPEC).is_err());
        let (_, i) = getopt(&a(&["--", "-v"]), SPEC).unwrap();
        assert_eq!(i, 1);
    }

    #[test]
    fn later_options_win() {
        let o = parse(&a(&["-vq", "-mZz", "-nN", "0", "465", "cat"])).unwrap();
        assert_eq!(o.verbosity, 0);
        assert_eq!(o.clientcert, ClientCert::Host);
        assert!(!o.delayed);
        assert_eq!(o.prog, a(&["cat"]));
        assert!(parse(&a(&["0", "465"])).is_err());
    }

    #[test]
    fn bind_addresses() {
        let (a, only) = bind_addr("0", 465, false, None).unwrap();
        assert_eq!((a.to_string().as_str(), only), ("0.0.0.0:465", true));
        let (a, only) = bind_addr("0", 465, true, None).unwrap();
        assert_eq!((a.to_string().as_str(), only), ("[::]:465", false));
        assert!(!bind_addr(":0", 1, false, None).unwrap().1);
        let lo = crate::addr::interface_index("lo").unwrap();
        for (host, ifname) in [("fe80::1%lo", None), ("fe80::1", Some("lo"))] {
            let (a, only) = bind_addr(host, 2, false, ifname).unwrap();
            assert!(only);
            let SocketAddr::V6(a) = a else { panic!() };
            assert_eq!(a.scope_id(), lo);
        }
        assert!(bind_addr("fe80::1%nosuchif0", 2, false, None).is_err());
    }

    #[test]
    fn ports_by_number_and_name() {
        assert_eq!(port("465").unwrap(), 465);
        assert!(port("no-such-service-here").is_err());
    }
}
