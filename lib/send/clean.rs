//! qmail-clean: removes queue files when qmail-send or qmail-todo asks, as the queue's
//! owner. Requests are `foop/<id>\0` (the message is done: remove `intd` and `mess`) and
//! `todo/<id>\0` (preprocessing is done: remove `intd` and `todo`); each gets one byte back:
//! `+` done, `!` trouble, `x` malformed. Every 30 requests, pid files older than 36 hours
//! (left by a qmail-queue that died) are removed.

use std::io::{self, BufRead, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::queue::Layout;

/// Files in the queue untouched this long are garbage (qmail's OSSIFIED, 36 hours).
pub const OSSIFIED_SECS: u64 = 129_600;
/// The longest request accepted.
const REQUEST_MAX: usize = 100;

/// What one request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Remove `intd` and `mess` of a finished message.
    Message(u64),
    /// Remove `intd` and `todo` of a preprocessed message.
    Todo(u64),
}

/// Parses a request without its NUL.
pub fn parse(line: &[u8]) -> Option<Request> {
    if line.len() < 6 || line.len() > REQUEST_MAX {
        return None;
    }
    let (kind, num) = line.split_at(5);
    if num.is_empty() || !num.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let id: u64 = std::str::from_utf8(num).ok()?.parse().ok()?;
    match kind {
        b"foop/" => Some(Request::Message(id)),
        b"todo/" => Some(Request::Todo(id)),
        _ => None,
    }
}

fn unlink(p: &Path) -> io::Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Carries out a request in the queue directory (the current directory).
pub fn perform(layout: &Layout, r: Request) -> io::Result<()> {
    match r {
        Request::Message(id) => {
            unlink(&layout.rel("intd", id))?;
            unlink(&layout.rel("mess", id))
        }
        Request::Todo(id) => {
            unlink(&layout.rel("intd", id))?;
            // qmail-todo syncs the file system after a batch of these removals, before
            // qmail-send hears of the messages.
            unlink(&layout.rel("todo", id))
        }
    }
}

/// Removes pid files older than [`OSSIFIED_SECS`].
pub fn clean_pids() {
    let Ok(dir) = std::fs::read_dir("pid") else {
        return;
    };
    let now = SystemTime::now();
    for e in dir.flatten() {
        let Ok(m) = e.metadata() else { continue };
        let old = m
            .accessed()
            .ok()
            .and_then(|a| now.duration_since(a).ok())
            .is_some_and(|age| age > Duration::from_secs(OSSIFIED_SECS));
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The request loop: reads from `input` until end of file.
pub fn serve(layout: &Layout, input: impl BufRead, mut output: impl Write) -> io::Result<()> {
    let mut input = input.take(0);
    let mut line = Vec::with_capacity(REQUEST_MAX + 1);
    let mut countdown = 0;
    loop {
        if countdown == 0 {
            clean_pids();
            countdown = 30;
        }
        countdown -= 1;
        line.clear();
        input.set_limit(REQUEST_MAX as u64 + 1);
        if input.read_until(0, &mut line)? == 0 {
            return Ok(());
        }
        let answer = match line.last() {
            Some(0) => match parse(line.get(..line.len() - 1).unwrap_or_default()) {
                Some(r) => match perform(layout, r) {
                    Ok(()) => b'+',
                    Err(_) => b'!',
                },
                None => b'x',
            },
            _ => {
                // Too long: skip to the end of this request.
                let mut rest = Vec::new();
                input.set_limit(u64::MAX);
                input.read_until(0, &mut rest)?;
                b'x'
            }
        };
        output.write_all(&[answer])?;
        output.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_strictly() {
        assert_eq!(parse(b"foop/123"), Some(Request::Message(123)));
        assert_eq!(parse(b"todo/9"), Some(Request::Todo(9)));
        assert_eq!(parse(b"todo/"), None);
        assert_eq!(parse(b"todo/1x"), None);
        assert_eq!(parse(b"mess/1"), None);
        assert_eq!(parse(&[b"foop/".as_slice(), &[b'1'; 96]].concat()), None);
    }
}
