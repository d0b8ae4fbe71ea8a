//! qmail-queue against its contract: the bytes it writes, every exit code it can give, and
//! what a crash leaves behind.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use sqmail::date::Utc;
use sqmail::envelope::encode;

use crate::harness::{Instance, Scratch, inode, qmail_queue, qmail_queue_cmd, run_with};

const MSG: &[u8] = b"From: a@example.org\nSubject: hi\n\nbody\n";

/// The Received line qmail-queue writes, checked byte for byte: the pid is known, the date
/// must be one of the seconds the run spanned.
fn assert_received(mess: &[u8], pid: u32, how: &str, t0: i64, t1: i64) -> usize {
    let end = mess
        .iter()
        .position(|&b| b == b'\n')
        .expect("a Received line")
        + 1;
    let line = &mess[..end];
    let ok = (t0..=t1).any(|t| {
        let want = format!(
            "Received: (qmail {pid} {how}); {}",
            Utc::from_unix(t).rfc822()
        );
        line == want.as_bytes()
    });
    assert!(
        ok,
        "unexpected Received line: {:?}",
        String::from_utf8_lossy(line)
    );
    end
}

fn empty_queue(inst: &Instance) {
    let left = inst.queue_files();
    assert!(
        left.is_empty(),
        "files left in the queue: {:?}",
        left.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
}

#[test]
fn queued_message_and_envelope_match_qmails_format() {
    let inst = Instance::new();
    // A reader on the trigger FIFO, so the byte qmail-queue writes can be seen.
    let mut trigger = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags_nonblock()
        .open(inst.home.join("queue/lock/trigger"))
        .unwrap();
    let t0 = sqmail::date::now();
    let (code, pid) = qmail_queue(
        &inst,
        MSG,
        &encode(b"a@example.org", &[b"c@d.example", b"e@f.example"]),
    );
    let t1 = sqmail::date::now();
    assert_eq!(code, 0);

    let mess = inst.queue_dir("mess");
    let todo = inst.queue_dir("todo");
    let intd = inst.queue_dir("intd");
    assert_eq!((mess.len(), todo.len(), intd.len()), (1, 1, 1));
    let (path, body) = &mess[0];
    let id: u64 = path.rsplit('/').next().unwrap().parse().unwrap();
    assert_eq!(path, &format!("mess/{}/{id}", id % 23), "split directory");
    assert_eq!(
        inode(&inst.home.join("queue").join(path)),
        id,
        "message number is the inode"
    );
    let n = assert_received(body, pid, "invoked by alias", t0, t1);
    assert_eq!(&body[n..], MSG);

    let want = format!(
        "u{}\0p{pid}\0Fa@example.org\0Tc@d.example\0Te@f.example\0",
        sqmail::sys::uid()
    );
    assert_eq!(
        todo[0],
        (format!("todo/{}/{id}", id % 23), want.clone().into_bytes())
    );
    assert_eq!(intd[0].1, want.as_bytes(), "intd and todo are one file");
    assert!(inst.queue_dir("pid").is_empty());

    let mut pulled = Vec::new();
    let _ = trigger.read_to_end(&mut pulled);
    assert_eq!(pulled, b"\0", "one byte into lock/trigger");
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::custom_flags(self, 0o4000)
    }
}

#[test]
fn received_line_names_network_bounce_and_other_uids() {
    let inst = Instance::new();
    // Nobody of the instance's roles is the test user: qmail-queue says "by uid".
    inst.control(
        "conf-users",
        b"nobody\nnobody\nnobody\nroot\nnobody\nnobody\nnobody\nnobody\n",
    );
    let t0 = sqmail::date::now();
    let (code, pid) = qmail_queue(&inst, MSG, &encode(b"", &[b"x@y"]));
    let t1 = sqmail::date::now();
    assert_eq!(code, 0);
    let uid = sqmail::sys::uid();
    let mess = inst.queue_dir("mess");
    assert_received(&mess[0].1, pid, &format!("invoked by uid {uid}"), t0, t1);

    // The test user as qmaild, then as qmails.
    let me = String::from_utf8(sqmail::sys::account_by_uid(uid).unwrap().unwrap().name).unwrap();
    for (users, how) in [
        (
            format!("nobody\n{me}\nnobody\nroot\nnobody\nnobody\nnobody\nnobody\n"),
            "invoked from network",
        ),
        (
            format!("nobody\nnobody\nnobody\nroot\nnobody\nnobody\nnobody\n{me}\n"),
            "invoked for bounce",
        ),
    ] {
        let inst = Instance::new();
        inst.control("conf-users", users.as_bytes());
        let t0 = sqmail::date::now();
        let (code, pid) = qmail_queue(&inst, MSG, &encode(b"", &[b"x@y"]));
        let t1 = sqmail::date::now();
        assert_eq!(code, 0);
        assert_received(&inst.queue_dir("mess")[0].1, pid, how, t0, t1);
    }
}

