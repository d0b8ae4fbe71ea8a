//! tcpserver's options and its listening process: bind, drop privileges, then accept
//! connections and fork one child per connection (see [`crate::conn`]), at most `-c` at a
//! time, counting children as SIGCHLD reports them.
//!
//! Options, defaults, messages and status lines are ucspi-tcp 0.88's. From ucspi-tcp6: an
//! IPv6 address to bind (`::1`, `::` IPv6 only), `:0` for a dual-stack socket on which IPv4
//! clients look exactly as on an IPv4 socket, and `-4`/`-6` to choose the address family
//! when the host is a name.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

use sqmail::fail::Failure;
use sqmail::sys::{self, Forked, proc};

use crate::exec::Prepared;
use crate::{addr, conn, dns::Resolver, environ, errstr, getopt, log};

/// The usage line, as 0.88 prints it.
pub const USAGE: &str = "tcpserver [ -1UXpPhHrRoOdDqQv ] [ -c limit ] [ -x rules.cdb ] [ -B banner ] [ -g gid ] [ -u uid ] [ -b backlog ] [ -l localname ] [ -t timeout ] host port program";

/// The option letters (0.88's, plus ucspi-tcp6's `-4` and `-6`).
const SPEC: &[u8] = b"dDvqQhHrR1UXx:t:u:g:l:b:B:c:pPoO46I:";

/// Which address family a host name is looked up in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `-4` or no option: IPv4 (A records).
    Inet,
    /// `-6`: IPv6 (AAAA records), then IPv4.
    Inet6,
}

/// tcpserver's settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// 0 `-q`, 1 `-Q` (default), 2 `-v`.
    pub verbosity: u8,
    /// `-O` (default): remove IP options; `-o`: leave them.
    pub kill_ip_options: bool,
    /// `-d` (default): leave Nagle on; `-D`: set TCP_NODELAY.
    pub delay: bool,
    /// `-B`: written to the client first.
    pub banner: Vec<u8>,
    /// `-r` (default in 0.88): ask the client's ident server; `-R`: do not.
    pub remote_info: bool,
    /// `-h` (default): look up TCPREMOTEHOST; `-H`: do not.
    pub remote_host: bool,
    /// `-p`: keep TCPREMOTEHOST only if it maps back to the client; `-P` (default).
    pub paranoid: bool,
    /// `-t`: seconds for the ident question (26).
    pub ident_timeout: u64,
    /// `-c`: most children at once (40).
    pub limit: u64,
    /// `-x`: the rules database.
    pub rules: Option<OsString>,
    /// `-X`: a missing rules database allows every connection.
    pub allow_no_rules: bool,
    /// `-b`: listen backlog (20).
    pub backlog: u64,
    /// `-u` or `$UID` with `-U`; 0 leaves the user alone.
    pub uid: u64,
    /// `-g` or `$GID` with `-U`; 0 leaves the group alone.
    pub gid: u64,
    /// `-1`: print the local port.
    pub print_port: bool,
    /// `-l`: TCPLOCALHOST without a lookup.
    pub local_name: Option<Vec<u8>>,
    /// `-4`/`-6`.
    pub family: Family,
    /// `-I`: the interface of an IPv6 link-local address to bind.
    pub interface: Option<String>,
    /// Where to listen.
    pub host: Vec<u8>,
    /// The port (number or service name).
    pub port: Vec<u8>,
    /// The program and its arguments.
    pub prog: Vec<OsString>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            verbosity: 1,
            kill_ip_options: true,
            delay: true,
            banner: Vec::new(),
            remote_info: true,
            remote_host: true,
            paranoid: false,
            ident_timeout: 26,
            limit: 40,
            rules: None,
            allow_no_rules: false,
            backlog: 20,
            uid: 0,
            gid: 0,
            print_port: false,
            local_name: None,
            family: Family::Inet,
            interface: None,
            host: Vec::new(),
            port: Vec::new(),
            prog: Vec::new(),
        }
    }
}

