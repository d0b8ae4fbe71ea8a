//! One tcpserver connection: the steps of 0.88's `doit` in order (status line, IP options,
//! TCP_NODELAY, banner, local name, remote name, ident, rules, status line), then the
//! program runs with the socket on fds 0 and 1. A denied connection ends with exit 100, a
//! failure with exit 111 and a `dropping connection` warning, as in 0.88.
//!
//! The steps run in a child forked for the connection ([`handle`]), so a slow DNS or ident
//! answer delays no one else. When the options leave nothing that can block (`-R -H -l`),
//! the listening process takes the steps itself and starts the program with posix_spawn
//! ([`spawn`]), which is far cheaper than a fork; anything unusual (a deny, an error) still
//! goes to a forked child, so the output is the same either way.

use std::cell::OnceCell;
use std::ffi::OsString;
use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use sqmail::sys;

use crate::dns::Resolver;
use crate::environ::Edits;
use crate::exec::Prepared;
use crate::server::Options;
use crate::{addr, errstr, exec, ident, log, rules};

const DROP: &str = "tcpserver: warning: dropping connection, ";

fn drop_with(what: &str, e: &std::io::Error) -> ! {
    log::die(format!("{DROP}{what}{}\n", errstr::text(e)).as_bytes(), 111)
}

/// An address as the variables show it: a v4-mapped IPv6 address is the IPv4 address.
pub fn canonical(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => a,
        },
        SocketAddr::V4(_) => a,
    }
}

/// The interface name of a scope id (for TCP6INTERFACE), from /sys.
fn interface(scope: u32) -> Option<Vec<u8>> {
    for e in std::fs::read_dir("/sys/class/net").ok()?.flatten() {
        let idx = std::fs::read(e.path().join("ifindex")).ok()?;
        if addr::number(&idx) == u64::from(scope) {
            return Some(
                std::os::unix::ffi::OsStrExt::as_bytes(e.file_name().as_os_str()).to_vec(),
            );
        }
    }
    None
}

/// The names looked up for a connection.
struct Names {
    local_host: Option<Vec<u8>>,
    remote_host: Option<Vec<u8>>,
    remote_info: Option<Vec<u8>>,
}

fn lookups(o: &Options, local: SocketAddr, remote: SocketAddr) -> Names {
    let resolver = OnceCell::new();
    let r = || resolver.get_or_init(Resolver::from_env);
    let local_host = o
        .local_name
        .clone()
        .or_else(|| r().name(local.ip()).ok().filter(|n| !n.is_empty()));
    let mut remote_host = None;
    if o.remote_host
        && let Ok(name) = r().name(remote.ip())
        && !name.is_empty()
    {
        let keep = !o.paranoid
            || match remote.ip() {
                IpAddr::V4(ip) => r().ip4(&name).is_ok_and(|v| v.contains(&ip)),
                IpAddr::V6(ip) => r().ip6(&name).is_ok_and(|v| v.contains(&ip)),
            };
        if keep {
            remote_host = Some(name);
        }
    }
    let remote_info = if o.remote_info {
        ident::query(local, remote, Duration::from_secs(o.ident_timeout)).ok()
    } else {
        None
    };
    Names {
        local_host,
        remote_host,
        remote_info,
    }
}

/// The tcp-environ variables for the connection (0.88's names, plus ucspi-tcp6's for an
/// IPv6 client).
fn variables(local: SocketAddr, remote: SocketAddr, n: &Names) -> Edits {
    let v6 = remote.is_ipv6();
    let (lip, rip) = (addr::text(local.ip()), addr::text(remote.ip()));
    let (lport, rport) = (local.port().to_string(), remote.port().to_string());
    let mut e = Edits::new();
    e.set(b"PROTO", if v6 { b"TCP6" } else { b"TCP" });
    e.set(b"TCPLOCALIP", lip.as_bytes());
    e.set(b"TCPLOCALPORT", lport.as_bytes());
    e.put(b"TCPLOCALHOST", n.local_host.as_deref());
    if v6 {
        e.set(b"TCP6LOCALIP", lip.as_bytes());
        e.put(b"TCP6LOCALHOST", n.local_host.as_deref());
        e.set(b"TCP6LOCALPORT", lport.as_bytes());
        if let SocketAddr::V6(l) = local
            && l.scope_id() != 0
            && let Some(name) = interface(l.scope_id())
        {
            e.set(b"TCP6INTERFACE", &name);
        }
    }
    e.set(b"TCPREMOTEIP", rip.as_bytes());
    e.set(b"TCPREMOTEPORT", rport.as_bytes());
    e.put(b"TCPREMOTEHOST", n.remote_host.as_deref());
    if v6 {
        e.set(b"TCP6REMOTEIP", rip.as_bytes());
        e.set(b"TCP6REMOTEPORT", rport.as_bytes());
        e.put(b"TCP6REMOTEHOST", n.remote_host.as_deref());
    }
    e.put(b"TCPREMOTEINFO", n.remote_info.as_deref());
    e
}

