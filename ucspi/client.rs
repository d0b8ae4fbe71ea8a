//! tcpclient: connect to a server and run a program with the connection on fd 6 (read)
//! and fd 7 (write), under the tcp-environ variables. Options, defaults and messages are
//! ucspi-tcp 0.88's; `-4`/`-6` and IPv6 addresses (with ucspi-tcp6's TCP6 variables) come
//! from ucspi-tcp6.

use std::ffi::OsString;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use sqmail::fail::Failure;
use sqmail::sys;

use crate::dns::Resolver;
use crate::environ::Edits;
use crate::server::Family;
use crate::{addr, conn, errstr, exec, getopt, ident, log};

/// The usage line, as 0.88 prints it.
pub const USAGE: &str = "tcpclient [ -hHrRdDqQv ] [ -i localip ] [ -p localport ] [ -T timeoutconn ] [ -l localname ] [ -t timeoutinfo ] host port program";

const SPEC: &[u8] = b"dDvqQhHrRi:p:t:T:l:46";

/// tcpclient's settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// 0 `-q`, 1 `-Q` (default), 2 `-v`.
    pub verbosity: u8,
    /// `-d` (default) or `-D` (TCP_NODELAY).
    pub delay: bool,
    /// `-h` (default) or `-H`.
    pub remote_host: bool,
    /// `-r` (default) or `-R`.
    pub remote_info: bool,
    /// `-t`: ident seconds (26).
    pub ident_timeout: u64,
    /// `-T x+y`: connect seconds per address, first pass and second pass (2+58).
    pub connect_timeout: [u64; 2],
    /// `-i`: local address to bind.
    pub local_ip: Option<IpAddr>,
    /// `-p`: local port to bind.
    pub local_port: u16,
    /// `-l`: TCPLOCALHOST without a lookup.
    pub local_name: Option<Vec<u8>>,
    /// `-4`/`-6`.
    pub family: Family,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            verbosity: 1,
            delay: true,
            remote_host: true,
            remote_info: true,
            ident_timeout: 26,
            connect_timeout: [2, 58],
            local_ip: None,
            local_port: 0,
            local_name: None,
            family: Family::Inet,
        }
    }
}

fn parse(argv0: &OsString, args: &[OsString]) -> Result<(Options, usize), Failure> {
    let (opts, first) = getopt::parse(args, SPEC).map_err(|p| {
        sqmail::prog::err(&p.message(argv0));
        log::usage(USAGE)
    })?;
    let mut o = Options::default();
    for (c, a) in opts {
        let arg = a.unwrap_or_default();
        let b = arg.as_bytes();
        match c {
            b'd' => o.delay = true,
            b'D' => o.delay = false,
            b'v' => o.verbosity = 2,
            b'q' => o.verbosity = 0,
            b'Q' => o.verbosity = 1,
            b'h' => o.remote_host = true,
            b'H' => o.remote_host = false,
            b'r' => o.remote_info = true,
            b'R' => o.remote_info = false,
            b'l' => o.local_name = Some(b.to_vec()),
            b't' => o.ident_timeout = addr::number(b),
            b'T' => {
                let (first, n) = addr::scan_ulong(b);
                let rest = b.get(n..).unwrap_or_default();
                let rest = rest.strip_prefix(b"+").unwrap_or(rest);
                o.connect_timeout = [first, addr::number(rest)];
            }
            b'i' => {
                o.local_ip = Some(match addr::ip4_scan(b) {
                    Some((ip, _)) => IpAddr::V4(ip),
                    None => IpAddr::V6(addr::ipv6(b).ok_or_else(|| log::usage(USAGE))?),
                });
            }
            b'p' => {
                #[allow(clippy::cast_possible_truncation)] // 0.88 assigns to a uint16
                {
                    o.local_port = addr::number(b) as u16;
                }
            }
            b'4' => o.family = Family::Inet,
            b'6' => o.family = Family::Inet6,
            _ => {}
        }
    }
    Ok((o, first))
}

/// The addresses to try for the host argument.
fn addresses(host: &[u8], family: Family) -> Result<Vec<IpAddr>, Failure> {
    let shown = String::from_utf8_lossy(host);
    if host.is_empty() || host == b"0" {
        return Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    }
    if let Some(a) = addr::ipv6(host) {
        return Ok(vec![IpAddr::V6(a)]);
    }
    let r = Resolver::from_env();
    let temp = |e: io::Error| {
        log::fatal(format!(
            "temporarily unable to figure out IP address for {shown}: {}",
            errstr::text(&e)
        ))
    };
    let mut found: Vec<IpAddr> = Vec::new();
    if family == Family::Inet6 && addr::numeric_ip4(host).is_none() {
        found.extend(r.ip6(host).map_err(temp)?.into_iter().map(IpAddr::V6));
    }
    found.extend(r.ip4(host).map_err(temp)?.into_iter().map(IpAddr::V4));
    if found.is_empty() {
        return Err(log::fatal(format!("no IP address for {shown}")));
    }
    Ok(found)
}