#[test]
fn empty_sender_no_recipients_and_binary_message_are_queued_as_given() {
    let inst = Instance::new();
    let msg: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
    let (code, pid) = qmail_queue(&inst, &msg, b"F\0\0");
    assert_eq!(code, 0);
    let mess = &inst.queue_dir("mess")[0].1;
    let n = mess.iter().position(|&b| b == b'\n').unwrap() + 1;
    assert_eq!(
        &mess[n..],
        &msg[..],
        "NULs, CRs and invalid UTF-8 stored unchanged"
    );
    assert_eq!(
        inst.queue_dir("todo")[0].1,
        format!("u{}\0p{pid}\0F\0", sqmail::sys::uid()).as_bytes()
    );
}

#[test]
fn s_qmail_q_token_ends_the_envelope() {
    let inst = Instance::new();
    let (code, pid) = qmail_queue(&inst, MSG, b"Fa@b\0Tc@d\0Q");
    assert_eq!(code, 0);
    assert_eq!(
        inst.queue_dir("todo")[0].1,
        format!("u{}\0p{pid}\0Fa@b\0Tc@d\0", sqmail::sys::uid()).as_bytes()
    );
}

#[test]
fn address_length_limit_is_1002_bytes() {
    let inst = Instance::new();
    let a1002 = vec![b'a'; 1002];
    let a1003 = vec![b'a'; 1003];
    assert_eq!(qmail_queue(&inst, MSG, &encode(&a1002, &[&a1002])).0, 0);
    let before = inst.queue_files();
    assert_eq!(qmail_queue(&inst, MSG, &encode(&a1003, &[b"x@y"])).0, 11);
    assert_eq!(
        qmail_queue(&inst, MSG, &encode(b"x@y", &[b"ok@y", &a1003])).0,
        11
    );
    assert_eq!(
        inst.queue_files(),
        before,
        "a refused message leaves nothing behind"
    );
}

#[test]
fn bad_envelopes_exit_91_and_truncated_input_54() {
    for (env, code) in [
        (&b"Xa@b\0Tc@d\0\0"[..], 91),
        (b"Fa@b\0Uc@d\0\0", 91),
        (b"Fa@b\0Tc@d\0T", 54),
        (b"Fa@b\0Tc@d\0", 54),
        (b"Fa@b", 54),
        (b"", 54),
    ] {
        let inst = Instance::new();
        assert_eq!(qmail_queue(&inst, MSG, env).0, code, "envelope {env:?}");
        empty_queue(&inst);
    }
}

#[test]
fn unreadable_message_exits_54() {
    let inst = Instance::new();
    let mut c = inst.cmd("qmail-queue");
    // fd 0 is a directory: every read fails with EISDIR.
    c.stdin(std::fs::File::open(&inst.home).unwrap());
    let (r, mut w) = std::io::pipe().unwrap();
    std::io::Write::write_all(&mut w, b"Fa@b\0Tc@d\0\0").unwrap();
    drop(w);
    c.stdout(r);
    assert_eq!(c.status().unwrap().code(), Some(54));
    empty_queue(&inst);
}

