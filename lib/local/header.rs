//! Reading a message as qmail's headerbody does, for the helpers that look at a few
//! header fields (qreceipt, qbiff, maildirwatch): header fields with their continuation
//! lines, the end of the header, then body lines. A leading `From ` line is a field named
//! `MBOX-Line`; the first line that is not a field ends the header.
//!
//! Memory is bounded: a line keeps at most [`LINE_KEEP`] bytes, a field longer than
//! [`FIELD_MAX`] bytes is dropped whole, and the reader stops as soon as the visitor has
//! seen enough.

use std::io::{self, BufRead};

/// The most bytes of one header field (with its continuation lines) that are kept; a
/// longer field is skipped.
pub const FIELD_MAX: usize = 64 * 1024;
/// The most bytes of one line (before its newline) that are kept.
pub const LINE_KEEP: usize = FIELD_MAX;

/// Reads one line, keeping at most `keep` bytes before its newline and the newline
/// itself; the rest of a longer line is consumed and dropped. `None` at the end of
/// input, else whether the line ended with a newline.
pub fn read_line(
    r: &mut impl BufRead,
    keep: usize,
    line: &mut Vec<u8>,
) -> io::Result<Option<bool>> {
    line.clear();
    let mut any = false;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(any.then_some(false));
        }
        any = true;
        let (part, done) = match buf.iter().position(|&c| c == b'\n') {
            Some(i) => (buf.get(..i).unwrap_or_default(), true),
            None => (buf, false),
        };
        let room = keep.saturating_sub(line.len());
        line.extend_from_slice(part.get(..part.len().min(room)).unwrap_or_default());
        let used = part.len() + usize::from(done);
        r.consume(used);
        if done {
            line.push(b'\n');
            return Ok(Some(true));
        }
    }
}

/// qmail's hfield_valid: a name of printable non-space bytes, optional spaces or tabs, a
/// colon.
pub fn valid(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&c| c == b':') else {
        return false;
    };
    let mut name = line.get(..colon).unwrap_or_default();
    while let [rest @ .., b' ' | b'\t'] = name {
        name = rest;
    }
    !name.is_empty() && name.iter().all(|c| (33..=126).contains(c))
}

/// qmail's hmatch: does the field have this (lower-case) name, in any case, followed by
/// optional spaces or tabs and a colon?
pub fn is_named(field: &[u8], name: &[u8]) -> bool {
    let Some(head) = field.get(..name.len()) else {
        return false;
    };
    head.eq_ignore_ascii_case(name)
        && field
            .get(name.len()..)
            .unwrap_or_default()
            .iter()
            .find(|&&c| c != b' ' && c != b'\t')
            == Some(&b':')
}

/// qmail's hfield_skipname: where the value starts (after the colon and any white space,
/// newlines included).
pub fn skip_name(field: &[u8]) -> usize {
    let mut i = field
        .iter()
        .position(|&c| c == b':')
        .map_or(field.len(), |i| i + 1);
    while matches!(field.get(i), Some(b'\t' | b'\n' | b'\r' | b' ')) {
        i += 1;
    }
    i
}

/// What the reader hands out.
pub trait Visitor {
    /// A header field with its continuation lines, ending in a newline.
    fn field(&mut self, field: &[u8]);
    /// The header is over. Returning `false` stops the reading.
    fn end_of_header(&mut self) -> bool;
    /// A body line, ending in a newline. Returning `false` stops the reading.
    fn body(&mut self, line: &[u8]) -> bool;
}

struct Lines<'a, R> {
    r: &'a mut R,
    more: bool,
}

impl<R: BufRead> Lines<'_, R> {
    /// qmail's getsa: a line, a newline added to a last partial one.
    fn next(&mut self, line: &mut Vec<u8>) -> io::Result<bool> {
        if !self.more {
            return Ok(false);
        }
        match read_line(self.r, LINE_KEEP, line)? {
            None => Ok(false),
            Some(true) => Ok(true),
            Some(false) => {
                self.more = false;
                line.push(b'\n');
                Ok(true)
            }
        }
    }
}

