//! qmail-remote, the real binary, against scripted SMTP and QMTP servers (threads on
//! loopback listeners), Postfix's smtp-sink, dnsmasq for MX records, and a TLS server
//! made with rustls and rcgen certificates; then once end to end through qmail-send and
//! qmail-rspawn.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::harness::{Daemons, Instance, Owned, Scratch, qmail_queue, run_with, wait_for};

const MSG: &[u8] = b"From: a@example.org\nSubject: hi\n\n.leading dot\nline\n";
/// MSG as it must arrive over SMTP.
const WIRE: &[u8] = b"From: a@example.org\r\nSubject: hi\r\n\r\n..leading dot\r\nline\r\n.\r\n";

/// Runs qmail-remote of `inst` with `args`, the message on fd 0 and extra environment.
fn remote(inst: &Instance, args: &[&str], msg: &[u8], env: &[(&str, &str)]) -> String {
    let mut c = inst.cmd("qmail-remote");
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = run_with(c, msg, 60);
    assert_eq!(o.status.code(), Some(0), "qmail-remote always exits 0");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A scripted server's view of one session: every line it read, and the DATA bytes.
#[derive(Default, Debug)]
struct Seen {
    lines: Vec<String>,
    data: Vec<u8>,
    /// For each line, how many more whole lines had already arrived behind it.
    ahead: Vec<usize>,
}

type Responder = Box<dyn FnMut(&str) -> Option<String> + Send>;

/// A one-connection SMTP server: sends `greeting`, then answers each command line with
/// what `respond` returns (`None`: close at once). After a 354 reply it reads the data up
/// to `.CRLF` and answers the pseudo-command `<DATA>`.
fn smtp_server(greeting: &str, respond: Responder) -> (u16, JoinHandle<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let greeting = greeting.to_string();
    let h = std::thread::spawn(move || {
        let mut respond = respond;
        let mut seen = Seen::default();
        let Ok((s, _)) = l.accept() else { return seen };
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        if w.write_all(greeting.as_bytes()).is_err() {
            return seen;
        }
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return seen;
            }
            let cmd = line.trim_end().to_string();
            seen.lines.push(cmd.clone());
            seen.ahead
                .push(r.buffer().iter().filter(|&&b| b == b'\n').count());
            let Some(reply) = respond(&cmd) else {
                return seen;
            };
            if w.write_all(reply.as_bytes()).is_err() {
                return seen;
            }
            if reply.starts_with("354") {
                loop {
                    let mut l = Vec::new();
                    if r.read_until(b'\n', &mut l).unwrap_or(0) == 0 {
                        return seen;
                    }
                    seen.data.extend_from_slice(&l);
                    if l == b".\r\n" {
                        break;
                    }
                }
                let Some(reply) = respond("<DATA>") else {
                    return seen;
                };
                let _ = w.write_all(reply.as_bytes());
            }
        }
    });
    (port, h)
}

/// A responder accepting everything, with `overrides` (command prefix, reply) first.
fn answers(overrides: &[(&str, &str)]) -> Responder {
    let o: Vec<(String, String)> = overrides
        .iter()
        .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
        .collect();
    Box::new(move |cmd: &str| {
        for (prefix, reply) in &o {
            if cmd.starts_with(prefix.as_str()) {
                if reply == "CLOSE" {
                    return None;
                }
                return Some(reply.clone());
            }
        }
        Some(
            match cmd.split(' ').next().unwrap_or("") {
                "EHLO" => "250-relay.test\r\n250 PIPELINING\r\n",
                "DATA" => "354 go ahead\r\n",
                "<DATA>" => "250 ok 1234 qp 5\r\n",
                "QUIT" => "221 bye\r\n",
                _ => "250 ok\r\n",
            }
            .to_string(),
        )
    })
}

/// An instance routing `example.test` to 127.0.0.1 on `port`.
fn routed(port: u16) -> Instance {
    let inst = Instance::new();
    inst.control(
        "smtproutes",
        format!("example.test:127.0.0.1;{port}\n").as_bytes(),
    );
    inst
}

fn deliver(overrides: &[(&str, &str)], recips: &[&str]) -> (String, Seen) {
    let (port, h) = smtp_server("220 relay.test ESMTP\r\n", answers(overrides));
    let inst = routed(port);
    let mut args = vec!["example.test", "a@example.org"];
    args.extend_from_slice(recips);
    let out = remote(&inst, &args, MSG, &[]);
    (out, h.join().unwrap())
}

#[test]
fn accepted_message_is_byte_exact_with_crlf_and_dot_stuffing() {
    let (out, seen) = deliver(&[], &["b@example.test"]);
    assert_eq!(
        out,
        "r\0K127.0.0.1 accepted message.\nRemote host said: 250 ok 1234 qp 5\n\0"
    );
    assert_eq!(
        seen.lines,
        [
            "EHLO test.example",
            "MAIL FROM:<a@example.org>",
            "RCPT TO:<b@example.test>",
            "DATA",
            "QUIT"
        ]
    );
    assert_eq!(seen.data, WIRE);
}

#[test]
fn every_reply_outcome_has_qmails_report() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("MAIL", "553 no thanks\r\n")],
            "DConnected to 127.0.0.1 but sender was rejected.\nRemote host said: 553 no thanks\n\0",
        ),
        (
            &[("MAIL", "451 later\r\n")],
            "ZConnected to 127.0.0.1 but sender was greylisted.\nRemote host said: 451 later\n\0",
        ),
        (
            &[("RCPT", "550 5.1.1 unknown\r\n")],
            "h127.0.0.1 does not like recipient.\nRemote host said: 550 5.1.1 unknown\n\0\
             DGiving up on 127.0.0.1.\n\0",
        ),
        (
            &[("RCPT", "450 greylisted\r\n")],
            "s127.0.0.1 probably greylisting.\nRemote host said: 450 greylisted\n\0\
             DGiving up on 127.0.0.1.\n\0",
        ),
        (
            &[("RCPT", "452 full\r\n")],
            "s127.0.0.1 does not like recipient.\nRemote host said: 452 full\n\0\
             DGiving up on 127.0.0.1.\n\0",
        ),
        (
            &[("DATA", "554 no data\r\n")],
            "r\0D127.0.0.1 failed on DATA command.\nRemote host said: 554 no data\n\0",
        ),
        (
            &[("DATA", "451 grey\r\n")],
            "r\0Z127.0.0.1 message was greylisted.\nRemote host said: 451 grey\n\0",
        ),
        (
            &[("DATA", "452 busy\r\n")],
            "r\0Z127.0.0.1 failed on DATA command.\nRemote host said: 452 busy\n\0",
        ),
        (
            &[("<DATA>", "552 too big\r\n")],
            "r\0D127.0.0.1 failed after I sent the message.\nRemote host said: 552 too big\n\0",
        ),
        (
            &[("<DATA>", "451 try later\r\n")],
            "r\0Z127.0.0.1 failed after I sent the message.\nRemote host said: 451 try later\n\0",
        ),
        (
            &[("<DATA>", "CLOSE")],
            "r\0ZConnected to 127.0.0.1 but connection died. Possible duplicate! (#4.4.2)\n\0",
        ),
        (
            &[("RCPT", "CLOSE")],
            "ZConnected to 127.0.0.1 but connection died. (#4.4.2)\n\0",
        ),
        (
            &[("EHLO", "502 no\r\n"), ("HELO", "550 who?\r\n")],
            "DConnected to 127.0.0.1 but my name was rejected.\nRemote host said: 550 who?\n\0",
        ),
        (
            &[("EHLO", "502 no\r\n"), ("HELO", "421 busy\r\n")],
            "ZConnected to 127.0.0.1 but my name was rejected.\nRemote host said: 421 busy\n\0",
        ),
        (
            &[("MAIL", "250-fine\r\n251 mismatched\r\n")],
            "ZConnected to 127.0.0.1 but its SMTP reply was malformed. (#4.4.2)\n\0",
        ),
        (
            &[("MAIL", "250 a\0b\r\n"), ("RCPT", "550 x\0y\r\n")],
            "h127.0.0.1 does not like recipient.\nRemote host said: 550 x?y\n\0\
             DGiving up on 127.0.0.1.\n\0",
        ),
    ];
    for (overrides, want) in cases {
        let (out, _) = deliver(overrides, &["b@example.test"]);
        assert_eq!(&out, want, "{overrides:?}");
    }
}

