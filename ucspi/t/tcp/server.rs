//! tcpserver against DJB's: the environment a program gets, the status lines, rules,
//! limits, errors and signals, for the same connections; IPv6 against ucspi-tcp6's names.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{
    FakeDns, FakeIdent, Scratch, Server, connect, env_lines, exchange, loopback, mask, ours, run,
    theirs,
};

/// The log with pids and ports masked.
fn masked_log(log: &str, port: u16) -> String {
    let l = log.replace(&format!(":{port} "), ":P ");
    let l = mask(&l, &["pid ", "ok ", "deny ", "end "]);
    l.lines()
        .map(|line| {
            if line.starts_with("tcpserver: ok ") || line.starts_with("tcpserver: deny ") {
                let cut = line.rfind(':').map_or(line.len(), |i| i + 1);
                format!("{}R\n", &line[..cut])
            } else {
                format!("{line}\n")
            }
        })
        .collect()
}

/// One connection to a fresh server; returns what the client read and the masked log
/// once the server is idle again.
fn one(
    bin: &std::path::Path,
    opts: &[&str],
    host: IpAddr,
    from: Option<IpAddr>,
    prog: &[&str],
    env: &[(&str, &str)],
) -> (Vec<u8>, String) {
    let s = Server::start(bin, opts, &host.to_string(), prog, env);
    let got = exchange(SocketAddr::new(host, s.port), from, b"");
    let verbose = opts.iter().any(|o| o.starts_with('-') && o.contains('v'));
    if verbose {
        s.wait_ends(1);
        s.wait_log("the final status line", |l| {
            l.lines()
                .last()
                .is_some_and(|x| x.starts_with("tcpserver: status: 0/"))
        });
    } else {
        std::thread::sleep(Duration::from_millis(100));
    }
    (got, masked_log(&s.log(), s.port))
}

