//! addcr, delcr, fixcrio, recordio and argv0 against DJB's, and the programs of each side
//! running under the other side's tcpserver.

use std::net::{IpAddr, SocketAddr};
use std::process::Command;

use super::{Server, exchange, loopback, ours, run, theirs};

fn inputs() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "",
        "\n",
        "\r",
        "\r\n",
        "a\nb\r\nc\r\r\nd\r",
        "\r\r\n\n\r",
        "no newline",
        "x\ry\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let mut x: u64 = 12345;
    for len in [1, 7, 255, 256, 257, 511, 4095, 8191, 8192, 8193, 20000] {
        let mut s = Vec::with_capacity(len);
        for _ in 0..len {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            s.push([b'a', b'\r', b'\n', b'\0', 0xff][usize::try_from(x >> 61).unwrap() % 5]);
        }
        v.push(s);
    }
    v
}

#[test]
fn addcr_and_delcr_match_djb() {
    for name in ["addcr", "delcr"] {
        for input in inputs() {
            let a = run(&mut Command::new(ours(name)), &input);
            let b = run(&mut Command::new(theirs(name)), &input);
            assert_eq!(
                (a.status.code(), &a.stdout, &a.stderr),
                (b.status.code(), &b.stdout, &b.stderr),
                "{name} {input:?}"
            );
        }
        let full = |bin: &std::path::Path| {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap();
            let mut c = Command::new(bin);
            c.stdin(std::process::Stdio::piped())
                .stdout(f)
                .stderr(std::process::Stdio::piped());
            let mut child = c.spawn().unwrap();
            std::io::Write::write_all(child.stdin.as_mut().unwrap(), &[b'\n'; 100_000]).ok();
            drop(child.stdin.take());
            child.wait_with_output().unwrap().status.code()
        };
        assert_eq!(
            full(&ours(name)),
            full(&theirs(name)),
            "{name} on a full disk"
        );
        assert_eq!(full(&ours(name)), Some(111));
    }
}

#[test]
fn fixcrio_matches_djb() {
    let prog = ["sh", "-c", "cat; printf 'x\\ny\\r\\nz\\r'"];
    for input in inputs() {
        let a = run(Command::new(ours("fixcrio")).args(prog), &input);
        let b = run(Command::new(theirs("fixcrio")).args(prog), &input);
        assert_eq!(
            (a.status.code(), &a.stdout),
            (b.status.code(), &b.stdout),
            "{input:?}"
        );
    }
}

/// recordio's log split by direction, pids masked.
fn directions(log: &[u8]) -> (Vec<String>, Vec<String>) {
    let log = String::from_utf8_lossy(log);
    let lead = |l: &str| format!("N{}", l.trim_start_matches(|c: char| c.is_ascii_digit()));
    let pick = |d: &str| -> Vec<String> {
        log.lines()
            .map(lead)
            .filter(|l| l.starts_with(&format!("N {d} ")))
            .collect()
    };
    (pick("<"), pick(">"))
}

#[test]
fn recordio_logs_as_djb() {
    for input in [
        "hello\nworld",
        "one line\n",
        "",
        "a\n\nb\n\n",
        "tab\tand \u{1}ctl\n",
    ] {
        let a = run(Command::new(ours("recordio")).arg("cat"), input.as_bytes());
        let b = run(
            Command::new(theirs("recordio")).arg("cat"),
            input.as_bytes(),
        );
        assert_eq!(a.stdout, b.stdout, "{input:?}");
        assert_eq!(directions(&a.stderr), directions(&b.stderr), "{input:?}");
        assert_eq!(a.status.code(), b.status.code());
    }
    let a = run(Command::new(ours("recordio")).arg("cat"), b"hello\nworld");
    let (into, out) = directions(&a.stderr);
    assert_eq!(into, ["N < hello ", "N < world+", "N < [EOF]"]);
    assert_eq!(out, ["N > hello ", "N > world+", "N > [EOF]"]);
    let pid_line = String::from_utf8_lossy(&a.stderr);
    let pid = pid_line.split(' ').next().unwrap();
    assert!(pid.parse::<u32>().is_ok(), "{pid_line}");
}

