//! qmail-smtpam: asks another SMTP server whether it accepts a recipient. A recipient PAM
//! for `control/recipients` (`domain|bin/qmail-smtpam mx.example.com 25`): the address
//! comes on descriptor 3 as `address\0\0\0`; the program connects, says `HELO helohost`,
//! `MAIL FROM:<>`, `RCPT TO:<address>` and `QUIT`.
//!
//! Exit 0 when the server answers 250 to RCPT, 1 when it answers 5xx, 111 for anything else
//! (no connection, a timeout, 4xx, a broken reply, a failed TLS handshake). A port written
//! with an `s` (`s465`) means TLS from the first byte (RFC 8314); the connection is then
//! encrypted, and the server's certificate is not checked.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use crate::auth::Refusal;
use crate::control::Control;
use crate::sys;

/// The longest reply line read.
pub const REPLY_LINE_MAX: usize = 1000;
/// The most lines of one reply.
pub const REPLY_LINES_MAX: usize = 100;
/// The most bytes read from descriptor 3.
pub const INPUT_MAX: usize = 512;

fn say(text: &str) {
    crate::prog::err(format!("qmail-smtpam: {text}\n").as_bytes());
}

/// Reads one reply and returns its code; `None` for anything malformed or cut short.
pub fn read_reply(r: &mut impl BufRead) -> Option<u16> {
    let mut code = None;
    for _ in 0..REPLY_LINES_MAX {
        let mut line = Vec::new();
        r.by_ref()
            .take(REPLY_LINE_MAX as u64)
            .read_until(b'\n', &mut line)
            .ok()?;
        if line.last() != Some(&b'\n') {
            return None;
        }
        let digits = line.get(..3)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let c = std::str::from_utf8(digits).ok()?.parse::<u16>().ok()?;
        if code.is_some_and(|k| k != c) {
            return None;
        }
        code = Some(c);
        if line.get(3) != Some(&b'-') {
            return code;
        }
    }
    None
}

/// The SMTP dialogue over an open connection: the result for the address.
pub fn dialogue(
    conn: &mut (impl Read + Write),
    helohost: &[u8],
    address: &[u8],
) -> Result<(), Refusal> {
    let mut r = BufReader::new(ReadHalf(conn));
    let two = |c: Option<u16>| c.is_some_and(|c| (200..300).contains(&c));
    if !two(step(&mut r, None)) {
        return Err(Refusal::Temporary);
    }
    if !two(step(&mut r, Some(&[b"HELO ", helohost, b"\r\n"].concat()))) {
        return Err(Refusal::Temporary);
    }
    if !two(step(&mut r, Some(b"MAIL FROM:<>\r\n"))) {
        return Err(Refusal::Temporary);
    }
    let rcpt = step(&mut r, Some(&[b"RCPT TO:<", address, b">\r\n"].concat()));
    let _ = step(&mut r, Some(b"QUIT\r\n"));
    match rcpt {
        Some(250) => Ok(()),
        Some(c) if (500..600).contains(&c) => Err(Refusal::Credentials),
        _ => Err(Refusal::Temporary),
    }
}

fn step<T: Read + Write>(r: &mut BufReader<ReadHalf<'_, T>>, cmd: Option<&[u8]>) -> Option<u16> {
    if let Some(cmd) = cmd {
        let w = &mut r.get_mut().0;
        w.write_all(cmd).ok()?;
        w.flush().ok()?;
    }
    read_reply(r)
}

struct ReadHalf<'a, T>(&'a mut T);

impl<T: Read> Read for ReadHalf<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

