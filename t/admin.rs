//! The admin programs against qmail's behaviour: qmail-newu, qmail-newmrh, qmail-pw2u,
//! maildirmake, qmail-tcpok, qmail-tcpto, qmail-showctl, qmail-qread and qmail-qstat; and
//! the cdb files we write against two cdb implementations nobody here wrote (Debian's
//! tinycdb and freecdb), in both directions.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use sqmail::cdb;
use sqmail::users;

use crate::harness::{Instance, Scratch, qmail_queue, run_with};

fn run(inst: &Instance, prog: &str, args: &[&str], input: &[u8]) -> Output {
    let mut c = inst.cmd(prog);
    c.args(args);
    run_with(c, input, 20)
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A program from another cdb implementation; its absence fails the test. Its output is
/// read while it runs (dumps are larger than a pipe holds); it is killed after 20 s.
fn peer(prog: &str, args: &[&str], input: &[u8]) -> Output {
    peer_with(prog, args, Stdio::piped(), input)
}

/// A peer reading `file` on fd 0 (cdbget and cdbdump want a seekable database there).
fn peer_on(prog: &str, args: &[&str], file: &Path) -> Output {
    let f = std::fs::File::open(file).unwrap();
    peer_with(prog, args, Stdio::from(f), b"")
}

fn peer_with(prog: &str, args: &[&str], stdin: Stdio, input: &[u8]) -> Output {
    if which(prog).is_none() {
        panic!("{prog} is required: apt-get install -y tinycdb freecdb");
    }
    let mut child = Command::new(prog)
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let pipe = child.stdin.take();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || {
        if let Some(mut p) = pipe {
            let _ = p.write_all(&data);
        }
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let Ok(out) = rx.recv_timeout(Duration::from_secs(20)) else {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        panic!("{prog} {args:?} did not finish within 20 s");
    };
    let _ = feeder.join();
    out.unwrap()
}

fn which(prog: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

fn ok(o: Output, what: &str) -> Vec<u8> {
    assert_eq!(
        code(&o),
        0,
        "{what}: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    o.stdout
}

/// Records in cdbmake's input format, which `cdb -d` and `cdbdump` also print.
fn cdbmake_text(records: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, d) in records {
        out.extend_from_slice(format!("+{},{}:", k.len(), d.len()).as_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(b"->");
        out.extend_from_slice(d);
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Checks a cdb file of ours with both peers (full dump) and that both peers, given the
/// same records, write the same bytes; our reader must read their files back.
fn interop(ours: &Path, records: &[(Vec<u8>, Vec<u8>)], dir: &Path) {
    let want = cdbmake_text(records);
    let bytes = std::fs::read(ours).unwrap();
    let dump = ok(peer("cdb", &["-d", path_str(ours)], b""), "cdb -d");
    assert_eq!(
        text(&dump),
        text(&want),
        "tinycdb dump of {}",
        ours.display()
    );
    let dump = ok(peer_on("cdbdump", &[], ours), "cdbdump");
    assert_eq!(
        text(&dump),
        text(&want),
        "freecdb dump of {}",
        ours.display()
    );

    let input = dir.join("records.txt");
    std::fs::write(&input, &want).unwrap();
    let tiny = dir.join("tiny.cdb");
    ok(
        peer("cdb", &["-c", path_str(&tiny), path_str(&input)], b""),
        "cdb -c",
    );
    let free = dir.join("free.cdb");
    let free_tmp = dir.join("free.tmp");
    ok(
        peer("cdbmake", &[path_str(&free), path_str(&free_tmp)], &want),
        "cdbmake",
    );
    for (name, theirs) in [("tinycdb", &tiny), ("freecdb", &free)] {
        let t = std::fs::read(theirs).unwrap();
        assert!(t == bytes, "{name}'s file differs from {}", ours.display());
        let r = cdb::Reader::open(theirs).unwrap().unwrap();
        assert_eq!(
            &r.records().unwrap(),
            records,
            "our reader on {name}'s file"
        );
    }
}

#[test]
fn cdb_with_awkward_records_interoperates_with_tinycdb_and_freecdb() {
    let s = Scratch::new("cdb-awkward");
    let mut records: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"".to_vec(), b"value of the empty key".to_vec()),
        (b"empty value".to_vec(), b"".to_vec()),
        (b"dup".to_vec(), b"first".to_vec()),
        (b"dup".to_vec(), b"second".to_vec()),
        (b"dup".to_vec(), b"".to_vec()),
        (b"\0\x01\xff\n:->+,".to_vec(), b"\0\r\n\xfe->\n".to_vec()),
        (
            b"big".to_vec(),
            (0..70_000u32)
                .map(|i| u8::try_from(i % 251).unwrap())
                .collect(),
        ),
    ];
    for i in 0..300 {
        records.push((format!("k{i}").into_bytes(), format!("v{i}").into_bytes()));
    }
    let ours = s.0.join("ours.cdb");
    let mut w = cdb::Writer::create_beside(&ours, 0o644).unwrap();
    for (k, d) in &records {
        w.add(k, d).unwrap();
    }
    w.finish().unwrap();
    interop(&ours, &records, &s.0);

    let q = |args: &[&str]| ok(peer("cdb", args, b""), "cdb -q");
    let db = path_str(&ours);
    assert_eq!(q(&["-q", db, ""]), b"value of the empty key");
    assert_eq!(q(&["-q", db, "empty value"]), b"");
    assert_eq!(q(&["-q", "-n", "1", db, "dup"]), b"first");
    assert_eq!(
        q(&["-q", db, "dup"]),
        b"firstsecond",
        "every record with the key"
    );
    assert_eq!(q(&["-q", "-n", "2", db, "dup"]), b"second");
    assert_eq!(q(&["-q", db, "big"]), records[6].1);
    let get = |args: &[&str]| ok(peer_on("cdbget", args, &ours), "cdbget");
    assert_eq!(get(&["dup"]), b"first");
    assert_eq!(get(&["dup", "1"]), b"second");
    assert_eq!(get(&["dup", "2"]), b"");
    assert_eq!(get(&["big"]), records[6].1);
    assert_eq!(get(&["k299"]), b"v299");
    assert_eq!(code(&peer_on("cdbget", &["missing"], &ours)), 100);
}

const ASSIGN: &[u8] = b"+:alias:7790:2108:/var/qmail/alias:-::\n\
=joe.shmoe:joe:503:78:/home/joe:::\n\
+joe-:joe:507:100:/home/joe:-::\n\
=Joe:joe:507:100:/home/joe:::\n\
+List-:list:9:9:/home/list:-:pre-:extra:fields\n\
.\n";

#[test]
fn qmail_newu_writes_both_databases_readable_by_peers() {
    let inst = Instance::new();
    std::fs::write(inst.home.join("users/assign"), ASSIGN).unwrap();
    let o = run(&inst, "qmail-newu", &[], b"");
    assert_eq!((code(&o), text(&o.stderr)), (0, String::new()));
    let new = std::fs::read(inst.home.join("users/assign.cdb")).unwrap();
    let old = std::fs::read(inst.home.join("users/cdb")).unwrap();
    assert!(new == old, "users/assign.cdb and users/cdb differ");
    let mode = std::fs::metadata(inst.home.join("users/cdb"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
    assert!(!inst.home.join("users/cdb.tmp").exists());
    assert!(!inst.home.join("users/assign.cdb.tmp").exists());

    let records = users::records(ASSIGN).unwrap();
    assert_eq!(
        records.last().unwrap(),
        &(b"".to_vec(), b"-".to_vec()),
        "wildcard characters under the empty key"
    );
    assert!(records.contains(&(
        b"!joe\0".to_vec(),
        b"joe\x00507\x00100\0/home/joe\0\0".to_vec()
    )));
    assert!(records.contains(&(
        b"!list-".to_vec(),
        b"list\x009\x009\0/home/list\0-\0pre-".to_vec()
    )));
    let s = Scratch::new("newu-peers");
    interop(&inst.home.join("users/cdb"), &records, &s.0);

    let r = users::open(&inst.home).unwrap().unwrap();
    let a = users::lookup(&r, b"List-Owner").unwrap().unwrap();
    assert_eq!((a.user, a.ext), (b"list".to_vec(), b"pre-Owner".to_vec()));
    let a = users::lookup(&r, b"JOE.SHMOE").unwrap().unwrap();
    assert_eq!((a.uid(), a.gid()), (Some(503), Some(78)));
}

#[test]
fn qmail_newu_format_errors_exit_111_and_keep_the_old_database() {
    let inst = Instance::new();
    let assign = inst.home.join("users/assign");
    std::fs::write(&assign, ASSIGN).unwrap();
    assert_eq!(code(&run(&inst, "qmail-newu", &[], b"")), 0);
    let before = std::fs::read(inst.home.join("users/cdb")).unwrap();
    let cases: &[(&str, &[u8])] = &[
        ("no final dot", b"=a:u:1:2:/h:::\n"),
        ("line without newline", b"=a:u:1:2:/h:::"),
        ("five colons", b"=a:u:1:2:/h::\n.\n"),
        ("NUL byte", b"=a:u:1:2:/h\0:::\n.\n"),
        ("empty file", b""),
    ];
    for (name, body) in cases {
        std::fs::write(&assign, body).unwrap();
        let o = run(&inst, "qmail-newu", &[], b"");
        assert_eq!(code(&o), 111, "{name}");
        assert_eq!(
            text(&o.stderr),
            "qmail-newu: fatal: bad format in users/assign\n",
            "{name}"
        );
        assert!(
            std::fs::read(inst.home.join("users/cdb")).unwrap() == before,
            "{name}"
        );
        assert!(
            std::fs::read(inst.home.join("users/assign.cdb")).unwrap() == before,
            "{name}"
        );
        assert!(!inst.home.join("users/cdb.tmp").exists(), "{name}");
        assert!(!inst.home.join("users/assign.cdb.tmp").exists(), "{name}");
    }
    std::fs::remove_file(&assign).unwrap();
    let o = run(&inst, "qmail-newu", &[], b"");
    assert_eq!(code(&o), 111);
    assert_eq!(
        text(&o.stderr),
        "qmail-newu: fatal: unable to open users/assign: No such file or directory\n"
    );
}

#[test]
fn qmail_newmrh_lower_cases_keys_and_interoperates() {
    let inst = Instance::new();
    let o = run(&inst, "qmail-newmrh", &[], b"");
    assert_eq!(code(&o), 111);
    assert_eq!(
        text(&o.stderr),
        "qmail-newmrh: fatal: unable to read control/morercpthosts: No such file or directory\n"
    );
    inst.control(
        "morercpthosts",
        b"Example.COM\n# comment\n\nexample.net \t\n.Sub.Example.ORG\nlast.example",
    );
    let o = run(&inst, "qmail-newmrh", &[], b"");
    assert_eq!((code(&o), text(&o.stderr)), (0, String::new()));
    let db = inst.home.join("control/morercpthosts.cdb");
    let records: Vec<(Vec<u8>, Vec<u8>)> = [
        &b"example.com"[..],
        b"example.net",
        b".sub.example.org",
        b"last.example",
    ]
    .iter()
    .map(|k| (k.to_vec(), Vec::new()))
    .collect();
    assert!(!inst.home.join("control/morercpthosts.tmp").exists());
    let s = Scratch::new("newmrh-peers");
    interop(&db, &records, &s.0);
    let q = ok(
        peer("cdb", &["-q", path_str(&db), ".sub.example.org"], b""),
        "cdb -q",
    );
    assert_eq!(q, b"");
    assert_eq!(
        code(&peer("cdb", &["-q", path_str(&db), "Example.COM"], b"")),
        100
    );
}

/// The uid for test accounts: ours, or an unused one as root (qmail-pw2u skips uid 0).
fn account_uid() -> u32 {
    match sqmail::sys::euid() {
        0 => 64_124,
        u => u,
    }
}

#[test]
fn qmail_pw2u_prints_assignments_for_qmail_newu() {
    let inst = Instance::new();
    let u = account_uid();
    for d in ["alias-home", "joe-home"] {
        std::fs::create_dir(inst.home.join(d)).unwrap();
        if sqmail::sys::euid() == 0 {
            std::os::unix::fs::chown(inst.home.join(d), Some(u), None).unwrap();
        }
    }
    // The alias account is named by the instance's control/conf-users.
    let alias = std::fs::read_to_string(inst.home.join("control/conf-users")).unwrap();
    let alias = alias.lines().next().unwrap().to_string();
    std::fs::write(inst.home.join("users/subusers"), b"owner:joe:own:\n").unwrap();
    let passwd = format!(
        "root:x:0:0::/root:/bin/sh\n{alias}:x:{u}:5::alias-home:/bin/false\n\
         joe:x:{u}:7::joe-home:/bin/sh\nnohome:x:{u}:7::missing:/bin/sh\n"
    );
    let o = run(&inst, "qmail-pw2u", &[], passwd.as_bytes());
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let want = format!(
        "+:{alias}:{u}:5:alias-home:-::\n={alias}:{alias}:{u}:5:alias-home:::\n\
         +{alias}-:{alias}:{u}:5:alias-home:-::\n\
         =joe:joe:{u}:7:joe-home:::\n+joe-:joe:{u}:7:joe-home:-::\n\
         =owner:joe:{u}:7:joe-home:-:own:\n+owner-:joe:{u}:7:joe-home:-:own-:\n.\n"
    );
    assert_eq!(text(&o.stdout), want);

    // Its output is what qmail-newu takes.
    std::fs::write(inst.home.join("users/assign"), &o.stdout).unwrap();
    assert_eq!(code(&run(&inst, "qmail-newu", &[], b"")), 0);
    let r = users::open(&inst.home).unwrap().unwrap();
    let a = users::lookup(&r, b"owner-list").unwrap().unwrap();
    assert_eq!((a.user, a.ext), (b"joe".to_vec(), b"own-list".to_vec()));

    let o = run(&inst, "qmail-pw2u", &["-h"], passwd.as_bytes());
    assert_eq!(code(&o), 111);
    assert_eq!(
        text(&o.stderr),
        "qmail-pw2u: fatal: unable to stat missing: No such file or directory\n"
    );
    let o = run(&inst, "qmail-pw2u", &["-x"], passwd.as_bytes());
    assert_eq!(code(&o), 100);
    assert_eq!(
        text(&o.stderr),
        "qmail-pw2u: usage: qmail-pw2u [ -/ohHuUC ] [ -cchar ]\n"
    );
    let o = run(&inst, "qmail-pw2u", &[], b"joe:x:5:7::/:/bin/sh\n");
    assert_eq!(code(&o), 111);
    assert_eq!(
        text(&o.stderr),
        format!("qmail-pw2u: fatal: unable to find {alias} user\n")
    );
}

#[test]
fn maildirmake_makes_a_private_maildir() {
    let inst = Instance::new();
    let s = Scratch::new("maildirmake");
    let md = s.0.join("Maildir");
    let o = run(&inst, "maildirmake", &[path_str(&md)], b"");
    assert_eq!((code(&o), text(&o.stderr)), (0, String::new()));
    for d in ["", "tmp", "new", "cur"] {
        let m = std::fs::metadata(md.join(d)).unwrap();
        assert!(m.is_dir(), "{d}");
        assert_eq!(m.mode() & 0o7777, 0o700, "{d}");
    }
    let o = run(&inst, "maildirmake", &[path_str(&md)], b"");
    assert_eq!(code(&o), 111);
    assert_eq!(
        text(&o.stderr),
        format!(
            "maildirmake: fatal: unable to mkdir {}: File exists\n",
            md.display()
        )
    );
    let o = run(&inst, "maildirmake", &[], b"");
    assert_eq!(
        (code(&o), text(&o.stderr)),
        (100, "maildirmake: usage: maildirmake name\n".to_string())
    );
}

#[test]
fn qmail_tcpto_prints_and_qmail_tcpok_clears_the_timeout_table() {
    let inst = Instance::new();
    let table = inst.home.join("queue/lock/tcpto");
    let now = u32::try_from(sqmail::date::now()).unwrap();
    let mut t = vec![0u8; 1024];
    t[..4].copy_from_slice(&[192, 0, 2, 7]);
    t[4] = 3;
    t[8..12].copy_from_slice(&(now - 100).to_le_bytes());
    t[16 * 63..16 * 63 + 4].copy_from_slice(&[10, 1, 2, 3]);
    t[16 * 63 + 4] = 1;
    t[16 * 63 + 8..16 * 63 + 12].copy_from_slice(&(now - 5000).to_le_bytes());
    std::fs::write(&table, &t).unwrap();
    let o = run(&inst, "qmail-tcpto", &[], b"");
    assert_eq!(code(&o), 0);
    let out = text(&o.stdout);
    let ok = (0..5).any(|slack| {
        out == format!(
            "192.0.2.7 timed out {} seconds ago; # recent timeouts: 3\n\
             10.1.2.3 timed out {} seconds ago; # recent timeouts: 1\n",
            100 + slack,
            5000 + slack
        )
    });
    assert!(ok, "unexpected qmail-tcpto output: {out:?}");

    let o = run(&inst, "qmail-tcpok", &[], b"");
    assert_eq!((code(&o), text(&o.stderr)), (0, String::new()));
    assert_eq!(std::fs::read(&table).unwrap(), vec![0u8; 1024]);
    let o = run(&inst, "qmail-tcpto", &[], b"");
    assert_eq!((code(&o), o.stdout.len()), (0, 0));

    std::fs::remove_file(&table).unwrap();
    let o = run(&inst, "qmail-tcpto", &[], b"");
    assert_eq!(code(&o), 111);
    assert_eq!(
        text(&o.stdout),
        "fatal: unable to open tcpto: No such file or directory\n"
    );
    let o = run(&inst, "qmail-tcpok", &[], b"");
    assert_eq!(code(&o), 111);
    assert_eq!(
        text(&o.stderr),
        format!(
            "qmail-tcpok: fatal: unable to write {}: No such file or directory\n",
            table.display()
        )
    );
}

#[test]
fn qmail_showctl_explains_the_control_files() {
    let inst = Instance::new();
    let control = inst.home.join("control");
    for e in std::fs::read_dir(&control).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if name != "conf-users" && name != "conf-groups" {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    inst.control("me", b"mx.example.org\n");
    inst.control("databytes", b"1000000\n");
    inst.control("tlsdestinations", b"*:\n");
    inst.control("bouncefrom", b"bounces\x01\n");
    inst.control("rcpthosts", b"example.org\n# x\n.example.net\n");
    inst.control("morercpthosts", b"more.example\n");
    inst.control("whatever", b"");
    // Distinct accounts per role show the order: alias, qmaild, qmaill, root, qmailp,
    // qmailq, qmailr, qmails; then the groups nofiles and qmail.
    let users = ["daemon", "bin", "sys", "root", "sync", "games", "man", "lp"];
    inst.control("conf-users", format!("{}\n", users.join("\n")).as_bytes());
    inst.control("conf-groups", b"adm\ndaemon\n");
    let uids: Vec<String> = users
        .iter()
        .map(|u| {
            let a = sqmail::sys::account(u.as_bytes()).unwrap();
            a.unwrap_or_else(|| panic!("account {u} is needed"))
                .uid
                .to_string()
        })
        .collect();
    let gid = |g: &str| sqmail::sys::group(g.as_bytes()).unwrap().unwrap();
    let o = run(&inst, "qmail-showctl", &[], b"");
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let header = format!(
        "qmail home directory: {}.\nuser-ext delimiter: -.\npaternalism (in decimal): 2.\n\
         silent concurrency limit: 120.\nsubdirectory split: 23.\n\
         user ids: {}.\ngroup ids: {}, {}.\n",
        inst.home.display(),
        uids.join(", "),
        gid("daemon"),
        gid("adm"),
    );
    assert!(out.starts_with(&header), "header: {out}");
    let sections = [
        "\nbadmailfrom: (Default.) Any MAIL FROM is allowed.\n",
        "\nbouncefrom: Bounce user name is bounces?.\n",
        "\nbouncehost: (Default.) Bounce host name is mx.example.org.\n",
        "\nconcurrencylocal: (Default.) Local concurrency is 10.\n",
        "\ndatabytes: SMTP DATA limit is 1000000 bytes.\n",
        "\ndoublebounceto: (Default.) 2B recipient user: postmaster.\n",
        "\nlocals: (Default.) Messages for me are delivered locally.\n",
        "\nme: My name is mx.example.org.\n",
        "\nqueuelifetime: (Default.) Message lifetime in the queue is 604800 seconds.\n",
        "\nrcpthosts: \nSMTP clients may send messages to recipients at example.org.\n\
         SMTP clients may send messages to recipients at .example.net.\n",
        "\nmorercpthosts: \nSMTP clients may send messages to recipients at more.example.\n",
        "\nmorercpthosts.cdb: Oops! morercpthosts exists but morercpthosts.cdb doesn't.\n",
        "\nsmtpgreeting: (Default.) SMTP greeting: 220 mx.example.org.\n",
        "\ntlsdestinations: \nqmail-remote: TLS policy by destination: *:.\n",
        "\nvirtualdomains: (Default.) No virtual domains.\n",
        "\nwhatever: I have no idea what this file does.\n",
    ];
    let mut at = 0;
    for s in sections {
        let found = out[at..].find(s);
        assert!(found.is_some(), "missing or out of order: {s:?} in\n{out}");
        at += found.unwrap();
    }
    assert!(!out.contains("conf-users"), "{out}");

    assert_eq!(code(&run(&inst, "qmail-newmrh", &[], b"")), 0);
    let o = run(&inst, "qmail-showctl", &[], b"");
    assert!(
        text(&o.stdout)
            .contains("\nmorercpthosts.cdb: Modified recently enough; hopefully up to date.\n")
    );
    std::fs::remove_file(control.join("rcpthosts")).unwrap();
    let o = run(&inst, "qmail-showctl", &[], b"");
    let out = text(&o.stdout);
    assert!(
        out.contains(
            "\nrcpthosts: (Default.) SMTP clients may send messages to any recipient.\n\
         \nmorercpthosts: \nNo rcpthosts; doesn't matter that morercpthosts has more.example.\n"
        ),
        "{out}"
    );
}

/// Puts a message into the queue by hand, in the state qmail-send leaves it after
/// preprocessing.
fn preprocessed(inst: &Instance, id: u64, mess: &[u8], info: &[u8], local: &[u8], remote: &[u8]) {
    let q = inst.home.join("queue");
    let n = id % sqmail::queue::DEFAULT_SPLIT;
    std::fs::write(q.join(format!("mess/{n}/{id}")), mess).unwrap();
    std::fs::write(q.join(format!("info/{n}/{id}")), info).unwrap();
    if !local.is_empty() {
        std::fs::write(q.join(format!("local/{n}/{id}")), local).unwrap();
    }
    if !remote.is_empty() {
        std::fs::write(q.join(format!("remote/{n}/{id}")), remote).unwrap();
    }
}

fn info_time(inst: &Instance, id: u64) -> String {
    let n = id % sqmail::queue::DEFAULT_SPLIT;
    let p = inst.home.join(format!("queue/info/{n}/{id}"));
    let t = std::fs::metadata(p).unwrap().mtime();
    let d = sqmail::date::Utc::from_unix(t).rfc822();
    d.trim_end_matches(" -0000\n").to_string()
}

#[test]
fn qmail_qread_and_qmail_qstat_describe_the_queue() {
    let inst = Instance::new();
    let o = run(&inst, "qmail-qread", &[], b"");
    assert_eq!((code(&o), o.stdout.len()), (0, 0));
    let o = run(&inst, "qmail-qstat", &[], b"");
    assert_eq!(
        text(&o.stdout),
        "messages in queue: 0\nmessages in queue but not yet preprocessed: 0\n"
    );

    // 24 and 47 share info/1; the order between them is the directory's.
    preprocessed(
        &inst,
        24,
        b"0123456789",
        b"Fjoe@example.org\0",
        b"Tjoe@test.example\0",
        b"",
    );
    preprocessed(
        &inst,
        5,
        b"abc",
        b"F\0",
        b"",
        b"Dbob@example.net\0Tcarol@example.net\0",
    );
    std::fs::write(inst.home.join("queue/bounce/5"), b"").unwrap();
    std::fs::write(inst.home.join("queue/info/1/47"), b"Fx@y\0").unwrap();
    let (rc, _) = qmail_queue(&inst, b"Subject: t\n\nx\n", b"Fa@b\0Tc@d\0\0");
    assert_eq!(rc, 0);

    let o = run(&inst, "qmail-qread", &[], b"");
    assert_eq!(code(&o), 0);
    let out = text(&o.stdout);
    let m24 = format!(
        "{} GMT  #24  10  <joe@example.org> \n\tlocal\tjoe@test.example\n",
        info_time(&inst, 24)
    );
    let m47 = "warning: trouble with #47: No such file or directory\n".to_string();
    let m5 = format!(
        "{} GMT  #5  3  <>  bouncing\n  done\tremote\tbob@example.net\n\tremote\tcarol@example.net\n",
        info_time(&inst, 5)
    );
    let a = format!("{m24}{m47}{m5}");
    let b = format!("{m47}{m24}{m5}");
    assert!(out == a || out == b, "qmail-qread printed:\n{out}");

    let o = run(&inst, "qmail-qstat", &[], b"");
    assert_eq!(
        text(&o.stdout),
        "messages in queue: 3\nmessages in queue but not yet preprocessed: 1\n"
    );

    std::fs::remove_dir(inst.home.join("queue/info/22")).unwrap();
    let o = run(&inst, "qmail-qread", &[], b"");
    assert_eq!(code(&o), 111);
    assert!(
        text(&o.stdout).ends_with("fatal: unable to opendir info/22: No such file or directory\n"),
        "{}",
        text(&o.stdout)
    );
}
