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
