//! The programs that tell someone about a message: qreceipt (answers
//! `Notice-Requested-Upon-Delivery-To`), qbiff (writes to the user's terminals) and
//! maildirwatch (shows the new messages of a maildir every 30 seconds).

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use super::header::{self, Visitor};
use super::helpers::Done;
use super::maildir;
use crate::date;
use crate::env;
use crate::fail::Class;
use crate::inject::{list, token};
use crate::prog;
use crate::queue::client::Queue;
use crate::sys;

use super::command::quote2;
use std::os::unix::ffi::OsStrExt;

/// What qreceipt learns from the header.
#[derive(Debug, Default)]
struct Receipt<'a> {
    target: &'a [u8],
    message_id: Option<Vec<u8>>,
    asked: bool,
    unparsable: Option<Vec<u8>>,
}

impl Visitor for Receipt<'_> {
    fn field(&mut self, f: &[u8]) {
        if self.unparsable.is_some() {
            return;
        }
        if header::is_named(f, b"message-id") {
            self.message_id = Some(f.to_vec());
        } else if header::is_named(f, b"notice-requested-upon-delivery-to") {
            let target = self.target;
            let mut asked = false;
            let walked = token::parse(f).map(|t| {
                list::addrlist(&t, |a: &mut Vec<token::Token>| {
                    let forward: Vec<token::Token> = a.iter().rev().cloned().collect();
                    asked |= token::unquote(&forward) == target;
                    Ok::<(), ()>(())
                })
            });
            match walked {
                Some(Ok(_)) => self.asked |= asked,
                _ => self.unparsable = Some(f.to_vec()),
            }
        }
    }
    fn end_of_header(&mut self) -> bool {
        false
    }
    fn body(&mut self, _: &[u8]) -> bool {
        false
    }
}

/// The success notice qreceipt sends to `return_path`.
pub fn receipt_text(return_path: &[u8], target: &[u8], message_id: Option<&[u8]>) -> Vec<u8> {
    let q = quote2(return_path);
    let mut m = b"From: DELIVERY NOTICE SYSTEM <".to_vec();
    m.extend_from_slice(&q);
    m.extend_from_slice(b">\nTo: <");
    m.extend_from_slice(&q);
    m.extend_from_slice(
        b">\nSubject: success notice\n\nHi! This is the qreceipt program. \
Your message was delivered to the\nfollowing address: ",
    );
    m.extend_from_slice(target);
    m.extend_from_slice(b". Thanks for asking.\n");
    if let Some(id) = message_id {
        m.extend_from_slice(b"Your ");
        m.extend_from_slice(id);
    }
    m
}

/// qreceipt: reads the message on fd 0 and, when `target` is listed in a
/// `Notice-Requested-Upon-Delivery-To` field and the sender is not a bounce address,
/// sends a success notice to `$SENDER`.
pub fn qreceipt(args: &[Vec<u8>]) -> Done {
    let usage = || Done::say(100, "qreceipt: usage: qreceipt deliveryaddress");
    let Some(target) = args.first() else {
        return usage();
    };
    let Some(return_path) = env::var("SENDER") else {
        return usage();
    };
    let mut r = Receipt {
        target,
        ..Receipt::default()
    };
    if header::walk(&mut io::stdin().lock(), &mut r).is_err() {
        return Done::say(111, "qreceipt: fatal: read error");
    }
    if let Some(f) = r.unparsable {
        let mut t = b"qreceipt: fatal: unable to parse this: ".to_vec();
        t.extend_from_slice(&f);
        return Done { code: 100, text: t };
    }
    if !r.asked || return_path.is_empty() || return_path == b"#@[]" {
        return Done::quiet(0);
    }
    let text = receipt_text(&return_path, target, r.message_id.as_deref());
    let Ok(mut q) = Queue::open(&env::home()) else {
        return Done::say(111, "qreceipt: fatal: unable to fork");
    };
    q.put(&text);
    match q.close(b"", &[return_path]) {
        Ok(()) => Done::quiet(0),
        Err(r) if r.class == Class::Perm => {
            Done::say(100, "qreceipt: fatal: permanent qmail-queue error")
        }
        Err(_) => Done::say(111, "qreceipt: fatal: temporary qmail-queue error"),
    }
}

