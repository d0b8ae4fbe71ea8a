//! qmail-authuser, qmail-vmailuser, qmail-smtpam and the SMTP policy data, driven through the
//! real binaries over descriptor 3, against real system accounts, a private Dovecot and
//! Postfix's smtp-sink.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sqmail::policy::mfrules::{Client, MailFromRules};
use sqmail::policy::mime::{ContentFilter, Hit};
use sqmail::policy::recipients::{Recipients, Verdict};
use sqmail::sys;

use crate::harness::{Scratch, programs};

const NOBODY: u32 = 65534;

/// A qmail home under a scratch directory every account can enter.
struct Home {
    s: Scratch,
}

impl Home {
    fn new(tag: &str) -> Home {
        let s = Scratch::new(tag);
        for d in ["qmail", "qmail/users", "qmail/control", "qmail/bin"] {
            std::fs::create_dir_all(s.0.join(d)).unwrap();
        }
        std::fs::write(s.0.join("qmail/control/me"), b"test.example\n").unwrap();
        open_up(&s.0);
        Home { s }
    }
    fn home(&self) -> PathBuf {
        self.s.0.join("qmail")
    }
    fn write(&self, rel: &str, body: &[u8]) {
        let p = self.home().join(rel);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new(programs().join(prog));
        c.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("QMAILHOME", self.home());
        c
    }
}

pub fn open_up(p: &Path) {
    let mut a = p.to_path_buf();
    loop {
        let m = std::fs::metadata(&a).unwrap().permissions().mode();
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(m | 0o755)).unwrap();
        if !a.pop() || a.as_os_str().len() <= 1 || a.ends_with("target") {
            break;
        }
    }
    let walk = std::fs::read_dir(p).unwrap();
    for e in walk.flatten() {
        if e.file_type().unwrap().is_dir() {
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            open_up_below(&e.path());
        }
    }
}

fn open_up_below(p: &Path) {
    for e in std::fs::read_dir(p).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            open_up_below(&e.path());
        }
    }
}