#[test]
fn broken_queue_directories_give_their_codes_and_leave_nothing() {
    type Break = fn(&Path);
    let cases: [(&str, Break, i32); 6] = [
        (
            "no home",
            |h| std::fs::rename(h, h.with_file_name("gone")).unwrap(),
            61,
        ),
        (
            "no queue",
            |h| std::fs::rename(h.join("queue"), h.join("queue.gone")).unwrap(),
            62,
        ),
        (
            "pid is a file",
            |h| replace_with_file(&h.join("queue/pid")),
            63,
        ),
        (
            "mess split dirs gone",
            |h| replace_splits(&h.join("queue/mess")),
            64,
        ),
        (
            "intd split dirs gone",
            |h| replace_splits(&h.join("queue/intd")),
            65,
        ),
        (
            "todo split dirs gone",
            |h| replace_splits(&h.join("queue/todo")),
            66,
        ),
    ];
    for (what, breakit, code) in cases {
        let inst = Instance::new();
        breakit(&inst.home);
        let mut c = Command::new(crate::harness::programs().join("qmail-queue"));
        c.env("QMAILHOME", &inst.home);
        let before = inst.home.join("queue").is_dir().then(|| inst.queue_files());
        assert_eq!(
            qmail_queue_cmd(c, MSG, &encode(b"a@b", &[b"c@d"])).0,
            code,
            "{what}"
        );
        let after = inst.home.join("queue").is_dir().then(|| inst.queue_files());
        assert_eq!(before, after, "{what}: the run left files behind");
    }
}

fn replace_with_file(p: &Path) {
    std::fs::remove_dir_all(p).unwrap();
    std::fs::write(p, b"").unwrap();
}

fn replace_splits(dir: &Path) {
    for n in 0..23 {
        replace_with_file(&dir.join(n.to_string()));
    }
}

#[test]
fn unreadable_configuration_exits_55() {
    let inst = Instance::new();
    std::fs::remove_file(inst.home.join("control/conf-users")).unwrap();
    std::fs::create_dir(inst.home.join("control/conf-users")).unwrap();
    assert_eq!(qmail_queue(&inst, MSG, &encode(b"a@b", &[b"c@d"])).0, 55);
    empty_queue(&inst);
}

