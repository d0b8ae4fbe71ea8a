//! qmail-qmaint: consistency reports on hand-made broken queues, repairs, deleting a
//! message with qmail-send stopped and while it runs, and the exit codes.

use std::fs::FileTimes;
use std::os::unix::fs::MetadataExt;
use std::process::Output;
use std::time::{Duration, SystemTime};

use sqmail::envelope::encode;

use crate::harness::{Daemons, Instance, Owned, maildir_new, qmail_queue, run_with, wait_for};

fn qmaint(inst: &Instance, args: &[&str], input: &[u8]) -> Output {
    let mut c = inst.cmd("qmail-qmaint");
    c.args(args);
    run_with(c, input, 20)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Writes `queue/<rel>`.
fn put(inst: &Instance, rel: &str, body: &[u8]) {
    let p = inst.home.join("queue").join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, body).unwrap();
}

fn exists(inst: &Instance, rel: &str) -> bool {
    inst.home.join("queue").join(rel).exists()
}

/// Makes a file look untouched for two days.
fn age(inst: &Instance, rel: &str) {
    let old = SystemTime::now() - Duration::from_secs(2 * 86_400);
    let f = std::fs::File::options()
        .write(true)
        .open(inst.home.join("queue").join(rel))
        .unwrap();
    f.set_times(FileTimes::new().set_accessed(old).set_modified(old))
        .unwrap();
}

/// A queue with one instance of each repairable problem (split 23), plus two that cannot
/// be repaired: an unknown name and an unparsable channel file.
fn broken(inst: &Instance) {
    // #50: a message file nobody refers to for two days.
    put(inst, "mess/4/50", b"Received: x\n\nold\n");
    put(inst, "intd/4/50", b"u0\0p1\0Fa@b\0Tc@d\0");
    age(inst, "mess/4/50");
    // #51: a recipient list without info.
    put(inst, "local/5/51", b"Tc@d\0");
    // #52: a todo whose intd is gone.
    put(inst, "mess/6/52", b"m\n");
    put(inst, "todo/6/52", b"u0\0p1\0Fa@b\0Tc@d\0");
    // #53: a todo whose message is gone.
    put(inst, "todo/7/53", b"u0\0p1\0Fa@b\0Tc@d\0");
    put(inst, "intd/7/53", b"u0\0p1\0Fa@b\0Tc@d\0");
    // #54: a message file in the wrong split directory (54 % 23 = 8).
    put(inst, "mess/3/54", b"m\n");
    put(inst, "info/8/54", b"Fa@b\0");
    put(inst, "remote/8/54", b"Tx@example.org\0");
    // #55: a bounce without info.
    put(inst, "bounce/55", b"<c@d>:\nfailed\n\n");
    // #56: a recipient list that does not parse.
    put(inst, "mess/10/56", b"m\n");
    put(inst, "info/10/56", b"Fa@b\0");
    put(inst, "remote/10/56", b"Tx@example.org\0Xjunk\0");
    // #73: info and a recipient list, but no message (73 % 23 = 4).
    put(inst, "info/4/73", b"Fa@b\0");
    put(inst, "local/4/73", b"Tc@d\0");
    // A name that is no message number.
    put(inst, "mess/foo", b"");
}

