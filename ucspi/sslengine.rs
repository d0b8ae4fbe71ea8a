//! One sslserver connection: the process sslserver starts for each accepted socket (on its
//! fd 0). It sets the program's environment (ucspi-ssl's `SSL*`, with `-e` tcpserver's
//! `TCP*`), applies the rules cdb, starts the program, and is the TLS engine between the
//! socket and the program's pipes.
//!
//! Without `-n` the handshake (and any client certificate check) completes before the
//! program starts; the program reads and writes plaintext on fds 0 and 1.
//!
//! With `-n` (UCSPI-TLS) the program starts on the plaintext socket (fds 0 and 1) with
//! `SSLCTLFD`, `SSLREADFD`, `SSLWRITEFD` = 5, 3, 4, and asks for TLS by writing `y` or `Y`
//! to fd 5. At that moment the engine throws away anything the program had already written
//! to fd 4, and begins the handshake on the socket: any plaintext the client pipelined after
//! its STARTTLS and that the program had not read is taken as the first TLS record, which
//! fails the handshake and ends the connection. Nothing sent before the handshake can ever
//! reach the program through fd 3. A program that exits without asking ends the connection
//! (exit 0).

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use rustls::{Connection, ServerConfig, ServerConnection};
use rustls_pki_types::CertificateDer;
use sqmail::fail::Failure;
use sqmail::prog;
use sqmail::sys::proc::{Signal, kill, map_fds, set_nonblocking};

use crate::sslopts::Opts;
use crate::tlsconf::{self, ClientCert, ServerFiles};
use crate::{rules, tlsenv, tlsio, ucspitls, x509};

/// The program's fd for decrypted data (`SSLREADFD`) under `-n`.
pub const READ_FD: i32 = 3;
/// The program's fd for data to encrypt (`SSLWRITEFD`) under `-n`.
pub const WRITE_FD: i32 = 4;
/// The program's control socket (`SSLCTLFD`) under `-n`.
pub const CTL_FD: i32 = 5;

const DROP: &str = "sslserver: warning: dropping SSL connection, ";

fn drop_msg(text: &str) -> i32 {
    prog::err(format!("{DROP}{text}\n").as_bytes());
    111
}