#[test]
fn envelope_is_pipelined_when_offered_and_judged_reply_by_reply() {
    let recips = ["b@example.test", "c@example.test"];
    // The envelope's commands as the server read them, each with the number of whole
    // lines that had already arrived behind it.
    let envelope = |ehlo: &str| {
        let (out, seen) = deliver(&[("EHLO", ehlo)], &recips);
        assert!(
            out.starts_with("r\0r\0K127.0.0.1 accepted message."),
            "{out}"
        );
        let at = seen
            .lines
            .iter()
            .position(|l| l.starts_with("MAIL"))
            .unwrap();
        let lines: Vec<(String, usize)> = (at..at + 4)
            .map(|i| (seen.lines[i].clone(), seen.ahead[i]))
            .collect();
        lines
    };
    let line = |l: &str, n| (l.to_string(), n);
    // Offered: MAIL, both RCPTs and DATA arrive in one write.
    assert_eq!(
        envelope("250-relay.test\r\n250 PIPELINING\r\n"),
        [
            line("MAIL FROM:<a@example.org>", 3),
            line("RCPT TO:<b@example.test>", 2),
            line("RCPT TO:<c@example.test>", 1),
            line("DATA", 0)
        ]
    );
    // Not offered: one command at a time.
    assert_eq!(
        envelope("250 relay.test\r\n"),
        [
            line("MAIL FROM:<a@example.org>", 0),
            line("RCPT TO:<b@example.test>", 0),
            line("RCPT TO:<c@example.test>", 0),
            line("DATA", 0)
        ]
    );
    // A refused sender: the recipients' and DATA's replies are read past, nothing is sent.
    let (out, seen) = deliver(
        &[
            ("MAIL", "553 no thanks\r\n"),
            ("RCPT", "503 need MAIL\r\n"),
            ("DATA", "503 need RCPT\r\n"),
        ],
        &recips,
    );
    assert_eq!(
        out,
        "DConnected to 127.0.0.1 but sender was rejected.\nRemote host said: 553 no thanks\n\0"
    );
    assert!(seen.data.is_empty());
    // One recipient refused: the other still gets the message.
    let (out, seen) = deliver(&[("RCPT TO:<b@", "550 unknown\r\n")], &recips);
    assert!(
        out.starts_with(
            "h127.0.0.1 does not like recipient.\nRemote host said: 550 unknown\n\0r\0K"
        ),
        "{out}"
    );
    assert_eq!(seen.data, WIRE);
    // Every recipient refused, yet DATA answered 354: the message is ended empty at once.
    let (out, seen) = deliver(&[("RCPT", "550 unknown\r\n")], &recips);
    assert!(out.ends_with("DGiving up on 127.0.0.1.\n\0"), "{out}");
    assert_eq!(seen.data, b".\r\n");
}

#[test]
fn helo_is_used_when_ehlo_is_refused() {
    let (out, seen) = deliver(&[("EHLO", "500 what\r\n")], &["b@example.test"]);
    assert!(
        out.starts_with("r\0K127.0.0.1 accepted message."),
        "{out:?}"
    );
    assert_eq!(&seen.lines[..2], ["EHLO test.example", "HELO test.example"]);
}

#[test]
fn greetings_decide_before_anything_is_sent() {
    for (greeting, want) in [
        (
            "554 go away\r\n",
            "DConnected to 127.0.0.1 but sender was rejected.\nRemote host said: 554 go away\n\0",
        ),
        (
            "421 busy\r\n",
            "ZConnected to 127.0.0.1 but greylisted.\nRemote host said: 421 busy\n\0",
        ),
        (
            "452 not now\r\n",
            "ZConnected to 127.0.0.1 but greeting failed.\nRemote host said: 452 not now\n\0",
        ),
        (
            "250 odd\r\n",
            "ZConnected to 127.0.0.1 but greeting failed.\nRemote host said: 250 odd\n\0",
        ),
    ] {
        let (port, h) = smtp_server(greeting, answers(&[]));
        let inst = routed(port);
        let out = remote(
            &inst,
            &["example.test", "a@example.org", "b@example.test"],
            MSG,
            &[],
        );
        assert_eq!(out, want, "{greeting:?}");
        let seen = h.join().unwrap();
        assert!(seen.lines.iter().all(|l| l == "QUIT"), "{:?}", seen.lines);
    }
}

#[test]
fn several_recipients_get_one_record_each() {
    let (port, h) = smtp_server(
        "220 x\r\n",
        Box::new(|cmd: &str| {
            Some(
                match cmd {
                    c if c.starts_with("EHLO") => "250 x\r\n",
                    "RCPT TO:<no@example.test>" => "550 no\r\n",
                    "RCPT TO:<later@example.test>" => "451 later\r\n",
                    "DATA" => "354 go\r\n",
                    _ => "250 fine\r\n",
                }
                .to_string(),
            )
        }),
    );
    let inst = routed(port);
    let out = remote(
        &inst,
        &[
            "example.test",
            "a@example.org",
            "yes@example.test",
            "no@example.test",
            "later@example.test",
            "\"odd user\"@example.test",
        ],
        MSG,
        &[],
    );
    assert_eq!(
        out,
        "r\0h127.0.0.1 does not like recipient.\nRemote host said: 550 no\n\0\
         s127.0.0.1 does not like recipient.\nRemote host said: 451 later\n\0r\0\
         K127.0.0.1 accepted message.\nRemote host said: 250 fine\n\0"
    );
    let seen = h.join().unwrap();
    assert!(
        seen.lines
            .contains(&"RCPT TO:<\"\\\"odd user\\\"\"@example.test>".to_string())
    );
}

#[test]
fn refused_connection_and_partial_lines_and_bad_usage() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let inst = routed(port);
    let args = ["example.test", "a@example.org", "b@example.test"];
    assert_eq!(
        remote(&inst, &args, MSG, &[]),
        "ZSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n\0"
    );
    assert_eq!(
        remote(&inst, &args, b"no final newline", &[]),
        "DSMTP cannot transfer messages with partial final lines. (#5.6.2)\n\0"
    );
    assert_eq!(
        remote(&inst, &["example.test", "a@example.org"], MSG, &[]),
        "Dqmail-remote was invoked improperly. (#5.3.5)\n\0"
    );
    inst.control("smtproutes", b"example.test:relay.example:2525\n");
    assert_eq!(
        remote(&inst, &args, MSG, &[]),
        "ZUnusable route in control files: relay.example:2525; the port separator is ;. (#4.3.0)\n\0"
    );
}

#[test]
fn a_silent_server_times_out() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let hold = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut b = [0u8; 1];
        let _ = (&s).read(&mut b);
        drop(s);
    });
    let inst = routed(port);
    inst.control("timeoutremote", b"1\n");
    let out = remote(
        &inst,
        &["example.test", "a@example.org", "b@example.test"],
        MSG,
        &[],
    );
    assert_eq!(
        out,
        "ZConnected to 127.0.0.1 but connection died. (#4.4.2)\n\0"
    );
    hold.join().unwrap();
}

#[test]
fn overlong_reply_lines_are_malformed() {
    let long = format!("250 {}\r\n", "x".repeat(1200));
    let (out, _) = deliver(&[("MAIL", long.as_str())], &["b@example.test"]);
    assert_eq!(
        out,
        "ZConnected to 127.0.0.1 but its SMTP reply was malformed. (#4.4.2)\n\0"
    );
}

#[test]
fn size_8bitmime_and_smtputf8_follow_the_ehlo_reply() {
    let ehlo = "250-x\r\n250-SIZE 1000000\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n";
    let (port, h) = smtp_server("220 x\r\n", answers(&[("EHLO", ehlo)]));
    let inst = routed(port);
    let msg = "Subject: caf\u{e9}\n\nbody\n".as_bytes();
    let out = remote(
        &inst,
        &["example.test", "j\u{f6}rg@example.org", "b@example.test"],
        msg,
        &[],
    );
    assert!(out.starts_with("r\0K"), "{out:?}");
    let seen = h.join().unwrap();
    let wire_len = msg.len() + 3 + 3;
    assert_eq!(
        seen.lines[1],
        format!("MAIL FROM:<j\u{f6}rg@example.org> SIZE={wire_len} BODY=8BITMIME SMTPUTF8")
    );
    let (out, _) = deliver(&[], &["b\u{fc}@example.test"]);
    assert_eq!(
        out,
        "DConnected to 127.0.0.1 but it does not support SMTPUTF8, which this message needs (#5.6.7).\n\0"
    );
}

fn auth_server(mech: &'static str) -> (u16, JoinHandle<Seen>) {
    let mut step = 0;
    smtp_server(
        "220 x\r\n",
        Box::new(move |cmd: &str| {
            Some(match cmd {
                c if c.starts_with("EHLO") => format!("250-x\r\n250 AUTH {mech}\r\n"),
                c if c.starts_with("AUTH CRAM-MD5") => {
                    "334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n".into()
                }
                c if c.starts_with("AUTH") => "334 \r\n".into(),
                "DATA" => "354 go\r\n".into(),
                c if c.starts_with("MAIL")
                    || c.starts_with("RCPT")
                    || c == "<DATA>"
                    || c == "QUIT" =>
                {
                    "250 ok\r\n".into()
                }
                _ => {
                    step += 1;
                    if mech == "LOGIN" && step == 1 {
                        "334 UGFzc3dvcmQ6\r\n".into()
                    } else {
                        "235 welcome\r\n".into()
                    }
                }
            })
        }),
    )
}

#[test]
fn auth_plain_login_and_cram_md5_from_smtproutes() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.decode(s).unwrap();
    for mech in ["PLAIN", "LOGIN", "CRAM-MD5"] {
        let (port, h) = auth_server(mech);
        let inst = Instance::new();
        inst.control(
            "smtproutes",
            format!(":127.0.0.1;{port}|tim|tanstaaftanstaaf\n").as_bytes(),
        );
        inst.control("authcleartext", b"127.0.0.1\n");
        let out = remote(
            &inst,
            &["example.test", "a@example.org", "b@example.test"],
            MSG,
            &[],
        );
        assert!(
            out.starts_with("r\0K127.0.0.1 accepted message."),
            "{mech}: {out:?}"
        );
        let seen = h.join().unwrap();
        assert_eq!(seen.lines[1], format!("AUTH {mech}"));
        match mech {
            "PLAIN" => assert_eq!(b64(&seen.lines[2]), b"a@example.org\0tim\0tanstaaftanstaaf"),
            "LOGIN" => {
                assert_eq!(b64(&seen.lines[2]), b"tim");
                assert_eq!(b64(&seen.lines[3]), b"tanstaaftanstaaf");
            }
            _ => assert_eq!(b64(&seen.lines[2]), b"tim b913a602c7eda7a495b4e6e7334d3890"),
        }
        assert!(
            seen.lines
                .contains(&"MAIL FROM:<a@example.org> AUTH=tim".to_string())
        );
    }
}

