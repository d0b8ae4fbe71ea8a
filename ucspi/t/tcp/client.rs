//! tcpclient against DJB's: the environment and descriptors its program gets for the same
//! server, and its messages; IPv6 against ucspi-tcp6's names.

use std::net::{IpAddr, Ipv6Addr};
use std::process::Command;

use super::{FakeDns, FakeIdent, Server, env_lines, loopback, mask, ours, run, theirs};

/// The program tcpclient runs: it prints its environment, then talks over fds 6 and 7.
const TALK: &str = "env | sort; read g <&6; echo \"greeting=$g\"; echo ping >&7; \
                    read r <&6; echo \"reply=$r\"; ls -l /proc/$$/fd/6 /proc/$$/fd/7 | sed 's/.*-> //'";

fn client(
    bin: &std::path::Path,
    opts: &[&str],
    host: &str,
    port: u16,
    env: &[(&str, &str)],
) -> (Option<i32>, Vec<String>, String) {
    let mut c = Command::new(bin);
    c.args(opts)
        .arg(host)
        .arg(port.to_string())
        .args(["sh", "-c", TALK])
        .env_clear()
        .envs(env.iter().copied());
    let o = run(&mut c, b"");
    let out: Vec<String> = env_lines(&o.stdout)
        .into_iter()
        .map(|l| {
            if l.starts_with("socket:") {
                "socket".into()
            } else {
                l
            }
        })
        .collect();
    (
        o.status.code(),
        out,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn program_environment_and_descriptors_match_djb() {
    let (server_ip, client_ip) = (loopback(), loopback());
    let dns = FakeDns::start(
        &[
            (IpAddr::V4(server_ip), "Server.Example."),
            (IpAddr::V4(client_ip), "client.example."),
        ],
        &[],
    );
    let _ident = FakeIdent::start(server_ip, "srvuser");
    let srv = Server::start(
        &theirs("tcpserver"),
        &["-R", "-H", "-l", "0"],
        &server_ip.to_string(),
        &["sh", "-c", "echo hello; read x; echo \"pong:$x\""],
        &[("PATH", "/usr/bin:/bin")],
    );
    let dnsip = dns.ip.to_string();
    let env = [("PATH", "/usr/bin:/bin"), ("DNSCACHEIP", dnsip.as_str())];
    let cip = client_ip.to_string();
    let sip = server_ip.to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec![],
        vec!["-i", &cip],
        vec!["-R", "-i", &cip],
        vec!["-H", "-i", &cip],
        vec!["-l", "me.local", "-i", &cip],
        vec!["-v", "-R", "-H"],
        vec!["-vDRH", "-T", "3+1"],
        vec!["-q", "-i", &cip],
    ];
    for opts in cases {
        let a = client(&ours("tcpclient"), &opts, &sip, srv.port, &env);
        let b = client(&theirs("tcpclient"), &opts, &sip, srv.port, &env);
        assert_eq!(a, b, "{opts:?}");
        assert_eq!(a.0, Some(0), "{opts:?}: {}", a.2);
        assert!(a.1.contains(&"greeting=hello".to_string()), "{:?}", a.1);
        assert!(a.1.contains(&"reply=pong:ping".to_string()), "{:?}", a.1);
    }
    let a = client(&ours("tcpclient"), &["-i", &cip], &sip, srv.port, &env);
    for want in [
        "TCPREMOTEHOST=server.example",
        "TCPLOCALHOST=client.example",
        "TCPREMOTEINFO=srvuser",
        "PROTO=TCP",
    ] {
        assert!(a.1.contains(&want.to_string()), "{want}: {:?}", a.1);
    }
}

#[test]
fn failures_and_usage_match_djb() {
    let dns = FakeDns::start(&[], &[]);
    let dnsip = dns.ip.to_string();
    let closed = loopback().to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec![],
        vec!["-z"],
        vec!["-i"],
        vec!["-i", "bogus", "127.0.0.1", "1", "true"],
        vec![&closed],
        vec![&closed, "1"],
        vec![&closed, "1", "true"],
        vec!["-q", &closed, "1", "true"],
        vec![&closed, "no-such-service", "true"],
        vec!["no.such.host.", "1", "true"],
        vec!["1.2.3", "1", "true"],
    ];
    for args in cases {
        let mut a = Command::new(ours("tcpclient"));
        a.args(&args).env_clear().env("DNSCACHEIP", &dnsip);
        let mut b = Command::new(theirs("tcpclient"));
        b.args(&args).env_clear().env("DNSCACHEIP", &dnsip);
        let (a, b) = (run(&mut a, b""), run(&mut b, b""));
        assert_eq!(a.status.code(), b.status.code(), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&a.stderr),
            String::from_utf8_lossy(&b.stderr),
            "{args:?}"
        );
    }
}

#[test]
fn ipv6_connections_get_ucspi_tcp6_variables() {
    let dns = FakeDns::start(&[(IpAddr::V6(Ipv6Addr::LOCALHOST), "six.example.")], &[]);
    let srv = Server::start(
        &ours("tcpserver"),
        &["-R", "-H", "-l", "0"],
        "::1",
        &["sh", "-c", "echo hello; read x; echo \"pong:$x\""],
        &[("PATH", "/usr/bin:/bin")],
    );
    let dnsip = dns.ip.to_string();
    let env = [("PATH", "/usr/bin:/bin"), ("DNSCACHEIP", dnsip.as_str())];
    let (code, lines, err) = client(&ours("tcpclient"), &["-v", "-R"], "::1", srv.port, &env);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        mask(&err, &["port "]),
        "tcpclient: connected to ::1 port N\n"
    );
    for want in [
        "PROTO=TCP6",
        "TCPLOCALIP=::1",
        "TCP6LOCALIP=::1",
        "TCPLOCALPORT=N",
        "TCP6LOCALPORT=N",
        "TCPREMOTEIP=::1",
        "TCP6REMOTEIP=::1",
        "TCPREMOTEPORT=N",
        "TCP6REMOTEPORT=N",
        "TCPLOCALHOST=six.example",
        "TCPREMOTEHOST=six.example",
        "greeting=hello",
        "reply=pong:ping",
    ] {
        assert!(lines.contains(&want.to_string()), "{want}: {lines:?}");
    }
    assert!(!lines.iter().any(|l| l.starts_with("TCPREMOTEINFO=")));
}
