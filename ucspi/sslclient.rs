//! sslclient: connect, complete a TLS handshake (verifying the server against a CA file or
//! directory and its name, sending SNI and optionally a client certificate), then run a
//! program with fd 6 reading from and fd 7 writing to the server, and relay between them.

use std::ffi::OsString;
use std::fs::File;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Command;
use std::time::Duration;

use rustls::{ClientConnection, Connection};
use rustls_pki_types::ServerName;
use sqmail::fail::{Failure, Kind};
use sqmail::prog;
use sqmail::sys::proc::map_fds;

use crate::sslopts::{getopt, number};
use crate::tlsconf::{self, ClientSettings};
use crate::{tlsenv, tlsio};

/// sslclient's option letters.
pub const SPEC: &str = "46dDhHrRsSeEnNxXqQvI:T:i:p:l:t:w:3a:A:c:k:V:z:";
/// The usage line.
pub const USAGE: &str = "sslclient: usage: sslclient [ -46dDhHrRsSeEnNxXqQv3 ] [ -I interface ] \
[ -T timeoutconn ] [ -i localip ] [ -p localport ] [ -l localname ] [ -t timeout ] \
[ -w progtimeout ] [ -a cafile ] [ -A cadir ] [ -c certfile ] [ -k keyfile ] [ -V verifydepth ] \
[ -z ciphers ] host port program";

/// sslclient's settings.
#[derive(Clone, Debug, Default)]
pub struct Opts {
    /// TLS settings.
    pub tls: ClientSettings,
    /// `-T x+y`: connect timeouts in seconds.
    pub connect_timeout: (u64, u64),
    /// `-T` for the handshake too; `-w` for the relay.
    pub prog_timeout: u64,
    /// `-e`: tcpclient variables too.
    pub tcpenv: bool,
    /// `-s`: `SSL_*` variables.
    pub sslenv: bool,
    /// `-h`: look up the remote name (host operand used).
    pub localhost: Option<String>,
    /// 0 quiet, 1 errors, 2 verbose.
    pub verbosity: u8,
    /// The host operand (also the SNI name and the name verified).
    pub host: String,
    /// The port operand.
    pub port: String,
    /// The program.
    pub prog: Vec<OsString>,
}

fn timeouts(v: &str) -> Option<(u64, u64)> {
    match v.split_once('+') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => Some((v.parse().ok()?, 0)),
    }
}

/// Parses sslclient's arguments (without argv\[0\]).
///
/// # Errors
/// Permanent (usage, exit 100).
pub fn parse(args: &[OsString]) -> Result<Opts, Failure> {
    let (opts, first) = getopt(args, SPEC)?;
    let mut o = Opts {
        connect_timeout: (2, 58),
        prog_timeout: 3600,
        verbosity: 1,
        ..Opts::default()
    };
    for (c, v) in opts {
        let s = v.clone();
        match c {
            'T' => {
                o.connect_timeout = timeouts(v.as_deref().unwrap_or_default())
                    .ok_or_else(|| Failure::perm(Kind::Usage, USAGE))?;
            }
            'w' => o.prog_timeout = number(c, v.as_deref())?,
            'l' => o.localhost = s,
            'a' => o.tls.cafile = s,
            'A' => o.tls.cadir = s,
            'c' => o.tls.certfile = s,
            'k' => o.tls.keyfile = s,
            'z' => o.tls.ciphers = s,
            'x' => o.tls.no_verify = false,
            'X' => o.tls.no_verify = true,
            'n' => o.tls.no_name_check = false,
            'N' => o.tls.no_name_check = true,
            's' => o.sslenv = true,
            'S' => o.sslenv = false,
            'e' => o.tcpenv = true,
            'E' => o.tcpenv = false,
            'q' => o.verbosity = 0,
            'Q' => o.verbosity = 1,
            'v' => o.verbosity = 2,
            _ => {} // -4 -6 -d -D -h -H -r -R -I -i -p -t -V -3: accepted, see sslclient(1).
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

fn temp(what: String) -> Failure {
    Failure::temp(Kind::System, what)
}

fn connect(o: &Opts) -> Result<TcpStream, Failure> {
    let port = crate::sslopts::port(&o.port)?;
    let host = if o.host.is_empty() || o.host == "0" {
        "127.0.0.1"
    } else {
        o.host.as_str()
    };
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| {
            Failure::temp_io(
                Kind::System,
                format!("temporarily unable to figure out IP address for {host}"),
                e,
            )
        })?
        .collect();
    if addrs.is_empty() {
        return Err(temp(format!("no IP address for {host}")));
    }
    let (first, second) = o.connect_timeout;
    let mut last = None;
    for (round, secs) in [(0, first), (1, second)] {
        if round == 1 && (secs == 0 || addrs.len() == 1 && first > 0) {
            break;
        }
        for a in &addrs {
            let t = if addrs.len() == 1 {
                first.saturating_add(second)
            } else {
                secs
            };
            match TcpStream::connect_timeout(a, Duration::from_secs(t.max(1))) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some((*a, e)),
            }
        }
    }
    let (a, e) = last.ok_or_else(|| temp("unable to connect".into()))?;
    Err(temp(format!(
        "unable to connect to {} port {}: {}",
        a.ip(),
        a.port(),
        sqmail::sys::strerror(&e)
    )))
}

fn server_name(host: &str) -> Result<ServerName<'static>, Failure> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(host.to_string())
        .map_err(|_| Failure::perm(Kind::Usage, format!("bad host name {host}")))
}

