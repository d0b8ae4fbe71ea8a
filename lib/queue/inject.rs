//! qmail-queue: put one message into the queue so that it survives any crash once this
//! returns success.
//!
//! The steps are qmail's, in qmail's order (research: sqmail.md 4.2), plus the directory
//! fsyncs Linux file systems need because they do not make `link` synchronous:
//!
//! 1. chdir to the queue; create `pid/<pid>.<time>.<seq>` exclusively; its inode is the
//!    message number.
//! 2. link it to `mess/<n>/<inode>`, unlink the pid file.
//! 3. write the `Received:` line and the message; fsync (1).
//! 4. create `intd/<n>/<inode>`; copy the envelope into it after the `u` and `p` records;
//!    fsync (2).
//! 5. fsync `mess/<n>` (3): the message's name must be durable before anything points at it.
//! 6. link `intd` to `todo/<n>/<inode>`; fsync `todo/<n>` (4): now the message is queued.
//! 7. pull the trigger (a byte into the `lock/trigger` FIFO).
//!
//! `intd/` needs no fsync: once the `todo` link is durable, the envelope's inode is reachable
//! from there, and qmail-clean ignores a missing `intd` name. On any failure before step 6
//! the files this run made are truncated and removed.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::date::Utc;
use crate::envelope::{self, Record};
use crate::fail::{Failure, Kind, Result};
use crate::ids::{Ids, User};
use crate::queue::Layout;
use crate::sys;

/// qmail-queue gives up after this long (qmail's DEATH).
pub const DEATH_SECS: u32 = 86_400;
/// Tries at a unique pid file name before giving up.
const PID_TRIES: u32 = 9;
/// Size of the copy buffer.
const BUF: usize = 64 * 1024;

/// Who is queueing, for the `Received:` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invoker {
    /// The alias user (forwards from `~alias/.qmail` files).
    Alias,
    /// qmaild: a network server.
    Network,
    /// qmails: qmail-send injecting a bounce.
    Bounce,
    /// Anybody else, by uid.
    Uid(u32),
}

impl Invoker {
    /// Classifies a uid with the instance's accounts, as qmail-queue does.
    pub fn of(uid: u32, ids: &Ids) -> Result<Invoker> {
        for (role, who) in [
            (User::Alias, Invoker::Alias),
            (User::Qmaild, Invoker::Network),
            (User::Qmails, Invoker::Bounce),
        ] {
            match sys::account(ids.user_name(role)) {
                Ok(Some(a)) if a.uid == uid => return Ok(who),
                Ok(_) => {}
                Err(e) => {
                    return Err(Failure::temp_io(
                        Kind::Config,
                        "unable to read the user database",
                        e,
                    ));
                }
            }
        }
        Ok(Invoker::Uid(uid))
    }
}

/// The `Received:` line qmail-queue puts on top of every message.
pub fn received(pid: u32, who: Invoker, time: i64) -> String {
    let how = match who {
        Invoker::Alias => "invoked by alias".to_string(),
        Invoker::Network => "invoked from network".to_string(),
        Invoker::Bounce => "invoked for bounce".to_string(),
        Invoker::Uid(u) => format!("invoked by uid {u}"),
    };
    format!(
        "Received: (qmail {pid} {how}); {}",
        Utc::from_unix(time).rfc822()
    )
}

/// What a successful queueing produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queued {
    /// The message number (inode of the `mess` file).
    pub id: u64,
}

/// Files made so far, removed again if the run fails.
struct Made {
    pid: Option<PathBuf>,
    mess: Option<(PathBuf, File)>,
    intd: Option<(PathBuf, File)>,
}

