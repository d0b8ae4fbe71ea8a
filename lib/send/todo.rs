//! qmail-todo: preprocesses new messages (s/qmail's EXTTODO). For each `todo/<n>/<id>` it
//! writes `info/` (the sender), `local/` and `remote/` (the rewritten recipients), makes them
//! durable, has its qmail-clean remove `todo` and `intd`, and tells qmail-send.
//!
//! To qmail-send (fd 1): `D` + `L`|`R`|`B`|`X` + id + NUL (a new message for the local
//! channel, the remote one, both, or neither) and `L` + log text + NUL. From qmail-send
//! (fd 0): `H` (reread the control files) and `X` (stop).

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::addr::{Dest, Rewrite};
use crate::control::Control;
use crate::envelope::ADDR_MAX;
use crate::fail::Result;
use crate::queue::Layout;
use crate::send::log::safe_text;
use crate::sys;
use crate::sys::proc::{Ready, Signal};

/// todo/ is rescanned at least this often even without a trigger (qmail's SLEEP_TODO).
pub const SLEEP_TODO: i64 = 1500;
/// Seconds before todo/ is looked at again after trouble with a message.
pub const SLEEP_SYSFAIL: i64 = 123;
/// Messages preprocessed between two syncs of the queue's file system.
pub const BATCH: usize = 64;

/// Reads the rewriting rules from the control files.
pub fn rules(home: &Path) -> Result<Rewrite> {
    let c = Control::open(home)?;
    Ok(Rewrite::new(
        &c.list_or_me("locals")?,
        &c.list("percenthack")?.unwrap_or_default(),
        &c.list("virtualdomains")?.unwrap_or_default(),
        &c.line_or_me("envnoathost", b"envnoathost")?,
    ))
}

/// The outcome of preprocessing one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channels {
    /// It has local recipients.
    pub local: bool,
    /// It has remote recipients.
    pub remote: bool,
}

impl Channels {
    /// The letter qmail-todo sends to qmail-send.
    pub fn letter(self) -> u8 {
        match (self.local, self.remote) {
            (true, true) => b'B',
            (true, false) => b'L',
            (false, true) => b'R',
            (false, false) => b'X',
        }
    }
}

fn excl(p: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
}

fn unlink(p: &Path) -> io::Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes info/, local/ and remote/ for message `id` from its todo file. Returns the
/// channels used and the log lines to report. Runs in the queue directory. Nothing is
/// durable yet: the caller syncs the file system once for a whole batch before the todo
/// files go.
pub fn preprocess(
    layout: &Layout,
    rw: &Rewrite,
    id: u64,
) -> std::result::Result<(Channels, Vec<Vec<u8>>), String> {
    let todo = layout.rel("todo", id);
    let warn = |what: &str, p: &Path| format!("warning: qmail-todo: {what} {}\n", p.display());
    let f = File::open(&todo).map_err(|_| warn("unable to open", &todo))?;
    let mess = layout.rel("mess", id);
    let size = std::fs::metadata(&mess)
        .map_err(|_| warn("unable to stat", &mess))?
        .len();
    let info = layout.rel("info", id);
    let chan = [layout.rel("local", id), layout.rel("remote", id)];
    for p in chan.iter().chain([&info]) {
        unlink(p).map_err(|_| warn("unable to unlink", p))?;
    }
    let mut logs = vec![format!("new msg {id}\n").into_bytes()];
    let mut info_out = BufWriter::new(excl(&info).map_err(|_| warn("unable to create", &info))?);
    let mut outs: [Option<BufWriter<File>>; 2] = [None, None];
    let (mut uid, mut pid) = (0u64, 0u64);
    let mut input = BufReader::new(f).take(0);
    let mut rec = Vec::with_capacity(256);
    loop {
        rec.clear();
        input.set_limit(ADDR_MAX as u64 + 2);
        let n = input
            .read_until(0, &mut rec)
            .map_err(|_| warn("trouble reading", &todo))?;
        if n as u64 == ADDR_MAX as u64 + 2 && rec.last() != Some(&0) {
            // Longer than any record qmail-queue writes: corrupt, not the end.
            return Err(warn("record too long in", &todo));
        }
        if n == 0 || rec.last() != Some(&0) {
            break;
        }
        let body = rec.get(1..rec.len() - 1).unwrap_or_default();
        let num = || {
            std::str::from_utf8(body)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0)
        };
        match rec.first() {
            Some(b'u') => uid = num(),
            Some(b'p') => pid = num(),
            Some(b'F') => {
                info_out
                    .write_all(&rec)
                    .map_err(|_| warn("trouble writing to", &info))?;
                let mut l = format!("info msg {id}: bytes {size} from <").into_bytes();
                l.extend_from_slice(&safe_text(body));
                l.extend_from_slice(format!("> qp {pid} uid {uid}\n").as_bytes());
                logs.push(l);
            }
            Some(b'T') => {
                let (c, addr) = match rw.rewrite(body) {
                    Dest::Local(a) => (0, a),
                    Dest::Remote(a) => (1, a),
                };
                let path = chan.get(c).ok_or_else(|| warn("bad channel", &todo))?;
                let out = match outs.get_mut(c) {
                    Some(Some(o)) => o,
                    Some(slot) => slot.insert(BufWriter::new(
                        excl(path).map_err(|_| warn("unable to create", path))?,
                    )),
                    None => return Err(warn("bad channel", &todo)),
                };
                let mut line = Vec::with_capacity(addr.len() + 2);
                line.push(b'T');
                line.extend_from_slice(&addr);
                line.push(0);
                out.write_all(&line)
                    .map_err(|_| warn("trouble writing to", path))?;
            }
            _ => return Err(warn("unknown record type in", &todo)),
        }
    }
    flush(info_out).map_err(|_| warn("trouble writing to", &info))?;
    let mut used = [false, false];
    for (c, out) in outs.into_iter().enumerate() {
        if let (Some(out), Some(path)) = (out, chan.get(c)) {
            flush(out).map_err(|_| warn("trouble writing to", path))?;
            if let Some(u) = used.get_mut(c) {
                *u = true;
            }
        }
    }
    Ok((
        Channels {
            local: used[0],
            remote: used[1],
        },
        logs,
    ))
}