/// Tries each address, the slow ones again in a second pass, as 0.88 does.
fn connect(o: &Options, ips: &[IpAddr], port: u16) -> Option<std::net::TcpStream> {
    let mut t = o.connect_timeout;
    if ips.len() == 1 {
        t = [t[0].saturating_add(t[1]), 0];
    }
    let mut todo: Vec<IpAddr> = ips.to_vec();
    for (pass, secs) in t.iter().enumerate() {
        let mut again = Vec::new();
        for ip in &todo {
            let local = match (o.local_ip, ip) {
                (Some(l), _) => Some(SocketAddr::new(l, o.local_port)),
                (None, IpAddr::V4(_)) if o.local_port != 0 => Some(SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    o.local_port,
                )),
                (None, IpAddr::V6(_)) if o.local_port != 0 => Some(SocketAddr::new(
                    IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                    o.local_port,
                )),
                (None, _) => None,
            };
            let to = SocketAddr::new(*ip, port);
            match sys::tcp_connect(local.as_ref(), &to, Duration::from_secs(*secs)) {
                Ok(s) => return Some(s),
                Err(e) if pass == 0 && t[1] != 0 && e.raw_os_error() == Some(errstr::ETIMEDOUT) => {
                    again.push(*ip);
                }
                Err(e) => log::line(
                    format!(
                        "tcpclient: unable to connect to {} port {port}: {}\n",
                        addr::text(*ip),
                        errstr::text(&e)
                    )
                    .as_bytes(),
                ),
            }
        }
        todo = again;
    }
    None
}

/// The tcp-environ variables for the connection.
fn variables(o: &Options, local: SocketAddr, remote: SocketAddr) -> Edits {
    let v6 = remote.is_ipv6();
    let r = std::cell::OnceCell::new();
    let res = || r.get_or_init(Resolver::from_env);
    let mut e = Edits::new();
    e.set(b"PROTO", if v6 { b"TCP6" } else { b"TCP" });
    let (lip, lport) = (addr::text(local.ip()), local.port().to_string());
    e.set(b"TCPLOCALPORT", lport.as_bytes());
    e.set(b"TCPLOCALIP", lip.as_bytes());
    if v6 {
        e.set(b"TCP6LOCALIP", lip.as_bytes());
        e.set(b"TCP6LOCALPORT", lport.as_bytes());
    }
    let lhost = match &o.local_name {
        Some(n) => Some(n.clone()),
        None => res().name(local.ip()).ok(),
    };
    e.put(b"TCPLOCALHOST", lhost.as_deref());
    let (rip, rport) = (addr::text(remote.ip()), remote.port().to_string());
    e.set(b"TCPREMOTEPORT", rport.as_bytes());
    e.set(b"TCPREMOTEIP", rip.as_bytes());
    if v6 {
        e.set(b"TCP6REMOTEIP", rip.as_bytes());
        e.set(b"TCP6REMOTEPORT", rport.as_bytes());
    }
    log::status(format!("tcpclient: connected to {rip} port {rport}\n").as_bytes());
    let rhost = if o.remote_host {
        res().name(remote.ip()).ok()
    } else {
        None
    };
    e.put(b"TCPREMOTEHOST", rhost.as_deref());
    let info = if o.remote_info {
        ident::query(local, remote, Duration::from_secs(o.ident_timeout)).ok()
    } else {
        None
    };
    e.put(b"TCPREMOTEINFO", info.as_deref());
    e
}

/// Runs tcpclient with the given arguments (without `argv[0]`).
///
/// # Errors
/// Usage (100) or a failure (111); on success the process becomes the program.
pub fn main(argv0: &OsString, args: &[OsString]) -> Result<(), Failure> {
    drop(sys::inherited_fd(6));
    drop(sys::inherited_fd(7));
    let (o, first) = parse(argv0, args)?;
    log::set_verbosity(o.verbosity);
    let mut rest = args.get(first..).unwrap_or_default().iter();
    let host = rest
        .next()
        .ok_or_else(|| log::usage(USAGE))?
        .as_bytes()
        .to_vec();
    let port_arg = rest.next().ok_or_else(|| log::usage(USAGE))?;
    let port = addr::port(port_arg.as_bytes()).ok_or_else(|| {
        log::fatal(format!(
            "unable to figure out port number for {}",
            port_arg.to_string_lossy()
        ))
    })?;
    let prog: Vec<OsString> = rest.cloned().collect();
    if prog.is_empty() {
        return Err(log::usage(USAGE));
    }
    let ips = addresses(&host, o.family)?;
    let stream = connect(&o, &ips, port).ok_or_else(log::silent)?;
    if !o.delay {
        let _ = stream.set_nodelay(true);
    }
    let local = stream
        .local_addr()
        .map_err(|e| log::fatal(format!("unable to get local address: {}", errstr::text(&e))))?;
    let remote = stream.peer_addr().map_err(|e| {
        log::fatal(format!(
            "unable to get remote address: {}",
            errstr::text(&e)
        ))
    })?;
    let env = variables(&o, conn::canonical(local), conn::canonical(remote));
    let fd6 = sys::fd_move(stream.into(), 6).map_err(|e| {
        log::fatal(format!(
            "unable to set up descriptor 6: {}",
            errstr::text(&e)
        ))
    })?;
    sys::fd_copy(&fd6, 7).map_err(|e| {
        log::fatal(format!(
            "unable to set up descriptor 7: {}",
            errstr::text(&e)
        ))
    })?;
    let e = exec::run(&prog, &env);
    let name = prog
        .first()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    Err(log::fatal(format!(
        "unable to run {name}: {}",
        errstr::text(&e)
    )))
}
