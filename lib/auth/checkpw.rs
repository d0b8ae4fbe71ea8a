//! The checkpassword record read from descriptor 3: `login\0secret\0challenge\0`, at most
//! 512 bytes, then end of file. The secret is a password, a CRAM-MD5 or APOP response; the
//! challenge is empty for plain logins. Copies of secrets are zeroed when dropped.

use std::io::Read;

/// The most data the record may hold (the checkpassword interface's limit).
pub const RECORD_MAX: usize = 512;

/// Why a record was refused; every case is misuse (exit 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bad {
    /// More than [`RECORD_MAX`] bytes before end of file.
    TooLong,
    /// The login or the secret is not NUL-terminated.
    Unterminated,
    /// Reading descriptor 3 failed (a temporary problem).
    Read,
}

/// A parsed record. The bytes are zeroed on drop.
pub struct Record {
    raw: Vec<u8>,
    login_end: usize,
    secret_end: usize,
    challenge_end: usize,
}

impl Record {
    /// Parses the bytes of a record. A missing challenge is tolerated (DJB's checkpassword
    /// and s/qmail do the same): it is then empty.
    pub fn parse(raw: Vec<u8>) -> Result<Record, Bad> {
        if raw.len() > RECORD_MAX {
            let mut raw = raw;
            raw.fill(0);
            return Err(Bad::TooLong);
        }
        let nul = |from: usize| {
            raw.get(from..)
                .and_then(|r| r.iter().position(|&b| b == 0))
                .map(|i| from + i)
        };
        let (Some(login_end), Some(secret_end)) = (nul(0), nul(0).and_then(|l| nul(l + 1))) else {
            let mut raw = raw;
            raw.fill(0);
            return Err(Bad::Unterminated);
        };
        let challenge_end = nul(secret_end + 1).unwrap_or(raw.len());
        Ok(Record {
            raw,
            login_end,
            secret_end,
            challenge_end,
        })
    }

    /// Reads a record from `input` to end of file, refusing more than [`RECORD_MAX`] bytes.
    pub fn read_from(input: &mut impl Read) -> Result<Record, Bad> {
        let mut buf = vec![0u8; RECORD_MAX + 1];
        let mut len = 0;
        while let Some(room) = buf.get_mut(len..) {
            if room.is_empty() {
                break;
            }
            match input.read(room) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => {
                    buf.fill(0);
                    return Err(Bad::Read);
                }
            }
        }
        buf.truncate(len);
        Record::parse(buf)
    }

    /// The login name.
    pub fn login(&self) -> &[u8] {
        self.raw.get(..self.login_end).unwrap_or_default()
    }

    /// The password or response.
    pub fn secret(&self) -> &[u8] {
        self.raw
            .get(self.login_end + 1..self.secret_end)
            .unwrap_or_default()
    }

    /// The challenge (CRAM-MD5) or timestamp (APOP); empty for a plain login.
    pub fn challenge(&self) -> &[u8] {
        self.raw
            .get(self.secret_end + 1..self.challenge_end)
            .unwrap_or_default()
    }

    /// The record as read, for back ends that take the checkpassword record themselves.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        self.raw.fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_split_into_three_fields() {
        let r = Record::parse(b"joe\0secret\0<1.2@x>\0".to_vec()).unwrap_or_else(|_| panic!());
        assert_eq!(
            (r.login(), r.secret(), r.challenge()),
            (&b"joe"[..], &b"secret"[..], &b"<1.2@x>"[..])
        );
        let r = Record::parse(b"joe\0secret\0".to_vec()).unwrap_or_else(|_| panic!());
        assert_eq!(r.challenge(), b"");
        let r = Record::parse(b"joe\0pw\0chal".to_vec()).unwrap_or_else(|_| panic!());
        assert_eq!(r.challenge(), b"chal");
        let r = Record::parse(b"\0\0".to_vec()).unwrap_or_else(|_| panic!());
        assert_eq!((r.login(), r.secret()), (&b""[..], &b""[..]));
    }

    #[test]
    fn bad_records_are_refused() {
        for (raw, want) in [
            (&b""[..], Bad::Unterminated),
            (b"joe", Bad::Unterminated),
            (b"joe\0secret", Bad::Unterminated),
        ] {
            assert_eq!(Record::parse(raw.to_vec()).err(), Some(want), "{raw:?}");
        }
        let mut at_limit = vec![b'a'; RECORD_MAX - 2];
        at_limit.extend_from_slice(b"\0\0");
        assert!(Record::parse(at_limit.clone()).is_ok());
        at_limit.insert(0, b'a');
        assert_eq!(Record::parse(at_limit).err(), Some(Bad::TooLong));
    }

    #[test]
    fn reading_stops_one_byte_past_the_limit() {
        let big = vec![b'x'; 100_000];
        assert_eq!(Record::read_from(&mut &big[..]).err(), Some(Bad::TooLong));
        let ok = b"u\0p\0\0".to_vec();
        let r = Record::read_from(&mut &ok[..]).unwrap_or_else(|_| panic!());
        assert_eq!(r.secret(), b"p");
    }
}