/// Reads the arguments (without `argv[0]`). A bad option prints sgetopt's complaint.
///
/// # Errors
/// Usage.
pub fn parse(argv0: &OsString, args: &[OsString]) -> Result<Options, Failure> {
    let (opts, first) = getopt::parse(args, SPEC).map_err(|p| {
        sqmail::prog::err(&p.message(argv0));
        log::usage(USAGE)
    })?;
    let mut o = Options::default();
    for (c, a) in opts {
        let arg = a.unwrap_or_default();
        let num = || addr::number(arg.as_bytes());
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
            b'1' => o.print_port = true,
            b'U' => {
                if let Some(u) = environ::var("UID") {
                    o.uid = addr::number(&u);
                }
                if let Some(g) = environ::var("GID") {
                    o.gid = addr::number(&g);
                }
            }
            b'X' => o.allow_no_rules = true,
            b'x' => o.rules = Some(arg),
            b't' => o.ident_timeout = num(),
            b'u' => o.uid = num(),
            b'g' => o.gid = num(),
            b'l' => o.local_name = Some(arg.as_bytes().to_vec()),
            b'b' => o.backlog = num(),
            b'B' => o.banner = arg.as_bytes().to_vec(),
            b'c' => o.limit = num(),
            b'p' => o.paranoid = true,
            b'P' => o.paranoid = false,
            b'o' => o.kill_ip_options = false,
            b'O' => o.kill_ip_options = true,
            b'4' => o.family = Family::Inet,
            b'6' => o.family = Family::Inet6,
            b'I' => o.interface = Some(arg.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    log::set_verbosity(o.verbosity);
    let mut rest = args.get(first..).unwrap_or_default().iter();
    o.host = rest
        .next()
        .ok_or_else(|| log::usage(USAGE))?
        .as_bytes()
        .to_vec();
    o.port = rest
        .next()
        .ok_or_else(|| log::usage(USAGE))?
        .as_bytes()
        .to_vec();
    o.prog = rest.cloned().collect();
    if o.prog.is_empty() {
        return Err(log::usage(USAGE));
    }
    Ok(o)
}

/// The interface index of `-I` or of a host written `address%interface`.
fn scope(o: &Options) -> Result<Option<u32>, Failure> {
    let name = match o.host.iter().position(|&c| c == b'%') {
        Some(i) => {
            Some(String::from_utf8_lossy(o.host.get(i + 1..).unwrap_or_default()).into_owned())
        }
        None => o.interface.clone(),
    };
    name.map(|n| {
        addr::interface_index(&n).ok_or_else(|| log::fatal(format!("unknown interface {n}")))
    })
    .transpose()
}

/// The address to bind and whether an IPv6 socket refuses IPv4 clients.
fn bind_address(o: &Options) -> Result<(IpAddr, bool), Failure> {
    let host = o.host.split(|&c| c == b'%').next().unwrap_or_default();
    let shown = String::from_utf8_lossy(host);
    if host.is_empty() || host == b"0" {
        return Ok((IpAddr::V4(Ipv4Addr::UNSPECIFIED), true));
    }
    if host == b":0" {
        return Ok((IpAddr::V6(Ipv6Addr::UNSPECIFIED), false));
    }
    if let Some(a) = addr::ipv6(host) {
        return Ok((IpAddr::V6(a), a.to_ipv4_mapped().is_none()));
    }
    let r = Resolver::from_env();
    let temp = |e: std::io::Error| {
        log::fatal(format!(
            "temporarily unable to figure out IP address for {shown}: {}",
            errstr::text(&e)
        ))
    };
    let mut found: Vec<IpAddr> = Vec::new();
    if o.family == Family::Inet6 && addr::numeric_ip4(host).is_none() {
        found.extend(r.ip6(host).map_err(temp)?.into_iter().map(IpAddr::V6));
    }
    if found.is_empty() {
        found.extend(r.ip4(host).map_err(temp)?.into_iter().map(IpAddr::V4));
    }
    let ip = found
        .first()
        .copied()
        .ok_or_else(|| log::fatal(format!("no IP address for {shown}")))?;
    Ok((ip, true))
}

/// Runs tcpserver with the given arguments (without `argv[0]`).
///
/// # Errors
/// Usage (100) or a failure to set up (111); once listening it never returns.
pub fn main(argv0: &OsString, args: &[OsString]) -> Result<(), Failure> {
    let o = parse(argv0, args)?;
    let port = addr::port(&o.port).ok_or_else(|| {
        log::fatal(format!(
            "unable to figure out port number for {}",
            String::from_utf8_lossy(&o.port)
        ))
    })?;
    sys::term_exit(0);
    let chld = proc::child_pipe()
        .map_err(|e| log::fatal(format!("unable to create pipe: {}", errstr::text(&e))))?;
    let (ip, v6only) = bind_address(&o)?;
    let backlog = i32::try_from(o.backlog).unwrap_or(i32::MAX);
    let bind = match (ip, scope(&o)?) {
        (IpAddr::V6(a), Some(id)) => SocketAddr::V6(std::net::SocketAddrV6::new(a, port, 0, id)),
        _ => SocketAddr::new(ip, port),
    };
    let listener = sys::tcp_listen(&bind, backlog, v6only)
        .map_err(|e| log::fatal(format!("unable to bind: {}", errstr::text(&e))))?;
    let local = listener
        .local_addr()
        .map_err(|e| log::fatal(format!("unable to get local address: {}", errstr::text(&e))))?;
    if o.gid != 0 {
        sys::set_gid(u32::try_from(o.gid).unwrap_or(u32::MAX))
            .map_err(|e| log::fatal(format!("unable to set gid: {}", errstr::text(&e))))?;
    }
    if o.uid != 0 {
        sys::set_uid(u32::try_from(o.uid).unwrap_or(u32::MAX))
            .map_err(|e| log::fatal(format!("unable to set uid: {}", errstr::text(&e))))?;
    }
    if o.print_port {
        let _ = sqmail::prog::out(format!("{}\n", local.port()).as_bytes());
    }
    release_stdio();
    let file = o.prog.first().cloned().unwrap_or_default();
    let prog = Prepared::new(&file, &o.prog);
    serve(&o, &prog, listener, chld)
}

/// Puts /dev/null on fds 0 and 1, so the parent no longer holds what it was started with
/// (0.88 closes them; a placeholder keeps later sockets off those numbers).
fn release_stdio() {
    if let Ok(null) = File::open("/dev/null") {
        let _ = sys::fd_copy(&null, 0);
        let _ = sys::fd_copy(&null, 1);
    }
}

fn status(children: u64, limit: u64) {
    log::status(format!("tcpserver: status: {children}/{limit}\n").as_bytes());
}

/// The accept loop. It ends only with the process.
fn serve(o: &Options, prog: &Prepared, listener: TcpListener, chld: File) -> Result<(), Failure> {
    listener
        .set_nonblocking(true)
        .map_err(|e| log::fatal(format!("unable to listen: {}", errstr::text(&e))))?;
    let mut children: u64 = 0;
    let spawn = conn::can_spawn(o);
    status(children, o.limit);
    let read = proc::Ready {
        read: true,
        write: false,
    };
    loop {
        let accepting = children < o.limit;
        let mut fds = vec![(chld.as_raw_fd(), read)];
        if accepting {
            fds.push((listener.as_raw_fd(), read));
        }
        let ready = proc::poll(&fds, -1).unwrap_or_default();
        if ready.first().is_some_and(|r| r.read) {
            let mut buf = [0u8; 64];
            while matches!((&chld).read(&mut buf), Ok(n) if n > 0) {}
        }
        while let Ok(Some((pid, wstat))) = sys::wait_nohang() {
            log::status(format!("tcpserver: end {pid} status {wstat}\n").as_bytes());
            children = children.saturating_sub(1);
            status(children, o.limit);
        }
        if !accepting || !ready.get(1).is_some_and(|r| r.read) {
            continue;
        }
        let Ok((stream, peer)) = listener.accept() else {
            continue;
        };
        children += 1;
        status(children, o.limit);
        let mut banner = conn::Banner::Pending;
        if spawn {
            match conn::spawn(o, &stream, peer) {
                conn::Spawned::Child(_) => continue,
                conn::Spawned::Fork(b) => banner = b,
            }
        }
        match sys::fork() {
            Ok(Forked::Child) => {
                drop(listener);
                drop(chld);
                conn::handle(o, prog, stream, peer, banner)
            }
            Ok(Forked::Parent(_)) => drop(stream),
            Err(e) => {
                log::line(
                    format!(
                        "tcpserver: warning: dropping connection, unable to fork: {}\n",
                        errstr::text(&e)
                    )
                    .as_bytes(),
                );
                children = children.saturating_sub(1);
                status(children, o.limit);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<Options, Failure> {
        let args: Vec<OsString> = v.iter().map(OsString::from).collect();
        parse(&OsString::from("tcpserver"), &args)
    }

    #[test]
    fn defaults_are_088s() {
        let o = p(&["0", "25", "prog", "-x"]).unwrap();
        assert_eq!(o.limit, 40);
        assert_eq!(o.backlog, 20);
        assert!(o.remote_info && o.remote_host && !o.paranoid && o.delay && o.kill_ip_options);
        assert_eq!(o.ident_timeout, 26);
        assert_eq!(o.prog, vec![OsString::from("prog"), OsString::from("-x")]);
    }

    #[test]
    fn options_in_order() {
        let o = p(&[
            "-vRHc", "5x", "-qQ", "-B", "hi", "-l0", "-Dp", "::1", "smtp", "p",
        ])
        .unwrap();
        assert_eq!(o.limit, 5);
        assert_eq!(o.verbosity, 1);
        assert!(!o.remote_info && !o.remote_host && !o.delay && o.paranoid);
        assert_eq!(o.banner, b"hi");
        assert_eq!(o.local_name.as_deref(), Some(b"0".as_slice()));
        assert!(p(&["0", "25"]).is_err());
        assert!(p(&["-z", "0", "25", "x"]).is_err());
    }
}
