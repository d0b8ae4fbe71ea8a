//! `queue/lock/tcpto`, qmail-remote's table of hosts that recently timed out, in qmail 1.03's
//! format: 1024 bytes, 64 records of 16 bytes. A record holds the IPv4 address (bytes 0-3),
//! the number of recent timeouts (byte 4; 0 means the slot is free) and the time of the last
//! one (bytes 8-11, little-endian seconds since the epoch); the other bytes are unused here.
//!
//! Readers and writers take an exclusive lock on the file through a descriptor opened for
//! writing; the file is never created here (qmail's setup makes it).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::fail::{Failure, Kind, Result};
use crate::sys;

/// The size of the table.
pub const TABLE_BYTES: usize = 1024;
/// The size of one record.
pub const RECORD_BYTES: usize = 16;

/// The table's path under a qmail home.
pub fn path(home: &Path) -> PathBuf {
    home.join("queue/lock/tcpto")
}

/// One host that timed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The IPv4 address.
    pub ip: [u8; 4],
    /// Timeouts in a row.
    pub count: u8,
    /// When the last one happened, in seconds since the epoch.
    pub when: u32,
}

/// The entries in use in a table's bytes (a short table gives only its whole records). A
/// count byte from 128 up reads as negative in qmail-tcpto's signed `char` and is skipped
/// there; qmail-remote never writes more than 10.
pub fn parse(table: &[u8]) -> Vec<Entry> {
    table
        .chunks_exact(RECORD_BYTES)
        .filter_map(|r| {
            let &[a, b, c, d, count, _, _, _, w0, w1, w2, w3, ..] = r else {
                return None;
            };
            (1..128).contains(&count).then_some(Entry {
                ip: [a, b, c, d],
                count,
                when: u32::from_le_bytes([w0, w1, w2, w3]),
            })
        })
        .collect()
}

/// qmail-tcpto's report: one line per entry, `a.b.c.d timed out N seconds ago; # recent
/// timeouts: C`, with N counted from `now` as an unsigned number, as qmail does.
pub fn report(entries: &[Entry], now: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let [a, b, c, d] = e.ip;
        let ago = now.wrapping_sub(u64::from(e.when));
        let line = format!(
            "{a}.{b}.{c}.{d} timed out {ago} seconds ago; # recent timeouts: {}\n",
            e.count
        );
        out.extend_from_slice(line.as_bytes());
    }
    out
}

/// Why reading or clearing the table failed, named as qmail-tcpto names it.
#[derive(Debug)]
pub enum Trouble {
    /// The file could not be opened.
    Open(io::Error),
    /// The lock could not be taken.
    Lock(io::Error),
    /// The file could not be read.
    Read(io::Error),
}

impl Trouble {
    /// qmail-tcpto's text: `unable to open tcpto: <error>` and so on.
    pub fn text(&self) -> String {
        let (what, e) = match self {
            Trouble::Open(e) => ("open", e),
            Trouble::Lock(e) => ("lock", e),
            Trouble::Read(e) => ("read", e),
        };
        format!("unable to {what} tcpto: {}", sys::strerror(e))
    }
}

/// Reads the table under its lock: at most [`TABLE_BYTES`] bytes.
pub fn read(home: &Path) -> std::result::Result<Vec<u8>, Trouble> {
    let p = path(home);
    let lock = OpenOptions::new()
        .write(true)
        .open(&p)
        .map_err(Trouble::Open)?;
    let mut f = File::open(&p).map_err(Trouble::Open)?;
    sys::lock_exclusive(&lock).map_err(Trouble::Lock)?;
    let mut buf = Vec::with_capacity(TABLE_BYTES);
    let limit = u64::try_from(TABLE_BYTES).unwrap_or(u64::MAX);
    (&mut f)
        .take(limit)
        .read_to_end(&mut buf)
        .map_err(Trouble::Read)?;
    Ok(buf)
}

