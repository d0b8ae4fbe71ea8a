//! rblsmtpd (ucspi-tcp 0.88): blocks SMTP clients listed in DNS block lists, or named by
//! `$RBLSMTPD`, by holding a minimal SMTP conversation that rejects every transaction;
//! otherwise runs the real SMTP server.
//!
//! The decision is pure ([`decide`], given a lookup function), the reply is built by
//! [`message`], and the conversation ([`converse`]) works on any reader and writer.

use std::ffi::OsString;
use std::io::{self, BufRead, Write};
use std::net::IpAddr;
use std::os::unix::process::CommandExt;

use sqmail::fail::{Failure, Kind};

/// The block list consulted when no `-r` is given (0.88's compiled-in default; that list
/// has long been shut down).
pub const DEFAULT_RBL: &str = "rbl.maps.vix.com";
/// The default `-t`: seconds the whole blocking conversation may last.
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;
/// The longest reply text kept (bytes).
pub const MAX_TEXT: usize = 200;
/// The longest command line read; the rest of a longer line is skipped.
pub const MAX_LINE: usize = 1000;
/// The text used when a lookup fails under `-c`.
pub const LOOKUP_ERROR: &str = "temporary RBL lookup error";
/// The usage line (0.88's).
pub const USAGE: &str = "rblsmtpd: usage: rblsmtpd [ -b ] [ -R ] [ -t timeout ] [ -r base ] [ -a base ] smtpd [ arg ... ]";

/// What to do with the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Run the SMTP server.
    Accept,
    /// Block temporarily (451) with this text.
    Reject(Vec<u8>),
    /// Block permanently (553) with this text.
    Bounce(Vec<u8>),
}

/// One `-r`/`-a` in command-line order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum List {
    /// `-r base`: a TXT answer lists the client.
    Rbl(String),
    /// `-a base`: an A answer vouches for the client.
    AntiRbl(String),
}

/// The options that shape the decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `-b`: RBL hits are permanent (553); `-B` (default): temporary (451).
    pub bounce: bool,
    /// `-c`: a failed lookup blocks; `-C` (default): it passes.
    pub fail_closed: bool,
    /// `-t`.
    pub timeout_secs: u64,
    /// The lists in order; the default list is appended when no `-r` was given.
    pub lists: Vec<List>,
}

/// A DNS answer: `Ok(records)` (possibly none), `Err(())` on temporary failure.
pub type Answer = Result<Vec<Vec<u8>>, ()>;

/// The name looked up in a list for a client: the reversed address and the base.
pub fn query_name(ip: &str, base: &str) -> String {
    let ip = ip.strip_prefix("::ffff:").unwrap_or(ip);
    match ip.parse::<IpAddr>() {
        Ok(a @ IpAddr::V6(_)) => format!("{}.{base}", sqmail::dns::reversed(a)),
        _ => {
            // 0.88 reverses the dotted text whatever it holds.
            let mut parts: Vec<&str> = ip.split('.').collect();
            parts.reverse();
            let mut s = parts.join(".");
            if !ip.is_empty() {
                s.push('.');
            }
            s.push_str(base);
            s
        }
    }
}

/// Decides, as 0.88 does: `$RBLSMTPD` first; then each list in order until one decides.
/// `txt` and `a` perform the lookups. The second value says a lookup failed, which forces
/// a temporary code.
pub fn decide(
    rblsmtpd: Option<&[u8]>,
    s: &Settings,
    ip: &str,
    txt: &mut dyn FnMut(&str) -> Answer,
    a: &mut dyn FnMut(&str) -> Answer,
) -> (Decision, bool) {
    match rblsmtpd {
        Some([]) => return (Decision::Accept, false),
        Some([b'-', rest @ ..]) => return (Decision::Bounce(rest.to_vec()), false),
        Some(text) => return (Decision::Reject(text.to_vec()), false),
        None => {}
    }
    let mut failed = false;
    for l in &s.lists {
        match l {
            List::Rbl(base) => match txt(&query_name(ip, base)) {
                Err(()) => {
                    failed = true;
                    if s.fail_closed {
                        return (Decision::Reject(LOOKUP_ERROR.as_bytes().to_vec()), failed);
                    }
                }
                Ok(recs) => {
                    let text: Vec<u8> = recs.concat();
                    if !text.is_empty() {
                        let d = if s.bounce {
                            Decision::Bounce(text)
                        } else {
                            Decision::Reject(text)
                        };
                        return (d, failed);
                    }
                }
            },
            List::AntiRbl(base) => match a(&query_name(ip, base)) {
                Err(()) => {
                    failed = true;
                    if !s.fail_closed {
                        return (Decision::Accept, failed);
                    }
                }
                Ok(recs) if !recs.is_empty() => return (Decision::Accept, failed),
                Ok(_) => {}
            },
        }
    }
    (Decision::Accept, failed)
}