/// Runs qmail-smtpam with its arguments (after the program name).
pub fn run(args: &[std::ffi::OsString], home: &Path) -> Result<(), Refusal> {
    let host = args.first().ok_or(Refusal::Misuse)?;
    let (port, tls) = match args.get(1) {
        None => (25, false),
        Some(p) => {
            let p = p.to_str().ok_or(Refusal::Misuse)?;
            match p.strip_prefix(['s', 'S']) {
                Some(n) => (n.parse::<u16>().map_err(|_| Refusal::Misuse)?, true),
                None => (p.parse::<u16>().map_err(|_| Refusal::Misuse)?, false),
            }
        }
    };
    let mut fd3 = sys::inherited_fd(3).ok_or(Refusal::Misuse)?;
    let mut buf = Vec::new();
    (&mut fd3)
        .take(INPUT_MAX as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|_| Refusal::Temporary)?;
    drop(fd3);
    if buf.len() > INPUT_MAX {
        return Err(Refusal::Misuse);
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let address = buf.get(..end).unwrap_or_default();
    if address
        .iter()
        .any(|&b| b == b'\r' || b == b'\n' || b == b'>')
    {
        return Err(Refusal::Misuse);
    }
    let ctl = Control::open(home).map_err(|_| Refusal::Temporary)?;
    let helohost = ctl
        .line_or_me("helohost", b"localhost")
        .map_err(|_| Refusal::Temporary)?;
    let tconnect = ctl
        .int("timeoutconnect", 60)
        .map_err(|_| Refusal::Temporary)?;
    let tremote = ctl
        .int("timeoutremote", 1200)
        .map_err(|_| Refusal::Temporary)?;
    let host = host.to_str().ok_or(Refusal::Misuse)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|_| Refusal::Temporary)?
        .collect();
    for a in addrs {
        let Ok(mut s) = TcpStream::connect_timeout(&a, Duration::from_secs(tconnect.max(1))) else {
            continue;
        };
        let t = Some(Duration::from_secs(tremote.max(1)));
        if s.set_read_timeout(t).is_err() || s.set_write_timeout(t).is_err() {
            return Err(Refusal::Temporary);
        }
        if !tls {
            return dialogue(&mut s, &helohost, address);
        }
        let setup = crate::remote::tls::Setup {
            check: crate::remote::tls::Check::Nothing,
            roots: crate::remote::tlsdest::Roots::Public,
            host: host.to_string(),
            sni: host
                .parse::<std::net::IpAddr>()
                .is_err()
                .then(|| host.to_string()),
            dane_names: Vec::new(),
            client: None,
        };
        return match crate::remote::tls::handshake(&setup, s) {
            Ok(mut t) => dialogue(&mut t, &helohost, address),
            Err(e) => {
                say(&format!("TLS handshake with {a} failed: {e:?}"));
                Err(Refusal::Temporary)
            }
        };
    }
    say("unable to connect");
    Err(Refusal::Temporary)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        input: std::io::Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Fake {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Fake {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn talk(server: &[u8]) -> (Result<(), Refusal>, Vec<u8>) {
        let mut f = Fake {
            input: std::io::Cursor::new(server.to_vec()),
            output: Vec::new(),
        };
        let r = dialogue(&mut f, b"me.example", b"joe@example.com");
        (r, f.output)
    }

    #[test]
    fn rcpt_answers_map_to_exit_codes() {
        let (r, out) = talk(b"220-hi\r\n220 there\r\n250 ok\r\n250 ok\r\n250 ok\r\n221 bye\r\n");
        assert_eq!(r, Ok(()));
        assert_eq!(
            out,
            b"HELO me.example\r\nMAIL FROM:<>\r\nRCPT TO:<joe@example.com>\r\nQUIT\r\n".to_vec()
        );
        let (r, _) = talk(b"220 hi\r\n250 ok\r\n250 ok\r\n550 no\r\n221 bye\r\n");
        assert_eq!(r, Err(Refusal::Credentials));
        let (r, _) = talk(b"220 hi\r\n250 ok\r\n250 ok\r\n450 later\r\n");
        assert_eq!(r, Err(Refusal::Temporary));
        let (r, _) = talk(b"554 go away\r\n");
        assert_eq!(r, Err(Refusal::Temporary));
        let (r, _) = talk(b"220 hi\r\n250 ok\r\n250 ok\r\n251 forwarded\r\n");
        assert_eq!(r, Err(Refusal::Temporary));
        let (r, _) = talk(b"220 hi\r\n250 ok\r\n250 ok\r\n25");
        assert_eq!(r, Err(Refusal::Temporary));
    }

    #[test]
    fn replies_are_bounded() {
        let long = [
            vec![b'2', b'2', b'0', b' '],
            vec![b'x'; 5000],
            b"\r\n".to_vec(),
        ]
        .concat();
        assert_eq!(read_reply(&mut &long[..]), None);
        let many = b"220-x\r\n".repeat(200);
        assert_eq!(read_reply(&mut &many[..]), None);
        assert_eq!(read_reply(&mut &b"220-a\r\n221 b\r\n"[..]), None);
    }
}
