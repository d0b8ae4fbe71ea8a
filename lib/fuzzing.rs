//! Entry points for the fuzz targets in `fuzz/` and for the stable test that replays their
//! seeds. Each one feeds hostile bytes to a parser and checks what must hold whatever the
//! input: no panic, every bound kept, encodings that round-trip.

use crate::{addr, control, envelope};

/// The qmail-queue envelope reader: bounded addresses; what it reads re-encodes to a
/// prefix of the input.
pub fn envelope(data: &[u8]) {
    let mut r = envelope::Reader::new(data);
    let mut sender = None;
    let mut rcpts: Vec<Vec<u8>> = Vec::new();
    loop {
        match r.next_record() {
            Ok(envelope::Record::Sender(s)) => {
                assert!(s.len() < envelope::ADDR_MAX);
                sender = Some(s);
            }
            Ok(envelope::Record::Recipient(t)) => {
                assert!(t.len() < envelope::ADDR_MAX);
                rcpts.push(t);
            }
            Ok(envelope::Record::End) => {
                let refs: Vec<&[u8]> = rcpts.iter().map(Vec::as_slice).collect();
                let again = envelope::encode(sender.as_deref().unwrap_or_default(), &refs);
                assert!(
                    data.starts_with(&again),
                    "an envelope re-encodes to what was read"
                );
                return;
            }
            Ok(envelope::Record::EndNoScan) | Err(_) => return,
        }
    }
}

/// SMTP path parsing, quoting and rewriting.
pub fn address(data: &[u8]) {
    if let Some(p) = addr::parse_path(data) {
        assert!(p.len() <= addr::PATH_MAX);
        let q = addr::quote(&p);
        assert!(q.len() <= 2 * p.len() + 2);
    }
    let r = addr::Rewrite::new(
        &[b"example.org".to_vec()],
        &[b"example.org".to_vec()],
        &[b"v.example:v".to_vec(), b":all".to_vec()],
        b"example.org",
    );
    let _ = r.rewrite(data);
}

/// Control-file and queue-file parsing.
pub fn files(data: &[u8]) {
    let first = control::first_line(data);
    assert!(first.len() <= data.len());
    for l in control::list_lines(data) {
        assert!(!l.is_empty() && !l.starts_with(b"#"));
    }
    let _ = control::leading_number(data);
    let _ = envelope::parse_queued(data);
}

/// users/assign compilation, .qmail parsing and qmail-inject's header tokenizer.
pub fn local(data: &[u8]) {
    let _ = crate::users::records(data);
    if let Ok(lines) = crate::local::dotqmail::parse(data) {
        assert!(lines.len() <= data.len() + 1);
    }
    let _ = crate::local::dotqmail::candidates(b"-", data);
    let _ = crate::inject::token::parse(data);
}

/// qmail-rspawn's reading of qmail-remote's output and qmail-send's bounce paragraphs.
pub fn reports(data: &[u8]) {
    let r = crate::spawn::remote::remote_report(data);
    assert!(matches!(r.first(), Some(b'K' | b'Z' | b'D')));
    assert!(r.len() <= data.len() + 40);
    let (recip, report) = data.split_at(data.len() / 2);
    let p = crate::send::bounce::paragraph(recip, report);
    assert!(p.ends_with(b"\n\n"));
}

/// qmail-smtpd's path and MAIL parameter parsers: bounded addresses, never a panic.
pub fn smtpd_path(data: &[u8]) {
    use crate::smtpd::command;
    let c = command::split(data);
    assert!(c.verb.len() <= data.len());
    if let Some(p) = command::path(data) {
        assert!(p.addr.len() <= addr::PATH_MAX);
        let _ = command::mail_params(p.params);
    }
    let _ = crate::smtpd::filter::wildmat(data.get(..data.len() / 2).unwrap_or_default(), data);
}

