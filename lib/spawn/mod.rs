//! What qmail-lspawn and qmail-rspawn share (qmail's spawn.c): announce the number of
//! delivery slots, read requests from qmail-send on fd 0 (`slot`, `<n>/<id>\0`,
//! `sender\0`, `recipient\0`), run one delivery program per request with the message on its
//! fd 0 and a pipe on fds 1 and 2, and when it has exited and its output has ended, report
//! on fd 1: `slot`, then `K`, `Z` or `D` and a text, then `\0`.

pub mod local;
pub mod remote;

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};

use crate::sys;
use crate::sys::proc::Ready;

/// Delivery slots a spawn offers (s/qmail's conf-spawn; one byte on the wire).
pub const SLOTS: usize = 120;
/// Longest message id in a request.
const MESSID_MAX: usize = 100;
/// Longest sender or recipient in a request.
const FIELD_MAX: usize = 10_000;

/// How one kind of spawn runs a delivery and reads its result.
pub trait Deliver {
    /// Starts the delivery program for `recip` (which has an `@` at `at`), with `mess` as
    /// its fd 0 and `out` as its fds 1 and 2. `Err(report)` is reported at once instead
    /// (a complete `K…`/`Z…`/`D…` report: a failure, or a delivery with nothing to run).
    fn start(
        &mut self,
        mess: File,
        out: File,
        sender: &[u8],
        recip: &[u8],
        at: usize,
    ) -> Result<Child, Vec<u8>>;
    /// Turns the program's exit status and output into the report text (`K`/`Z`/`D` +
    /// text, without the slot byte or the final NUL).
    fn report(&self, status: ExitStatus, output: &[u8]) -> Vec<u8>;
    /// Output beyond this many bytes is cut with a note (0: never).
    fn truncate(&self) -> usize;
}

struct Running {
    child: Child,
    output: File,
    writer: Option<File>,
    status: Option<ExitStatus>,
    text: Vec<u8>,
}

#[derive(Default)]
struct Request {
    stage: u8,
    slot: usize,
    messid: Vec<u8>,
    sender: Vec<u8>,
    recip: Vec<u8>,
    overflow: bool,
}

fn reply(out: &mut impl Write, slot: usize, text: &[u8]) -> io::Result<()> {
    let mut r = Vec::with_capacity(text.len() + 2);
    r.push(u8::try_from(slot).unwrap_or(0));
    r.extend_from_slice(text);
    r.push(0);
    out.write_all(&r).and_then(|()| out.flush())
}

/// Checks a request and opens its message (in `queue/mess`, the current directory). The
/// message file must be a regular file owned by the queue's owner.
fn open_message(messid: &[u8], qmailq: u32) -> Result<File, &'static [u8]> {
    let ok = messid
        .iter()
        .enumerate()
        .all(|(i, &c)| c.is_ascii_digit() || (i > 0 && c == b'/'));
    if !ok {
        return Err(b"DInternal error: messid has nonnumerics. (#5.3.5)\n");
    }
    if messid.len() > MESSID_MAX {
        return Err(b"DInternal error: messid too long. (#5.3.5)\n");
    }
    if messid.is_empty() {
        return Err(b"DInternal error: messid too short. (#5.3.5)\n");
    }
    let path = std::str::from_utf8(messid)
        .map_err(|_| &b"DInternal error: messid has nonnumerics. (#5.3.5)\n"[..])?;
    let f =
        File::open(path).map_err(|_| &b"Zqmail-spawn unable to open message. (#4.3.0)\n"[..])?;
    let m = f
        .metadata()
        .map_err(|_| &b"Zqmail-spawn unable to fstat message. (#4.3.0)\n"[..])?;
    if !m.is_file() {
        return Err(b"ZSorry, message has wrong type. (#4.3.5)\n");
    }
    if m.uid() != qmailq {
        return Err(b"ZSorry, message has wrong owner. (#4.3.5)\n");
    }
    Ok(f)
}

