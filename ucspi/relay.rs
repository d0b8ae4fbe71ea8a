//! The small filters of ucspi-tcp: recordio and fixcrio (a program runs in this process
//! with pipes on fds 0 and 1 while a forked copier relays the original fds 0 and 1 through
//! them), addcr and delcr (stdin to stdout).
//!
//! recordio logs every piece of data it relays to fd 2: `<pid> < text` going into the
//! program, `<pid> > text` coming out, one line per line fragment, ending in ` ` when the
//! fragment ended a line and in `+` otherwise, and `[EOF]` at end of input. Reads are at
//! most 256 bytes, as in 0.88, so the log shows the same pieces.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};

use sqmail::fail::Failure;
use sqmail::sys::{self, Forked, proc};

use crate::environ::Edits;
use crate::{errstr, exec, log};

/// The most bytes read at once by recordio and fixcrio.
pub const CHUNK: usize = 256;

/// What the copier does with the data it moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// recordio: log each piece to fd 2, tagged with the program's pid.
    Record(u32),
    /// fixcrio: insert CR before each LF that lacks one.
    FixCr,
}

/// recordio's log lines for one piece of data (1..=256 bytes) going `dir` ("<" or ">").
pub fn record(pid: u32, dir: &str, mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while !data.is_empty() {
        out.extend_from_slice(format!("{pid} {dir} ").as_bytes());
        match data.iter().position(|&c| c == b'\n') {
            Some(i) => {
                out.extend_from_slice(data.get(..i).unwrap_or_default());
                out.extend_from_slice(b" \n");
                data = data.get(i + 1..).unwrap_or_default();
            }
            None => {
                out.extend_from_slice(data);
                out.extend_from_slice(b"+\n");
                break;
            }
        }
    }
    out
}

/// fixcrio's rewrite of one piece: CR before each LF not preceded by CR; `cr` carries
/// whether the previous piece ended in CR.
pub fn fix_cr(data: &[u8], cr: &mut bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 2);
    for &c in data {
        if c == b'\n' && !*cr {
            out.push(b'\r');
        }
        out.push(c);
        *cr = c == b'\r';
    }
    out
}

/// One direction of the copier.
struct Lane {
    /// Bytes waiting to be written.
    buf: Vec<u8>,
    pos: usize,
    /// 0 reading, 1 writing, -1 done.
    state: i8,
    cr: bool,
}

impl Lane {
    fn new() -> Lane {
        Lane {
            buf: Vec::new(),
            pos: 0,
            state: 0,
            cr: false,
        }
    }

    /// Takes a piece just read.
    fn take(&mut self, mode: Mode, dir: &str, data: &[u8]) {
        self.buf = match mode {
            Mode::Record(pid) => {
                log::line(&record(pid, dir, data));
                data.to_vec()
            }
            Mode::FixCr => fix_cr(data, &mut self.cr),
        };
        self.pos = 0;
        self.state = 1;
    }

    /// Writes what it can; `false` on a write error.
    fn flush(&mut self, to: &mut impl Write) -> bool {
        match to.write(self.buf.get(self.pos..).unwrap_or_default()) {
            Ok(n) => {
                self.pos += n;
                if self.pos >= self.buf.len() {
                    self.state = 0;
                }
                true
            }
            Err(e) => e.kind() == io::ErrorKind::Interrupted,
        }
    }
}

fn read_piece(from: &mut impl Read, buf: &mut [u8]) -> usize {
    loop {
        match from.read(buf) {
            Ok(n) => return n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return 0,
        }
    }
}

/// The copier: fd 0 into `left` (the program's input), `right` (its output) out to fd 1,
/// until the program's output ends or a write fails.
pub fn copy(mode: Mode, left: File, mut right: File) {
    let (Some(mut stdin), Some(mut stdout)) = (sys::inherited_fd(0), sys::inherited_fd(1)) else {
        return;
    };
    let mut left = Some(left);
    let (mut l, mut r) = (Lane::new(), Lane::new());
    let mut buf = [0u8; CHUNK];
    loop {
        let want = |read| proc::Ready { read, write: !read };
        let mut fds = Vec::new();
        let (ls, rs) = (l.state, r.state);
        if ls == 0 {
            fds.push((stdin.as_raw_fd(), want(true)));
        }
        if let (1, Some(lf)) = (ls, &left) {
            fds.push((lf.as_raw_fd(), want(false)));
        }
        if rs == 0 {
            fds.push((right.as_raw_fd(), want(true)));
        }
        if rs == 1 {
            fds.push((stdout.as_raw_fd(), want(false)));
        }
        let Ok(ready) = proc::poll(&fds, -1) else {
            return;
        };
        let mut ready = ready.into_iter().map(|x| x.read || x.write);
        let mut next = || ready.next().unwrap_or(false);
        if ls == 0 && next() {
            let n = read_piece(&mut stdin, &mut buf);
            if n == 0 {
                l.state = -1;
                left = None;
                if let Mode::Record(pid) = mode {
                    log::line(format!("{pid} < [EOF]\n").as_bytes());
                }
            } else {
                l.take(mode, "<", buf.get(..n).unwrap_or_default());
            }
        }
        if ls == 1
            && let Some(lf) = left.as_mut()
            && next()
            && !l.flush(lf)
        {
            return;
        }
        if rs == 0 && next() {
            let n = read_piece(&mut right, &mut buf);
            if n == 0 {
                if let Mode::Record(pid) = mode {
                    log::line(format!("{pid} > [EOF]\n").as_bytes());
                }
                return;
            }
            r.take(mode, ">", buf.get(..n).unwrap_or_default());
        }
        if rs == 1 && next() && !r.flush(&mut stdout) {
            return;
        }
    }
}