#[test]
fn auth_credentials_never_go_out_in_clear_by_default() {
    let (port, h) = auth_server("PLAIN");
    let inst = Instance::new();
    inst.control(
        "smtproutes",
        format!(":127.0.0.1;{port}|tim|secret\n").as_bytes(),
    );
    let out = remote(
        &inst,
        &["example.test", "a@example.org", "b@example.test"],
        MSG,
        &[],
    );
    assert_eq!(
        out,
        "Z I wasn't able to negotiate a TLS connection with: 127.0.0.1. (#4.4.1)\n\0"
    );
    let seen = h.join().unwrap();
    assert!(
        !seen.lines.iter().any(|l| l.starts_with("AUTH")),
        "{:?}",
        seen.lines
    );
}

/// A one-connection QMTP server answering each recipient with `answers`.
fn qmtp_server(answers: &'static [&'static str]) -> (u16, JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut got = Vec::new();
        let mut b = [0u8; 4096];
        // The package ends with the recipients' netstring and its final comma: ",,".
        while !got.ends_with(b",,") {
            let n = s.read(&mut b).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&b[..n]);
        }
        for a in answers {
            let _ = s.write_all(format!("{}:{a},", a.len()).as_bytes());
        }
        got
    });
    (port, h)
}

#[test]
fn qmtp_routes_carry_netstrings_and_per_recipient_answers() {
    let (port, h) = qmtp_server(&["Kok 1 qp 2", "Dno such user"]);
    let inst = Instance::new();
    inst.control(
        "qmtproutes",
        format!("example.test:127.0.0.1;{port}\n").as_bytes(),
    );
    let out = remote(
        &inst,
        &[
            "example.test",
            "a@example.org",
            "b@example.test",
            "c@example.test",
        ],
        MSG,
        &[],
    );
    assert_eq!(
        out,
        "rqmtp:ok 1 qp 2\n\0hqmtp:no such user\n\0KReceived okay for some recipients by 127.0.0.1\n\0"
    );
    let mut want = format!("{}:\n", MSG.len() + 1).into_bytes();
    want.extend_from_slice(MSG);
    want.extend_from_slice(b",13:a@example.org,36:14:b@example.test,14:c@example.test,,");
    assert_eq!(h.join().unwrap(), want);
    let (port, _h) = qmtp_server(&["Kfine"]);
    inst.control(
        "qmtproutes",
        format!("example.test:127.0.0.1;{port}\n").as_bytes(),
    );
    let out = remote(&inst, &["example.test", "", "b@example.test"], MSG, &[]);
    assert_eq!(out, "rqmtp:fine\n\0KAll received okay by 127.0.0.1\n\0");
    let (port, _h) = qmtp_server(&["Xbad"]);
    inst.control(
        "qmtproutes",
        format!("example.test:127.0.0.1;{port}\n").as_bytes(),
    );
    let out = remote(&inst, &["example.test", "", "b@example.test"], MSG, &[]);
    assert_eq!(out, "ZRecipient did not talk proper QMTP (#4.3.0)\n\0");
}

/// dnsmasq on 127.0.0.1 at a free port, killed by pid on drop.
struct Dnsmasq(Child, u16);

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dnsmasq(records: &[String]) -> Dnsmasq {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("dnsmasq")
        .args([
            "--no-daemon",
            "--no-resolv",
            "--no-hosts",
            "--conf-file=/dev/null",
            &format!("--port={port}"),
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--user=root",
            "--local=/test/",
        ])
        .args(records)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dnsmasq (package dnsmasq-base)");
    let d = Dnsmasq(child, port);
    let ready = wait_for(10, || {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
        // A minimal query for "test." A; any answer means dnsmasq is up.
        let q = [
            0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 4, b't', b'e', b's', b't', 0, 0, 1, 0, 1,
        ];
        s.set_read_timeout(Some(Duration::from_millis(200))).ok()?;
        s.send_to(&q, ("127.0.0.1", port)).ok()?;
        let mut b = [0u8; 512];
        s.recv(&mut b).ok().map(|_| ())
    });
    assert!(ready.is_some(), "dnsmasq did not start");
    d
}

/// Postfix's smtp-sink on `addr` dumping each message into `dir`, killed by pid on drop.
struct Sink(Child);

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn smtp_sink(addr: &str, dir: &Path) -> Sink {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let child = Command::new("/usr/sbin/smtp-sink")
        .args([
            "-u",
            "nobody",
            "-d",
            &format!("{}/%M.", dir.display()),
            addr,
            "10",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("smtp-sink (package postfix)");
    let ready = wait_for(10, || TcpStream::connect(addr).ok().map(|_| ()));
    assert!(ready.is_some(), "smtp-sink did not start");
    Sink(child)
}

fn dumps(dir: &Path) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_file())
                .map(|e| std::fs::read(e.path()).unwrap())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn mx_records_from_dnsmasq_lead_to_smtp_sink() {
    let port = free_port("127.0.0.2");
    let scratch = Scratch::new("sink");
    let sink_dir = scratch.0.join("dump");
    std::fs::create_dir_all(&sink_dir).unwrap();
    let _sink = smtp_sink(&format!("127.0.0.2:{port}"), &sink_dir);
    let dns = dnsmasq(&[
        "--mx-host=mx.test,mx1.mx.test,20".into(),
        "--mx-host=mx.test,mx0.mx.test,10".into(),
        "--host-record=mx0.mx.test,127.0.0.2".into(),
        "--host-record=mx1.mx.test,127.0.0.3".into(),
        "--host-record=nomx.test,127.0.0.2".into(),
        "--cname=alias.test,nomx.test".into(),
    ]);
    let inst = Instance::new();
    inst.control(
        "smtproutes",
        format!(".test:;{port}\nmx.test:;{port}\n").as_bytes(),
    );
    let env = [("DNSCACHEIP", format!("127.0.0.1:{}", dns.1))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = remote(&inst, &["mx.test", "a@example.org", "b@mx.test"], MSG, &env);
    assert!(
        out.starts_with("r\0K127.0.0.2 accepted message.\nRemote host said: 250 2.0.0 Ok"),
        "{out:?}"
    );
    // No MX: the domain's own address, and the recipient's domain made canonical.
    let out = remote(
        &inst,
        &["alias.test", "a@example.org", "c@alias.test"],
        MSG,
        &env,
    );
    assert!(
        out.starts_with("r\0K127.0.0.2 accepted message."),
        "{out:?}"
    );
    let got = wait_for(10, || {
        let d = dumps(&sink_dir);
        (d.len() == 2 && d.iter().all(|m| m.ends_with(b"line\n\n"))).then_some(d)
    })
    .expect("two messages in the sink");
    let text: Vec<String> = got
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    let all = text.join("\n--\n");
    assert!(all.contains("X-Rcpt-Args: <b@mx.test>"), "{all}");
    assert!(all.contains("X-Rcpt-Args: <c@nomx.test>"), "{all}");
    for t in &text {
        assert!(
            t.ends_with("From: a@example.org\nSubject: hi\n\n.leading dot\nline\n\n"),
            "{t}"
        );
    }
    assert_eq!(
        remote(
            &inst,
            &["nowhere.test", "a@example.org", "b@nowhere.test"],
            MSG,
            &env
        ),
        "DSorry, I couldn't find any host named nowhere.test. (#5.1.2)\n\0"
    );
    // An MX pointing at one of our own addresses with nothing better: not ours to relay.
    let dns2 = dnsmasq(&[
        "--mx-host=me.test,me-mx.me.test,10".into(),
        "--host-record=me-mx.me.test,127.0.0.1".into(),
    ]);
    let env2 = [("DNSCACHEIP", format!("127.0.0.1:{}", dns2.1))];
    let env2: Vec<(&str, &str)> = env2.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        remote(
            &inst,
            &["me.test", "a@example.org", "b@me.test"],
            MSG,
            &env2
        ),
        "DSorry. Although I'm listed as a best-preference MX or A for that host,\n\
         it isn't in my control/locals file, so I don't treat it as local. (#5.4.6)\n\0"
    );
}

// ---------------------------------------------------------------- TLS

fn hexdigest(der: &[u8]) -> String {
    sqmail::dnstools::hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref())
}

struct Pki {
    ca_pem: String,
    ca_der: Vec<u8>,
    cert_pem: String,
    key_pem: String,
    cert_der: Vec<u8>,
}

fn pki(names: &[&str]) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_p = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_p.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let p =
        CertificateParams::new(names.iter().map(|s| (*s).to_string()).collect::<Vec<_>>()).unwrap();
    let issuer = rcgen::Issuer::new(ca_p, ca_key);
    let cert = p.signed_by(&key, &issuer).unwrap();
    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().to_vec(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().to_vec(),
    }
}

fn server_config(p: &Pki) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut certs = rustls::pki_types::CertificateDer::pem_slice_iter(p.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    certs.push(rustls::pki_types::CertificateDer::from(p.ca_der.clone()));
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(p.key_pem.as_bytes()).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    Arc::new(cfg)
}