/// Collects a short text from the Subject and the start of the body.
#[derive(Debug, Default)]
struct Glance {
    limit: usize,
    text: Vec<u8>,
    sender: Option<Vec<u8>>,
    recipient: Option<Vec<u8>>,
    from: Option<Vec<u8>>,
}

impl Glance {
    fn add(&mut self, s: &[u8]) {
        let room = self.limit.saturating_sub(self.text.len());
        self.text
            .extend_from_slice(s.get(..s.len().min(room)).unwrap_or_default());
    }
}

fn value(f: &[u8]) -> Option<Vec<u8>> {
    let i = header::skip_name(f);
    (i < f.len()).then(|| f.get(i..f.len() - 1).unwrap_or_default().to_vec())
}

impl Visitor for Glance {
    fn field(&mut self, f: &[u8]) {
        if header::is_named(f, b"subject") {
            let i = header::skip_name(f);
            self.add(f.get(i..).unwrap_or_default());
        } else if header::is_named(f, b"delivered-to") {
            self.recipient = value(f).or(self.recipient.take());
        } else if header::is_named(f, b"return-path") {
            self.sender = value(f).or(self.sender.take());
        } else if header::is_named(f, b"from") {
            self.from = Some(
                f.get(..f.len().saturating_sub(1))
                    .unwrap_or_default()
                    .to_vec(),
            );
        }
    }
    fn end_of_header(&mut self) -> bool {
        self.text.len() < self.limit
    }
    fn body(&mut self, l: &[u8]) -> bool {
        self.add(l);
        self.text.len() < self.limit
    }
}

fn printable(s: &[u8], other: u8) -> Vec<u8> {
    s.iter()
        .map(|&c| if (32..=126).contains(&c) { c } else { other })
        .collect()
}

/// The lines qbiff writes to a terminal, from the start of the message in `message`.
pub fn biff_text(local: &[u8], sender: &[u8], message: &mut impl io::BufRead) -> Vec<u8> {
    let mut g = Glance {
        limit: 78,
        text: b"    ".to_vec(),
        ..Glance::default()
    };
    let _ = header::walk(message, &mut g);
    let mut tofrom = b"*** TO <".to_vec();
    tofrom.extend_from_slice(local);
    tofrom.extend_from_slice(b"> FROM <");
    tofrom.extend_from_slice(sender);
    tofrom.push(b'>');
    let mut w = b"\r\n\x07".to_vec();
    w.extend_from_slice(&printable(&tofrom, b'_'));
    w.extend_from_slice(b"\r\n");
    w.extend_from_slice(&printable(&g.text, b'/'));
    w.extend_from_slice(b"\r\n");
    w
}

/// The utmp file qbiff reads (glibc's record layout).
pub const UTMP: &str = "/var/run/utmp";
const UT_SIZE: usize = 384;
const UT_LINE: std::ops::Range<usize> = 8..40;
const UT_USER: std::ops::Range<usize> = 44..76;
const USER_PROCESS: i16 = 7;

fn cstr(b: &[u8]) -> &[u8] {
    b.split(|&c| c == 0).next().unwrap_or_default()
}

/// The terminal lines (names under `/dev`) where `user` is logged in, from utmp records.
pub fn user_lines(utmp: &[u8], user: &[u8]) -> Vec<Vec<u8>> {
    utmp.chunks_exact(UT_SIZE)
        .filter(|r| {
            let t = r
                .get(..2)
                .and_then(|b| b.try_into().ok())
                .map(i16::from_ne_bytes);
            t == Some(USER_PROCESS) && r.get(UT_USER).map(cstr) == Some(user)
        })
        .filter_map(|r| r.get(UT_LINE).map(cstr))
        .filter(|l| !l.is_empty() && !l.contains(&b'/') && !l.contains(&b'.'))
        .map(<[u8]>::to_vec)
        .collect()
}

