//! qmail-local and the .qmail helpers, run as real programs under an unprivileged
//! account (the invoking user, or `sqmail` when the tests run as root) against a home
//! directory in the test's scratch area. Every assertion is on bytes: files delivered,
//! queue files, reports and exit codes.
//!
//! qmail-local has no deadline of its own for `|command` lines (qmail-send and
//! qmail-lspawn own that), so a hanging program is not tested here.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sqmail::date::Utc;
use sqmail::sys;

use crate::harness::{Owned, maildir_new};

const MSG: &[u8] = b"From: a@example.org\nSubject: hi\n\nFrom here\n>From there\nbody\n";

static N: AtomicU32 = AtomicU32::new(0);

/// A user with a home directory inside a fresh instance owned by an unprivileged account.
struct User {
    o: Owned,
    home: PathBuf,
}

fn root() -> bool {
    sys::euid() == 0
}

impl User {
    fn new() -> User {
        let o = Owned::new();
        let home = o.inst.home.join("u");
        fs::create_dir(&home).unwrap();
        let u = User { o, home };
        u.own(&u.home, 0o755);
        u
    }

    fn own(&self, p: &Path, mode: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
        if root() {
            std::os::unix::fs::chown(p, Some(self.o.uid), Some(self.o.gid)).unwrap();
        }
    }

    /// Writes a file in the home directory, owned by the user.
    fn write(&self, rel: &str, body: &[u8], mode: u32) -> PathBuf {
        let p = self.home.join(rel);
        fs::write(&p, body).unwrap();
        self.own(&p, mode);
        p
    }

    fn maildir(&self, rel: &str) -> PathBuf {
        self.o.maildir(&format!("u/{rel}"))
    }

    fn home_str(&self) -> String {
        self.home.to_str().unwrap().to_string()
    }

