//! mbox files (mbox(5)): appending a message under an exclusive lock, with the `From `
//! line and `>From ` quoting, and truncating back to the old end when a write fails.
//!
//! Quoting is streamed: a line of any length is handled in constant memory, because the
//! decision for a line is made by counting its leading `>` and matching `From `.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::fail::{Failure, Kind};
use crate::sys;

/// How long qmail-local waits for the lock on an mbox.
pub const LOCK_WAIT_SECS: u32 = 30;

/// qmail's gfrom: does this line need a `>` in front (`>*From `)?
pub fn gfrom(line: &[u8]) -> bool {
    let rest = match line.iter().position(|&c| c != b'>') {
        Some(i) => line.get(i..).unwrap_or_default(),
        None => &[],
    };
    rest.starts_with(b"From ")
}

/// Copies a message into an mbox, putting `>` before every line that matches `>*From `.
#[derive(Debug, Default)]
pub struct Quoter {
    /// `>` bytes seen at the start of the current line, not yet written.
    gts: u64,
    /// How much of `From ` follows them, not yet written.
    matched: usize,
    /// The start of the current line has been decided and written.
    decided: bool,
    /// The current line has any bytes at all.
    started: bool,
}

const FROM: &[u8] = b"From ";

impl Quoter {
    /// A quoter at the start of a message.
    pub fn new() -> Quoter {
        Quoter::default()
    }

    fn flush_pending(&mut self, out: &mut impl Write, quote: bool) -> io::Result<()> {
        if quote {
            out.write_all(b">")?;
        }
        for _ in 0..self.gts {
            out.write_all(b">")?;
        }
        out.write_all(FROM.get(..self.matched).unwrap_or_default())?;
        self.gts = 0;
        self.matched = 0;
        self.decided = true;
        Ok(())
    }

    /// Feeds message bytes.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut impl Write) -> io::Result<()> {
        while !chunk.is_empty() {
            if self.decided {
                let (now, rest) = match chunk.iter().position(|&c| c == b'\n') {
                    Some(i) => chunk.split_at(i + 1),
                    None => (chunk, &[][..]),
                };
                out.write_all(now)?;
                if now.last() == Some(&b'\n') {
                    *self = Quoter::default();
                }
                chunk = rest;
                continue;
            }
            let Some((&c, rest)) = chunk.split_first() else {
                break;
            };
            self.started = true;
            if self.matched == 0 && c == b'>' {
                self.gts = self.gts.saturating_add(1);
                chunk = rest;
            } else if FROM.get(self.matched) == Some(&c) {
                self.matched += 1;
                chunk = rest;
                if self.matched == FROM.len() {
                    self.flush_pending(out, true)?;
                }
            } else {
                // Not a From_ line: what was held back goes out as it was.
                self.flush_pending(out, false)?;
            }
        }
        Ok(())
    }

    /// Ends the message: writes what was held back and completes a last line that lacks
    /// its newline.
    pub fn finish(&mut self, out: &mut impl Write) -> io::Result<()> {
        if !self.decided && (self.gts > 0 || self.matched > 0) {
            self.flush_pending(out, false)?;
        }
        if self.started {
            out.write_all(b"\n")?;
        }
        *self = Quoter::default();
        Ok(())
    }
}

fn temp(text: String) -> Failure {
    Failure::temp(Kind::Write, text)
}

enum Trouble {
    Read(io::Error),
    Write(io::Error),
}

/// Appends the message on `message` to the mbox `path` as qmail-local does: open (creating
/// it 0600), lock within [`LOCK_WAIT_SECS`], write the `From `, `Return-Path` and
/// `Delivered-To` lines and the quoted message, a blank line, and fsync. A failure after
/// the lock truncates the file back. Every failure is temporary.
pub fn deliver(path: &[u8], message: &File, lines: [&[u8]; 3]) -> Result<(), Failure> {
    let name = String::from_utf8_lossy(path);
    let f = sys::open_append(Path::new(std::ffi::OsStr::from_bytes(path))).map_err(|e| {
        temp(format!(
            "Unable to open {name}: {}. (#4.2.1)",
            sys::strerror(&e)
        ))
    })?;
    sys::alarm_say(
        LOCK_WAIT_SECS,
        111,
        b"File has been locked for 30 seconds straight. (#4.3.0)\n",
    );
    let locked = sys::lock_exclusive(&f).is_ok();
    sys::alarm_cancel();
    let pos = (&f).seek(SeekFrom::End(0)).ok();
    let trouble = match append(&f, message, lines) {
        Ok(()) => return Ok(()),
        Err(t) => t,
    };
    if locked && let Some(p) = pos {
        let _ = f.set_len(p);
    }
    Err(match trouble {
        Trouble::Read(e) => temp(format!(
            "Unable to read message: {}. (#4.3.0)",
            sys::strerror(&e)
        )),
        Trouble::Write(e) => temp(format!(
            "Unable to write {name}: {}. (#4.3.0)",
            sys::strerror(&e)
        )),
    })
}

