//! tcprules and tcprulescheck against DJB's: the same rule files give byte-identical
//! databases, the same errors, and the same answers from either tcprulescheck.

use std::process::Command;

use super::server::theirs_ipv6;
use super::{Scratch, ours, run, theirs};

/// A small deterministic generator, so the corpus is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(self.0 >> 33).unwrap() % n
    }
}

const ADDRESSES: &[&str] = &[
    "",
    "1.2.3.4",
    "1.2.3.7",
    "10.",
    "10.0.",
    "10.1.2.3",
    "9.9.9.9",
    "=host.example",
    "=a.host.example",
    "=.host.example",
    "=.example",
    "=",
    "joe@1.2.3.4",
    "joe@=host.example",
    "@10.1.2.3",
    "1.2.3.4-9",
    "1.2.3-5.",
    "1.2.3.250-300",
    "1.2.3.-2",
    "9-3",
    " 1.2.3.4",
    "x y",
    "a@b@c",
    "-",
    "joe@1.2.3.4-6",
    "=h-1.example",
];

const VARS: &[&str] = &[
    ",A=\"x\"",
    ",B=/y:z/",
    ",C=''",
    ",RELAYCLIENT=\"\"",
    ",X=vav",
    ",D=\"with space\"",
    ",=\"empty name\"",
    ",E=\"a=b\"",
    ",TCPREMOTEHOST=\"over.ride\"",
    ",F=\"\u{e9}t\u{e9}\"",
];

const TAILS: &[&str] = &["", "  ", "\t", " \t ", "\n\n"];

fn corpus(seed: u64) -> Vec<u8> {
    let mut g = Lcg(seed);
    let mut out = String::new();
    for _ in 0..40 {
        match g.next(10) {
            0 => out.push_str("# a comment: deny\n"),
            1 => out.push('\n'),
            _ => {
                out.push_str(ADDRESSES[g.next(ADDRESSES.len())]);
                out.push(':');
                out.push_str(if g.next(3) == 0 { "deny" } else { "allow" });
                for _ in 0..g.next(4) {
                    out.push_str(VARS[g.next(VARS.len())]);
                }
                out.push_str(TAILS[g.next(TAILS.len())]);
                out.push('\n');
            }
        }
    }
    if g.next(2) == 0 {
        out.push_str("=last.example:allow,L=\"no newline\"");
    }
    out.into_bytes()
}

/// Runs one tcprules on `input` in `dir`; returns (exit code, stderr, database bytes).
fn compile(bin: &std::path::Path, dir: &Scratch, input: &[u8]) -> (i32, String, Option<Vec<u8>>) {
    let cdb = dir.path("rules.cdb");
    let tmp = dir.path("rules.tmp");
    let _ = std::fs::remove_file(&cdb);
    std::fs::write(&cdb, b"old").unwrap();
    let o = run(Command::new(bin).arg(&cdb).arg(&tmp), input);
    let code = o.status.code().unwrap();
    let db = std::fs::read(&cdb).ok();
    if code == 0 {
        assert!(!tmp.exists(), "the temporary file was renamed");
    } else {
        assert_eq!(
            db.as_deref(),
            Some(b"old".as_slice()),
            "the database is left alone"
        );
    }
    (code, String::from_utf8_lossy(&o.stderr).into_owned(), db)
}

#[test]
fn tcprules_writes_djbs_database_byte_for_byte() {
    let (mine, djb) = (Scratch::new("rules-ours"), Scratch::new("rules-theirs"));
    for seed in 1..=40 {
        let input = corpus(seed);
        let a = compile(&ours("tcprules"), &mine, &input);
        let b = compile(&theirs("tcprules"), &djb, &input);
        assert_eq!(a.0, 0, "seed {seed}: {}", a.1);
        assert_eq!(
            a,
            b,
            "seed {seed}, input:\n{}",
            String::from_utf8_lossy(&input)
        );
    }
    let empty = compile(&ours("tcprules"), &mine, b"");
    assert_eq!(empty, compile(&theirs("tcprules"), &djb, b""));
    assert_eq!(empty.2.unwrap().len(), 2048);
}

#[test]
fn tcprules_refuses_what_djb_refuses() {
    let (mine, djb) = (Scratch::new("bad-ours"), Scratch::new("bad-theirs"));
    for bad in [
        "1.2.3.4:allow,A\n",
        "x:allow junk  \t\n",
        "1.2.3.4:allow\r\n",
        "1.2.3.x-5:allow\n",
        "1.2.3.4-5x:allow\n",
        ":allow,X=\"unterminated\n",
        "a:b:allow\n",
        "1.2.3.4: allow\n",
        "1.2.3.4:Allow\n",
        ":deny,=\n",
        "ok:allow\nbad:maybe\n",
        "1.2.3.4:allow,A=\"x\"junk\n",
    ] {
        let a = compile(&ours("tcprules"), &mine, bad.as_bytes());
        let b = compile(&theirs("tcprules"), &djb, bad.as_bytes());
        assert_eq!(a.0, 100, "{bad:?}");
        assert_eq!(a, b, "{bad:?}");
    }
}

