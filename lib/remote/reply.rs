//! SMTP replies as qmail-remote reads them, parsed strictly and without I/O: one line in at
//! a time, a complete [`Reply`] out when its last line arrives.
//!
//! A reply line is three digits (the first 2 to 5), then a space, a hyphen (more lines
//! follow) or nothing, then text. Every line of one reply carries the same code. A line
//! longer than [`LINE_MAX`] bytes, a reply of more than [`LINES_MAX`] lines or anything
//! else is [`Malformed`]. The text kept for reports is qmail's `smtptext`: the lines with
//! every CR removed, each ended by LF, at most [`TEXT_MAX`] bytes.

/// The longest reply line accepted, its line end excluded.
pub const LINE_MAX: usize = 1000;
/// The most lines one reply may have.
pub const LINES_MAX: usize = 100;
/// The most bytes of reply text kept for a report (qmail's HUGESMTPTEXT).
pub const TEXT_MAX: usize = 5000;

/// One complete reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The text of each line after the code and its separator.
    pub lines: Vec<Vec<u8>>,
    /// The whole reply as qmail reports it (see the module documentation).
    pub text: Vec<u8>,
}

/// A reply that does not follow the grammar or its bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed;

/// Collects the lines of one reply.
#[derive(Debug, Default)]
pub struct Parser {
    reply: Reply,
}

impl Parser {
    /// A parser waiting for the first line.
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Takes one line (its LF removed; a final CR is ignored). Returns the reply when this
    /// was its last line.
    ///
    /// # Errors
    /// [`Malformed`] for anything outside the grammar or its bounds.
    pub fn line(&mut self, raw: &[u8]) -> Result<Option<Reply>, Malformed> {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.len() > LINE_MAX || self.reply.lines.len() >= LINES_MAX {
            return Err(Malformed);
        }
        let (code, more, text) = split(line).ok_or(Malformed)?;
        if !self.reply.lines.is_empty() && code != self.reply.code {
            return Err(Malformed);
        }
        self.reply.code = code;
        self.reply.lines.push(text.to_vec());
        for &b in line.iter().filter(|&&b| b != b'\r').chain(b"\n") {
            if self.reply.text.len() < TEXT_MAX {
                self.reply.text.push(b);
            }
        }
        if more {
            Ok(None)
        } else {
            Ok(Some(std::mem::take(&mut self.reply)))
        }
    }
}

fn split(line: &[u8]) -> Option<(u16, bool, &[u8])> {
    let (digits, rest) = line.split_at_checked(3)?;
    let &[a, b, c] = digits else { return None };
    if !(b'2'..=b'5').contains(&a) || !b.is_ascii_digit() || !c.is_ascii_digit() {
        return None;
    }
    let code = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
    match rest.split_first() {
        None => Some((code, false, rest)),
        Some((b' ', t)) => Some((code, false, t)),
        Some((b'-', t)) => Some((code, true, t)),
        Some(_) => None,
    }
}

/// What an EHLO reply offers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    /// SIZE was offered.
    pub size: bool,
    /// 8BITMIME was offered.
    pub eightbit: bool,
    /// SMTPUTF8 was offered.
    pub smtputf8: bool,
    /// STARTTLS was offered.
    pub starttls: bool,
    /// PIPELINING was offered (RFC 2920).
    pub pipelining: bool,
    /// The AUTH mechanisms offered, upper-cased.
    pub auth: Vec<String>,
}

impl Extensions {
    /// The keywords of an EHLO reply: every line after the first.
    pub fn parse(r: &Reply) -> Extensions {
        let mut e = Extensions::default();
        for l in r.lines.iter().skip(1) {
            let s = String::from_utf8_lossy(l).to_ascii_uppercase();
            let mut w = s.split_ascii_whitespace();
            match w.next() {
                Some("SIZE") => e.size = true,
                Some("8BITMIME") => e.eightbit = true,
                Some("SMTPUTF8") => e.smtputf8 = true,
                Some("STARTTLS") => e.starttls = true,
                Some("PIPELINING") => e.pipelining = true,
                Some("AUTH") => e.auth.extend(w.map(str::to_string)),
                Some(k) if k.starts_with("AUTH=") => {
                    e.auth.extend(k.get(5..).map(str::to_string));
                    e.auth.extend(w.map(str::to_string));
                }
                _ => {}
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &[&[u8]]) -> Result<Option<Reply>, Malformed> {
        let mut p = Parser::new();
        let mut last = Ok(None);
        for l in lines {
            last = p.line(l);
            if !matches!(last, Ok(None)) {
                return last;
            }
        }
        last
    }

    #[test]
    fn replies_single_and_multi_line() {
        let r = parse(&[b"250 ok\r"]).unwrap().unwrap();
        assert_eq!((r.code, r.text.as_slice()), (250, &b"250 ok\n"[..]));
        let r = parse(&[b"250-a.example\r", b"250-SIZE 100\r", b"250 8BITMIME\r"])
            .unwrap()
            .unwrap();
        assert_eq!(r.lines.len(), 3);
        assert_eq!(r.text, b"250-a.example\n250-SIZE 100\n250 8BITMIME\n");
        let e = Extensions::parse(&r);
        assert!(e.size && e.eightbit && !e.starttls && !e.pipelining);
        let r = parse(&[b"250-a.example\r", b"250 pipelining\r"])
            .unwrap()
            .unwrap();
        assert!(Extensions::parse(&r).pipelining);
        assert_eq!(parse(&[b"354"]).unwrap().unwrap().code, 354);
        assert_eq!(parse(&[b"250-a"]).unwrap(), None);
    }

    #[test]
    fn malformed_replies_are_refused() {
        for bad in [
            &[&b"25 ok"[..]][..],
            &[b"abc ok"],
            &[b"650 ok"],
            &[b"250x ok"],
            &[b"250-a", b"251 b"],
            &[b""],
        ] {
            assert_eq!(parse(bad), Err(Malformed), "{bad:?}");
        }
    }

    #[test]
    fn bounds_hold_at_the_limit_and_one_past() {
        let mut ok = b"250 ".to_vec();
        ok.resize(LINE_MAX, b'x');
        assert!(parse(&[&ok]).unwrap().is_some());
        ok.push(b'x');
        assert_eq!(parse(&[&ok]), Err(Malformed));
        let mut p = Parser::new();
        for _ in 0..LINES_MAX - 1 {
            assert_eq!(p.line(b"250-x"), Ok(None));
        }
        assert!(p.line(b"250 x").unwrap().is_some());
        let mut p = Parser::new();
        for _ in 0..LINES_MAX {
            assert_eq!(p.line(b"250-x"), Ok(None));
        }
        assert_eq!(p.line(b"250 x"), Err(Malformed));
        let mut p = Parser::new();
        let long = [b'x'; 900];
        let mut line = b"250-".to_vec();
        line.extend_from_slice(&long);
        for _ in 0..10 {
            let _ = p.line(&line);
        }
        let r = p.line(b"250 end").unwrap().unwrap();
        assert_eq!(r.text.len(), TEXT_MAX);
    }

    #[test]
    fn auth_mechanisms_are_collected() {
        let r = parse(&[b"250-x", b"250-AUTH LOGIN cram-md5", b"250 STARTTLS"])
            .unwrap()
            .unwrap();
        let e = Extensions::parse(&r);
        assert_eq!(e.auth, ["LOGIN", "CRAM-MD5"]);
        assert!(e.starttls);
    }
}
