//! The relay decision, the open-relay tricks, and the sender/recipient/HELO filters.

use std::process::{Child, Command, Stdio};

use super::{contains, envelope, queued, replies, session};
use crate::harness::{Instance, run_with};

const R553: &str = "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)\r\n";

fn rcpt(inst: &Instance, env: &[(&str, &str)], to: &str) -> String {
    let r = replies(
        inst,
        env,
        format!("MAIL FROM:<a@b.test>\r\nRCPT TO:{to}\r\n").as_bytes(),
    );
    r.strip_prefix("250 ok\r\n").unwrap_or(&r).to_string()
}

#[test]
fn rcpthosts_domains_suffixes_and_morercpthosts() {
    let inst = Instance::new();
    inst.control("rcpthosts", b"test.example\n.sub.example.net\n# comment\n");
    inst.control("morercpthosts", b"more.example\n.deep.example\n");
    let o = run_with(inst.cmd("qmail-newmrh"), b"", 10);
    assert!(o.status.success(), "{o:?}");
    for (to, ok) in [
        ("<u@test.example>", true),
        ("<u@TEST.Example>", true),
        ("<u@x.sub.example.net>", true),
        ("<u@sub.example.net>", false),
        ("<u@more.example>", true),
        ("<u@a.deep.example>", true),
        ("<u@deep.example>", false),
        ("<u@elsewhere.test>", false),
        ("<postmaster>", true),
    ] {
        let want = if ok { "250 ok\r\n" } else { R553 };
        assert_eq!(rcpt(&inst, &[], to), want, "{to}");
    }
    let (_, log) = session(
        &inst,
        &[("REPLY_NOGATEWAY", "relaying denied")],
        b"MAIL FROM:<a@b>\r\nRCPT TO:<u@x.test>\r\n",
    );
    assert!(
        log.contains(
            " Reject::SNDR::Invalid_Relay P:ESMTP S:127.0.0.1:client.test H: F:a@b T:u@x.test\n"
        ),
        "{log}"
    );
    assert_eq!(
        rcpt(
            &inst,
            &[("REPLY_NOGATEWAY", "relaying denied")],
            "<u@x.test>"
        ),
        "553 sorry, that domain isn't in my list of allowed rcpthosts relaying denied (#5.7.1)\r\n"
    );
}

#[test]
fn relayclient_relays_and_appends_its_value() {
    let inst = Instance::new();
    let (out, log) = session(
        &inst,
        &[("RELAYCLIENT", "")],
        b"MAIL FROM:<a@b.test>\r\nRCPT TO:<u@far.test>\r\nDATA\r\nx\r\n.\r\n",
    );
    assert!(out.contains("354 go ahead\r\n250 ok "), "{out}");
    assert!(log.contains(" Accept::RCPT::Relay_Client "), "{log}");
    let r = rcpt(&inst, &[("RELAYCLIENT", "@relay.test")], "<u@far.test>");
    assert_eq!(r, "250 ok\r\n");
    let (out, _) = session(
        &inst,
        &[("RELAYCLIENT", "@relay.test")],
        b"MAIL FROM:<a@b.test>\r\nRCPT TO:<u@far.test>\r\nDATA\r\nx\r\n.\r\n",
    );
    assert!(out.contains("250 ok "), "{out}");
    let q = queued(&inst);
    assert!(
        q.iter()
            .any(|(_, e)| contains(e, &envelope("a@b.test", &["u@far.test@relay.test"])))
    );
}

#[test]
fn missing_rcpthosts_accepts_everything_with_a_warning() {
    let inst = Instance::new();
    std::fs::remove_file(inst.home.join("control/rcpthosts")).unwrap();
    let (out, log) = session(
        &inst,
        &[],
        b"MAIL FROM:<a@b>\r\nRCPT TO:<u@anywhere.test>\r\n",
    );
    assert!(out.ends_with("250 ok\r\n250 ok\r\n"), "{out}");
    assert!(
        log.contains("qmail-smtpd: warning: control/rcpthosts is missing"),
        "{log}"
    );
}

