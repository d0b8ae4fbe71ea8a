//! Table tests of qmail-inject's header fixing, byte for byte, against the behaviour
//! qmail-header(5) and qmail-inject(8) document. The settings mirror the manual's
//! examples: default host `silverton`, default and plus domain `berkeley.edu`.

use super::Fatal;
use super::config::{Flags, Settings};
use super::header::Header;
use super::read::{self, Sink};
use super::rewrite::Rules;
use super::token;

/// 26 Sep 1995 04:46:54 UTC.
const START: i64 = 812_090_814;
const DATE: &str = "Date: 26 Sep 1995 04:46:54 -0000\n";
const ID: &str = "Message-ID: <19950926044654.4321.qmail@id.example>\n";
const NOBODY: &str = "Cc: recipient list not shown: ;\n";

fn settings() -> Settings {
    Settings {
        flags: Flags::default(),
        mail_host: None,
        sender_host: None,
        mail_user: b"joe".to_vec(),
        sender_user: b"joe".to_vec(),
        full_name: None,
        rules: Rules::new(b"silverton", b"berkeley.edu", b"berkeley.edu").unwrap(),
        id_host: b"id.example".to_vec(),
        mft: None,
        start: START,
        pid: 4321,
    }
}

struct Collect<'a> {
    header: Header<'a>,
    out: Vec<u8>,
    print: bool,
}

impl Sink for Collect<'_> {
    fn field(&mut self, f: Vec<u8>) -> Result<(), Fatal> {
        self.header.field(f)
    }
    fn end_header(&mut self) -> Result<(), Fatal> {
        let h = self.header.finish(self.print)?;
        self.out.extend(h);
        Ok(())
    }
    fn body(&mut self, b: &[u8]) -> Result<(), Fatal> {
        self.out.extend_from_slice(b);
        Ok(())
    }
}

/// The fixed message, the envelope sender and the header recipients.
fn fix(s: &Settings, msg: &str) -> Result<(String, String, Vec<String>), Fatal> {
    let mut c = Collect {
        header: Header::new(s),
        out: Vec::new(),
        print: false,
    };
    read::split(&mut msg.as_bytes(), read::HEADER_MAX, &mut c)?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let sender = text(c.header.sender.as_deref().unwrap_or_default());
    let to = c.header.recipients(true).iter().map(|r| text(r)).collect();
    Ok((text(&c.out), sender, to))
}