/// Applies the rules database, if any: `true` when the connection is denied.
fn apply_rules(o: &Options, remote: SocketAddr, n: &Names, env: &mut Edits) -> bool {
    let Some(path) = &o.rules else {
        return false;
    };
    let shown = String::from_utf8_lossy(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()));
    let what = format!("unable to read {shown}: ");
    let db = match rules::open(Path::new(path)) {
        Ok(Some(db)) => db,
        Ok(None) if o.allow_no_rules => return false,
        Ok(None) => drop_with(&what, &std::io::Error::from_raw_os_error(errstr::ENOENT)),
        Err(e) => drop_with(&what, &e),
    };
    let ip = rules::ip_text(remote.ip());
    let found = match rules::lookup(&db, &ip, n.remote_host.as_deref(), n.remote_info.as_deref()) {
        Ok(Some(f)) => f,
        Ok(None) => return false,
        Err(e) => drop_with(&what, &e),
    };
    let d = rules::decide(&found.data);
    for (name, value) in &d.env {
        env.set(name, value);
    }
    d.deny
}

/// The `ok` or `deny` status line.
fn verdict_line(pid: u32, deny: bool, local: SocketAddr, remote: SocketAddr, n: &Names) -> Vec<u8> {
    let ip = |a: IpAddr| addr::text(a).into_bytes();
    let opt = |v: &Option<Vec<u8>>| v.as_deref().map(log::safe).unwrap_or_default();
    [
        b"tcpserver: ".as_slice(),
        if deny { b"deny " } else { b"ok " },
        pid.to_string().as_bytes(),
        b" ",
        &opt(&n.local_host),
        b":",
        &ip(local.ip()),
        b":",
        local.port().to_string().as_bytes(),
        b" ",
        &opt(&n.remote_host),
        b":",
        &ip(remote.ip()),
        b":",
        &opt(&n.remote_info),
        b":",
        remote.port().to_string().as_bytes(),
        b"\n",
    ]
    .concat()
}

/// The largest banner the listening process writes itself (a fresh socket always takes it
/// without blocking).
const SPAWN_BANNER_MAX: usize = 1024;

/// Whether connections can be served without forking: when nothing needs a lookup that
/// may block (`-R`, `-H` and `-l`), the listening process does the few remaining steps
/// itself and starts the program with posix_spawn.
pub fn can_spawn(o: &Options) -> bool {
    o.local_name.is_some() && !o.remote_host && !o.remote_info && o.banner.len() <= SPAWN_BANNER_MAX
}

/// What [`spawn`] did.
pub enum Spawned {
    /// The program runs as this child.
    Child(u32),
    /// The connection needs a forked child after all (a deny or an error, which the child
    /// reports exactly as 0.88 does), with the banner in this state.
    Fork(Banner),
}

/// Where the banner stands when a connection reaches its forked child.
#[derive(Debug)]
pub enum Banner {
    /// Not written yet: the child writes it.
    Pending,
    /// Written by the listening process.
    Written,
    /// Writing it failed: the child drops the connection with this error.
    Failed(std::io::Error),
}

