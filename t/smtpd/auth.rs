//! SMTP AUTH against a checkpassword program written for the test (Python): PLAIN, LOGIN,
//! CRAM-MD5, the fd-3 record, failures, the TLS rule and SMTPAUTH's modes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{Talk, contains, queued, script, smtpd};
use crate::harness::Instance;

/// A checkprogram: user `joe`, password `secret`; CRAM-MD5 when a challenge is given.
/// It appends the record it read on fd 3, and AUTHUSER, to `<home>/records`, then execs
/// its subprogram.
pub const CHECKPASSWORD: &str = r#"#!/usr/bin/env python3
import hmac, hashlib, os, sys
rec = os.read(3, 600)
while True:
    more = os.read(3, 600)
    if not more:
        break
    rec += more
with open(os.environ["RECORDS"], "ab") as f:
    f.write(rec + b"|" + os.environ.get("AUTHUSER", "").encode() + b"\n")
parts = rec.split(b"\0")
if len(parts) < 3:
    sys.exit(2)
user, secret, challenge = parts[0], parts[1], parts[2]
if user != b"joe":
    sys.exit(1)
if challenge:
    want = hmac.new(b"secret", challenge, hashlib.md5).hexdigest().encode()
    ok = hmac.compare_digest(want, secret)
else:
    ok = secret == b"secret"
if not ok:
    sys.exit(1)
os.execvp(sys.argv[1], sys.argv[1:])
"#;

pub fn checkpassword(inst: &Instance) -> String {
    script(inst, "checkpw", CHECKPASSWORD).display().to_string()
}

fn b64(s: &[u8]) -> String {
    STANDARD.encode(s)
}

fn env(inst: &Instance, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v = vec![
        (
            "RECORDS".to_string(),
            inst.home.join("records").display().to_string(),
        ),
        ("PLAINTEXTAUTH".to_string(), String::new()),
        ("SMTPAUTH".to_string(), "+cram".to_string()),
    ];
    for (k, x) in extra {
        v.retain(|(n, _)| n != k);
        v.push((k.to_string(), x.to_string()));
    }
    v
}

fn talk(inst: &Instance, extra: &[(&str, &str)]) -> Talk {
    let cp = checkpassword(inst);
    let e = env(inst, extra);
    let e: Vec<(&str, &str)> = e.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    Talk::start(smtpd(inst, &e, &[&cp, "true"]))
}

fn records(inst: &Instance) -> String {
    String::from_utf8_lossy(&std::fs::read(inst.home.join("records")).unwrap_or_default())
        .into_owned()
}