#[test]
fn tcprules_usage_and_file_errors_match_djb() {
    let d = Scratch::new("rules-err");
    std::fs::create_dir(d.path("adir")).unwrap();
    let cases: Vec<Vec<String>> = vec![
        vec![],
        vec!["only.cdb".into()],
        vec![
            d.path("x.cdb").display().to_string(),
            "/nonexistent/dir/x.tmp".into(),
        ],
        vec![
            d.path("adir").display().to_string(),
            d.path("x.tmp").display().to_string(),
        ],
    ];
    for args in cases {
        let a = run(Command::new(ours("tcprules")).args(&args), b":allow\n");
        let b = run(Command::new(theirs("tcprules")).args(&args), b":allow\n");
        assert_eq!(a.status.code(), b.status.code(), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&a.stderr),
            String::from_utf8_lossy(&b.stderr),
            "{args:?}"
        );
    }
}

/// The answers of a tcprulescheck for a range of connections.
fn checks(bin: &std::path::Path, cdb: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for ip in [
        None,
        Some("1.2.3.4"),
        Some("1.2.3.7"),
        Some("1.2.4.9"),
        Some("10.1.2.3"),
        Some("10.0.0.1"),
        Some("9.9.9.9"),
        Some("1.2.3.255"),
    ] {
        for host in [
            None,
            Some("host.example"),
            Some("a.host.example"),
            Some(""),
            Some("h-1.example"),
        ] {
            for info in [None, Some("joe"), Some("")] {
                let mut c = Command::new(bin);
                c.arg(cdb).env_clear();
                if let Some(v) = ip {
                    c.env("TCPREMOTEIP", v);
                }
                if let Some(v) = host {
                    c.env("TCPREMOTEHOST", v);
                }
                if let Some(v) = info {
                    c.env("TCPREMOTEINFO", v);
                }
                let o = run(&mut c, b"");
                out.push(format!(
                    "{ip:?} {host:?} {info:?} -> {:?} {}{}",
                    o.status.code(),
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                ));
            }
        }
    }
    out
}

#[test]
fn tcprulescheck_answers_as_djbs_on_either_database() {
    let d = Scratch::new("check");
    for seed in [3, 11, 29] {
        let input = corpus(seed);
        let (mine, djb) = (
            d.path(&format!("o{seed}.cdb")),
            d.path(&format!("t{seed}.cdb")),
        );
        let o = run(
            Command::new(ours("tcprules"))
                .arg(&mine)
                .arg(d.path("o.tmp")),
            &input,
        );
        assert!(o.status.success());
        let t = run(
            Command::new(theirs("tcprules"))
                .arg(&djb)
                .arg(d.path("t.tmp")),
            &input,
        );
        assert!(t.status.success());
        let reference = checks(&theirs("tcprulescheck"), &djb);
        assert_eq!(
            checks(&ours("tcprulescheck"), &djb),
            reference,
            "seed {seed}"
        );
        assert_eq!(
            checks(&ours("tcprulescheck"), &mine),
            reference,
            "seed {seed}"
        );
        assert_eq!(
            checks(&theirs("tcprulescheck"), &mine),
            reference,
            "seed {seed}"
        );
    }
    let bad = "/nonexistent.cdb";
    let a = run(Command::new(ours("tcprulescheck")).arg(bad), b"");
    let b = run(Command::new(theirs("tcprulescheck")).arg(bad), b"");
    assert_eq!((a.status.code(), a.stderr), (b.status.code(), b.stderr));
    let empty = d.path("empty.cdb");
    std::fs::write(&empty, b"").unwrap();
    let short = d.path("short.cdb");
    std::fs::write(&short, [0u8; 100]).unwrap();
    for args in [vec![empty.as_os_str()], vec![short.as_os_str()], vec![]] {
        let a = run(Command::new(ours("tcprulescheck")).args(&args), b"");
        let b = run(Command::new(theirs("tcprulescheck")).args(&args), b"");
        assert_eq!(
            (a.status.code(), String::from_utf8_lossy(&a.stderr)),
            (b.status.code(), String::from_utf8_lossy(&b.stderr)),
            "{args:?}"
        );
    }
}

