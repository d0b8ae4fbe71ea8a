//! Maildirs (maildir(5)): safe delivery through `tmp/` into `new/`, and the reading side
//! used by maildir2mbox and maildirwatch (cleaning old `tmp/` files, listing messages in
//! the order they arrived).
//!
//! A delivered file is `Return-Path:`, `Delivered-To:` and the message, byte for byte. Its
//! name is `<seconds>.M<microseconds>P<pid>Q<count>.<host>`, with `/` and `:` in the host
//! written as `\057` and `\072`; readers must not parse names.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::fail::{self, Failure, Kind};
use crate::sys;

/// How long one maildir delivery may take.
pub const DEADLINE_SECS: u32 = 86_400;
/// Files in `tmp/` not accessed for this long are removed by readers (36 hours).
pub const TMP_STALE_SECS: i64 = 129_600;
/// How much of the host name goes into a file name.
pub const HOST_MAX: usize = 64;

static DELIVERIES: AtomicU64 = AtomicU64::new(0);

/// The host part of file names: `/` and `:` escaped as `\057` and `\072`.
pub fn host_part(host: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(host.len());
    for &c in host.iter().take(HOST_MAX) {
        match c {
            b'/' => out.extend_from_slice(b"\\057"),
            b':' => out.extend_from_slice(b"\\072"),
            c => out.push(c),
        }
    }
    out
}

/// A new unique file name for this process.
pub fn unique_name(host: &[u8]) -> Vec<u8> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = DELIVERIES.fetch_add(1, Ordering::Relaxed);
    let mut name = format!(
        "{}.M{}P{}Q{}.",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        n
    )
    .into_bytes();
    name.extend_from_slice(&host_part(host));
    name
}

fn temp(text: &str) -> Failure {
    Failure::temp(Kind::Write, text)
}

const TROUBLE: &str = "Temporary error on maildir delivery. (#4.3.0)";

/// Delivers the message on `message` into the maildir `dir` (relative names are taken
/// from `home`, the current directory, which is restored afterwards). Every failure is
/// temporary, with qmail-local's texts.
pub fn deliver(dir: &[u8], message: &File, lines: [&[u8]; 2], home: &Path) -> Result<(), Failure> {
    let path = Path::new(std::ffi::OsStr::from_bytes(dir));
    if let Err(e) = std::env::set_current_dir(path) {
        return Err(temp(if fail::is_temp(&e) {
            TROUBLE
        } else {
            "Unable to chdir to maildir. (#4.2.1)"
        }));
    }
    sys::alarm_say(
        DEADLINE_SECS,
        111,
        b"Timeout on maildir delivery. (#4.3.0)\n",
    );
    let host = sys::hostname().unwrap_or_default();
    let r = deliver_here(message, lines, &host);
    sys::alarm_cancel();
    std::env::set_current_dir(home).map_err(|e| {
        temp(&format!(
            "Unable to switch to {}: {}. (#4.3.0)",
            home.display(),
            sys::strerror(&e)
        ))
    })?;
    r
}

fn create_tmp(host: &[u8]) -> Result<(File, Vec<u8>), Failure> {
    for _ in 0..3 {
        let name = unique_name(host);
        let tmp = PathBuf::from("tmp").join(std::ffi::OsStr::from_bytes(&name));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)
        {
            Ok(f) => return Ok((f, name)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(_) => return Err(temp(TROUBLE)),
        }
    }
    Err(temp(TROUBLE))
}

fn deliver_here(mut message: &File, lines: [&[u8]; 2], host: &[u8]) -> Result<(), Failure> {
    let (mut f, name) = create_tmp(host)?;
    let tmp = PathBuf::from("tmp").join(std::ffi::OsStr::from_bytes(&name));
    let new = PathBuf::from("new").join(std::ffi::OsStr::from_bytes(&name));
    let fail = |text: &str| {
        let _ = fs::remove_file(&tmp);
        temp(text)
    };
    for l in lines {
        f.write_all(l).map_err(|_| fail(TROUBLE))?;
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match message.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(fail("Unable to read message. (#4.3.0)")),
        };
        f.write_all(buf.get(..n).unwrap_or_default())
            .map_err(|_| fail(TROUBLE))?;
    }
    f.sync_all().map_err(|_| fail(TROUBLE))?;
    drop(f);
    fs::hard_link(&tmp, &new).map_err(|_| fail(TROUBLE))?;
    // The link is durable only once new/ itself is on disk.
    sys::fsync_dir(Path::new("new")).map_err(|_| fail(TROUBLE))?;
    let _ = fs::remove_file(&tmp);
    Ok(())
}

/// Removes files in `tmp/` (of the current directory) not accessed for
/// [`TMP_STALE_SECS`], as qmail's maildir readers do.
pub fn clean_tmp(now: i64) {
    let Ok(dir) = fs::read_dir("tmp") else {
        return;
    };
    for e in dir.flatten() {
        if e.file_name().as_bytes().first() == Some(&b'.') {
            continue;
        }
        let p = e.path();
        if let Ok(m) = fs::metadata(&p)
            && now > m.atime().saturating_add(TMP_STALE_SECS)
        {
            let _ = fs::remove_file(&p);
        }
    }
}

/// A message found in a maildir: its path relative to the maildir and its mtime.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Found {
    /// Modification time, the order of arrival.
    pub mtime: i64,
    /// `new/<name>` or `cur/<name>`.
    pub path: Vec<u8>,
}

/// Lists the messages of the current directory's `new/` and/or `cur/`, oldest first,
/// skipping names that start with `.` and files modified at or after `now` (they may
/// still be arriving in the same second). The error is qmail's text.
pub fn scan(new: bool, cur: bool, now: i64) -> Result<Vec<Found>, String> {
    let mut out = Vec::new();
    for (want, sub) in [(new, "new"), (cur, "cur")] {
        if !want {
            continue;
        }
        let dir = fs::read_dir(sub)
            .map_err(|e| format!("unable to scan $MAILDIR/{sub}: {}", sys::strerror(&e)))?;
        for e in dir {
            let e =
                e.map_err(|e| format!("unable to read $MAILDIR/{sub}: {}", sys::strerror(&e)))?;
            let name = e.file_name().into_vec();
            if name.first() == Some(&b'.') {
                continue;
            }
            let mut path = format!("{sub}/").into_bytes();
            path.extend_from_slice(&name);
            if let Ok(m) = fs::metadata(std::ffi::OsStr::from_bytes(&path))
                && m.mtime() < now
            {
                out.push(Found {
                    mtime: m.mtime(),
                    path,
                });
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_part_escapes_slash_and_colon() {
        for (host, want) in [
            (&b"mail.example.org"[..], &b"mail.example.org"[..]),
            (b"a/b:c", b"a\\057b\\072c"),
            (b"", b""),
        ] {
            assert_eq!(host_part(host), want);
        }
        assert_eq!(host_part(&[b'x'; 100]).len(), HOST_MAX);
    }

    #[test]
    fn unique_names_differ_within_a_process() {
        let a = unique_name(b"h:1");
        let b = unique_name(b"h:1");
        assert_ne!(a, b);
        let s = String::from_utf8(a).unwrap();
        assert!(s.ends_with(".h\\0721"), "{s}");
        assert!(s.contains(&format!("P{}Q", std::process::id())), "{s}");
        assert!(!s.contains('/'));
    }
}