/// Runs `c` with `input` on descriptor 3 (a pipe), waiting at most 20 s.
pub fn fd3(mut c: Command, input: &[u8]) -> Output {
    let (r, mut w) = std::io::pipe().unwrap();
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    sys::proc::map_fds(&mut c, &[(r.as_raw_fd(), 3)]);
    let mut child = c.spawn().expect("spawn");
    drop(r);
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = w.write_all(&data);
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut stdout = Vec::new();
    let _ = out.read_to_end(&mut stdout);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{c:?} did not finish");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = feeder.join();
    Output {
        status,
        stdout,
        stderr: t.join().unwrap(),
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// The subprogram used in these tests: prints who it runs as.
const WHO: &[&str] = &[
    "/bin/sh",
    "-c",
    "printf '%s|%s|%s|%s|%s' \"$USER\" \"$HOME\" \"$(id -u)\" \"$(pwd -P)\" \"$SHELL\"",
];

fn authuser_as(h: &Home, uid: u32, input: &[u8]) -> Output {
    let mut c = h.cmd("qmail-authuser");
    c.args(WHO).uid(uid).gid(uid);
    fd3(c, input)
}

#[test]
fn authuser_plain_hash_and_cram_md5() {
    let h = Home::new("authuser");
    h.write(
        "users/authuser",
        b"# logins\n\
          joe@example.com:secret  \n\
          !off@example.com:secret\n\
          md5@example.com:%5f4dcc3b5aa765d61d8327deb882cf99\n\
          sha1@example.com:%5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8\n\
          sha256@example.com:%5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8\n\
          cram@example.com:tanstaaftanstaaf\n\
          odd@example.com:x\n",
    );
    let cases: &[(&[u8], i32, &str)] = &[
        (b"joe@example.com\0secret\0\0", 0, "plain"),
        (b"JOE@Example.com\0secret\0\0", 0, "keys ignore case"),
        (b"joe@example.com\0Secret\0\0", 1, "wrong password"),
        (b"joe@example.com\0secret\0", 0, "two fields"),
        (b"off@example.com\0secret\0\0", 1, "disabled"),
        (b"ann@example.com\0secret\0\0", 1, "unknown"),
        (b"md5@example.com\0password\0\0", 0, "md5"),
        (b"sha1@example.com\0password\0\0", 0, "sha1"),
        (b"sha256@example.com\0password\0\0", 0, "sha256"),
        (
            b"md5@example.com\x005f4dcc3b5aa765d61d8327deb882cf99\0\0",
            1,
            "pass-the-hash",
        ),
        (
            b"md5@example.com\0%5f4dcc3b5aa765d61d8327deb882cf99\0\0",
            1,
            "pass-the-hash with %",
        ),
        (
            b"sha256@example.com\x005e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8\0\0",
            1,
            "pass-the-hash sha256",
        ),
        (
            b"cram@example.com\0b913a602c7eda7a495b4e6e7334d3890\0<1896.697170952@postoffice.reston.mci.net>\0",
            0,
            "RFC 2195 CRAM-MD5",
        ),
        (
            b"cram@example.com\0b913a602c7eda7a495b4e6e7334d3891\0<1896.697170952@postoffice.reston.mci.net>\0",
            1,
            "bad CRAM-MD5",
        ),
        (b"odd@example.com\0x\0\0", 2, "a one-letter token is misuse"),
        (b"joe@example.com", 2, "missing NUL after the login"),
        (b"joe@example.com\0secret", 2, "missing NUL after the password"),
        (b"", 2, "empty input"),
    ];
    for (input, want, what) in cases {
        let o = authuser_as(&h, NOBODY, input);
        assert_eq!(
            code(&o),
            *want,
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        if *want == 0 {
            let who = String::from_utf8_lossy(&o.stdout).into_owned();
            assert!(who.contains(&format!("|{NOBODY}|")), "{what}: ran as {who}");
        } else {
            assert!(o.stdout.is_empty(), "{what}: the subprogram must not run");
        }
    }
    // At the 512-byte limit the record is read; one byte more is misuse.
    let mut rec = b"joe@example.com\0secret\0".to_vec();
    rec.resize(512, b'c');
    assert_eq!(code(&authuser_as(&h, NOBODY, &rec)), 0);
    rec.push(b'c');
    assert_eq!(code(&authuser_as(&h, NOBODY, &rec)), 2);
    assert_eq!(code(&authuser_as(&h, NOBODY, &vec![b'x'; 100_000])), 2);
    // No subprogram: misuse.
    let mut c = h.cmd("qmail-authuser");
    c.uid(NOBODY).gid(NOBODY);
    assert_eq!(code(&fd3(c, b"joe@example.com\0secret\0\0")), 2);
    // A users/authuser the caller cannot read is a temporary problem, not a refusal.
    let f = h.home().join("users/authuser");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        code(&authuser_as(&h, NOBODY, b"joe@example.com\0secret\0\0")),
        111
    );
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Run by root, a login that does not switch accounts never starts the subprogram.
    let o = authuser_as(&h, 0, b"joe@example.com\0secret\0\0");
    assert_eq!(code(&o), 1);
    assert!(o.stdout.is_empty());
}

#[test]
fn authuser_hands_the_record_to_checkvpw_and_vchkpw() {
    // Stand-ins for VMailMgr's checkvpw and vpopmail's vchkpw: they record their arguments
    // and descriptor 3, and accept the password "good".
    let h = Home::new("authvirt");
    let bin = h.s.0.join("virtbin");
    std::fs::create_dir_all(&bin).unwrap();
    for prog in ["checkvpw", "vchkpw"] {
        let p = bin.join(prog);
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\n\
                 out={}/{prog}.seen\n\
                 echo \"$*\" > $out\n\
                 tr '\\0' '|' <&3 >> $out\n\
                 grep -q '|good|' $out\n",
                h.s.0.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&h.s.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    h.write("users/authuser", b"@vmm.example:+\n@vpop.example:&\n");
    let run = |input: &[u8]| {
        let mut c = h.cmd("qmail-authuser");
        c.env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .args(WHO)
            .uid(NOBODY)
            .gid(NOBODY);
        fd3(c, input)
    };
    assert_eq!(code(&run(b"a@vmm.example\0good\0\0")), 0);
    assert_eq!(
        std::fs::read_to_string(h.s.0.join("checkvpw.seen")).unwrap(),
        "true Maildir\na@vmm.example|good||"
    );
    assert_eq!(code(&run(b"a@vmm.example\0bad\0\0")), 1);
    assert_eq!(code(&run(b"b@vpop.example\0good\0<c@x>\0")), 0);
    assert_eq!(
        std::fs::read_to_string(h.s.0.join("vchkpw.seen")).unwrap(),
        "true\nb@vpop.example|good|<c@x>|"
    );
    assert_eq!(code(&run(b"b@vpop.example\0bad\0\0")), 1);
}

/// A system account made for one test, removed on drop.
struct Account {
    name: String,
}

impl Account {
    fn new(name: &str, password: &str, method: &str) -> Account {
        let _ = Command::new("userdel").arg("-r").arg(name).output();
        // Other tests may hold the passwd lock for a moment (useradd from setup): retry.
        let retry = |what: &str, f: &mut dyn FnMut() -> bool| {
            for _ in 0..100 {
                if f() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            panic!("{what} {name} kept failing");
        };
        retry("useradd", &mut || {
            Command::new("useradd")
                .args(["-m", "-s", "/bin/sh", name])
                .status()
                .expect("useradd")
                .success()
                || sys::account(name.as_bytes()).unwrap().is_some()
        });
        retry("chpasswd", &mut || {
            let mut c = Command::new("chpasswd")
                .args(["-c", method])
                .stdin(Stdio::piped())
                .spawn()
                .expect("chpasswd");
            c.stdin
                .take()
                .unwrap()
                .write_all(format!("{name}:{password}\n").as_bytes())
                .unwrap();
            c.wait().unwrap().success()
        });
        Account {
            name: name.to_string(),
        }
    }
    fn user(&self) -> sys::Account {
        sys::account(self.name.as_bytes()).unwrap().unwrap()
    }
    fn shadow(&self) -> String {
        let s = std::fs::read_to_string("/etc/shadow").unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix(&format!("{}:", self.name)))
            .unwrap()
            .split(':')
            .next()
            .unwrap()
            .to_string()
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        for _ in 0..100 {
            let _ = Command::new("userdel").arg("-r").arg(&self.name).output();
            if sys::account(self.name.as_bytes()).ok().flatten().is_none() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn authuser_system_accounts_yescrypt_and_sha512() {
    crate::harness::must_be_root("it checks system accounts");
    let yes = Account::new("sqauthy", "yes-pass-1", "YESCRYPT");
    let sha = Account::new("sqauths", "sha-pass-2", "SHA512");
    assert!(yes.shadow().starts_with("$y$"), "{}", yes.shadow());
    assert!(sha.shadow().starts_with("$6$"), "{}", sha.shadow());
    let h = Home::new("authsys");
    h.write(
        "users/authuser",
        b"sqauthy@example.com:!\n@sys.example:!\n*:?\n",
    );

    // `!`: become the account, its home and environment, then run the subprogram.
    for (acct, login, pw) in [
        (&yes, &b"sqauthy@example.com"[..], &b"yes-pass-1"[..]),
        (&sha, b"sqauths@sys.example", b"sha-pass-2"),
    ] {
        let u = acct.user();
        let o = authuser_as(&h, 0, &[login, b"\0", pw, b"\0\0"].concat());
        assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
        let home = String::from_utf8_lossy(&u.home).into_owned();
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            format!("{}|{home}|{}|{home}|/bin/sh", acct.name, u.uid)
        );
        let o = authuser_as(&h, 0, &[login, b"\0wrong\0\0"].concat());
        assert_eq!(code(&o), 1);
        assert!(o.stdout.is_empty());
    }
    // The POP3 form, `qmail-authuser qmail-pop3d Maildir`: the mailbox argument is passed
    // on, relative to the account's home; one that climbs out of it is misuse.
    let pop3d = h.s.0.join("pop3d");
    std::fs::write(&pop3d, "#!/bin/sh\nprintf '%s|%s' \"$1\" \"$(pwd -P)\"\n").unwrap();
    std::fs::set_permissions(&pop3d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let pop = |mbox: &str| {
        let mut c = h.cmd("qmail-authuser");
        c.arg(&pop3d).arg(mbox);
        fd3(c, b"sqauthy@example.com\0yes-pass-1\0\0")
    };
    let o = pop("Maildir");
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let home = String::from_utf8_lossy(&yes.user().home).into_owned();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("Maildir|{home}")
    );
    assert_eq!(code(&pop("Maildir/../../etc")), 2);
    assert_eq!(code(&pop("/var/mail/x")), 0, "not the mailbox form");
    // uid 0 is refused on every path, with the right password or not.
    h.write("users/authuser", b"*:!\n");
    for pw in [&b"x"[..], b""] {
        assert_eq!(
            code(&authuser_as(&h, 0, &[b"root\0", pw, b"\0\0"].concat())),
            1
        );
    }

    // `?` from an unprivileged caller needs the shadow file: install the program setuid
    // root in an instance of its own, as s/qmail does, and check the privilege model: the
    // subprogram runs as the caller, not as root.
    let inst = Home::new("authsuid");
    let bin = inst.home().join("bin/qmail-authuser");
    std::fs::copy(programs().join("qmail-authuser"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o6711)).unwrap();
    inst.write("users/authuser", b"*:?\n");
    let run = |input: &[u8]| {
        let mut c = Command::new(&bin);
        c.env_clear().env("PATH", "/usr/bin:/bin").args(WHO);
        c.uid(NOBODY).gid(NOBODY);
        fd3(c, input)
    };
    let o = run(b"sqauths\0sha-pass-2\0\0");
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("|{NOBODY}|")),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(code(&run(b"sqauthy\0yes-pass-1\0\0")), 0);
    assert_eq!(code(&run(b"sqauthy\0sha-pass-2\0\0")), 1);
    assert_eq!(code(&run(b"root\0\0\0")), 1);
    // QMAILHOME is not trusted by the setuid program: this instance's file says `?` only.
    let mut c = Command::new(&bin);
    c.env_clear()
        .env("QMAILHOME", h.home())
        .args(WHO)
        .uid(NOBODY)
        .gid(NOBODY);
    assert_eq!(code(&fd3(c, b"sqauths\0sha-pass-2\0\0")), 0);
}

/// A private Dovecot: auth only, a passwd-file passdb, killed by pid on drop.
pub struct Dovecot {
    child: Child,
    pub dir: PathBuf,
    _s: Scratch,
}

impl Dovecot {
    pub fn start(passdb: &str, extra: &str) -> Dovecot {
        let s = Scratch::new("dovecot");
        let dir = s.0.clone();
        open_up(&dir);
        for d in ["run", "state"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let conf = format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nprotocols =\nlog_path = {d}/log\n\
             ssl = no\ndefault_internal_user = dovecot\ndefault_login_user = dovenull\n{extra}\n\
             passdb {{\n{passdb}\n}}\n\
             userdb {{\n  driver = static\n  args = uid=65534 gid=65534 home=/nonexistent\n}}\n\
             service auth {{\n  unix_listener auth-client {{\n    mode = 0666\n  }}\n}}\n",
            d = dir.display()
        );
        std::fs::write(dir.join("dovecot.conf"), conf).unwrap();
        let child = Command::new("dovecot")
            .arg("-F")
            .arg("-c")
            .arg(dir.join("dovecot.conf"))
            .stdin(Stdio::null())
            .spawn()
            .expect("dovecot (package dovecot-core) must be installed");
        let sock = dir.join("run/auth-client");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "dovecot did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Dovecot { child, dir, _s: s }
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.join("run/auth-client")
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = sys::proc::kill(self.child.id(), sys::proc::Signal::Terminate);
        let _ = self.child.wait();
    }
}

#[test]
fn authuser_asks_dovecot() {
    let s = Scratch::new("dovepw");
    open_up(&s.0);
    let pw = s.0.join("passwd");
    std::fs::write(&pw, "ann@dove.example:{PLAIN}dove-pass\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    let d = Dovecot::start(
        &format!(
            "  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {}",
            pw.display()
        ),
        "",
    );
    let h = Home::new("authdove");
    h.write("users/authuser", b"@dove.example:=\n");
    let run = |input: &[u8], socket: &Path| {
        let mut c = h.cmd("qmail-authuser");
        c.arg("-s")
            .arg(socket)
            .arg("-x")
            .arg("service=smtp")
            .args(WHO)
            .uid(NOBODY)
            .gid(NOBODY);
        fd3(c, input)
    };
    let o = run(b"ann@dove.example\0dove-pass\0\0", &d.socket());
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("|{NOBODY}|")));
    assert_eq!(code(&run(b"ann@dove.example\0wrong\0\0", &d.socket())), 1);
    assert_eq!(
        code(&run(b"bob@dove.example\0dove-pass\0\0", &d.socket())),
        1
    );
    // No Dovecot behind the socket path: temporary, not "wrong password".
    assert_eq!(
        code(&run(
            b"ann@dove.example\0dove-pass\0\0",
            &d.dir.join("run/none")
        )),
        111
    );
}

#[test]
fn dovecot_checkpassword_passdb_runs_qmail_authuser() {
    // Dovecot's own checkpassword driver calls our program with its checkpassword-reply
    // as the subprogram; doveadm then sees the verdict.
    let h = Home::new("dovecp");
    h.write("users/authuser", b"cp@dove.example:cp-pass\n");
    let d = Dovecot::start(
        &format!(
            "  driver = checkpassword\n  args = {}",
            programs().join("qmail-authuser").display()
        ),
        &format!("import_environment = QMAILHOME={}", h.home().display()),
    );
    let test = |user: &str, pw: &str| {
        Command::new("doveadm")
            .args(["auth", "test", "-a"])
            .arg(d.socket())
            .args([user, pw])
            .output()
            .expect("doveadm")
    };
    let o = test("cp@dove.example", "cp-pass");
    assert_eq!(
        code(&o),
        0,
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        std::fs::read_to_string(d.dir.join("log")).unwrap_or_default()
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("auth succeeded"));
    let o = test("cp@dove.example", "nope");
    assert_eq!(code(&o), 77);
    assert!(String::from_utf8_lossy(&o.stdout).contains("auth failed"));
}

#[test]
fn vmailuser_finds_vmailmgr_and_vpopmail_users() {
    let h = Home::new("vmail");
    let users = h.s.0.join("homes");
    for d in ["vu/users/joe:doe", "vpopmail/domains/pop.example/ann"] {
        std::fs::create_dir_all(users.join(d)).unwrap();
    }
    h.write(
        "control/virtualdomains",
        b"vmm.example:vu\npop.example:pop.example\n",
    );
    let run = |input: &[u8], extra: &[&str]| {
        let mut c = h.cmd("qmail-vmailuser");
        c.arg(&users).args(extra);
        code(&fd3(c, input))
    };
    assert_eq!(run(b"Joe.Doe@VMM.example\0\0\0", &[]), 0);
    assert_eq!(run(b"ann@pop.example\0\0\0", &[]), 0);
    assert_eq!(run(b"bob@pop.example\0\0\0", &[]), 1);
    assert_eq!(run(b"joe@other.example\0\0\0", &[]), 1);
    assert_eq!(run(b"Joe.Doe@vmm.example\0\0\0", &["-C"]), 1);
    assert_eq!(run(b"../x@pop.example\0\0\0", &[]), 1);
    assert_eq!(run(&[b'a'; 129], &[]), 2);
    // control/virtualusers, when present, is read instead of control/virtualdomains.
    h.write("control/virtualusers", b"pop.example:vu\n");
    assert_eq!(run(b"ann@pop.example\0\0\0", &[]), 1);
    assert_eq!(run(b"joe.doe@pop.example\0\0\0", &[]), 0);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Postfix's smtp-sink on a loopback port, killed by pid on drop.
struct Sink {
    child: Child,
    port: u16,
}

impl Sink {
    fn start(opts: &[&str]) -> Sink {
        let port = free_port();
        let child = Command::new("smtp-sink")
            .args(["-u", "nobody"])
            .args(opts)
            .arg(format!("127.0.0.1:{port}"))
            .arg("10")
            .stdin(Stdio::null())
            .spawn()
            .expect("smtp-sink (package postfix) must be installed");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "smtp-sink did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Sink { child, port }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn smtpam_asks_smtp_sink() {
    let h = Home::new("smtpam");
    h.write("control/helohost", b"pam.example\n");
    let run = |port: u16, extra: Option<&str>| {
        let mut c = h.cmd("qmail-smtpam");
        c.arg("127.0.0.1")
            .arg(extra.map_or(port.to_string(), str::to_string));
        code(&fd3(c, b"joe@example.com\0\0\0"))
    };
    let ok = Sink::start(&[]);
    assert_eq!(run(ok.port, None), 0);
    let hard = Sink::start(&["-f", "rcpt"]);
    assert_eq!(run(hard.port, None), 1);
    let soft = Sink::start(&["-r", "rcpt"]);
    assert_eq!(run(soft.port, None), 111);
    let gone = Sink::start(&["-q", "rcpt"]);
    assert_eq!(run(gone.port, None), 111);
    assert_eq!(run(free_port(), None), 111, "nobody listening");
    let plain_on_tls = format!("s{}", ok.port);
    assert_eq!(
        run(0, Some(&plain_on_tls)),
        111,
        "a server that does not speak TLS on an s port: the handshake fails"
    );
    assert_eq!(run(0, Some("port")), 2);
}

/// A scripted SMTP server on a loopback port: sends each reply after reading one line
/// (the first before reading anything), records what it read, then closes.
fn scripted(replies: &'static [&'static str]) -> (u16, std::thread::JoinHandle<String>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut r = std::io::BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let mut seen = String::new();
        for (i, reply) in replies.iter().enumerate() {
            if i > 0 {
                let mut line = String::new();
                if std::io::BufRead::read_line(&mut r, &mut line).unwrap_or(0) == 0 {
                    break;
                }
                seen.push_str(&line);
            }
            if w.write_all(reply.as_bytes()).is_err() {
                break;
            }
        }
        seen
    });
    (port, t)
}

#[test]
fn smtpam_against_a_scripted_server() {
    let h = Home::new("smtpam2");
    let run = |port: u16| {
        let mut c = h.cmd("qmail-smtpam");
        c.arg("[127.0.0.1]").arg(port.to_string());
        code(&fd3(c, b"ann@example.org\0\0\0"))
    };
    let (port, t) = scripted(&[
        "220-mx.example.org\r\n220 ESMTP\r\n",
        "250 hi\r\n",
        "250 ok\r\n",
        "550-no such user\r\n550 5.1.1 really not\r\n",
        "221 bye\r\n",
    ]);
    assert_eq!(run(port), 1);
    assert_eq!(
        t.join().unwrap(),
        "HELO test.example\r\nMAIL FROM:<>\r\nRCPT TO:<ann@example.org>\r\nQUIT\r\n"
    );
    let (port, t) = scripted(&["220 hi\r\n", "250 hi\r\n", "250 ok\r\n", "452 full\r\n"]);
    assert_eq!(run(port), 111);
    t.join().unwrap();
    let (port, t) = scripted(&["421 busy\r\n"]);
    assert_eq!(run(port), 111);
    t.join().unwrap();
    let (port, t) = scripted(&["220 hi\r\n", "250 hi\r\n", "250 ok\r\n", "250 ok\r\n"]);
    assert_eq!(run(port), 0);
    t.join().unwrap();
}

#[test]
fn recipients_cdb_pam_and_wildcards() {
    let h = Home::new("rcpts");
    h.write(
        "users/recipients",
        b"# local mailboxes\nJoe@Example.COM\nlist-@example.com\n\nann@mx.example.com  \n",
    );
    let o = h.cmd("qmail-recipients").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Byte-compatible keys: fastforward's `:address`, lower-cased, empty data.
    let db = sqmail::cdb::Reader::open(&h.home().join("users/recipients.cdb"))
        .unwrap()
        .unwrap();
    let keys: Vec<Vec<u8>> = db.records().unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        vec![
            b":joe@example.com".to_vec(),
            b":list-@example.com".to_vec(),
            b":ann@mx.example.com".to_vec()
        ]
    );
    let pam = h.home().join("bin/pam");
    std::fs::write(
        &pam,
        "#!/bin/sh\n\
         a=$(tr '\\0' '\\n' <&3 | head -n 1)\n\
         case \"$a\" in\n\
         pam@pam.example) exit 0 ;;\n\
         sick@pam.example) exit 111 ;;\n\
         *) exit 1 ;;\n\
         esac\n",
    )
    .unwrap();
    std::fs::set_permissions(&pam, std::fs::Permissions::from_mode(0o755)).unwrap();
    h.write(
        "control/recipients",
        b"example.com:users/recipients.cdb\n\
          @pam.example|bin/pam arg\n\
          !wild.example\n\
          @pam.example:users/recipients.cdb\n",
    );
    let r = Recipients::load(&h.home()).unwrap().unwrap();
    let cases: &[(&[u8], Verdict)] = &[
        (b"joe@example.com", Verdict::Cdb),
        (b"JOE@EXAMPLE.com", Verdict::Cdb),
        (b"list-owner@example.com", Verdict::Cdb),
        (b"ann@mx.example.com", Verdict::Cdb),
        (b"bob@example.com", Verdict::Unknown),
        (b"joe@badexample.com", Verdict::Unknown),
        (b"pam@pam.example", Verdict::Pam),
        (b"other@pam.example", Verdict::Unknown),
        (b"anyone@wild.example", Verdict::Wild),
        (b"anyone@elsewhere.example", Verdict::Unknown),
    ];
    for (a, want) in cases {
        assert_eq!(r.check(a).unwrap(), *want, "{}", String::from_utf8_lossy(a));
    }
    assert!(r.check(b"sick@pam.example").unwrap_err().is_temp());
    // `!*` lets through what earlier lines did not decide; unqualified gets @localhost.
    h.write("users/recipients", b"postmaster@localhost\n");
    assert!(h.cmd("qmail-recipients").status().unwrap().success());
    h.write("control/recipients", b"users/recipients.cdb\n!*\n");
    let r = Recipients::load(&h.home()).unwrap().unwrap();
    assert_eq!(r.check(b"postmaster").unwrap(), Verdict::Cdb);
    assert_eq!(r.check(b"x@y.example").unwrap(), Verdict::Pass);
    std::fs::remove_file(h.home().join("control/recipients")).unwrap();
    assert!(Recipients::load(&h.home()).unwrap().is_none());
    // qmail-vmailuser as a PAM from control/recipients.
    let users = h.s.0.join("homes");
    std::fs::create_dir_all(users.join("vu/users/kim")).unwrap();
    h.write("control/virtualdomains", b"virt.example:vu\n");
    h.write(
        "control/recipients",
        format!(
            "virt.example|/usr/bin/env QMAILHOME={} {} {}\n",
            h.home().display(),
            programs().join("qmail-vmailuser").display(),
            users.display()
        )
        .as_bytes(),
    );
    let r = Recipients::load(&h.home()).unwrap().unwrap();
    assert_eq!(r.check(b"kim@virt.example").unwrap(), Verdict::Pam);
    assert_eq!(r.check(b"lee@virt.example").unwrap(), Verdict::Unknown);
}

