//! Reading the queue for people: qmail-qread's listing and qmail-qstat's counts.
//!
//! qmail-qread walks `info/0` … `info/<split-1>` in directory order. For each message it
//! prints one line, `<date> GMT  #<id>  <size>  <<sender>> ` (plus ` bouncing` when
//! `bounce/<id>` exists), the date being the time `info/` was written, then one line per
//! recipient from `local/` and `remote/`: `\tlocal\t<addr>` or `\tremote\t<addr>`, led by
//! `  done` once delivered. Unprintable bytes are shown as `_`. Problems with one message
//! are reported as `warning: trouble with #<id>: <error>` and the walk goes on; a directory
//! that cannot be read ends it with `fatal: …` and exit code 111. All of this goes to
//! standard output, as qmail-qread writes it.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::Layout;
use crate::date::Utc;
use crate::fail::{Failure, Kind, Result};
use crate::sys;

/// The longest NUL-terminated record read from `info/`, `local/` or `remote/`. qmail-queue
/// writes addresses shorter than 1003 bytes.
pub const RECORD_MAX_BYTES: usize = 64 * 1024;

/// Reads one NUL-terminated record, terminator included; `Ok(false)` when the input ends
/// before a terminator (the partial record is left in `rec`).
fn record(r: &mut impl BufRead, rec: &mut Vec<u8>) -> io::Result<bool> {
    rec.clear();
    let limit = u64::try_from(RECORD_MAX_BYTES).unwrap_or(u64::MAX);
    Read::take(&mut *r, limit).read_until(0, rec)?;
    if rec.last() == Some(&0) {
        return Ok(true);
    }
    if rec.len() >= RECORD_MAX_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "record too long",
        ));
    }
    Ok(false)
}

/// qmail-qread's `out`: printable ASCII kept, everything else `_`.
fn printable(out: &mut Vec<u8>, s: &[u8]) {
    out.extend(
        s.iter()
            .map(|&c| if (32..=126).contains(&c) { c } else { b'_' }),
    );
}

/// A queued message's summary line, without its newline.
pub fn summary(queued: i64, id: u64, size: u64, sender: &[u8], bouncing: bool) -> Vec<u8> {
    let date = Utc::from_unix(queued).rfc822();
    let date = date.strip_suffix(" -0000\n").unwrap_or(&date);
    let mut raw = format!("{date} GMT  #{id}  {size}  <").into_bytes();
    raw.extend_from_slice(sender);
    raw.extend_from_slice(b"> ");
    if bouncing {
        raw.extend_from_slice(b" bouncing");
    }
    let mut out = Vec::with_capacity(raw.len());
    printable(&mut out, &raw);
    out
}

/// One recipient line, newline included: `record` is a `local/` or `remote/` record
/// without its NUL; only `T` (to do) and `D` (done) records make a line.
pub fn recipient(remote: bool, record: &[u8]) -> Option<Vec<u8>> {
    let (&letter, addr) = record.split_first()?;
    let mut out = Vec::new();
    match letter {
        b'D' => out.extend_from_slice(b"  done"),
        b'T' => {}
        _ => return None,
    }
    out.extend_from_slice(if remote { b"\tremote\t" } else { b"\tlocal\t" });
    let end = addr.iter().position(|&c| c == 0).unwrap_or(addr.len());
    printable(&mut out, addr.get(..end).unwrap_or_default());
    out.push(b'\n');
    Some(out)
}

fn trouble(out: &mut Vec<u8>, id: u64, e: &io::Error) {
    out.extend_from_slice(
        format!("warning: trouble with #{id}: {}\n", sys::strerror(e)).as_bytes(),
    );
}