impl Made {
    fn clean(&mut self) {
        if let Some(p) = self.pid.take() {
            let _ = std::fs::remove_file(p);
        }
        for (p, f) in [self.mess.take(), self.intd.take()].into_iter().flatten() {
            let _ = sys::truncate(&f);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Queues the message read from `message` with the envelope read from `envelope`.
/// The caller has set up alarms and signals; `home` is the instance's home.
pub fn queue(home: &Path, message: impl Read, envelope: impl Read) -> Result<Queued> {
    std::env::set_current_dir(home)
        .map_err(|e| Failure::temp_io(Kind::Home, "unable to chdir to home", e))?;
    let layout = Layout::open(Path::new("."))?;
    std::env::set_current_dir("queue")
        .map_err(|e| Failure::temp_io(Kind::Queue, "unable to chdir to queue", e))?;
    let ids = Ids::load(Path::new(".."))?;
    sys::umask(0o033);
    let uid = sys::uid();
    let who = Invoker::of(uid, &ids)?;
    let mut made = Made {
        pid: None,
        mess: None,
        intd: None,
    };
    let r = steps(&layout, &mut made, uid, who, message, envelope);
    if r.is_err() {
        made.clean();
    }
    r
}

fn create_excl(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
}

fn steps(
    layout: &Layout,
    made: &mut Made,
    uid: u32,
    who: Invoker,
    message: impl Read,
    envelope: impl Read,
) -> Result<Queued> {
    let pid = std::process::id();
    let start = crate::date::now();
    let (pidfn, mess) = pid_file(made, pid, start)?;
    let id = mess
        .metadata()
        .map_err(|e| Failure::temp_io(Kind::Pid, "unable to stat pid file", e))?
        .ino();
    let messfn = layout.rel("mess", id);
    std::fs::hard_link(&pidfn, &messfn)
        .map_err(|e| Failure::temp_io(Kind::Mess, "unable to link message", e))?;
    made.mess = Some((messfn.clone(), mess.try_clone().map_err(write_err)?));
    std::fs::remove_file(&pidfn)
        .map_err(|e| Failure::temp_io(Kind::Pid, "unable to remove pid file", e))?;
    made.pid = None;

    let mut out = BufWriter::with_capacity(BUF, mess);
    out.write_all(received(pid, who, start).as_bytes())
        .map_err(write_err)?;
    copy(message, &mut out)?;
    let mess = out.into_inner().map_err(|e| write_err(e.into_error()))?;
    mess.sync_all().map_err(write_err)?;

    let intdfn = layout.rel("intd", id);
    let intd = create_excl(&intdfn)
        .map_err(|e| Failure::temp_io(Kind::Intd, "unable to create envelope file", e))?;
    made.intd = Some((intdfn.clone(), intd.try_clone().map_err(write_err)?));
    let mut out = BufWriter::with_capacity(4096, intd);
    write!(out, "u{uid}\0p{pid}\0").map_err(write_err)?;
    copy_envelope(envelope, &mut out)?;
    let intd = out.into_inner().map_err(|e| write_err(e.into_error()))?;
    intd.sync_all().map_err(write_err)?;
    sys::fsync_dir(parent(&messfn)).map_err(write_err)?;

    let todofn = layout.rel("todo", id);
    std::fs::hard_link(&intdfn, &todofn)
        .map_err(|e| Failure::temp_io(Kind::Todo, "unable to link envelope into todo", e))?;
    if let Err(e) = sys::fsync_dir(parent(&todofn)) {
        let _ = std::fs::remove_file(&todofn);
        return Err(write_err(e));
    }
    made.mess = None;
    made.intd = None;
    pull_trigger(Path::new("lock/trigger"));
    Ok(Queued { id })
}

fn parent(p: &Path) -> &Path {
    p.parent().unwrap_or(Path::new("."))
}

fn pid_file(made: &mut Made, pid: u32, start: i64) -> Result<(PathBuf, File)> {
    let mut last = None;
    for seq in 1..=PID_TRIES {
        let name = PathBuf::from(format!("pid/{pid}.{start}.{seq}"));
        match create_excl(&name) {
            Ok(f) => {
                made.pid = Some(name.clone());
                return Ok((name, f));
            }
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists));
    Err(Failure::temp_io(Kind::Pid, "unable to create pid file", e))
}

fn write_err(e: io::Error) -> Failure {
    Failure::temp_io(Kind::Write, "unable to write queue file", e)
}

fn read_err(e: io::Error) -> Failure {
    Failure::temp_io(Kind::Read, "unable to read message", e)
}

fn copy(mut from: impl Read, to: &mut impl Write) -> Result<()> {
    let mut buf = vec![0u8; BUF];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        to.write_all(buf.get(..n).unwrap_or_default())
            .map_err(write_err)?;
    }
}

fn copy_envelope(from: impl Read, to: &mut impl Write) -> Result<()> {
    let mut r = envelope::Reader::new(io::BufReader::with_capacity(4096, from));
    loop {
        match r.next_record()? {
            Record::Sender(s) => put(to, b'F', &s)?,
            Record::Recipient(t) => put(to, b'T', &t)?,
            Record::End | Record::EndNoScan => return Ok(()),
        }
    }
}

fn put(to: &mut impl Write, letter: u8, addr: &[u8]) -> Result<()> {
    to.write_all(&[letter])
        .and_then(|()| to.write_all(addr))
        .and_then(|()| to.write_all(b"\0"))
        .map_err(write_err)
}

/// Wakes qmail-send: one byte into the trigger FIFO, without waiting. Nobody listening is
/// not an error; qmail-send rescans the queue by itself.
pub fn pull_trigger(path: &Path) {
    if let Ok(mut f) = sys::open_write_nonblock(path) {
        let _ = f.write(b"\0");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_lines_name_the_invoker() {
        let t = 812_090_814;
        assert_eq!(
            received(123, Invoker::Uid(0), t),
            "Received: (qmail 123 invoked by uid 0); 26 Sep 1995 04:46:54 -0000\n"
        );
        assert_eq!(
            received(9, Invoker::Network, t),
            "Received: (qmail 9 invoked from network); 26 Sep 1995 04:46:54 -0000\n"
        );
        assert!(received(9, Invoker::Alias, t).contains("(qmail 9 invoked by alias); "));
        assert!(received(9, Invoker::Bounce, t).contains("(qmail 9 invoked for bounce); "));
    }
}