fn compile_rules(bin: &std::path::Path, d: &Scratch, name: &str, text: &str) -> String {
    let cdb = d.path(name);
    let o = run(
        Command::new(bin).arg(&cdb).arg(d.path("tmp")),
        text.as_bytes(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    cdb.display().to_string()
}

#[test]
fn program_environment_and_status_lines_match_djb() {
    let (server_ip, client_ip, liar_ip) = (loopback(), loopback(), loopback());
    let dns = FakeDns::start(
        &[
            (IpAddr::V4(server_ip), "Server.Example."),
            (IpAddr::V4(client_ip), "client.EXAMPLE."),
            (IpAddr::V4(liar_ip), "liar.example."),
        ],
        &[
            ("client.example", client_ip),
            ("liar.example", "192.0.2.9".parse().unwrap()),
        ],
    );
    let _ident = FakeIdent::start(client_ip, "joe");
    let d = Scratch::new("env");
    let rules = format!(
        "joe@{client_ip}:allow,RULE=\"info\",TCPREMOTEHOST=\"over.ride\"\n\
         =client.example:allow,RULE=\"host\"\n{client_ip}:allow,RULE=\"ip\"\n\
         :allow,RULE=\"default\",EMPTY=\"\"\n"
    );
    let cdb_theirs = compile_rules(&theirs("tcprules"), &d, "t.cdb", &rules);
    let cdb_ours = compile_rules(&ours("tcprules"), &d, "o.cdb", &rules);
    let dnsip = dns.ip.to_string();
    let env = [
        ("PATH", "/usr/bin:/bin"),
        ("DNSCACHEIP", dnsip.as_str()),
        ("MARKER", "kept"),
    ];
    let cases: Vec<Vec<&str>> = vec![
        vec!["-v"],
        vec!["-v", "-p"],
        vec!["-v", "-H"],
        vec!["-v", "-R"],
        vec!["-v", "-l", "named.local"],
        vec!["-v", "-R", "-H", "-l", "0"],
        vec!["-v", "-x", &cdb_theirs],
        vec!["-v", "-x", &cdb_ours],
        vec!["-v", "-R", "-x", &cdb_theirs],
        vec!["-v", "-H", "-R", "-x", &cdb_ours],
        vec!["-vp", "-x", &cdb_ours],
        vec!["-Q", "-x", &cdb_ours],
    ];
    let liars: Vec<Vec<&str>> = vec![vec!["-v"], vec!["-v", "-p"], vec!["-vp", "-x", &cdb_ours]];
    let runs = cases
        .iter()
        .map(|o| (o, client_ip))
        .chain(liars.iter().map(|o| (o, liar_ip)));
    for (opts, from) in runs {
        let prog = ["/usr/bin/env"];
        let (a, la) = one(
            &ours("tcpserver"),
            opts,
            IpAddr::V4(server_ip),
            Some(IpAddr::V4(from)),
            &prog,
            &env,
        );
        let (b, lb) = one(
            &theirs("tcpserver"),
            opts,
            IpAddr::V4(server_ip),
            Some(IpAddr::V4(from)),
            &prog,
            &env,
        );
        assert_eq!(env_lines(&a), env_lines(&b), "{opts:?} from {from}");
        assert_eq!(la, lb, "{opts:?} from {from}");
        assert!(env_lines(&a).contains(&"MARKER=kept".to_string()));
        let paranoid = opts.iter().any(|o| o.starts_with('-') && o.contains('p'));
        if from == liar_ip {
            let named = env_lines(&a).contains(&"TCPREMOTEHOST=liar.example".to_string());
            assert_eq!(named, !paranoid, "{opts:?}: {:?}", env_lines(&a));
        }
    }
    let (a, la) = one(
        &ours("tcpserver"),
        &["-v"],
        IpAddr::V4(server_ip),
        Some(IpAddr::V4(client_ip)),
        &["/usr/bin/env"],
        &env,
    );
    assert!(
        env_lines(&a).contains(&"TCPLOCALHOST=server.example".to_string()),
        "{:?}",
        env_lines(&a)
    );
    assert!(env_lines(&a).contains(&"TCPREMOTEINFO=joe".to_string()));
    assert!(
        la.contains(&format!(
            "tcpserver: ok N server.example:{server_ip}:P client.example:{client_ip}:joe:R"
        )),
        "{la}"
    );
}

#[test]
fn ipv6_connections_get_ucspi_tcp6_variables() {
    let dns = FakeDns::start(&[(IpAddr::V6(Ipv6Addr::LOCALHOST), "six.example.")], &[]);
    let d = Scratch::new("six");
    let cdb = compile_rules(
        &ours("tcprules"),
        &d,
        "r.cdb",
        "::1:allow,SIX=\"yes\"\n:deny\n",
    );
    let dnsip = dns.ip.to_string();
    let env = [("PATH", "/usr/bin:/bin"), ("DNSCACHEIP", dnsip.as_str())];
    let (out, log) = one(
        &ours("tcpserver"),
        &["-v", "-x", &cdb],
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        None,
        &["/usr/bin/env"],
        &env,
    );
    let want: Vec<String> = [
        "DNSCACHEIP=".to_string() + &dnsip,
        "PATH=/usr/bin:/bin".into(),
        "PROTO=TCP6".into(),
        "SIX=yes".into(),
        "TCP6LOCALHOST=six.example".into(),
        "TCP6LOCALIP=::1".into(),
        "TCP6LOCALPORT=N".into(),
        "TCP6REMOTEHOST=six.example".into(),
        "TCP6REMOTEIP=::1".into(),
        "TCP6REMOTEPORT=N".into(),
        "TCPLOCALHOST=six.example".into(),
        "TCPLOCALIP=::1".into(),
        "TCPLOCALPORT=N".into(),
        "TCPREMOTEHOST=six.example".into(),
        "TCPREMOTEIP=::1".into(),
        "TCPREMOTEPORT=N".into(),
    ]
    .into_iter()
    .collect();
    assert_eq!(env_lines(&out), want);
    assert!(log.contains("tcpserver: pid N from ::1\n"), "{log}");
    assert!(
        log.contains("tcpserver: ok N six.example:::1:P six.example:::1::R\n"),
        "{log}"
    );
}

#[test]
fn ipv4_clients_of_an_ipv6_socket_look_as_on_an_ipv4_socket() {
    let ip = loopback();
    let env = [("PATH", "/usr/bin:/bin"), ("DNSCACHEIP", "127.0.0.1")];
    let mapped = IpAddr::V6(ip.to_ipv6_mapped());
    let s = Server::start(
        &ours("tcpserver"),
        &["-v", "-R", "-H", "-l", "0"],
        &mapped.to_string(),
        &["/usr/bin/env"],
        &env,
    );
    let a = exchange(SocketAddr::new(IpAddr::V4(ip), s.port), None, b"");
    s.wait_ends(1);
    let b = one(
        &theirs("tcpserver"),
        &["-v", "-R", "-H", "-l", "0"],
        IpAddr::V4(ip),
        None,
        &["/usr/bin/env"],
        &env,
    )
    .0;
    assert_eq!(env_lines(&a), env_lines(&b));
    let log = s.log();
    assert!(log.contains(&format!(":{ip}:")), "{log}");
    assert!(!log.contains("ffff"), "{log}");
}

#[test]
fn rules_deny_banners_and_failures_look_as_djbs() {
    let ip = loopback();
    let d = Scratch::new("deny");
    let deny = compile_rules(&theirs("tcprules"), &d, "deny.cdb", ":deny,X=\"1\"\n");
    std::fs::write(d.path("empty.cdb"), b"").unwrap();
    let empty = d.path("empty.cdb").display().to_string();
    let missing = d.path("missing.cdb").display().to_string();
    let env = [("PATH", "/usr/bin:/bin"), ("DNSCACHEIP", "127.0.0.1")];
    let base = ["-v", "-R", "-H", "-l", "0"];
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["-B", "hello\r\n", "-x", &deny], vec!["echo", "never"]),
        (vec!["-x", &missing], vec!["echo", "never"]),
        (vec!["-X", "-x", &missing], vec!["echo", "allowed"]),
        (vec!["-x", &empty], vec!["echo", "never"]),
        (vec!["-B", "banner "], vec!["no-such-program-here"]),
        (vec![], vec!["sh", "-c", "echo crashed; kill -9 $$"]),
        (vec![], vec!["sh", "-c", "exit 3"]),
    ];
    for (extra, prog) in cases {
        let opts: Vec<&str> = base.iter().copied().chain(extra.iter().copied()).collect();
        let a = one(&ours("tcpserver"), &opts, IpAddr::V4(ip), None, &prog, &env);
        let b = one(
            &theirs("tcpserver"),
            &opts,
            IpAddr::V4(ip),
            None,
            &prog,
            &env,
        );
        assert_eq!(a, b, "{opts:?} {prog:?}");
    }
}

