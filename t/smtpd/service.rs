//! The run scripts in service/, started for real: the plain SMTP service under our
//! tcpserver and under D. J. Bernstein's, submission under our sslserver, with the tcprules
//! files from service/rules.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::auth::checkpassword;
use super::{contains, queued};
use crate::harness::{Instance, programs, run_with, wait_for};

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn service_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("service")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn rules(inst: &Instance, name: &str) {
    let tcprules = programs().join("tcprules");
    assert!(
        tcprules.exists(),
        "tcprules is not built: run `cargo build -p ucspi` first"
    );
    let cdb = inst.home.join(format!("control/rules.{name}.cdb"));
    let tmp = inst.home.join(format!("control/rules.{name}.tmp"));
    let src = std::fs::read(service_dir().join(format!("rules/{name}.txt"))).unwrap();
    let mut c = Command::new(tcprules);
    c.arg(&cdb).arg(&tmp);
    let o = run_with(c, &src, 10);
    assert!(o.status.success(), "{o:?}");
}

/// Runs service/NAME/run with PATH starting at `path_first`; returns it once the port
/// accepts connections.
fn start(inst: &Instance, name: &str, path_first: &Path, env: &[(&str, &str)]) -> (Service, u16) {
    let port = free_port();
    let me = sqmail::sys::account_by_uid(sqmail::sys::euid())
        .unwrap()
        .unwrap();
    let path = format!(
        "{}:{}:{}",
        path_first.display(),
        programs().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = Command::new("sh")
        .arg(service_dir().join(name).join("run"))
        .env_clear()
        .env("PATH", path)
        .env("QMAILHOME", &inst.home)
        .env("SMTPIP", "127.0.0.1")
        .env("SMTPPORT", port.to_string())
        .env("QMAILDUSER", String::from_utf8(me.name).unwrap())
        .env("RECORDS", inst.home.join("records"))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let s = Service(child);
    let up = wait_for(20, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    assert!(up.is_some(), "{name} did not start");
    (s, port)
}

fn swaks(port: u16, extra: &[&str]) -> String {
    let o = Command::new("swaks")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--from",
            "joe@test.example",
            "--timeout",
            "20",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("swaks");
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn plain_service_runs_under_both_tcpservers() {
    for first in [programs(), PathBuf::from("/usr/bin")] {
        let inst = Instance::new();
        rules(&inst, "smtpd");
        if first == Path::new("/usr/bin") {
            assert!(
                Path::new("/usr/bin/tcpserver").exists(),
                "ucspi-tcp is not installed"
            );
        }
        let (_s, port) = start(&inst, "qmail-smtpd-plain", &first, &[]);
        let t = swaks(port, &["--to", "u@far.test"]);
        assert!(
            t.contains("<-  250 ok ") && t.contains(" qp "),
            "{}: {t}",
            first.display()
        );
        let (mess, env) = &queued(&inst)[0];
        assert!(contains(env, b"Tu@far.test\0"));
        assert!(
            contains(mess, b"(127.0.0.1)\n  by test.example with ESMTP; "),
            "{}",
            String::from_utf8_lossy(mess)
        );
    }
}

#[test]
fn submission_service_requires_tls_and_auth() {
    let inst = Instance::new();
    rules(&inst, "smtpsub");
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
        ])
        .arg("-keyout")
        .arg(inst.home.join("control/key.pem"))
        .arg("-out")
        .arg(inst.home.join("control/cert.pem"))
        .output()
        .expect("openssl");
    assert!(o.status.success());
    std::fs::write(
        inst.home.join("control/ssl.env"),
        format!(
            "CERTFILE={h}/control/cert.pem\nKEYFILE={h}/control/key.pem\n",
            h = inst.home.display()
        ),
    )
    .unwrap();
    let cp = checkpassword(&inst);
    let check = format!("{cp} true");
    let (_s, port) = start(
        &inst,
        "qmail-smtpsub",
        &programs(),
        &[("AUTHCHECK", check.as_str())],
    );
    let t = swaks(port, &["--to", "u@far.test"]);
    assert!(t.contains("535 STARTTLS required (#5.7.1)"), "{t}");
    let t = swaks(port, &["--to", "u@far.test", "--tls"]);
    assert!(t.contains("535 authentication required (#5.7.1)"), "{t}");
    let t = swaks(
        port,
        &[
            "--to",
            "u@far.test",
            "--tls",
            "--auth",
            "LOGIN",
            "--auth-user",
            "joe",
            "--auth-password",
            "secret",
        ],
    );
    assert!(t.contains("<~  250 ok "), "{t}");
    let (mess, _) = &queued(&inst)[0];
    assert!(String::from_utf8_lossy(mess).contains(" with ESMTPSA; "));
}