/// Connects and runs the program; returns its exit status.
///
/// # Errors
/// Temporary: connect, TLS settings or handshake failed, or the program cannot run.
pub fn run(o: &Opts) -> Result<u8, Failure> {
    let cfg = tlsconf::client_config(&o.tls)?;
    let sock = connect(o)?;
    let (local, remote) = (
        sock.local_addr()
            .map_err(|e| Failure::temp_io(Kind::System, "getsockname", e))?,
        sock.peer_addr()
            .map_err(|e| Failure::temp_io(Kind::System, "getpeername", e))?,
    );
    if o.verbosity >= 2 {
        prog::err(
            format!(
                "sslclient: connected to {} port {}\n",
                remote.ip(),
                remote.port()
            )
            .as_bytes(),
        );
    }
    let name = server_name(if o.host == "0" || o.host.is_empty() {
        "127.0.0.1"
    } else {
        &o.host
    })?;
    let conn = ClientConnection::new(cfg, name)
        .map_err(|e| temp(format!("unable to create SSL instance: {e}")))?;
    let mut conn = Connection::Client(conn);
    tlsio::handshake(
        &mut conn,
        &sock,
        o.connect_timeout.0.saturating_add(o.connect_timeout.1),
    )
    .map_err(|e| temp(format!("unable to SSL connect: {e}")))?;
    if o.verbosity >= 2 {
        prog::err(format!("sslclient: ssl connect {}\n", tlsenv::summary(&conn)).as_bytes());
    }
    let own = match &o.tls.certfile {
        Some(c) => tlsconf::certs(c).unwrap_or_default(),
        None => Vec::new(),
    };
    let (from_net_r, from_net_w) =
        std::io::pipe().map_err(|e| Failure::temp_io(Kind::System, "unable to create pipe", e))?;
    let (to_net_r, to_net_w) =
        std::io::pipe().map_err(|e| Failure::temp_io(Kind::System, "unable to create pipe", e))?;
    let (name0, args) = o
        .prog
        .split_first()
        .ok_or_else(|| Failure::perm(Kind::Usage, USAGE))?;
    let mut cmd = Command::new(name0);
    cmd.args(args);
    let mut set = |k: &str, v: String| {
        cmd.env(k, v);
    };
    set(
        "PROTO",
        if remote.is_ipv6() { "SSL6" } else { "SSL" }.into(),
    );
    set("SSLLOCALIP", local.ip().to_string());
    set("SSLLOCALPORT", local.port().to_string());
    set("SSLREMOTEIP", remote.ip().to_string());
    set("SSLREMOTEPORT", remote.port().to_string());
    if o.tcpenv {
        set(
            "PROTO",
            if remote.is_ipv6() { "TCP6" } else { "TCP" }.into(),
        );
        set("TCPLOCALIP", local.ip().to_string());
        set("TCPLOCALPORT", local.port().to_string());
        set("TCPREMOTEIP", remote.ip().to_string());
        set("TCPREMOTEPORT", remote.port().to_string());
    }
    if let Some(l) = &o.localhost {
        set("SSLLOCALHOST", l.clone());
        if o.tcpenv {
            set("TCPLOCALHOST", l.clone());
        }
    }
    if o.sslenv {
        for (k, v) in tlsenv::vars(&conn, &own) {
            set(&k, v);
        }
    }
    for k in [
        "SSLREMOTEHOST",
        "SSLREMOTEINFO",
        "TCPREMOTEHOST",
        "TCPREMOTEINFO",
    ] {
        cmd.env_remove(k);
    }
    map_fds(
        &mut cmd,
        &[(from_net_r.as_raw_fd(), 6), (to_net_w.as_raw_fd(), 7)],
    );
    let mut child = cmd.spawn().map_err(|e| {
        Failure::temp_io(
            Kind::System,
            format!("unable to run {}", name0.to_string_lossy()),
            e,
        )
    })?;
    drop((from_net_r, to_net_w));
    let r = tlsio::relay(
        &mut conn,
        &sock,
        File::from(OwnedFd::from(from_net_w)),
        File::from(OwnedFd::from(to_net_r)),
        o.prog_timeout,
    );
    if let Err(e) = r {
        let _ = sqmail::sys::proc::kill(child.id(), sqmail::sys::proc::Signal::Terminate);
        let _ = child.wait();
        return Err(temp(format!("unable to speak SSL: {e}")));
    }
    let st = child
        .wait()
        .map_err(|e| Failure::temp_io(Kind::System, "wait", e))?;
    Ok(st.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(111))
}