/// qmail-smtpd's DATA reader: the end is found only at CRLF.CRLF, output never grows
/// past the input, and what follows the end is left alone.
pub fn smtpd_data(data: &[u8]) {
    use crate::smtpd::data::{Defect, Reader};
    let mut r = Reader::new(64);
    let mut out = Vec::new();
    let n = r.feed(data, &mut out);
    assert!(n <= data.len() && out.len() <= n);
    if r.done() {
        assert!(
            data.get(..n)
                .is_some_and(|d| d == b".\r\n" || d.ends_with(b"\r\n.\r\n"))
        );
    }
    if r.done() {
        let d = data.get(..n).unwrap_or_default();
        let bare = d.iter().enumerate().any(|(i, &c)| {
            (c == b'\n' && (i == 0 || d.get(i - 1) != Some(&b'\r')))
                || (c == b'\r' && d.get(i + 1) != Some(&b'\n'))
        });
        assert_eq!(bare, r.defect() == Some(Defect::BareLineEnd));
    }
}

/// A whole qmail-smtpd session without a network: every line of the input is a command
/// (DATA reads the message that follows); every reply is well formed.
pub fn smtpd_session(data: &[u8]) {
    use crate::smtpd::config::{AuthMode, Config, TlsMode};
    use crate::smtpd::data::Reader;
    use crate::smtpd::filter::RcptHosts;
    use crate::smtpd::policy::{NoDns, Policy};
    use crate::smtpd::session::{Action, AuthOutcome, DataResult, Session};
    let flags = data.first().copied().unwrap_or(0);
    let cfg = Config {
        greeting: b"fuzz.test".to_vec(),
        databytes: 1000,
        rcpthosts: RcptHosts {
            hosts: Some(vec![b"fuzz.test".to_vec(), b".sub.fuzz.test".to_vec()]),
            more: None,
        },
        badmailfrom: vec![b"*@bad.test".to_vec(), b"!ok@bad.test".to_vec()],
        badrcptto: vec![b"no@fuzz.test".to_vec()],
        relayclient: (flags & 1 != 0).then(Vec::new),
        auth: AuthMode::parse(Some(b"+cram"), true, flags & 2 != 0),
        tls: TlsMode::parse(Some(b""), true),
        maxrecipients: 5,
        ..Config::default()
    };
    let mut s = Session::new(cfg, Policy::default());
    let mut rest = data.get(1..).unwrap_or_default();
    let check = |r: &[u8]| {
        assert!(
            r.is_empty()
                || (r.ends_with(b"\r\n")
                    && r.get(..3).is_some_and(|c| c.iter().all(u8::is_ascii_digit)))
        );
    };
    while let Some(i) = rest.iter().position(|&c| c == b'\n') {
        let line = rest.get(..i).unwrap_or_default();
        rest = rest.get(i + 1..).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut step = s.line(line, &mut NoDns);
        loop {
            check(&step.reply);
            match &step.action {
                Action::Auth(c) => {
                    let c = c.clone();
                    let o = if c.secret.first() == Some(&b'y') {
                        AuthOutcome::Accepted
                    } else {
                        AuthOutcome::Refused
                    };
                    step = s.auth_result(&c, o);
                }
                Action::Data => {
                    let mut r = Reader::new(1000);
                    let mut out = Vec::new();
                    let n = r.feed(rest, &mut out);
                    rest = rest.get(n..).unwrap_or_default();
                    let _ = s.header("1 Jan 2000 00:00:00 -0000\n");
                    let content = s.policy().content_verdict();
                    step = s.data_end(DataResult {
                        defect: r.defect(),
                        content,
                        queue: Some(Ok(1)),
                        now: 0,
                    });
                }
                Action::StartTls => {
                    s.tls_started(vec![(b"SSL_PROTOCOL".to_vec(), b"TLSv1.3".to_vec())]);
                    break;
                }
                Action::Quit | Action::Hangup => return,
                Action::Continue => break,
            }
        }
        assert!(s.envelope().1.len() <= 5);
    }
}