/// The lines for message `id`, as qmail-qread prints them, warnings included.
pub fn message(layout: &Layout, id: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let size = match std::fs::metadata(layout.path("mess", id)) {
        Ok(m) => m.len(),
        Err(e) => {
            trouble(&mut out, id, &e);
            return out;
        }
    };
    let bouncing = std::fs::metadata(layout.dir.join(format!("bounce/{id}"))).is_ok();
    let info = File::open(layout.path("info", id)).and_then(|f| {
        let mut r = BufReader::new(f);
        let mut rec = Vec::new();
        record(&mut r, &mut rec)?;
        let mtime = r.get_ref().metadata()?.mtime();
        Ok((rec, mtime))
    });
    let (rec, mtime) = match info {
        Ok(x) => x,
        Err(e) => {
            trouble(&mut out, id, &e);
            return out;
        }
    };
    let sender = rec.get(1..).unwrap_or_default();
    let sender = sender.split(|&c| c == 0).next().unwrap_or_default();
    out.extend_from_slice(&summary(mtime, id, size, sender, bouncing));
    out.push(b'\n');
    for (dir, remote) in [("local", false), ("remote", true)] {
        let f = match File::open(layout.path(dir, id)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                trouble(&mut out, id, &e);
                continue;
            }
        };
        let mut r = BufReader::new(f);
        let mut rec = Vec::new();
        loop {
            match record(&mut r, &mut rec) {
                Ok(true) => {
                    let body = rec.get(..rec.len().saturating_sub(1)).unwrap_or_default();
                    if let Some(line) = recipient(remote, body) {
                        out.extend_from_slice(&line);
                    }
                }
                Ok(false) => break,
                Err(e) => {
                    trouble(&mut out, id, &e);
                    break;
                }
            }
        }
    }
    out
}

/// The message number a directory entry names: digits only.
fn id_of(name: &std::ffi::OsStr) -> Option<u64> {
    let b = sys::bytes(name);
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    crate::control::leading_number(b)
}

/// qmail-qread: writes the listing to `out`; returns the exit code (0, or 111 after a fatal
/// line). Write errors are returned as they are.
pub fn qread(layout: &Layout, out: &mut impl Write) -> io::Result<u8> {
    if let Err(e) = std::fs::read_dir(&layout.dir) {
        out.write_all(format!("fatal: unable to chdir: {}\n", sys::strerror(&e)).as_bytes())?;
        return Ok(111);
    }
    for n in 0..layout.split {
        let name = format!("info/{n}");
        let dir = match std::fs::read_dir(layout.dir.join(&name)) {
            Ok(d) => d,
            Err(e) => {
                let line = format!("fatal: unable to opendir {name}: {}\n", sys::strerror(&e));
                out.write_all(line.as_bytes())?;
                return Ok(111);
            }
        };
        for entry in dir {
            let Ok(entry) = entry else { break };
            if let Some(id) = id_of(&entry.file_name()) {
                out.write_all(&message(layout, id))?;
            }
        }
    }
    Ok(0)
}

/// The files in a queue directory: the entries of its subdirectories, plus any files kept
/// directly in it (a queue whose `todo/` is not split).
pub fn count(dir: &Path) -> Result<u64> {
    let fail =
        |p: &Path, e| Failure::temp_io(Kind::Queue, format!("unable to read {}", p.display()), e);
    let mut n: u64 = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| fail(dir, e))? {
        let entry = entry.map_err(|e| fail(dir, e))?;
        let is_dir = entry.file_type().map_err(|e| fail(dir, e))?.is_dir();
        if !is_dir {
            n = n.saturating_add(1);
            continue;
        }
        let sub = entry.path();
        for e in std::fs::read_dir(&sub).map_err(|e| fail(&sub, e))? {
            e.map_err(|e| fail(&sub, e))?;
            n = n.saturating_add(1);
        }
    }
    Ok(n)
}

