//! qmail-smtpd: byte-exact transcripts over pipes, the relay decision, the open-relay
//! tricks, SMTP smuggling, bounds and timeouts; AUTH, STARTTLS, recipient verification,
//! LOCALMFCHECK, the attachment filters, real clients and the run scripts of service/ in
//! the submodules.

mod auth;
mod policy;
mod relay;
mod service;
mod tls;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use crate::harness::{Instance, run_with};

/// The environment tcpserver would give a client from 127.0.0.1.
pub const TCP: &[(&str, &str)] = &[
    ("TCPREMOTEIP", "127.0.0.1"),
    ("TCPREMOTEHOST", "client.test"),
    ("TCPLOCALIP", "127.0.0.1"),
    ("TCPLOCALHOST", "mx.test"),
    ("TCPLOCALPORT", "25"),
];

/// qmail-smtpd of `inst` with the TCP variables and `env`.
pub fn smtpd(inst: &Instance, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut c = inst.cmd("qmail-smtpd");
    c.envs(TCP.iter().copied())
        .envs(env.iter().copied())
        .args(args);
    c
}

/// Runs a whole pipelined session; returns (replies, log).
pub fn session(inst: &Instance, env: &[(&str, &str)], input: &[u8]) -> (String, String) {
    let o = run_with(smtpd(inst, env, &[]), input, 30);
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The replies after the greeting.
pub fn replies(inst: &Instance, env: &[(&str, &str)], input: &[u8]) -> String {
    let (out, _) = session(inst, env, input);
    let g = "220 test.example ESMTP\r\n";
    assert!(out.starts_with(g), "greeting: {out:?}");
    out[g.len()..].to_string()
}

/// A client talking to qmail-smtpd over pipes, one command at a time.
pub struct Talk {
    child: Child,
    to: Option<ChildStdin>,
    from: BufReader<ChildStdout>,
}

impl Talk {
    pub fn start(mut c: Command) -> Talk {
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = c.spawn().expect("qmail-smtpd");
        let to = child.stdin.take();
        let from = BufReader::new(child.stdout.take().unwrap());
        let mut t = Talk { child, to, from };
        let g = t.reply();
        assert!(g.starts_with("220 "), "{g}");
        t
    }

    /// One complete reply, all its lines.
    pub fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut l = String::new();
            if self.from.read_line(&mut l).unwrap() == 0 {
                return all;
            }
            all.push_str(&l);
            if l.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    pub fn send(&mut self, b: &[u8]) {
        self.to.as_mut().unwrap().write_all(b).unwrap();
    }

    /// Sends a line (CRLF added) and returns the reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Closes the client's side and returns the rest of the output.
    pub fn finish(mut self) -> String {
        drop(self.to.take());
        let mut rest = String::new();
        let _ = self.from.read_to_string(&mut rest);
        let _ = self.child.wait();
        rest
    }
}

impl Drop for Talk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The queued messages: (mess bytes, envelope bytes from todo/).
pub fn queued(inst: &Instance) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mess = inst.queue_dir("mess");
    let todo = inst.queue_dir("todo");
    assert_eq!(mess.len(), todo.len(), "mess and todo agree");
    let name = |p: &str| p.rsplit('/').next().unwrap().to_string();
    mess.iter()
        .map(|(p, m)| {
            let e = todo
                .iter()
                .find(|(q, _)| name(q) == name(p))
                .map(|(_, e)| e.clone())
                .unwrap_or_default();
            (m.clone(), e)
        })
        .collect()
}

