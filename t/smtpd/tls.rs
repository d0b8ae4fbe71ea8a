//! qmail-smtpd behind our tcpserver and sslserver, with real clients: swaks and Python's
//! smtplib, STARTTLS through UCSPI-TLS (sslserver -n), SMTPS, and the STARTTLS injection.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use super::auth::checkpassword;
use super::{contains, queued};
use crate::harness::{Instance, programs};

/// A server on 127.0.0.1 at a port it picked, killed by pid on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ucspi(name: &str) -> PathBuf {
    let p = programs().join(name);
    assert!(
        p.exists(),
        "{name} is not built: run `cargo build -p ucspi` first"
    );
    p
}

/// A self-signed certificate for localhost made with openssl.
fn cert(inst: &Instance) -> (String, String) {
    let c = inst.home.join("cert.pem");
    let k = inst.home.join("key.pem");
    let o = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
        ])
        .arg(&k)
        .arg("-out")
        .arg(&c)
        .output()
        .expect("openssl");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (c.display().to_string(), k.display().to_string())
}

fn start(
    inst: &Instance,
    server: &str,
    opts: &[&str],
    env: &[(&str, &str)],
    prog: &[&str],
) -> Server {
    let (c, k) = cert(inst);
    let mut cmd = Command::new(ucspi(server));
    cmd.args(["-1", "-H", "-R", "-l", "mx.test"])
        .args(if server == "sslserver" {
            &["-e"][..]
        } else {
            &[][..]
        })
        .args(opts)
        .args(["127.0.0.1", "0"])
        .arg(inst.bin("qmail-smtpd"))
        .args(prog)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("QMAILHOME", &inst.home)
        .env("CERTFILE", c)
        .env("KEYFILE", k)
        .env("RECORDS", inst.home.join("records"))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().expect("server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().parse().expect("port");
    Server { child, port }
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .expect("peer program missing: install the test packages")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn swaks(port: u16, extra: &[&str]) -> Output {
    run(Command::new("swaks")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--from",
            "joe@test.example",
            "--helo",
            "client.test",
            "--timeout",
            "20",
        ])
        .args(extra))
}

#[test]
fn swaks_plain_under_tcpserver() {
    let inst = Instance::new();
    let s = start(&inst, "tcpserver", &[], &[], &[]);
    let o = swaks(s.port, &["--to", "u@test.example", "--body", "plain body"]);
    assert!(o.status.success(), "{}", text(&o));
    let (mess, env) = &queued(&inst)[0];
    assert!(contains(env, b"Fjoe@test.example\0Tu@test.example\0"));
    assert!(
        contains(mess, b"  by mx.test with ESMTP; "),
        "{}",
        String::from_utf8_lossy(mess)
    );
    assert!(
        contains(mess, b"\n\nplain body\n"),
        "{}",
        String::from_utf8_lossy(mess)
    );
    let o = swaks(s.port, &["--to", "u@far.test"]);
    assert!(
        text(&o)
            .contains("<** 553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"),
        "{}",
        text(&o)
    );
}

#[test]
fn swaks_starttls_and_auth_mechanisms() {
    let inst = Instance::new();
    let cp = checkpassword(&inst);
    let s = start(
        &inst,
        "sslserver",
        &["-n"],
        &[("UCSPITLS", ""), ("SMTPAUTH", "+cram")],
        &[&cp, "true"],
    );
    for mech in ["PLAIN", "LOGIN", "CRAM-MD5"] {
        let o = swaks(
            s.port,
            &[
                "--to",
                "u@far.test",
                "--tls",
                "--auth",
                mech,
                "--auth-user",
                "joe",
                "--auth-password",
                "secret",
            ],
        );
        let t = text(&o);
        assert!(o.status.success(), "{mech}: {t}");
        assert!(t.contains("<~  235 ok, go ahead (#2.0.0)"), "{mech}: {t}");
    }
    let q = queued(&inst);
    assert_eq!(q.len(), 3);
    for (mess, env) in &q {
        assert!(contains(env, b"Tu@far.test\0"));
        let m = String::from_utf8_lossy(mess);
        assert!(
            m.contains("(joe@127.0.0.1)\n  de/crypted with TLSv1.3: ")
                && m.contains(" DN=none\n  by mx.test with ESMTPSA; "),
            "{m}"
        );
    }
    let o = swaks(
        s.port,
        &[
            "--to",
            "u@far.test",
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            "joe",
            "--auth-password",
            "wrong",
        ],
    );
    assert!(
        text(&o).contains("535 authentication failed (#5.7.1)"),
        "{}",
        text(&o)
    );
}