/// The spawn loop. Runs in `queue/mess`; `qmailq` is the queue owner's uid. Returns when
/// qmail-send has closed fd 0 and every delivery has been reported.
pub fn serve(d: &mut dyn Deliver, qmailq: u32, input: &mut File, out: &mut File) -> io::Result<()> {
    let mut child_ready = sys::proc::child_pipe()?;
    out.write_all(&[u8::try_from(SLOTS.min(255)).unwrap_or(255)])?;
    let mut slots: Vec<Option<Running>> = Vec::with_capacity(SLOTS);
    slots.resize_with(SLOTS, || None);
    let mut req = Request::default();
    let mut reading = true;
    loop {
        if !reading && slots.iter().all(Option::is_none) {
            return Ok(());
        }
        let mut fds = vec![(
            child_ready.as_raw_fd(),
            Ready {
                read: true,
                write: false,
            },
        )];
        if reading {
            fds.push((
                input.as_raw_fd(),
                Ready {
                    read: true,
                    write: false,
                },
            ));
        }
        let mut which = Vec::new();
        for (i, s) in slots.iter().enumerate() {
            if let Some(r) = s {
                fds.push((
                    r.output.as_raw_fd(),
                    Ready {
                        read: true,
                        write: false,
                    },
                ));
                which.push(i);
            }
        }
        let ready = sys::proc::poll(&fds, -1)?;
        // Children that exited: keep their status and drop our copy of their output pipe,
        // so the pipe ends once everything the child left behind has closed it too. Only
        // after a SIGCHLD (a byte in the pipe): asking every running child at each wake-up
        // would cost a wait system call per slot for every request and every result.
        let mut sink = [0u8; 64];
        let mut exited = false;
        while child_ready.read(&mut sink).is_ok_and(|n| n > 0) {
            exited = true;
        }
        if exited {
            for r in slots.iter_mut().flatten() {
                if r.status.is_none()
                    && let Ok(Some(st)) = r.child.try_wait()
                {
                    r.status = Some(st);
                    r.writer = None;
                }
            }
        }
        let base = if reading { 2 } else { 1 };
        if reading && ready.get(1).is_some_and(|r| r.read) {
            let mut buf = [0u8; 1024];
            match input.read(&mut buf) {
                Ok(0) => reading = false,
                Ok(n) => {
                    for &b in buf.get(..n).unwrap_or_default() {
                        if let Some(done) = take_byte(&mut req, b) {
                            command(d, qmailq, done, &mut slots, out)?;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => reading = false,
            }
        }
        for (k, &i) in which.iter().enumerate() {
            if !ready.get(base + k).is_some_and(|r| r.read) {
                continue;
            }
            let Some(r) = slots.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            let mut buf = [0u8; 4096];
            match r.output.read(&mut buf) {
                Ok(0) => {
                    let st = match r.status {
                        Some(st) => st,
                        None => r.child.wait()?,
                    };
                    let text = d.report(st, &r.text);
                    slots[i] = None;
                    reply(out, i, &text)?;
                }
                Ok(n) => {
                    r.text.extend_from_slice(buf.get(..n).unwrap_or_default());
                    let max = d.truncate();
                    let cap = if max > 100 { max } else { 1 << 20 };
                    if r.text.len() > cap {
                        let note = b"\nError report too long, sorry.\n";
                        r.text.truncate(cap.saturating_sub(note.len() + 3));
                        r.text.extend_from_slice(note);
                    }
                }
                Err(_) => {}
            }
        }
    }
}

/// Feeds one byte of the request stream; returns a complete request.
fn take_byte(req: &mut Request, b: u8) -> Option<Request> {
    let field = |f: &mut Vec<u8>, over: &mut bool| {
        if f.len() < FIELD_MAX {
            f.push(b);
        } else {
            *over = true;
        }
    };
    match req.stage {
        0 => {
            *req = Request {
                stage: 1,
                slot: usize::from(b),
                ..Request::default()
            };
        }
        1 if b == 0 => req.stage = 2,
        1 => field(&mut req.messid, &mut req.overflow),
        2 if b == 0 => req.stage = 3,
        2 => field(&mut req.sender, &mut req.overflow),
        _ if b == 0 => {
            req.stage = 0;
            return Some(std::mem::take(req));
        }
        _ => field(&mut req.recip, &mut req.overflow),
    }
    None
}

fn command(
    d: &mut dyn Deliver,
    qmailq: u32,
    r: Request,
    slots: &mut [Option<Running>],
    out: &mut File,
) -> io::Result<()> {
    let slot = r.slot;
    if r.overflow {
        return reply(out, slot, b"DSorry, the address is too long. (#5.1.3)\n");
    }
    match slots.get(slot) {
        None => return reply(out, slot, b"ZInternal error: delnum too big. (#4.3.5)\n"),
        Some(Some(_)) => return reply(out, slot, b"ZInternal error: delnum in use. (#4.3.5)\n"),
        Some(None) => {}
    }
    let mess = match open_message(&r.messid, qmailq) {
        Ok(f) => f,
        Err(text) => return reply(out, slot, text),
    };
    let Some(at) = r.recip.iter().rposition(|&c| c == b'@') else {
        return reply(
            out,
            slot,
            b"DSorry, address must include host name. (#5.1.3)\n",
        );
    };
    let (output, writer) = match io::pipe() {
        Ok((rd, wr)) => (
            File::from(std::os::fd::OwnedFd::from(rd)),
            File::from(std::os::fd::OwnedFd::from(wr)),
        ),
        Err(_) => return reply(out, slot, b"Zqmail-spawn unable to create pipe. (#4.3.0)\n"),
    };
    let child_out = match writer.try_clone() {
        Ok(w) => w,
        Err(_) => return reply(out, slot, b"Zqmail-spawn unable to create pipe. (#4.3.0)\n"),
    };
    match d.start(mess, child_out, &r.sender, &r.recip, at) {
        Ok(child) => {
            if let Some(s) = slots.get_mut(slot) {
                *s = Some(Running {
                    child,
                    output,
                    writer: Some(writer),
                    status: None,
                    text: Vec::new(),
                });
            }
            Ok(())
        }
        Err(text) => reply(out, slot, &text),
    }
}

/// The report for a delivery program that could not be started: temporary when the
/// error may go away (qmail's error_temp), else permanent.
pub fn unable_to_run(e: &io::Error, prog: &str) -> Vec<u8> {
    let letter = if crate::fail::is_temp(e) { 'Z' } else { 'D' };
    format!("{letter}Unable to run {prog}.\n").into_bytes()
}

/// A byte string as an argument for a program.
pub fn os(b: &[u8]) -> &std::ffi::OsStr {
    std::os::unix::ffi::OsStrExt::from_bytes(b)
}

/// True when a child was killed by a signal.
pub fn crashed(st: ExitStatus) -> bool {
    st.signal().is_some()
}