/// Printable, `%`- and `:`-free, at most 100 bytes (tcpserver's safecats).
fn safe(s: &str) -> String {
    let mut out: String = s
        .bytes()
        .take(100)
        .map(|b| {
            if (33..=126).contains(&b) && b != b'%' && b != b':' {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect();
    if s.len() > 100 {
        out.push_str("...");
    }
    out
}

/// The environment edits for the program, applied in order (`None` unsets).
type Edits = Vec<(String, Option<String>)>;

fn canonical(a: SocketAddr, ipv6: bool) -> (IpAddr, u16) {
    let ip = if ipv6 { a.ip() } else { a.ip().to_canonical() };
    (ip, a.port())
}

/// The DNS name of `ip` as tcpserver finds it (djbdns's stub, `$DNSCACHEIP`); with
/// `paranoid` only when the name's addresses include `ip`.
fn lookup_host(r: &crate::dns::Resolver, ip: IpAddr, paranoid: bool) -> Option<String> {
    let name = r.name(ip).ok().filter(|n| !n.is_empty())?;
    if paranoid {
        let ok = match ip {
            IpAddr::V4(v4) => r.ip4(&name).is_ok_and(|v| v.contains(&v4)),
            IpAddr::V6(v6) => r.ip6(&name).is_ok_and(|v| v.contains(&v6)),
        };
        if !ok {
            return None;
        }
    }
    Some(String::from_utf8_lossy(&name).into_owned())
}

struct Peer {
    local: (IpAddr, u16),
    remote: (IpAddr, u16),
    localhost: Option<String>,
    remotehost: Option<String>,
    remoteinfo: Option<String>,
}

fn env_edits(o: &Opts, p: &Peer) -> Edits {
    let mut e: Edits = Vec::new();
    let mut set = |k: &str, v: Option<String>| e.push((k.to_string(), v));
    let (lip, lport) = (p.local.0.to_string(), p.local.1.to_string());
    let (rip, rport) = (p.remote.0.to_string(), p.remote.1.to_string());
    set("PROTO", Some("SSL".into()));
    set("SSLLOCALIP", Some(lip.clone()));
    set("SSLLOCALPORT", Some(lport.clone()));
    set("SSLLOCALHOST", p.localhost.clone());
    set("SSLREMOTEIP", Some(rip.clone()));
    set("SSLREMOTEPORT", Some(rport.clone()));
    set("SSLREMOTEHOST", p.remotehost.clone());
    set("SSLREMOTEINFO", p.remoteinfo.clone());
    if o.tcpenv {
        let v6 = p.remote.0.is_ipv6();
        set("PROTO", Some(if v6 { "TCP6" } else { "TCP" }.into()));
        set("TCPLOCALIP", Some(lip.clone()));
        set("TCPLOCALPORT", Some(lport.clone()));
        set("TCPLOCALHOST", p.localhost.clone());
        set("TCPREMOTEIP", Some(rip.clone()));
        set("TCPREMOTEPORT", Some(rport.clone()));
        set("TCPREMOTEHOST", p.remotehost.clone());
        set("TCPREMOTEINFO", p.remoteinfo.clone());
        if v6 {
            set("TCP6LOCALIP", Some(lip));
            set("TCP6LOCALPORT", Some(lport));
            set("TCP6LOCALHOST", p.localhost.clone());
            set("TCP6REMOTEIP", Some(rip));
            set("TCP6REMOTEPORT", Some(rport));
            set("TCP6REMOTEHOST", p.remotehost.clone());
        }
    }
    e
}

fn edited(edits: &Edits, name: &str) -> Option<Option<String>> {
    edits
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// Loads the TLS configuration and this server's own certificate chain.
fn config(
    o: &Opts,
    edits: &Edits,
) -> Result<(Arc<ServerConfig>, Vec<CertificateDer<'static>>), Failure> {
    let files = ServerFiles::from_env();
    let ccaverify = match edited(edits, "CCAVERIFY") {
        Some(v) => v.is_some(),
        None => sqmail::env::is_set("CCAVERIFY"),
    };
    let cfg = tlsconf::server_config(&files, o.clientcert, ccaverify)?;
    let chain_path = files.certchainfile.or(files.certfile).unwrap_or_default();
    Ok((cfg, tlsconf::certs(&chain_path).unwrap_or_default()))
}

/// Checks the TLS settings once (sslserver's start-up); prints why they fail.
pub fn check(o: &Opts) -> i32 {
    match config(o, &Vec::new()) {
        Ok(_) => 0,
        Err(e) => {
            prog::err(format!("sslserver: fatal: {e}\n").as_bytes());
            111
        }
    }
}

/// Drops the engine's privileges: `$SSL_CHROOT`, then `$SSL_GID`/`$SSL_GROUP` and
/// `$SSL_UID`/`$SSL_USER`, else the `-g`/`-u` ids.
fn drop_privileges(o: &Opts) -> Result<(), String> {
    let var = |n: &str| sqmail::env::var(n).map(|v| String::from_utf8_lossy(&v).into_owned());
    if let Some(dir) = var("SSL_CHROOT").filter(|d| !d.is_empty()) {
        sqmail::sys::chroot(std::path::Path::new(&dir))
            .map_err(|_| "unable to chroot".to_string())?;
    }
    let uid = var("SSL_UID")
        .and_then(|v| v.trim().parse().ok())
        .or_else(|| {
            var("SSL_USER")
                .and_then(|u| sqmail::sys::account(u.as_bytes()).ok().flatten())
                .map(|a| a.uid)
        })
        .or(o.uid);
    let gid = var("SSL_GID")
        .and_then(|v| v.trim().parse().ok())
        .or_else(|| var("SSL_GROUP").and_then(|g| sqmail::sys::group(g.as_bytes()).ok().flatten()))
        .or(o.gid);
    match uid {
        Some(u) if u != 0 => {
            sqmail::sys::proc::become_user(u, gid.unwrap_or_else(sqmail::sys::gid))
                .map_err(|e| format!("unable to set uid: {}", sqmail::sys::strerror(&e)))
        }
        _ => Ok(()),
    }
}

fn spawn(
    o: &Opts,
    edits: &Edits,
    stdin: OwnedFd,
    stdout: OwnedFd,
    fds: &[(i32, i32)],
) -> std::io::Result<Child> {
    let (name, args) = o
        .prog
        .split_first()
        .ok_or(std::io::ErrorKind::InvalidInput)?;
    let mut cmd = Command::new(name);
    cmd.args(args)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout));
    for (k, v) in edits {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    if let Some(g) = o.gid {
        cmd.gid(g);
    }
    if let Some(u) = o.uid {
        cmd.uid(u);
    }
    if !fds.is_empty() {
        map_fds(&mut cmd, fds);
    }
    cmd.spawn()
}

fn finish(child: &mut Child) -> i32 {
    match child.wait() {
        Ok(st) => st.code().unwrap_or(111),
        Err(_) => 111,
    }
}

fn terminate(child: &mut Child, code: i32) -> i32 {
    let _ = kill(child.id(), Signal::Terminate);
    let _ = child.wait();
    code
}

/// Runs the handshake and the client-certificate policy.
fn accept_tls(
    o: &Opts,
    cfg: Arc<ServerConfig>,
    sock: &TcpStream,
    remotehost: Option<&str>,
) -> Result<Connection, String> {
    let conn =
        ServerConnection::new(cfg).map_err(|e| format!("unable to create SSL instance: {e}"))?;
    let mut conn = Connection::Server(conn);
    tlsio::handshake(&mut conn, sock, o.ssl_timeout)
        .map_err(|e| format!("unable to accept SSL: {e}"))?;
    if o.clientcert == ClientCert::Host
        && let Some(host) = remotehost
    {
        let named = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| x509::parse(c.as_ref()))
            .is_some_and(|c| x509::names_host(&c, host));
        if !named {
            return Err(format!(
                "client hostname does not match certificate: {host}"
            ));
        }
    }
    Ok(conn)
}

fn log_accept(o: &Opts, conn: &Connection) {
    if o.verbosity >= 2 {
        let info = if o.verbosity >= 3 {
            tlsenv::summary(conn)
        } else {
            String::new()
        };
        prog::err(format!("sslserver: ssl {} accept {info}\n", std::process::id()).as_bytes());
    }
}

fn pipe() -> Result<(File, File), String> {
    let (r, w) = std::io::pipe()
        .map_err(|e| format!("unable to create pipe: {}", sqmail::sys::strerror(&e)))?;
    Ok((File::from(OwnedFd::from(r)), File::from(OwnedFd::from(w))))
}

fn dup(f: &impl std::os::fd::AsFd) -> Result<OwnedFd, String> {
    f.as_fd().try_clone_to_owned().map_err(|e| {
        format!(
            "unable to duplicate descriptor: {}",
            sqmail::sys::strerror(&e)
        )
    })
}

/// Handles the connection on fd 0 and returns the exit code.
pub fn run(o: &Opts) -> i32 {
    let Some(fd0) = sqmail::sys::inherited_fd(0) else {
        return drop_msg("no socket on descriptor 0");
    };
    let sock = TcpStream::from(OwnedFd::from(fd0));
    let (Ok(l), Ok(r_addr)) = (sock.local_addr(), sock.peer_addr()) else {
        return drop_msg("unable to get local address");
    };
    let (local, remote) = (canonical(l, o.ipv6), canonical(r_addr, o.ipv6));
    if o.verbosity >= 2 {
        prog::err(format!("sslserver: pid {} from {}\n", std::process::id(), remote.0).as_bytes());
    }
    if o.kill_ip_options && remote.0.is_ipv4() {
        sqmail::sys::kill_ip_options(&sock);
    }
    let resolver = std::cell::OnceCell::new();
    let r = || resolver.get_or_init(crate::dns::Resolver::from_env);
    let localhost = o
        .localhost
        .clone()
        .or_else(|| lookup_host(r(), local.0, false));
    let remotehost = if o.remotehost {
        lookup_host(r(), remote.0, o.paranoid)
    } else {
        None
    };
    let remoteinfo = if o.remoteinfo {
        crate::ident::query(l, r_addr, std::time::Duration::from_secs(o.ident_timeout))
            .ok()
            .map(|i| String::from_utf8_lossy(&i).into_owned())
    } else {
        None
    };
    let peer = Peer {
        local,
        remote,
        localhost,
        remotehost,
        remoteinfo,
    };
    let mut edits = env_edits(o, &peer);
    let mut deny = false;
    if let Some(path) = &o.rules {
        // The same lookup as tcpserver's (ucspi-tcp's order plus CIDR and IPv6 keys).
        let found = rules::open(std::path::Path::new(path)).and_then(|db| match db {
            Some(db) => rules::lookup(
                &db,
                &rules::ip_text(remote.0),
                peer.remotehost.as_deref().map(str::as_bytes),
                None,
            )
            .map(|f| Some(f.map(|f| rules::decide(&f.data)))),
            None => Ok(None),
        });
        match found {
            Ok(Some(Some(d))) => {
                deny = d.deny;
                let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
                edits.extend(d.env.into_iter().map(|(k, v)| (text(k), Some(text(v)))));
            }
            Ok(Some(None)) => {}
            Ok(None) if o.allow_norules => {}
            Ok(None) => return drop_msg(&format!("unable to read {path}: file does not exist")),
            Err(e) => {
                return drop_msg(&format!(
                    "unable to read {path}: {}",
                    sqmail::sys::strerror(&e)
                ));
            }
        }
    }
    if o.verbosity >= 2 {
        prog::err(
            format!(
                "sslserver: {} {} {}:{}:{} {}:{}::{}\n",
                if deny { "deny" } else { "ok" },
                std::process::id(),
                peer.localhost.as_deref().map(safe).unwrap_or_default(),
                safe(&local.0.to_string()),
                local.1,
                peer.remotehost.as_deref().map(safe).unwrap_or_default(),
                safe(&remote.0.to_string()),
                remote.1
            )
            .as_bytes(),
        );
    }
    if deny {
        return 100;
    }
    let (cfg, chain) = match config(o, &edits) {
        Ok(c) => c,
        Err(e) => return drop_msg(&e.to_string()),
    };
    let r = if o.delayed {
        delayed(o, &sock, edits, cfg, &chain, peer.remotehost.as_deref())
    } else {
        immediate(o, &sock, edits, cfg, &chain, peer.remotehost.as_deref())
    };
    r.unwrap_or_else(|e| drop_msg(&e))
}

fn immediate(
    o: &Opts,
    sock: &TcpStream,
    mut edits: Edits,
    cfg: Arc<ServerConfig>,
    chain: &[CertificateDer<'_>],
    remotehost: Option<&str>,
) -> Result<i32, String> {
    let mut conn = accept_tls(o, cfg, sock, remotehost)?;
    log_accept(o, &conn);
    if o.sslenv {
        edits.extend(
            tlsenv::vars(&conn, chain)
                .into_iter()
                .map(|(k, v)| (k, Some(v))),
        );
    }
    let (from_net_r, from_net_w) = pipe()?;
    let (to_net_r, to_net_w) = pipe()?;
    let mut child = spawn(
        o,
        &edits,
        OwnedFd::from(from_net_r),
        OwnedFd::from(to_net_w),
        &[],
    )
    .map_err(|e| {
        format!(
            "unable to run {}: {}",
            show(&o.prog),
            sqmail::sys::strerror(&e)
        )
    })?;
    if !o.banner.is_empty() {
        let _ = conn.writer().write_all(o.banner.as_bytes());
    }
    if let Err(e) = drop_privileges(o) {
        return Ok(terminate(&mut child, drop_msg(&e)));
    }
    match tlsio::relay(&mut conn, sock, from_net_w, to_net_r, o.prog_timeout) {
        Ok(()) => Ok(finish(&mut child)),
        Err(e) => Ok(terminate(
            &mut child,
            drop_msg(&format!("unable to speak SSL: {e}")),
        )),
    }
}

fn show(prog: &[OsString]) -> String {
    prog.first()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Throws away whatever the program wrote to `SSLWRITEFD` before it asked for TLS.
fn discard(f: &mut File) {
    if set_nonblocking(f, true).is_err() {
        return;
    }
    let mut buf = [0u8; 4096];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
    let _ = set_nonblocking(f, false);
}

fn delayed(
    o: &Opts,
    sock: &TcpStream,
    mut edits: Edits,
    cfg: Arc<ServerConfig>,
    chain: &[CertificateDer<'_>],
    remotehost: Option<&str>,
) -> Result<i32, String> {
    let (from_net_r, from_net_w) = pipe()?;
    let (mut to_net_r, to_net_w) = pipe()?;
    let (mut ctl, ctl_child) = UnixStream::pair()
        .map_err(|e| format!("unable to create socketpair: {}", sqmail::sys::strerror(&e)))?;
    for (k, v) in [
        ("SSLCTLFD", CTL_FD),
        ("SSLREADFD", READ_FD),
        ("SSLWRITEFD", WRITE_FD),
    ] {
        edits.push((k.to_string(), Some(v.to_string())));
    }
    if !o.banner.is_empty() {
        let _ = (&*sock).write_all(o.banner.as_bytes());
    }
    let map = [
        (from_net_r.as_raw_fd(), READ_FD),
        (to_net_w.as_raw_fd(), WRITE_FD),
        (ctl_child.as_raw_fd(), CTL_FD),
    ];
    let mut child = spawn(o, &edits, dup(sock)?, dup(sock)?, &map).map_err(|e| {
        format!(
            "unable to run {}: {}",
            show(&o.prog),
            sqmail::sys::strerror(&e)
        )
    })?;
    drop((from_net_r, to_net_w, ctl_child));
    if let Err(e) = drop_privileges(o) {
        return Ok(terminate(&mut child, drop_msg(&e)));
    }
    let mut cmd = [0u8; 1];
    match ctl.read(&mut cmd) {
        Ok(1) if cmd[0] == ucspitls::START || cmd[0] == ucspitls::START_ENV => {}
        Ok(1) => return Ok(terminate(&mut child, drop_msg("unknown UCSPI-TLS command"))),
        _ => {
            // The program ended (or closed its control socket) without asking for TLS.
            return Ok(terminate(&mut child, 0));
        }
    }
    discard(&mut to_net_r);
    let mut conn = match accept_tls(o, cfg, sock, remotehost) {
        Ok(c) => c,
        Err(e) => return Ok(terminate(&mut child, drop_msg(&e))),
    };
    if cmd[0] == ucspitls::START_ENV {
        let block = ucspitls::encode(&tlsenv::vars(&conn, chain));
        if ctl.write_all(&block).is_err() {
            return Ok(terminate(
                &mut child,
                drop_msg("unable to write SSL environment"),
            ));
        }
    }
    log_accept(o, &conn);
    match tlsio::relay(&mut conn, sock, from_net_w, to_net_r, o.prog_timeout) {
        Ok(()) => Ok(finish(&mut child)),
        Err(e) => Ok(terminate(
            &mut child,
            drop_msg(&format!("unable to speak SSL: {e}")),
        )),
    }
}