/// qbiff: tells every terminal of `$USER` that has `biff y` about the message on fd 0.
/// Always exits 0.
pub fn qbiff() -> Done {
    let (Some(user), Some(sender), Some(local)) =
        (env::var("USER"), env::var("SENDER"), env::var("LOCAL"))
    else {
        return Done::quiet(0);
    };
    if user.len() > UT_USER.len() {
        return Done::quiet(0);
    }
    let woof = biff_text(&local, &sender, &mut io::stdin().lock());
    let Ok(utmp) = std::fs::read(UTMP) else {
        return Done::quiet(0);
    };
    for l in user_lines(&utmp, &user) {
        let path = std::path::Path::new("/dev").join(std::ffi::OsStr::from_bytes(&l));
        let Ok(mut tty) = OpenOptions::new().append(true).open(&path) else {
            continue;
        };
        let Ok(st) = tty.metadata() else { continue };
        if st.mode() & 0o100 == 0 || st.uid() != sys::uid() {
            continue;
        }
        let _ = tty.write_all(&woof);
    }
    Done::quiet(0)
}

/// What maildirwatch shows for one message.
pub fn watch_entry(message: &mut impl io::BufRead) -> io::Result<Vec<u8>> {
    let mut g = Glance {
        limit: 158,
        ..Glance::default()
    };
    header::walk(message, &mut g)?;
    let mut out = b"FROM ".to_vec();
    out.extend_from_slice(&printable(g.sender.as_deref().unwrap_or(b"?"), b'?'));
    out.extend_from_slice(b" TO <");
    out.extend_from_slice(&printable(g.recipient.as_deref().unwrap_or(b"?"), b'?'));
    out.extend_from_slice(b">\n");
    if let Some(f) = g.from.filter(|f| !f.is_empty()) {
        out.extend_from_slice(b"\x1b[1m");
        out.extend_from_slice(&printable(&f, b'/'));
        out.extend_from_slice(b"\x1b[0m\n");
    }
    out.extend_from_slice(&printable(&g.text, b'/'));
    out.extend_from_slice(b"\n\n");
    Ok(out)
}

/// One screen of maildirwatch for the maildir in the current directory.
pub fn watch_screen() -> Result<Vec<u8>, String> {
    let now = date::now();
    maildir::clean_tmp(now);
    let found = maildir::scan(true, false, now)?;
    let mut screen = b"\x1b[;H\x1b[;J".to_vec();
    for m in found {
        let Ok(f) = File::open(std::ffi::OsStr::from_bytes(&m.path)) else {
            continue;
        };
        let entry = watch_entry(&mut BufReader::new(f))
            .map_err(|_| "trouble reading new message".to_string())?;
        screen.extend_from_slice(&entry);
    }
    Ok(screen)
}