/// The reply line without CRLF: `451 text` or `553 text`, the text cut to [`MAX_TEXT`]
/// bytes and every byte outside 32–126 replaced by `?`. `None` for [`Decision::Accept`].
pub fn message(d: &Decision, lookup_failed: bool) -> Option<Vec<u8>> {
    let (code, text) = match d {
        Decision::Accept => return None,
        Decision::Reject(t) => (b"451 ", t),
        Decision::Bounce(t) if lookup_failed => (b"451 ", t),
        Decision::Bounce(t) => (b"553 ", t),
    };
    let mut m = code.to_vec();
    m.extend(text.iter().take(MAX_TEXT));
    for b in &mut m {
        if !(32..=126).contains(b) {
            *b = b'?';
        }
    }
    Some(m)
}

/// Reads one command line (to LF, CR before it dropped, NUL turned into LF, at most
/// [`MAX_LINE`] bytes kept). `None` at end of input.
fn line(r: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (buf.get(..i).unwrap_or_default(), Some(i + 1)),
            None => (buf, None),
        };
        let room = MAX_LINE.saturating_sub(out.len());
        out.extend(chunk.iter().take(room));
        let used = done.unwrap_or(buf.len());
        r.consume(used);
        if done.is_some() {
            if out.last() == Some(&b'\r') {
                out.pop();
            }
            for b in &mut out {
                if *b == 0 {
                    *b = b'\n';
                }
            }
            return Ok(Some(out));
        }
    }
}

/// Holds the blocking conversation: greet, accept HELO/EHLO/MAIL/RSET/NOOP, answer QUIT,
/// reject everything else with `reply`. Returns at QUIT or end of input.
///
/// # Errors
/// A read or write error (the caller just exits).
pub fn converse(r: &mut impl BufRead, w: &mut impl Write, reply: &[u8]) -> io::Result<()> {
    w.write_all(b"220 rblsmtpd.local\r\n")?;
    w.flush()?;
    while let Some(l) = line(r)? {
        let verb: Vec<u8> = l
            .iter()
            .take_while(|&&b| b != b' ')
            .map(u8::to_ascii_lowercase)
            .collect();
        match verb.as_slice() {
            b"quit" => {
                w.write_all(b"221 rblsmtpd.local\r\n")?;
                w.flush()?;
                return Ok(());
            }
            b"helo" | b"ehlo" | b"mail" | b"rset" | b"noop" => {
                w.write_all(b"250 rblsmtpd.local\r\n")?
            }
            _ => {
                w.write_all(reply)?;
                w.write_all(b"\r\n")?;
            }
        }
        w.flush()?;
    }
    Ok(())
}