#[test]
fn mfrules_compile_and_decide() {
    let h = Home::new("mfrules");
    h.write(
        "control/mailfromrules",
        b"# MAV\n\
          joe&joe@example.com,@lists.example.com\n\
          192.0.2.10-12&example.net\n\
          =.trusted.example&\n\
          127.0.0.&@localhost.example\n",
    );
    let o = h.cmd("qmail-mfrules").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = MailFromRules::open(&h.home()).unwrap().unwrap();
    let c = |ip: &str, host: Option<&str>, info: Option<&str>| Client {
        ip: ip.into(),
        host: host.map(Into::into),
        info: info.map(Into::into),
    };
    let cases: &[(Client, &[u8], bool)] = &[
        (
            c("198.51.100.1", None, Some("joe")),
            b"joe@example.com",
            true,
        ),
        (
            c("198.51.100.1", None, Some("joe")),
            b"Joe@Example.COM",
            true,
        ),
        (
            c("198.51.100.1", None, Some("joe")),
            b"x@lists.example.com",
            true,
        ),
        (
            c("198.51.100.1", None, Some("joe")),
            b"ann@example.com",
            false,
        ),
        (c("192.0.2.11", None, None), b"a@example.net", true),
        (c("192.0.2.11", None, None), b"a@mx.example.net", true),
        (c("192.0.2.13", None, None), b"a@example.net", false),
        (
            c("192.0.2.99", Some("a.trusted.example"), None),
            b"any@where.example",
            true,
        ),
        (c("127.0.0.1", None, None), b"u@localhost.example", true),
        (c("127.0.0.1", None, None), b"u@elsewhere.example", false),
        (c("127.0.0.1", None, None), b"", true),
        (c("203.0.113.5", None, None), b"u@example.net", false),
    ];
    for (who, sender, want) in cases {
        assert_eq!(
            m.allowed(who, sender).unwrap(),
            *want,
            "{who:?} {}",
            String::from_utf8_lossy(sender)
        );
    }
    // A line that does not parse: exit 100, the line named, the old database kept.
    h.write("control/mailfromrules", b"no ampersand here\n");
    let o = h.cmd("qmail-mfrules").output().unwrap();
    assert_eq!(o.status.code(), Some(100));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "qmail-mfrules: fatal: unable to parse this line: no ampersand here\n"
    );
    assert!(MailFromRules::open(&h.home()).unwrap().is_some());
    assert!(!h.home().join("control/mailfromrules.tmp").exists());
}