#[test]
fn the_limit_defers_connections_and_counts_as_djb() {
    let mut logs = Vec::new();
    for bin in [ours("tcpserver"), theirs("tcpserver")] {
        let ip = loopback();
        let s = Server::start(
            &bin,
            &["-v", "-R", "-H", "-l", "0", "-c", "2"],
            &ip.to_string(),
            &["sh", "-c", "echo hi; read x"],
            &[("PATH", "/usr/bin:/bin")],
        );
        let to = SocketAddr::new(IpAddr::V4(ip), s.port);
        let greet = |c: &mut std::net::TcpStream| {
            let mut b = [0u8; 3];
            c.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"hi\n");
        };
        let mut c1 = connect(to, None);
        greet(&mut c1);
        let mut c2 = connect(to, None);
        greet(&mut c2);
        let mut c3 = connect(to, None);
        c3.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut b = [0u8; 3];
        assert!(c3.read(&mut b).is_err(), "the third connection waits");
        let log = s.log();
        assert_eq!(log.matches(" from ").count(), 2, "{log}");
        assert_eq!(
            log.lines().rfind(|l| l.contains("status:")),
            Some("tcpserver: status: 2/2"),
            "{log}"
        );
        c1.write_all(b"\n").unwrap();
        c3.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        greet(&mut c3);
        c2.write_all(b"\n").unwrap();
        c3.write_all(b"\n").unwrap();
        s.wait_ends(3);
        let log = s.wait_log("all ended", |l| l.ends_with("status: 0/2\n"));
        let parent: String = mask(&log, &["end "])
            .lines()
            .filter(|l| l.contains("status"))
            .map(|l| format!("{l}\n"))
            .collect();
        logs.push(parent);
    }
    assert_eq!(logs[0], logs[1]);
    assert_eq!(logs[0].matches("status: 2/2").count(), 2, "{}", logs[0]);
}