/// A one-connection SMTP server with STARTTLS (or TLS from the first byte when
/// `implicit`); after STARTTLS it also writes `inject` in plaintext before the handshake.
fn tls_server(p: &Pki, implicit: bool, inject: &'static [u8]) -> (u16, JoinHandle<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let cfg = server_config(p);
    let h = std::thread::spawn(move || {
        let mut seen = Seen::default();
        let Ok((tcp, _)) = l.accept() else {
            return seen;
        };
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut tls: Option<rustls::StreamOwned<rustls::ServerConnection, TcpStream>> = None;
        if implicit {
            let c = rustls::ServerConnection::new(cfg.clone()).unwrap();
            tls = Some(rustls::StreamOwned::new(c, tcp.try_clone().unwrap()));
        }
        let send = |tls: &mut Option<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>,
                    b: &[u8]| match tls {
            Some(t) => t.write_all(b).and_then(|()| t.flush()).is_ok(),
            None => (&tcp).write_all(b).is_ok(),
        };
        let read_line = |tls: &mut Option<
            rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
        >|
         -> Option<String> {
            let mut line = Vec::new();
            let mut b = [0u8; 1];
            loop {
                let n = match tls {
                    Some(t) => t.read(&mut b).ok()?,
                    None => (&tcp).read(&mut b).ok()?,
                };
                if n == 0 {
                    return None;
                }
                line.push(b[0]);
                if b[0] == b'\n' {
                    return Some(String::from_utf8_lossy(&line).into_owned());
                }
            }
        };
        if !send(&mut tls, b"220 x\r\n") {
            return seen;
        }
        loop {
            let Some(line) = read_line(&mut tls) else {
                return seen;
            };
            let cmd = line.trim_end().to_string();
            seen.lines.push(cmd.clone());
            let reply: &[u8] = match cmd.as_str() {
                c if c.starts_with("EHLO") && tls.is_none() => b"250-x\r\n250 STARTTLS\r\n",
                c if c.starts_with("EHLO") => b"250 x\r\n",
                "STARTTLS" => {
                    // The injected bytes go in the same write as the 220, so that they
                    // arrive with it: the client must drop them, not read them as replies.
                    let mut go = b"220 go\r\n".to_vec();
                    go.extend_from_slice(inject);
                    if !send(&mut tls, &go) {
                        return seen;
                    }
                    let c = rustls::ServerConnection::new(cfg.clone()).unwrap();
                    tls = Some(rustls::StreamOwned::new(c, tcp.try_clone().unwrap()));
                    continue;
                }
                "DATA" => b"354 go\r\n",
                "QUIT" => b"221 bye\r\n",
                _ => b"250 ok\r\n",
            };
            if !send(&mut tls, reply) {
                return seen;
            }
            if reply.starts_with(b"354") {
                loop {
                    let Some(l) = read_line(&mut tls) else {
                        return seen;
                    };
                    seen.data.extend_from_slice(l.as_bytes());
                    if l == ".\r\n" {
                        break;
                    }
                }
                if !send(&mut tls, b"250 stored\r\n") {
                    return seen;
                }
            }
        }
    });
    (port, h)
}

fn tls_case(
    p: &Pki,
    implicit: bool,
    route_port: &str,
    tlsdest: &str,
    inject: &'static [u8],
) -> (String, Seen, Instance) {
    let (port, h) = tls_server(p, implicit, inject);
    let inst = Instance::new();
    let route_port = route_port.replace("PORT", &port.to_string());
    inst.control(
        "smtproutes",
        format!("example.test:127.0.0.1;{route_port}\n").as_bytes(),
    );
    let ca = inst.home.join("control/ca.pem");
    std::fs::write(&ca, &p.ca_pem).unwrap();
    let cadir = inst.home.join("control/cadir");
    std::fs::create_dir_all(&cadir).unwrap();
    std::fs::write(cadir.join("test-ca.pem"), &p.ca_pem).unwrap();
    let tlsdest = tlsdest
        .replace("CADIR", &format!("{}/", cadir.display()))
        .replace("CA", &ca.display().to_string());
    inst.control("tlsdestinations", tlsdest.as_bytes());
    let out = remote(
        &inst,
        &["example.test", "a@example.org", "b@example.test"],
        MSG,
        &[],
    );
    (out, h.join().unwrap(), inst)
}

#[test]
fn opportunistic_starttls_discards_injected_replies_and_says_tls() {
    let p = pki(&["127.0.0.1"]);
    let (out, seen, _i) = tls_case(&p, false, "PORT", "*:\n", b"250 injected\r\n");
    assert_eq!(
        out,
        "r\0K127.0.0.1 TLS transmitted message accepted.\nRemote host said: 250 stored\n\0"
    );
    assert_eq!(
        seen.lines[..3],
        ["EHLO test.example", "STARTTLS", "EHLO test.example"]
    );
    assert_eq!(seen.data, WIRE);
}

#[test]
fn without_tlsdestinations_no_starttls_is_tried() {
    let p = pki(&["127.0.0.1"]);
    let (out, seen, _i) = tls_case(&p, false, "PORT", "", b"");
    assert_eq!(
        out,
        "r\0K127.0.0.1 accepted message.\nRemote host said: 250 stored\n\0"
    );
    assert!(!seen.lines.contains(&"STARTTLS".to_string()));
}

#[test]
fn implicit_tls_with_an_s_port() {
    let p = pki(&["127.0.0.1"]);
    let (out, seen, _i) = tls_case(&p, true, "sPORT", "", b"");
    assert_eq!(
        out,
        "r\0K127.0.0.1 TLS transmitted message accepted.\nRemote host said: 250 stored\n\0"
    );
    assert_eq!(seen.lines[0], "EHLO test.example");
}

#[test]
fn tlsdestinations_matrix() {
    let p = pki(&["127.0.0.1"]);
    let ok = "r\0K127.0.0.1 TLS transmitted message accepted.\nRemote host said: 250 stored\n\0";
    let fp = hexdigest(&p.cert_der);
    for (rule, want) in [
        ("127.0.0.1:CA\n".to_string(), ok.to_string()),
        ("+*:CA\n".to_string(), ok.to_string()),
        ("-127.0.0.1:\n".to_string(), ok.to_string()),
        (format!("%127.0.0.1:={fp}\n"), ok.to_string()),
        (
            "%127.0.0.1:=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
                .to_string(),
            "Z Received X.509 certificate from: 127.0.0.1 does not match fingerprint: \
             =00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff. (#4.4.1)\n\0"
                .to_string(),
        ),
        (
            "%127.0.0.1:=0011\n".to_string(),
            "Z Invalid digest length provided for: 127.0.0.1. (#4.4.1)\n\0".to_string(),
        ),
        (
            "127.0.0.1:\n".to_string(),
            "Z Unable to verify X.500 certificate from: 127.0.0.1. (#4.4.1)\n\0".to_string(),
        ),
        (
            "!127.0.0.1:\n*:\n".to_string(),
            "r\0K127.0.0.1 accepted message.\nRemote host said: 250 stored\n\0".to_string(),
        ),
    ] {
        let (out, _, _i) = tls_case(&p, false, "PORT", &rule, b"");
        assert_eq!(out, want, "{rule}");
    }
    // A certificate for another name: the chain is good, the name is not.
    let other = pki(&["other.test"]);
    let (out, _, _i) = tls_case(&other, false, "PORT", "~127.0.0.1:CA\n", b"");
    assert_eq!(
        out,
        "Z Unable to validate X.500 certificate Subject for: 127.0.0.1. (#4.4.1)\n\0"
    );
    let (out, _, _i) = tls_case(&other, false, "PORT", "127.0.0.1:CA\n", b"");
    assert_eq!(out, ok);
    // A CA directory (the name ends in /), and one that is not there.
    let (out, _, _i) = tls_case(&p, false, "PORT", "127.0.0.1:CADIR\n", b"");
    assert_eq!(out, ok);
    let (out, _, _i) = tls_case(&p, false, "PORT", "127.0.0.1:/nonexistent/\n", b"");
    assert_eq!(
        out,
        "Z I wasn't able to set up CAFILE:  or CADIR: /nonexistent/ for TLS. (#4.4.1)\n\0"
    );
}

#[test]
fn mandatory_tls_without_starttls_defers() {
    let (port, _h) = smtp_server("220 x\r\n", answers(&[]));
    let inst = routed(port);
    inst.control("tlsdestinations", b"-127.0.0.1:\n");
    let out = remote(
        &inst,
        &["example.test", "a@example.org", "b@example.test"],
        MSG,
        &[],
    );
    assert_eq!(
        out,
        "Z I wasn't able to negotiate a TLS connection with: 127.0.0.1. (#4.4.1)\n\0"
    );
}

#[test]
fn opportunistic_starttls_refused_goes_on_in_plaintext() {
    let (port, h) = smtp_server(
        "220 x\r\n",
        answers(&[
            ("EHLO", "250-x\r\n250 STARTTLS\r\n"),
            ("STARTTLS", "454 not now\r\n"),
        ]),
    );
    let inst = routed(port);
    inst.control("tlsdestinations", b"*:\n");
    let out = remote(
        &inst,
        &["example.test", "a@example.org", "b@example.test"],
        MSG,
        &[],
    );
    assert!(
        out.starts_with("r\0K127.0.0.1 accepted message."),
        "{out:?}"
    );
    assert!(h.join().unwrap().lines.contains(&"STARTTLS".to_string()));
}

#[test]
fn end_to_end_through_qmail_send_and_qmail_rspawn_to_smtp_sink() {
    let port = free_port("127.0.0.1");
    let scratch = Scratch::new("e2e-sink");
    let dir = scratch.0.join("dump");
    std::fs::create_dir_all(&dir).unwrap();
    let _sink = smtp_sink(&format!("127.0.0.1:{port}"), &dir);
    let o = Owned::new();
    o.file(
        "control/smtproutes",
        format!(":127.0.0.1;{port}\n").as_bytes(),
        0o644,
    );
    let d = Daemons::start(&o.inst, &[]);
    let (code, _) = qmail_queue(
        &o.inst,
        b"Subject: far\n\nbody\n",
        &sqmail::envelope::encode(b"me@test.example", &[b"you@far.example"]),
    );
    assert_eq!(code, 0);
    let got = wait_for(30, || {
        dumps(&dir).pop().filter(|m| m.ends_with(b"body\n\n"))
    })
    .unwrap_or_else(|| panic!("nothing arrived; log:\n{}", d.log_text()));
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(text.contains("X-Mail-Args: <me@test.example>"), "{text}");
    assert!(text.contains("X-Rcpt-Args: <you@far.example>"), "{text}");
    assert!(text.ends_with("Subject: far\n\nbody\n\n"), "{text}");
    let done = wait_for(30, || {
        d.log_text().contains("delivery 1: success: ").then_some(())
    });
    let log = d.log_text();
    assert!(done.is_some(), "log:\n{log}");
    assert!(
        log.contains(
            "delivery 1: success: 127.0.0.1_accepted_message./Remote_host_said:_250_2.0.0_Ok"
        ),
        "{log}"
    );
}