/// Parses rblsmtpd's options: the settings and the index of the SMTP server's argv.
///
/// # Errors
/// Permanent (usage, exit 100).
pub fn parse(args: &[OsString]) -> Result<(Settings, usize), Failure> {
    let (opts, first) = crate::sslopts::getopt(args, "bBcCt:r:a:")
        .map_err(|_| Failure::perm(Kind::Usage, USAGE))?;
    let mut s = Settings {
        bounce: false,
        fail_closed: false,
        timeout_secs: DEFAULT_TIMEOUT_SECS,
        lists: Vec::new(),
    };
    let mut want_default = true;
    for (c, v) in opts {
        let v = v.unwrap_or_default();
        match c {
            'b' => s.bounce = true,
            'B' => s.bounce = false,
            'c' => s.fail_closed = true,
            'C' => s.fail_closed = false,
            // 0.88's scan_ulong: leading digits, anything else ends the number.
            't' => {
                let digits: String = v.chars().take_while(char::is_ascii_digit).collect();
                s.timeout_secs = digits.parse().unwrap_or(0);
            }
            'r' => {
                s.lists.push(List::Rbl(v));
                want_default = false;
            }
            _ => s.lists.push(List::AntiRbl(v)),
        }
    }
    if want_default {
        s.lists.push(List::Rbl(DEFAULT_RBL.to_string()));
    }
    if args.get(first).is_none() {
        return Err(Failure::perm(Kind::Usage, USAGE));
    }
    Ok((s, first))
}