/// Serves a connection from the listening process when [`can_spawn`] allows it: the steps
/// of [`handle`] in the same order and with the same output, the program started with
/// posix_spawn.
pub fn spawn(o: &Options, stream: &TcpStream, peer: SocketAddr) -> Spawned {
    let remote = canonical(peer);
    let Ok(local) = stream.local_addr().map(canonical) else {
        return Spawned::Fork(Banner::Pending);
    };
    let names = Names {
        local_host: o.local_name.clone(),
        remote_host: None,
        remote_info: None,
    };
    let mut env = variables(local, remote, &names);
    match quiet_rules(o, remote, &mut env) {
        Some(false) => {}
        _ => return Spawned::Fork(Banner::Pending),
    }
    if o.kill_ip_options && remote.is_ipv4() {
        sys::kill_ip_options(stream);
    }
    if !o.delay {
        let _ = stream.set_nodelay(true);
    }
    if !o.banner.is_empty()
        && let Err(e) = (&*stream).write_all(&o.banner)
    {
        return Spawned::Fork(Banner::Failed(e));
    }
    let Ok(pid) = exec::spawn(&o.prog, &env, stream) else {
        return Spawned::Fork(Banner::Written);
    };
    if log::verbosity() >= 2 {
        let from = format!("tcpserver: pid {pid} from {}\n", addr::text(remote.ip()));
        let mut lines = from.into_bytes();
        lines.extend_from_slice(&verdict_line(pid, false, local, remote, &names));
        log::status(&lines);
    }
    Spawned::Child(pid)
}

/// The rules' verdict without reporting anything: `Some(deny)`, or `None` when the database
/// cannot be read (the forked child then reports it).
fn quiet_rules(o: &Options, remote: SocketAddr, env: &mut Edits) -> Option<bool> {
    let Some(path) = &o.rules else {
        return Some(false);
    };
    let db = match rules::open(Path::new(path)) {
        Ok(Some(db)) => db,
        Ok(None) if o.allow_no_rules => return Some(false),
        _ => return None,
    };
    let found = rules::lookup(&db, &rules::ip_text(remote.ip()), None, None).ok()?;
    let Some(found) = found else {
        return Some(false);
    };
    let d = rules::decide(&found.data);
    for (name, value) in &d.env {
        env.set(name, value);
    }
    Some(d.deny)
}

/// Serves one connection in a forked child; never returns. `banner` says whether the
/// listening process has tried the banner already.
pub fn handle(
    o: &Options,
    prog: &Prepared,
    stream: TcpStream,
    peer: SocketAddr,
    banner: Banner,
) -> ! {
    let remote = canonical(peer);
    log::status(
        format!(
            "tcpserver: pid {} from {}\n",
            std::process::id(),
            addr::text(remote.ip())
        )
        .as_bytes(),
    );
    if o.kill_ip_options && remote.is_ipv4() {
        sys::kill_ip_options(&stream);
    }
    if !o.delay {
        let _ = stream.set_nodelay(true);
    }
    let written = match banner {
        Banner::Failed(e) => drop_with("unable to print banner: ", &e),
        Banner::Pending if !o.banner.is_empty() => (&stream).write_all(&o.banner),
        Banner::Pending | Banner::Written => Ok(()),
    };
    if let Err(e) = written {
        drop_with("unable to print banner: ", &e);
    }
    let local = match stream.local_addr() {
        Ok(a) => canonical(a),
        Err(e) => drop_with("unable to get local address: ", &e),
    };
    let names = lookups(o, local, remote);
    let mut env = variables(local, remote, &names);
    let deny = apply_rules(o, remote, &names, &mut env);
    if log::verbosity() >= 2 {
        log::status(&verdict_line(
            std::process::id(),
            deny,
            local,
            remote,
            &names,
        ));
    }
    if deny {
        sqmail::prog::exit(100);
    }
    let fd0 = match sys::fd_move(stream.into(), 0) {
        Ok(fd) => fd,
        Err(e) => drop_with("unable to set up descriptors: ", &e),
    };
    if let Err(e) = sys::fd_copy(&fd0, 1) {
        drop_with("unable to set up descriptors: ", &e);
    }
    std::mem::forget(fd0);
    let e = prog.run(&env);
    let name = o.prog.first().cloned().unwrap_or_else(OsString::new);
    drop_with(&format!("unable to run {}: ", name.to_string_lossy()), &e)
}
