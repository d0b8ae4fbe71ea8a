//! Splitting the input into header fields and body, as qmail's headerbody.c does, with the
//! header held in memory under a fixed limit and the body streamed.
//!
//! * A header field is a line with a valid field name, plus the lines after it that start
//!   with a space or tab. A line starting `From ` becomes an `MBOX-Line:` field.
//! * A blank line ends the header and is the first line of the body. Any other line that
//!   is not a field also ends the header: a blank line is put in front of it.
//! * A last line without a newline gets one.

use std::io::{self, BufRead};

use super::Fatal;
use super::fields;

/// The most bytes of header fields qmail-inject holds.
pub const HEADER_MAX: usize = 1 << 20;

/// Where the pieces of the message go.
pub trait Sink {
    /// One complete header field, ending in a newline.
    fn field(&mut self, f: Vec<u8>) -> Result<(), Fatal>;
    /// The header is over (called once, before any body bytes).
    fn end_header(&mut self) -> Result<(), Fatal>;
    /// Bytes of the body.
    fn body(&mut self, b: &[u8]) -> Result<(), Fatal>;
}

enum Line {
    Eof,
    /// A whole line, newline included (added when the input ended without one).
    Whole(Vec<u8>),
    /// The first `cap` bytes of a longer line.
    Long(Vec<u8>),
}

fn read_error(e: &io::Error) -> Fatal {
    if e.kind() == io::ErrorKind::OutOfMemory {
        Fatal::temp(b"out of memory")
    } else {
        Fatal::temp(b"read error")
    }
}

fn fill(r: &mut impl BufRead) -> Result<&[u8], Fatal> {
    loop {
        match r.fill_buf() {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(&e)),
        }
    }
    r.fill_buf().map_err(|e| read_error(&e))
}

/// Reads one line of at most `cap` bytes (`cap` ≥ 1).
fn line(r: &mut impl BufRead, cap: usize) -> Result<Line, Fatal> {
    let mut out = Vec::new();
    loop {
        let buf = fill(r)?;
        if buf.is_empty() {
            if out.is_empty() {
                return Ok(Line::Eof);
            }
            out.push(b'\n');
            return Ok(Line::Whole(out));
        }
        let room = buf.len().min(cap - out.len());
        let chunk = buf.get(..room).unwrap_or_default();
        if let Some(p) = chunk.iter().position(|&c| c == b'\n') {
            out.extend_from_slice(chunk.get(..=p).unwrap_or_default());
            r.consume(p + 1);
            return Ok(Line::Whole(out));
        }
        out.extend_from_slice(chunk);
        r.consume(room);
        if out.len() >= cap {
            return Ok(Line::Long(out));
        }
    }
}

fn too_long() -> Fatal {
    Fatal::perm(format!("message header too long (limit {HEADER_MAX} bytes)").as_bytes())
}