/// Recipient forms that try to get mail relayed: every one is refused at RCPT, or accepted
/// only with a final domain that is ours (so the message stays local).
#[test]
fn open_relay_tricks_are_refused() {
    let inst = Instance::new();
    let tricks = [
        "<victim@evil.test>",
        "<VICTIM@EVIL.TEST>",
        "<victim@evil.test.>",
        "<victim@test.example.>",
        "<victim@test.example.evil.test>",
        "<victim@evil.test@>",
        "<victim@[1.2.3.4]>",
        "<victim@[127.0.0.2]>",
        "<victim@[IPv6:2001:db8::1]>",
        "<@test.example:victim@evil.test>",
        "<@test.example,@x:victim@evil.test>",
        "<victim@evil.test@test.example@evil.test>",
        "<victim%evil.test@evil.test>",
        "<\"victim@evil.test\"@evil.test>",
        "<victim@evil.test> <u@test.example>",
        "<victim@evil.test >",
        " <victim@evil.test>",
        "  <victim@evil.test>  SIZE=1",
        "< victim@evil.test>",
        "<victim\\@test.example@evil.test>",
        "<victim@evil.test\\>",
        "<victim@evil.test%test.example>",
        "<victim@evil.test!test.example>",
        "<victim@localhost.evil.test>",
        "<victim@evil.test\t>",
        "<victim@test.example\0>",
        "<victim@xtest.example>",
        "<victim@test-example>",
    ];
    for t in tricks {
        let r = rcpt(&inst, &[], t);
        assert!(
            r == R553 || r.starts_with("555 ") || r.starts_with("501 "),
            "{t:?} got {r:?}"
        );
    }
    // These name one of our domains last: accepted, and delivered here.
    let local = [
        (
            "<victim%evil.test@test.example>",
            "victim%evil.test@test.example",
        ),
        (
            "<evil.test!victim@test.example>",
            "evil.test!victim@test.example",
        ),
        (
            "<\"victim@evil.test\"@test.example>",
            "victim@evil.test@test.example",
        ),
        ("<@evil.test:victim@test.example>", "victim@test.example"),
        (
            "<victim@evil.test@test.example>",
            "victim@evil.test@test.example",
        ),
        ("<victim@[127.0.0.1]>", "victim@test.example"),
        ("<\"victim@test.example\">", "victim@test.example"),
    ];
    for (t, addr) in local {
        let input = format!("MAIL FROM:<a@b>\r\nRCPT TO:{t}\r\nDATA\r\nx\r\n.\r\n");
        let (out, _) = session(&inst, &[], input.as_bytes());
        assert!(out.contains("354 go ahead\r\n250 ok "), "{t}: {out}");
        let q = queued(&inst);
        assert!(
            q.iter()
                .any(|(_, e)| contains(e, format!("T{addr}\0").as_bytes())),
            "{t}"
        );
    }
}

#[test]
fn badmailfrom_wildmat_negation_in_file_order() {
    let inst = Instance::new();
    inst.control(
        "badmailfrom",
        b"*@spam.test\n!friend@spam.test\n@bad.test\nexact@x.test\n",
    );
    for (from, bad) in [
        ("x@spam.test", true),
        ("friend@spam.test", false),
        ("y@bad.test", true),
        ("EXACT@x.test", true),
        ("other@x.test", false),
    ] {
        let r = replies(
            &inst,
            &[],
            format!("MAIL FROM:<{from}>\r\nRCPT TO:<u@test.example>\r\n").as_bytes(),
        );
        let want = if bad {
            "250 ok\r\n553 sorry, your envelope sender is in my badmailfrom list (#5.7.1)\r\n"
        } else {
            "250 ok\r\n250 ok\r\n"
        };
        assert_eq!(r, want, "{from}");
    }
    let (_, log) = session(
        &inst,
        &[],
        b"MAIL FROM:<y@bad.test>\r\nRCPT TO:<u@test.example>\r\n",
    );
    assert!(log.contains(" Reject::ORIG::Bad_Mailfrom P:ESMTP S:127.0.0.1:client.test H: F:y@bad.test T:u@test.example @\n"), "{log}");
}

#[test]
fn badrcptto_whitelists_with_negation() {
    let inst = Instance::new();
    inst.control("badrcptto", b"*@test.example\n!ok@test.example\n");
    assert_eq!(
        rcpt(&inst, &[("REPLY_BADRCPTTO", "no")], "<x@test.example>"),
        "553 sorry, your envelope recipient is in my badrcptto list no (#5.7.1)\r\n"
    );
    assert_eq!(rcpt(&inst, &[], "<ok@test.example>"), "250 ok\r\n");
    assert!(
        rcpt(&inst, &[("RELAYCLIENT", "")], "<x@test.example>")
            .starts_with("553 sorry, your envelope recipient")
    );
}

