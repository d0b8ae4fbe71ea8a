//! The DATA reader: a byte-at-a-time state machine, apart from any descriptor.
//!
//! Rules (documented in qmail-smtpd(8)):
//! * The message ends only at CR LF `.` CR LF (the first line may be `.` CR LF right after
//!   the 354). Nothing else ends it: not `LF . LF`, `LF . CR LF`, `CR . CR`, `CR LF . LF`.
//! * A line that starts with `.` loses that dot (dot-unstuffing). CR LF becomes LF.
//! * A bare LF (not after CR) or a bare CR (not before LF) anywhere makes the message
//!   unacceptable. The reader still runs to the real end mark, so the client and the server
//!   agree on where the message ends, and then the message is refused as a whole: no byte
//!   of it is queued and no second message can be smuggled inside it.
//! * Long lines and 8-bit bytes, NUL included, pass through unchanged; only `databytes`
//!   bounds the size, counted after CR LF became LF.
//! * Header lines starting with `Received` or `Delivered` (any case) count as hops.

/// Hops at which a message is refused as looping (qmail's MAXHOPS).
pub const MAX_HOPS: u32 = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    LineStart,
    Dot,
    DotCr,
    Mid,
    Cr,
}

/// Why a message read to its end may not be queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Defect {
    /// A bare CR or a bare LF.
    BareLineEnd,
    /// More than databytes bytes.
    TooBig,
    /// [`MAX_HOPS`] or more Received/Delivered header lines.
    Looping,
}

/// Reads one message. Feed it bytes with [`Reader::feed`]; it tells how many it used.
#[derive(Clone, Debug)]
pub struct Reader {
    state: State,
    limit: u64,
    bytes: u64,
    bare: bool,
    in_header: bool,
    line_pos: usize,
    maybe_received: bool,
    maybe_delivered: bool,
    hops: u32,
    done: bool,
}

impl Reader {
    /// A reader for a message of at most `databytes` bytes (0: no limit).
    pub fn new(databytes: u64) -> Reader {
        Reader {
            state: State::LineStart,
            limit: databytes,
            bytes: 0,
            bare: false,
            in_header: true,
            line_pos: 0,
            maybe_received: true,
            maybe_delivered: true,
            hops: 0,
            done: false,
        }
    }

    /// True once the end mark was read.
    pub fn done(&self) -> bool {
        self.done
    }

    /// The worst defect of the message read so far, if any.
    pub fn defect(&self) -> Option<Defect> {
        if self.bare {
            Some(Defect::BareLineEnd)
        } else if self.limit != 0 && self.bytes > self.limit {
            Some(Defect::TooBig)
        } else if self.hops >= MAX_HOPS {
            Some(Defect::Looping)
        } else {
            None
        }
    }