fn flush(out: BufWriter<File>) -> io::Result<()> {
    out.into_inner()
        .map_err(io::IntoInnerError::into_error)
        .map(drop)
}

/// The ids waiting in todo/, in directory order.
pub fn scan(layout: &Layout) -> io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    for n in 0..layout.split {
        for e in std::fs::read_dir(format!("todo/{n}"))? {
            let e = e?;
            if let Some(id) = e.file_name().to_str().and_then(|s| s.parse::<u64>().ok()) {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}

/// The running qmail-todo: its pipes to qmail-send and to its qmail-clean.
pub struct Daemon {
    /// The instance's home (for control files).
    pub home: PathBuf,
    /// The queue layout.
    pub layout: Layout,
    /// Pipe from qmail-send (fd 0).
    pub from_send: File,
    /// Pipe to qmail-send (fd 1).
    pub to_send: File,
    /// Pipe to qmail-clean (fd 2).
    pub to_clean: File,
    /// Pipe from qmail-clean (fd 3).
    pub from_clean: File,
    /// The queue directory, for syncing its file system.
    pub queue: File,
    /// Set when a message could not be preprocessed: todo/ is looked at again soon.
    pub trouble: bool,
}

impl Daemon {
    fn say(&mut self, rec: &[u8]) -> bool {
        self.to_send.write_all(rec).is_ok()
    }

    fn log(&mut self, text: &[u8]) -> bool {
        let mut r = Vec::with_capacity(text.len() + 2);
        r.push(b'L');
        r.extend_from_slice(text);
        r.push(0);
        self.say(&r)
    }

    fn clean(&mut self, id: u64) -> bool {
        let req = format!("todo/{id}\0");
        let mut ans = [0u8; 1];
        self.to_clean.write_all(req.as_bytes()).is_ok()
            && self.from_clean.read_exact(&mut ans).is_ok()
            && ans[0] == b'+'
    }

    /// Runs until qmail-send says `X`, goes away, or SIGTERM arrives.
    pub fn run(mut self) -> Result<()> {
        let mut rw = rules(&self.home)?;
        let mut pending: Vec<u64> = Vec::new();
        let mut next_scan = 0i64;
        let mut trigger = open_trigger();
        loop {
            if sys::proc::take(Signal::Terminate) {
                break;
            }
            if sys::proc::take(Signal::Hangup) {
                self.reread(&mut rw);
            }
            let timeout = poll_timeout(!pending.is_empty(), next_scan, crate::date::now());
            let mut fds = vec![(
                self.from_send.as_raw_fd(),
                Ready {
                    read: true,
                    write: false,
                },
            )];
            if let Some(t) = &trigger {
                fds.push((
                    t.as_raw_fd(),
                    Ready {
                        read: true,
                        write: false,
                    },
                ));
            }
            let ready = sys::proc::poll(&fds, timeout).unwrap_or_default();
            if ready.first().is_some_and(|r| r.read) {
                let mut b = [0u8; 1];
                match self.from_send.read(&mut b) {
                    Ok(0) => break,
                    Ok(_) if b[0] == b'X' => break,
                    Ok(_) if b[0] == b'H' => self.reread(&mut rw),
                    Ok(_) => {
                        self.log(b"warning: qmail-todo: qmail-send speaks an obscure dialect\n");
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let pulled = ready.get(1).is_some_and(|r| r.read);
            let now = crate::date::now();
            if pending.is_empty() && (pulled || now >= next_scan) {
                // Close before reopening, as qmail's trigger_set does: while any reader has
                // the FIFO open its unread bytes stay, and a new reader would find it
                // readable for ever.
                drop(trigger.take());
                trigger = open_trigger();
                match scan(&self.layout) {
                    Ok(mut ids) => {
                        ids.reverse();
                        pending = ids;
                    }
                    Err(_) => {
                        self.log(b"alert: qmail-todo: unable to read todo, sleeping...\n");
                    }
                }
                next_scan = now + SLEEP_TODO;
            }
            if !pending.is_empty() && !self.batch(&rw, &mut pending) {
                break;
            }
            if std::mem::take(&mut self.trouble) {
                // qmail waits for the next trigger or the 25-minute scan; a message that
                // failed for a passing reason should not wait that long.
                next_scan = next_scan.min(crate::date::now() + SLEEP_SYSFAIL);
            }
        }
        let _ = self.say(b"X\0");
        Ok(())
    }

    fn reread(&mut self, rw: &mut Rewrite) {
        match rules(&self.home) {
            Ok(r) => *rw = r,
            Err(_) => {
                self.log(b"alert: qmail-todo: unable to reread controls\n");
            }
        }
    }

    /// Preprocesses up to [`BATCH`] messages with two file-system syncs in all: one makes
    /// their info/, local/ and remote/ files durable before qmail-clean removes their todo
    /// files, the other makes those removals durable before qmail-send hears of the
    /// messages (a todo file that came back after a crash would be delivered again).
    /// False when qmail-send or qmail-clean is gone.
    fn batch(&mut self, rw: &Rewrite, pending: &mut Vec<u64>) -> bool {
        let mut done = Vec::with_capacity(BATCH);
        while done.len() < BATCH {
            let Some(id) = pending.pop() else { break };
            match preprocess(&self.layout, rw, id) {
                Ok((chans, logs)) => done.push((id, chans, logs)),
                Err(w) => {
                    self.trouble = true;
                    if !self.log(w.as_bytes()) {
                        return false;
                    }
                }
            }
        }
        if let Err(e) = sys::proc::syncfs(&self.queue) {
            self.trouble = true;
            let w = format!(
                "warning: qmail-todo: trouble syncing the queue: {}\n",
                sys::strerror(&e)
            );
            return self.log(w.as_bytes());
        }
        let mut cleaned = Vec::with_capacity(done.len());
        for (id, chans, logs) in done {
            if self.clean(id) {
                cleaned.push((id, chans, logs));
                continue;
            }
            self.trouble = true;
            let w = format!("warning: qmail-clean unable to clean up todo/{id}\n");
            if !self.log(w.as_bytes()) {
                return false;
            }
        }
        if let Err(e) = sys::proc::syncfs(&self.queue) {
            self.trouble = true;
            let w = format!(
                "warning: qmail-todo: trouble syncing the queue: {}\n",
                sys::strerror(&e)
            );
            return self.log(w.as_bytes());
        }
        for (id, chans, logs) in cleaned {
            for l in logs {
                if !self.log(&l) {
                    return false;
                }
            }
            let mut rec = vec![b'D', chans.letter()];
            rec.extend_from_slice(id.to_string().as_bytes());
            rec.push(0);
            if !self.say(&rec) {
                return false;
            }
        }
        true
    }
}

/// Milliseconds qmail-todo may sleep in poll: none while messages wait or a scan is due
/// (at start, next_scan is 0), else until the next scan plus a second, as qmail's
/// SLEEP_FUZZ rounds the seconds clock up.
fn poll_timeout(pending: bool, next_scan: i64, now: i64) -> i32 {
    if pending || next_scan <= now {
        return 0;
    }
    let ms = (next_scan - now).min(86_400) * 1000 + 1000;
    i32::try_from(ms).unwrap_or(i32::MAX)
}

fn open_trigger() -> Option<File> {
    sys::proc::open_read_nonblock(Path::new("lock/trigger")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_due_scan_does_not_wait() {
        // At start next_scan is 0: the first scan must not wait a second for nothing.
        assert_eq!(poll_timeout(false, 0, 1_700_000_000), 0);
        assert_eq!(poll_timeout(false, 100, 100), 0);
        assert_eq!(poll_timeout(true, 200, 100), 0);
        assert_eq!(poll_timeout(false, 101, 100), 2000);
        assert_eq!(poll_timeout(false, i64::MAX, 0), 86_401_000);
    }

    #[test]
    fn channel_letters() {
        let c = |local, remote| Channels { local, remote }.letter();
        assert_eq!(
            (
                c(true, true),
                c(true, false),
                c(false, true),
                c(false, false)
            ),
            (b'B', b'L', b'R', b'X')
        );
    }
}