/// The envelope part a message's todo file must hold (after its `u` and `p` records).
pub fn envelope(from: &str, to: &[&str]) -> Vec<u8> {
    let mut e = format!("F{from}\0").into_bytes();
    for t in to {
        e.extend_from_slice(format!("T{t}\0").as_bytes());
    }
    e
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A script in the instance, mode 0755.
pub fn script(inst: &Instance, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = inst.home.join(name);
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

const EHLO: &str =
    "250-test.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 0\r\n";

#[test]
fn fixed_replies_are_byte_exact() {
    let inst = Instance::new();
    let r = replies(
        &inst,
        &[],
        b"HELO client.test\r\nEHLO client.test\r\nNOOP\r\nVRFY joe\r\nHELP\r\nRSET\r\nFOO\r\nSTARTTLS\r\nAUTH PLAIN\r\nquit\r\n",
    );
    let want = [
        "250 test.example\r\n",
        EHLO,
        "250 ok\r\n",
        "252 send some mail, i'll try my best\r\n",
        "214 sqmail home page: http://fehcom.de/sqmail.html\r\n",
        "250 flushed\r\n",
        "500 unimplemented (#5.5.1)\r\n",
        "500 unimplemented (#5.5.1)\r\n",
        "503 auth not available (#5.3.3)\r\n",
        "221 test.example\r\n",
    ]
    .concat();
    assert_eq!(r, want);
}

#[test]
fn smtpgreeting_and_databytes_show_in_greeting_and_ehlo() {
    let inst = Instance::new();
    inst.control("smtpgreeting", b"mx.example.org welcome\n");
    inst.control("databytes", b"1000\n");
    let (out, _) = session(&inst, &[], b"EHLO x\r\nQUIT\r\n");
    assert!(
        out.starts_with("220 mx.example.org welcome ESMTP\r\n250-mx.example.org welcome\r\n"),
        "{out}"
    );
    assert!(
        out.contains("250 SIZE 1000\r\n221 mx.example.org welcome\r\n"),
        "{out}"
    );
    let (out, _) = session(&inst, &[("DATABYTES", "77")], b"EHLO x\r\n");
    assert!(out.contains("250 SIZE 77\r\n"), "{out}");
}

#[test]
fn transaction_order_is_enforced() {
    let inst = Instance::new();
    let r = replies(
        &inst,
        &[],
        b"RCPT TO:<a@test.example>\r\nDATA\r\nMAIL FROM:a@b\r\nMAIL FROM:<a@b\r\nMAIL FROM:<a@b>\r\nDATA\r\nRCPT TO:x\r\n",
    );
    assert_eq!(
        r,
        "503 MAIL first (#5.5.1)\r\n503 MAIL first (#5.5.1)\r\n555 syntax error (#5.5.4)\r\n555 syntax error (#5.5.4)\r\n250 ok\r\n503 RCPT first (#5.5.1)\r\n555 syntax error (#5.5.4)\r\n"
    );
    let long = format!("MAIL FROM:<{}@b>\r\n", "a".repeat(900));
    assert_eq!(
        replies(&inst, &[], long.as_bytes()),
        "500 command line too long (#5.5.6)\r\n"
    );
}

/// Twenty bad commands (unknown, malformed, out of order, overlong) are answered one by
/// one; the twenty-first ends the session with a 421, and nothing after it is read.
#[test]
fn too_many_bad_commands_end_the_session() {
    let inst = Instance::new();
    let long = format!("NOOP {}\r\n", "x".repeat(600));
    let mut input = b"XYZZY\r\n".repeat(10);
    input.extend_from_slice(b"NOOP\r\n");
    input.extend_from_slice(&b"RCPT TO:<a@test.example>\r\n".repeat(5));
    input.extend_from_slice(&b"MAIL FROM:a@b\r\n".repeat(4));
    input.extend_from_slice(long.as_bytes());
    input.extend_from_slice(b"BOGUS\r\nNOOP\r\n");
    let (out, log) = session(&inst, &[], &input);
    let want = [
        "500 unimplemented (#5.5.1)\r\n".repeat(10),
        "250 ok\r\n".to_string(),
        "503 MAIL first (#5.5.1)\r\n".repeat(5),
        "555 syntax error (#5.5.4)\r\n".repeat(4),
        "500 command line too long (#5.5.6)\r\n".to_string(),
        "421 too many bad commands; closing connection (#4.7.0)\r\n".to_string(),
    ]
    .concat();
    assert!(out.ends_with(&want), "{out}");
    assert!(log.contains("Reject::SNDR::Bad_Commands"), "{log}");
}

/// sslserver without -n has done the handshake before qmail-smtpd starts: with
/// SSL_PROTOCOL set and no SSLCTLFD the session is TLS on any port (not only 465): the
/// Received line says ESMTPS with the cipher; without SSL_PROTOCOL the same port is plain
/// SMTP.
#[test]
fn smtps_is_recognised_on_any_port() {
    let input = b"EHLO helo.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@test.example>\r\nDATA\r\nSubject: s\r\n\r\nbody\r\n.\r\nQUIT\r\n";
    for (tls, want) in [(true, "with ESMTPS; "), (false, "with ESMTP; ")] {
        let inst = Instance::new();
        let mut env = vec![("TCPLOCALPORT", "4465"), ("UCSPITLS", "")];
        if tls {
            env.extend([
                ("SSL_PROTOCOL", "TLSv1.3"),
                ("SSL_CIPHER", "TLS_AES_128_GCM_SHA256"),
                ("SSL_CIPHER_USEKEYSIZE", "128"),
                ("SSL_CIPHER_ALGKEYSIZE", "128"),
            ]);
        }
        let (out, _) = session(&inst, &env, input);
        assert!(out.contains("\r\n250 ok "), "{out}");
        assert!(!out.contains("STARTTLS"), "{out}");
        let (mess, _) = &queued(&inst)[0];
        let text = String::from_utf8_lossy(mess);
        assert!(text.contains(want), "{text}");
        assert_eq!(text.contains("  de/crypted with TLSv1.3: "), tls, "{text}");
    }
}

#[test]
fn message_arrives_byte_exact_with_received_line() {
    let inst = Instance::new();
    let (out, log) = session(
        &inst,
        &[],
        b"EHLO helo.test\r\nMAIL FROM:<joe@example.org> SIZE=10 BODY=8BITMIME\r\nRCPT TO:<Bob@test.example>\r\nRCPT TO:<postmaster>\r\nDATA\r\nSubject: hi\r\n\r\n..dot\r\nbody \xff\x00\r\n.\r\nQUIT\r\n",
    );
    let lines: Vec<&str> = out.split("\r\n").collect();
    assert_eq!(lines[6], "250 ok", "{out}");
    assert_eq!(lines[8], "250 ok");
    assert_eq!(lines[9], "354 go ahead");
    let ok: Vec<&str> = lines[10].split(' ').collect();
    assert_eq!((ok[0], ok[1], ok[3]), ("250", "ok", "qp"), "{out}");
    assert!(ok[2].parse::<u64>().unwrap() > 1_700_000_000);
    let q = queued(&inst);
    assert_eq!(q.len(), 1);
    let (mess, env) = &q[0];
    assert!(contains(
        env,
        &envelope("joe@example.org", &["Bob@test.example", "postmaster"])
    ));
    let text = String::from_utf8_lossy(mess);
    assert!(text.starts_with("Received: (qmail "), "{text}");
    let ours = "Received: from client.test (HELO helo.test) (127.0.0.1)\n  by mx.test with ESMTP; ";
    assert!(text.contains(ours), "{text}");
    // The whole file: qmail-queue's line, ours, then the message as sent, unstuffed, LF.
    let first = mess.iter().position(|&c| c == b'\n').unwrap() + 1;
    let second = &mess[first..];
    let date_at = ours.len();
    let date_end = date_at + second[date_at..].iter().position(|&c| c == b'\n').unwrap() + 1;
    let date = String::from_utf8_lossy(&second[date_at..date_end]).into_owned();
    assert!(date.ends_with(" -0000\n"), "{date:?}");
    let want = [
        ours.as_bytes(),
        date.as_bytes(),
        b"Subject: hi\n\n.dot\nbody \xff\x00\n",
    ]
    .concat();
    assert_eq!(second, want.as_slice(), "{text}");
    assert!(log.contains("qmail-smtpd: pid ") && log.contains(" Accept::RCPT::Rcpthosts_Rcptto P:ESMTP S:127.0.0.1:client.test H:helo.test F:joe@example.org T:Bob@test.example\n"), "{log}");
}

#[test]
fn helo_equal_to_remote_host_is_left_out_of_received() {
    let inst = Instance::new();
    let (out, _) = session(
        &inst,
        &[("TCPREMOTEINFO", "ident")],
        b"HELO CLIENT.test\r\nMAIL FROM:<>\r\nRCPT TO:<a@test.example>\r\nDATA\r\nx\r\n.\r\n",
    );
    assert!(out.contains("\r\n250 ok 1"), "{out}");
    let (mess, env) = &queued(&inst)[0];
    assert!(contains(
        mess,
        b"Received: from client.test (ident@127.0.0.1)\n  by mx.test with ESMTP; "
    ));
    assert!(contains(env, &envelope("", &["a@test.example"])));
}

#[test]
fn queue_exit_codes_become_replies() {
    let inst = Instance::new();
    for (code, reply) in [
        (31, "554 mail server permanently rejected message (#5.3.0)"),
        (11, "554 envelope address too long for qq (#5.1.3)"),
        (53, "451 qq write error or disk full (#4.3.0)"),
        (81, "451 qq internal bug (#4.3.0)"),
        (100, "451 qq temporary problem (#4.3.0)"),
    ] {
        let q = script(
            &inst,
            &format!("qq{code}"),
            &format!("#!/bin/sh\ncat >/dev/null\nexit {code}\n"),
        );
        let r = replies(
            &inst,
            &[("QMAILQUEUE", q.to_str().unwrap())],
            b"MAIL FROM:<a@b>\r\nRCPT TO:<a@test.example>\r\nDATA\r\nx\r\n.\r\n",
        );
        assert_eq!(
            r,
            format!("250 ok\r\n250 ok\r\n354 go ahead\r\n{reply}\r\n"),
            "exit {code}"
        );
    }
    let r = replies(
        &inst,
        &[("QMAILQUEUE", "/nonexistent/qq")],
        b"MAIL FROM:<a@b>\r\nRCPT TO:<a@test.example>\r\nDATA\r\nNOOP\r\n",
    );
    assert_eq!(
        r,
        "250 ok\r\n250 ok\r\n451 qqt failure (#4.3.0)\r\n250 ok\r\n"
    );
}

#[test]
fn variables_are_exported_to_qmail_queue() {
    let inst = Instance::new();
    let dump = inst.home.join("dump");
    let q = script(
        &inst,
        "qqdump",
        &format!(
            "#!/bin/sh\ncat > {d}.msg\ncat <&1 >/dev/null\necho \"$HELOHOST|$MAILFROM|$RCPTTO|$AUTHUSER|$TCPREMOTEINFO\" > {d}\nexit 0\n",
            d = dump.display()
        ),
    );
    let r = replies(
        &inst,
        &[
            ("QMAILQUEUE", q.to_str().unwrap()),
            ("DELIVERTO", "archive@test.example"),
            ("RBLSMTPD", "listed in bl.test"),
        ],
        b"HELO h.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@test.example>\r\nRCPT TO:<y@test.example>\r\nDATA\r\nbody\r\n.\r\n",
    );
    assert!(r.contains("\r\n250 ok 1"), "{r}");
    assert_eq!(
        std::fs::read_to_string(&dump).unwrap(),
        "h.test|a@b.test|archive@test.example x@test.example y@test.example||\n"
    );
    let msg = std::fs::read_to_string(dump.with_extension("msg")).unwrap();
    assert!(
        msg.contains("with ESMTP; ")
            && msg.contains(" -0000\nX-RBL-Info: listed?in?bl.test\nbody\n"),
        "{msg}"
    );
}

#[test]
fn databytes_limits_size_parameter_and_message() {
    let inst = Instance::new();
    inst.control("databytes", b"20\n");
    let r = replies(
        &inst,
        &[("REPLY_MAXSIZE", "see policy")],
        b"MAIL FROM:<a@b> SIZE=21\r\nRCPT TO:<a@test.example>\r\nMAIL FROM:<a@b> SIZE=20\r\nRCPT TO:<a@test.example>\r\nDATA\r\n123456789012345678901\r\n.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<a@test.example>\r\nDATA\r\n1234567890123456789\r\n.\r\n",
    );
    let want = "250 ok\r\n552 sorry, that message size exceeds my databytes limit see policy (#5.3.4)\r\n250 ok\r\n250 ok\r\n354 go ahead\r\n552 sorry, that message size exceeds my databytes limit see policy (#5.3.4)\r\n250 ok\r\n250 ok\r\n354 go ahead\r\n250 ok ";
    assert!(r.starts_with(want), "{r}");
    assert_eq!(queued(&inst).len(), 1);
}

#[test]
fn looping_message_is_refused() {
    let inst = Instance::new();
    let mut m = b"MAIL FROM:<a@b>\r\nRCPT TO:<a@test.example>\r\nDATA\r\n".to_vec();
    m.extend_from_slice(&b"Delivered-To: x\r\n".repeat(100));
    m.extend_from_slice(b"\r\nbody\r\n.\r\n");
    let r = replies(&inst, &[], &m);
    assert_eq!(
        r,
        "250 ok\r\n250 ok\r\n354 go ahead\r\n554 too many hops, this message is looping (#5.4.6)\r\n"
    );
    assert!(queued(&inst).is_empty());
}

/// Every bare CR/LF end-of-data look-alike: the message does not end there, the commands
/// hidden after it are not run, and nothing is queued.
#[test]
fn smtp_smuggling_variants_never_end_data() {
    let inst = Instance::new();
    let hidden = "MAIL FROM:<evil@b>\r\nRCPT TO:<victim@test.example>\r\nDATA\r\nsmuggled\r\n";
    for end in [
        "\n.\r\n", "\r.\r", "\n.\n", "\r\n.\n", "\n.\r", "\r.\r\n", "\r\n.\r",
    ] {
        let input = format!(
            "MAIL FROM:<a@b>\r\nRCPT TO:<a@test.example>\r\nDATA\r\nfirst{end}{hidden}.\r\nNOOP\r\n"
        );
        let (out, log) = session(&inst, &[], input.as_bytes());
        assert_eq!(
            out,
            "220 test.example ESMTP\r\n250 ok\r\n250 ok\r\n354 go ahead\r\n451 Bare Line Feeds (LF) are not accepted in SMTP; CRLF is required according to RFC 2822.\r\n250 ok\r\n",
            "{end:?}"
        );
        assert!(log.contains("Reject::DATA::Bare_LF"), "{log}");
        assert!(queued(&inst).is_empty(), "{end:?}");
    }
}

#[test]
fn command_line_limit_is_512_with_crlf() {
    let inst = Instance::new();
    let ok = format!("NOOP {}\r\n", "x".repeat(512 - 7));
    let long = format!("RSET {}\r\n", "x".repeat(512 - 6));
    let huge = format!("MAIL FROM:<{}>\r\n", "y".repeat(200_000));
    let r = replies(&inst, &[], format!("{ok}{long}{huge}NOOP\r\n").as_bytes());
    assert_eq!(
        r,
        "250 ok\r\n500 command line too long (#5.5.6)\r\n500 command line too long (#5.5.6)\r\n250 ok\r\n"
    );
}

#[test]
fn nul_in_command_is_refused() {
    let inst = Instance::new();
    let r = replies(
        &inst,
        &[],
        b"MAIL FROM:<a@b>\0<c@d>\r\nRCPT TO:<a@test.example>\r\n",
    );
    assert_eq!(
        r,
        "501 NUL in command line (#5.5.2)\r\n503 MAIL first (#5.5.1)\r\n"
    );
}

#[test]
fn recipient_count_is_bounded() {
    let inst = Instance::new();
    let mut m = b"MAIL FROM:<a@b>\r\n".to_vec();
    for i in 0..1001 {
        m.extend_from_slice(format!("RCPT TO:<u{i}@test.example>\r\n").as_bytes());
    }
    let r = replies(&inst, &[], &m);
    assert_eq!(r.matches("250 ok\r\n").count(), 1001);
    assert!(r.ends_with("250 ok\r\n452 sorry, too many recipients (#4.5.3)\r\n"));
    let r = replies(
        &inst,
        &[("MAXRECIPIENTS", "2")],
        b"MAIL FROM:<a@b>\r\nRCPT TO:<a@test.example>\r\nRCPT TO:<b@test.example>\r\nRCPT TO:<c@test.example>\r\n",
    );
    assert_eq!(
        r,
        "250 ok\r\n250 ok\r\n250 ok\r\n452 sorry, too many recipients (#4.5.3)\r\n"
    );
}

#[test]
fn tarpit_hard_stop_and_data_refusal() {
    let inst = Instance::new();
    let r = replies(
        &inst,
        &[("TARPITCOUNT", "1"), ("TARPITDELAY", "999")],
        b"MAIL FROM:<a@b>\r\nRCPT TO:<a@test.example>\r\nRCPT TO:<b@test.example>\r\nDATA\r\nNOOP\r\n",
    );
    assert_eq!(
        r,
        "250 ok\r\n250 ok\r\n452 sorry, too many recipients (#4.5.3)\r\n503 DATA command not accepted at this time (#5.5.1)\r\n"
    );
}

#[test]
fn truncated_connection_queues_nothing() {
    let inst = Instance::new();
    let (out, _) = session(
        &inst,
        &[],
        b"MAIL FROM:<a@b>\r\nRCPT TO:<a@test.example>\r\nDATA\r\npartial message\r\n",
    );
    assert!(out.ends_with("354 go ahead\r\n"), "{out}");
    assert!(queued(&inst).is_empty());
    assert!(inst.queue_dir("mess").is_empty());
}

#[test]
fn silent_client_times_out() {
    let inst = Instance::new();
    inst.control("timeoutsmtpd", b"1\n");
    let mut t = Talk::start(smtpd(&inst, &[], &[]));
    assert_eq!(t.cmd("NOOP"), "250 ok\r\n");
    assert_eq!(t.reply(), "451 timeout (#4.4.2)\r\n");
    let mut t = Talk::start(smtpd(&inst, &[], &[]));
    t.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<a@test.example>\r\nDATA\r\nslow");
    assert_eq!(t.reply(), "250 ok\r\n");
    assert_eq!(t.reply(), "250 ok\r\n");
    assert_eq!(t.reply(), "354 go ahead\r\n");
    assert_eq!(t.reply(), "451 timeout (#4.4.2)\r\n");
    assert!(queued(&inst).is_empty());
}

#[test]
fn unreadable_controls_give_421() {
    let inst = Instance::new();
    std::fs::remove_file(inst.home.join("control/badmailfrom")).ok();
    std::fs::create_dir(inst.home.join("control/badmailfrom")).unwrap();
    let o = run_with(smtpd(&inst, &[], &[]), b"", 10);
    assert_eq!(o.stdout, b"421 unable to read controls (#4.3.0)\r\n");
    assert_eq!(o.status.code(), Some(111));
}

#[test]
fn failed_tls_hand_off_gives_454_and_ends() {
    let inst = Instance::new();
    let (out, _) = session(
        &inst,
        &[
            ("UCSPITLS", ""),
            ("SSLCTLFD", "97"),
            ("SSLREADFD", "98"),
            ("SSLWRITEFD", "99"),
        ],
        b"EHLO x\r\nSTARTTLS\r\nNOOP\r\n",
    );
    assert!(
        out.ends_with("250-STARTTLS\r\n250-SMTPUTF8\r\n250 SIZE 0\r\n220 Ready to start TLS (#5.7.0)\r\n454 TLS not available due to temporary reason (#5.7.3)\r\n"),
        "{out}"
    );
}

#[test]
fn long_lines_and_8bit_pass_unchanged() {
    let inst = Instance::new();
    let line: Vec<u8> = (0..100_000u32)
        .map(|i| b"ab\xe9\x00"[(i % 4) as usize])
        .collect();
    let mut input = b"MAIL FROM:<a@b>\r\nRCPT TO:<a@test.example>\r\nDATA\r\n".to_vec();
    input.extend_from_slice(&line);
    input.extend_from_slice(b"\r\n.\r\n");
    let r = replies(&inst, &[], &input);
    assert!(
        r.starts_with("250 ok\r\n250 ok\r\n354 go ahead\r\n250 ok "),
        "{r}"
    );
    let (mess, _) = &queued(&inst)[0];
    assert!(mess.ends_with(&[line.as_slice(), b"\n"].concat()));
}