/// qmail-tcpok: overwrites the first [`TABLE_BYTES`] bytes of the table with zeros under its
/// lock, so qmail-remote forgets every timeout. Temporary failures name the file.
pub fn clear(home: &Path) -> Result<()> {
    let p = path(home);
    let fail = |verb: &str, e| {
        Failure::temp_io(Kind::System, format!("unable to {verb} {}", p.display()), e)
    };
    let mut f = OpenOptions::new()
        .write(true)
        .open(&p)
        .map_err(|e| fail("write", e))?;
    sys::lock_exclusive(&f).map_err(|e| fail("lock", e))?;
    f.write_all(&[0u8; TABLE_BYTES])
        .and_then(|()| f.flush())
        .map_err(|e| fail("clear", e))
}

/// qmail-remote's tcpto(): whether `ip` should be skipped now: it timed out at least twice
/// in a row, the last time less than `(60 + (pid & 31)) * 64` seconds ago. Any trouble
/// reading the table means "not skipped".
pub fn is_down(home: &Path, ip: [u8; 4], now: u64, pid: u32) -> bool {
    let Ok(table) = read(home) else {
        return false;
    };
    let Some(e) = parse(&table).into_iter().find(|e| e.ip == ip) else {
        return false;
    };
    let window = (60 + u64::from(pid & 31)) << 6;
    e.count >= 2 && now.wrapping_sub(u64::from(e.when)) < window
}

/// qmail-remote's tcpto_err(): after a connection attempt to `ip`, records a timeout
/// (`failed`: the count goes up, at most once per 2 minutes and to at most 10; a new host
/// takes a free slot or the oldest one) or forgets the host (a connection worked). Errors
/// are ignored: the table is only advice.
pub fn note(home: &Path, ip: [u8; 4], failed: bool, now: u64) {
    let _ = note_inner(home, ip, failed, now);
}