/// maildirwatch: shows the new messages of `$MAILDIR`, refreshing every 30 seconds,
/// until it fails.
pub fn maildirwatch() -> Done {
    let fatal = |t: String| Done::say(111, format!("maildirwatch: fatal: {t}"));
    if let Err(t) = super::convert::maildir_chdir() {
        return fatal(t);
    }
    loop {
        match watch_screen() {
            Ok(s) => {
                let _ = prog::out(&s);
            }
            Err(t) => return fatal(t),
        }
        std::thread::sleep(Duration::from_secs(30));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_text_is_qmails() {
        assert_eq!(
            String::from_utf8(receipt_text(
                b"a b@x.example",
                b"joe@y.example",
                Some(b"Message-ID: <1@x>\n")
            ))
            .unwrap(),
            "From: DELIVERY NOTICE SYSTEM <\"a b\"@x.example>\nTo: <\"a b\"@x.example>\n\
Subject: success notice\n\nHi! This is the qreceipt program. Your message was delivered to the\n\
following address: joe@y.example. Thanks for asking.\nYour Message-ID: <1@x>\n"
        );
    }

    #[test]
    fn receipt_requests_are_found_in_address_lists() {
        for (field, want_asked, parse_ok) in [
            (
                &b"Notice-Requested-Upon-Delivery-To: joe@y.example\n"[..],
                true,
                true,
            ),
            (
                b"Notice-Requested-Upon-Delivery-To: Joe <joe@y.example>, b@c\n",
                true,
                true,
            ),
            (
                b"notice-requested-upon-delivery-to: \"joe\"@y.example (x)\n",
                true,
                true,
            ),
            (
                b"Notice-Requested-Upon-Delivery-To: other@y.example\n",
                false,
                true,
            ),
            (
                b"Notice-Requested-Upon-Delivery-To: (unclosed\n",
                false,
                false,
            ),
        ] {
            let mut r = Receipt {
                target: b"joe@y.example",
                ..Receipt::default()
            };
            r.field(field);
            assert_eq!(r.asked, want_asked, "{:?}", String::from_utf8_lossy(field));
            assert_eq!(
                r.unparsable.is_none(),
                parse_ok,
                "{:?}",
                String::from_utf8_lossy(field)
            );
        }
    }

    #[test]
    fn biff_text_is_qbiffs() {
        let t = biff_text(b"joe", b"a@b", &mut &b"Subject: Hello\nTo: x\n\nbody line\nmore body that is long enough to be cut off at the limit and beyond\n"[..]);
        assert_eq!(
            String::from_utf8(t).unwrap(),
            "\r\n\x07*** TO <joe> FROM <a@b>\r\n    Hello//body line/more body that is long enough to be cut off at the limit \r\n"
        );
        let t = biff_text(b"j\x01", b"\xff", &mut &b""[..]);
        assert_eq!(t, b"\r\n\x07*** TO <j_> FROM <_>\r\n    \r\n");
    }

    #[test]
    fn utmp_records_give_the_users_lines() {
        let rec = |ty: i16, line: &[u8], user: &[u8]| {
            let mut r = vec![0u8; UT_SIZE];
            r[..2].copy_from_slice(&ty.to_ne_bytes());
            r[8..8 + line.len()].copy_from_slice(line);
            r[44..44 + user.len()].copy_from_slice(user);
            r
        };
        let mut u = Vec::new();
        u.extend(rec(7, b"pts/1", b"joe"));
        u.extend(rec(7, b"tty2", b"joe"));
        u.extend(rec(8, b"tty3", b"joe"));
        u.extend(rec(7, b"tty4", b"joey"));
        u.extend(rec(7, b"a.b", b"joe"));
        u.extend(rec(7, b"", b"joe"));
        u.extend(rec(7, b"tty5", b"joe"));
        u.extend_from_slice(&[0u8; 10]);
        assert_eq!(
            user_lines(&u, b"joe"),
            vec![b"tty2".to_vec(), b"tty5".to_vec()]
        );
    }

    #[test]
    fn watch_entries_are_maildirwatchs() {
        let m = b"Return-Path: <a@b>\nDelivered-To: joe@x\nFrom: A <a@b>\nSubject: hi\n\nbody\n";
        assert_eq!(
            String::from_utf8(watch_entry(&mut &m[..]).unwrap()).unwrap(),
            "FROM <a@b> TO <joe@x>\n\x1b[1mFrom: A <a@b>\x1b[0m\nhi//body/\n\n"
        );
        assert_eq!(
            watch_entry(&mut &b"x"[..]).unwrap(),
            b"FROM ? TO <?>\n/x/\n\n"
        );
    }
}