#[test]
fn a_silent_client_does_not_hold_up_others() {
    for bin in [ours("tcpserver"), theirs("tcpserver")] {
        let ip = loopback();
        let s = Server::start(
            &bin,
            &["-R", "-H"],
            &ip.to_string(),
            &["sh", "-c", "read x; echo got $x"],
            &[("PATH", "/usr/bin:/bin")],
        );
        let to = SocketAddr::new(IpAddr::V4(ip), s.port);
        let _silent = connect(to, None);
        let start = Instant::now();
        assert_eq!(exchange(to, None, b"hello\n"), b"got hello\n");
        assert!(start.elapsed() < Duration::from_secs(15));
    }
}

/// The processes whose parent is `pid`.
pub fn children(pid: u32) -> Vec<(u32, char)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let f: Vec<&str> = stat[close + 2..].split(' ').collect();
        if f.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            let id = e.file_name().to_string_lossy().parse().unwrap_or(0);
            out.push((id, f[0].chars().next().unwrap_or('?')));
        }
    }
    out
}

/// The descriptors of `pid` as "number target", sockets without their inode.
pub fn fds(pid: u32) -> HashSet<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .map(|e| {
            let target = std::fs::read_link(e.path())
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            let target = if target.starts_with("socket:") {
                "socket".into()
            } else {
                target
            };
            format!("{} {target}", e.file_name().to_string_lossy())
        })
        .collect()
}

/// Serves `total` connections from 8 clients at once and checks that the server ends with
/// the descriptors it had after its first connection and with no child left.
fn no_leak_after(opts: &[&str], env: &[(&str, &str)], total: usize) {
    let ip = loopback();
    let s = Server::start(
        &ours("tcpserver"),
        opts,
        &ip.to_string(),
        &["echo", "x"],
        env,
    );
    let to = SocketAddr::new(IpAddr::V4(ip), s.port);
    assert_eq!(exchange(to, None, b""), b"x\n");
    s.wait_ends(1);
    let before = fds(s.pid());
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..total / 8 {
                    assert_eq!(exchange(to, None, b""), b"x\n");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let log = s.wait_ends(total + 1);
    s.wait_log("idle", |l| l.ends_with("status: 0/64\n"));
    assert_eq!(fds(s.pid()), before, "descriptors of the server");
    assert!(
        children(s.pid()).is_empty(),
        "children left: {:?}",
        children(s.pid())
    );
    assert_eq!(log.matches("tcpserver: ok ").count(), total + 1);
    let most = log
        .lines()
        .filter_map(|l| l.strip_prefix("tcpserver: status: "))
        .filter_map(|l| l.split('/').next()?.parse::<u32>().ok())
        .max()
        .unwrap();
    assert!(most <= 64, "never more than -c children: {most}");
}

#[test]
fn ten_thousand_spawned_connections_leave_no_zombie_and_no_descriptor() {
    let opts = ["-v", "-R", "-H", "-l", "0", "-c", "64"];
    no_leak_after(&opts, &[("PATH", "/usr/bin:/bin")], 10_000);
}

#[test]
fn ten_thousand_forked_connections_leave_no_zombie_and_no_descriptor() {
    // The ident question (refused: nothing listens on port 113 of 127.0.0.1) makes each
    // connection take a forked child.
    let env = [("PATH", "/usr/bin:/bin")];
    no_leak_after(&["-v", "-H", "-l", "0", "-c", "64"], &env, 10_000);
}

#[test]
fn programs_start_with_default_signals_as_under_djb() {
    let prog = ["sh", "-c", "grep -E '^Sig(Ign|Blk|Cgt)' /proc/self/status"];
    let env = [("PATH", "/usr/bin:/bin")];
    let ip = IpAddr::V4(loopback());
    // Without lookups the program is spawned; with the ident question it runs in a fork.
    for opts in [["-R", "-H", "-l", "0"], ["-r", "-H", "-l", "0"]] {
        let a = one(&ours("tcpserver"), &opts, ip, None, &prog, &env).0;
        let b = one(&theirs("tcpserver"), &opts, ip, None, &prog, &env).0;
        assert_eq!(
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b),
            "{opts:?}"
        );
        let text = String::from_utf8_lossy(&a).into_owned();
        let mask_of = |name: &str| {
            let line = text.lines().find(|l| l.starts_with(name)).unwrap();
            u64::from_str_radix(line.split('\t').nth(1).unwrap(), 16).unwrap()
        };
        assert_eq!(
            mask_of("SigIgn:") & (1 << 12),
            0,
            "SIGPIPE is not ignored: {text}"
        );
        assert_eq!(mask_of("SigBlk:"), 0, "no signal is blocked: {text}");
    }
    let env6 = [("PATH", "/usr/bin:/bin")];
    let mut c = Command::new(ours("tcpclient"));
    let s = Server::start(
        &theirs("tcpserver"),
        &["-R", "-H", "-l", "0"],
        &ip.to_string(),
        &["true"],
        &env6,
    );
    c.args(["-R", "-H", "-l", "0", &ip.to_string(), &s.port.to_string()])
        .args(prog)
        .env_clear()
        .envs(env6);
    let mine = run(&mut c, b"");
    let mut c = Command::new(theirs("tcpclient"));
    c.args(["-R", "-H", "-l", "0", &ip.to_string(), &s.port.to_string()])
        .args(prog)
        .env_clear()
        .envs(env6);
    let djb = run(&mut c, b"");
    assert_eq!(mine.stdout, djb.stdout, "tcpclient's program");
}