/// rblsmtpd itself: decides, then either holds the blocking conversation on fds 0/1 (and
/// exits 0) or replaces itself with the SMTP server.
///
/// # Errors
/// Permanent for usage; temporary when the server cannot be run.
pub fn run(args: &[OsString]) -> Result<(), Failure> {
    let (s, first) = parse(args)?;
    let ip = sqmail::env::var("TCPREMOTEIP").unwrap_or_default();
    let ip = String::from_utf8_lossy(&ip).into_owned();
    let mut resolver: Option<Option<sqmail::dns::Resolver>> = None;
    let mut dns = |name: &str, txt: bool| -> Answer {
        let r = resolver.get_or_insert_with(|| sqmail::dns::Resolver::from_env().ok());
        let r = r.as_ref().ok_or(())?;
        if txt {
            r.txt(name).map_err(|_| ())
        } else {
            r.a(name)
                .map(|v| v.iter().map(|a| a.octets().to_vec()).collect())
                .map_err(|_| ())
        }
    };
    let env = sqmail::env::var("RBLSMTPD");
    let (d, failed) = {
        let dns = std::cell::RefCell::new(&mut dns);
        decide(
            env.as_deref(),
            &s,
            &ip,
            &mut |n| (dns.borrow_mut())(n, true),
            &mut |n| (dns.borrow_mut())(n, false),
        )
    };
    if let Some(m) = message(&d, failed) {
        let mut log = format!("rblsmtpd: {ip} pid {}: ", std::process::id()).into_bytes();
        log.extend_from_slice(&m);
        log.push(b'\n');
        sqmail::prog::err(&log);
        let mut out = io::stdout().lock();
        if s.timeout_secs == 0 {
            let _ = out
                .write_all(&[m.as_slice(), b"\r\n"].concat())
                .and_then(|()| out.flush());
            return Ok(());
        }
        sqmail::sys::alarm_exit(u32::try_from(s.timeout_secs).unwrap_or(u32::MAX), 0);
        let mut input = io::BufReader::with_capacity(64, io::stdin().lock());
        let _ = converse(&mut input, &mut out, &m);
        return Ok(());
    }
    let argv = args.get(first..).unwrap_or_default();
    let (prog, rest) = argv
        .split_first()
        .ok_or_else(|| Failure::perm(Kind::Usage, USAGE))?;
    let e = std::process::Command::new(prog).args(rest).exec();
    Err(Failure::temp_io(
        Kind::System,
        format!("unable to run {}", prog.to_string_lossy()),
        e,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(lists: Vec<List>) -> Settings {
        Settings {
            bounce: false,
            fail_closed: false,
            timeout_secs: 60,
            lists,
        }
    }

    #[test]
    fn query_names() {
        assert_eq!(query_name("1.2.3.4", "rbl.test"), "4.3.2.1.rbl.test");
        assert_eq!(query_name("::ffff:1.2.3.4", "rbl.test"), "4.3.2.1.rbl.test");
        assert_eq!(query_name("", "rbl.test"), "rbl.test");
        assert!(query_name("2001:db8::1", "x").ends_with(".8.b.d.0.1.0.0.2.x"));
    }

    #[test]
    fn rblsmtpd_variable_decides_first() {
        let s = settings(vec![List::Rbl("x".into())]);
        let mut never = |_: &str| -> Answer { panic!("no lookup expected") };
        let mut never2 = |_: &str| -> Answer { panic!("no lookup expected") };
        let cases: &[(&[u8], Decision)] = &[
            (b"", Decision::Accept),
            (b"-go away", Decision::Bounce(b"go away".to_vec())),
            (b"later", Decision::Reject(b"later".to_vec())),
        ];
        for (v, want) in cases {
            assert_eq!(
                decide(Some(v), &s, "1.2.3.4", &mut never, &mut never2).0,
                *want
            );
        }
    }

    #[test]
    fn lists_in_order_and_failure_modes() {
        let mut txt = |n: &str| -> Answer {
            match n {
                "4.3.2.1.bl" => Ok(vec![b"listed".to_vec()]),
                "4.3.2.1.broken" => Err(()),
                _ => Ok(vec![]),
            }
        };
        let mut a = |n: &str| -> Answer {
            match n {
                "4.3.2.1.white" => Ok(vec![b"x".to_vec()]),
                "4.3.2.1.broken" => Err(()),
                _ => Ok(vec![]),
            }
        };
        let s = settings(vec![List::AntiRbl("white".into()), List::Rbl("bl".into())]);
        assert_eq!(
            decide(None, &s, "1.2.3.4", &mut txt, &mut a).0,
            Decision::Accept
        );
        let s = settings(vec![List::Rbl("bl".into()), List::AntiRbl("white".into())]);
        assert_eq!(
            decide(None, &s, "1.2.3.4", &mut txt, &mut a).0,
            Decision::Reject(b"listed".to_vec())
        );
        let mut s = settings(vec![List::Rbl("broken".into()), List::Rbl("bl".into())]);
        s.bounce = true;
        let (d, failed) = decide(None, &s, "1.2.3.4", &mut txt, &mut a);
        assert_eq!(d, Decision::Bounce(b"listed".to_vec()));
        assert_eq!(
            message(&d, failed).unwrap(),
            b"451 listed",
            "a failed lookup forces 451"
        );
        s.fail_closed = true;
        assert_eq!(
            decide(None, &s, "1.2.3.4", &mut txt, &mut a).0,
            Decision::Reject(LOOKUP_ERROR.into())
        );
        let s = settings(vec![List::AntiRbl("broken".into()), List::Rbl("bl".into())]);
        assert_eq!(
            decide(None, &s, "1.2.3.4", &mut txt, &mut a).0,
            Decision::Accept,
            "-C: anti-RBL failure accepts"
        );
    }

    #[test]
    fn messages_are_cut_and_cleaned() {
        assert_eq!(
            message(&Decision::Bounce(b"no\x01way".to_vec()), false).unwrap(),
            b"553 no?way"
        );
        let long = vec![b'x'; 300];
        assert_eq!(
            message(&Decision::Reject(long), false).unwrap().len(),
            4 + MAX_TEXT
        );
        assert_eq!(message(&Decision::Accept, false), None);
    }

    #[test]
    fn conversation() {
        let input = b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nnoop\nDATA\r\nQUIT\r\nNOOP\r\n";
        let mut out = Vec::new();
        converse(&mut &input[..], &mut out, b"451 blocked").unwrap();
        assert_eq!(
            out,
            b"220 rblsmtpd.local\r\n250 rblsmtpd.local\r\n250 rblsmtpd.local\r\n451 blocked\r\n\
250 rblsmtpd.local\r\n451 blocked\r\n221 rblsmtpd.local\r\n"
        );
        let long = [vec![b'a'; 5000], b"\r\nquit\r\n".to_vec()].concat();
        let mut out = Vec::new();
        converse(&mut &long[..], &mut out, b"451 x").unwrap();
        assert!(out.ends_with(b"451 x\r\n221 rblsmtpd.local\r\n"));
    }
}
