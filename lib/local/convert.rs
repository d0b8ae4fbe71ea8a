//! maildir2mbox: moves the messages of `$MAILDIR` into the mbox `$MAIL`, through the
//! temporary file `$MAILTMP` (on the same file system), so that nothing is lost if it stops
//! half-way: the new mbox replaces the old one by rename before any message is removed.
//!
//! Each message gets a `From ` line made from its `Return-Path` line (`From XXX` when it
//! has none) and the time it arrived, and `>From ` quoting. A last line without a newline
//! gets one (qmail's maildir2mbox dropped such a line).

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::helpers::Done;
use super::maildir;
use super::mbox::Quoter;
use crate::date::{self, Utc};
use crate::env;
use crate::prog;
use crate::sys;

/// The most bytes of a first line read to find the `Return-Path`.
pub const FIRST_LINE_MAX: usize = 4096;

/// Changes to `$MAILDIR`; the error is qmail's text.
pub fn maildir_chdir() -> Result<(), String> {
    let dir = env::var("MAILDIR").ok_or("MAILDIR not set")?;
    std::env::set_current_dir(OsStr::from_bytes(&dir)).map_err(|e| {
        format!(
            "unable to chdir to {}: {}",
            String::from_utf8_lossy(&dir),
            sys::strerror(&e)
        )
    })
}

/// The `From ` line for a message whose first line is `first`, delivered at `mtime`.
pub fn from_line(first: &[u8], mtime: i64) -> Vec<u8> {
    let mut l = b"From XXX ".to_vec();
    if let Some(rest) = first.strip_prefix(b"Return-Path: <")
        && first.ends_with(b"\n")
    {
        if rest.first() == Some(&b'>') {
            l = b"From MAILER-DAEMON ".to_vec();
        } else {
            // qmail drops the last two bytes, normally ">\n".
            let addr = rest.get(..rest.len().saturating_sub(2)).unwrap_or_default();
            l = b"From ".to_vec();
            l.extend(
                addr.iter()
                    .map(|&c| if c == b' ' || c == b'\t' { b'-' } else { c }),
            );
            l.push(b' ');
        }
    }
    l.extend_from_slice(Utc::from_unix(mtime).ctime().as_bytes());
    l
}

struct Fatal(String);

fn die(what: &str, name: &[u8], e: &io::Error) -> Fatal {
    Fatal(format!(
        "{what}{}: {}",
        String::from_utf8_lossy(name),
        sys::strerror(e)
    ))
}

fn path(b: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(b))
}

/// Appends one maildir message, `From ` line and quoting included.
fn append_message(out: &mut impl Write, m: &maildir::Found, tmp: &[u8]) -> Result<(), Fatal> {
    let mut md = b"$MAILDIR/".to_vec();
    md.extend_from_slice(&m.path);
    let rd = |e: io::Error| die("unable to read ", &md, &e);
    let wr = |e: io::Error| die("unable to write to ", tmp, &e);
    let f = File::open(path(&m.path)).map_err(rd)?;
    let mut r = BufReader::with_capacity(64 * 1024, f);
    let mut first = Vec::new();
    // Everything read here is copied below, so a long first line loses nothing.
    let limit = u64::try_from(FIRST_LINE_MAX).unwrap_or(u64::MAX);
    (&mut r)
        .take(limit)
        .read_until(b'\n', &mut first)
        .map_err(rd)?;
    out.write_all(&from_line(&first, m.mtime)).map_err(wr)?;
    let mut q = Quoter::new();
    q.feed(&first, out).map_err(wr)?;
    loop {
        let buf = r.fill_buf().map_err(rd)?;
        if buf.is_empty() {
            break;
        }
        q.feed(buf, out).map_err(wr)?;
        let n = buf.len();
        r.consume(n);
    }
    q.finish(out).map_err(wr)?;
    out.write_all(b"\n").map_err(wr)
}

fn run() -> Result<(), Fatal> {
    sys::umask(0o077);
    let mbox = env::var("MAIL").ok_or(Fatal("MAIL not set".into()))?;
    let tmp = env::var("MAILTMP").ok_or(Fatal("MAILTMP not set".into()))?;
    maildir_chdir().map_err(Fatal)?;
    let now = date::now();
    maildir::clean_tmp(now);
    let found = maildir::scan(true, true, now).map_err(Fatal)?;
    if found.is_empty() {
        return Ok(());
    }
    let lock = sys::open_append(path(&mbox)).map_err(|e| die("unable to lock ", &mbox, &e))?;
    sys::lock_exclusive(&lock).map_err(|e| die("unable to lock ", &mbox, &e))?;
    let mut old = File::open(path(&mbox)).map_err(|e| die("unable to read ", &mbox, &e))?;
    let new = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(path(&tmp))
        .map_err(|e| die("unable to create ", &tmp, &e))?;
    let wr = |e: io::Error| die("unable to write to ", &tmp, &e);
    let mut out = BufWriter::with_capacity(64 * 1024, &new);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match old.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(die("unable to read ", &mbox, &e)),
        };
        out.write_all(buf.get(..n).unwrap_or_default())
            .map_err(wr)?;
    }
    for m in &found {
        append_message(&mut out, m, &tmp)?;
    }
    out.flush().map_err(wr)?;
    drop(out);
    new.sync_all().map_err(wr)?;
    drop(new);
    fs::rename(path(&tmp), path(&mbox)).map_err(|e| {
        Fatal(format!(
            "unable to move {} to {}: {}",
            String::from_utf8_lossy(&tmp),
            String::from_utf8_lossy(&mbox),
            sys::strerror(&e)
        ))
    })?;
    for m in &found {
        if let Err(e) = fs::remove_file(path(&m.path)) {
            prog::warn(
                "maildir2mbox",
                &format!(
                    "$MAILDIR/{} will be delivered twice; unable to unlink: {}",
                    String::from_utf8_lossy(&m.path),
                    sys::strerror(&e)
                ),
            );
        }
    }
    Ok(())
}

/// maildir2mbox: 0 when done (or nothing to do), 111 with qmail's text otherwise.
pub fn maildir2mbox() -> Done {
    match run() {
        Ok(()) => Done::quiet(0),
        Err(Fatal(t)) => Done::say(111, format!("maildir2mbox: fatal: {t}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_lines_come_from_return_path() {
        // 827034880 is Sun Mar 17 03:54:40 1996 UTC.
        for (first, want) in [
            (
                &b"Return-Path: <a@b>\n"[..],
                "From a@b Sun Mar 17 03:54:40 1996\n",
            ),
            (
                b"Return-Path: <>\n",
                "From MAILER-DAEMON Sun Mar 17 03:54:40 1996\n",
            ),
            (
                b"Return-Path: <a b\tc@d>\n",
                "From a-b-c@d Sun Mar 17 03:54:40 1996\n",
            ),
            (b"Return-Path: <\n", "From  Sun Mar 17 03:54:40 1996\n"),
            (b"Return-Path: <a@b>", "From XXX Sun Mar 17 03:54:40 1996\n"),
            (b"Received: x\n", "From XXX Sun Mar 17 03:54:40 1996\n"),
            (b"", "From XXX Sun Mar 17 03:54:40 1996\n"),
        ] {
            assert_eq!(
                String::from_utf8(from_line(first, 827_034_880)).unwrap(),
                want,
                "{:?}",
                String::from_utf8_lossy(first)
            );
        }
    }
}
