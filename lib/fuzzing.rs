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

/// The parsers of the authentication programs and of the SMTP policy data: the
/// checkpassword record, `users/authuser`, mailfromrules lines and keys, recipient rules,
/// virtual-user lists and qmail-smtpam's reply reader.
pub fn policy(data: &[u8]) {
    use crate::auth::{authuser, checkpw, vmailuser};
    use crate::policy::{mfrules, recipients, smtpam};
    if let Ok(r) = checkpw::Record::parse(data.to_vec()) {
        assert!(r.login().len() + r.secret().len() + r.challenge().len() < data.len());
    }
    let (a, b) = data.split_at(data.len() / 2);
    let t = authuser::Table::parse(a);
    let _ = t.lookup(b);
    let _ = authuser::Token::parse(b);
    let _ = authuser::check_plain(a, b, a);
    let _ = authuser::check_hash(a, b);
    if let Ok(recs) = mfrules::records(data) {
        assert!(recs.len() <= 256);
    }
    let who = mfrules::Client {
        ip: a.to_vec(),
        host: Some(b.to_vec()),
        info: Some(a.to_vec()),
    };
    assert!(mfrules::keys(&who).len() <= 3 * data.len() + 8);
    let _ = mfrules::entry_matches(a, b);
    let _ = recipients::Recipients::parse(std::path::Path::new("/nonexistent"), data);
    let _ = vmailuser::vuser_of(a, b);
    let _ = vmailuser::candidates(std::path::Path::new("/h"), a, b, false);
    let _ = smtpam::read_reply(&mut &data[..]);
}

/// qmail-remote's reading of what a server sends: SMTP reply lines (grammar and bounds),
/// EHLO keywords, QMTP answers; and the DATA encoding of the same bytes as a message.
pub fn smtpreply(data: &[u8]) {
    use crate::remote::{body, qmtp, reply};
    let mut p = reply::Parser::new();
    let mut lines = 0;
    for line in data.split(|&b| b == b'\n') {
        lines += 1;
        match p.line(line) {
            Ok(Some(r)) => {
                assert!((200..600).contains(&r.code));
                assert!(r.text.len() <= reply::TEXT_MAX);
                assert!(r.lines.len() <= reply::LINES_MAX && r.lines.len() <= lines);
                let _ = reply::Extensions::parse(&r);
                p = reply::Parser::new();
                lines = 0;
            }
            Ok(None) => {}
            Err(_) => {
                p = reply::Parser::new();
                lines = 0;
            }
        }
    }
    let mut it = data.iter().copied();
    if let Ok((letter, text)) = qmtp::answer(|| it.next()) {
        assert!(matches!(letter, b'K' | b'Z' | b'D'));
        assert!(text.len() < qmtp::ANSWER_MAX);
        assert!(text.iter().all(|&c| (32..=126).contains(&c)));
    }
    if let Ok(wire) = body::encode(data) {
        assert!(wire.ends_with(b".\r\n"));
        assert!(
            !wire
                .windows(5)
                .take(wire.len().saturating_sub(5))
                .any(|w| w == b"\r\n.\r\n")
        );
    }
}

/// `control/tlsdestinations`, route values and TLSA records: parsing never panics, and a
/// TLSA record built from the bytes is usable only with known parameters.
pub fn tlsa(data: &[u8]) {
    use crate::remote::{dane, route, tlsdest};
    let lines = control::list_lines(data);
    let host = String::from_utf8_lossy(data.get(..data.len().min(40)).unwrap_or_default());
    let _ = tlsdest::lookup(&lines, &host, "example.org");
    for l in &lines {
        let _ = tlsdest::parse_value(l, tlsdest::Level::Chain);
        if let Ok(r) = route::parse_value(l, route::Proto::Smtp, 25) {
            assert!(r.relay.as_deref().is_none_or(|h| !h.is_empty()));
        }
    }
    let _ = route::domain_ip(&lines, data);
    let _ = tlsdest::unhex(&String::from_utf8_lossy(data));
    if let [usage, selector, matching, rest @ ..] = data {
        let t = crate::dns::Tlsa {
            usage: *usage,
            selector: *selector,
            matching: *matching,
            data: rest.to_vec(),
        };
        if dane::usable(&t) {
            assert!(matches!(t.usage, 2 | 3) && t.selector < 2 && t.matching < 3);
        }
        let cert = rustls::pki_types::CertificateDer::from(rest.to_vec());
        let _ = dane::matches(&t, &cert);
    }
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
