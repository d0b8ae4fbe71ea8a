//! `make run`: sbin/sqmail-demo, run to the end (-x) on free loopback ports in a scratch
//! directory. The welcome message must be refused on submission without AUTH, accepted
//! with it, leave through qmail-remote with STARTTLS, come back through qmail-smtpd and
//! land in the Maildir; afterwards nothing the script started may be left running.
//!
//! `SQMAIL_PROGRAMS` names another program directory for this test: `make test` points it at
//! the release build, whose per-connection and per-message programs are linked statically,
//! so that those are the programs the whole chain runs.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{Scratch, programs, run_with};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The pids of the processes whose environment names `home` as QMAILHOME.
fn instance_processes(home: &Path) -> Vec<String> {
    let needle = format!("QMAILHOME={}\0", home.display());
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.parse::<u32>().is_err() {
            continue;
        }
        let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
        if String::from_utf8_lossy(&env).contains(&needle) {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            out.push(format!("{name} {}", comm.trim()));
        }
    }
    out
}

#[test]
fn make_run_delivers_the_welcome_message_through_submission_and_qmail_remote() {
    let scratch = Scratch::new("demo");
    // The instance's account (sqmail when root runs this) must reach its home.
    std::fs::set_permissions(&scratch.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let rundir = scratch.0.join("run");
    let home = rundir.join("qmail");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("sbin/sqmail-demo");
    let programs = std::env::var_os("SQMAIL_PROGRAMS").map_or_else(programs, PathBuf::from);
    assert!(
        programs.join("sslserver").exists(),
        "sslserver is not built: run `cargo build -p ucspi` first"
    );
    let (smtp, smtps, sub) = (free_port(), free_port(), free_port());
    let mut c = Command::new("sh");
    c.arg(&script)
        .arg("-x")
        .arg(&programs)
        .arg(&rundir)
        .env_remove("QMAILHOME")
        .env_remove("DEMO_EXIT")
        .env("SMTP_PORT", smtp.to_string())
        .env("SMTPS_PORT", smtps.to_string())
        .env("SUBMISSION_PORT", sub.to_string());
    // Output is read to its end: a process left holding it would make this time out.
    let o = run_with(c, b"", 300);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}\n{err}");

    // AUTH is required on submission, and accepted with the password the script made.
    let line = |prefix: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in:\n{out}"))
            .to_string()
    };
    let without = line("sqmail-demo: submission without AUTH: ");
    assert!(
        without.starts_with("DConnected to 127.0.0.1 but sender was rejected.")
            && without.contains("535 authentication required (#5.7.1)"),
        "{without}"
    );
    assert!(out.contains("Reject::AUTH::missing"), "{out}");
    let with = line("sqmail-demo: submission with AUTH: ");
    assert!(
        with.starts_with("K127.0.0.1 TLS transmitted message accepted."),
        "{with}"
    );
    let pw = std::fs::read_to_string(rundir.join("password")).unwrap();
    assert!(pw.trim().len() >= 16, "{pw:?}");
    assert!(out.contains(&format!("password {}", pw.trim())), "{out}");

    // qmail-remote took it to the SMTP port with STARTTLS.
    assert!(
        out.contains(
            "success: 127.0.0.1_TLS_transmitted_message_accepted./Remote_host_said:_250_ok_"
        ),
        "{out}"
    );

    // The message in the Maildir: the hop through qmail-smtpd on the SMTP port (TLS, no
    // AUTH) above the hop through submission (TLS and AUTH).
    let path = PathBuf::from(line("sqmail-demo: welcome message arrived: "));
    assert!(path.starts_with(home.join("alias")), "{}", path.display());
    assert_eq!(path.parent().unwrap().file_name().unwrap(), "new");
    let msg = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
    let received: Vec<&str> = msg
        .lines()
        .filter(|l| l.starts_with("Received: ") || l.starts_with("  by "))
        .collect();
    let smtpd_hop = received
        .iter()
        .position(|l| l.starts_with("  by localhost.localdomain with ESMTPS; "));
    let submission_hop = received
        .iter()
        .position(|l| l.starts_with("  by localhost.localdomain with ESMTPSA; "));
    assert!(
        matches!((smtpd_hop, submission_hop), (Some(a), Some(b)) if a < b),
        "{msg}"
    );
    assert!(msg.contains("\nSubject: welcome\n"), "{msg}");
    let me = sqmail::sys::account_by_uid(sqmail::sys::euid())
        .unwrap()
        .unwrap();
    let me = String::from_utf8(me.name).unwrap();
    // Delivered last to ME@localhost.localdomain, which qmail-smtpd made of ME@[127.0.0.1];
    // before that, ME-remote@localhost forwarded it out.
    assert!(
        msg.starts_with(&format!(
            "Return-Path: <{me}@localhost>\nDelivered-To: {me}@localhost.localdomain\n"
        )),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("\nDelivered-To: {me}-remote@localhost\n")),
        "{msg}"
    );
    assert!(
        msg.contains(" (127.0.0.1)\n  de/crypted with TLSv1.3: ")
            && msg.contains(&format!(
                " ({me}@localhost@127.0.0.1)\n  de/crypted with TLSv1.3: "
            )),
        "{msg}"
    );

    // Every process the script started is gone.
    let started: Vec<u32> = out
        .lines()
        .filter(|l| l.starts_with("sqmail-demo: "))
        .filter_map(|l| l.rsplit_once(", pid ").and_then(|(_, p)| p.parse().ok()))
        .collect();
    assert_eq!(started.len(), 4, "{out}");
    for p in started {
        assert!(
            !Path::new(&format!("/proc/{p}")).exists(),
            "pid {p} still runs"
        );
    }
    // qmail-send's helpers exit when it has.
    let left = crate::harness::wait_for(20, || instance_processes(&home).is_empty().then_some(()));
    assert!(left.is_some(), "{:?}", instance_processes(&home));
}