/// Reads a message from `r` and tells `v` what it finds.
pub fn walk(r: &mut impl BufRead, v: &mut impl Visitor) -> io::Result<()> {
    let mut lines = Lines { r, more: true };
    let mut field: Vec<u8> = Vec::new();
    let mut have = false;
    let mut line = Vec::new();
    loop {
        if !lines.next(&mut line)? {
            if have && field.len() <= FIELD_MAX {
                v.field(&field);
            }
            v.end_of_header();
            return Ok(());
        }
        if have && matches!(line.first(), Some(b' ' | b'\t')) {
            if field.len() <= FIELD_MAX {
                field.extend_from_slice(&line);
            }
            continue;
        }
        if have && field.len() <= FIELD_MAX {
            v.field(&field);
        }
        if line == b"\n" {
            if !v.end_of_header() || !v.body(&line) {
                return Ok(());
            }
            break;
        }
        field.clear();
        if line.starts_with(b"From ") {
            field.extend_from_slice(b"MBOX-Line: ");
            field.extend_from_slice(&line);
        } else if valid(&line) {
            field.extend_from_slice(&line);
        } else {
            if !v.end_of_header() || !v.body(b"\n") || !v.body(&line) {
                return Ok(());
            }
            break;
        }
        have = true;
    }
    while lines.next(&mut line)? {
        if !v.body(&line) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Log(Vec<String>);

    impl Visitor for Log {
        fn field(&mut self, f: &[u8]) {
            self.0.push(format!("F{}", String::from_utf8_lossy(f)));
        }
        fn end_of_header(&mut self) -> bool {
            self.0.push("E".into());
            true
        }
        fn body(&mut self, l: &[u8]) -> bool {
            self.0.push(format!("B{}", String::from_utf8_lossy(l)));
            true
        }
    }

    fn log(input: &[u8]) -> Vec<String> {
        let mut l = Log::default();
        walk(&mut io::BufReader::with_capacity(3, input), &mut l).unwrap();
        l.0
    }

    #[test]
    fn header_and_body_are_split_like_headerbody() {
        assert_eq!(
            log(b"From x y\nSubject: a\n b\nTo: c\n\nbody\nlast"),
            [
                "FMBOX-Line: From x y\n",
                "FSubject: a\n b\n",
                "FTo: c\n",
                "E",
                "B\n",
                "Bbody\n",
                "Blast\n"
            ]
        );
        assert_eq!(
            log(b"Subject: a\nnot a field\nmore\n"),
            ["FSubject: a\n", "E", "B\n", "Bnot a field\n", "Bmore\n"]
        );
        assert_eq!(log(b"Subject: a"), ["FSubject: a\n", "E"]);
        assert_eq!(log(b""), ["E"]);
        assert_eq!(log(b"\n"), ["E", "B\n"]);
    }

    #[test]
    fn oversized_fields_are_dropped() {
        let mut m = b"Subject: ".to_vec();
        m.extend(vec![b'x'; FIELD_MAX]);
        m.extend_from_slice(b"\nTo: a\n");
        assert_eq!(log(&m), ["FTo: a\n", "E"]);
    }

    #[test]
    fn field_names_match_like_hfield() {
        for (f, name, want) in [
            (&b"Subject: x"[..], &b"subject"[..], true),
            (b"SUBJECT \t: x", b"subject", true),
            (b"Subjects: x", b"subject", false),
            (b"Subj", b"subject", false),
            (b"Delivered-To: a", b"delivered-to", true),
            (b"Delivered_To: a", b"delivered-to", false),
        ] {
            assert_eq!(is_named(f, name), want, "{:?}", String::from_utf8_lossy(f));
        }
        assert!(!valid(b"X-A b: c"));
        assert!(valid(b"X-A\t: c"));
        assert_eq!(skip_name(b"Subject: \n\t hi\n"), 12);
        assert_eq!(skip_name(b"nocolon"), 7);
    }

    #[test]
    fn read_line_keeps_the_newline_of_a_cut_line() {
        let mut r = io::BufReader::with_capacity(4, &b"abcdefgh\nxy\n\nlast"[..]);
        let mut l = Vec::new();
        for (want, ended) in [
            (&b"abc\n"[..], true),
            (b"xy\n", true),
            (b"\n", true),
            (b"las", false),
        ] {
            assert_eq!(read_line(&mut r, 3, &mut l).unwrap(), Some(ended));
            assert_eq!(l, want);
        }
        assert_eq!(read_line(&mut r, 3, &mut l).unwrap(), None);
    }
}
