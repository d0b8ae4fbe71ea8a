//! rblsmtpd against dnsmasq, compared byte for byte with Debian's rblsmtpd (ucspi-tcp
//! 0.88) for the same inputs. dnsmasq listens on port 53 of a loopback address of its own
//! (djbdns's resolver in Debian's rblsmtpd cannot use another port), and our rblsmtpd is
//! also run against a second dnsmasq on a free port through `DNSCACHEIP=ip:port`.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const RBLSMTPD: &str = env!("CARGO_BIN_EXE_rblsmtpd");
const DEBIAN: &str = "/usr/bin/rblsmtpd";

struct Dnsmasq(Child);

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dnsmasq(ip: &str, port: u16) -> Dnsmasq {
    let child = Command::new("dnsmasq")
        .args([
            "--no-daemon",
            "--no-resolv",
            "--no-hosts",
            "--conf-file=/dev/null",
            &format!("--port={port}"),
            &format!("--listen-address={ip}"),
            "--bind-interfaces",
            "--user=root",
            "--local=/rbl.test/",
            "--local=/white.test/",
            "--txt-record=2.0.0.127.rbl.test,listed: see http://rbl.test/?127.0.0.2",
            "--txt-record=5.0.0.127.rbl.test,first part,second part",
            "--host-record=3.0.0.127.white.test,127.0.0.2",
            "--host-record=2.0.0.127.white.test,127.0.0.2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dnsmasq (package dnsmasq-base)");
    std::thread::sleep(Duration::from_millis(500));
    Dnsmasq(child)
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs an rblsmtpd with the environment and input; returns stdout+stderr with the pid
/// replaced by `N`, and the exit code.
fn run(
    prog: &str,
    dnscache: &str,
    env: &[(&str, &str)],
    args: &[&str],
    input: &[u8],
) -> (String, Option<i32>) {
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .args(["sh", "-c", "echo accepted"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("DNSCACHEIP", dnscache)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut c = cmd.spawn().unwrap();
    let _ = c.stdin.take().unwrap().write_all(input);
    let o = c.wait_with_output().unwrap();
    let mut t = String::from_utf8_lossy(&o.stderr).into_owned();
    t.push_str(&String::from_utf8_lossy(&o.stdout));
    let re = t
        .split(" pid ")
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part.to_string()
            } else {
                let rest = part.trim_start_matches(|c: char| c.is_ascii_digit());
                format!(" pid N{rest}")
            }
        })
        .collect::<String>();
    (re, o.status.code())
}

const SMTP: &[u8] = b"HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nnoop\r\nQUIT\r\n";

#[test]
fn rblsmtpd_matches_debians_for_the_same_inputs() {
    let ip = format!(
        "127.{}.{}.53",
        (std::process::id() >> 8) & 0xff,
        std::process::id() & 0xff
    );
    let _d = dnsmasq(&ip, 53);
    let port = free_udp_port();
    let _d2 = dnsmasq("127.0.0.1", port);
    let ours_dns = format!("127.0.0.1:{port}");
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case<'_>] = &[
        (
            "listed",
            &[("TCPREMOTEIP", "127.0.0.2")],
            &["-r", "rbl.test"],
        ),
        (
            "listed -b",
            &[("TCPREMOTEIP", "127.0.0.2")],
            &["-b", "-r", "rbl.test"],
        ),
        (
            "two strings",
            &[("TCPREMOTEIP", "127.0.0.5")],
            &["-r", "rbl.test"],
        ),
        (
            "not listed",
            &[("TCPREMOTEIP", "127.0.0.4")],
            &["-r", "rbl.test"],
        ),
        (
            "anti-rbl first",
            &[("TCPREMOTEIP", "127.0.0.2")],
            &["-a", "white.test", "-r", "rbl.test"],
        ),
        (
            "anti-rbl after",
            &[("TCPREMOTEIP", "127.0.0.2")],
            &["-r", "rbl.test", "-a", "white.test"],
        ),
        (
            "RBLSMTPD empty",
            &[("TCPREMOTEIP", "127.0.0.2"), ("RBLSMTPD", "")],
            &["-r", "rbl.test"],
        ),
        (
            "RBLSMTPD -",
            &[("TCPREMOTEIP", "127.0.0.4"), ("RBLSMTPD", "-go away")],
            &["-r", "rbl.test"],
        ),
        (
            "RBLSMTPD text",
            &[("TCPREMOTEIP", "127.0.0.4"), ("RBLSMTPD", "try later\x01")],
            &["-r", "rbl.test"],
        ),
        (
            "-t 0",
            &[("TCPREMOTEIP", "127.0.0.2")],
            &["-t", "0", "-r", "rbl.test"],
        ),
        (
            "refused -C",
            &[("TCPREMOTEIP", "127.0.0.2")],
            &["-r", "other.test", "-r", "rbl.test", "-b"],
        ),
        (
            "refused -c",
            &[("TCPREMOTEIP", "127.0.0.2")],
            &["-c", "-r", "other.test"],
        ),
        ("usage", &[("TCPREMOTEIP", "127.0.0.2")], &["-k"]),
    ];
    for (name, env, args) in cases {
        let (ours, ours_code) = run(RBLSMTPD, &ours_dns, env, args, SMTP);
        let (ours53, _) = run(RBLSMTPD, &ip, env, args, SMTP);
        let (theirs, their_code) = run(DEBIAN, &ip, env, args, SMTP);
        if *name == "usage" {
            assert_eq!(ours_code, Some(100), "{name}");
            assert_eq!(their_code, Some(100), "{name}");
            continue;
        }
        assert_eq!(ours, theirs, "{name}: ours vs Debian's");
        assert_eq!(ours53, theirs, "{name}: port 53 form");
        assert_eq!(ours_code, their_code, "{name}: exit code");
    }
    let (t, _) = run(RBLSMTPD, &ours_dns, cases[0].1, cases[0].2, SMTP);
    assert!(
        t.starts_with("rblsmtpd: 127.0.0.2 pid N: 451 listed: see http://rbl.test/?127.0.0.2\n"),
        "{t}"
    );
    assert!(
        t.contains("220 rblsmtpd.local\r\n250 rblsmtpd.local\r\n250 rblsmtpd.local\r\n451 listed"),
        "{t}"
    );
}

#[test]
fn rblsmtpd_timeout_ends_the_conversation_silently() {
    let mut c = Command::new(RBLSMTPD)
        .args(["-t", "1", "sh", "-c", "echo accepted"])
        .env("RBLSMTPD", "blocked")
        .env("TCPREMOTEIP", "192.0.2.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = c.stdin.take().unwrap();
    let o = c.wait_with_output().unwrap();
    drop(stdin);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(o.stdout, b"220 rblsmtpd.local\r\n");
}
