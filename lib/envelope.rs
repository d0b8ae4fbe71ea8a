//! The envelope qmail-queue reads on fd 1: `F<sender>\0`, then `T<recipient>\0` for each
//! recipient, then one more `\0`. s/qmail also accepts `Q` in place of the final `\0`: it
//! ends the list and turns the QHPSI scanner off for this message.
//!
//! The same records (with `u<uid>\0p<pid>\0` in front) are what `queue/intd` and
//! `queue/todo` files hold.

use std::io::{self, Read};

use crate::fail::{Failure, Kind, Result};

/// An address must be shorter than this many bytes (qmail's `ADDR`): 1002 bytes are
/// accepted, 1003 make qmail-queue exit 11.
pub const ADDR_MAX: usize = 1003;

/// One event read from an envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// The envelope sender (the `F` record).
    Sender(Vec<u8>),
    /// An envelope recipient (a `T` record).
    Recipient(Vec<u8>),
    /// The end of the envelope (the extra `\0`).
    End,
    /// The end of the envelope by s/qmail's `Q` token: no virus scan for this message.
    EndNoScan,
}

/// Reads envelope records one at a time with a bound on every address.
pub struct Reader<R> {
    input: R,
    started: bool,
    done: bool,
}

impl<R: Read> Reader<R> {
    /// Reads from `input`, which should be buffered.
    pub fn new(input: R) -> Self {
        Reader {
            input,
            started: false,
            done: false,
        }
    }

    fn byte(&mut self) -> Result<u8> {
        let mut b = [0u8; 1];
        loop {
            match self.input.read(&mut b) {
                Ok(0) => return Err(Failure::temp(Kind::Read, "envelope ended early")),
                Ok(_) => return Ok(b[0]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Failure::temp_io(Kind::Read, "unable to read envelope", e)),
            }
        }
    }

    fn address(&mut self) -> Result<Vec<u8>> {
        let mut a = Vec::new();
        loop {
            if a.len() >= ADDR_MAX {
                return Err(Failure::perm(
                    Kind::AddressTooLong,
                    "envelope address too long",
                ));
            }
            match self.byte()? {
                0 => return Ok(a),
                c => a.push(c),
            }
        }
    }

    /// The next record; after `End` or `EndNoScan` it keeps returning `End`.
    pub fn next_record(&mut self) -> Result<Record> {
        if self.done {
            return Ok(Record::End);
        }
        if !self.started {
            self.started = true;
            return match self.byte()? {
                b'F' => Ok(Record::Sender(self.address()?)),
                _ => Err(bad()),
            };
        }
        match self.byte()? {
            0 => {
                self.done = true;
                Ok(Record::End)
            }
            b'Q' => {
                self.done = true;
                Ok(Record::EndNoScan)
            }
            b'T' => Ok(Record::Recipient(self.address()?)),
            _ => Err(bad()),
        }
    }
}

fn bad() -> Failure {
    Failure::temp(Kind::EnvelopeFormat, "envelope format error")
}

/// A whole envelope as qmail-queue expects it.
pub fn encode(sender: &[u8], recipients: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sender.len() + 3 + recipients.len() * 32);
    out.push(b'F');
    out.extend_from_slice(sender);
    out.push(0);
    for r in recipients {
        out.push(b'T');
        out.extend_from_slice(r);
        out.push(0);
    }
    out.push(0);
    out
}

/// A queued message's envelope, as read back from `todo/` or `intd/` (for the queue tools).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Queued {
    /// The uid that ran qmail-queue (`u` record).
    pub uid: Option<u64>,
    /// The pid of qmail-queue (`p` record).
    pub pid: Option<u64>,
    /// The sender (`F` record).
    pub sender: Option<Vec<u8>>,
    /// The recipients (`T` records), with delivered ones (`D`) flagged true.
    pub recipients: Vec<(Vec<u8>, bool)>,
}

/// Parses the NUL-terminated records of a queue file (`intd`, `todo`, `info`, `local`,
/// `remote`). Unknown record letters are skipped; an unterminated final record is ignored.
pub fn parse_queued(b: &[u8]) -> Queued {
    let mut q = Queued::default();
    let mut parts: Vec<&[u8]> = b.split(|&c| c == 0).collect();
    parts.pop(); // the text after the last NUL is not a complete record
    for rec in parts {
        let Some((&letter, rest)) = rec.split_first() else {
            continue;
        };
        let num = || std::str::from_utf8(rest).ok().and_then(|s| s.parse().ok());
        match letter {
            b'u' => q.uid = num(),
            b'p' => q.pid = num(),
            b'F' => q.sender = Some(rest.to_vec()),
            b'T' => q.recipients.push((rest.to_vec(), false)),
            b'D' => q.recipients.push((rest.to_vec(), true)),
            _ => {}
        }
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(b: &[u8]) -> Result<Vec<Record>> {
        let mut r = Reader::new(b);
        let mut out = Vec::new();
        loop {
            let rec = r.next_record()?;
            let end = matches!(rec, Record::End | Record::EndNoScan);
            out.push(rec);
            if end {
                return Ok(out);
            }
        }
    }

    #[test]
    fn reads_sender_recipients_and_end() {
        let e = encode(b"a@b", &[b"c@d", b"e@f"]);
        assert_eq!(e, b"Fa@b\0Tc@d\0Te@f\0\0");
        assert_eq!(
            all(&e).unwrap(),
            vec![
                Record::Sender(b"a@b".to_vec()),
                Record::Recipient(b"c@d".to_vec()),
                Record::Recipient(b"e@f".to_vec()),
                Record::End
            ]
        );
        assert_eq!(all(b"F\0Tx\0Q").unwrap().last(), Some(&Record::EndNoScan));
    }

    #[test]
    fn format_errors_and_truncation_have_their_kinds() {
        assert_eq!(all(b"Xa\0\0").unwrap_err().kind(), Kind::EnvelopeFormat);
        assert_eq!(all(b"Fa\0Ub\0\0").unwrap_err().kind(), Kind::EnvelopeFormat);
        assert_eq!(all(b"Fa\0Tb").unwrap_err().kind(), Kind::Read);
        assert_eq!(all(b"").unwrap_err().kind(), Kind::Read);
    }

    #[test]
    fn address_limit_is_1002_bytes() {
        let ok = [&b"F"[..], &vec![b'a'; ADDR_MAX - 1], b"\0\0"].concat();
        assert!(all(&ok).is_ok());
        let long = [&b"F"[..], &vec![b'a'; ADDR_MAX], b"\0\0"].concat();
        assert_eq!(all(&long).unwrap_err().kind(), Kind::AddressTooLong);
        let rlong = [&b"F\0T"[..], &vec![b'a'; ADDR_MAX], b"\0\0"].concat();
        assert_eq!(all(&rlong).unwrap_err().qq_code(), 11);
    }

    #[test]
    fn queued_files_parse_back() {
        let q = parse_queued(b"u0\0p42\0Fa@b\0Tc@d\0De@f\0");
        assert_eq!(q.uid, Some(0));
        assert_eq!(q.pid, Some(42));
        assert_eq!(q.sender.as_deref(), Some(&b"a@b"[..]));
        assert_eq!(
            q.recipients,
            vec![(b"c@d".to_vec(), false), (b"e@f".to_vec(), true)]
        );
    }
}