fn note_inner(home: &Path, ip: [u8; 4], failed: bool, now: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut f = OpenOptions::new().read(true).write(true).open(path(home))?;
    sys::lock_exclusive(&f)?;
    let mut buf = Vec::with_capacity(TABLE_BYTES);
    (&mut f)
        .take(u64::try_from(TABLE_BYTES).unwrap_or(1024))
        .read_to_end(&mut buf)?;
    let n = buf.len() / RECORD_BYTES;
    let when32 = u32::try_from(now & 0xffff_ffff).unwrap_or(0);
    let mut write_at = |i: usize, rec: &[u8]| -> io::Result<()> {
        f.seek(SeekFrom::Start(
            u64::try_from(i * RECORD_BYTES).unwrap_or(0),
        ))?;
        f.write_all(rec)
    };
    let rec = |i: usize| buf.get(i * RECORD_BYTES..(i + 1) * RECORD_BYTES);
    for i in 0..n {
        let Some(r) = rec(i) else { break };
        if r.get(..4) != Some(&ip[..]) {
            continue;
        }
        let mut r: [u8; RECORD_BYTES] = r.try_into().unwrap_or([0; RECORD_BYTES]);
        if failed {
            let last = u32::from_le_bytes([r[8], r[9], r[10], r[11]]);
            if r[4] != 0 && u64::from(when32).saturating_sub(120) < u64::from(last) {
                return Ok(());
            }
            r[4] = r[4].saturating_add(1).min(10);
            r[8..12].copy_from_slice(&when32.to_le_bytes());
        } else {
            r[4] = 0;
        }
        return write_at(i, &r);
    }
    if !failed {
        return Ok(());
    }
    let free = (0..n).find(|&i| rec(i).and_then(|r| r.get(4)) == Some(&0));
    let slot = free.or_else(|| {
        (0..n).min_by_key(|&i| rec(i).map_or(0, |r| u32::from_le_bytes([r[8], r[9], r[10], r[11]])))
    });
    let Some(i) = slot else { return Ok(()) };
    let mut r = [0u8; RECORD_BYTES];
    r[..4].copy_from_slice(&ip);
    r[4] = 1;
    r[8..12].copy_from_slice(&when32.to_le_bytes());
    write_at(i, &r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ip: [u8; 4], count: u8, when: u32) -> [u8; 16] {
        let mut r = [0u8; 16];
        r[..4].copy_from_slice(&ip);
        r[4] = count;
        r[5] = 0xff; // flag bytes qmail-remote uses are ignored
        r[8..12].copy_from_slice(&when.to_le_bytes());
        r
    }

    #[test]
    fn records_parse_and_print_as_qmail_tcpto_does() {
        let mut t = vec![0u8; TABLE_BYTES];
        t[..16].copy_from_slice(&record([192, 0, 2, 1], 2, 1_000_000));
        t[32..48].copy_from_slice(&record([10, 0, 0, 9], 0, 5));
        t[64..80].copy_from_slice(&record([10, 0, 0, 8], 128, 5));
        t[1008..].copy_from_slice(&record([198, 51, 100, 255], 127, 1_000_090));
        let e = parse(&t);
        assert_eq!(e.len(), 2);
        assert_eq!(
            e[0],
            Entry {
                ip: [192, 0, 2, 1],
                count: 2,
                when: 1_000_000
            }
        );
        let text = report(&e, 1_000_100);
        assert_eq!(
            text,
            b"192.0.2.1 timed out 100 seconds ago; # recent timeouts: 2\n\
              198.51.100.255 timed out 10 seconds ago; # recent timeouts: 127\n"
        );
        // A time in the future wraps as qmail's unsigned arithmetic does.
        let future = report(
            &[Entry {
                ip: [1, 2, 3, 4],
                count: 1,
                when: 11,
            }],
            10,
        );
        assert_eq!(
            future,
            b"1.2.3.4 timed out 18446744073709551615 seconds ago; # recent timeouts: 1\n"
        );
        // A partial record at the end is ignored.
        assert!(parse(&record([1, 1, 1, 1], 1, 1)[..15]).is_empty());
        assert!(parse(&[0u8; TABLE_BYTES]).is_empty());
    }

    #[test]
    fn timeouts_are_counted_and_forgotten() {
        let home = std::env::temp_dir().join(format!("sqmail-tcpto-{}", std::process::id()));
        std::fs::create_dir_all(home.join("queue/lock")).unwrap();
        std::fs::write(path(&home), [0u8; TABLE_BYTES]).unwrap();
        let ip = [192, 0, 2, 7];
        note(&home, ip, true, 1_000_000);
        assert!(
            !is_down(&home, ip, 1_000_001, 0),
            "one timeout is not enough"
        );
        note(&home, ip, true, 1_000_060);
        assert!(
            !is_down(&home, ip, 1_000_061, 0),
            "a second within 2 minutes is ignored"
        );
        note(&home, ip, true, 1_000_200);
        assert!(is_down(&home, ip, 1_000_201, 0));
        assert!(
            !is_down(&home, ip, 1_000_200 + 3840, 0),
            "the window is over"
        );
        note(&home, ip, false, 1_000_300);
        assert!(!is_down(&home, ip, 1_000_301, 0));
        assert_eq!(parse(&std::fs::read(path(&home)).unwrap()).len(), 0);
        std::fs::remove_dir_all(home).unwrap();
    }

    #[test]
    fn trouble_texts_match_qmail_tcpto() {
        let e = || io::Error::from_raw_os_error(2);
        assert_eq!(
            Trouble::Open(e()).text(),
            "unable to open tcpto: No such file or directory"
        );
        assert_eq!(
            Trouble::Lock(e()).text(),
            "unable to lock tcpto: No such file or directory"
        );
        assert_eq!(
            Trouble::Read(e()).text(),
            "unable to read tcpto: No such file or directory"
        );
    }
}