    /// Reads from `input` until the end mark or the end of `input`. Message bytes go to
    /// `out` (which is not written to once the message is known to be unacceptable).
    /// Returns how many bytes of `input` were used: everything after the end mark is the
    /// next command and is left to the caller.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> usize {
        for (i, &c) in input.iter().enumerate() {
            if self.done {
                return i;
            }
            self.step(c, out);
        }
        input.len()
    }

    fn emit(&mut self, c: u8, out: &mut Vec<u8>) {
        self.bytes = self.bytes.saturating_add(1);
        self.header(c);
        if self.defect().is_none() {
            out.push(c);
        }
    }

    fn header(&mut self, c: u8) {
        if !self.in_header {
            return;
        }
        if c == b'\n' {
            if self.line_pos == 0 {
                self.in_header = false;
            }
            self.line_pos = 0;
            self.maybe_received = true;
            self.maybe_delivered = true;
            return;
        }
        let lc = c.to_ascii_lowercase();
        if self.maybe_received && b"received".get(self.line_pos) != Some(&lc) {
            self.maybe_received = false;
        }
        if self.maybe_delivered && b"delivered".get(self.line_pos) != Some(&lc) {
            self.maybe_delivered = false;
        }
        if (self.maybe_received && self.line_pos == 7)
            || (self.maybe_delivered && self.line_pos == 8)
        {
            self.hops = self.hops.saturating_add(1);
        }
        self.line_pos = self.line_pos.saturating_add(1);
    }

    fn step(&mut self, c: u8, out: &mut Vec<u8>) {
        self.state = match (self.state, c) {
            (State::LineStart, b'.') => State::Dot,
            (State::Dot, b'\r') => State::DotCr,
            (State::LineStart | State::Mid, b'\r') => State::Cr,
            (State::DotCr, b'\n') => {
                self.done = true;
                State::LineStart
            }
            (State::Cr, b'\n') => {
                self.emit(b'\n', out);
                State::LineStart
            }
            (State::DotCr | State::Cr, b'\r') => {
                self.bare = true;
                State::Cr
            }
            (State::DotCr | State::Cr, _) => {
                self.bare = true;
                self.emit(c, out);
                State::Mid
            }
            (_, b'\n') => {
                self.bare = true;
                self.emit(b'\n', out);
                State::Mid
            }
            (_, _) => {
                self.emit(c, out);
                State::Mid
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8]) -> (Vec<u8>, usize, bool, Option<Defect>) {
        let mut r = Reader::new(0);
        let mut out = Vec::new();
        let n = r.feed(input, &mut out);
        (out, n, r.done(), r.defect())
    }

    #[test]
    fn ends_only_at_crlf_dot_crlf() {
        let (out, n, done, d) = read(b"a\r\n..b\r\n.\r\nQUIT\r\n");
        assert_eq!(out, b"a\n.b\n");
        assert_eq!(n, 11);
        assert!(done);
        assert_eq!(d, None);
        let (out, _, done, _) = read(b".\r\n");
        assert!(done);
        assert!(out.is_empty());
    }

    #[test]
    fn smuggling_variants_never_end_the_message() {
        for v in [
            &b"a\n.\r\nMAIL FROM:<x@y>\r\n"[..],
            b"a\r\n.\nMAIL FROM:<x@y>\r\n",
            b"a\n.\nMAIL FROM:<x@y>\r\n",
            b"a\r.\rMAIL FROM:<x@y>\r\n",
            b"a\n.\rMAIL FROM:<x@y>\r\n",
            b"a\r\n.\rMAIL FROM:<x@y>\r\n",
            b"a\r.\r\nMAIL FROM:<x@y>\r\n",
        ] {
            let (_, n, done, d) = read(v);
            assert!(!done, "{v:?}");
            assert_eq!(n, v.len());
            assert_eq!(d, Some(Defect::BareLineEnd), "{v:?}");
            let mut r = Reader::new(0);
            let mut out = Vec::new();
            r.feed(v, &mut out);
            let rest = b"\r\n.\r\n";
            assert_eq!(r.feed(rest, &mut out), rest.len());
            assert!(r.done());
            assert_eq!(r.defect(), Some(Defect::BareLineEnd));
        }
    }

    #[test]
    fn databytes_limit_counts_lf_bytes() {
        let mut r = Reader::new(4);
        let mut out = Vec::new();
        r.feed(b"abc\r\n.\r\n", &mut out);
        assert_eq!(r.defect(), None);
        assert_eq!(out, b"abc\n");
        let mut r = Reader::new(4);
        r.feed(b"abcd\r\n.\r\n", &mut out);
        assert_eq!(r.defect(), Some(Defect::TooBig));
    }

    #[test]
    fn hops_are_counted_in_the_header_only() {
        let mut m = b"Received: x\r\nDELIVERED-To: y\r\nReceivedX\r\nReceive: z\r\n\r\n".to_vec();
        m.extend_from_slice(b"Received: body\r\n.\r\n");
        let mut r = Reader::new(0);
        let mut out = Vec::new();
        r.feed(&m, &mut out);
        assert_eq!(r.hops, 3);
        let mut m = b"Received: x\r\n".repeat(99);
        m.extend_from_slice(b"\r\n.\r\n");
        let mut r = Reader::new(0);
        r.feed(&m, &mut out);
        assert_eq!(r.defect(), None);
        let mut m = b"Received: x\r\n".repeat(100);
        m.extend_from_slice(b"\r\n.\r\n");
        let mut r = Reader::new(0);
        r.feed(&m, &mut out);
        assert_eq!(r.defect(), Some(Defect::Looping));
    }

    #[test]
    fn nul_and_long_lines_pass() {
        let mut m = vec![b'x'; 5000];
        m.push(0);
        let (out, _, _, d) = read(&[m.as_slice(), b"\r\n.\r\n"].concat());
        assert_eq!(d, None);
        assert_eq!(out.len(), 5002);
    }
}