fn append(f: &File, message: &File, lines: [&[u8]; 3]) -> Result<(), Trouble> {
    let mut out = BufWriter::with_capacity(64 * 1024, f);
    let r = copy_quoted(&mut out, message, lines);
    let r = r.and_then(|()| out.flush().map_err(Trouble::Write));
    // Whatever is still buffered must not reach the file after a truncation.
    let _ = out.into_parts();
    r?;
    f.sync_all().map_err(Trouble::Write)
}

fn copy_quoted(out: &mut impl Write, mut message: &File, lines: [&[u8]; 3]) -> Result<(), Trouble> {
    for l in lines {
        out.write_all(l).map_err(Trouble::Write)?;
    }
    let mut q = Quoter::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match message.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Trouble::Read(e)),
        };
        q.feed(buf.get(..n).unwrap_or_default(), out)
            .map_err(Trouble::Write)?;
    }
    q.finish(out).map_err(Trouble::Write)?;
    out.write_all(b"\n").map_err(Trouble::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote_in_pieces(input: &[u8], piece: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut q = Quoter::new();
        for c in input.chunks(piece) {
            q.feed(c, &mut out).unwrap();
        }
        q.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn gfrom_matches_qmail() {
        for (line, want) in [
            (&b"From x"[..], true),
            (b"From ", true),
            (b">From x", true),
            (b">>>From x", true),
            (b"From", false),
            (b"from x", false),
            (b" From x", false),
            (b">", false),
            (b"", false),
            (b">>Fro", false),
        ] {
            assert_eq!(gfrom(line), want, "{:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn quoting_is_mboxrd_and_independent_of_chunking() {
        for (input, want) in [
            (&b"a\n"[..], &b"a\n"[..]),
            (b"From x\n", b">From x\n"),
            (b">From x\n", b">>From x\n"),
            (b">>From x\nFrom\n", b">>>From x\nFrom\n"),
            (b"x From y\n", b"x From y\n"),
            (b"\nFrom \n", b"\n>From \n"),
            (b">\n>>\n", b">\n>>\n"),
            (b"Fro\n", b"Fro\n"),
            (b">>Fro", b">>Fro\n"),
            (b"no newline", b"no newline\n"),
            (b"From x", b">From x\n"),
            (b"", b""),
            (
                b"a\nFrom b\nFromage\n>From c",
                b"a\n>From b\nFromage\n>>From c\n",
            ),
        ] {
            for piece in [1, 2, 3, 7, 1000] {
                assert_eq!(
                    String::from_utf8_lossy(&quote_in_pieces(input, piece)),
                    String::from_utf8_lossy(want),
                    "{:?} in pieces of {piece}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    /// A small deterministic generator over an alphabet that makes From_ lines likely.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        const ABC: &[u8] = b">>From \nxX";
        let mut x = seed;
        (0..len)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                ABC[usize::try_from(x >> 60).unwrap() % ABC.len()]
            })
            .collect()
    }

    #[test]
    fn quoting_round_trips_on_noise() {
        for seed in 0..500 {
            let input = noise(seed, usize::try_from(seed % 97).unwrap());
            let out = quote_in_pieces(&input, 1 + usize::try_from(seed % 5).unwrap());
            let mut back = Vec::new();
            for line in out.split_inclusive(|&c| c == b'\n') {
                let quoted = line.first() == Some(&b'>') && gfrom(&line[1..]);
                back.extend_from_slice(if quoted { &line[1..] } else { line });
            }
            let mut want = input.clone();
            if !want.is_empty() && want.last() != Some(&b'\n') {
                want.push(b'\n');
            }
            assert_eq!(back, want, "seed {seed}");
            for line in out.split_inclusive(|&c| c == b'\n') {
                assert!(
                    !line.starts_with(b"From "),
                    "seed {seed}: unquoted From_ line"
                );
            }
        }
    }

    #[test]
    fn long_runs_of_gt_use_no_memory() {
        let mut input = vec![b'>'; 1 << 20];
        input.extend_from_slice(b"From x\n");
        let out = quote_in_pieces(&input, 4096);
        assert_eq!(out.len(), input.len() + 1);
        assert!(out.ends_with(b">From x\n"));
    }
}