#[test]
fn user_and_group_options_as_djb() {
    let prog = ["sh", "-c", "id -u; id -g; id -G"];
    let ip = IpAddr::V4(loopback());
    for (opts, env) in [
        (
            vec!["-R", "-H", "-u", "65534", "-g", "65534"],
            vec![("PATH", "/usr/bin:/bin")],
        ),
        (
            vec!["-R", "-H", "-U"],
            vec![
                ("PATH", "/usr/bin:/bin"),
                ("UID", "65534"),
                ("GID", "65533"),
            ],
        ),
        (vec!["-R", "-H", "-u", "0"], vec![("PATH", "/usr/bin:/bin")]),
    ] {
        let a = one(&ours("tcpserver"), &opts, ip, None, &prog, &env).0;
        let b = one(&theirs("tcpserver"), &opts, ip, None, &prog, &env).0;
        assert_eq!(
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b),
            "{opts:?}"
        );
    }
}

#[test]
fn sigterm_ends_the_server_with_exit_0_as_djbs() {
    for bin in [ours("tcpserver"), theirs("tcpserver")] {
        let ip = loopback();
        let mut s = Server::start(
            &bin,
            &[],
            &ip.to_string(),
            &["true"],
            &[("PATH", "/usr/bin:/bin")],
        );
        sqmail::sys::proc::kill(s.pid(), sqmail::sys::proc::Signal::Terminate).unwrap();
        let status = s.child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{}", bin.display());
    }
}