#[test]
fn a_clean_queue_reports_nothing_and_exits_0() {
    let inst = Instance::new();
    let (code, _) = qmail_queue(&inst, b"Subject: x\n\nhi\n", &encode(b"a@b", &[b"c@d"]));
    assert_eq!(code, 0);
    let out = qmaint(&inst, &[], b"");
    assert_eq!(text(&out.stdout), "");
    assert_eq!(text(&out.stderr), "");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_broken_queue_is_reported_one_problem_a_line_and_exits_99() {
    let inst = Instance::new();
    broken(&inst);
    let before = inst.queue_files();
    // Reading the files touched their access times.
    age(&inst, "mess/4/50");
    let out = qmaint(&inst, &[], b"");
    assert_eq!(
        text(&out.stdout),
        "mess/3/54: in the wrong split directory\n\
         mess/foo: unexpected file\n\
         mess/4/50: garbage: no info or todo file for 36 hours\n\
         local/5/51: no info file\n\
         todo/6/52: no intd file\n\
         todo/7/53: no mess file\n\
         bounce/55: no info file\n\
         remote/10/56: unparsable: unknown record type\n\
         info/4/73: no mess file\n"
    );
    assert_eq!(text(&out.stderr), "");
    assert_eq!(out.status.code(), Some(99));
    assert_eq!(inst.queue_files(), before, "the check changed the queue");
}

#[test]
fn repairs_fix_what_is_safe_and_leave_the_rest() {
    let inst = Instance::new();
    broken(&inst);
    let out = qmaint(&inst, &["-f"], b"");
    assert_eq!(
        text(&out.stdout),
        "mess/3/54: in the wrong split directory; moved to mess/8/54\n\
         mess/foo: unexpected file\n\
         mess/4/50: garbage: no info or todo file for 36 hours; removed\n\
         local/5/51: no info file; removed\n\
         todo/6/52: no intd file; linked to intd/6/52\n\
         todo/7/53: no mess file; removed\n\
         bounce/55: no info file; removed\n\
         remote/10/56: unparsable: unknown record type\n\
         info/4/73: no mess file; removed\n"
    );
    assert_eq!(out.status.code(), Some(99), "two problems are left");
    for gone in [
        "mess/4/50",
        "intd/4/50",
        "local/5/51",
        "todo/7/53",
        "intd/7/53",
        "mess/3/54",
        "bounce/55",
        "info/4/73",
        "local/4/73",
    ] {
        assert!(!exists(&inst, gone), "{gone} is still there");
    }
    for kept in [
        "mess/8/54",
        "info/8/54",
        "intd/6/52",
        "todo/6/52",
        "mess/6/52",
    ] {
        assert!(exists(&inst, kept), "{kept} is gone");
    }
    let q = inst.home.join("queue");
    assert_eq!(
        std::fs::metadata(q.join("intd/6/52")).unwrap().ino(),
        std::fs::metadata(q.join("todo/6/52")).unwrap().ino()
    );
    let out = qmaint(&inst, &[], b"");
    assert_eq!(
        text(&out.stdout),
        "mess/foo: unexpected file\nremote/10/56: unparsable: unknown record type\n"
    );
    std::fs::remove_file(q.join("mess/foo")).unwrap();
    put(&inst, "remote/10/56", b"Tx@example.org\0");
    let out = qmaint(&inst, &[], b"");
    assert_eq!(text(&out.stdout), "");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn interactive_mode_asks_before_each_repair() {
    let inst = Instance::new();
    put(&inst, "local/5/51", b"Tc@d\0");
    put(&inst, "bounce/55", b"x\n");
    let out = qmaint(&inst, &["-i"], b"n\ny\n");
    assert_eq!(
        text(&out.stdout),
        "local/5/51: no info file; remove? skipped\n\
         bounce/55: no info file; remove? removed\n"
    );
    assert_eq!(out.status.code(), Some(99));
    assert!(exists(&inst, "local/5/51"));
    assert!(!exists(&inst, "bounce/55"));
    // No answer at all means no.
    let out = qmaint(&inst, &["-i"], b"");
    assert_eq!(
        text(&out.stdout),
        "local/5/51: no info file; remove? skipped\n"
    );
    assert!(exists(&inst, "local/5/51"));
}

#[test]
fn a_changed_split_is_repaired_by_creating_and_removing_directories() {
    let inst = Instance::new();
    inst.control("conf-split", b"24\n");
    let out = qmaint(&inst, &[], b"");
    assert_eq!(
        text(&out.stdout),
        "info/23: missing split directory\nintd/23: missing split directory\n\
         local/23: missing split directory\nmess/23: missing split directory\n\
         remote/23: missing split directory\ntodo/23: missing split directory\n"
    );
    assert_eq!(out.status.code(), Some(99));
    let mode = std::fs::metadata(inst.home.join("queue/info/0"))
        .unwrap()
        .mode();
    let out = qmaint(&inst, &["-f"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let meta = std::fs::metadata(inst.home.join("queue/info/23")).unwrap();
    assert_eq!(meta.mode(), mode);
    // Back to 23: the 24th directories go, and a message in one moves to its place.
    inst.control("conf-split", b"23\n");
    put(&inst, "mess/23/47", b"m\n");
    put(&inst, "info/23/47", b"Fa@b\0");
    let out = qmaint(&inst, &["-f"], b"");
    let mut want = String::from(
        "info/23/47: in the wrong split directory; moved to info/1/47\n\
         mess/23/47: in the wrong split directory; moved to mess/1/47\n",
    );
    for d in ["info", "intd", "local", "mess", "remote", "todo"] {
        want.push_str(&format!("{d}/23: unexpected directory; removed\n"));
    }
    assert_eq!(text(&out.stdout), want);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(qmaint(&inst, &[], b"").status.code(), Some(0));
}

#[test]
fn wrong_owners_are_reported_and_repaired_as_root() {
    if sqmail::sys::euid() != 0 {
        eprintln!("skipped: ownership is checked only as root");
        return;
    }
    let inst = Instance::new();
    let (code, _) = qmail_queue(&inst, b"\nhi\n", &encode(b"a@b", &[b"c@d"]));
    assert_eq!(code, 0);
    let (rel, _) = inst.queue_dir("mess").remove(0);
    let p = inst.home.join("queue").join(&rel);
    std::os::unix::fs::chown(&p, Some(54_321), None).unwrap();
    let out = qmaint(&inst, &[], b"");
    assert_eq!(
        text(&out.stdout),
        format!("{rel}: owned by uid 54321, not root\n")
    );
    let out = qmaint(&inst, &["-f"], b"");
    assert_eq!(
        text(&out.stdout),
        format!("{rel}: owned by uid 54321, not root; owner set to root\n")
    );
    assert_eq!(std::fs::metadata(&p).unwrap().uid(), 0);
}

#[test]
fn usage_errors_unknown_messages_and_unreadable_directories_have_their_exit_codes() {
    let inst = Instance::new();
    let out = qmaint(&inst, &["-x"], b"");
    assert_eq!(out.status.code(), Some(100));
    assert_eq!(
        text(&out.stderr),
        "qmail-qmaint: fatal: usage: qmail-qmaint [ -f | -i | -d messid | -D ]\n"
    );
    let out = qmaint(&inst, &["-d", "4711"], b"");
    assert_eq!(out.status.code(), Some(100));
    assert_eq!(
        text(&out.stderr),
        "qmail-qmaint: fatal: message #4711 is not in the queue\n"
    );
    // A message file still without envelope may be one qmail-queue is writing.
    put(&inst, "mess/19/42", b"m\n");
    let out = qmaint(&inst, &["-d", "42"], b"");
    assert_eq!(out.status.code(), Some(111));
    assert_eq!(
        text(&out.stderr),
        "qmail-qmaint: fatal: message #42 is still being queued; try again later\n"
    );
    assert!(exists(&inst, "mess/19/42"));
    let q = inst.home.join("queue");
    std::fs::remove_dir_all(q.join("info")).unwrap();
    std::fs::write(q.join("info"), b"").unwrap();
    let out = qmaint(&inst, &[], b"");
    assert_eq!(out.status.code(), Some(110));
    assert_eq!(
        text(&out.stderr),
        "qmail-qmaint: fatal: unable to read directory info: Not a directory\n"
    );
}

/// The number of the only message in `mess/`.
fn only_id(inst: &Instance) -> u64 {
    let mess = inst.queue_dir("mess");
    assert_eq!(mess.len(), 1, "{mess:?}");
    mess[0].0.rsplit('/').next().unwrap().parse().unwrap()
}

fn queue_is_empty(inst: &Instance) -> bool {
    inst.queue_files()
        .iter()
        .all(|(p, _)| p.starts_with("pid/"))
}

#[test]
fn deleting_with_qmail_send_stopped_removes_every_file() {
    let o = Owned::new();
    // Not yet preprocessed: todo, intd, mess.
    let (code, _) = qmail_queue(&o.inst, b"\nhi\n", &encode(b"a@b", &[b"c@d"]));
    assert_eq!(code, 0);
    let id = only_id(&o.inst);
    let out = qmaint(&o.inst, &["-d", &id.to_string()], b"");
    assert_eq!(text(&out.stdout), format!("#{id}: removed\n"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(queue_is_empty(&o.inst), "{:?}", o.inst.queue_files());
    // Preprocessed and deferred: info, local, mess.
    o.file("alias/.qmail-later", b"|exit 111\n", 0o644);
    let mut d = Daemons::start(&o.inst, &[]);
    let (code, _) = qmail_queue(
        &o.inst,
        b"\nhi\n",
        &encode(b"a@b", &[b"later@test.example"]),
    );
    assert_eq!(code, 0);
    assert!(
        wait_for(20, || d.log_text().contains("deferral:").then_some(())).is_some(),
        "{}",
        d.log_text()
    );
    d.stop();
    let id = only_id(&o.inst);
    assert_eq!(o.inst.queue_dir("local").len(), 1);
    let out = qmaint(&o.inst, &["-d", &id.to_string()], b"");
    assert_eq!(text(&out.stdout), format!("#{id}: removed\n"));
    assert!(queue_is_empty(&o.inst), "{:?}", o.inst.queue_files());
    assert_eq!(qmaint(&o.inst, &[], b"").status.code(), Some(0));
}

#[test]
fn deleting_under_a_running_qmail_send_stops_delivery_and_leaves_the_queue_consistent() {
    let o = Owned::new();
    o.file("alias/.qmail-later", b"|exit 111\n", 0o644);
    let md = o.maildir("alias/later/Maildir");
    let mut d = Daemons::start(&o.inst, &[]);
    let send_pid = d.child.as_ref().unwrap().id();
    let env = encode(b"a@b", &[b"later@test.example"]);
    assert_eq!(qmail_queue(&o.inst, b"Subject: gone\n\n1\n", &env).0, 0);
    let gone = only_id(&o.inst);
    assert_eq!(qmail_queue(&o.inst, b"Subject: kept\n\n2\n", &env).0, 0);
    assert!(
        wait_for(20, || (d.log_text().matches("deferral:").count() >= 2)
            .then_some(()))
        .is_some(),
        "{}",
        d.log_text()
    );
    // Now the recipient accepts mail; both messages wait for their next retry.
    o.file("alias/.qmail-later", b"./later/Maildir/\n", 0o644);
    let out = qmaint(&o.inst, &["-f"], b"");
    assert_eq!(out.status.code(), Some(111));
    assert_eq!(
        text(&out.stderr),
        "qmail-qmaint: fatal: qmail-send is running; stop it before repairing the queue\n"
    );
    let out = qmaint(&o.inst, &["-d", &gone.to_string()], b"");
    assert_eq!(
        text(&out.stdout),
        format!("#{gone}: marked done; qmail-send removes it at its next pass\n")
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Retry everything now.
    sqmail::sys::proc::kill(send_pid, sqmail::sys::proc::Signal::Alarm).unwrap();
    let end = format!("end msg {gone}\n");
    assert!(
        wait_for(20, || d.log_text().contains(&end).then_some(())).is_some(),
        "{}",
        d.log_text()
    );
    let got = wait_for(20, || maildir_new(&md).pop())
        .unwrap_or_else(|| panic!("the kept message was not delivered; log:\n{}", d.log_text()));
    assert!(text(&got).contains("Subject: kept\n"), "{}", text(&got));
    assert!(
        wait_for(20, || queue_is_empty(&o.inst).then_some(())).is_some(),
        "{:?}",
        o.inst.queue_files()
    );
    d.stop();
    assert_eq!(
        maildir_new(&md).len(),
        1,
        "the deleted message was delivered"
    );
    let out = qmaint(&o.inst, &[], b"");
    assert_eq!(text(&out.stdout), "");
    assert_eq!(out.status.code(), Some(0));
}
