//! tcpserver, tcpclient, tcprules, tcprulescheck and the small tools against Debian's
//! ucspi-tcp (DJB's 0.88): the same inputs given to both, outputs compared byte for byte.
//! The peers are found in /usr/bin; a missing peer fails the test.

mod client;
mod docs;
mod rules;
pub mod server;
mod tools;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One of our programs.
pub fn ours(name: &str) -> PathBuf {
    let tcpserver = Path::new(env!("CARGO_BIN_EXE_tcpserver"));
    tcpserver.with_file_name(name)
}

/// The same program from Debian's ucspi-tcp; a missing one fails the test.
pub fn theirs(name: &str) -> PathBuf {
    let p = Path::new("/usr/bin").join(name);
    assert!(
        p.exists(),
        "peer {} is missing: install Debian's ucspi-tcp (make deps)",
        p.display()
    );
    p
}

static NEXT: AtomicU32 = AtomicU32::new(1);

/// A unique number for this test process.
pub fn unique() -> u32 {
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A loopback address of our own (all of 127/8 is loopback on Linux), so servers, fake DNS
/// servers and fake ident servers of parallel tests never meet.
pub fn loopback() -> Ipv4Addr {
    let mut n = unique();
    if n % 250 + 2 == 53 {
        // x.x.x.53 is where the rblsmtpd tests put their DNS server.
        n = unique();
    }
    let p = std::process::id();
    let b = u8::try_from(20 + p % 200).unwrap();
    let c = u8::try_from((n / 250) % 250).unwrap();
    let d = u8::try_from(n % 250 + 2).unwrap();
    Ipv4Addr::new(127, b, c, d)
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "ucspi-{tag}-{}-{}",
            std::process::id(),
            unique()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a command to completion with stdin, a deadline of 30 s.
pub fn run(cmd: &mut Command, input: &[u8]) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("command did not finish in 30 s: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = feeder.join();
    child.wait_with_output().unwrap()
}

/// A server started with `-1` on port 0, stderr going to a file.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
    _dir: Scratch,
}

impl Server {
    /// Starts `bin opts... host 0 prog...` with exactly the environment `env`.
    pub fn start(
        bin: &Path,
        opts: &[&str],
        host: &str,
        prog: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let dir = Scratch::new("srv");
        let log = dir.path("log");
        let mut cmd = Command::new(bin);
        cmd.arg("-1")
            .args(opts)
            .arg(host)
            .arg("0")
            .args(prog)
            .env_clear()
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut child = cmd.spawn().unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while out.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
            line.push(b[0]);
        }
        let port = String::from_utf8(line)
            .unwrap()
            .trim()
            .parse()
            .unwrap_or_else(|_| {
                panic!(
                    "no port from {}: {}",
                    bin.display(),
                    std::fs::read_to_string(&log).unwrap()
                )
            });
        Server {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server wrote to fd 2 so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// Waits (up to 20 s) until the log satisfies `f`.
    pub fn wait_log(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let l = self.log();
            if f(&l) {
                return l;
            }
            assert!(Instant::now() < deadline, "waiting for {what}; log:\n{l}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until `n` connections have ended (`end` lines, needs `-v`).
    pub fn wait_ends(&self, n: usize) -> String {
        self.wait_log(&format!("{n} end lines"), |l| {
            l.lines()
                .filter(|x| x.starts_with("tcpserver: end "))
                .count()
                >= n
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects (from `from` when given) and returns everything the server sends until it
/// closes, after writing `input` and shutting down the write side.
pub fn exchange(to: SocketAddr, from: Option<IpAddr>, input: &[u8]) -> Vec<u8> {
    let s = connect(to, from);
    let mut s = s;
    s.write_all(input).unwrap();
    let _ = s.shutdown(std::net::Shutdown::Write);
    read_all(&mut s)
}

/// A connection to `to`, from the address `from` when given.
pub fn connect(to: SocketAddr, from: Option<IpAddr>) -> TcpStream {
    let local = from.map(|ip| SocketAddr::new(ip, 0));
    let s = sqmail::sys::tcp_connect(local.as_ref(), &to, Duration::from_secs(10)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Reads until end of file (or a 20 s timeout, which fails the test).
pub fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    s.read_to_end(&mut v).expect("read from server");
    v
}

/// Replaces each run of digits right after one of `keys` by `N` (pids, ports).
pub fn mask(text: &str, keys: &[&str]) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut l = line.to_string();
        for k in keys {
            let mut done = String::new();
            let mut rest = l.as_str();
            while let Some(i) = rest.find(k) {
                done.push_str(&rest[..i + k.len()]);
                rest = &rest[i + k.len()..];
                let d = rest
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(rest.len());
                if d > 0 {
                    done.push('N');
                }
                rest = &rest[d..];
            }
            done.push_str(rest);
            l = done;
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// A DNS server for one test: PTR and A answers from tables, NXDOMAIN for the rest, on
/// port 53 of a loopback address of its own (DJB's resolver always uses port 53).
pub struct FakeDns {
    pub ip: Ipv4Addr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn qname(p: &[u8]) -> Option<(String, usize)> {
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let n = usize::from(*p.get(pos)?);
        if n == 0 {
            return Some((labels.join("."), pos + 1));
        }
        labels.push(String::from_utf8_lossy(p.get(pos + 1..pos + 1 + n)?).to_lowercase());
        pos += 1 + n;
    }
}

fn encode(name: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for l in name.split('.').filter(|l| !l.is_empty()) {
        v.push(u8::try_from(l.len()).unwrap());
        v.extend_from_slice(l.as_bytes());
    }
    v.push(0);
    v
}

/// The reverse name of an address, as the tables use it.
pub fn arpa(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(a) => {
            let mut s = String::new();
            for b in a.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 15, b >> 4));
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

impl FakeDns {
    /// `ptr`: address → name; `a`: lower-case name → IPv4 address.
    pub fn start(ptr: &[(IpAddr, &str)], a: &[(&str, Ipv4Addr)]) -> FakeDns {
        let ip = loopback();
        let sock = UdpSocket::bind((ip, 53)).expect("bind a fake DNS server on port 53 (root)");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let ptr: Vec<(String, String)> =
            ptr.iter().map(|(i, n)| (arpa(*i), n.to_string())).collect();
        let a: Vec<(String, Ipv4Addr)> = a.iter().map(|(n, i)| (n.to_string(), *i)).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !s2.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let q = &buf[..n];
                let Some((name, end)) = qname(q) else {
                    continue;
                };
                let qtype = u16::from_be_bytes([q[end], q[end + 1]]);
                let mut answers: Vec<Vec<u8>> = Vec::new();
                let mut rr = |ty: u16, data: Vec<u8>| {
                    let mut r = vec![0xc0, 12];
                    r.extend_from_slice(&ty.to_be_bytes());
                    r.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
                    r.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
                    r.extend_from_slice(&data);
                    answers.push(r);
                };
                if qtype == 12 {
                    for (k, v) in &ptr {
                        if *k == name {
                            rr(12, encode(v));
                        }
                    }
                } else if qtype == 1 {
                    for (k, v) in &a {
                        if *k == name {
                            rr(1, v.octets().to_vec());
                        }
                    }
                }
                let mut r = q[..end + 4].to_vec();
                r[2] = 0x81;
                r[3] = if answers.is_empty() { 0x83 } else { 0x80 };
                r[6] = 0;
                r[7] = u8::try_from(answers.len()).unwrap();
                for x in answers {
                    r.extend_from_slice(&x);
                }
                let _ = sock.send_to(&r, from);
            }
        });
        FakeDns {
            ip,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An ident server on port 113 of `ip`, answering every question with `user`.
pub struct FakeIdent {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeIdent {
    pub fn start(ip: Ipv4Addr, user: &str) -> FakeIdent {
        let l = std::net::TcpListener::bind((ip, 113)).expect("bind port 113 (root)");
        l.set_nonblocking(true).unwrap();
        let user = user.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let thread = std::thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                let Ok((mut s, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut q = Vec::new();
                let mut b = [0u8; 1];
                while s.read(&mut b).unwrap_or(0) == 1 && b[0] != b'\n' {
                    q.push(b[0]);
                }
                let q = String::from_utf8_lossy(&q).trim().to_string();
                let _ = s.write_all(format!("{q} : USERID : UNIX : {user}\r\n").as_bytes());
            }
        });
        FakeIdent {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeIdent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The environment lines of `env` output, sorted, with the port variables masked.
pub fn env_lines(out: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = String::from_utf8_lossy(out)
        .lines()
        .map(|l| {
            for k in [
                "TCPLOCALPORT=",
                "TCPREMOTEPORT=",
                "TCP6LOCALPORT=",
                "TCP6REMOTEPORT=",
            ] {
                if l.starts_with(k) {
                    return format!("{k}N");
                }
            }
            l.to_string()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn mask_replaces_numbers_after_keys() {
    assert_eq!(
        mask(
            "tcpserver: pid 12 from 1.2.3.4\nx end 7 status 0",
            &["pid ", "end "]
        ),
        "tcpserver: pid N from 1.2.3.4\nx end N status 0\n"
    );
}
