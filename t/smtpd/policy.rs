//! Recipient verification (control/recipients, cdb and PAM, RECIPIENTS450, REPLY_MAILBOX,
//! the tarpit), the senders of relay clients (LOCALMFCHECK in each mode, with
//! mailfromrules.cdb) and the attachment filters (BADMIMETYPE, BADLOADERTYPE), all with
//! databases built by the real compilers.

use super::{Talk, auth::checkpassword, contains, envelope, queued, script, smtpd};
use crate::harness::{Instance, run_with};

/// Runs a pipelined session of qmail-smtpd with `args` (a checkprogram); returns the
/// replies after the greeting and the log.
fn talk(inst: &Instance, env: &[(&str, &str)], args: &[&str], input: &str) -> (String, String) {
    let o = run_with(smtpd(inst, env, args), input.as_bytes(), 30);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let g = "220 test.example ESMTP\r\n";
    assert!(out.starts_with(g), "greeting: {out:?}");
    (
        out[g.len()..].to_string(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn session(inst: &Instance, env: &[(&str, &str)], input: &str) -> (String, String) {
    talk(inst, env, &[], input)
}

/// The log lines of qmail-smtpd, each without its `qmail-smtpd: pid N ` prefix.
fn decisions(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("qmail-smtpd: pid ")?;
            let (pid, d) = rest.split_once(' ')?;
            assert!(pid.parse::<u32>().is_ok(), "{l}");
            Some(d.to_string())
        })
        .collect()
}

fn compile(inst: &Instance, prog: &str) {
    let o = run_with(inst.cmd(prog), b"", 10);
    assert!(o.status.success(), "{prog}: {o:?}");
}

/// users/recipients.cdb with joe and the VERP prefix list-, and control/recipients naming it.
fn recipients_cdb(inst: &Instance) {
    std::fs::write(
        inst.home.join("users/recipients"),
        "# local users\njoe@test.example\nlist-@test.example\n",
    )
    .unwrap();
    compile(inst, "qmail-recipients");
    inst.control("recipients", b"test.example:users/recipients.cdb\n");
}

const S: &str = "P:ESMTP S:127.0.0.1:client.test H:c.test F:a@b.test";
const R550: &str = "550 sorry, no mailbox by that name (#5.7.1)\r\n";

#[test]
fn recipients_cdb_accepts_known_and_refuses_unknown_mailboxes() {
    let inst = Instance::new();
    recipients_cdb(&inst);
    let input = "HELO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<Joe@Test.Example>\r\nRCPT TO:<nobody@test.example>\r\nRCPT TO:<list-owner@test.example>\r\nRCPT TO:<postmaster>\r\n";
    let (out, log) = session(&inst, &[], input);
    assert_eq!(
        out,
        [
            "250 test.example\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            R550,
            "250 ok\r\n",
            R550
        ]
        .concat()
    );
    assert_eq!(
        decisions(&log),
        [
            format!("Accept::RCPT::Recipients_Cdb {S} T:Joe@Test.Example"),
            format!("Reject::RCPT::Failed_Rcptto {S} T:nobody@test.example"),
            format!("Accept::RCPT::Recipients_Cdb {S} T:list-owner@test.example"),
            format!("Reject::RCPT::Failed_Rcptto {S} T:postmaster"),
        ]
    );

    let (out, _) = session(&inst, &[("REPLY_MAILBOX", "ask the postmaster")], input);
    assert!(
        out.ends_with(
            "250 ok\r\n550 sorry, no mailbox by that name ask the postmaster (#5.7.1)\r\n"
        ),
        "{out}"
    );
    let (out, log) = session(&inst, &[("RECIPIENTS450", "")], input);
    assert!(
        out.ends_with("250 ok\r\n450 sorry, mailbox currently unavailable (#4.2.1)\r\n"),
        "{out}"
    );
    assert!(
        decisions(&log).contains(&format!("Reject::RCPT::Failed_Rcptto {S} T:postmaster")),
        "{log}"
    );

    // Relay clients are not verified; without control/recipients nobody is.
    let (out, log) = session(&inst, &[("RELAYCLIENT", "")], input);
    assert!(
        out.ends_with("250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n"),
        "{out}"
    );
    assert!(log.contains("Accept::RCPT::Relay_Client"), "{log}");
    std::fs::remove_file(inst.home.join("control/recipients")).unwrap();
    let (out, log) = session(&inst, &[], input);
    assert!(
        out.ends_with("250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n"),
        "{out}"
    );
    assert!(
        decisions(&log).contains(&format!(
            "Accept::RCPT::Rcpthosts_Rcptto {S} T:nobody@test.example"
        )),
        "{log}"
    );
}

#[test]
fn recipients_wildcard_and_pass_lines() {
    let inst = Instance::new();
    inst.control("rcpthosts", b"test.example\nopen.example\nother.example\n");
    recipients_cdb(&inst);
    let input = "HELO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@open.example>\r\nRCPT TO:<x@test.example>\r\nRCPT TO:<x@other.example>\r\nRCPT TO:<joe@test.example>\r\n";
    inst.control(
        "recipients",
        b"!open.example\n@test.example:users/recipients.cdb\n",
    );
    let (out, log) = session(&inst, &[], input);
    assert_eq!(
        out,
        [
            "250 test.example\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            R550,
            R550,
            "250 ok\r\n"
        ]
        .concat()
    );
    assert_eq!(
        decisions(&log),
        [
            format!("Accept::RCPT::Recipients_Wild {S} T:x@open.example"),
            format!("Reject::RCPT::Failed_Rcptto {S} T:x@test.example"),
            format!("Reject::RCPT::Failed_Rcptto {S} T:x@other.example"),
            format!("Accept::RCPT::Recipients_Cdb {S} T:joe@test.example"),
        ]
    );
    // A last `!*` lets through what no earlier line vouched for.
    inst.control(
        "recipients",
        b"!open.example\n@test.example:users/recipients.cdb\n!*\n",
    );
    let (out, log) = session(&inst, &[], input);
    assert_eq!(
        out,
        "250 test.example\r\n250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n"
    );
    assert_eq!(
        decisions(&log),
        [
            format!("Accept::RCPT::Recipients_Wild {S} T:x@open.example"),
            format!("Accept::RCPT::Rcpthosts_Rcptto {S} T:x@test.example"),
            format!("Accept::RCPT::Rcpthosts_Rcptto {S} T:x@other.example"),
            format!("Accept::RCPT::Recipients_Cdb {S} T:joe@test.example"),
        ]
    );
}

/// A recipients PAM: exits 0 for ok@, 111 for temp@, 1 otherwise; it logs what it read.
const PAM: &str = "#!/bin/sh\naddr=$(tr '\\000' '\\n' <&3 | head -n 1)\necho \"$addr\" >>\"$0.seen\"\ncase \"$addr\" in\nok@*) exit 0 ;;\ntemp@*) exit 111 ;;\n*) exit 1 ;;\nesac\n";

#[test]
fn recipients_pam_answers_0_1_and_111() {
    let inst = Instance::new();
    let pam = script(&inst, "pam", PAM);
    inst.control(
        "recipients",
        format!("test.example|{} arg1\n", pam.display()).as_bytes(),
    );
    let (out, log) = session(
        &inst,
        &[],
        "HELO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<ok@test.example>\r\nRCPT TO:<no@test.example>\r\nRCPT TO:<temp@test.example>\r\nNOOP\r\n",
    );
    assert_eq!(
        out,
        [
            "250 test.example\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            R550,
            "421 unable to check recipients (#4.3.0)\r\n",
        ]
        .concat(),
        "the session ends after 421"
    );
    assert_eq!(
        decisions(&log),
        [
            format!("Accept::RCPT::Recipients_Pam {S} T:ok@test.example"),
            format!("Reject::RCPT::Failed_Rcptto {S} T:no@test.example"),
        ]
    );
    let seen = std::fs::read_to_string(inst.home.join("pam.seen")).unwrap();
    assert_eq!(
        seen,
        "ok@test.example\nno@test.example\ntemp@test.example\n"
    );
}

#[test]
fn unknown_recipients_feed_the_tarpit() {
    let inst = Instance::new();
    recipients_cdb(&inst);
    let (out, log) = session(
        &inst,
        &[("TARPITCOUNT", "2")],
        "HELO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<joe@test.example>\r\nRCPT TO:<x@test.example>\r\nRCPT TO:<y@test.example>\r\nRCPT TO:<joe@test.example>\r\n",
    );
    let r452 = "452 sorry, too many recipients (#4.5.3)\r\n";
    assert_eq!(
        out,
        [
            "250 test.example\r\n",
            "250 ok\r\n",
            "250 ok\r\n",
            R550,
            R550,
            r452
        ]
        .concat()
    );
    assert_eq!(
        decisions(&log),
        [
            format!("Accept::RCPT::Recipients_Cdb {S} T:joe@test.example"),
            format!("Reject::RCPT::Failed_Rcptto {S} T:x@test.example"),
            format!("Reject::RCPT::Failed_Rcptto {S} T:y@test.example"),
            format!("Reject::RCPT::Toomany_Rcptto {S} T:joe@test.example"),
        ]
    );
    // Known recipients do not count.
    let (out, _) = session(
        &inst,
        &[("TARPITCOUNT", "2")],
        "MAIL FROM:<a@b.test>\r\nRCPT TO:<joe@test.example>\r\nRCPT TO:<x@test.example>\r\nRCPT TO:<joe@test.example>\r\nRCPT TO:<joe@test.example>\r\n",
    );
    assert_eq!(
        out,
        ["250 ok\r\n250 ok\r\n", R550, "250 ok\r\n250 ok\r\n"].concat()
    );
}

const MAV553: &str = "553 sorry, invalid sender address specified (#5.7.1)\r\n";

/// One relay transaction per sender: the RCPT reply and the log decisions.
fn mav(
    inst: &Instance,
    env: &[(&str, &str)],
    args: &[&str],
    pre: &str,
    from: &str,
) -> (String, Vec<String>) {
    let (out, log) = talk(
        inst,
        env,
        args,
        &format!("{pre}MAIL FROM:<{from}>\r\nRCPT TO:<u@far.test>\r\n"),
    );
    let rcpt = out.lines().last().unwrap_or_default().to_string() + "\r\n";
    (rcpt, decisions(&log))
}

#[test]
fn localmfcheck_empty_wants_a_rcpthosts_domain() {
    let inst = Instance::new();
    let env = [("RELAYCLIENT", ""), ("LOCALMFCHECK", "")];
    let (r, log) = mav(&inst, &env, &[], "", "joe@Test.Example");
    assert_eq!(r, "250 ok\r\n");
    assert_eq!(
        log,
        [
            "Accept::ORIG::Local_Sender P:ESMTPM S:127.0.0.1:client.test H: F:joe@Test.Example T:u@far.test"
        ]
    );
    let (r, log) = mav(&inst, &env, &[], "", "joe@elsewhere.test");
    assert_eq!(r, MAV553);
    assert_eq!(
        log,
        [
            "Reject::ORIG::Invalid_Mailfrom P:ESMTP S:127.0.0.1:client.test H: F:joe@elsewhere.test T:u@far.test"
        ]
    );
    // The null sender is never checked.
    let (r, log) = mav(&inst, &env, &[], "", "");
    assert_eq!(r, "250 ok\r\n");
    assert_eq!(
        log,
        ["Accept::RCPT::Relay_Client P:ESMTP S:127.0.0.1:client.test H: F: T:u@far.test"]
    );
    let (r, _) = mav(
        &inst,
        &[
            ("RELAYCLIENT", ""),
            ("LOCALMFCHECK", ""),
            ("REPLY_SENDERINVALID", "use your own address"),
        ],
        &[],
        "",
        "joe@elsewhere.test",
    );
    assert_eq!(
        r,
        "553 sorry, invalid sender address specified use your own address (#5.7.1)\r\n"
    );
    // Without LOCALMFCHECK, and for clients that may not relay, nothing is checked.
    let (r, _) = mav(&inst, &[("RELAYCLIENT", "")], &[], "", "joe@elsewhere.test");
    assert_eq!(r, "250 ok\r\n");
    let (out, log) = session(
        &inst,
        &[("LOCALMFCHECK", "")],
        "MAIL FROM:<joe@elsewhere.test>\r\nRCPT TO:<u@test.example>\r\n",
    );
    assert_eq!(out, "250 ok\r\n250 ok\r\n");
    assert!(
        log.contains(" Accept::RCPT::Rcpthosts_Rcptto P:ESMTP "),
        "{log}"
    );
}

#[test]
fn localmfcheck_domain_names_one_more_domain() {
    let inst = Instance::new();
    let env = [("RELAYCLIENT", ""), ("LOCALMFCHECK", "example.org")];
    for (from, ok) in [
        ("joe@example.org", true),
        ("joe@EXAMPLE.org", true),
        ("joe@test.example", true),
        ("joe@sub.example.org", false),
        ("joe@example", false),
        ("joe@elsewhere.test", false),
    ] {
        let (r, _) = mav(&inst, &env, &[], "", from);
        assert_eq!(r, if ok { "250 ok\r\n" } else { MAV553 }, "{from}");
    }
}

#[test]
fn localmfcheck_bang_uses_mailfromrules() {
    let inst = Instance::new();
    let env = [
        ("RELAYCLIENT", ""),
        ("LOCALMFCHECK", "!"),
        ("TCPREMOTEINFO", "joe"),
    ];
    // Without the database: rcpthosts, as for an empty LOCALMFCHECK.
    assert_eq!(
        mav(&inst, &env, &[], "", "bob@test.example").0,
        "250 ok\r\n"
    );
    assert_eq!(mav(&inst, &env, &[], "", "bob@elsewhere.test").0, MAV553);
    std::fs::write(
        inst.home.join("control/mailfromrules"),
        "joe&joe@test.example,@joe.example\n=client.test&info@club.example\n10.9.9.9&\n",
    )
    .unwrap();
    compile(&inst, "qmail-mfrules");
    for (from, ok) in [
        ("joe@test.example", true),
        ("anyone@joe.example", true),
        ("info@club.example", true),
        ("bob@test.example", false),
        ("joe@elsewhere.test", false),
    ] {
        let (r, log) = mav(&inst, &env, &[], "", from);
        assert_eq!(r, if ok { "250 ok\r\n" } else { MAV553 }, "{from}");
        let want = if ok {
            format!(
                "Accept::ORIG::Local_Sender P:ESMTPM S:127.0.0.1:client.test H: F:{from} T:u@far.test"
            )
        } else {
            format!(
                "Reject::ORIG::Invalid_Mailfrom P:ESMTP S:127.0.0.1:client.test H: F:{from} T:u@far.test"
            )
        };
        assert_eq!(log, [want], "{from}");
    }
    // An empty list allows any sender.
    let env = [
        ("RELAYCLIENT", ""),
        ("LOCALMFCHECK", "!"),
        ("TCPREMOTEIP", "10.9.9.9"),
    ];
    assert_eq!(mav(&inst, &env, &[], "", "who@ever.test").0, "250 ok\r\n");
}

#[test]
fn localmfcheck_equals_wants_the_authenticated_user() {
    let inst = Instance::new();
    let env = [
        ("RELAYCLIENT", ""),
        ("LOCALMFCHECK", "="),
        ("TCPREMOTEINFO", "joe@test.example"),
    ];
    assert_eq!(
        mav(&inst, &env, &[], "", "JOE@test.example").0,
        "250 ok\r\n"
    );
    assert_eq!(mav(&inst, &env, &[], "", "bob@test.example").0, MAV553);
    let env = [("RELAYCLIENT", ""), ("LOCALMFCHECK", "=")];
    assert_eq!(mav(&inst, &env, &[], "", "joe@test.example").0, MAV553);

    // After AUTH the user is the authenticated one, and the label reads ESMTPAM.
    let cp = checkpassword(&inst);
    let records = inst.home.join("records").display().to_string();
    let env = [
        ("RECORDS", records.as_str()),
        ("PLAINTEXTAUTH", ""),
        ("SMTPAUTH", ""),
        ("LOCALMFCHECK", "="),
    ];
    for (from, ok) in [("joe", true), ("bob@test.example", false)] {
        let mut t = Talk::start(smtpd(&inst, &env, &[&cp, "true"]));
        assert_eq!(
            t.cmd("AUTH PLAIN AGpvZQBzZWNyZXQ="),
            "235 ok, go ahead (#2.0.0)\r\n"
        );
        assert_eq!(t.cmd(&format!("MAIL FROM:<{from}>")), "250 ok\r\n");
        let r = t.cmd("RCPT TO:<u@far.test>");
        assert_eq!(r, if ok { "250 ok\r\n" } else { MAV553 }, "{from}");
        if ok {
            assert_eq!(t.cmd("DATA"), "354 go ahead\r\n");
            assert!(t.cmd("x\r\n.").starts_with("250 ok "));
        }
        assert_eq!(t.cmd("QUIT"), "221 test.example\r\n");
        t.finish();
    }
    let q = queued(&inst);
    assert_eq!(q.len(), 1);
    assert!(
        contains(&q[0].0, b"(joe@127.0.0.1)\n  by mx.test with ESMTPAM; "),
        "{}",
        String::from_utf8_lossy(&q[0].0)
    );
}

#[test]
fn localmfcheck_question_mark_wants_the_certificate_address() {
    let inst = Instance::new();
    let tls = [
        ("TCPLOCALPORT", "465"),
        ("SSL_PROTOCOL", "TLSv1.3"),
        ("SSL_CIPHER", "TLS_AES_128_GCM_SHA256"),
        ("SSL_CIPHER_USEKEYSIZE", "128"),
        ("SSL_CIPHER_ALGKEYSIZE", "128"),
        ("SSL_CLIENT_VERIFY", "SUCCESS"),
        ("LOCALMFCHECK", "?"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut e = tls.to_vec();
        e.extend_from_slice(extra);
        e
    };
    let email = with(&[
        ("SSL_CLIENT_S_DN", "/O=Org/CN=joe"),
        ("SSL_CLIENT_S_DN_Email", "joe@test.example"),
    ]);
    let (r, log) = mav(&inst, &email, &[], "", "joe@test.example");
    assert_eq!(r, "250 ok\r\n");
    assert_eq!(
        log,
        [
            "Accept::ORIG::Local_Sender P:ESMTPSAM S:127.0.0.1:client.test H: F:joe@test.example T:u@far.test"
        ]
    );
    assert_eq!(mav(&inst, &email, &[], "", "bob@test.example").0, MAV553);
    let in_dn = with(&[(
        "SSL_CLIENT_S_DN",
        "/O=Org/CN=joe/emailAddress=joe@dn.example",
    )]);
    assert_eq!(
        mav(&inst, &in_dn, &[], "", "joe@dn.example").0,
        "250 ok\r\n"
    );
    assert_eq!(mav(&inst, &in_dn, &[], "", "joe@test.example").0, MAV553);
    let none = with(&[("SSL_CLIENT_S_DN", "/O=Org/CN=joe")]);
    assert_eq!(mav(&inst, &none, &[], "", "joe@test.example").0, MAV553);
}

/// A message with a Windows executable (MZ header) as a base64 attachment.
const EXE_MAIL: &str = "Subject: tool\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n--b1\r\nContent-Type: application/octet-stream; name=\"tool.exe\"\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\nAAAAgAAAAA4fug4AtAnNIbgBTM0hVGhpcyBwcm9ncmFtIGNhbm5vdCBiZSBydW4gaW4gRE9TIG1v\r\nZGUuDQ0KJAAAAAAAAAA=\r\n--b1--\r\n.\r\n";

fn send_exe(inst: &Instance, env: &[(&str, &str)]) -> (String, Vec<String>) {
    let (out, log) = session(
        inst,
        env,
        &format!(
            "HELO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<joe@test.example>\r\nDATA\r\n{EXE_MAIL}NOOP\r\n"
        ),
    );
    (out, decisions(&log))
}

const R554: &str = "554 sorry, invalid message content (#5.3.2)\r\n";

fn data_reply(out: &str) -> String {
    let want = "250 test.example\r\n250 ok\r\n250 ok\r\n354 go ahead\r\n";
    assert!(out.starts_with(want), "{out}");
    assert!(
        out.ends_with("\r\n250 ok\r\n"),
        "the session goes on: {out}"
    );
    out[want.len()..out.len() - "250 ok\r\n".len()].to_string()
}

fn badmimetypes(inst: &Instance) {
    inst.control(
        "badmimetypes",
        b"# windows executables\nTVqQAAMAA exe\nUEsDBBQAA zip\n",
    );
    compile(inst, "qmail-badmimetypes");
}

#[test]
fn badmimetype_refuses_an_exe_attachment_and_queues_nothing() {
    let inst = Instance::new();
    badmimetypes(&inst);
    let (out, log) = send_exe(&inst, &[("BADMIMETYPE", "")]);
    assert_eq!(data_reply(&out), R554);
    assert_eq!(
        log.last().unwrap(),
        &format!("Reject::DATA::Bad_MIME {S} T:joe@test.example 'TVqQAAMAA'")
    );
    assert!(inst.queue_files().is_empty(), "{:?}", inst.queue_files());

    let (out, _) = send_exe(
        &inst,
        &[("BADMIMETYPE", ""), ("REPLY_CONTENT", "no executables")],
    );
    assert_eq!(
        data_reply(&out),
        "554 sorry, invalid message content no executables (#5.3.2)\r\n"
    );
    assert!(inst.queue_files().is_empty());

    // Without BADMIMETYPE, or with BADMIMETYPE=-, the same message is queued.
    for env in [&[][..], &[("BADMIMETYPE", "-")][..]] {
        let (out, _) = send_exe(&inst, env);
        assert!(data_reply(&out).starts_with("250 ok "), "{out}");
    }
    let q = queued(&inst);
    assert_eq!(q.len(), 2);
    assert!(contains(&q[0].0, b"\nTVqQAAMAAAAEAAAA//8AALgAAAAA"));
    assert!(contains(
        &q[0].1,
        &envelope("a@b.test", &["joe@test.example"])
    ));
}

#[test]
fn badmimetype_plus_spares_relay_clients() {
    let inst = Instance::new();
    badmimetypes(&inst);
    let (out, _) = send_exe(&inst, &[("BADMIMETYPE", "+")]);
    assert_eq!(data_reply(&out), R554);
    assert!(inst.queue_files().is_empty());
    let (out, log) = send_exe(&inst, &[("BADMIMETYPE", "+"), ("RELAYCLIENT", "")]);
    assert!(data_reply(&out).starts_with("250 ok "), "{out}");
    assert!(!log.iter().any(|l| l.contains("Bad_MIME")), "{log:?}");
    assert_eq!(queued(&inst).len(), 1);
    // Without the `+` relay clients are filtered too.
    let (out, _) = send_exe(&inst, &[("BADMIMETYPE", ""), ("RELAYCLIENT", "")]);
    assert_eq!(data_reply(&out), R554);
    assert_eq!(queued(&inst).len(), 1);
}

#[test]
fn badloadertype_finds_a_signature_anywhere_in_the_part() {
    let inst = Instance::new();
    inst.control("badloadertypes", b"M1p0a\nbm5vd\n");
    compile(&inst, "qmail-badloadertypes");
    // "bm5vd" is in the second base64 line ("...cm9ncmFtIGNhbm5vdCBi...").
    let (out, log) = send_exe(&inst, &[("BADLOADERTYPE", "b")]);
    assert_eq!(data_reply(&out), R554);
    assert_eq!(
        log.last().unwrap(),
        &format!("Reject::DATA::Bad_Loader {S} T:joe@test.example 'bm5vd'")
    );
    assert!(inst.queue_files().is_empty());
    // Another first character finds nothing.
    let (out, _) = send_exe(&inst, &[("BADLOADERTYPE", "x")]);
    assert!(data_reply(&out).starts_with("250 ok "), "{out}");
    // `+` skips relay clients, not the others.
    let (out, _) = send_exe(&inst, &[("BADLOADERTYPE", "+"), ("RELAYCLIENT", "")]);
    assert!(data_reply(&out).starts_with("250 ok "), "{out}");
    let (out, _) = send_exe(&inst, &[("BADLOADERTYPE", "+")]);
    assert_eq!(data_reply(&out), R554);
    assert_eq!(queued(&inst).len(), 2);
}

#[test]
fn refused_content_leaves_the_session_usable() {
    let inst = Instance::new();
    badmimetypes(&inst);
    let (out, _) = session(
        &inst,
        &[("BADMIMETYPE", "")],
        &format!(
            "MAIL FROM:<a@b.test>\r\nRCPT TO:<joe@test.example>\r\nDATA\r\n{EXE_MAIL}MAIL FROM:<a@b.test>\r\nRCPT TO:<joe@test.example>\r\nDATA\r\nSubject: clean\r\n\r\nhello\r\n.\r\n"
        ),
    );
    assert!(
        out.starts_with(&format!(
            "250 ok\r\n250 ok\r\n354 go ahead\r\n{R554}250 ok\r\n250 ok\r\n354 go ahead\r\n250 ok "
        )),
        "{out}"
    );
    let q = queued(&inst);
    assert_eq!(q.len(), 1);
    assert!(contains(&q[0].0, b"Subject: clean\n\nhello\n"));
}

#[test]
fn recipient_verification_comes_before_the_common_filters() {
    let inst = Instance::new();
    recipients_cdb(&inst);
    inst.control("badrcptto", b"nobody@test.example\njoe@test.example\n");
    let (out, log) = session(
        &inst,
        &[],
        "HELO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<nobody@test.example>\r\nRCPT TO:<joe@test.example>\r\n",
    );
    assert_eq!(
        out,
        [
            "250 test.example\r\n250 ok\r\n",
            R550,
            "553 sorry, your envelope recipient is in my badrcptto list (#5.7.1)\r\n"
        ]
        .concat()
    );
    assert_eq!(
        decisions(&log),
        [
            format!("Reject::RCPT::Failed_Rcptto {S} T:nobody@test.example"),
            format!("Reject::RCPT::Bad_Rcptto {S} T:joe@test.example"),
        ]
    );
}

#[test]
fn unreadable_policy_files_end_the_session_with_421() {
    let inst = Instance::new();
    // control/recipients that cannot be read.
    std::fs::create_dir(inst.home.join("control/recipients")).unwrap();
    let input = "MAIL FROM:<a@b.test>\r\nRCPT TO:<joe@test.example>\r\nNOOP\r\n";
    let (out, _) = session(&inst, &[], input);
    assert_eq!(out, "250 ok\r\n421 unable to read controls (#4.3.0)\r\n");
    // A database it names that cannot be read.
    std::fs::remove_dir(inst.home.join("control/recipients")).unwrap();
    std::fs::create_dir(inst.home.join("users/broken.cdb")).unwrap();
    inst.control("recipients", b"test.example:users/broken.cdb\n");
    let (out, _) = session(&inst, &[], input);
    assert_eq!(out, "250 ok\r\n421 unable to check recipients (#4.3.0)\r\n");
    // mailfromrules.cdb, asked at MAIL.
    std::fs::create_dir(inst.home.join("control/mailfromrules.cdb")).unwrap();
    let (out, _) = session(&inst, &[("RELAYCLIENT", ""), ("LOCALMFCHECK", "!")], input);
    assert_eq!(out, "421 unable to read controls (#4.3.0)\r\n");
    // badmimetypes.cdb, at the end of the message: nothing is queued.
    std::fs::create_dir(inst.home.join("control/badmimetypes.cdb")).unwrap();
    let (out, _) = session(
        &inst,
        &[("RELAYCLIENT", ""), ("BADMIMETYPE", "")],
        &format!(
            "MAIL FROM:<a@b.test>\r\nRCPT TO:<joe@test.example>\r\nDATA\r\n{EXE_MAIL}NOOP\r\n"
        ),
    );
    assert_eq!(
        out,
        "250 ok\r\n250 ok\r\n354 go ahead\r\n421 unable to read controls (#4.3.0)\r\n"
    );
    assert!(inst.queue_files().is_empty());
}