#[test]
fn usage_and_exec_errors_of_the_wrappers_match_djb() {
    for (name, args) in [
        ("recordio", vec![]),
        ("fixcrio", vec![]),
        ("argv0", vec![]),
        ("argv0", vec!["sh"]),
        ("recordio", vec!["no-such-program-here"]),
        ("fixcrio", vec!["no-such-program-here"]),
        ("argv0", vec!["no-such-program-here", "x"]),
        ("argv0", vec!["/etc", "x"]),
        ("argv0", vec!["/etc/passwd", "x"]),
        (
            "argv0",
            vec!["sh", "named", "-c", "echo $0; echo \"$@\"", "a", "b"],
        ),
        ("argv0", vec!["/bin/sh", "", "-c", "echo [$0]"]),
    ] {
        let a = run(
            Command::new(ours(name))
                .args(&args)
                .env("PATH", "/usr/bin:/bin"),
            b"",
        );
        let b = run(
            Command::new(theirs(name))
                .args(&args)
                .env("PATH", "/usr/bin:/bin"),
            b"",
        );
        assert_eq!(a.status.code(), b.status.code(), "{name} {args:?}");
        assert_eq!(a.stdout, b.stdout, "{name} {args:?}");
        // The copier's [EOF] lines after a failed exec race with the exit, in both.
        let lead = |e: &[u8]| {
            String::from_utf8_lossy(e)
                .lines()
                .filter(|l| !l.ends_with("[EOF]"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(lead(&a.stderr), lead(&b.stderr), "{name} {args:?}");
    }
}

/// A tcpserver of one side running the small programs of the other (and of its own side,
/// for reference): fixcrio, argv0 and recordio chained in front of a shell.
#[test]
fn each_tcpserver_runs_the_other_sides_programs() {
    let run_chain = |server: &std::path::Path, tools: &dyn Fn(&str) -> std::path::PathBuf| {
        let ip = loopback();
        let fixcrio = tools("fixcrio").display().to_string();
        let argv0 = tools("argv0").display().to_string();
        let recordio = tools("recordio").display().to_string();
        let prog = [
            fixcrio.as_str(),
            argv0.as_str(),
            "/bin/sh",
            "named",
            "-c",
            "echo \"$0 $PROTO\"; read x; echo \"got $x\"",
        ];
        let s = Server::start(
            server,
            &["-R", "-H", "-l", "0"],
            &ip.to_string(),
            &prog,
            &[("PATH", "/usr/bin:/bin")],
        );
        let a = exchange(SocketAddr::new(IpAddr::V4(ip), s.port), None, b"line\n");
        let prog2 = [recordio.as_str(), "cat"];
        let s2 = Server::start(
            server,
            &["-R", "-H", "-l", "0"],
            &ip.to_string(),
            &prog2,
            &[("PATH", "/usr/bin:/bin")],
        );
        let b = exchange(SocketAddr::new(IpAddr::V4(ip), s2.port), None, b"echo me\n");
        std::thread::sleep(std::time::Duration::from_millis(100));
        (a, b, directions(s2.log().as_bytes()))
    };
    let reference = run_chain(&theirs("tcpserver"), &theirs);
    assert_eq!(reference.0, b"named TCP\r\ngot line\r\n");
    assert_eq!(
        run_chain(&theirs("tcpserver"), &ours),
        reference,
        "DJB's tcpserver, our programs"
    );
    assert_eq!(
        run_chain(&ours("tcpserver"), &theirs),
        reference,
        "our tcpserver, DJB's programs"
    );
    assert_eq!(
        run_chain(&ours("tcpserver"), &ours),
        reference,
        "ours throughout"
    );
}
