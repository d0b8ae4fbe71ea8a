//! The RFC 1413 (ident) question ucspi-tcp asks for `TCPREMOTEINFO`: connect from the
//! connection's local address to port 113 of the remote host, send
//! `<remote port> , <local port>\r\n`, and take what follows the third colon of the reply
//! line, skipping spaces, tabs and CRs, up to 257 bytes. The whole exchange shares one
//! deadline.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The answer length after which reading stops (the answer then has one byte more).
pub const INFO_MAX: usize = 256;

/// What the reply contributes, fed byte by byte.
#[derive(Default)]
struct Parse {
    colons: u32,
    out: Vec<u8>,
}

impl Parse {
    /// Takes one byte; `true` when the answer is complete.
    fn feed(&mut self, c: u8) -> bool {
        match c {
            b' ' | b'\t' | b'\r' => false,
            b'\n' => true,
            b':' if self.colons < 3 => {
                self.colons += 1;
                false
            }
            _ if self.colons < 3 => false,
            _ => {
                self.out.push(c);
                self.out.len() > INFO_MAX
            }
        }
    }
}

/// The ident answer for the connection between `local` and `remote`.
///
/// # Errors
/// The question could not be asked or the reply ended before its newline.
pub fn query(local: SocketAddr, remote: SocketAddr, timeout: Duration) -> io::Result<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let from = SocketAddr::new(local.ip(), 0);
    let to = SocketAddr::new(remote.ip(), 113);
    let mut s = sqmail::sys::tcp_connect(Some(&from), &to, timeout)?;
    let left = || {
        let d = deadline.saturating_duration_since(Instant::now());
        if d.is_zero() {
            Err(io::Error::from(io::ErrorKind::TimedOut))
        } else {
            Ok(d)
        }
    };
    s.set_write_timeout(Some(left()?))?;
    s.write_all(format!("{} , {}\r\n", remote.port(), local.port()).as_bytes())?;
    let mut p = Parse::default();
    let mut buf = [0u8; 128];
    loop {
        s.set_read_timeout(Some(left()?))?;
        let n = match s.read(&mut buf) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::from(io::ErrorKind::TimedOut));
            }
            Err(e) => return Err(e),
        };
        for &c in buf.get(..n).unwrap_or_default() {
            if p.feed(c) {
                return Ok(p.out);
            }
        }
    }
}

/// The answer a complete reply gives (for tests of the parsing rule).
pub fn parse_reply(reply: &[u8]) -> Option<Vec<u8>> {
    let mut p = Parse::default();
    reply.iter().any(|&c| p.feed(c)).then_some(p.out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_is_what_follows_the_third_colon() {
        assert_eq!(
            parse_reply(b"6191, 23 : USERID : UNIX : stjohns\r\n"),
            Some(b"stjohns".to_vec())
        );
        assert_eq!(
            parse_reply(b"1,2:USERID:UNIX:a b:c\n"),
            Some(b"ab:c".to_vec())
        );
        assert_eq!(parse_reply(b"1,2:ERROR:NO-USER\n"), Some(Vec::new()));
        assert_eq!(parse_reply(b"1,2:USERID:UNIX:joe"), None, "no newline");
        let long = [b"a:b:c:".as_slice(), &[b'x'; 300]].concat();
        assert_eq!(parse_reply(&long).unwrap().len(), INFO_MAX + 1);
    }
}