/// Reads a message from `input` and hands its header fields and body to `sink`. At most
/// `max` bytes of header lines are held; a longer header is a permanent failure.
pub fn split(input: &mut impl BufRead, max: usize, sink: &mut impl Sink) -> Result<(), Fatal> {
    let mut pending: Option<Vec<u8>> = None;
    let mut used = 0usize;
    let mut last;
    loop {
        let cap = max.saturating_sub(used).saturating_add(1);
        let (l, long) = match line(input, cap)? {
            Line::Eof => {
                if let Some(f) = pending.take() {
                    sink.field(f)?;
                }
                return sink.end_header();
            }
            Line::Whole(l) => (l, false),
            Line::Long(l) => (l, true),
        };
        let continued = pending.is_some() && matches!(l.first(), Some(b' ' | b'\t'));
        let mbox = l.starts_with(b"From ");
        let is_field = continued
            || mbox
            || if long {
                fields::may_be_valid(&l)
            } else {
                fields::valid(&l)
            };
        if is_field && (long || used.saturating_add(l.len()) > max) {
            return Err(too_long());
        }
        if continued {
            used += l.len();
            if let Some(p) = pending.as_mut() {
                p.extend_from_slice(&l);
            }
            continue;
        }
        if let Some(f) = pending.take() {
            sink.field(f)?;
        }
        if is_field {
            used += l.len();
            pending = Some(if mbox {
                [&b"MBOX-Line: "[..], &l].concat()
            } else {
                l
            });
            continue;
        }
        sink.end_header()?;
        if l != b"\n" {
            sink.body(b"\n")?;
        }
        sink.body(&l)?;
        last = l.last().copied().unwrap_or(b'\n');
        break;
    }
    loop {
        let buf = fill(input)?;
        let Some(&end) = buf.last() else { break };
        sink.body(buf)?;
        last = end;
        let n = buf.len();
        input.consume(n);
    }
    if last != b'\n' {
        sink.body(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Record(Vec<u8>);

    impl Sink for Record {
        fn field(&mut self, f: Vec<u8>) -> Result<(), Fatal> {
            self.0.extend_from_slice(b"[F]");
            self.0.extend(f);
            Ok(())
        }
        fn end_header(&mut self) -> Result<(), Fatal> {
            self.0.extend_from_slice(b"[E]");
            Ok(())
        }
        fn body(&mut self, b: &[u8]) -> Result<(), Fatal> {
            self.0.extend_from_slice(b);
            Ok(())
        }
    }

    fn run(input: &[u8], max: usize) -> Result<Vec<u8>, Fatal> {
        let mut r = Record::default();
        // A tiny buffer, so lines cross buffer boundaries.
        let mut input = io::BufReader::with_capacity(3, input);
        split(&mut input, max, &mut r)?;
        Ok(r.0)
    }

    #[test]
    fn header_and_body_split_as_headerbody_does() {
        for (input, want) in [
            (
                &b"A: 1\nB: 2\n\nbody\n"[..],
                &b"[F]A: 1\n[F]B: 2\n[E]\nbody\n"[..],
            ),
            (
                b"A: 1\n  more\n\tmore\nB: 2\n\nx",
                b"[F]A: 1\n  more\n\tmore\n[F]B: 2\n[E]\nx\n",
            ),
            (
                b"A: 1\nnot a field\nB: 2\n",
                b"[F]A: 1\n[E]\nnot a field\nB: 2\n",
            ),
            (
                b"From joe  Mon\nA: 1\n\n",
                b"[F]MBOX-Line: From joe  Mon\n[F]A: 1\n[E]\n",
            ),
            (b"A: 1", b"[F]A: 1\n[E]"),
            (b"", b"[E]"),
            (b"\n", b"[E]\n"),
            (b" A: 1\n", b"[E]\n A: 1\n"),
            (b"A: 1\r\n\r\nbody\r\n", b"[F]A: 1\r\n[E]\n\r\nbody\r\n"),
            (b"A: \0\xff\n\nb\0\xfe", b"[F]A: \0\xff\n[E]\nb\0\xfe\n"),
        ] {
            assert_eq!(
                run(input, HEADER_MAX).unwrap(),
                want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn header_limit_counts_field_lines_only() {
        // 10 bytes of fields are allowed, 11 are not; the blank line and body are free.
        let at = b"A: 12345\n\n".to_vec();
        assert_eq!(
            run(b"A: 123456\n\nbody", 10).unwrap(),
            b"[F]A: 123456\n[E]\nbody\n"
        );
        assert!(run(&at, 9).is_ok());
        assert!(run(b"A: 1234567\n\n", 10).is_err());
        assert!(run(b"A: 1\n 234567\n", 10).is_err());
        assert!(run(b"Subject: a very long line without end", 10).is_err());
        // A long first line that cannot be a field is the body, however long.
        let body = [&b"this is not a header "[..], &[b'x'; 100]].concat();
        let got = run(&body, 10).unwrap();
        assert_eq!(got, [&b"[E]\n"[..], &body, b"\n"].concat());
        let e = run(b"X: aaaaaaaaaaaaaaaaaa\n", 10).unwrap_err();
        assert_eq!(e.class(), crate::fail::Class::Perm);
    }
}