// ---------------------------------------------------------------- DANE and the DNS tools

/// A tiny DNS server on 127.0.0.1 standing in for a validating resolver: it answers A
/// queries for `a_name` with 127.0.0.1, TLSA queries for `tlsa_name` with `tlsa`, and sets
/// the AD bit when `ad`. Runs until the test ends.
fn fake_dns(a_name: &str, tlsa_name: &str, tlsa: Vec<(u8, u8, u8, Vec<u8>)>, ad: bool) -> u16 {
    use hickory_resolver::proto::op::{Message, OpCode};
    use hickory_resolver::proto::rr::rdata::A;
    use hickory_resolver::proto::rr::rdata::tlsa::{CertUsage, Matching, Selector, TLSA};
    use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = s.local_addr().unwrap().port();
    let a_name = format!("{a_name}.");
    let tlsa_name = format!("{tlsa_name}.");
    std::thread::spawn(move || {
        let mut b = [0u8; 4096];
        loop {
            let Ok((n, from)) = s.recv_from(&mut b) else {
                return;
            };
            let Ok(q) = Message::from_vec(&b[..n]) else {
                continue;
            };
            let mut r = Message::response(q.metadata.id, OpCode::Query);
            r.metadata.recursion_desired = q.metadata.recursion_desired;
            r.metadata.recursion_available = true;
            r.metadata.authentic_data = ad;
            for query in &q.queries {
                r.add_query(query.clone());
                let name = query.name().to_ascii().to_ascii_lowercase();
                let qn: Name = query.name().clone();
                if query.query_type() == RecordType::A && name == a_name {
                    r.add_answer(Record::from_rdata(
                        qn,
                        60,
                        RData::A(A("127.0.0.1".parse().unwrap())),
                    ));
                } else if query.query_type() == RecordType::TLSA && name == tlsa_name {
                    for (u, sel, m, d) in &tlsa {
                        let t = TLSA::new(
                            CertUsage::from(*u),
                            Selector::from(*sel),
                            Matching::from(*m),
                            d.clone(),
                        );
                        r.add_answer(Record::from_rdata(qn.clone(), 60, RData::TLSA(t)));
                    }
                }
            }
            if let Ok(v) = r.to_vec() {
                let _ = s.send_to(&v, from);
            }
        }
    });
    port
}

fn spki_sha256(cert_der: &[u8]) -> Vec<u8> {
    let c = rustls::pki_types::CertificateDer::from(cert_der.to_vec());
    let p = rustls::server::ParsedCertificate::try_from(&c).unwrap();
    ring::digest::digest(&ring::digest::SHA256, p.subject_public_key_info().as_ref())
        .as_ref()
        .to_vec()
}

fn dane_case(
    p: &Pki,
    records: Vec<(u8, u8, u8, Vec<u8>)>,
    ad: bool,
    tlsdest: &str,
    starttls: bool,
) -> String {
    let (port, _h) = if starttls {
        tls_server(p, false, b"")
    } else {
        smtp_server("220 x\r\n", answers(&[]))
    };
    let dns = fake_dns("dane.test", &format!("_{port}._tcp.dane.test"), records, ad);
    let inst = Instance::new();
    inst.control(
        "smtproutes",
        format!("example.test:dane.test;{port}\n").as_bytes(),
    );
    inst.control("tlsdestinations", tlsdest.as_bytes());
    let dnscache = format!("127.0.0.1:{dns}");
    remote(
        &inst,
        &["example.test", "a@example.org", "b@example.test"],
        MSG,
        &[("DNSCACHEIP", dnscache.as_str())],
    )
}

#[test]
fn dane_tlsa_records_decide_when_authenticated() {
    let p = pki(&["mx.other.test"]);
    let good = spki_sha256(&p.cert_der);
    let ok = "r\0K127.0.0.1 TLS transmitted message accepted.\nRemote host said: 250 stored\n\0";
    // DANE-EE SPKI SHA-256 matches: accepted although the name and the CA are unknown.
    assert_eq!(
        dane_case(&p, vec![(3, 1, 1, good.clone())], true, "*:\n", true),
        ok
    );
    // Full certificate, SHA-512.
    let full = ring::digest::digest(&ring::digest::SHA512, &p.cert_der)
        .as_ref()
        .to_vec();
    assert_eq!(dane_case(&p, vec![(3, 0, 2, full)], true, "*:\n", true), ok);
    // A mismatch defers, and an unusable record next to it changes nothing.
    let bad = vec![(3, 1, 1, vec![0u8; 32]), (1, 1, 1, good.clone())];
    assert_eq!(
        dane_case(&p, bad.clone(), true, "*:\n", true),
        "Z No TLSA record matches the X.509 certificate from: dane.test. (#4.7.5)\n\0"
    );
    // The same records without the AD bit are ignored: opportunistic TLS as usual.
    assert_eq!(dane_case(&p, bad, false, "*:\n", true), ok);
    // DANE-TA: the CA in the chain is the anchor, and the name must match.
    let ta = ring::digest::digest(&ring::digest::SHA256, &p.ca_der)
        .as_ref()
        .to_vec();
    assert_eq!(
        dane_case(&p, vec![(2, 0, 1, ta.clone())], true, "*:\n", true),
        "Z No TLSA record matches the X.509 certificate from: dane.test. (#4.7.5)\n\0"
    );
    let named = pki(&["dane.test"]);
    let ta = ring::digest::digest(&ring::digest::SHA256, &named.ca_der)
        .as_ref()
        .to_vec();
    assert_eq!(
        dane_case(&named, vec![(2, 0, 1, ta)], true, "*:\n", true),
        ok
    );
    // Only unusable records (PKIX-EE): TLS is still required, the certificate unchecked.
    assert_eq!(
        dane_case(&p, vec![(1, 1, 1, vec![0u8; 32])], true, "*:\n", true),
        ok
    );
    assert_eq!(
        dane_case(&p, vec![(1, 1, 1, vec![0u8; 32])], true, "*:\n", false),
        "Z I wasn't able to negotiate a TLS connection with: dane.test. (#4.4.1)\n\0"
    );
    // Authenticated TLSA records make TLS mandatory: no downgrade to plaintext.
    assert_eq!(
        dane_case(&p, vec![(3, 1, 1, good)], true, "*:\n", false),
        "Z I wasn't able to negotiate a TLS connection with: dane.test. (#4.4.1)\n\0"
    );
}

#[test]
fn dns_tools_print_djbdns_style_lines() {
    let dns = dnsmasq(&[
        "--mx-host=mx.test,mx1.mx.test,10".into(),
        "--host-record=mx1.mx.test,192.0.2.7,2001:db8::7".into(),
        "--host-record=host.test,192.0.2.8".into(),
        "--txt-record=host.test,first part,second part".into(),
        "--ptr-record=9.2.0.192.in-addr.arpa,named.test".into(),
        "--dns-rr=_25._tcp.mx1.mx.test,52,030101AABB".into(),
    ]);
    let env = format!("127.0.0.1:{}", dns.1);
    let run = |prog: &str, args: &[&str]| {
        let inst_bin = crate::harness::programs().join(prog);
        let mut c = Command::new(inst_bin);
        c.args(args).env_clear().env("DNSCACHEIP", &env);
        let o = run_with(c, b"", 30);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    assert_eq!(
        run("dnsip", &["mx1.mx.test", "host.test"]),
        (Some(0), "192.0.2.7 2001:db8::7 \n192.0.2.8 \n".into())
    );
    assert_eq!(
        run("dnsmxip", &["mx.test"]),
        (Some(0), "2001:db8::7 10\n192.0.2.7 10\n".into())
    );
    assert_eq!(
        run("dnstxt", &["host.test"]),
        (Some(0), "first partsecond part\n".into())
    );
    assert_eq!(
        run("dnsptr", &["192.0.2.9"]),
        (Some(0), "named.test\n".into())
    );
    assert_eq!(
        run("dnstlsa", &["mx1.mx.test"]),
        (Some(0), "insecure 3 1 1 aabb\n".into())
    );
    assert_eq!(run("dnsip", &[]).0, Some(100));
    assert_eq!(run("dnsptr", &["not-an-ip"]).0, Some(100));
}

#[test]
fn tcpto_skips_an_address_that_keeps_timing_out_and_a_success_clears_it() {
    let (port, h) = smtp_server("220 x\r\n", answers(&[]));
    let inst = routed(port);
    let table = inst.home.join("queue/lock/tcpto");
    let now = u32::try_from(sqmail::date::now()).unwrap();
    let mut t = vec![0u8; 1024];
    t[..4].copy_from_slice(&[127, 0, 0, 1]);
    t[4] = 2;
    t[8..12].copy_from_slice(&now.to_le_bytes());
    std::fs::write(&table, &t).unwrap();
    let args = ["example.test", "a@example.org", "b@example.test"];
    assert_eq!(
        remote(&inst, &args, MSG, &[]),
        "ZSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n\0"
    );
    // One timeout only: the address is tried, and the success clears its record.
    t[4] = 1;
    std::fs::write(&table, &t).unwrap();
    assert!(remote(&inst, &args, MSG, &[]).starts_with("r\0K127.0.0.1 accepted message."));
    h.join().unwrap();
    assert_eq!(std::fs::read(&table).unwrap()[4], 0);
    // A refused connection is noted.
    let closed = free_port("127.0.0.1");
    inst.control(
        "smtproutes",
        format!("example.test:127.0.0.1;{closed}\n").as_bytes(),
    );
    remote(&inst, &args, MSG, &[]);
    let t = std::fs::read(&table).unwrap();
    assert_eq!((&t[..4], t[4]), (&[127u8, 0, 0, 1][..], 1));
}

#[test]
fn domainips_choose_the_local_address_and_the_helo_name() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (s, peer) = l.accept().unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        w.write_all(b"220 x\r\n").unwrap();
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        w.write_all(b"502 no\r\n").unwrap();
        let mut helo = String::new();
        r.read_line(&mut helo).unwrap();
        w.write_all(b"421 enough\r\n").unwrap();
        (peer.ip().to_string(), line + &helo)
    });
    let inst = routed(port);
    inst.control(
        "domainips",
        b".example.org:127.0.0.3|helo.example.org\n*:127.0.0.4\n",
    );
    let out = remote(
        &inst,
        &["example.test", "a@mail.example.org", "b@example.test"],
        MSG,
        &[],
    );
    assert_eq!(
        out,
        "ZConnected to 127.0.0.1 but my name was rejected.\nRemote host said: 421 enough\n\0"
    );
    assert_eq!(
        h.join().unwrap(),
        (
            "127.0.0.3".to_string(),
            "EHLO helo.example.org\r\nHELO helo.example.org\r\n".to_string()
        )
    );
}