#[test]
fn helocheck_modes() {
    let inst = Instance::new();
    inst.control("badhelo", b"*.dialup.test\n!ok.dialup.test\nlocalhost\n");
    let bad = "550 sorry, invalid HELO/EHLO greeting (#5.7.1)\r\n";
    let t = |env: &[(&str, &str)], helo: &str| {
        let r = replies(
            &inst,
            env,
            format!("{helo}MAIL FROM:<a@b>\r\nRCPT TO:<u@test.example>\r\n").as_bytes(),
        );
        r.rsplit_once("250 ok\r\n")
            .map_or(r.clone(), |x| x.1.to_string())
    };
    assert_eq!(t(&[], ""), "250 ok\r\n".replace("250 ok\r\n", ""));
    assert_eq!(t(&[("HELOCHECK", "!")], ""), bad);
    assert_eq!(t(&[("HELOCHECK", "!")], "HELO x.test\r\n"), "");
    assert_eq!(t(&[("HELOCHECK", "")], "HELO a.dialup.test\r\n"), bad);
    assert_eq!(t(&[("HELOCHECK", "")], "HELO ok.dialup.test\r\n"), "");
    assert_eq!(t(&[("HELOCHECK", ".")], "EHLO LOCALHOST\r\n"), bad);
    assert_eq!(t(&[("HELOCHECK", "=")], "HELO other.test\r\n"), bad);
    assert_eq!(t(&[("HELOCHECK", "=")], "HELO client.test\r\n"), "");
    assert_eq!(t(&[("HELOCHECK", "!"), ("RELAYCLIENT", "")], ""), "");
    assert_eq!(
        t(&[("HELOCHECK", "!"), ("REPLY_HELO", "say hello")], ""),
        "550 sorry, invalid HELO/EHLO greeting say hello (#5.7.1)\r\n"
    );
}

struct Dnsmasq(Child);

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dnsmasq(port: u16) -> Dnsmasq {
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
            "--local=/mf.test/",
            "--mx-host=good.mf.test,mx.mf.test,10",
            "--host-record=aonly.mf.test,192.0.2.1",
            "--host-record=helo.mf.test,192.0.2.2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dnsmasq (package dnsmasq-base)");
    std::thread::sleep(std::time::Duration::from_millis(500));
    Dnsmasq(child)
}

#[test]
fn mfdnscheck_answers_at_mail() {
    let inst = Instance::new();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _d = dnsmasq(port);
    let dns = format!("127.0.0.1:{port}");
    let env = [("MFDNSCHECK", ""), ("DNSCACHEIP", dns.as_str())];
    let r = replies(
        &inst,
        &env,
        b"MAIL FROM:<a@good.mf.test>\r\nMAIL FROM:<a@aonly.mf.test>\r\nMAIL FROM:<a@none.mf.test>\r\nRCPT TO:<u@test.example>\r\nMAIL FROM:<>\r\n",
    );
    assert_eq!(
        r,
        "250 ok\r\n250 ok\r\n553 sorry, your envelope sender must exist (#5.7.1)\r\n503 MAIL first (#5.5.1)\r\n250 ok\r\n"
    );
    let r = replies(&inst, &[("HELOCHECK", "A"), ("DNSCACHEIP", dns.as_str())], b"HELO helo.mf.test\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@test.example>\r\nHELO nohost.mf.test\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@test.example>\r\n");
    assert_eq!(
        r,
        "250 test.example\r\n250 ok\r\n250 ok\r\n250 test.example\r\n250 ok\r\n550 sorry, invalid HELO/EHLO greeting (#5.7.1)\r\n"
    );
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead_addr = format!("127.0.0.1:{}", dead.local_addr().unwrap().port());
    let r = replies(
        &inst,
        &[("MFDNSCHECK", ""), ("DNSCACHEIP", dead_addr.as_str())],
        b"MAIL FROM:<a@b.test>\r\n",
    );
    assert_eq!(r, "451 DNS temporary failure (#4.3.0)\r\n");
}
