//! qmail-start: starts the delivery daemons, each under its own account, wired together
//! by pipes on fixed descriptors, and becomes qmail-send.
//!
//! `qmail-start [defaultdelivery [logger arg...]]`. With a logger, its standard input is a
//! pipe that receives qmail-send's log; otherwise the log goes to qmail-start's standard
//! output.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::fail::{Failure, Kind, Result};
use crate::ids::{Group, Ids, User};
use crate::sys;

/// The default delivery when none is given (s/qmail's conf-delivery).
pub const DEFAULT_DELIVERY: &str = "./Maildir/";

/// The descriptor on which qmail-send and qmail-todo inherit the queue lock.
pub const LOCK_FD: RawFd = 9;

/// How long qmail-start waits for the daemons of a previous start to go.
pub const LOCK_WAIT_SECS: u64 = 60;

/// Takes `queue/lock/sendmutex` for the daemons about to start, waiting while processes of
/// a previous start still hold it.
///
/// The lock is an flock on one open file, inherited by qmail-send and qmail-todo, so it
/// stays held until both have exited. Without it a qmail-todo killed or stopped in the
/// middle of a batch could still be writing info/, local/ and remove todo/ files while a
/// new qmail-todo and qmail-send read the same messages.
fn queue_lock(home: &Path) -> Result<File> {
    let path = home.join("queue/lock/sendmutex");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| Failure::temp_io(Kind::Queue, "unable to open queue/lock/sendmutex", e))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(LOCK_WAIT_SECS);
    let mut said = false;
    loop {
        match sys::try_lock_exclusive(&f) {
            Ok(true) => return Ok(f),
            Ok(false) => {}
            Err(e) => {
                return Err(Failure::temp_io(
                    Kind::Queue,
                    "unable to lock queue/lock/sendmutex",
                    e,
                ));
            }
        }
        if std::time::Instant::now() >= deadline {
            return Err(Failure::temp(
                Kind::Queue,
                "qmail-send or qmail-todo is still running",
            ));
        }
        if !said {
            crate::prog::err(
                b"qmail-start: waiting for the qmail-send and qmail-todo of a previous start to exit\n",
            );
            said = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn pipe() -> Result<(File, File)> {
    let (r, w) =
        io::pipe().map_err(|e| Failure::temp_io(Kind::System, "unable to create pipe", e))?;
    Ok((File::from(OwnedFd::from(r)), File::from(OwnedFd::from(w))))
}

struct Plumb<'a> {
    home: &'a Path,
    ids: &'a Ids,
    root: bool,
}

impl Plumb<'_> {
    fn command(
        &self,
        prog: &str,
        user: User,
        group: Group,
        fds: &[(RawFd, RawFd)],
    ) -> Result<Command> {
        let mut c = Command::new(self.home.join("bin").join(prog));
        c.current_dir("/");
        if self.root {
            c.uid(self.ids.uid(user)?).gid(self.ids.gid(group)?);
        }
        sys::proc::map_fds(&mut c, fds);
        Ok(c)
    }

    fn spawn(
        &self,
        prog: &str,
        user: User,
        group: Group,
        fds: &[(RawFd, RawFd)],
        args: &[&std::ffi::OsStr],
    ) -> Result<()> {
        let mut c = self.command(prog, user, group, fds)?;
        c.args(args);
        c.spawn()
            .map_err(|e| Failure::temp_io(Kind::System, format!("unable to start {prog}"), e))?;
        Ok(())
    }
}

/// Starts everything and execs qmail-send; returns only on failure.
pub fn start(home: &Path, args: &[std::ffi::OsString]) -> Failure {
    match run(home, args) {
        Ok(e) | Err(e) => e,
    }
}

fn run(home: &Path, args: &[std::ffi::OsString]) -> Result<Failure> {
    sys::umask(0o077);
    let ids = Ids::load(home)?;
    let lock = queue_lock(home)?;
    let root = sys::euid() == 0;
    let p = Plumb {
        home,
        ids: &ids,
        root,
    };
    let delivery = args
        .first()
        .cloned()
        .unwrap_or_else(|| DEFAULT_DELIVERY.into());
    let log: File = match args.get(1) {
        Some(logger) => {
            let (r, w) = pipe()?;
            let mut c = Command::new(logger);
            c.args(args.get(2..).unwrap_or_default())
                .stdin(r)
                .current_dir("/");
            if root {
                c.uid(ids.uid(User::Qmaill)?).gid(ids.gid(Group::Nofiles)?);
            }
            c.spawn()
                .map_err(|e| Failure::temp_io(Kind::System, "unable to start the logger", e))?;
            w
        }
        None => {
            sys::inherited_fd(1).ok_or_else(|| Failure::temp(Kind::System, "fd 1 is not open"))?
        }
    };
    let lg = log.as_raw_fd();
    let (l_in_r, l_in_w) = pipe()?; // send -> lspawn
    let (l_out_r, l_out_w) = pipe()?; // lspawn -> send
    let (r_in_r, r_in_w) = pipe()?; // send -> rspawn
    let (r_out_r, r_out_w) = pipe()?; // rspawn -> send
    let (c_in_r, c_in_w) = pipe()?; // send -> clean
    let (c_out_r, c_out_w) = pipe()?; // clean -> send
    let (t_in_r, t_in_w) = pipe()?; // send -> todo
    let (t_out_r, t_out_w) = pipe()?; // todo -> send
    let (tc_in_r, tc_in_w) = pipe()?; // todo -> its clean
    let (tc_out_r, tc_out_w) = pipe()?; // its clean -> todo
    let fd = |f: &File| f.as_raw_fd();
    p.spawn(
        "qmail-lspawn",
        User::Root,
        Group::Qmail,
        &[(fd(&l_in_r), 0), (fd(&l_out_w), 1), (lg, 2)],
        &[delivery.as_os_str()],
    )?;
    p.spawn(
        "qmail-rspawn",
        User::Qmailr,
        Group::Qmail,
        &[(fd(&r_in_r), 0), (fd(&r_out_w), 1), (lg, 2)],
        &[],
    )?;
    p.spawn(
        "qmail-clean",
        User::Qmailq,
        Group::Qmail,
        &[(fd(&c_in_r), 0), (fd(&c_out_w), 1), (lg, 2)],
        &[],
    )?;
    p.spawn(
        "qmail-clean",
        User::Qmailq,
        Group::Qmail,
        &[(fd(&tc_in_r), 0), (fd(&tc_out_w), 1), (lg, 2)],
        &[],
    )?;
    p.spawn(
        "qmail-todo",
        User::Qmails,
        Group::Qmail,
        &[
            (fd(&t_in_r), 0),
            (fd(&t_out_w), 1),
            (fd(&tc_in_w), 2),
            (fd(&tc_out_r), 3),
            (fd(&lock), LOCK_FD),
        ],
        &[],
    )?;
    let mut send = p.command(
        "qmail-send",
        User::Qmails,
        Group::Qmail,
        &[
            (lg, 0),
            (fd(&l_in_w), 1),
            (fd(&l_out_r), 2),
            (fd(&r_in_w), 3),
            (fd(&r_out_r), 4),
            (fd(&c_in_w), 5),
            (fd(&c_out_r), 6),
            (fd(&t_in_w), 7),
            (fd(&t_out_r), 8),
            (fd(&lock), LOCK_FD),
        ],
    )?;
    let e = send.exec();
    Ok(Failure::temp_io(
        Kind::System,
        "unable to run qmail-send",
        e,
    ))
}