/// Runs sqmail-setup on a new home in `scratch`; returns the home.
fn setup(scratch: &Scratch, single: bool) -> PathBuf {
    let home = scratch.0.join("qmail");
    let mut c = Command::new(programs().join("sqmail-setup"));
    if single {
        c.arg("-s");
    }
    c.args(["-m", "mx.example.org", "-p"])
        .arg(programs())
        .arg(&home);
    let o = run_with(c, b"", 120);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    home
}

fn mode(p: &Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.uid(), m.mode() & 0o7777)
}

#[test]
fn setup_installs_a_certificate_and_the_smtp_services() {
    use sqmail::ids::{Ids, User};
    let root = sqmail::sys::euid() == 0;
    // Single-user, then (as root) multi-user.
    for single in [true, false] {
        if !single && !root {
            continue;
        }
        let scratch = Scratch::new("setup-svc");
        std::fs::set_permissions(&scratch.0, std::fs::Permissions::from_mode(0o755)).unwrap();
        let home = setup(&scratch, single);
        let ids = Ids::load(&home).unwrap();
        let name = |u| String::from_utf8(ids.user_name(u).to_vec()).unwrap();
        let cert = std::fs::read_to_string(home.join("control/servercert.pem")).unwrap();
        let key = std::fs::read_to_string(home.join("control/serverkey.pem")).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let owner = if single {
            ids.uid(User::Root).unwrap()
        } else {
            0
        };
        assert_eq!(mode(&home.join("control/serverkey.pem")), (owner, 0o600));
        assert_eq!(mode(&home.join("control/servercert.pem")), (owner, 0o644));
        assert_eq!(
            std::fs::read_to_string(home.join("control/ssl.env")).unwrap(),
            format!(
                "# Exported to sslserver by the run scripts of the TLS services.\n\
                 CERTFILE={h}/control/servercert.pem\nKEYFILE={h}/control/serverkey.pem\n",
                h = home.display()
            )
        );
        for r in ["smtpd", "smtpsub"] {
            assert!(home.join(format!("control/rules.{r}.txt")).is_file());
            assert!(home.join(format!("control/rules.{r}.cdb")).is_file(), "{r}");
        }
        for svc in [
            "qmail-smtpd",
            "qmail-smtpd-plain",
            "qmail-smtpsd",
            "qmail-smtpsub",
        ] {
            let d = home.join("service").join(svc);
            let run = std::fs::read_to_string(d.join("run")).unwrap();
            assert!(
                run.contains(&format!(
                    "QMAILHOME=${{QMAILHOME:-'{}'}}\nPATH=\"$QMAILHOME/bin:$PATH\"\n",
                    home.display()
                )),
                "{run}"
            );
            assert!(
                run.contains(&format!("USER=${{QMAILDUSER:-'{}'}}\n", name(User::Qmaild))),
                "{run}"
            );
            assert_eq!(mode(&d.join("run")).1, 0o755);
            let log = std::fs::read_to_string(d.join("log/run")).unwrap();
            let logger = if root {
                format!("setuidgid \"${{QMAILLOG:-'{}'}}\" ", name(User::Qmaill))
            } else {
                String::new()
            };
            assert_eq!(
                log,
                format!("#!/bin/sh\nexec {logger}multilog t s2000000 ./main\n")
            );
            assert_eq!(
                mode(&d.join("log/main")),
                (ids.uid(User::Qmaill).unwrap(), 0o750)
            );
        }
        // A second run keeps the certificate.
        let home2 = setup(&scratch, single);
        assert_eq!(
            std::fs::read_to_string(home2.join("control/servercert.pem")).unwrap(),
            cert
        );
    }
}

