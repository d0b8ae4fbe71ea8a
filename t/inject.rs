//! qmail-inject, sendmail, predate, datemail and mailsubj against their contracts: the
//! queued message and envelope byte for byte, stdout of `-n`, the exit codes and the
//! texts on fd 2. Only the parts that vary between runs (qmail-queue's Received line and
//! pid, the time in Date and Message-ID) are matched against the run's own pid and clock.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sqmail::date::{self, Utc};
use sqmail::envelope::parse_queued;
use sqmail::inject::predate::date_line;

use crate::harness::{Instance, Scratch};

/// What a run left: its output, its pid and the seconds it spanned.
struct Run {
    out: Output,
    pid: u32,
    t0: i64,
    t1: i64,
}

impl Run {
    fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
}

fn run(mut c: Command, input: &[u8]) -> Run {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t0 = date::now();
    let mut child = c.spawn().expect("spawn");
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{c:?} did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = feeder.join();
    let out = child.wait_with_output().unwrap();
    Run {
        out,
        pid,
        t0,
        t1: date::now(),
    }
}

fn cmd(inst: &Instance, prog: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = inst.cmd(prog);
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// The one queued message without qmail-queue's Received line, its sender and recipients.
fn queued(inst: &Instance) -> (Vec<u8>, String, Vec<String>) {
    let mess = inst.queue_dir("mess");
    let todo = inst.queue_dir("todo");
    assert_eq!((mess.len(), todo.len()), (1, 1), "one message queued");
    let m = &mess[0].1;
    assert!(
        m.starts_with(b"Received: (qmail "),
        "qmail-queue's Received line comes first"
    );
    let n = m.iter().position(|&b| b == b'\n').unwrap() + 1;
    let q = parse_queued(&todo[0].1);
    assert_eq!(q.uid, Some(u64::from(sqmail::sys::uid())));
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let to = q.recipients.iter().map(|(r, done)| {
        assert!(!done);
        s(r)
    });
    (
        m[n..].to_vec(),
        s(q.sender.as_deref().unwrap()),
        to.collect(),
    )
}

/// Asserts that `got` is what `want` gives for one of the seconds the run spanned.
fn assert_at_some_time(got: &[u8], r: &Run, want: impl Fn(i64) -> Vec<u8>) {
    let ok = (r.t0..=r.t1).any(|t| want(t) == got);
    assert!(
        ok,
        "got:\n{}\nwanted:\n{}",
        String::from_utf8_lossy(got),
        String::from_utf8_lossy(&want(r.t0))
    );
}

/// qmail-inject's Date and Message-ID lines for time `t` and pid `pid`.
fn stamps(t: i64, pid: u32, idhost: &str) -> String {
    let u = Utc::from_unix(t);
    format!(
        "Date: {}Message-ID: <{}.{pid}.qmail@{idhost}>\n",
        u.rfc822(),
        u.compact()
    )
}

// The instance has defaultdomain `example`, as qmail's config script makes it from `me`.
const MSG: &[u8] = b"To: bob, carol@remote.example\nCc: dave@elsewhere\nBcc: eve@hidden.example\n\
Subject: test\nContent-Length: 3\n\nHello\n";

const FIXED: &str = "From: \"Alice Example\" <alice@test.example>\n\
To: bob@test.example, carol@remote.example\nCc: dave@elsewhere.example\nSubject: test\n\nHello\n";

const RECIPIENTS: [&str; 4] = [
    "carol@remote.example",
    "bob@test.example",
    "dave@elsewhere.example",
    "eve@hidden.example",
];

const ALICE: [(&str, &str); 2] = [("QMAILUSER", "alice"), ("QMAILNAME", "Alice Example")];

#[test]
fn inject_fixes_the_header_and_queues_header_recipients() {
    let inst = Instance::new();
    let r = run(cmd(&inst, "qmail-inject", &[], &ALICE), MSG);
    assert_eq!((r.code(), r.stderr()), (0, String::new()));
    let (m, sender, to) = queued(&inst);
    assert_at_some_time(&m, &r, |t| {
        format!("{}{FIXED}", stamps(t, r.pid, "test.example")).into_bytes()
    });
    assert_eq!(sender, "alice@test.example");
    assert_eq!(to, RECIPIENTS);
}

#[test]
fn sendmail_t_queues_what_qmail_inject_does() {
    let inst = Instance::new();
    let r = run(cmd(&inst, "sendmail", &["-t", "-i", "-oi"], &ALICE), MSG);
    assert_eq!((r.code(), r.stderr()), (0, String::new()));
    let (m, sender, to) = queued(&inst);
    // sendmail execs qmail-inject, so the pid in the Message-ID is sendmail's.
    assert_at_some_time(&m, &r, |t| {
        format!("{}{FIXED}", stamps(t, r.pid, "test.example")).into_bytes()
    });
    assert_eq!(sender, "alice@test.example");
    assert_eq!(to, RECIPIENTS);
}

#[test]
fn sendmail_arguments_are_the_recipients_and_f_names_the_sender() {
    let inst = Instance::new();
    let args = [
        "-F",
        "Lost Name",
        "-f",
        "boss@corp.example",
        "x@y.example",
        "z",
    ];
    let r = run(
        cmd(&inst, "sendmail", &args, &ALICE),
        b"To: not-used@example.org\nSubject: s\n\nbody",
    );
    assert_eq!((r.code(), r.stderr()), (0, String::new()));
    let (m, sender, to) = queued(&inst);
    // -f also names the From user and host, and drops the personal name (netqmail).
    let rest = "From: boss@corp.example\nTo: not-used@example.org\nSubject: s\n\nbody\n";
    assert_at_some_time(&m, &r, |t| {
        format!("{}{rest}", stamps(t, r.pid, "test.example")).into_bytes()
    });
    assert_eq!(sender, "boss@corp.example");
    assert_eq!(to, ["x@y.example", "z@test.example"]);
}

#[test]
fn control_files_and_their_variables_complete_addresses() {
    let inst = Instance::new();
    inst.control("defaulthost", b"mail\n");
    inst.control("defaultdomain", b"example.net\n");
    inst.control("plusdomain", b"plus.example\n");
    inst.control("idhost", b"ids.example.net\n");
    let msg = b"To: joe, ann@box, ben@relay+\n\n";
    let r = run(cmd(&inst, "qmail-inject", &["-n"], &[]), msg);
    assert_eq!(r.code(), 0);
    let want = |t| {
        format!(
            "Return-Path: <anonymous@mail.example.net>\n{}From: anonymous@mail.example.net\n\
             To: joe@mail.example.net, ann@box.example.net, ben@relay.plus.example\n\n",
            stamps(t, r.pid, "ids.example.net")
        )
        .into_bytes()
    };
    assert_at_some_time(&r.out.stdout, &r, want);

    let env = [
        ("QMAILDEFAULTHOST", "other+"),
        ("QMAILDEFAULTDOMAIN", "dom.example"),
        ("QMAILPLUSDOMAIN", "p.example"),
        ("QMAILIDHOST", "id.example"),
        ("USER", "u"),
        ("QMAILSUSER", "s"),
        ("QMAILSHOST", "shost.example"),
    ];
    let r = run(cmd(&inst, "qmail-inject", &["-n"], &env), b"To: joe\n\n");
    let want = |t| {
        format!(
            "Return-Path: <s@shost.example>\n{}From: u@other.p.example\nTo: joe@other.p.example\n\n",
            stamps(t, r.pid, "id.example")
        )
        .into_bytes()
    };
    assert_at_some_time(&r.out.stdout, &r, want);
}

#[test]
fn recipient_options_choose_arguments_header_or_both() {
    for (args, want) in [
        (&["a@x.example"][..], &["a@x.example"][..]),
        (&["-a", "a@x.example"], &["a@x.example"]),
        (&["-h", "a@x.example"], &["h@x.example"]),
        (&["-H", "a@x.example"], &["a@x.example", "h@x.example"]),
        (&["-a", "-A"], &["h@x.example"]),
        (
            &["-n", "-N", "-f", "s@x.example", "--", "-a@x.example"],
            &["-a@x.example"],
        ),
    ] {
        let inst = Instance::new();
        let r = run(
            cmd(&inst, "qmail-inject", args, &[]),
            b"To: h@x.example\n\n",
        );
        assert_eq!((r.code(), r.stderr()), (0, String::new()), "{args:?}");
        let (_, sender, to) = queued(&inst);
        assert_eq!(to, want, "{args:?}");
        let s = if args.contains(&"-f") {
            "s@x.example"
        } else {
            "anonymous@test.example"
        };
        assert_eq!(sender, s);
    }
}

#[test]
fn qmailinject_r_and_mailfollowupto_file_work_through_the_environment() {
    let inst = Instance::new();
    let dir = Scratch::new("mft");
    let mft = dir.0.join("lists");
    std::fs::write(&mft, b"# lists\nlist@lists.example\n").unwrap();
    let env = [
        ("QMAILINJECT", "r"),
        ("QMAILSUSER", "owner"),
        ("QMAILSHOST", "lists.example"),
        ("QMAILMFTFILE", mft.to_str().unwrap()),
    ];
    let r = run(
        cmd(&inst, "qmail-inject", &[], &env),
        b"To: List@lists.example\nCc: me@x.example\n\nhi\n",
    );
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let (m, sender, to) = queued(&inst);
    assert_eq!(sender, "owner-@lists.example-@[]");
    assert_eq!(to, ["List@lists.example", "me@x.example"]);
    let rest = "From: anonymous@test.example\nMail-Followup-To: me@x.example,\n  List@lists.example\n\
                To: List@lists.example\nCc: me@x.example\n\nhi\n";
    assert_at_some_time(&m, &r, |t| {
        format!("{}{rest}", stamps(t, r.pid, "test.example")).into_bytes()
    });
}

#[test]
fn mailfollowupto_file_limit_is_one_mebibyte() {
    let inst = Instance::new();
    let dir = Scratch::new("mftmax");
    let max = usize::try_from(sqmail::inject::config::MFT_FILE_MAX).unwrap();
    let file = dir.0.join("lists");
    let line = b"list@lists.example\n";
    let at = [&line[..], &vec![b'#'; max - line.len()]].concat();
    for (body, code) in [(at.clone(), 0), ([&at[..], b"#"].concat(), 100)] {
        std::fs::write(&file, &body).unwrap();
        let env = [("QMAILMFTFILE", file.to_str().unwrap())];
        let r = run(
            cmd(&inst, "qmail-inject", &["-n"], &env),
            b"To: list@lists.example\n\n",
        );
        assert_eq!(r.code(), code, "{}", r.stderr());
        if code == 0 {
            assert!(
                String::from_utf8_lossy(&r.out.stdout)
                    .contains("\nMail-Followup-To: list@lists.example\n")
            );
        } else {
            let want = format!("qmail-inject: fatal: QMAILMFTFILE is longer than {max} bytes\n");
            assert_eq!(r.stderr(), want);
        }
    }
}

#[test]
fn nul_bytes_invalid_utf8_and_a_missing_last_newline_are_kept() {
    let inst = Instance::new();
    let msg = b"X-Bin: \0\xff\xfe\nTo: a@x.example\n\nbody \0\xc3\x28\nlast";
    let r = run(cmd(&inst, "qmail-inject", &[], &[]), msg);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let (m, _, to) = queued(&inst);
    let want = |t| {
        let head = format!(
            "{}From: anonymous@test.example\n",
            stamps(t, r.pid, "test.example")
        );
        [
            head.as_bytes(),
            b"X-Bin: \0\xff\xfe\nTo: a@x.example\n\nbody \0\xc3\x28\nlast\n",
        ]
        .concat()
    };
    assert_at_some_time(&m, &r, want);
    assert_eq!(to, ["a@x.example"]);
}

#[test]
fn header_limit_is_one_mebibyte() {
    let max = sqmail::inject::read::HEADER_MAX;
    // Exactly at the limit: queued.
    let inst = Instance::new();
    let field = [&b"X-Fill: "[..], &vec![b'a'; max - 9], b"\n"].concat();
    assert_eq!(field.len(), max);
    let r = run(
        cmd(&inst, "qmail-inject", &["a@x.example"], &[]),
        &[&field[..], b"\nbody\n"].concat(),
    );
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert_eq!(inst.queue_dir("todo").len(), 1);

    // One byte more, and a 100 MB header of small fields: refused, nothing queued.
    let want = format!("qmail-inject: fatal: message header too long (limit {max} bytes)\n");
    let over = [&b"X-Fill: "[..], &vec![b'a'; max - 8], b"\n\nbody\n"].concat();
    let many: Vec<u8> = b"X-Field: some header text\n"
        .iter()
        .copied()
        .cycle()
        .take(100_000_000)
        .collect();
    for input in [over, many] {
        let inst = Instance::new();
        let r = run(cmd(&inst, "qmail-inject", &["a@x.example"], &[]), &input);
        assert_eq!((r.code(), r.stderr()), (100, want.clone()));
        assert!(inst.queue_files().is_empty());
    }
}

#[test]
fn syntax_errors_and_bad_options_are_permanent() {
    let inst = Instance::new();
    for (args, input, want) in [
        (
            &[][..],
            &b"To: )x\n\n"[..],
            "qmail-inject: fatal: unable to parse this line:\nTo: )x\n",
        ),
        (
            &[],
            b"Cc: a: b\n\n",
            "qmail-inject: fatal: unable to parse this line:\nCc: a: b\n",
        ),
        (
            &["a@(b"],
            b"\n",
            "qmail-inject: fatal: unable to parse address: a@(b\n",
        ),
        (&["-z"], b"\n", "qmail-inject: illegal option -- z\n"),
        (
            &["-f"],
            b"\n",
            "qmail-inject: option requires an argument -- f\n",
        ),
    ] {
        let r = run(cmd(&inst, "qmail-inject", args, &[]), input);
        assert_eq!((r.code(), r.stderr()), (100, want.to_string()), "{args:?}");
    }
    assert!(inst.queue_files().is_empty());
}

fn script(path: &Path, body: &str) {
    let _ = std::fs::remove_file(path);
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn qmail_queue_refusals_print_qmail_injects_texts() {
    let inst = Instance::new();
    let dir = Scratch::new("qq");
    for (code, text, exit) in [
        (31, "mail server permanently rejected message (#5.3.0)", 100),
        (11, "envelope address too long for qq (#5.1.3)", 100),
        (53, "qq write error or disk full (#4.3.0)", 111),
        (81, "qq internal bug (#4.3.0)", 111),
        (99, "qq temporary problem (#4.3.0)", 111),
    ] {
        let qq = dir.0.join(format!("qq{code}"));
        script(&qq, &format!("cat >/dev/null; exit {code}"));
        let r = run(
            cmd(
                &inst,
                "qmail-inject",
                &["a@x.example"],
                &[("QMAILQUEUE", qq.to_str().unwrap())],
            ),
            b"\n",
        );
        assert_eq!(
            (r.code(), r.stderr()),
            (exit, format!("qmail-inject: fatal: {text}\n"))
        );
    }
    let r = run(
        cmd(
            &inst,
            "qmail-inject",
            &["a@x.example"],
            &[("QMAILQUEUE", "/nonexistent/qq")],
        ),
        b"\n",
    );
    assert_eq!(
        (r.code(), r.stderr()),
        (
            111,
            "qmail-inject: fatal: unable to exec qq (#4.3.0)\n".to_string()
        )
    );
    assert!(inst.queue_files().is_empty());
}

#[test]
fn sendmail_bp_and_bs_run_qread_and_smtpd_in_the_home_directory() {
    let inst = Instance::new();
    script(&inst.bin("qmail-qread"), "echo qread \"$(pwd -P)\" \"$@\"");
    script(
        &inst.bin("qmail-smtpd"),
        "echo \"$PROTO|${RELAYCLIENT-unset}|$DATABYTES|$TCPREMOTEIP|$TCPREMOTEINFO\"",
    );
    let home = std::fs::canonicalize(&inst.home).unwrap();
    let r = run(cmd(&inst, "sendmail", &["-bp"], &[]), b"");
    assert_eq!(
        String::from_utf8_lossy(&r.out.stdout),
        format!("qread {}\n", home.display())
    );
    let r = run(cmd(&inst, "sendmail", &["-bs"], &[]), b"");
    assert_eq!(
        String::from_utf8_lossy(&r.out.stdout),
        "TCP||0|127.0.0.1|sendmail-bs\n"
    );
    let r = run(cmd(&inst, "sendmail", &["-bs"], &[("PROTO", "SSL")]), b"");
    assert_eq!(String::from_utf8_lossy(&r.out.stdout), "SSL|unset|||\n");

    // Called as mailq, sendmail lists the queue.
    let dir = Scratch::new("mailq");
    std::os::unix::fs::symlink(inst.bin("sendmail"), dir.0.join("mailq")).unwrap();
    let mut mailq = Command::new(dir.0.join("mailq"));
    mailq
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("QMAILHOME", &inst.home);
    let r = run(mailq, b"");
    assert_eq!(
        String::from_utf8_lossy(&r.out.stdout),
        format!("qread {}\n", home.display())
    );

    let usage =
        "sendmail: usage: sendmail [ -t ] [ -fsender ] [ -Fname ] [ -bp ] [ -bs ] [ arg ... ]\n";
    let r = run(cmd(&inst, "sendmail", &["-q"], &[]), b"");
    assert_eq!(
        (r.code(), r.stderr()),
        (100, format!("sendmail: illegal option -- q\n{usage}"))
    );
    let r = run(cmd(&inst, "sendmail", &["-bz"], &[]), b"");
    assert_eq!((r.code(), r.stderr()), (100, usage.to_string()));
    std::fs::remove_file(inst.bin("qmail-inject")).unwrap();
    let r = run(cmd(&inst, "sendmail", &["a@b"], &[]), b"");
    assert_eq!(
        (r.code(), r.stderr()),
        (
            111,
            "sendmail: fatal: unable to run qmail-inject\n".to_string()
        )
    );
}

#[test]
fn predate_prepends_a_local_date_and_returns_the_child_status() {
    let inst = Instance::new();
    for (tz, offset) in [("UTC0", 0), ("EST5", -5 * 3600), ("<+0530>-5:30", 19_800)] {
        let r = run(
            cmd(&inst, "predate", &["cat"], &[("TZ", tz)]),
            b"Subject: x\n\nbody\n",
        );
        assert_eq!(r.code(), 0, "{}", r.stderr());
        assert_at_some_time(&r.out.stdout, &r, |t| {
            [date_line(t, offset), b"Subject: x\n\nbody\n".to_vec()].concat()
        });
    }
    let r = run(
        cmd(
            &inst,
            "predate",
            &["sh", "-c", "cat >/dev/null; exit 7"],
            &[],
        ),
        b"x",
    );
    assert_eq!(r.code(), 7);
    let r = run(cmd(&inst, "predate", &[], &[]), b"");
    assert_eq!(
        (r.code(), r.stderr()),
        (100, "predate: usage: predate child\n".to_string())
    );
    let r = run(cmd(&inst, "predate", &["no-such-program-here"], &[]), b"");
    let want = "predate: fatal: unable to run no-such-program-here: No such file or directory\n";
    assert_eq!((r.code(), r.stderr()), (111, want.to_string()));
    let r = run(cmd(&inst, "predate", &["sh", "-c", "kill -9 $$"], &[]), b"");
    assert_eq!(
        (r.code(), r.stderr()),
        (111, "predate: fatal: child crashed\n".to_string())
    );
}

#[test]
fn datemail_queues_with_predates_date() {
    let inst = Instance::new();
    let r = run(
        cmd(&inst, "datemail", &["-t"], &[("TZ", "UTC0")]),
        b"To: a@x.example\nSubject: d\n\nbody\n",
    );
    assert_eq!((r.code(), r.stderr()), (0, String::new()));
    let (m, sender, to) = queued(&inst);
    let text = String::from_utf8_lossy(&m).into_owned();
    let (head, tail) = text.split_at(text.find("From: ").unwrap());
    assert!(
        head.starts_with("Message-ID: <") && head.ends_with(".qmail@test.example>\n"),
        "{head}"
    );
    let date = tail.lines().nth(1).unwrap();
    assert_at_some_time(format!("{date}\n").as_bytes(), &r, |t| date_line(t, 0));
    assert!(
        tail.ends_with("To: a@x.example\nSubject: d\n\nbody\n"),
        "{tail}"
    );
    assert!(
        !text.contains("-0000"),
        "qmail-inject adds no Date of its own"
    );
    assert_eq!(
        (sender.as_str(), to),
        ("anonymous@test.example", vec!["a@x.example".to_string()])
    );
}

#[test]
fn mailsubj_sends_its_input_with_subject_and_recipients() {
    let inst = Instance::new();
    let r = run(
        cmd(
            &inst,
            "mailsubj",
            &["Hello there", "a@x.example", "b"],
            &[("QMAILUSER", "me")],
        ),
        b"body\n",
    );
    assert_eq!((r.code(), r.stderr()), (0, String::new()));
    let (m, sender, to) = queued(&inst);
    let text = String::from_utf8_lossy(&m).into_owned();
    let from = text.find("From: ").unwrap();
    assert_eq!(
        &text[from..],
        "From: me@test.example\nSubject: Hello there\nTo: a@x.example, b@test.example\n\nbody\n"
    );
    assert_eq!(sender, "me@test.example");
    assert_eq!(to, ["b@test.example", "a@x.example"]);
    let r = run(cmd(&inst, "mailsubj", &[], &[]), b"");
    assert_eq!(r.code(), 100);
}