/// In a network namespace of its own (`unshare -n`): a veth interface with two link-local
/// addresses, a listener on fe80::1 that greets with the address a connection came from,
/// and qmail-remote (argv), which gets its message on stdin. Prints qmail-remote's output.
const LINK_LOCAL: &str = r#"
import socket, subprocess, sys, time
for c in (["ip", "link", "set", "lo", "up"],
          ["ip", "link", "add", "sq0", "type", "veth", "peer", "name", "sq1"],
          ["ip", "link", "set", "sq0", "up"], ["ip", "link", "set", "sq1", "up"],
          ["ip", "-6", "addr", "add", "fe80::1/64", "dev", "sq0", "nodad"],
          ["ip", "-6", "addr", "add", "fe80::2/64", "dev", "sq0", "nodad"]):
    subprocess.run(c, check=True)
l = socket.socket(socket.AF_INET6)
l.bind(("fe80::1", 2525, 0, socket.if_nametoindex("sq0")))
l.listen(1)
l.settimeout(0.05)
r = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE)
deadline = time.monotonic() + 30
while r.poll() is None and time.monotonic() < deadline:
    try:
        c, peer = l.accept()
    except socket.timeout:
        continue
    c.sendall(("554 from %s\r\n" % peer[0]).encode())
    c.close()
sys.stdout.buffer.write(r.communicate()[0])
"#;

/// qmail-remote for `example.test`, run by [`LINK_LOCAL`] in a new network namespace.
fn remote_link_local(inst: &Instance) -> String {
    let q = inst.cmd("qmail-remote");
    let mut c = Command::new("unshare");
    c.args(["-n", "python3", "-c", LINK_LOCAL]);
    c.arg(q.get_program());
    c.args(["example.test", "a@example.org", "b@example.test"]);
    for (k, v) in q.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    let o = run_with(c, MSG, 60);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn domainips_interface_scopes_a_link_local_source() {
    crate::harness::must_be_root("it makes a network namespace");
    let inst = Instance::new();
    inst.control("smtproutes", b"example.test:fe80::1;2525\n");
    // Without its interface a link-local address has no scope: the bind fails, and
    // a link-local destination cannot be reached.
    inst.control("domainips", b"*:fe80::2%sq0\n");
    assert_eq!(
        remote_link_local(&inst),
        "DConnected to fe80::1 but sender was rejected.\nRemote host said: 554 from fe80::2\n\0"
    );
    inst.control("domainips", b"*:fe80::2%nosuchif0\n");
    assert_eq!(
        remote_link_local(&inst),
        "ZCan't bind to local ip address: fe80::2. (#4.3.0)\n\0"
    );
}

#[test]
fn domaincerts_present_a_client_certificate() {
    use rustls::pki_types::pem::PemObject;
    let p = pki(&["127.0.0.1"]);
    let client = pki(&["client.example.org"]);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(
            client.ca_der.clone(),
        ))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let certs = vec![rustls::pki_types::CertificateDer::from(p.cert_der.clone())];
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(p.key_pem.as_bytes()).unwrap();
    let cfg = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let h = std::thread::spawn(move || {
        let (tcp, _) = l.accept().unwrap();
        let mut t = rustls::StreamOwned::new(rustls::ServerConnection::new(cfg).unwrap(), tcp);
        let _ = t.write_all(b"421 shown\r\n");
        let _ = t.flush();
        t.conn.peer_certificates().map(|c| c.len())
    });
    let inst = Instance::new();
    inst.control(
        "smtproutes",
        format!("example.test:127.0.0.1;s{port}\n").as_bytes(),
    );
    let cert = inst.home.join("control/client.pem");
    std::fs::write(&cert, format!("{}{}", client.cert_pem, client.key_pem)).unwrap();
    inst.control(
        "domaincerts",
        format!("example.org:{}\n", cert.display()).as_bytes(),
    );
    let out = remote(
        &inst,
        &["example.test", "a@example.org", "b@example.test"],
        MSG,
        &[],
    );
    assert_eq!(
        out,
        "ZConnected to 127.0.0.1 but greylisted.\nRemote host said: 421 shown\n\0"
    );
    assert_eq!(h.join().unwrap(), Some(1));
    // The certificate is loaded before the handshake: any listener will do.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    inst.control(
        "smtproutes",
        format!("example.test:127.0.0.1;s{port}\n").as_bytes(),
    );
    inst.control("domaincerts", b"example.org:/nonexistent.pem\n");
    let out = remote(
        &inst,
        &["example.test", "a@example.org", "b@example.test"],
        MSG,
        &[],
    );
    assert_eq!(
        out,
        "Z Can't load X.509 certificate: /nonexistent.pem. (#4.4.1)\n\0"
    );
}