#[test]
fn cidr_and_ipv6_rules_follow_ucspi_tcp6() {
    let d = Scratch::new("cidr");
    let cdb = d.path("r.cdb");
    let rules = "10.0.0.0/8:allow,NET=\"ten\"\n127./8:allow,NET=\"lo\"\n\
                 10.1.2.0/24:allow,NET=\"ten-one-two\"\n\
                 2001:db8::1:allow,NET=\"one\"\n2001:db8::/32:deny\n\
                 joe@::1:allow,NET=\"joe6\"\n::/0:deny\n:allow,NET=\"any\"\n";
    let o = run(
        Command::new(ours("tcprules"))
            .arg(&cdb)
            .arg(d.path("r.tmp")),
        rules.as_bytes(),
    );
    assert_eq!(o.status.code(), Some(100), "/0 is not a prefix length");
    let rules = rules.replace("::/0:deny\n", "");
    let o = run(
        Command::new(ours("tcprules"))
            .arg(&cdb)
            .arg(d.path("r.tmp")),
        rules.as_bytes(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let check = |ip: &str, info: Option<&str>| {
        let mut c = Command::new(ours("tcprulescheck"));
        c.arg(&cdb).env_clear().env("TCPREMOTEIP", ip);
        if let Some(i) = info {
            c.env("TCPREMOTEINFO", i);
        }
        String::from_utf8(run(&mut c, b"").stdout).unwrap()
    };
    assert_eq!(
        check("10.9.9.9", None),
        "rule _0000e0g0:\nset environment variable NET=ten\nallow connection\n"
    );
    assert!(
        check("10.1.2.3", None).contains("NET=ten-one-two"),
        "longest prefix first"
    );
    assert!(check("127.0.0.1", None).contains("NET=lo"));
    assert!(check("11.0.0.1", None).contains("NET=any"));
    assert_eq!(
        check("2001:db8::1", None),
        "rule 2001:db8::1:\nset environment variable NET=one\nallow connection\n"
    );
    assert!(check("2001:db8::2", None).ends_with("deny connection\n"));
    assert!(check("::1", Some("joe")).contains("NET=joe6"));
    assert!(check("::1", None).contains("NET=any"));
    let theirs_on_v4 = run(
        Command::new(theirs("tcprules"))
            .arg(d.path("t.cdb"))
            .arg(d.path("t.tmp")),
        b"2001:db8::1:allow\n",
    );
    assert_eq!(
        theirs_on_v4.status.code(),
        Some(100),
        "0.88 has no IPv6 rules"
    );
}

/// IPv6 rules: our tcprules writes what Debian's ucspi-tcp-ipv6 (0.88 with the IPv6 patch)
/// writes, and each tcprulescheck answers alike on either database. A database written by
/// ucspi-tcp6's tcprules (expanded upper-case keys) is read too.
#[test]
fn ipv6_rules_are_shared_with_debians_ucspi_tcp_ipv6() {
    let d = Scratch::new("six-rules");
    let rules = "::1:allow,NET=\"lo\"\njoe@::1:allow,NET=\"joe\"\n\
                 2001:db8:1::allow,NET=\"pfx1\"\n2001:db8::allow,NET=\"pfx\"\n\
                 2001:db8::5:deny\n::ffff:10.1.:allow,NET=\"mapped\"\n\
                 10.:allow,NET=\"ten\"\n:allow,NET=\"any\"\n";
    let (a, ea, cdb_a) = compile(&ours("tcprules"), &d, rules.as_bytes());
    let (b, eb, cdb_b) = compile(&theirs_ipv6("tcprules"), &d, rules.as_bytes());
    assert_eq!((a, &ea), (b, &eb));
    assert_eq!(cdb_a, cdb_b, "byte-identical databases");
    let db = d.path("shared.cdb");
    std::fs::write(&db, cdb_a.unwrap()).unwrap();
    let expanded = d.path("expanded.cdb");
    let o = run(
        Command::new(ours("tcprules"))
            .arg(&expanded)
            .arg(d.path("e.tmp")),
        b"2001:0DB8:0000:0000:0000:0000:0000:0007:allow,NET=\"tcp6\"\n",
    );
    assert!(o.status.success());
    let check = |bin: &std::path::Path, cdb: &std::path::Path, ip: &str, info: Option<&str>| {
        let mut c = Command::new(bin);
        c.arg(cdb).env_clear().env("TCPREMOTEIP", ip);
        if let Some(i) = info {
            c.env("TCPREMOTEINFO", i);
        }
        String::from_utf8(run(&mut c, b"").stdout).unwrap()
    };
    for (ip, info, want) in [
        ("::1", None, "NET=lo"),
        ("::1", Some("joe"), "NET=joe"),
        ("::1", Some("bill"), "NET=lo"),
        ("2001:db8:1::7", None, "NET=pfx1"),
        ("2001:db8:2::7", None, "NET=pfx"),
        ("2001:db8::5", None, "deny connection"),
        ("::ffff:10.1.2.3", None, "NET=mapped"),
        ("10.9.9.9", None, "NET=ten"),
        ("2002::1", None, "NET=any"),
    ] {
        let a = check(&ours("tcprulescheck"), &db, ip, info);
        let b = check(&theirs_ipv6("tcprulescheck"), &db, ip, info);
        assert_eq!(a, b, "{ip} {info:?}");
        assert!(a.contains(want), "{ip}: {a}");
    }
    assert!(check(&ours("tcprulescheck"), &expanded, "2001:db8::7", None).contains("NET=tcp6"));
}
