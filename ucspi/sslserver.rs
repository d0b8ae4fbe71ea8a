//! sslserver's listening process: bind, accept, and hand each connection to a fresh TLS
//! engine process (`sslengine`, installed beside sslserver), counting them against `-c`.
//! This process never links the TLS library and never holds a private key: the engine
//! loads the key per connection and is the only process that speaks TLS.

use std::ffi::OsString;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use sqmail::fail::{Failure, Kind};
use sqmail::prog;
use sqmail::sys::proc::{Ready, Signal, catch, poll, take};

use crate::sslopts::{self, Opts};

/// The engine's file name; it lives in sslserver's own directory.
pub const ENGINE: &str = "sslengine";
/// The engine's first argument when it should only check the TLS settings and exit.
pub const CHECK_ARG: &str = "-K";

/// Where the engine is: beside this program.
///
/// # Errors
/// Temporary when the program cannot find itself.
pub fn engine_path() -> Result<PathBuf, Failure> {
    let me = std::env::current_exe()
        .map_err(|e| Failure::temp_io(Kind::System, "unable to find myself", e))?;
    Ok(me.with_file_name(ENGINE))
}

fn status(o: &Opts, n: usize) {
    if o.verbosity >= 2 {
        prog::err(format!("sslserver: status: {n}/{}\n", o.limit).as_bytes());
    }
}

fn reap(o: &Opts, children: &mut Vec<Child>) {
    let before = children.len();
    children.retain_mut(|c| match c.try_wait() {
        Ok(Some(st)) => {
            if o.verbosity >= 2 {
                prog::err(
                    format!("sslserver: end {} status {}\n", c.id(), st.into_raw()).as_bytes(),
                );
            }
            false
        }
        Ok(None) => true,
        Err(_) => false,
    });
    if children.len() != before {
        status(o, children.len());
    }
}

/// Runs the server until SIGTERM. `args` are sslserver's arguments without argv\[0\]; each
/// engine gets the same list.
///
/// # Errors
/// Temporary: bind, listen, or the TLS settings fail the start-up check.
pub fn serve(o: &Opts, args: &[OsString]) -> Result<(), Failure> {
    let engine = engine_path()?;
    let port = sslopts::port(&o.port)?;
    let (addr, v6only) = sslopts::bind_addr(&o.host, port, o.ipv6, o.interface.as_deref())?;
    let backlog = i32::try_from(o.backlog).unwrap_or(i32::MAX);
    let listener: TcpListener = sqmail::sys::tcp_listen(&addr, backlog, v6only)
        .map_err(|e| Failure::temp_io(Kind::System, "unable to bind", e))?;
    let local = listener
        .local_addr()
        .map_err(|e| Failure::temp_io(Kind::System, "unable to get local address", e))?;
    if o.print_port {
        prog::out(format!("{}\n", local.port()).as_bytes())
            .map_err(|e| Failure::temp_io(Kind::Write, "unable to print port", e))?;
    }
    if o.password_fd3
        && let Some(mut f) = sqmail::sys::inherited_fd(3)
    {
        // Encrypted keys are not supported; the password is read so the writer is not
        // blocked, then forgotten.
        let mut pw = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::Read::take(&mut f, 4096), &mut pw);
        pw.fill(0);
    }
    let check = Command::new(&engine)
        .arg(CHECK_ARG)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .map_err(|e| {
            Failure::temp_io(
                Kind::System,
                format!("unable to run {}", engine.display()),
                e,
            )
        })?;
    if !check.success() {
        return Err(Failure::temp(Kind::Config, "unable to create SSL context"));
    }
    catch(&[Signal::Child, Signal::Terminate]);
    let mut children: Vec<Child> = Vec::new();
    status(o, 0);
    let limit = usize::try_from(o.limit).unwrap_or(usize::MAX);
    loop {
        if take(Signal::Terminate) {
            return Ok(());
        }
        take(Signal::Child);
        reap(o, &mut children);
        if children.len() >= limit {
            // Wait for a child to end; SIGCHLD interrupts the sleep.
            let _ = poll(&[], 1000);
            continue;
        }
        let r = poll(
            &[(
                listener.as_raw_fd(),
                Ready {
                    read: true,
                    write: false,
                },
            )],
            1000,
        )
        .map_err(|e| Failure::temp_io(Kind::System, "poll", e))?;
        if !r.first().is_some_and(|x| x.read) {
            continue;
        }
        let Ok((sock, _)) = listener.accept() else {
            continue;
        };
        let _ = sock.set_nodelay(o.nodelay);
        let spawned = Command::new(&engine)
            .args(args)
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(sock)))
            .stdout(Stdio::null())
            .spawn();
        match spawned {
            Ok(c) => {
                children.push(c);
                status(o, children.len());
            }
            Err(e) => prog::err(
                format!(
                    "sslserver: warning: dropping SSL connection, unable to run {ENGINE}: {}\n",
                    sqmail::sys::strerror(&e)
                )
                .as_bytes(),
            ),
        }
    }
}