/// The script, stopped with SIGTERM by pid if a test fails while it runs.
struct Script(std::process::Child);

impl Drop for Script {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let _ = crate::harness::wait_for(30, || self.0.try_wait().ok().flatten());
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Without -x: the servers stay up after the welcome message (SMTPS takes a message with
/// AUTH), and SIGINT, as Ctrl-C sends it, stops everything the script started.
#[test]
fn make_run_keeps_serving_until_interrupted() {
    use crate::harness::wait_for;
    let scratch = Scratch::new("demo-int");
    std::fs::set_permissions(&scratch.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let rundir = scratch.0.join("run");
    let home = rundir.join("qmail");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("sbin/sqmail-demo");
    let (smtp, smtps, sub) = (free_port(), free_port(), free_port());
    let log = scratch.0.join("out");
    let mut child = Script(
        Command::new("sh")
            .arg(&script)
            .arg(programs())
            .arg(&rundir)
            .env_remove("QMAILHOME")
            .env_remove("DEMO_EXIT")
            .env("SMTP_PORT", smtp.to_string())
            .env("SMTPS_PORT", smtps.to_string())
            .env("SUBMISSION_PORT", sub.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    let up = wait_for(240, || {
        text()
            .contains("Ctrl-C stops every process started here.")
            .then_some(())
    });
    assert!(
        up.is_some(),
        "the welcome message did not arrive:\n{}",
        text()
    );
    let md = PathBuf::from(
        text()
            .lines()
            .find_map(|l| l.strip_prefix("sqmail-demo: welcome message arrived: "))
            .unwrap(),
    )
    .parent()
    .unwrap()
    .parent()
    .unwrap()
    .to_path_buf();

    // A message over SMTPS with AUTH, qmail-remote as the client.
    let pw = std::fs::read_to_string(rundir.join("password")).unwrap();
    let me = sqmail::sys::account_by_uid(sqmail::sys::euid())
        .unwrap()
        .unwrap();
    let me = String::from_utf8(me.name).unwrap();
    let client = scratch.0.join("client");
    std::fs::create_dir_all(client.join("control")).unwrap();
    std::fs::write(client.join("control/me"), "client.test\n").unwrap();
    std::fs::copy(
        home.join("control/tlsdestinations"),
        client.join("control/tlsdestinations"),
    )
    .unwrap();
    std::fs::write(
        client.join("control/smtproutes"),
        format!(":127.0.0.1;s{smtps}|{me}@localhost|{}\n", pw.trim()),
    )
    .unwrap();
    let msg = scratch.0.join("msg");
    std::fs::write(&msg, "Subject: over smtps\n\nhello\n").unwrap();
    let o = Command::new(home.join("bin/qmail-remote"))
        .args([
            "localhost",
            &format!("{me}@localhost"),
            &format!("{me}@localhost"),
        ])
        .env("QMAILHOME", &client)
        .stdin(std::fs::File::open(&msg).unwrap())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        report.starts_with("r\0K127.0.0.1 TLS transmitted message accepted."),
        "{report:?}"
    );
    let arrived = wait_for(60, || {
        crate::harness::maildir_new(&md)
            .into_iter()
            .find(|m| String::from_utf8_lossy(m).contains("\nSubject: over smtps\n"))
    });
    let m = String::from_utf8(arrived.expect("the SMTPS message did not arrive")).unwrap();
    // sslserver did the handshake before qmail-smtpd started (SSL_PROTOCOL set, no
    // hand-off): SMTPS on this port too, so S for TLS and A for AUTH.
    assert!(
        m.contains(&format!(
            "({me}@localhost@127.0.0.1)\n  de/crypted with TLSv1.3: "
        )) && m.contains("  by localhost.localdomain with ESMTPSA; "),
        "{m}"
    );

    // Ctrl-C.
    let st = Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let done = wait_for(60, || child.0.try_wait().unwrap());
    let Some(st) = done else {
        panic!("the script did not stop on SIGINT:\n{}", text());
    };
    assert!(st.success(), "{st:?}\n{}", text());
    let out = text();
    let started: Vec<u32> = out
        .lines()
        .filter(|l| l.starts_with("sqmail-demo: "))
        .filter_map(|l| l.rsplit_once(", pid ").and_then(|(_, p)| p.parse().ok()))
        .collect();
    assert_eq!(started.len(), 4, "{out}");
    for p in started {
        assert!(
            !Path::new(&format!("/proc/{p}")).exists(),
            "pid {p} still runs"
        );
    }
    let left = wait_for(20, || instance_processes(&home).is_empty().then_some(()));
    assert!(left.is_some(), "{:?}", instance_processes(&home));
}