/// A full disk: the whole instance lives on a 1 MiB tmpfs in a private mount namespace.
/// Needs root (mount); CI runs as root.
#[test]
fn full_disk_exits_53_and_leaves_nothing() {
    crate::harness::must_be_root("it mounts a tmpfs");
    let s = Scratch::new("full");
    let mnt = s.0.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let setup = crate::harness::programs().join("sqmail-setup");
    // The program runs from the build directory: the 1 MiB file system holds only the queue.
    let qq = crate::harness::programs()
        .join("qmail-queue")
        .display()
        .to_string();
    let script = format!(
        "set -e; mount -t tmpfs -o size=1m tmpfs {m}; {setup} -s -m full.example {m}/qmail >/dev/null 2>&1; \
         printf 'Fa@b\\0Tc@d\\0\\0' > {m}/env; \
         set +e; head -c 3000000 /dev/zero | QMAILHOME={m}/qmail {qq} 1<{m}/env; echo \"exit $?\"; \
         find {m}/qmail/queue -type f ! -path '*/lock/*'",
        m = mnt.display(),
        setup = setup.display(),
    );
    let out = run_with(
        {
            let mut c = Command::new("unshare");
            c.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
            c
        },
        b"",
        60,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        "exit 53\n",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// kill -9 at random moments while many qmail-queue runs inject: every run that exited 0
/// has its message complete in mess/ and todo/, and every todo/ file is complete.
#[test]
fn kill_9_at_random_moments_loses_no_acknowledged_message() {
    let inst = Instance::new();
    let mut seed: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        .into();
    let seed0 = seed;
    let mut rand = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let mut acked = Vec::new();
    let mut killed = 0;
    for i in 0..300u32 {
        let body = format!(
            "Subject: {i}\n\n{}\n",
            "x".repeat(usize::try_from(rand(20_000)).unwrap())
        );
        let rcpt = format!("r{i}@example.org");
        let env = encode(b"s@example.org", &[rcpt.as_bytes()]);
        let (r, mut w) = std::io::pipe().unwrap();
        let mut c = inst.cmd("qmail-queue");
        c.stdin(std::process::Stdio::piped())
            .stdout(r)
            .stderr(std::process::Stdio::null());
        let mut child = c.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feed = std::thread::spawn(move || {
            let _ = std::io::Write::write_all(&mut stdin, body.as_bytes());
            drop(stdin);
            let _ = std::io::Write::write_all(&mut w, &env);
        });
        if rand(2) == 0 {
            std::thread::sleep(std::time::Duration::from_micros(rand(3000)));
            let _ = child.kill();
        }
        let st = child.wait().unwrap();
        let _ = feed.join();
        match st.code() {
            Some(0) => acked.push(i),
            None => killed += 1,
            Some(c) => panic!("qmail-queue exited {c} (seed {seed0})"),
        }
    }
    assert!(
        killed > 0 && !acked.is_empty(),
        "the run must both kill and finish (seed {seed0})"
    );
    let files = inst.queue_files();
    let mess: std::collections::HashMap<String, &Vec<u8>> = files
        .iter()
        .filter(|(p, _)| p.starts_with("mess/"))
        .map(|(p, b)| (p.rsplit('/').next().unwrap().to_string(), b))
        .collect();
    let mut seen = std::collections::HashSet::new();
    for (path, env) in files.iter().filter(|(p, _)| p.starts_with("todo/")) {
        let q = sqmail::envelope::parse_queued(env);
        assert!(
            env.ends_with(b"\0") && q.sender.is_some() && q.recipients.len() == 1,
            "half-written {path} (seed {seed0})"
        );
        let id = path.rsplit('/').next().unwrap();
        let m = mess
            .get(id)
            .unwrap_or_else(|| panic!("{path} without its message (seed {seed0})"));
        let rcpt = String::from_utf8(q.recipients[0].0.clone()).unwrap();
        let i: u32 = rcpt
            .trim_start_matches('r')
            .split('@')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let subject = format!("Subject: {i}\n\n");
        assert!(
            m.windows(subject.len()).any(|w| w == subject.as_bytes()),
            "wrong message for {path}"
        );
        assert!(m.ends_with(b"\n"), "message {id} is complete");
        seen.insert(i);
    }
    for i in &acked {
        assert!(
            seen.contains(i),
            "acknowledged message {i} is not in todo/ (seed {seed0})"
        );
    }
}

/// A multi-user instance installed by root: qmail's accounts, owners and modes, and
/// qmail-queue setuid qmailq queueing for an ordinary user.
#[test]
fn multi_user_instance_has_qmails_owners_and_setuid_queue() {
    crate::harness::must_be_root("it installs a multi-user instance");
    let s = Scratch::new("multi");
    std::fs::set_permissions(&s.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = s.0.join("qmail");
    let st = Command::new(crate::harness::programs().join("sqmail-setup"))
        .args(["-m", "multi.example", "-p"])
        .arg(crate::harness::programs())
        .arg(&home)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let ids = sqmail::ids::Ids::load(&home).unwrap();
    use sqmail::ids::{Group, User};
    let uid = |u| ids.uid(u).unwrap();
    let gq = ids.gid(Group::Qmail).unwrap();
    for (p, owner, mode) in [
        ("queue", uid(User::Qmailq), 0o750),
        ("queue/pid", uid(User::Qmailq), 0o700),
        ("queue/mess/0", uid(User::Qmailq), 0o750),
        ("queue/intd/22", uid(User::Qmailq), 0o700),
        ("queue/todo/5", uid(User::Qmailq), 0o750),
        ("queue/info/1", uid(User::Qmails), 0o700),
        ("queue/local", uid(User::Qmails), 0o700),
        ("queue/bounce", uid(User::Qmails), 0o700),
        ("queue/lock/trigger", uid(User::Qmails), 0o622),
        ("queue/lock/sendmutex", uid(User::Qmails), 0o600),
        ("queue/lock/tcpto", uid(User::Qmailr), 0o644),
        ("alias", uid(User::Alias), 0o2755),
        ("control", 0, 0o755),
        ("bin/qmail-queue", uid(User::Qmailq), 0o4711),
    ] {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(home.join(p)).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777),
            (owner, gq, mode),
            "{p}"
        );
    }
    // An ordinary user queues through the setuid program; QMAILHOME cannot redirect it.
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(home.join("bin/qmail-queue"))
        .env("QMAILHOME", "/nonexistent");
    let (code, pid) = qmail_queue_cmd(c, MSG, &encode(b"n@example.org", &[b"x@y"]));
    assert_eq!(code, 0);
    let todo = std::fs::read_dir(home.join("queue/todo"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .collect::<Vec<_>>();
    assert_eq!(todo.len(), 1);
    assert_eq!(
        std::fs::read(&todo[0]).unwrap(),
        format!("u65534\0p{pid}\0Fn@example.org\0Tx@y\0").as_bytes()
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(&todo[0]).unwrap().uid(),
        uid(User::Qmailq)
    );
}