fn rewritten(field: &str) -> String {
    let s = settings();
    let mut h = Header::new(&s);
    h.field(field.as_bytes().to_vec()).unwrap();
    let out = h.finish(false).unwrap();
    let out = String::from_utf8_lossy(&out).into_owned();
    let added = [
        "Date:",
        "Message-ID:",
        "From: joe@silverton.berkeley.edu",
        "Cc: recipient list not shown",
    ];
    out.lines()
        .filter(|l| !added.iter().any(|a| l.starts_with(a)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn addresses_are_completed_as_qmail_header_5_says() {
    for (field, want) in [
        ("To: djb@silverton\n", "To: djb@silverton.berkeley.edu"),
        ("To: eric@mammoth.cs+\n", "To: eric@mammoth.cs.berkeley.edu"),
        (
            "To: djb fred\n",
            "To: djb@silverton.berkeley.edu, fred@silverton.berkeley.edu",
        ),
        ("To: djb@[128.32.183.163]\n", "To: djb@[128.32.183.163]"),
        (
            "To: <@r1.example,@r2.example:joe@x.example>\n",
            "To: <joe@x.example>",
        ),
        ("To: joe@[]\n", "To: joe@[]"),
        ("To: <>\n", "To: <>"),
        ("To: joe@x.example.\n", "To: joe@x.example"),
        ("To: joe@\n", "To: joe@silverton.berkeley.edu"),
        ("To: \"A B\"@x.example\n", "To: \"A B\"@x.example"),
        ("To: A Person <e@f>\n", "To: A Person <e@f.berkeley.edu>"),
        (
            "To: Joe Q. Public <jqp@x.example>\n",
            "To: Joe Q.Public <jqp@x.example>",
        ),
        ("To: a@x.example (Somebody)\n", "To: a@x.example (Somebody)"),
        ("To: (Somebody) a@x.example\n", "To: a@x.example (Somebody)"),
        (
            "To: a (c) b\n",
            "To: a@silverton.berkeley.edu, b@silverton.berkeley.edu (c)",
        ),
        (
            "To: (a (nested) comment) x@y.z\n",
            "To: x@y.z (a nested comment)",
        ),
        (
            "To: random group: g@h, i@j;, k@l\n",
            "To: random group: g@h.berkeley.edu, i@j.berkeley.edu;, k@l.berkeley.edu",
        ),
        (
            "To: undisclosed-recipients: ;\n",
            "To: undisclosed-recipients: ;",
        ),
        ("To:\n", "To:"),
        ("TO :   a@b.c  ,  ,d@e.f\n", "TO: a@b.c, , d@e.f"),
        (
            "To: J\u{f6}rg <j@x.example>\n",
            "To: \"J\u{f6}rg\" <j@x.example>",
        ),
        ("To: a\\.b@x.example\n", "To: a.b@x.example"),
        (
            "To: \"q\\\"uote\"@x.example\n",
            "To: \"q\\\"uote\"@x.example",
        ),
        ("To: user@host+\n", "To: user@host.berkeley.edu"),
        ("To: user+\n", "To: user+@silverton.berkeley.edu"),
        ("Cc: a@b.c,\n d@e.f\n", "Cc: a@b.c, d@e.f"),
        ("From: me\n", "From: me@silverton.berkeley.edu"),
        ("Reply-To: <x@y>\n", "Reply-To: <x@y.berkeley.edu>"),
        (
            "Sender: x (Name)\n",
            "Sender: x@silverton.berkeley.edu (Name)",
        ),
        ("Errors-To: x\n", "Errors-To: x@silverton.berkeley.edu"),
        (
            "Return-Receipt-To: x\n",
            "Return-Receipt-To: x@silverton.berkeley.edu",
        ),
        ("Subject: a, b\n", "Subject: a, b"),
        ("X-To: a\n", "X-To: a"),
    ] {
        assert_eq!(rewritten(field), want, "{field:?}");
    }
}

#[test]
fn long_address_lists_fold_after_commas_within_80_bytes() {
    let list: Vec<String> = (0..8)
        .map(|i| format!("user{i}@some-host.example"))
        .collect();
    let got = rewritten(&format!("To: {}\n", list.join(",")));
    let want = "To: user0@some-host.example, user1@some-host.example, user2@some-host.example,\n  \
                user3@some-host.example, user4@some-host.example, user5@some-host.example,\n  \
                user6@some-host.example, user7@some-host.example";
    assert_eq!(got, want);
    for line in got.lines() {
        assert!(line.len() <= 80, "{line:?}");
    }
    // One address longer than a line is never broken.
    let long = format!("To: {}@x.example\n", "a".repeat(100));
    assert_eq!(rewritten(&long), long.trim_end());
}

#[test]
fn missing_fields_are_added_in_front() {
    let (m, sender, to) = fix(&settings(), "Subject: hi\n\nbody\n").unwrap();
    assert_eq!(
        m,
        format!("{DATE}{ID}From: joe@silverton.berkeley.edu\n{NOBODY}Subject: hi\n\nbody\n")
    );
    assert_eq!(sender, "joe@silverton.berkeley.edu");
    assert!(to.is_empty());

    let mut s = settings();
    s.full_name = Some(b"Joe \"Hacker\" User".to_vec());
    s.mail_host = Some(b"mx".to_vec());
    s.sender_host = Some(b"mx".to_vec());
    let (m, sender, _) = fix(&s, "To: x@y.z\n\nb").unwrap();
    let want = format!(
        "{DATE}{ID}From: \"Joe \\\"Hacker\\\" User\" <joe@mx.berkeley.edu>\nTo: x@y.z\n\nb\n"
    );
    assert_eq!(m, want);
    assert_eq!(sender, "joe@mx.berkeley.edu");

    s.flags.name_comment = true;
    s.mail_user = b"joe user".to_vec();
    let (m, sender, _) = fix(&s, "To: x@y.z\n\n").unwrap();
    let want = format!(
        "{DATE}{ID}From: \"joe user\"@mx.berkeley.edu (Joe \\\"Hacker\\\" User)\nTo: x@y.z\n\n"
    );
    assert_eq!(m, want);
    assert_eq!(
        sender, "joe@mx.berkeley.edu",
        "the envelope user is QMAILSUSER or the user it defaulted from"
    );
}

#[test]
fn kept_fields_and_dropped_fields() {
    let msg = "Return-Path: <bounce@x.example>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <a@b>\n\
               From: Me <me@x.example>\nTo: a, b@c.example\nCc: d\nBcc: hidden@e.example\n\
               Apparently-To: f@g.example\nContent-Length: 99\nX-Other: kept\n\nbody\n";
    let (m, sender, to) = fix(&settings(), msg).unwrap();
    let want = "Date: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <a@b>\nFrom: Me <me@x.example>\n\
                To: a@silverton.berkeley.edu, b@c.example\nCc: d@silverton.berkeley.edu\n\
                Apparently-To: f@g.example\nX-Other: kept\n\nbody\n";
    assert_eq!(m, want);
    assert_eq!(sender, "bounce@x.example");
    // Each field's addresses arrive right to left, as token822_addrlist walks them.
    assert_eq!(
        to,
        [
            "b@c.example",
            "a@silverton.berkeley.edu",
            "d@silverton.berkeley.edu",
            "hidden@e.example",
            "f@g.example"
        ]
    );
}

#[test]
fn qmailinject_letters_change_the_header_and_sender() {
    let msg = "Return-Path: <bounce@x.example>\nFrom: a@b.example\nMessage-ID: <old@id>\nTo: t@u.example\n\n";
    let mut s = settings();
    s.flags = Flags::parse(b"sfi");
    let (m, sender, _) = fix(&s, msg).unwrap();
    assert_eq!(
        m,
        format!("{DATE}{ID}From: joe@silverton.berkeley.edu\nTo: t@u.example\n\n")
    );
    assert_eq!(sender, "joe@silverton.berkeley.edu");

    s.flags = Flags::parse(b"r");
    assert_eq!(
        fix(&s, "To: t@u.example\n\n").unwrap().1,
        "joe-@silverton.berkeley.edu-@[]"
    );
    assert_eq!(fix(&s, msg).unwrap().1, "bounce@x.example-@[]");
    s.flags = Flags::parse(b"m");
    assert_eq!(
        fix(&s, "To: t@u.example\n\n").unwrap().1,
        "joe-812090814.4321@silverton.berkeley.edu"
    );
    s.flags = Flags::parse(b"mr");
    s.sender_user = b"list".to_vec();
    s.sender_host = Some(b"lists.example".to_vec());
    assert_eq!(
        fix(&s, "To: t@u.example\n\n").unwrap().1,
        "list-812090814.4321-@lists.example-@[]"
    );
}

#[test]
fn resent_messages_get_resent_fields_and_recipients() {
    let msg = "From: a@b.example\nTo: orig@x.example\nResent-To: new@y.example\nResent-Bcc: hid@y.example\n\nb\n";
    let (m, _, to) = fix(&settings(), msg).unwrap();
    let want = format!(
        "Resent-{DATE}Resent-{ID}Resent-From: joe@silverton.berkeley.edu\nFrom: a@b.example\n\
         To: orig@x.example\nResent-To: new@y.example\n\nb\n"
    );
    assert_eq!(m, want);
    assert_eq!(to, ["new@y.example", "hid@y.example"]);
    let (m, _, _) = fix(&settings(), "Resent-Message-ID: <x@y>\n\n").unwrap();
    assert_eq!(
        m,
        format!(
            "Resent-{DATE}Resent-From: joe@silverton.berkeley.edu\nResent-Cc: recipient list not shown: ;\nResent-Message-ID: <x@y>\n\n"
        )
    );
}

#[test]
fn mail_followup_to_is_added_for_listed_lists() {
    let mut s = settings();
    s.mft = Some([b"list@x.example".to_vec()].into_iter().collect());
    let msg = "To: a@x.example, LIST@x.example\nCc: \"c d\"@x.example\n\n";
    let (m, _, _) = fix(&s, msg).unwrap();
    let want = format!(
        "{DATE}{ID}From: joe@silverton.berkeley.edu\nMail-Followup-To: \"c d\"@x.example,\n  a@x.example,\n  LIST@x.example\n\
         To: a@x.example, LIST@x.example\nCc: \"c d\"@x.example\n\n"
    );
    assert_eq!(m, want);
    let (m, _, _) = fix(&s, "To: other@x.example\n\n").unwrap();
    assert!(!m.contains("Mail-Followup-To"));
    let (m, _, _) = fix(&s, "To: list@x.example\nMail-Followup-To: me@x.example\n\n").unwrap();
    assert_eq!(m.matches("Mail-Followup-To").count(), 1);
}

#[test]
fn print_mode_shows_the_return_path() {
    let s = settings();
    let mut c = Collect {
        header: Header::new(&s),
        out: Vec::new(),
        print: true,
    };
    c.header.set_sender(b"we ird@x.example").unwrap();
    read::split(&mut &b"To: a@b.c\n\n"[..], read::HEADER_MAX, &mut c).unwrap();
    assert!(
        c.out
            .starts_with(b"Return-Path: <\"we ird\"@x.example>\nDate: ")
    );
}

#[test]
fn arguments_and_sender_option_are_rewritten() {
    let s = settings();
    let mut h = Header::new(&s);
    h.arg(b"fred").unwrap();
    h.arg(b"odd name@host").unwrap();
    h.arg(b"a,b@c.example").unwrap();
    h.arg(b"").unwrap();
    assert_eq!(
        h.recipients(false),
        [
            &b"fred@silverton.berkeley.edu"[..],
            b"odd name@host.berkeley.edu",
            b"a,b@c.example",
            b""
        ]
    );
    h.set_sender(b"").unwrap();
    assert_eq!(h.sender.as_deref(), Some(&b""[..]));
    h.set_sender(b"me").unwrap();
    assert_eq!(h.sender.as_deref(), Some(&b"me@silverton.berkeley.edu"[..]));
    let e = h.arg(b"a@(b").unwrap_err();
    assert_eq!(
        e.message("qmail-inject"),
        b"qmail-inject: fatal: unable to parse address: a@(b\n"
    );
}

#[test]
fn bad_fields_are_permanent_errors_with_qmails_texts() {
    let s = settings();
    for (field, msg) in [
        (
            "To: (unclosed\n",
            "qmail-inject: fatal: unable to parse this line:\nTo: (unclosed\n",
        ),
        (
            "To: )a\n",
            "qmail-inject: fatal: unable to parse this line:\nTo: )a\n",
        ),
        (
            "From: x@y.z>\n",
            "qmail-inject: fatal: unable to parse this line:\nFrom: x@y.z>\n",
        ),
        (
            "Cc: a: b\n",
            "qmail-inject: fatal: unable to parse this line:\nCc: a: b\n",
        ),
        (
            "Bad Name: x\n",
            "qmail-inject: fatal: invalid header field: Bad Name: x\n",
        ),
    ] {
        let e = Header::new(&s)
            .field(field.as_bytes().to_vec())
            .unwrap_err();
        assert_eq!(e.exit_code(), 100, "{field:?}");
        assert_eq!(String::from_utf8_lossy(&e.message("qmail-inject")), msg);
    }
}

#[test]
fn nul_and_8bit_bytes_pass_through() {
    let s = settings();
    let mut c = Collect {
        header: Header::new(&s),
        out: Vec::new(),
        print: false,
    };
    let msg = b"X-Bin: \0\xff\xfe\nTo: a\0b@x.example\n\n\0body\xff";
    read::split(&mut &msg[..], read::HEADER_MAX, &mut c).unwrap();
    assert!(
        c.out
            .ends_with(b"X-Bin: \0\xff\xfe\nTo: \"a\0b\"@x.example\n\n\0body\xff\n")
    );
    assert_eq!(
        c.header.recipients(true),
        [b"a".to_vec()],
        "an envelope address ends at a NUL, as in qmail"
    );
}

#[test]
fn token_round_trips() {
    for (text, want) in [
        (&b"To: a@b"[..], &b"To: a@b\n"[..]),
        (
            b"To: \"x\\\\y\" <[1.2.3.4]>",
            b"To: \"x\\\\y\" <[1.2.3.4]>\n",
        ),
        (b"S: a\\)b", b"S: \"a\\)b\"\n"),
    ] {
        let t = token::parse(text).unwrap();
        assert_eq!(token::unparse(&t, 80), want);
    }
    assert_eq!(
        token::parse(b"a]"),
        Some(vec![token::Token::word(token::Kind::Quote, b"a]")])
    );
    assert_eq!(token::parse(b"]"), None);
    assert_eq!(token::parse(b"\"abc"), None);
    assert_eq!(token::parse(b"[abc\\"), None);
}

#[test]
fn rewriting_cannot_grow_the_header_without_bound() {
    let mut s = settings();
    // A default host of 1 MiB (as a long QMAILDEFAULTHOST could give) makes every bare
    // box name 1 MiB long; a few hundred of them would need gigabytes.
    let host = "h".repeat(1 << 20);
    s.rules = Rules::new(host.as_bytes(), b"example", b"example").unwrap();
    let few = format!("To: {}\n\n", ["a"; 10].join(","));
    assert!(fix(&s, &few).is_ok());
    let many = format!("To: {}\n\n", ["a"; 400].join(","));
    let e = fix(&s, &many).unwrap_err();
    assert_eq!(
        String::from_utf8_lossy(&e.message("qmail-inject")),
        "qmail-inject: fatal: header too long after rewriting (limit 67108864 bytes)\n"
    );
    assert_eq!(e.exit_code(), 100);
}