    /// A command for one of the instance's programs, under the user's ids, with the
    /// instance's bin directory first in PATH.
    fn cmd(&self, prog: &str) -> Command {
        let mut c = self.o.inst.cmd(prog);
        let path = format!(
            "{}:{}",
            self.o.inst.home.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        c.env("PATH", path);
        if root() {
            c.uid(self.o.uid).gid(self.o.gid);
        }
        c
    }

    /// Runs `c` with `input` in a file on fd 0.
    fn run(&self, c: Command, input: &[u8]) -> Output {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = self.o.inst.home.join(format!("message{n}"));
        fs::write(&p, input).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        run_deadline(c, Stdio::from(fs::File::open(&p).unwrap()), 60)
    }

    /// qmail-local as qmail-lspawn runs it.
    fn local(&self, local: &str, dash: &str, ext: &str, sender: &str, msg: &[u8]) -> Output {
        self.local_args(&["--"], local, dash, ext, sender, msg)
    }

    fn local_args(
        &self,
        opts: &[&str],
        local: &str,
        dash: &str,
        ext: &str,
        sender: &str,
        msg: &[u8],
    ) -> Output {
        let mut c = self.cmd("qmail-local");
        c.args(opts).args([
            "joe",
            &self.home_str(),
            local,
            dash,
            ext,
            "test.example",
            sender,
            "./Maildir/",
        ]);
        self.run(c, msg)
    }

    fn read(&self, rel: &str) -> Vec<u8> {
        fs::read(self.home.join(rel)).unwrap()
    }
}

fn run_deadline(mut c: Command, stdin: Stdio, secs: u64) -> Output {
    c.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("command did not finish within {secs} s: {c:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn expect(o: &Output, want_code: i32, want_out: &str, want_err: &str) {
    assert_eq!(
        (code(o), out(o), err(o)),
        (want_code, want_out.to_string(), want_err.to_string())
    );
}

fn with_lines(dt: &str, rp: &str, msg: &[u8]) -> Vec<u8> {
    let mut v = format!("{rp}{dt}").into_bytes();
    v.extend_from_slice(msg);
    v
}

#[test]
fn maildir_gets_return_path_delivered_to_and_the_message() {
    let u = User::new();
    let md = u.maildir("Maildir");
    u.write(".qmail", b"./Maildir/\n", 0o644);
    let o = u.local("joe", "", "", "s@x.example", MSG);
    expect(&o, 0, "did 1+0+0\n", "");
    let got = maildir_new(&md);
    assert_eq!(
        got,
        vec![with_lines(
            "Delivered-To: joe@test.example\n",
            "Return-Path: <s@x.example>\n",
            MSG
        )]
    );
    assert_eq!(
        fs::read_dir(md.join("tmp")).unwrap().count(),
        0,
        "tmp/ is empty"
    );
    let name = fs::read_dir(md.join("new"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    let (secs, rest) = name.split_once('.').unwrap();
    assert!(secs.parse::<u64>().is_ok(), "{name}");
    assert!(
        rest.starts_with('M') && rest.contains('P') && rest.contains('Q'),
        "{name}"
    );
    let meta = fs::metadata(md.join("new").join(&name)).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600, "umask 077");
}

#[test]
fn no_dotqmail_and_an_empty_one_mean_default_delivery() {
    let u = User::new();
    let md = u.maildir("Maildir");
    let o = u.local("joe", "", "", "", MSG);
    expect(&o, 0, "did 1+0+0\n", "");
    u.write(".qmail", b"", 0o644);
    let o = u.local("joe", "", "", "", MSG);
    expect(&o, 0, "did 1+0+0\n", "");
    let want = with_lines("Delivered-To: joe@test.example\n", "Return-Path: <>\n", MSG);
    assert_eq!(maildir_new(&md), vec![want.clone(), want]);
}

#[test]
fn missing_extension_file_bounces_and_default_files_match() {
    let u = User::new();
    let o = u.local("joe-nosuch", "-", "nosuch", "s@x.example", MSG);
    expect(
        &o,
        100,
        "",
        "Sorry, no mailbox here by that name. (#5.1.1)\n",
    );
    u.maildir("Maildir");
    u.write(
        ".qmail-Foo:bar-default",
        b"|printf '%s|' \"$DEFAULT\" \"$EXT\" > seen\n",
        0o644,
    );
    let o = u.local(
        "joe-Foo.Bar-Baz-Q",
        "-",
        "Foo.Bar-Baz-Q",
        "s@x.example",
        MSG,
    );
    expect(
        &o,
        100,
        "",
        "Sorry, no mailbox here by that name. (#5.1.1)\n",
    );
    fs::rename(
        u.home.join(".qmail-Foo:bar-default"),
        u.home.join(".qmail-foo:bar-default"),
    )
    .unwrap();
    let o = u.local(
        "joe-Foo.Bar-Baz-Q",
        "-",
        "Foo.Bar-Baz-Q",
        "s@x.example",
        MSG,
    );
    expect(&o, 0, "did 0+0+1\n", "");
    assert_eq!(u.read("seen"), b"Baz-Q|Foo.Bar-Baz-Q|");
}

#[test]
fn addresses_cannot_reach_outside_or_below_home() {
    let u = User::new();
    u.maildir("Maildir");
    // A directory named like the exact file: a '/' in the extension must not open it.
    fs::create_dir(u.home.join(".qmail-a")).unwrap();
    u.own(&u.home.join(".qmail-a"), 0o755);
    u.write(".qmail-a/b", b"|echo wrong > wrong\n", 0o644);
    let o = u.local("joe-a/b", "-", "a/b", "s@x.example", MSG);
    expect(
        &o,
        100,
        "",
        "Sorry, no mailbox here by that name. (#5.1.1)\n",
    );
    u.write(
        ".qmail-default",
        b"|printf '%s' \"$DEFAULT\" > seen\n",
        0o644,
    );
    for ext in ["a/b", "../../etc/passwd", "x\ny"] {
        let o = u.local(&format!("joe-{ext}"), "-", ext, "s@x.example", MSG);
        expect(&o, 0, "did 0+0+1\n", "");
        assert_eq!(u.read("seen"), ext.as_bytes());
    }
    assert!(!u.home.join("wrong").exists());
    // Dots become colons.
    u.write(".qmail-::-x", b"|printf dots > seen\n", 0o644);
    let o = u.local("joe-..-x", "-", "..-x", "s@x.example", MSG);
    expect(&o, 0, "did 0+0+1\n", "");
    assert_eq!(u.read("seen"), b"dots");
    // A newline in the address becomes '_' in Delivered-To.
    u.write(".qmail-n", b"./Maildir/\n", 0o644);
    let o = u.local("joe\nn", "-", "n", "s@x.example", MSG);
    expect(&o, 0, "did 1+0+0\n", "");
    let got = maildir_new(&u.home.join("Maildir"));
    assert!(
        got.iter()
            .any(|m| m
                .starts_with(b"Return-Path: <s@x.example>\nDelivered-To: joe_n@test.example\n"))
    );
}

#[test]
fn mbox_gets_from_line_quoting_and_a_blank_line() {
    let u = User::new();
    u.write(".qmail", b"./Mailbox\n", 0o644);
    let t0 = sqmail::date::now();
    let o = u.local("joe", "", "", "s b@x.example", MSG);
    let t1 = sqmail::date::now();
    expect(&o, 0, "did 1+0+0\n", "");
    let o = u.local("joe", "", "", "", b"no newline at end");
    expect(&o, 0, "did 1+0+0\n", "");
    let got = u.read("Mailbox");
    let split = got
        .windows(20)
        .position(|w| w == b"\n\nFrom MAILER-DAEMON")
        .expect("a second message")
        + 2;
    let (first, second) = got.split_at(split);
    let ok = (t0..=t1).any(|t| {
        let mut want = format!("From s-b@x.example {}", Utc::from_unix(t).ctime()).into_bytes();
        want.extend_from_slice(
            b"Return-Path: <\"s b\"@x.example>\nDelivered-To: joe@test.example\n\
From: a@example.org\nSubject: hi\n\n>From here\n>>From there\nbody\n\n",
        );
        first == want
    });
    assert!(ok, "{}", String::from_utf8_lossy(&got));
    let end = b"Return-Path: <>\nDelivered-To: joe@test.example\nno newline at end\n\n";
    assert!(
        second.starts_with(b"From MAILER-DAEMON "),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(second.ends_with(end), "{}", String::from_utf8_lossy(&got));
    assert_eq!(
        fs::metadata(u.home.join("Mailbox")).unwrap().mode() & 0o777,
        0o600
    );
}

#[test]
fn mbox_and_maildir_failures_are_temporary_with_qmails_texts() {
    let u = User::new();
    u.write(".qmail", b"./nodir/Mailbox\n", 0o644);
    let o = u.local("joe", "", "", "", MSG);
    expect(
        &o,
        111,
        "",
        "Unable to open ./nodir/Mailbox: No such file or directory. (#4.2.1)\n",
    );
    u.write(".qmail", b"./NoMaildir/\n", 0o644);
    let o = u.local("joe", "", "", "", MSG);
    expect(&o, 111, "", "Unable to chdir to maildir. (#4.2.1)\n");
    // A maildir without tmp/.
    fs::create_dir(u.home.join("Broken")).unwrap();
    u.own(&u.home.join("Broken"), 0o700);
    u.write(".qmail", b"./Broken/\n", 0o644);
    let o = u.local("joe", "", "", "", MSG);
    expect(
        &o,
        111,
        "",
        "Temporary error on maildir delivery. (#4.3.0)\n",
    );
}

#[test]
fn write_errors_leave_mbox_and_maildir_as_they_were() {
    let u = User::new();
    let md = u.maildir("Maildir");
    let before = b"From old Thu Jan 01 00:00:00 1970\nold\n\n";
    u.write("Mailbox", before, 0o600);
    let big = [MSG, &b"x".repeat(64 * 1024)[..], b"\n"].concat();
    for (line, text) in [
        (
            "./Mailbox",
            "Unable to write ./Mailbox: File too large. (#4.3.0)\n",
        ),
        (
            "./Maildir/",
            "Temporary error on maildir delivery. (#4.3.0)\n",
        ),
    ] {
        u.write(".qmail", format!("{line}\n").as_bytes(), 0o644);
        // A file size limit makes writes fail with EFBIG once the signal is ignored.
        let c = u.cmd("qmail-local");
        let prog = c.get_program().to_owned();
        let mut sh = Command::new("/bin/sh");
        sh.env_clear()
            .envs(c.get_envs().filter_map(|(k, v)| Some((k, v?))));
        if root() {
            sh.uid(u.o.uid).gid(u.o.gid);
        }
        sh.arg("-c")
            .arg("trap '' XFSZ; ulimit -f 16; exec \"$0\" \"$@\"")
            .arg(prog)
            .args([
                "--",
                "joe",
                &u.home_str(),
                "joe",
                "",
                "",
                "test.example",
                "",
                "./Maildir/",
            ]);
        expect(&u.run(sh, &big), 111, "", text);
    }
    assert_eq!(u.read("Mailbox"), before, "truncated back");
    assert!(maildir_new(&md).is_empty());
    assert_eq!(
        fs::read_dir(md.join("tmp")).unwrap().count(),
        0,
        "tmp/ cleaned"
    );
}

#[test]
fn locked_mbox_defers_after_30_seconds() {
    let u = User::new();
    let mbox = u.write("Mailbox", b"", 0o600);
    u.write(".qmail", b"./Mailbox\n", 0o644);
    let held = fs::OpenOptions::new().append(true).open(&mbox).unwrap();
    sys::lock_exclusive(&held).unwrap();
    let t0 = Instant::now();
    let o = u.local("joe", "", "", "", MSG);
    expect(
        &o,
        111,
        "",
        "File has been locked for 30 seconds straight. (#4.3.0)\n",
    );
    assert!(t0.elapsed() >= Duration::from_secs(29));
    assert_eq!(fs::read(&mbox).unwrap(), b"");
}

fn env_of(raw: &[u8]) -> Vec<(String, String)> {
    raw.split(|&c| c == 0)
        .filter(|e| !e.is_empty())
        .map(|e| {
            let s = String::from_utf8_lossy(e);
            let (k, v) = s.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn programs_see_the_qmail_command_environment_and_the_bare_message() {
    let u = User::new();
    u.write(
        ".qmail-list-default",
        b"|env -0 > env.out; pwd > pwd.out; cat > msg.out\n",
        0o644,
    );
    let t0 = sqmail::date::now();
    let mut c = u.cmd("qmail-local");
    c.env("DEFAULT", "inherited").args([
        "--",
        "joe",
        &u.home_str(),
        "joe-list-a-b",
        "-",
        "list-a-b",
        "mail.test.example",
        "s@x.example",
        "./Maildir/",
    ]);
    let o = u.run(c, MSG);
    let t1 = sqmail::date::now();
    expect(&o, 0, "did 0+0+1\n", "");
    assert_eq!(u.read("msg.out"), MSG, "no Return-Path or Delivered-To");
    assert_eq!(u.read("pwd.out"), format!("{}\n", u.home_str()).as_bytes());
    let env = env_of(&u.read("env.out"));
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    for (k, v) in [
        ("USER", "joe"),
        ("HOME", u.home_str().as_str()),
        ("LOCAL", "joe-list-a-b"),
        ("HOST", "mail.test.example"),
        ("HOST2", "mail.test"),
        ("HOST3", "mail"),
        ("HOST4", "mail"),
        ("RECIPIENT", "joe-list-a-b@mail.test.example"),
        ("SENDER", "s@x.example"),
        ("NEWSENDER", "s@x.example"),
        ("EXT", "list-a-b"),
        ("EXT2", "a-b"),
        ("EXT3", "b"),
        ("EXT4", ""),
        ("DEFAULT", "a-b"),
        ("DTLINE", "Delivered-To: joe-list-a-b@mail.test.example\n"),
        ("RPLINE", "Return-Path: <s@x.example>\n"),
    ] {
        assert_eq!(get(k).as_deref(), Some(v), "{k}");
    }
    let uf = get("UFLINE").unwrap();
    assert!(
        (t0..=t1).any(|t| uf == format!("From s@x.example {}", Utc::from_unix(t).ctime())),
        "{uf:?}"
    );
    // Without a default file DEFAULT is not set, even if inherited.
    u.write(".qmail-plain", b"|env -0 > env.out\n", 0o644);
    let mut c = u.cmd("qmail-local");
    c.env("DEFAULT", "inherited").args([
        "--",
        "joe",
        &u.home_str(),
        "joe-plain",
        "-",
        "plain",
        "test.example",
        "",
        "./Maildir/",
    ]);
    expect(&u.run(c, MSG), 0, "did 0+0+1\n", "");
    let env = env_of(&u.read("env.out"));
    assert!(!env.iter().any(|(k, _)| k == "DEFAULT"));
}

#[test]
fn program_exit_codes_map_like_qmail_local() {
    let u = User::new();
    u.maildir("Maildir");
    u.write(
        ".qmail-x-default",
        b"|exit \"$DEFAULT\"\n./Maildir/\n",
        0o644,
    );
    for (c, want) in [
        (0, 0),
        (100, 100),
        (64, 100),
        (65, 100),
        (70, 100),
        (76, 100),
        (77, 100),
        (78, 100),
        (112, 100),
        (111, 111),
        (1, 111),
        (66, 111),
        (113, 111),
    ] {
        let o = u.local(
            &format!("joe-x-{c}"),
            "-",
            &format!("x-{c}"),
            "s@x.example",
            MSG,
        );
        let report = if want == 0 { "did 1+0+1\n" } else { "" };
        expect(&o, want, report, "");
    }
    u.write(".qmail-crash", b"|kill -9 $$\n", 0o644);
    let o = u.local("joe-crash", "-", "crash", "", MSG);
    expect(&o, 111, "", "Aack, child crashed. (#4.3.0)\n");
    assert_eq!(
        maildir_new(&u.home.join("Maildir")).len(),
        1,
        "only the exit 0 run delivered"
    );
}

#[test]
fn exit_99_stops_but_earlier_forwards_still_go() {
    let u = User::new();
    u.maildir("Maildir");
    u.write(
        ".qmail",
        b"&f@x.example\n|exit 99\n./Maildir/\n|exit 100\n",
        0o644,
    );
    let o = u.local("joe", "", "", "s@x.example", MSG);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let qp = forward_qp(&out(&o), "did 0+1+1\n");
    assert!(maildir_new(&u.home.join("Maildir")).is_empty());
    assert_queued(
        &u,
        qp,
        "s@x.example",
        &["f@x.example"],
        "Delivered-To: joe@test.example\n",
        MSG,
    );
}

/// Checks the report and returns the qp number.
fn forward_qp(report: &str, did: &str) -> u32 {
    let rest = report
        .strip_prefix(did)
        .unwrap_or_else(|| panic!("{report:?}"));
    rest.strip_prefix("qp ")
        .and_then(|r| r.strip_suffix('\n'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{report:?}"))
}

/// The one queued message: envelope and body after qmail-queue's Received line.
fn assert_queued(u: &User, qp: u32, sender: &str, rcpts: &[&str], dt: &str, msg: &[u8]) {
    let mess = u.o.inst.queue_dir("mess");
    let todo = u.o.inst.queue_dir("todo");
    assert_eq!((mess.len(), todo.len()), (1, 1));
    let body = &mess[0].1;
    let nl = body.iter().position(|&c| c == b'\n').unwrap() + 1;
    assert!(body.starts_with(format!("Received: (qmail {qp} ").as_bytes()));
    let mut want = dt.as_bytes().to_vec();
    want.extend_from_slice(msg);
    assert_eq!(
        String::from_utf8_lossy(&body[nl..]),
        String::from_utf8_lossy(&want)
    );
    let mut env = format!("\0p{qp}\0F{sender}\0");
    for r in rcpts {
        env.push_str(&format!("T{r}\0"));
    }
    let t = String::from_utf8_lossy(&todo[0].1).into_owned();
    assert!(t.starts_with('u') && t.ends_with(&env), "{t:?}");
}

#[test]
fn forwards_are_queued_once_after_everything_else() {
    let u = User::new();
    let md = u.maildir("Maildir");
    u.write(
        ".qmail",
        b"# comment\n&a@b.example\nc@d.example   \n./Maildir/\n\n+ignored\n|cat > copy\n",
        0o644,
    );
    let o = u.local("joe", "", "", "s@x.example", MSG);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let qp = forward_qp(&out(&o), "did 1+2+1\n");
    assert_queued(
        &u,
        qp,
        "s@x.example",
        &["a@b.example", "c@d.example"],
        "Delivered-To: joe@test.example\n",
        MSG,
    );
    assert_eq!(maildir_new(&md).len(), 1);
    assert_eq!(u.read("copy"), MSG);
}

#[test]
fn a_failing_line_loses_the_forwards() {
    let u = User::new();
    u.write(".qmail", b"&a@b.example\n|exit 111\n", 0o644);
    let o = u.local("joe", "", "", "s@x.example", MSG);
    expect(&o, 111, "", "");
    assert!(u.o.inst.queue_dir("mess").is_empty());
}

#[test]
fn owner_files_set_the_forwarding_sender() {
    for (files, sender, want) in [
        (&[][..], "s@x.example", "s@x.example"),
        (
            &[".qmail-list-owner"][..],
            "s@x.example",
            "joe-list-owner@test.example",
        ),
        (
            &[".qmail-list-owner", ".qmail-list-owner-default"][..],
            "s@x.example",
            "joe-list-owner-@test.example-@[]",
        ),
        (&[".qmail-list-owner"][..], "", ""),
        (&[".qmail-list-owner"][..], "#@[]", "#@[]"),
    ] {
        let u = User::new();
        u.write(
            ".qmail-list",
            b"&m@y.example\n|printf '%s' \"$NEWSENDER\" > ns\n",
            0o644,
        );
        for f in files {
            u.write(f, b"&owner@y.example\n", 0o644);
        }
        let o = u.local("joe-list", "-", "list", sender, MSG);
        assert_eq!(code(&o), 0, "{}", err(&o));
        let qp = forward_qp(&out(&o), "did 0+1+1\n");
        assert_eq!(u.read("ns"), want.as_bytes(), "{files:?} {sender:?}");
        assert_queued(
            &u,
            qp,
            want,
            &["m@y.example"],
            "Delivered-To: joe-list@test.example\n",
            MSG,
        );
    }
}

#[test]
fn forward_refusals_keep_their_class() {
    let u = User::new();
    u.write(".qmail", b"&a@b.example\n", 0o644);
    for (qq, want_code, text) in [
        (
            31,
            100,
            "Unable to forward message: mail server permanently rejected message (#5.3.0).\n",
        ),
        (
            53,
            111,
            "Unable to forward message: qq write error or disk full (#4.3.0).\n",
        ),
    ] {
        let script = u.write(
            "qq",
            format!("#!/bin/sh\ncat > /dev/null\nexit {qq}\n").as_bytes(),
            0o755,
        );
        let mut c = u.cmd("qmail-local");
        c.env("QMAILQUEUE", &script).args([
            "--",
            "joe",
            &u.home_str(),
            "joe",
            "",
            "",
            "test.example",
            "s@x.example",
            "./Maildir/",
        ]);
        expect(&u.run(c, MSG), want_code, "", text);
    }
}

#[test]
fn executable_dotqmail_and_plus_list_allow_only_forwards() {
    let u = User::new();
    u.maildir("Maildir");
    u.write(".qmail", b"&a@b.example\n./Maildir/\n", 0o755);
    let o = u.local("joe", "", "", "s@x.example", MSG);
    expect(
        &o,
        111,
        "",
        "Uh-oh: .qmail has file delivery but has x bit set. (#4.7.0)\n",
    );
    u.write(".qmail", b"&a@b.example\n|true\n", 0o744);
    let o = u.local("joe", "", "", "s@x.example", MSG);
    expect(
        &o,
        111,
        "",
        "Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)\n",
    );
    u.write(".qmail", b"./Maildir/\n+list\n|true\n", 0o644);
    let o = u.local("joe", "", "", "s@x.example", MSG);
    expect(
        &o,
        111,
        "",
        "Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)\n",
    );
    assert_eq!(
        maildir_new(&u.home.join("Maildir")).len(),
        1,
        "the line before +list ran"
    );
    u.write(".qmail", b"&a@b.example\n", 0o755);
    let o = u.local("joe", "", "", "s@x.example", MSG);
    assert_eq!(code(&o), 0, "{}", err(&o));
}

#[test]
fn delivered_to_loops_bounce_but_only_in_the_header() {
    let u = User::new();
    let md = u.maildir("Maildir");
    let looping = b"Received: x\nDelivered-To: joe@test.example\nSubject: y\n\nbody\n";
    let o = u.local("joe", "", "", "s@x.example", looping);
    expect(
        &o,
        100,
        "",
        "This message is looping: it already has my Delivered-To line. (#5.4.6)\n",
    );
    for fine in [
        &b"Subject: y\n\nDelivered-To: joe@test.example\n"[..],
        b"Delivered-To: JOE@test.example\n\n",
        b"Delivered-To: joe@test.example2\n\n",
        b"Delivered-To: joe@test.example",
    ] {
        let o = u.local("joe", "", "", "s@x.example", fine);
        expect(&o, 0, "did 1+0+0\n", "");
    }
    assert_eq!(maildir_new(&md).len(), 4);
    // -n does not read the message.
    let o = u.local_args(&["-n"], "joe", "", "", "s@x.example", looping);
    expect(&o, 0, "maildir ./Maildir/\ndid 1+0+0\n", "");
}

#[test]
fn dash_n_prints_the_instructions() {
    let u = User::new();
    u.write(
        ".qmail-x",
        b"#c\n./Maildir/\n/var/mail/joe \n|preline procmail\n&a@b.example\nc@d.example\n+list\n",
        0o644,
    );
    let o = u.local_args(&["-n"], "joe-x", "-", "x", "s@x.example", MSG);
    expect(
        &o,
        0,
        "maildir ./Maildir/\nmbox /var/mail/joe\nprogram preline procmail\nforward a@b.example\nforward c@d.example\ndid 2+2+1\n",
        "",
    );
    assert!(u.o.inst.queue_dir("mess").is_empty());
}

#[test]
fn home_and_dotqmail_permissions_are_checked() {
    let u = User::new();
    u.maildir("Maildir");
    // conf-patrn is 002: group-writable is allowed, world-writable is not.
    u.own(&u.home, 0o775);
    expect(&u.local("joe", "", "", "", MSG), 0, "did 1+0+0\n", "");
    u.own(&u.home, 0o757);
    expect(
        &u.local("joe", "", "", "", MSG),
        111,
        "",
        "Uh-oh: home directory is writable. (#4.7.0)\n",
    );
    u.own(&u.home, 0o1755);
    expect(
        &u.local("joe", "", "", "", MSG),
        111,
        "",
        "Home directory is sticky: user is editing his .qmail file. (#4.2.1)\n",
    );
    let o = u.local_args(&["-n"], "joe", "", "", "", MSG);
    expect(
        &o,
        0,
        "maildir ./Maildir/\ndid 1+0+0\n",
        "Warning: home directory is sticky.\n",
    );
    u.own(&u.home, 0o755);
    u.write(".qmail", b"./Maildir/\n", 0o664);
    expect(&u.local("joe", "", "", "", MSG), 0, "did 1+0+0\n", "");
    u.write(".qmail", b"./Maildir/\n", 0o646);
    expect(
        &u.local("joe", "", "", "", MSG),
        111,
        "",
        "Uh-oh: .qmail file is writable. (#4.7.0)\n",
    );
    u.write(".qmail", b"./Maildir/\n", 0o644);
    expect(&u.local("joe", "", "", "", MSG), 0, "did 1+0+0\n", "");
    if root() {
        // Someone else's unreadable .qmail: qmail-local defers rather than guess.
        let p = u.home.join(".qmail");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
        expect(
            &u.local("joe", "", "", "", MSG),
            111,
            "",
            "Unable to open .qmail: Permission denied. (#4.3.0)\n",
        );
    }
}

#[test]
fn root_is_refused_unless_only_printing() {
    if !root() {
        eprintln!("skipped: needs root to run qmail-local as uid 0");
        return;
    }
    let u = User::new();
    let mut c = u.o.inst.cmd("qmail-local");
    c.args([
        "--",
        "joe",
        &u.home_str(),
        "joe",
        "",
        "",
        "test.example",
        "",
        "./Maildir/",
    ]);
    let o = u.run(c, MSG);
    expect(
        &o,
        111,
        "",
        "Not allowed to perform deliveries as root. (#4.7.0)\n",
    );
    let mut c = u.o.inst.cmd("qmail-local");
    c.args([
        "-n",
        "joe",
        &u.home_str(),
        "joe",
        "",
        "",
        "test.example",
        "",
        "./Maildir/",
    ]);
    expect(&u.run(c, MSG), 0, "maildir ./Maildir/\ndid 1+0+0\n", "");
}

#[test]
fn bad_dotqmail_files_defer_with_clear_texts() {
    let u = User::new();
    let line = |fill: usize| [vec![b'#'; fill], b"\n".to_vec()].concat();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"\n./Maildir/\n".to_vec(),
            "Uh-oh: first line of .qmail file is blank. (#4.2.1)\n",
        ),
        (
            b" \t\n./Maildir/\n".to_vec(),
            "Uh-oh: first line of .qmail file is blank. (#4.2.1)\n",
        ),
        (
            line(4097),
            "Uh-oh: .qmail file has a line longer than 4096 bytes. (#4.2.1)\n",
        ),
        (
            b"#\n".repeat(65_537),
            "Uh-oh: .qmail file has more than 65536 lines. (#4.2.1)\n",
        ),
        (
            [line(4095).repeat(256), b"#".to_vec()].concat(),
            "Uh-oh: .qmail file is longer than 1048576 bytes. (#4.2.1)\n",
        ),
    ];
    for (body, text) in cases {
        u.write(".qmail", &body, 0o644);
        expect(&u.local("joe", "", "", "", MSG), 111, "", text);
    }
    // At the limits: fine.
    u.maildir("Maildir");
    let lines = [line(4096), b"#\n".repeat(65_534), b"./Maildir/\n".to_vec()].concat();
    u.write(".qmail", &lines, 0o644);
    expect(&u.local("joe", "", "", "", MSG), 0, "did 1+0+0\n", "");
    let bytes = [line(4095).repeat(255), line(4084), b"./Maildir/\n".to_vec()].concat();
    assert_eq!(bytes.len(), 1 << 20);
    u.write(".qmail", &bytes, 0o644);
    expect(&u.local("joe", "", "", "", MSG), 0, "did 1+0+0\n", "");
}

#[test]
fn usage_and_message_errors() {
    let u = User::new();
    let usage = "qmail-local: usage: qmail-local [ -nN ] user homedir local dash ext domain sender aliasempty\n";
    let mut c = u.cmd("qmail-local");
    c.args(["joe", "relative", "joe", "", "", "h", "s", "./Maildir/"]);
    expect(&u.run(c, MSG), 100, "", usage);
    let mut c = u.cmd("qmail-local");
    c.args(["-x"]);
    expect(
        &u.run(c, MSG),
        100,
        "",
        &format!("qmail-local: illegal option -- x\n{usage}"),
    );
    let mut c = u.cmd("qmail-local");
    c.args([
        "joe",
        "/nonexistent/home",
        "joe",
        "",
        "",
        "h",
        "s",
        "./Maildir/",
    ]);
    expect(
        &u.run(c, MSG),
        111,
        "",
        "Unable to switch to /nonexistent/home: No such file or directory. (#4.3.0)\n",
    );
    // The message on a pipe cannot be rewound.
    let mut c = u.cmd("qmail-local");
    c.args([
        "--",
        "joe",
        &u.home_str(),
        "joe",
        "",
        "",
        "test.example",
        "",
        "./Maildir/",
    ]);
    let (r, mut w) = std::io::pipe().unwrap();
    w.write_all(MSG).unwrap();
    drop(w);
    expect(
        &run_deadline(c, Stdio::from(r), 20),
        111,
        "",
        "Unable to rewind message. (#4.3.0)\n",
    );
}

#[test]
fn every_delivery_reads_the_message_from_the_start() {
    let u = User::new();
    let md = u.maildir("Maildir");
    u.write(
        ".qmail",
        b"|head -c 3 > part\n|cat > all\n./Maildir/\n./Mailbox\n|cat > again\n",
        0o644,
    );
    let o = u.local("joe", "", "", "s@x.example", MSG);
    expect(&o, 0, "did 2+0+3\n", "");
    assert_eq!(u.read("part"), &MSG[..3]);
    assert_eq!(u.read("all"), MSG);
    assert_eq!(u.read("again"), MSG);
    assert_eq!(maildir_new(&md).len(), 1);
}

#[test]
fn program_output_becomes_the_report_up_to_3000_bytes() {
    let u = User::new();
    u.write(
        ".qmail",
        b"|echo first; echo to-stderr >&2\n|head -c 10000 /dev/zero | tr '\\0' x\n|echo never shown\n",
        0o644,
    );
    let o = u.local("joe", "", "", "", MSG);
    let want = format!("first\nto-stderr\n{}did 0+0+3\n", "x".repeat(3000 - 16));
    expect(&o, 0, &want, "");
    u.write(".qmail", b"|echo over quota; exit 100\n", 0o644);
    expect(&u.local("joe", "", "", "", MSG), 100, "over quota\n", "");
}

// The helpers.

fn helper_env(c: &mut Command) {
    c.env("SENDER", "s@x.example")
        .env("NEWSENDER", "owner@y.example")
        .env("DTLINE", "Delivered-To: joe@test.example\n")
        .env("RPLINE", "Return-Path: <s@x.example>\n")
        .env("UFLINE", "From s@x.example Thu Jan 01 00:00:00 1970\n");
}

#[test]
fn preline_puts_the_lines_in_front() {
    let u = User::new();
    let mut c = u.cmd("preline");
    helper_env(&mut c);
    c.arg("cat");
    let o = u.run(c, MSG);
    let mut want = b"From s@x.example Thu Jan 01 00:00:00 1970\nReturn-Path: <s@x.example>\nDelivered-To: joe@test.example\n".to_vec();
    want.extend_from_slice(MSG);
    assert_eq!((code(&o), o.stdout.clone()), (0, want));
    for (flags, want_head) in [
        (
            "-f",
            "Return-Path: <s@x.example>\nDelivered-To: joe@test.example\n",
        ),
        ("-fr", "Delivered-To: joe@test.example\n"),
        ("-fdr", ""),
        (
            "-fF",
            "From s@x.example Thu Jan 01 00:00:00 1970\nReturn-Path: <s@x.example>\nDelivered-To: joe@test.example\n",
        ),
    ] {
        let mut c = u.cmd("preline");
        helper_env(&mut c);
        c.args([flags, "cat"]);
        let o = u.run(c, MSG);
        let mut want = want_head.as_bytes().to_vec();
        want.extend_from_slice(MSG);
        assert_eq!(o.stdout, want, "{flags}");
    }
    let mut c = u.cmd("preline");
    helper_env(&mut c);
    c.args(["sh", "-c", "cat > /dev/null; exit 77"]);
    expect(&u.run(c, MSG), 77, "", "");
    let mut c = u.cmd("preline");
    helper_env(&mut c);
    c.arg("/nonexistent/prog");
    expect(
        &u.run(c, MSG),
        100,
        "",
        "preline: fatal: unable to run /nonexistent/prog: No such file or directory\n",
    );
    let mut c = u.cmd("preline");
    c.arg("cat");
    expect(
        &u.run(c, MSG),
        100,
        "",
        "preline: usage: preline cmd [ arg ... ]\n",
    );
    let mut c = u.cmd("preline");
    helper_env(&mut c);
    c.args(["sh", "-c", "kill -9 $$"]);
    let o = u.run(c, MSG);
    assert_eq!(code(&o), 111);
    assert!(err(&o).starts_with("preline: fatal: "), "{}", err(&o));
}

#[test]
fn preline_works_from_a_dotqmail() {
    let u = User::new();
    u.write(".qmail", b"|preline -f cat > got\n", 0o644);
    expect(
        &u.local("joe", "", "", "s@x.example", MSG),
        0,
        "did 0+0+1\n",
        "",
    );
    assert_eq!(
        u.read("got"),
        with_lines(
            "Delivered-To: joe@test.example\n",
            "Return-Path: <s@x.example>\n",
            MSG
        )
    );
}

#[test]
fn forward_queues_from_newsender() {
    let u = User::new();
    let mut c = u.cmd("forward");
    helper_env(&mut c);
    c.args(["a@b.example", "c@d.example"]);
    let o = u.run(c, MSG);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let qp: u32 = err(&o)
        .strip_prefix("forward: qp ")
        .unwrap()
        .trim_end()
        .parse()
        .unwrap();
    assert_queued(
        &u,
        qp,
        "owner@y.example",
        &["a@b.example", "c@d.example"],
        "Delivered-To: joe@test.example\n",
        MSG,
    );
    let mut c = u.cmd("forward");
    c.env("DTLINE", "x").arg("a@b.example");
    expect(
        &u.run(c, MSG),
        100,
        "",
        "forward: fatal: NEWSENDER not set\n",
    );
    let mut c = u.cmd("forward");
    c.env("NEWSENDER", "x").arg("a@b.example");
    expect(&u.run(c, MSG), 100, "", "forward: fatal: DTLINE not set\n");
}

#[test]
fn condredirect_forwards_when_the_program_says_so() {
    let u = User::new();
    for (prog, want_code, want_err) in [
        ("exit 1", 0, ""),
        ("exit 100", 0, ""),
        (
            "exit 111",
            111,
            "condredirect: fatal: temporary child error\n",
        ),
        ("kill -9 $$", 111, "condredirect: fatal: child crashed\n"),
    ] {
        let mut c = u.cmd("condredirect");
        helper_env(&mut c);
        c.args(["new@z.example", "sh", "-c", prog]);
        expect(&u.run(c, MSG), want_code, "", want_err);
    }
    let mut c = u.cmd("condredirect");
    helper_env(&mut c);
    c.args(["new@z.example", "/nonexistent/prog"]);
    expect(&u.run(c, MSG), 0, "", "");
    assert!(u.o.inst.queue_dir("mess").is_empty());
    // The program reads the message first; the forward still gets all of it.
    let mut c = u.cmd("condredirect");
    helper_env(&mut c);
    c.args(["new@z.example", "sh", "-c", "cat > /dev/null"]);
    let o = u.run(c, MSG);
    assert_eq!(code(&o), 99, "{}", err(&o));
    let qp: u32 = err(&o)
        .strip_prefix("condredirect: qp ")
        .unwrap()
        .trim_end()
        .parse()
        .unwrap();
    assert_queued(
        &u,
        qp,
        "s@x.example",
        &["new@z.example"],
        "Delivered-To: joe@test.example\n",
        MSG,
    );
    let mut c = u.cmd("condredirect");
    c.arg("only-one");
    expect(
        &u.run(c, MSG),
        100,
        "",
        "condredirect: usage: condredirect newaddress program [ arg ... ]\n",
    );
}

#[test]
fn bouncesaying_and_except() {
    let u = User::new();
    for (args, want_code, want_err) in [
        (&["go away"][..], 100, "go away\n"),
        (&["go away", "true"], 100, "go away\n"),
        (&["go away", "false"], 0, ""),
        (
            &["go away", "sh", "-c", "exit 111"],
            111,
            "bouncesaying: fatal: temporary child error\n",
        ),
        (&["go away", "/nonexistent"], 0, ""),
        (
            &[],
            100,
            "bouncesaying: usage: bouncesaying error [ program [ arg ... ] ]\n",
        ),
    ] {
        let mut c = u.cmd("bouncesaying");
        c.args(args);
        expect(&u.run(c, MSG), want_code, "", want_err);
    }
    for (args, want_code, want_err) in [
        (&["true"][..], 100, ""),
        (&["false"], 0, ""),
        (&["sh", "-c", "exit 100"], 0, ""),
        (
            &["sh", "-c", "exit 111"],
            111,
            "except: fatal: temporary child error\n",
        ),
        (&[], 100, "except: usage: except program [ arg ... ]\n"),
    ] {
        let mut c = u.cmd("except");
        c.args(args);
        expect(&u.run(c, MSG), want_code, "", want_err);
    }
    // From a .qmail: except turns a bounce into success.
    u.write(".qmail", b"|except bouncesaying 'not here'\n", 0o644);
    expect(
        &u.local("joe", "", "", "", MSG),
        0,
        "not here\ndid 0+0+1\n",
        "",
    );
    u.write(".qmail", b"|bouncesaying 'not here'\n", 0o644);
    expect(&u.local("joe", "", "", "", MSG), 100, "not here\n", "");
}

#[test]
fn maildir2mbox_moves_messages_in_arrival_order() {
    let u = User::new();
    let md = u.maildir("Maildir");
    let old = std::time::UNIX_EPOCH + Duration::from_secs(827_034_880);
    let newer = old + Duration::from_secs(60);
    for (dir, name, body, t) in [
        (
            "cur",
            "2:2,S",
            &b"Return-Path: <>\nSubject: b\n\nFrom x\nno newline"[..],
            newer,
        ),
        (
            "new",
            "1",
            b"Return-Path: <a b@c>\nSubject: a\n\nbody\n",
            old,
        ),
    ] {
        let p = md.join(dir).join(name);
        fs::write(&p, body).unwrap();
        u.own(&p, 0o600);
        fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
    u.write(
        "Mailbox",
        b"From old Thu Jan 01 00:00:00 1970\nold\n\n",
        0o600,
    );
    let mut c = u.cmd("maildir2mbox");
    c.env("MAILDIR", &md)
        .env("MAIL", u.home.join("Mailbox"))
        .env("MAILTMP", u.home.join("Mailbox.tmp"));
    expect(&u.run(c, b""), 0, "", "");
    assert_eq!(
        String::from_utf8(u.read("Mailbox")).unwrap(),
        "From old Thu Jan 01 00:00:00 1970\nold\n\n\
From a-b@c Sun Mar 17 03:54:40 1996\nReturn-Path: <a b@c>\nSubject: a\n\nbody\n\n\
From MAILER-DAEMON Sun Mar 17 03:55:40 1996\nReturn-Path: <>\nSubject: b\n\n>From x\nno newline\n\n"
    );
    assert_eq!(fs::read_dir(md.join("new")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(md.join("cur")).unwrap().count(), 0);
    let c = u.cmd("maildir2mbox");
    expect(
        &u.run(c, b""),
        111,
        "",
        "maildir2mbox: fatal: MAIL not set\n",
    );
    let mut c = u.cmd("maildir2mbox");
    c.env("MAIL", "x")
        .env("MAILTMP", "y")
        .env("MAILDIR", "/nonexistent");
    expect(
        &u.run(c, b""),
        111,
        "",
        "maildir2mbox: fatal: unable to chdir to /nonexistent: No such file or directory\n",
    );
}

#[test]
fn qreceipt_answers_notice_requests() {
    let u = User::new();
    let asked = b"Message-ID: <1@x.example>\nNotice-Requested-Upon-Delivery-To: Joe <joe@test.example>\n\nbody\n";
    let mut c = u.cmd("qreceipt");
    c.env("SENDER", "s@x.example").arg("joe@test.example");
    expect(&u.run(c, b"Subject: no request\n\nbody\n"), 0, "", "");
    assert!(u.o.inst.queue_dir("mess").is_empty());
    for sender in ["", "#@[]"] {
        let mut c = u.cmd("qreceipt");
        c.env("SENDER", sender).arg("joe@test.example");
        expect(&u.run(c, asked), 0, "", "");
    }
    assert!(u.o.inst.queue_dir("mess").is_empty());
    let mut c = u.cmd("qreceipt");
    c.env("SENDER", "s@x.example").arg("joe@test.example");
    expect(&u.run(c, asked), 0, "", "");
    let mess = u.o.inst.queue_dir("mess");
    assert_eq!(mess.len(), 1);
    let body = String::from_utf8_lossy(&mess[0].1).into_owned();
    let (_, rest) = body.split_once('\n').unwrap();
    assert_eq!(
        rest,
        "From: DELIVERY NOTICE SYSTEM <s@x.example>\nTo: <s@x.example>\nSubject: success notice\n\n\
Hi! This is the qreceipt program. Your message was delivered to the\n\
following address: joe@test.example. Thanks for asking.\nYour Message-ID: <1@x.example>\n"
    );
    let todo = String::from_utf8_lossy(&u.o.inst.queue_dir("todo")[0].1).into_owned();
    assert!(todo.ends_with("\0F\0Ts@x.example\0"), "{todo:?}");
    let mut c = u.cmd("qreceipt");
    c.env("SENDER", "s@x.example").arg("joe@test.example");
    expect(
        &u.run(c, b"Notice-Requested-Upon-Delivery-To: (oops\n\n"),
        100,
        "",
        "qreceipt: fatal: unable to parse this: Notice-Requested-Upon-Delivery-To: (oops\n",
    );
    let c = u.cmd("qreceipt");
    expect(
        &u.run(c, asked),
        100,
        "",
        "qreceipt: usage: qreceipt deliveryaddress\n",
    );
}

#[test]
fn qbiff_always_succeeds_quietly() {
    let u = User::new();
    let mut c = u.cmd("qbiff");
    c.env("USER", "joe")
        .env("SENDER", "s@x.example")
        .env("LOCAL", "joe");
    expect(&u.run(c, MSG), 0, "", "");
    let c = u.cmd("qbiff");
    expect(&u.run(c, MSG), 0, "", "");
}

#[test]
fn maildirwatch_shows_new_messages() {
    let u = User::new();
    let md = u.maildir("Maildir");
    let p = md.join("new/1");
    fs::write(&p, b"Return-Path: <s@x.example>\nDelivered-To: joe@test.example\nFrom: S <s@x.example>\nSubject: hello\n\nbody\n").unwrap();
    u.own(&p, 0o600);
    fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000))
        .unwrap();
    let mut c = u.cmd("maildirwatch");
    c.env("MAILDIR", &md)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let want = "\x1b[;H\x1b[;JFROM <s@x.example> TO <joe@test.example>\n\x1b[1mFrom: S <s@x.example>\x1b[0m\nhello//body/\n\n";
    let mut got = vec![0u8; want.len()];
    let reader = std::thread::spawn(move || {
        let r = stdout.read_exact(&mut got);
        (r.is_ok(), got)
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let (ok, got) = reader.join().unwrap();
    assert!(ok, "no screen within 20 s");
    assert_eq!(String::from_utf8_lossy(&got), want);
    let c = u.cmd("maildirwatch");
    expect(
        &u.run(c, b""),
        111,
        "",
        "maildirwatch: fatal: MAILDIR not set\n",
    );
}