/// recordio and fixcrio: run `args` (program and arguments) with the copier in front.
///
/// # Errors
/// Usage (100) or a failure to set up or run the program (111).
pub fn wrap(
    prog: &str,
    mode_of: impl FnOnce(u32) -> Mode,
    args: &[OsString],
) -> Result<(), Failure> {
    if args.is_empty() {
        return Err(log::usage(&format!("{prog} program [ arg ... ]")));
    }
    let mode = mode_of(std::process::id());
    let fatal = |what: &str, e: &io::Error| log::fatal(format!("{what}{}", errstr::text(e)));
    let (in_r, in_w) = io::pipe().map_err(|e| fatal("unable to create pipe: ", &e))?;
    let (out_r, out_w) = io::pipe().map_err(|e| fatal("unable to create pipe: ", &e))?;
    match sys::fork().map_err(|e| fatal("unable to fork: ", &e))? {
        Forked::Child => {
            drop(in_r);
            drop(out_w);
            copy(
                mode,
                File::from(OwnedFd::from(in_w)),
                File::from(OwnedFd::from(out_r)),
            );
            sqmail::prog::exit(0)
        }
        Forked::Parent(_) => {}
    }
    drop(in_w);
    drop(out_r);
    let moved = sys::fd_move(in_r.into(), 0)
        .and_then(|a| sys::fd_move(out_w.into(), 1).map(|b| (a, b)))
        .map_err(|e| fatal("unable to move descriptors: ", &e))?;
    std::mem::forget(moved);
    let e = exec::run(args, &Edits::new());
    let name = args
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    Err(fatal(&format!("unable to run {name}: "), &e))
}

/// addcr (`del` false: CR before every LF) and delcr (`del` true: drop a CR that comes
/// right before LF; other CRs, a final one included, stay): stdin to stdout.
///
/// # Errors
/// A read or write error (no message, as in 0.88).
pub fn filter(del: bool) -> Result<(), Failure> {
    let (Some(mut input), Some(output)) = (sys::inherited_fd(0), sys::inherited_fd(1)) else {
        return Err(log::silent());
    };
    let mut out = io::BufWriter::with_capacity(8192, output);
    let mut buf = vec![0u8; 8192];
    let mut cr = false;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(log::silent()),
        };
        let piece = buf.get(..n).unwrap_or_default();
        let mut res = Vec::with_capacity(n * 2);
        for &c in piece {
            if del {
                if cr {
                    if c != b'\n' {
                        res.push(b'\r');
                        if c == b'\r' {
                            continue;
                        }
                    }
                    cr = false;
                    res.push(c);
                } else if c == b'\r' {
                    cr = true;
                } else {
                    res.push(c);
                }
            } else {
                if c == b'\n' {
                    res.push(b'\r');
                }
                res.push(c);
            }
        }
        out.write_all(&res).map_err(|_| log::silent())?;
    }
    if cr {
        out.write_all(b"\r").map_err(|_| log::silent())?;
    }
    out.flush().map_err(|_| log::silent())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_lines() {
        assert_eq!(record(7, "<", b"ab\ncd"), b"7 < ab \n7 < cd+\n");
        assert_eq!(record(7, ">", b"\n"), b"7 >  \n");
        assert_eq!(record(7, ">", b"x\n\n"), b"7 > x \n7 >  \n");
    }

    #[test]
    fn fixcr_keeps_state_across_pieces() {
        let mut cr = false;
        assert_eq!(fix_cr(b"a\nb\r", &mut cr), b"a\r\nb\r");
        assert_eq!(fix_cr(b"\nc\r\n", &mut cr), b"\nc\r\n");
    }
}