/// A MIME message with a real base64 attachment, made by Python's email package.
fn python_message(payload_hex: &str, name: &str) -> Vec<u8> {
    let script = format!(
        "import sys\n\
         from email.message import EmailMessage\n\
         m = EmailMessage()\n\
         m['From'] = 'a@example.com'\n\
         m['To'] = 'b@example.com'\n\
         m['Subject'] = 'attachment'\n\
         m.set_content('see attached')\n\
         m.add_attachment(bytes.fromhex('{payload_hex}'), maintype='application', subtype='octet-stream', filename='{name}')\n\
         sys.stdout.buffer.write(m.as_bytes())\n"
    );
    let o = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .expect("python3 must be installed");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

#[test]
fn mime_and_loader_filters_catch_real_attachments() {
    let h = Home::new("mime");
    h.write(
        "control/badmimetypes",
        b"# Windows programs (MZ header)\nTVqQAAMAAAAEAAAA\n",
    );
    h.write("control/badloadertypes", b"# MZ anywhere\nTVqQA\n");
    for p in ["qmail-badmimetypes", "qmail-badloadertypes"] {
        let o = h.cmd(p).output().unwrap();
        assert!(
            o.status.success(),
            "{p}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // A DOS/Windows executable header: base64 starts TVqQAAMAAAAEAAAA.
    let mut exe = "4d5a90000300000004000000ffff0000b8".to_string();
    exe.push_str(&"00".repeat(200));
    let evil = python_message(&exe, "x.exe");
    assert!(
        evil.windows(16).any(|w| w == b"TVqQAAMAAAAEAAAA"),
        "{}",
        String::from_utf8_lossy(&evil)
    );
    let harmless = python_message(&"41".repeat(300), "a.txt");
    let home = h.home();
    let mut f = ContentFilter::new(&home, Some(b""), None, false)
        .unwrap()
        .unwrap();
    assert_eq!(
        f.feed(&evil).unwrap(),
        Some(&Hit::Mime(b"TVqQAAMAA".to_vec()))
    );
    let mut f = ContentFilter::new(&home, Some(b""), None, false)
        .unwrap()
        .unwrap();
    assert_eq!(f.feed(&harmless).unwrap(), None);
    assert_eq!(f.finish().unwrap(), None);
    assert!(f.saw_base64());
    // The loader filter finds the signature in the middle of an attachment too.
    let mut shifted = "41".repeat(30);
    shifted.push_str(&exe);
    let buried = python_message(&shifted, "x.bin");
    let mut f = ContentFilter::new(&home, None, Some(b"T"), false)
        .unwrap()
        .unwrap();
    let mut found = None;
    for chunk in buried.chunks(7) {
        if let Some(hit) = f.feed(chunk).unwrap() {
            found = Some(hit.clone());
            break;
        }
    }
    assert_eq!(found, Some(Hit::Loader(b"TVqQA".to_vec())));
    let mut f = ContentFilter::new(&home, Some(b""), None, false)
        .unwrap()
        .unwrap();
    assert_eq!(
        f.feed(&buried).unwrap(),
        None,
        "not at the start: no MIME hit"
    );
    let mut f = ContentFilter::new(&home, None, Some(b"T"), false)
        .unwrap()
        .unwrap();
    assert_eq!(
        f.feed(&evil).unwrap(),
        Some(&Hit::Loader(b"TVqQA".to_vec()))
    );
    // Relay clients skip the `+` filters.
    assert!(
        ContentFilter::new(&home, Some(b"+"), Some(b"+"), true)
            .unwrap()
            .is_none()
    );
}

/// swaks authenticates through qmail-smtpd (under sslserver -n, after STARTTLS) with
/// qmail-authuser as the checkpassword program: a users/authuser login with PLAIN, LOGIN
/// and CRAM-MD5, and a login Dovecot checks (the `=` back end), with PLAIN and LOGIN.
/// Wrong passwords get 535. The server runs as the instance's unprivileged account.
#[test]
fn swaks_authenticates_through_qmail_authuser_and_dovecot() {
    let pw = Scratch::new("smtpdove");
    open_up(&pw.0);
    let pwfile = pw.0.join("passwd");
    std::fs::write(&pwfile, "ann@dove.example:{PLAIN}dove-pass\n").unwrap();
    std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o644)).unwrap();
    let d = Dovecot::start(
        &format!(
            "  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {}",
            pwfile.display()
        ),
        "",
    );
    let o = crate::harness::Owned::new();
    o.file(
        "users/authuser",
        b"joe@mx.test:secret\n@dove.example:=\n",
        0o600,
    );
    let (cert, key) = (o.inst.home.join("cert.pem"), o.inst.home.join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(made.status.success());
    for f in [&cert, &key] {
        std::os::unix::fs::chown(f, Some(o.uid), Some(o.gid)).unwrap();
    }
    let mut server = Command::new(programs().join("sslserver"))
        .args(["-1", "-n", "-e", "-H", "-R", "-l", "mx.test"])
        .args(["-u", &o.uid.to_string(), "-g", &o.gid.to_string()])
        .args(["127.0.0.1", "0"])
        .arg(o.inst.bin("qmail-smtpd"))
        .arg(o.inst.bin("qmail-authuser"))
        .arg("-s")
        .arg(d.socket())
        .args(["-x", "service=smtp", "true"])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("QMAILHOME", &o.inst.home)
        .env("CERTFILE", &cert)
        .env("KEYFILE", &key)
        .env("UCSPITLS", "")
        .env("SMTPAUTH", "+cram")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("our sslserver (cargo build --all)");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Kill(server);
    let port = line.trim().to_string();
    let swaks = |user: &str, pass: &str, mech: &str| -> String {
        let out = Command::new("swaks")
            .args(["--server", "127.0.0.1", "--port", &port])
            .args([
                "--from",
                "a@mx.test",
                "--to",
                "u@far.test",
                "--helo",
                "client.test",
            ])
            .args(["--timeout", "20", "--tls", "--auth", mech])
            .args(["--auth-user", user, "--auth-password", pass])
            .output()
            .expect("swaks");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for (user, pass, mechs) in [
        ("joe@mx.test", "secret", &["PLAIN", "LOGIN", "CRAM-MD5"][..]),
        ("ann@dove.example", "dove-pass", &["PLAIN", "LOGIN"][..]),
    ] {
        for mech in mechs {
            let t = swaks(user, pass, mech);
            assert!(
                t.contains("<~  235 ok, go ahead (#2.0.0)"),
                "{user} {mech}: {t}"
            );
            assert!(t.contains("<~  250 ok "), "{user} {mech}: {t}");
            let t = swaks(user, "wrong", mech);
            assert!(
                t.contains("<~* 535 authentication failed (#5.7.1)"),
                "{user} {mech}: {t}"
            );
        }
    }
    let queued = o.inst.queue_dir("todo");
    assert_eq!(queued.len(), 5);
    for (_, env) in queued {
        let e = String::from_utf8_lossy(&env).into_owned();
        assert!(e.contains("Fa@mx.test\0Tu@far.test\0"), "{e:?}");
    }
}