/// qmail-qstat's report: messages in `mess/`, and those still in `todo/`.
pub fn qstat(layout: &Layout) -> Result<Vec<u8>> {
    let mess = count(&layout.dir.join("mess"))?;
    let todo = count(&layout.dir.join("todo"))?;
    Ok(
        format!("messages in queue: {mess}\nmessages in queue but not yet preprocessed: {todo}\n")
            .into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// name, queued, id, size, sender, bouncing, expected line
    type SummaryCase<'a> = (&'a str, i64, u64, u64, &'a [u8], bool, &'a [u8]);
    /// remote, record, expected line
    type RecipientCase<'a> = (bool, &'a [u8], Option<&'a [u8]>);

    #[test]
    fn summary_lines_match_qmail_qread() {
        let cases: &[SummaryCase<'_>] = &[
            (
                "plain",
                812_090_814,
                42,
                312,
                b"joe@example.org",
                false,
                b"26 Sep 1995 04:46:54 GMT  #42  312  <joe@example.org> ",
            ),
            (
                "bounce",
                0,
                7,
                0,
                b"",
                true,
                b"1 Jan 1970 00:00:00 GMT  #7  0  <>  bouncing",
            ),
            (
                "unprintable",
                951_782_400,
                1,
                2,
                b"a\x01b\xffc\td",
                false,
                b"29 Feb 2000 00:00:00 GMT  #1  2  <a_b_c_d> ",
            ),
        ];
        for (name, t, id, size, sender, bouncing, want) in cases {
            assert_eq!(summary(*t, *id, *size, sender, *bouncing), *want, "{name}");
        }
    }

    #[test]
    fn recipient_lines_match_qmail_qread() {
        let cases: &[RecipientCase<'_>] = &[
            (
                false,
                b"Tjoe@example.org",
                Some(b"\tlocal\tjoe@example.org\n"),
            ),
            (
                true,
                b"Dbob@example.net",
                Some(b"  done\tremote\tbob@example.net\n"),
            ),
            (true, b"T", Some(b"\tremote\t\n")),
            (false, b"Ta\nb", Some(b"\tlocal\ta_b\n")),
            (false, b"Fsender", None),
            (false, b"", None),
        ];
        for (remote, rec, want) in cases {
            assert_eq!(recipient(*remote, rec).as_deref(), *want, "{rec:?}");
        }
    }

    fn queue() -> (PathBuf, Layout) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let home = std::env::temp_dir().join(format!("sqmail-scan-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(home.join("control")).unwrap();
        std::fs::write(home.join("control/conf-split"), b"3\n").unwrap();
        for d in super::super::SPLIT_DIRS {
            for i in 0..3 {
                std::fs::create_dir_all(home.join(format!("queue/{d}/{i}"))).unwrap();
            }
        }
        std::fs::create_dir_all(home.join("queue/bounce")).unwrap();
        let l = Layout::open(&home).unwrap();
        (home, l)
    }

    #[test]
    fn a_message_is_listed_with_its_recipients() {
        let (home, l) = queue();
        std::fs::write(l.path("mess", 5), b"0123456789").unwrap();
        std::fs::write(l.path("info", 5), b"Fa@b\0").unwrap();
        std::fs::write(l.path("local", 5), b"Tl1@x\0Dl2@x\0").unwrap();
        std::fs::write(l.path("remote", 5), b"Tr1@y\0Xjunk\0Tpartial").unwrap();
        std::fs::write(l.dir.join("bounce/5"), b"").unwrap();
        let mtime = std::fs::metadata(l.path("info", 5)).unwrap().mtime();
        let mut want = summary(mtime, 5, 10, b"a@b", true);
        want.extend_from_slice(b"\n\tlocal\tl1@x\n  done\tlocal\tl2@x\n\tremote\tr1@y\n");
        assert_eq!(message(&l, 5), want);
        let mut out = Vec::new();
        assert_eq!(qread(&l, &mut out).unwrap(), 0);
        assert_eq!(out, want);
        assert_eq!(
            qstat(&l).unwrap(),
            b"messages in queue: 1\nmessages in queue but not yet preprocessed: 0\n"
        );
        std::fs::remove_dir_all(home).unwrap();
    }

    #[test]
    fn records_are_bounded() {
        let (home, l) = queue();
        std::fs::write(l.path("mess", 3), b"x").unwrap();
        std::fs::write(l.path("info", 3), b"F\0").unwrap();
        let fits = [&b"T"[..], &vec![b'a'; RECORD_MAX_BYTES - 2], b"\0"].concat();
        std::fs::write(l.path("local", 3), &fits).unwrap();
        let out = message(&l, 3);
        assert!(out.ends_with(&[&b"\tlocal\t"[..], &fits[1..fits.len() - 1], b"\n"].concat()));
        let long = [&b"T"[..], &vec![b'a'; RECORD_MAX_BYTES - 1], b"\0"].concat();
        std::fs::write(l.path("local", 3), &long).unwrap();
        let out = message(&l, 3);
        assert!(
            out.ends_with(b"> \nwarning: trouble with #3: record too long\n"),
            "{out:?}"
        );
        std::fs::remove_dir_all(home).unwrap();
    }

    #[test]
    fn trouble_is_a_warning_and_missing_dirs_are_fatal() {
        let (home, l) = queue();
        std::fs::write(l.path("info", 4), b"Fa@b\0").unwrap();
        std::fs::write(l.dir.join("info/1/notanumber"), b"").unwrap();
        assert_eq!(
            message(&l, 4),
            b"warning: trouble with #4: No such file or directory\n"
        );
        std::fs::remove_dir(l.dir.join("info/2")).unwrap();
        let mut out = Vec::new();
        assert_eq!(qread(&l, &mut out).unwrap(), 111);
        assert_eq!(
            out,
            b"warning: trouble with #4: No such file or directory\n\
              fatal: unable to opendir info/2: No such file or directory\n"
        );
        std::fs::remove_dir_all(home).unwrap();
    }
}