#[test]
fn swaks_smtps_on_465() {
    let inst = Instance::new();
    let cp = checkpassword(&inst);
    // TCPLOCALPORT is the real port; `env` sets it to 465 as on a real SMTPS service.
    let (c, k) = cert(&inst);
    let mut cmd = Command::new(ucspi("sslserver"));
    cmd.args([
        "-1",
        "-H",
        "-R",
        "-s",
        "-e",
        "-l",
        "mx.test",
        "127.0.0.1",
        "0",
        "/usr/bin/env",
        "TCPLOCALPORT=465",
    ])
    .arg(inst.bin("qmail-smtpd"))
    .args([cp.as_str(), "true"])
    .env_clear()
    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
    .env("QMAILHOME", &inst.home)
    .env("CERTFILE", c)
    .env("KEYFILE", k)
    .env("SMTPAUTH", "")
    .env("RECORDS", inst.home.join("records"))
    .stdin(Stdio::null())
    .stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let s = Server {
        child,
        port: line.trim().parse().unwrap(),
    };
    let o = swaks(
        s.port,
        &[
            "--to",
            "u@far.test",
            "--tlsc",
            "--auth",
            "LOGIN",
            "--auth-user",
            "joe",
            "--auth-password",
            "secret",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let (mess, _) = &queued(&inst)[0];
    assert!(String::from_utf8_lossy(mess).contains("with ESMTPSA; "));
    // Without TLS on 465 the session refuses to start.
    let o = crate::harness::run_with(
        {
            let mut c = inst.cmd("qmail-smtpd");
            c.env("TCPLOCALPORT", "465");
            c
        },
        b"",
        10,
    );
    assert_eq!(
        o.stdout,
        b"454 TLS not available due to temporary reason (#5.7.3)\r\n"
    );
}

const SMTPLIB: &str = r#"
import smtplib, ssl, sys
port = int(sys.argv[1])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=20)
s.ehlo()
assert s.has_extn("starttls"), s.esmtp_features
assert not s.has_extn("auth"), s.esmtp_features
s.starttls(context=ctx)
s.ehlo()
assert not s.has_extn("starttls"), s.esmtp_features
s.login("joe", "secret")
s.sendmail("joe@test.example", ["u@far.test"], b"Subject: py\r\n\r\nline\r\n.dot\r\n")
s.quit()
print("sent")
"#;

#[test]
fn python_smtplib_starttls_and_login() {
    let inst = Instance::new();
    let cp = checkpassword(&inst);
    let s = start(
        &inst,
        "sslserver",
        &["-n"],
        &[("UCSPITLS", ""), ("SMTPAUTH", "")],
        &[&cp, "true"],
    );
    let o = run(Command::new("python3").args(["-c", SMTPLIB, &s.port.to_string()]));
    assert!(text(&o).contains("sent"), "{}", text(&o));
    let (mess, env) = &queued(&inst)[0];
    assert!(contains(env, b"Fjoe@test.example\0Tu@far.test\0"));
    assert!(
        mess.ends_with(b"Subject: py\n\nline\n.dot\n"),
        "{}",
        String::from_utf8_lossy(mess)
    );
}

const INJECT: &str = r#"
import socket, ssl, sys
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port), timeout=20)
f = s.makefile("rb")
def reply():
    out = b""
    while True:
        l = f.readline()
        out += l
        if len(l) < 4 or l[3:4] != b"-":
            return out
reply()
s.sendall(b"EHLO x\r\n"); reply()
s.sendall(b"STARTTLS\r\nHELP\r\nMAIL FROM:<inj@x>\r\n")
print("starttls:", reply())
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s, server_hostname="localhost")
g = t.makefile("rb")
def treply():
    out = b""
    while True:
        l = g.readline()
        out += l
        if len(l) < 4 or l[3:4] != b"-":
            return out
t.sendall(b"NOOP\r\n"); print("noop:", treply())
t.sendall(b"RCPT TO:<u@test.example>\r\n"); print("rcpt:", treply())
t.sendall(b"EHLO x\r\n"); print("ehlo:", treply())
t.sendall(b"QUIT\r\n"); print("quit:", treply())
"#;

/// CVE-2020-15955: commands sent in plaintext behind STARTTLS are never executed.
#[test]
fn starttls_injection_is_discarded() {
    let inst = Instance::new();
    let s = start(&inst, "sslserver", &["-n"], &[("UCSPITLS", "")], &[]);
    let o = run(Command::new("python3").args(["-c", INJECT, &s.port.to_string()]));
    let t = text(&o);
    assert!(
        t.contains("starttls: b'220 Ready to start TLS (#5.7.0)\\r\\n'"),
        "{t}"
    );
    assert!(t.contains("noop: b'250 ok\\r\\n'"), "{t}");
    assert!(t.contains("rcpt: b'503 MAIL first (#5.5.1)\\r\\n'"), "{t}");
    assert!(t.contains("ehlo: b'250-test.example\\r\\n250-PIPELINING\\r\\n250-8BITMIME\\r\\n250-SMTPUTF8\\r\\n250 SIZE 0\\r\\n'"), "{t}");
    assert!(t.contains("quit: b'221 test.example\\r\\n'"), "{t}");
}

#[test]
fn ucspitls_bang_requires_starttls() {
    let inst = Instance::new();
    let s = start(&inst, "sslserver", &["-n"], &[("UCSPITLS", "!")], &[]);
    let o = swaks(s.port, &["--to", "u@test.example"]);
    assert!(
        text(&o).contains("535 STARTTLS required (#5.7.1)"),
        "{}",
        text(&o)
    );
    let o = swaks(s.port, &["--to", "u@test.example", "--tls"]);
    assert!(o.status.success(), "{}", text(&o));
}
