//! Privilege separation on a multi-user instance installed by root: each daemon runs as
//! qmail's account for it, qmail-local runs as the recipient, no delivery runs as uid 0,
//! and qmail-local refuses the `.qmail` files qmail refuses.

use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use sqmail::envelope::encode;
use sqmail::ids::{Group, Ids, User};

use crate::harness::{Scratch, children, programs, qmail_queue_cmd, wait_for};

const USER: &str = "sqmailtest";
const DOMAIN: &str = "privsep.example";
const MSG: &[u8] = b"From: alice@example.org\nSubject: privsep\n\nHello.\n";

/// qmail-start running as root on the instance; stopped by pid on drop.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    fn start(home: &Path) -> Running {
        let log = home.join("send.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(home.join("bin/qmail-start"))
            .arg("./Maildir/")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("QMAILHOME", home)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("qmail-start");
        let r = Running { child, log };
        let ready = wait_for(20, || r.log_text().contains("status: local").then_some(()));
        assert!(
            ready.is_some(),
            "qmail-send did not start; log:\n{}",
            r.log_text()
        );
        r
    }

    fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = sqmail::sys::proc::kill(self.child.id(), sqmail::sys::proc::Signal::Terminate);
        if wait_for(10, || self.child.try_wait().unwrap().map(drop)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The numbers of a `/proc/PID/status` line such as `Uid:` (real, effective, saved, fs).
fn status_ids(pid: u32, key: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} line for pid {pid}"));
    line.split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect()
}