#[test]
fn auth_plain_login_cram_md5() {
    let inst = Instance::new();
    let mut t = talk(&inst, &[]);
    let e = t.cmd("EHLO client.test");
    assert!(
        e.contains("250-AUTH LOGIN PLAIN CRAM-MD5\r\n250-SMTPUTF8\r\n250 SIZE 0\r\n"),
        "{e}"
    );
    assert_eq!(
        t.cmd(&format!("AUTH PLAIN {}", b64(b"ignored\0joe\0secret"))),
        "235 ok, go ahead (#2.0.0)\r\n"
    );
    assert_eq!(
        t.cmd("AUTH PLAIN"),
        "503 you're already authenticated (#5.5.0)\r\n"
    );
    assert_eq!(
        t.cmd("MAIL FROM:<joe@test.example> AUTH=joe@test.example"),
        "250 ok\r\n"
    );
    assert_eq!(t.cmd("RCPT TO:<friend@far.test>"), "250 ok\r\n");
    t.cmd("DATA");
    let r = t.cmd("hi\r\n.");
    assert!(r.starts_with("250 ok "), "{r}");
    drop(t);
    let (mess, _) = &queued(&inst)[0];
    assert!(contains(mess, b"Received: from client.test (HELO client.test) (joe@127.0.0.1)\n  by mx.test with ESMTPA; ") || contains(mess, b"(joe@127.0.0.1)\n  by mx.test with ESMTPA; "), "{}", String::from_utf8_lossy(mess));

    let mut t = talk(&inst, &[]);
    assert_eq!(t.cmd("AUTH LOGIN"), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(t.cmd(&b64(b"joe")), "334 UGFzc3dvcmQ6\r\n");
    assert_eq!(t.cmd(&b64(b"secret")), "235 ok, go ahead (#2.0.0)\r\n");
    assert_eq!(t.cmd("MAIL FROM:<a@b>"), "250 ok\r\n");
    assert_eq!(
        t.cmd("AUTH LOGIN"),
        "503 you're already authenticated (#5.5.0)\r\n"
    );
    drop(t);

    let mut t = talk(&inst, &[]);
    let c = t.cmd("AUTH CRAM-MD5");
    let challenge = STANDARD
        .decode(c.trim_end().strip_prefix("334 ").unwrap())
        .unwrap();
    let ch = String::from_utf8(challenge.clone()).unwrap();
    assert!(ch.starts_with('<') && ch.ends_with("@mx.test>"), "{ch}");
    let digest = hmac_md5(b"secret", &challenge);
    assert_eq!(
        t.cmd(&b64(format!("joe {digest}").as_bytes())),
        "235 ok, go ahead (#2.0.0)\r\n"
    );
    drop(t);
    let rec = records(&inst);
    assert!(rec.contains("joe\0secret\0\0|joe\n"), "{rec:?}");
    assert!(
        rec.contains(&format!("joe\0{digest}\0{ch}\0|joe\n")),
        "{rec:?}"
    );
}

/// HMAC-MD5 by way of Python, so the test does not trust our own code for it.
fn hmac_md5(key: &[u8], msg: &[u8]) -> String {
    let o = std::process::Command::new("python3")
        .args([
            "-c",
            "import hmac,hashlib,sys;print(hmac.new(sys.argv[1].encode(),sys.argv[2].encode(),hashlib.md5).hexdigest())",
            std::str::from_utf8(key).unwrap(),
            std::str::from_utf8(msg).unwrap(),
        ])
        .output()
        .expect("python3");
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

#[test]
fn auth_failures_and_cancel() {
    let inst = Instance::new();
    let mut t = talk(&inst, &[]);
    assert_eq!(t.cmd("AUTH PLAIN"), "334 \r\n");
    assert_eq!(t.cmd("*"), "501 auth exchange canceled (#5.0.0)\r\n");
    assert_eq!(
        t.cmd("AUTH PLAIN !!!"),
        "501 malformed auth input (#5.5.4)\r\n"
    );
    assert_eq!(
        t.cmd("AUTH KERBEROS_V4"),
        "504 auth type unimplemented (#5.5.1)\r\n"
    );
    assert_eq!(
        t.cmd(&format!("AUTH PLAIN {}", b64(b"\0joe\0wrong"))),
        "535 authentication failed (#5.7.1)\r\n"
    );
    assert_eq!(t.cmd("MAIL FROM:<a@b>"), "250 ok\r\n");
    assert_eq!(
        t.cmd("AUTH LOGIN"),
        "503 no auth during mail transaction (#5.5.0)\r\n"
    );
    assert_eq!(
        t.cmd("RCPT TO:<x@far.test>"),
        "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)\r\n"
    );
    let long = b64(&[b"\0joe\0".as_slice(), &[b'p'; 600]].concat());
    assert_eq!(
        t.cmd(&format!("AUTH PLAIN {long}")),
        "500 command line too long (#5.5.6)\r\n"
    );
}

#[test]
fn auth_needs_tls_unless_plaintext_is_allowed() {
    let inst = Instance::new();
    let cp = checkpassword(&inst);
    let mut t = Talk::start(smtpd(&inst, &[("SMTPAUTH", "")], &[&cp, "true"]));
    let e = t.cmd("EHLO x");
    assert!(!e.contains("AUTH"), "{e}");
    assert_eq!(
        t.cmd("AUTH PLAIN"),
        "538 encryption required for requested authentication mechanism (#5.7.11)\r\n"
    );
    drop(t);
    let mut t = Talk::start(smtpd(
        &inst,
        &[("SMTPAUTH", ""), ("PLAINTEXTAUTH", "")],
        &[],
    ));
    assert_eq!(t.cmd("AUTH PLAIN"), "503 auth not available (#5.3.3)\r\n");
    drop(t);
    let mut t = Talk::start(smtpd(
        &inst,
        &[("SMTPAUTH", "-"), ("PLAINTEXTAUTH", "")],
        &[&cp, "true"],
    ));
    assert_eq!(t.cmd("AUTH PLAIN"), "503 auth not available (#5.3.3)\r\n");
    drop(t);
    let mut t = Talk::start(smtpd(
        &inst,
        &[("SMTPAUTH", "cram"), ("PLAINTEXTAUTH", "")],
        &[&cp, "true"],
    ));
    assert!(t.cmd("EHLO x").contains("250-AUTH CRAM-MD5\r\n"));
    assert_eq!(
        t.cmd("AUTH PLAIN"),
        "504 auth type unimplemented (#5.5.1)\r\n"
    );
}

#[test]
fn smtpauth_bang_requires_auth_before_mail() {
    let inst = Instance::new();
    let cp = checkpassword(&inst);
    let e = env(&inst, &[("SMTPAUTH", "!")]);
    let e: Vec<(&str, &str)> = e.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let o = crate::harness::run_with(smtpd(&inst, &e, &[&cp, "true"]), b"MAIL FROM:<a@b>\r\n", 10);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "220 test.example ESMTP\r\n535 authentication required (#5.7.1)\r\n"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("Reject::AUTH::missing"));
}

/// Commands pipelined behind an AUTH are thrown away, and the checkprogram never sees them.
#[test]
fn input_pipelined_during_auth_is_discarded() {
    let inst = Instance::new();
    let mut t = talk(&inst, &[]);
    t.send(format!("AUTH PLAIN {}\r\nHELP\r\n", b64(b"\0joe\0secret")).as_bytes());
    assert_eq!(t.reply(), "235 ok, go ahead (#2.0.0)\r\n");
    assert_eq!(t.cmd("NOOP"), "250 ok\r\n");
    let rest = t.finish();
    assert_eq!(rest, "");
}

#[test]
fn auth_line_limit_is_2048_with_crlf() {
    let inst = Instance::new();
    let mut t = talk(&inst, &[]);
    assert_eq!(t.cmd("AUTH LOGIN"), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(
        t.cmd(&"A".repeat(2046)),
        "501 malformed auth input (#5.5.4)\r\n"
    );
    assert_eq!(t.cmd("AUTH LOGIN"), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(
        t.cmd(&"A".repeat(2047)),
        "500 command line too long (#5.5.6)\r\n"
    );
    assert_eq!(t.cmd("*"), "501 auth exchange canceled (#5.0.0)\r\n");
}

#[test]
fn checkprogram_trouble_gives_454() {
    let inst = Instance::new();
    let crash = script(&inst, "crash", "#!/bin/sh\nkill -9 $$\n");
    let env = [("SMTPAUTH", ""), ("PLAINTEXTAUTH", "")];
    let plain = format!("AUTH PLAIN {}", b64(b"\0joe\0secret"));
    let mut t = Talk::start(smtpd(&inst, &env, &[crash.to_str().unwrap(), "true"]));
    assert_eq!(
        t.cmd(&plain),
        "454 problem with child and I can't auth (#4.3.0)\r\n"
    );
    drop(t);
    let mut t = Talk::start(smtpd(&inst, &env, &["/nonexistent/checkpassword", "true"]));
    assert_eq!(
        t.cmd(&plain),
        "454 child won't start and I can't auth (#4.3.0)\r\n"
    );
    drop(t);
    inst.control("timeoutsmtpd", b"1\n");
    let slow = script(&inst, "slow", "#!/bin/sh\nexec sleep 30\n");
    let mut t = Talk::start(smtpd(&inst, &env, &[slow.to_str().unwrap(), "true"]));
    assert_eq!(
        t.cmd(&plain),
        "454 problem with child and I can't auth (#4.3.0)\r\n"
    );
}