/// A private Postfix (master, smtpd and friends) with its own configuration and queue
/// under a scratch directory, listening on loopback only: SMTP with STARTTLS on one port,
/// TLS from the first byte on another, relaying everything to `relay_port`. Started with
/// `postfix -c DIR start`, stopped with `postfix -c DIR stop` (and its master killed by
/// pid if that fails).
struct Postfix {
    conf: std::path::PathBuf,
    queue: std::path::PathBuf,
    _scratch: Scratch,
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(&self.conf)
            .arg("stop")
            .output();
        let pid = std::fs::read_to_string(self.queue.join("pid/master.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
            .filter(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if let Some(pid) = pid {
            let _ = sqmail::sys::proc::kill(pid, sqmail::sys::proc::Signal::Terminate);
        }
    }
}

fn postfix(p: &Pki, smtp: u16, smtps: u16, relay_port: u16) -> Postfix {
    postfix_with(p, smtp, smtps, relay_port, "")
}

/// As [`postfix`], with `extra` appended to main.cf (later settings win).
fn postfix_with(p: &Pki, smtp: u16, smtps: u16, relay_port: u16, extra: &str) -> Postfix {
    use std::os::unix::fs::PermissionsExt;
    let scratch = Scratch::new("postfix");
    let d = scratch.0.clone();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (conf, queue, data) = (d.join("conf"), d.join("queue"), d.join("data"));
    for x in [&conf, &queue, &data] {
        std::fs::create_dir_all(x).unwrap();
    }
    let postfix_uid = sqmail::sys::account(b"postfix")
        .unwrap()
        .expect("account postfix (package postfix)")
        .uid;
    std::os::unix::fs::chown(&data, Some(postfix_uid), None).unwrap();
    std::fs::write(
        conf.join("cert.pem"),
        format!("{}{}", p.key_pem, p.cert_pem),
    )
    .unwrap();
    let main = format!(
        "compatibility_level = 3.6\nqueue_directory = {q}\ndata_directory = {data}\n\
         mail_owner = postfix\nsetgid_group = postdrop\ninet_interfaces = 127.0.0.1\n\
         inet_protocols = ipv4\nmyhostname = postfix.test\nmydestination =\n\
         mynetworks = 127.0.0.0/8\nrelay_domains = example.test\n\
         relayhost = [127.0.0.1]:{relay_port}\nsmtpd_tls_chain_files = {c}/cert.pem\n\
         smtpd_tls_security_level = may\nsmtpd_tls_received_header = yes\n\
         maillog_file = {d}/maillog\nmaillog_file_prefixes = {d}\nalias_maps =\n\
         alias_database =\nsmtp_tls_security_level = none\n{extra}",
        q = queue.display(),
        data = data.display(),
        c = conf.display(),
        d = d.display(),
    );
    std::fs::write(conf.join("main.cf"), main).unwrap();
    let mut master = format!(
        "127.0.0.1:{smtp} inet n - n - - smtpd\n\
         127.0.0.1:{smtps} inet n - n - - smtpd -o smtpd_tls_wrappermode=yes\n"
    );
    for line in [
        "pickup unix n - n 60 1 pickup",
        "cleanup unix n - n - 0 cleanup",
        "qmgr unix n - n 300 1 qmgr",
        "tlsmgr unix - - n 1000? 1 tlsmgr",
        "rewrite unix - - n - - trivial-rewrite",
        "bounce unix - - n - 0 bounce",
        "defer unix - - n - 0 bounce",
        "trace unix - - n - 0 bounce",
        "verify unix - - n - 1 verify",
        "flush unix n - n 1000? 0 flush",
        "proxymap unix - - n - - proxymap",
        "smtp unix - - n - - smtp",
        "relay unix - - n - - smtp",
        "showq unix n - n - - showq",
        "error unix - - n - - error",
        "retry unix - - n - - error",
        "discard unix - - n - - discard",
        "anvil unix - - n - 1 anvil",
        "scache unix - - n - 1 scache",
        "postlog unix-dgram n - n - 1 postlogd",
    ] {
        master.push_str(line);
        master.push('\n');
    }
    std::fs::write(conf.join("master.cf"), master).unwrap();
    let o = Command::new("postfix")
        .arg("-c")
        .arg(&conf)
        .arg("start")
        .output()
        .expect("postfix (package postfix)");
    let pf = Postfix {
        conf,
        queue,
        _scratch: scratch,
    };
    let log = || std::fs::read_to_string(d.join("maillog")).unwrap_or_default();
    assert!(o.status.success(), "postfix start failed:\n{}", log());
    let up = wait_for(20, || {
        (TcpStream::connect(("127.0.0.1", smtp)).is_ok()
            && TcpStream::connect(("127.0.0.1", smtps)).is_ok())
        .then_some(())
    });
    assert!(up.is_some(), "postfix did not listen:\n{}", log());
    pf
}

#[test]
fn starttls_and_implicit_tls_with_a_real_postfix_smtpd() {
    let p = pki(&["postfix.test"]);
    let (smtp, smtps, sink) = (
        free_port("127.0.0.1"),
        free_port("127.0.0.1"),
        free_port("127.0.0.1"),
    );
    let scratch = Scratch::new("pf-sink");
    let dir = scratch.0.join("dump");
    std::fs::create_dir_all(&dir).unwrap();
    let _sink = smtp_sink(&format!("127.0.0.1:{sink}"), &dir);
    let _pf = postfix(&p, smtp, smtps, sink);
    let inst = Instance::new();
    let ca = inst.home.join("control/ca.pem");
    std::fs::write(&ca, &p.ca_pem).unwrap();
    // A verified chain (the name is 127.0.0.1, so only the chain is checked).
    inst.control(
        "tlsdestinations",
        format!("127.0.0.1:{}\n", ca.display()).as_bytes(),
    );
    let args = ["example.test", "a@example.org", "b@example.test"];
    for route in [format!("{smtp}"), format!("s{smtps}")] {
        inst.control(
            "smtproutes",
            format!("example.test:127.0.0.1;{route}\n").as_bytes(),
        );
        let out = remote(&inst, &args, MSG, &[]);
        assert!(
            out.starts_with("r\0K127.0.0.1 TLS transmitted message accepted.\nRemote host said: 250 2.0.0 Ok: queued as "),
            "{route}: {out:?}"
        );
    }
    let got = wait_for(30, || {
        let d = dumps(&dir);
        (d.len() == 2 && d.iter().all(|m| m.ends_with(b"line\n\n"))).then_some(d)
    })
    .expect("both messages relayed to smtp-sink");
    for m in got {
        let t = String::from_utf8_lossy(&m).into_owned();
        assert!(t.contains("X-Rcpt-Args: <b@example.test>"), "{t}");
        assert!(t.contains("(using TLSv1."), "{t}");
        // Postfix adds Message-Id and Date; the rest arrives as sent.
        assert!(t.contains("\nFrom: a@example.org\nSubject: hi\n"), "{t}");
        assert!(t.ends_with("\n\n.leading dot\nline\n\n"), "{t}");
    }
    // The wrong CA: Postfix's certificate does not verify.
    let other = pki(&["postfix.test"]);
    std::fs::write(&ca, &other.ca_pem).unwrap();
    inst.control(
        "smtproutes",
        format!("example.test:127.0.0.1;{smtp}\n").as_bytes(),
    );
    assert_eq!(
        remote(&inst, &args, MSG, &[]),
        "Z Unable to verify X.500 certificate from: 127.0.0.1. (#4.4.1)\n\0"
    );
}

#[test]
fn ipv6_relays_and_mx_addresses_are_used() {
    let l = TcpListener::bind("[::1]:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut w = s.try_clone().unwrap();
        let _ = w.write_all(b"554 not over v6\r\n");
        let mut r = BufReader::new(s);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        line
    });
    let inst = Instance::new();
    inst.control(
        "smtproutes",
        format!("example.test:::1;{port}\n").as_bytes(),
    );
    let out = remote(
        &inst,
        &["example.test", "a@example.org", "b@example.test"],
        MSG,
        &[],
    );
    assert_eq!(
        out,
        "DConnected to ::1 but sender was rejected.\nRemote host said: 554 not over v6\n\0"
    );
    assert_eq!(h.join().unwrap(), "QUIT\r\n");
    // A relay named in the DNS with only an IPv6 address.
    let (port, h) = {
        let l = TcpListener::bind("[::1]:0").unwrap();
        let port = l.local_addr().unwrap().port();
        (
            port,
            std::thread::spawn(move || {
                let (s, _) = l.accept().unwrap();
                let _ = (&s).write_all(b"421 v6 busy\r\n");
                let mut b = [0u8; 64];
                let _ = (&s).read(&mut b);
            }),
        )
    };
    let dns = dnsmasq(&["--host-record=relay.six.test,::1".into()]);
    inst.control(
        "smtproutes",
        format!("six.test:relay.six.test;{port}\n").as_bytes(),
    );
    let env = format!("127.0.0.1:{}", dns.1);
    let out = remote(
        &inst,
        &["six.test", "a@example.org", "b@six.test"],
        MSG,
        &[("DNSCACHEIP", &env)],
    );
    assert_eq!(
        out,
        "ZConnected to ::1 but greylisted.\nRemote host said: 421 v6 busy\n\0"
    );
    h.join().unwrap();
}

/// unbound, validating: it serves a zone signed here with ldns-signzone (as an auth-zone
/// for its own upstream use) and trusts the zone's key, so its answers carry the AD bit
/// exactly when DNSSEC validation succeeds. Killed by pid on drop.
struct Unbound {
    child: Child,
    port: u16,
    _scratch: Scratch,
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `records` are zone file lines for `dane.test.`; `sign` false serves the zone unsigned
/// while still trusting a key for it (validation then fails: bogus).
fn unbound(records: &[String], sign: bool) -> Unbound {
    let scratch = Scratch::new("unbound");
    let d = scratch.0.clone();
    let mut zone =
        "$ORIGIN dane.test.\n$TTL 300\n@ IN SOA ns.dane.test. h.dane.test. 1 3600 600 86400 300\n\
                    @ IN NS ns.dane.test.\nns IN A 127.0.0.1\n"
            .to_string();
    for r in records {
        zone.push_str(r);
        zone.push('\n');
    }
    std::fs::write(d.join("zone"), zone).unwrap();
    let keygen = |ksk: bool| {
        let mut c = Command::new("ldns-keygen");
        c.current_dir(&d).args(["-a", "ECDSAP256SHA256"]);
        if ksk {
            c.arg("-k");
        }
        let o = c
            .arg("dane.test")
            .output()
            .expect("ldns-keygen (package ldnsutils)");
        assert!(o.status.success());
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    };
    let (ksk, zsk) = (keygen(true), keygen(false));
    let zonefile = if sign {
        let o = Command::new("ldns-signzone")
            .current_dir(&d)
            .args(["-n", "zone", &zsk, &ksk])
            .output()
            .expect("ldns-signzone (package ldnsutils)");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        "zone.signed"
    } else {
        "zone"
    };
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = format!(
        "server:\n  interface: 127.0.0.1\n  port: {port}\n  do-ip6: no\n  username: \"\"\n  chroot: \"\"\n\
         \x20 directory: \"{d}\"\n  pidfile: \"{d}/unbound.pid\"\n  use-syslog: no\n\
         \x20 logfile: \"{d}/unbound.log\"\n  do-daemonize: no\n\
         \x20 trust-anchor-file: \"{d}/{ksk}.key\"\n  module-config: \"validator iterator\"\n\
         \x20 access-control: 127.0.0.0/8 allow\n  local-zone: \"test.\" nodefault\n\
         auth-zone:\n  name: \"dane.test.\"\n  zonefile: \"{d}/{zonefile}\"\n  for-upstream: yes\n\
         \x20 for-downstream: no\n  fallback-enabled: no\n",
        d = d.display()
    );
    std::fs::write(d.join("unbound.conf"), conf).unwrap();
    let child = Command::new("unbound")
        .args(["-d", "-c"])
        .arg(d.join("unbound.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("unbound (package unbound)");
    let u = Unbound {
        child,
        port,
        _scratch: scratch,
    };
    let ready = wait_for(10, || {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
        let q = [
            0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 4, b't', b'e', b's', b't', 0, 0, 1, 0, 1,
        ];
        s.set_read_timeout(Some(Duration::from_millis(200))).ok()?;
        s.send_to(&q, ("127.0.0.1", port)).ok()?;
        let mut b = [0u8; 512];
        s.recv(&mut b).ok().map(|_| ())
    });
    assert!(ready.is_some(), "unbound did not start");
    u
}

#[test]
fn dane_through_unbound_validating_a_signed_zone() {
    let p = pki(&["relay.dane.test"]);
    let spki = sqmail::dnstools::hex(&spki_sha256(&p.cert_der));
    let run = |tlsa_hex: &str, sign: bool| {
        let (port, _h) = tls_server(&p, false, b"");
        let ub = unbound(
            &[
                "relay IN A 127.0.0.1".to_string(),
                format!("_{port}._tcp.relay IN TLSA 3 1 1 {tlsa_hex}"),
            ],
            sign,
        );
        let inst = Instance::new();
        inst.control(
            "smtproutes",
            format!("example.test:relay.dane.test;{port}\n").as_bytes(),
        );
        inst.control("tlsdestinations", b"*:\n");
        let env = format!("127.0.0.1:{}", ub.port);
        let tool = {
            let mut c = Command::new(crate::harness::programs().join("dnstlsa"));
            c.args(["relay.dane.test", &port.to_string()])
                .env_clear()
                .env("DNSCACHEIP", &env);
            String::from_utf8_lossy(&run_with(c, b"", 30).stdout).into_owned()
        };
        let out = remote(
            &inst,
            &["example.test", "a@example.org", "b@example.test"],
            MSG,
            &[("DNSCACHEIP", &env)],
        );
        (tool, out)
    };
    let (tool, out) = run(&spki, true);
    assert_eq!(tool, format!("secure 3 1 1 {spki}\n"));
    assert_eq!(
        out,
        "r\0K127.0.0.1 TLS transmitted message accepted.\nRemote host said: 250 stored\n\0"
    );
    let wrong = "00".repeat(32);
    let (tool, out) = run(&wrong, true);
    assert_eq!(tool, format!("secure 3 1 1 {wrong}\n"));
    assert_eq!(
        out,
        "Z No TLSA record matches the X.509 certificate from: relay.dane.test. (#4.7.5)\n\0"
    );
    // A zone that should be signed but is not: the resolver calls it bogus and fails the
    // query, so nothing is delivered.
    let (_, out) = run(&spki, false);
    assert_eq!(
        out,
        "ZSorry, I couldn't find any host named: relay.dane.test. (#4.1.2)\n\0"
    );
}

/// One SMTP command to a server and its complete reply (the last line starts `NNN `).
fn smtp_say(r: &mut BufReader<TcpStream>, w: &mut TcpStream, line: &[u8]) -> String {
    if !line.is_empty() {
        w.write_all(line).unwrap();
    }
    let mut reply = String::new();
    loop {
        let mut l = String::new();
        assert!(
            r.read_line(&mut l).unwrap() > 0,
            "connection closed: {reply}"
        );
        reply.push_str(&l);
        if l.as_bytes().get(3) == Some(&b' ') {
            return reply;
        }
    }
}

/// Postfix with our tcpserver + qmail-smtpd as its relayhost: a message Postfix accepts on
/// its smtpd arrives in our queue with the envelope Postfix was given, Postfix's HELO in
/// our Received line, and the text as sent.
#[test]
fn postfix_relays_to_qmail_smtpd_as_its_relayhost() {
    let inst = Instance::new();
    inst.control("rcpthosts", b"example.test\n");
    let mut server = Command::new(crate::harness::programs().join("tcpserver"))
        .args(["-1", "-H", "-R", "-l", "0", "127.0.0.1", "0"])
        .arg(inst.bin("qmail-smtpd"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("QMAILHOME", &inst.home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("our tcpserver (cargo build --all)");
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _server = Kill(server);
    let ours: u16 = line.trim().parse().unwrap();
    let p = pki(&["postfix.test"]);
    let (smtp, smtps) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let _pf = postfix(&p, smtp, smtps, ours);
    let s = TcpStream::connect(("127.0.0.1", smtp)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let (mut r, mut w) = (BufReader::new(s.try_clone().unwrap()), s);
    assert!(smtp_say(&mut r, &mut w, b"").starts_with("220 "));
    for (cmd, want) in [
        (&b"EHLO client.test\r\n"[..], "250"),
        (b"MAIL FROM:<a@example.org>\r\n", "250"),
        (b"RCPT TO:<b@example.test>\r\n", "250"),
        (b"DATA\r\n", "354"),
        (WIRE, "250"),
        (b"QUIT\r\n", "221"),
    ] {
        let reply = smtp_say(&mut r, &mut w, cmd);
        assert!(
            reply.starts_with(want),
            "{:?}: {reply}",
            String::from_utf8_lossy(cmd)
        );
    }
    // todo/ is written last: once it is there the message is complete.
    wait_for(60, || (!inst.queue_dir("todo").is_empty()).then_some(()))
        .expect("Postfix relayed the message to qmail-smtpd");
    let got = crate::smtpd::queued(&inst);
    assert_eq!(got.len(), 1);
    let (mess, env) = &got[0];
    assert!(
        crate::smtpd::contains(
            env,
            &crate::smtpd::envelope("a@example.org", &["b@example.test"])
        ),
        "{}",
        String::from_utf8_lossy(env)
    );
    let text = String::from_utf8_lossy(mess).into_owned();
    assert!(
        text.contains("\nReceived: from unknown (HELO postfix.test) (127.0.0.1)\n  by "),
        "{text}"
    );
    assert!(
        text.contains("\nReceived: from client.test (localhost [127.0.0.1])\n"),
        "{text}"
    );
    assert!(
        text.contains("\nFrom: a@example.org\nSubject: hi\n"),
        "{text}"
    );
    assert!(text.ends_with("\n\n.leading dot\nline\n"), "{text}");
}

/// qmail-remote authenticates to a Postfix smtpd that requires AUTH (Dovecot SASL behind
/// it offering PLAIN, LOGIN and CRAM-MD5, AUTH only after STARTTLS) with the credentials
/// of the route (smtproutes `|user|password`), over TLS; a wrong password is refused with
/// Postfix's 535 and nothing is relayed.
#[test]
fn auth_to_a_postfix_that_requires_it() {
    let pw = Scratch::new("pfsasl");
    crate::auth::open_up(&pw.0);
    let pwfile = pw.0.join("passwd");
    std::fs::write(&pwfile, "joe@example.org:{PLAIN}sesame\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let dove = crate::auth::Dovecot::start(
        &format!(
            "  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {}",
            pwfile.display()
        ),
        "auth_mechanisms = plain login cram-md5",
    );
    let p = pki(&["postfix.test"]);
    let (smtp, smtps, sink) = (
        free_port("127.0.0.1"),
        free_port("127.0.0.1"),
        free_port("127.0.0.1"),
    );
    let scratch = Scratch::new("pfsasl-sink");
    let dir = scratch.0.join("dump");
    std::fs::create_dir_all(&dir).unwrap();
    let _sink = smtp_sink(&format!("127.0.0.1:{sink}"), &dir);
    let _pf = postfix_with(
        &p,
        smtp,
        smtps,
        sink,
        &format!(
            "mynetworks =\nsmtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = dovecot\n\
             smtpd_sasl_path = {}\nsmtpd_tls_auth_only = yes\n\
             smtpd_relay_restrictions = permit_sasl_authenticated, reject\n",
            dove.socket().display()
        ),
    );
    let inst = Instance::new();
    let ca = inst.home.join("control/ca.pem");
    std::fs::write(&ca, &p.ca_pem).unwrap();
    inst.control(
        "tlsdestinations",
        format!("127.0.0.1:{}\n", ca.display()).as_bytes(),
    );
    let args = ["example.test", "a@example.org", "b@example.test"];
    let route = |pass: &str| {
        inst.control(
            "smtproutes",
            format!("example.test:127.0.0.1;{smtp}|joe@example.org|{pass}\n").as_bytes(),
        );
    };
    route("sesame");
    let out = remote(&inst, &args, MSG, &[]);
    assert!(
        out.starts_with("r\0K127.0.0.1 TLS transmitted message accepted.\nRemote host said: 250 2.0.0 Ok: queued as "),
        "{out:?}"
    );
    route("wrong");
    let out = remote(&inst, &args, MSG, &[]);
    assert!(out.starts_with("Z"), "{out:?}");
    assert!(
        out.contains(" but authentication was rejected ("),
        "{out:?}"
    );
    assert!(out.contains("535 5.7.8"), "{out:?}");
    let got = wait_for(30, || {
        let d = dumps(&dir);
        (!d.is_empty()).then_some(d)
    })
    .expect("the authenticated message was relayed to smtp-sink");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        dumps(&dir).len(),
        1,
        "only the authenticated message went on"
    );
    let t = String::from_utf8_lossy(&got[0]).into_owned();
    assert!(t.contains(") with ESMTPSA id "), "{t}");
    assert!(t.ends_with("\n\n.leading dot\nline\n\n"), "{t}");
}

/// qmail-smtpam with an `s` port asks a server that speaks TLS from the first byte (Postfix
/// with smtpd_tls_wrappermode): an accepted recipient exits 0, a refused one 1; the same
/// port without the `s` cannot be spoken to (111).
#[test]
fn smtpam_over_implicit_tls_to_postfix() {
    let p = pki(&["postfix.test"]);
    let (smtp, smtps, sink) = (
        free_port("127.0.0.1"),
        free_port("127.0.0.1"),
        free_port("127.0.0.1"),
    );
    let _pf = postfix_with(
        &p,
        smtp,
        smtps,
        sink,
        "mynetworks =\nsmtpd_relay_restrictions = reject_unauth_destination\n",
    );
    let inst = Instance::new();
    // The plain attempt below waits for a greeting that never comes.
    inst.control("timeoutremote", b"3\n");
    let ask = |port: String, addr: &[u8]| {
        let mut c = inst.cmd("qmail-smtpam");
        c.arg("127.0.0.1").arg(port);
        let o = crate::auth::fd3(c, &[addr, b"\0\0\0"].concat());
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert_eq!(ask(format!("s{smtps}"), b"b@example.test").0, Some(0));
    assert_eq!(ask(format!("S{smtps}"), b"b@example.test").0, Some(0));
    assert_eq!(ask(format!("s{smtps}"), b"x@elsewhere.test").0, Some(1));
    let (code, err) = ask(format!("{smtps}"), b"b@example.test");
    assert_eq!(code, Some(111), "{err}");
}