#[test]
fn usage_and_fatal_errors_match_djb() {
    let busy = loopback();
    let holder = Server::start(
        &ours("tcpserver"),
        &[],
        &busy.to_string(),
        &["true"],
        &[("PATH", "/usr/bin:/bin")],
    );
    let dns = FakeDns::start(&[], &[]);
    let dnsip = dns.ip.to_string();
    let port = holder.port.to_string();
    let busy = busy.to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec![],
        vec!["-z"],
        vec!["-vz", "0", "1", "x"],
        vec!["-c"],
        vec!["-q"],
        vec!["-q", "-z"],
        vec!["127.0.0.1"],
        vec!["127.0.0.1", "25"],
        vec!["127.0.0.1", "no-such-service", "true"],
        vec!["192.0.2.1", "0", "true"],
        vec!["-q", "192.0.2.1", "0", "true"],
        vec![&busy, &port, "true"],
        vec!["no.such.host.", "0", "true"],
        vec!["1.2.3", "0", "true"],
    ];
    for args in cases {
        let mut a = Command::new(ours("tcpserver"));
        a.args(&args).env_clear().env("DNSCACHEIP", &dnsip);
        let mut b = Command::new(theirs("tcpserver"));
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

/// A program from Debian's ucspi-tcp-ipv6 (DJB's 0.88 with the IPv6 patch). The package
/// conflicts with ucspi-tcp, so its .deb is fetched with `apt-get download` and unpacked
/// under the target directory; a failed download fails the test.
pub fn theirs_ipv6(name: &str) -> std::path::PathBuf {
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ucspi-tcp-ipv6");
    let bin = cache.join("usr/bin").join(name);
    if bin.exists() {
        return bin;
    }
    let d = Scratch::new("ipv6-deb");
    let o = Command::new("apt-get")
        .args(["download", "ucspi-tcp-ipv6"])
        .current_dir(&d.0)
        .output()
        .expect("apt-get is needed to fetch the peer ucspi-tcp-ipv6");
    assert!(
        o.status.success(),
        "peer ucspi-tcp-ipv6 is missing: `apt-get download ucspi-tcp-ipv6` failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let deb = std::fs::read_dir(&d.0)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("apt-get download left no .deb");
    let unpacked = d.path("x");
    let o = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&unpacked)
        .output()
        .expect("dpkg-deb is needed to unpack ucspi-tcp-ipv6");
    assert!(
        o.status.success(),
        "dpkg-deb -x failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Another test may have won the race; either copy will do.
    let _ = std::fs::rename(&unpacked, &cache);
    assert!(bin.exists(), "{} is not in ucspi-tcp-ipv6", bin.display());
    bin
}

#[test]
fn ipv6_program_environment_and_status_lines_match_djbs_ipv6_tcpserver() {
    let dns = FakeDns::start(&[(IpAddr::V6(Ipv6Addr::LOCALHOST), "six.example.")], &[]);
    let d = Scratch::new("six-djb");
    let rules = "::1:allow,SIX=\"yes\"\n:deny\n";
    let cdb_theirs = compile_rules(&theirs_ipv6("tcprules"), &d, "t.cdb", rules);
    let cdb_ours = compile_rules(&ours("tcprules"), &d, "o.cdb", rules);
    let dnsip = dns.ip.to_string();
    let env = [
        ("PATH", "/usr/bin:/bin"),
        ("DNSCACHEIP", dnsip.as_str()),
        ("MARKER", "kept"),
    ];
    let cases: Vec<Vec<&str>> = vec![
        vec!["-v", "-R", "-H", "-l", "0"],
        vec!["-v", "-R"],
        vec!["-v", "-R", "-p"],
        vec!["-v", "-R", "-l", "named.local"],
        vec!["-v", "-R", "-x", "RULES"],
        vec!["-v", "-R", "-H", "-x", "RULES"],
    ];
    let six = IpAddr::V6(Ipv6Addr::LOCALHOST);
    for opts in cases {
        let prog = ["/usr/bin/env"];
        // Each server reads the database the other's tcprules wrote.
        let with = |cdb: &str| -> Vec<String> {
            opts.iter()
                .map(|o| if *o == "RULES" { cdb } else { o }.to_string())
                .collect()
        };
        let (ao, bo) = (with(&cdb_theirs), with(&cdb_ours));
        let ao: Vec<&str> = ao.iter().map(String::as_str).collect();
        let bo: Vec<&str> = bo.iter().map(String::as_str).collect();
        let (a, la) = one(&ours("tcpserver"), &ao, six, None, &prog, &env);
        let (b, lb) = one(&theirs_ipv6("tcpserver"), &bo, six, None, &prog, &env);
        assert_eq!(env_lines(&a), env_lines(&b), "{opts:?}");
        assert_eq!(la, lb, "{opts:?}");
        assert!(
            env_lines(&a).contains(&"PROTO=TCP6".to_string()),
            "{opts:?}"
        );
        assert!(env_lines(&a).contains(&"MARKER=kept".to_string()));
    }
}

/// `-I interface` and `address%interface` name the interface of an IPv6 address to bind
/// (ucspi-tcp6); an unknown interface is a fatal error.
#[test]
fn an_interface_can_be_named_for_an_ipv6_address() {
    for (opts, host) in [(vec!["-I", "lo"], "::1"), (vec![], "::1%lo")] {
        let mut o = vec!["-H", "-R", "-l", "0"];
        o.extend(opts);
        let s = Server::start(&ours("tcpserver"), &o, host, &["echo", "hi"], &[]);
        let to = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), s.port);
        assert_eq!(exchange(to, None, b""), b"hi\n", "{host}");
    }
    let o = run(
        Command::new(ours("tcpserver")).args(["-I", "nosuchif9", "::1", "0", "true"]),
        b"",
    );
    assert_eq!(o.status.code(), Some(111));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "tcpserver: fatal: unknown interface nosuchif9\n"
    );
}