/// Runs a command, panicking with its output if it fails.
fn must(c: &mut Command) {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The local account mail is delivered to, with its home at `home` (created if missing).
fn account(home: &Path) -> sqmail::sys::Account {
    if sqmail::sys::account(USER.as_bytes()).unwrap().is_some() {
        must(Command::new("usermod").arg("--home").arg(home).arg(USER));
    } else {
        must(
            Command::new("useradd")
                .args(["--no-create-home", "--shell", "/usr/sbin/nologin"])
                .arg("--home-dir")
                .arg(home)
                .arg(USER),
        );
    }
    sqmail::sys::account(USER.as_bytes()).unwrap().unwrap()
}

/// A Maildir at `dir` owned by uid:gid.
fn maildir(dir: &Path, uid: u32, gid: u32) {
    for d in ["", "tmp", "new", "cur"] {
        let p = dir.join(d);
        std::fs::create_dir_all(&p).unwrap();
        chown(&p, Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
}

fn write(p: &Path, body: &[u8], uid: u32, gid: u32, mode: u32) {
    std::fs::write(p, body).unwrap();
    chown(p, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The owners of the files in a Maildir's new/.
fn new_owners(dir: &Path) -> Vec<u32> {
    std::fs::read_dir(dir.join("new"))
        .map(|d| d.flatten().map(|e| e.metadata().unwrap().uid()).collect())
        .unwrap_or_default()
}

#[test]
fn daemons_and_deliveries_run_as_qmails_accounts_never_as_root() {
    crate::harness::must_be_root("it installs a multi-user instance and creates accounts");
    let s = Scratch::new("privsep");
    // The accounts must reach the instance and the user's home: every directory from the
    // scratch directory up to cargo's target directory is made traversable.
    let mut dir = s.0.as_path();
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    loop {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o755)).unwrap();
        if dir == target {
            break;
        }
        dir = dir.parent().unwrap();
    }
    let home = s.0.join("qmail");
    let out = Command::new(programs().join("sqmail-setup"))
        .args(["-m", DOMAIN, "-p"])
        .arg(programs())
        .arg(&home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sqmail-setup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids = Ids::load(&home).unwrap();
    let uid = |u| ids.uid(u).unwrap();
    let gq = ids.gid(Group::Qmail).unwrap();
    // qmail-getpw answers with ~alias from the password file, as qmail does; the account
    // is shared by every multi-user instance on the machine, so it is pointed at this one.
    must(
        Command::new("usermod")
            .arg("--home")
            .arg(home.join("alias"))
            .arg(
                ids.user_name(User::Alias)
                    .iter()
                    .map(|&b| b as char)
                    .collect::<String>(),
            ),
    );
    let alias = ids.account(User::Alias).unwrap();

    // The recipient: a real account whose home it owns, with a Maildir and two .qmail files
    // qmail-local must refuse: one world-writable, one owned by another account and
    // unreadable to the recipient.
    let uhome = s.0.join("home");
    std::fs::create_dir(&uhome).unwrap();
    let user = account(&uhome);
    chown(&uhome, Some(user.uid), Some(user.gid)).unwrap();
    std::fs::set_permissions(&uhome, std::fs::Permissions::from_mode(0o755)).unwrap();
    let umd = uhome.join("Maildir");
    maildir(&umd, user.uid, user.gid);
    write(
        &uhome.join(".qmail-ww"),
        b"./Maildir/\n",
        user.uid,
        user.gid,
        0o646,
    );
    write(
        &uhome.join(".qmail-other"),
        b"./Maildir/\n",
        alias.uid,
        alias.gid,
        0o600,
    );
    // postmaster and root go to ~alias (qmail-getpw never answers with uid 0).
    let amd = home.join("alias/Maildir");
    maildir(&amd, alias.uid, alias.gid);
    // A local part that users/assign gives to uid 0.
    std::fs::write(
        home.join("users/assign"),
        b"=rootbox:root:0:0:/root:::\n.\n",
    )
    .unwrap();
    let st = Command::new(home.join("bin/qmail-newu"))
        .env("QMAILHOME", &home)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "qmail-newu: {}",
        String::from_utf8_lossy(&st.stderr)
    );

    let d = Running::start(&home);
    let send = d.child.id();

    // Each daemon runs as its account (real, effective, saved and file-system ids).
    let expect = |pid: u32, name: &str, u: u32, g: u32| {
        assert_eq!(
            status_ids(pid, "Uid:"),
            vec![u; 4],
            "{name} (pid {pid}) uids"
        );
        assert_eq!(
            status_ids(pid, "Gid:"),
            vec![g; 4],
            "{name} (pid {pid}) gids"
        );
        assert!(
            !status_ids(pid, "Groups:").contains(&0),
            "{name} (pid {pid}) keeps root's group"
        );
    };
    expect(send, "qmail-send", uid(User::Qmails), gq);
    let kids = children(send);
    for (name, u) in [
        ("qmail-todo", uid(User::Qmails)),
        ("qmail-clean", uid(User::Qmailq)),
        ("qmail-rspawn", uid(User::Qmailr)),
        ("qmail-lspawn", 0),
    ] {
        let pids: Vec<u32> = kids
            .iter()
            .filter(|(_, c)| c == name)
            .map(|(p, _)| *p)
            .collect();
        assert!(
            !pids.is_empty(),
            "no {name} among qmail-send's children: {kids:?}"
        );
        for p in pids {
            expect(p, name, u, gq);
        }
    }

    // Mail for the user, for aliases, for uid 0 and for the refused .qmail files, queued
    // through the setuid qmail-queue.
    let queue = |rcpt: &str| {
        let mut c = Command::new(home.join("bin/qmail-queue"));
        c.env_clear();
        let (code, _) = qmail_queue_cmd(c, MSG, &encode(b"alice@example.org", &[rcpt.as_bytes()]));
        assert_eq!(code, 0, "qmail-queue for {rcpt}");
    };
    for local in [USER, "postmaster", "root", "rootbox"] {
        queue(&format!("{local}@{DOMAIN}"));
    }
    queue(&format!("{USER}-ww@{DOMAIN}"));
    queue(&format!("{USER}-other@{DOMAIN}"));

    let got = wait_for(30, || (new_owners(&umd).len() == 1).then_some(()));
    assert!(
        got.is_some(),
        "no delivery to {USER}; log:\n{}",
        d.log_text()
    );
    let got = wait_for(30, || (new_owners(&amd).len() == 2).then_some(()));
    assert!(
        got.is_some(),
        "postmaster and root did not reach ~alias; log:\n{}",
        d.log_text()
    );
    // qmail-local ran as the recipient: the Maildir file is its own.
    assert_eq!(new_owners(&umd), vec![user.uid], "owner of {USER}'s mail");
    assert_eq!(
        new_owners(&amd),
        vec![alias.uid, alias.uid],
        "owner of the alias mail"
    );
    let body = std::fs::read_dir(umd.join("new"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read(e.path()).unwrap())
        .next()
        .unwrap();
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.starts_with(&format!(
            "Return-Path: <alice@example.org>\nDelivered-To: {USER}@{DOMAIN}\n"
        )),
        "{text}"
    );
    assert!(text.ends_with("\n\nHello.\n"), "{text}");

    // The deferrals carry qmail's texts.
    for want in [
        "deferral: Not_allowed_to_perform_deliveries_as_root./",
        "deferral: Uh-oh:_.qmail_file_is_writable._(#4.7.0)/",
        "deferral: Unable_to_open_.qmail-other:_",
    ] {
        let seen = wait_for(30, || d.log_text().contains(want).then_some(()));
        assert!(seen.is_some(), "log lacks {want:?}:\n{}", d.log_text());
    }
    let log = d.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("deferral: Unable_to_open_.qmail-other:_")
                && l.ends_with("(#4.3.0)/")),
        "{log}"
    );
    // Nothing was ever written as root into a mailbox.
    for md in [&umd, &amd] {
        assert!(
            !new_owners(md).contains(&0),
            "a delivery into {} ran as root",
            md.display()
        );
    }
    // The refused messages stay queued for a later try.
    let queued = |dir: &str| {
        std::fs::read_dir(home.join("queue").join(dir))
            .unwrap()
            .flatten()
            .map(|e| std::fs::read_dir(e.path()).unwrap().count())
            .sum::<usize>()
    };
    let left = wait_for(30, || (queued("mess") == 3).then_some(()));
    assert!(
        left.is_some(),
        "the three deferred messages stay in the queue, the rest leave it; log:\n{log}"
    );
}
