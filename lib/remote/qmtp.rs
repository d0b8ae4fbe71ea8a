//! The QMTP client (and QMTPS, the same inside TLS from the first byte): one package of
//! netstrings (message in encoding #2, sender, recipients), then one netstring answer per
//! recipient whose first byte is `K`, `Z` or `D`.

use super::conn::Conn;
use super::{Ctx, Outcome, Stop};

/// The longest answer accepted from a QMTP server.
pub const ANSWER_MAX: usize = 10_000;

/// A netstring.
pub fn netstring(b: &[u8]) -> Vec<u8> {
    let mut v = format!("{}:", b.len()).into_bytes();
    v.extend_from_slice(b);
    v.push(b',');
    v
}

/// The whole package for `msg` (qmail's LF form), `sender` and `recips`.
pub fn package(msg: &[u8], sender: &[u8], recips: &[Vec<u8>]) -> Vec<u8> {
    let mut v = format!("{}:\n", msg.len() + 1).into_bytes();
    v.extend_from_slice(msg);
    v.push(b',');
    v.extend_from_slice(&netstring(sender));
    let inner: Vec<u8> = recips.iter().flat_map(|r| netstring(r)).collect();
    v.extend_from_slice(&netstring(&inner));
    v
}

/// Why an answer could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum Bad {
    /// The connection died.
    Dropped,
    /// Not a netstring starting with K, Z or D.
    Protocol,
}

/// Reads one answer netstring with `byte`; returns its letter and text.
///
/// # Errors
/// [`Bad`].
pub fn answer(mut byte: impl FnMut() -> Option<u8>) -> Result<(u8, Vec<u8>), Bad> {
    let mut len: usize = 0;
    let mut digits = 0;
    loop {
        let c = byte().ok_or(Bad::Dropped)?;
        if c == b':' {
            break;
        }
        if !c.is_ascii_digit() || digits >= 6 {
            return Err(Bad::Protocol);
        }
        digits += 1;
        len = len * 10 + usize::from(c - b'0');
    }
    if digits == 0 || len == 0 || len > ANSWER_MAX {
        return Err(Bad::Protocol);
    }
    let letter = byte().ok_or(Bad::Dropped)?;
    if !matches!(letter, b'K' | b'Z' | b'D') {
        return Err(Bad::Protocol);
    }
    let mut text = Vec::with_capacity(len - 1);
    for _ in 1..len {
        let c = byte().ok_or(Bad::Dropped)?;
        if c != b'\r' {
            text.push(if (32..=126).contains(&c) { c } else { b'?' });
        }
    }
    if byte().ok_or(Bad::Dropped)? != b',' {
        return Err(Bad::Protocol);
    }
    Ok((letter, text))
}

/// Runs one QMTP transfer on `conn` (TLS already on for QMTPS).
pub fn run(ctx: &Ctx, ip: &str, mut conn: Conn, out: &mut Vec<u8>) -> Outcome {
    let dropped = |critical: bool| {
        let dup = if critical { "Possible duplicate! " } else { "" };
        Outcome::Done(Stop::new(
            b'Z',
            format!("Connected to {ip} but connection died. {dup}(#4.4.2)\n"),
        ))
    };
    let proto = || {
        Outcome::Done(Stop::new(
            b'Z',
            "Recipient did not talk proper QMTP (#4.3.0)\n",
        ))
    };
    if conn
        .send(&package(&ctx.msg, &ctx.sender, &ctx.recips))
        .is_err()
    {
        return dropped(false);
    }
    let label: &[u8] = if conn.is_tls() { b"qmtps:" } else { b"qmtp:" };
    let (mut all, mut any) = (true, false);
    for _ in &ctx.recips {
        let a = answer(|| conn.byte().ok());
        let (letter, text) = match a {
            Ok(x) => x,
            Err(Bad::Dropped) => return dropped(any),
            Err(Bad::Protocol) => return proto(),
        };
        out.push(match letter {
            b'K' => {
                any = true;
                b'r'
            }
            b'D' => {
                all = false;
                b'h'
            }
            _ => {
                all = false;
                b's'
            }
        });
        out.extend_from_slice(label);
        out.extend_from_slice(&text);
        out.extend_from_slice(b"\n\0");
    }
    conn.close();
    if all {
        Outcome::Done(Stop::new(b'K', format!("All received okay by {ip}\n")))
    } else if any {
        Outcome::Done(Stop::new(
            b'K',
            format!("Received okay for some recipients by {ip}\n"),
        ))
    } else {
        Outcome::Done(Stop::new(b'D', format!("Giving up on {ip}\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(b: &[u8]) -> Result<(u8, Vec<u8>), Bad> {
        let mut it = b.iter().copied();
        answer(|| it.next())
    }

    #[test]
    fn packages_and_answers() {
        assert_eq!(
            package(b"a\n", b"s@x", &[b"r@y".to_vec(), b"t@z".to_vec()]),
            b"3:\na\n,3:s@x,12:3:r@y,3:t@z,,"
        );
        assert_eq!(read(b"6:Kok 1\r,"), Ok((b'K', b"ok 1".to_vec())));
        assert_eq!(read(b"2:D\x01,"), Ok((b'D', b"?".to_vec())));
        assert_eq!(read(b"2:Xx,"), Err(Bad::Protocol));
        assert_eq!(read(b"0:,"), Err(Bad::Protocol));
        assert_eq!(read(b"2:Kx;"), Err(Bad::Protocol));
        assert_eq!(read(b"1000000:K"), Err(Bad::Protocol));
        assert_eq!(read(b"5:Kab"), Err(Bad::Dropped));
        assert_eq!(read(b":K,"), Err(Bad::Protocol));
    }
}
