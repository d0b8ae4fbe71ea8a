//! The shared test harness: fresh instances made by the same code as `make setup`, and
//! helpers to run the real programs with a deadline.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sqmail::setup::{self, Mode, Plan};
use sqmail::sys;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The directory holding the programs cargo built for these tests.
pub fn programs() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_qmail-queue"))
        .parent()
        .expect("bin dir")
        .to_path_buf()
}

/// A unique scratch directory under cargo's target tmp dir, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let p = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("scratch dir");
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A private qmail instance, single-user, owned by whoever runs the tests.
pub struct Instance {
    pub home: PathBuf,
    _scratch: Scratch,
}

impl Instance {
    pub fn new() -> Instance {
        let scratch = Scratch::new("inst");
        let home = scratch.0.join("qmail");
        let me = sys::account_by_uid(sys::euid()).unwrap().unwrap();
        let group = sys::group_name(sys::egid()).unwrap().unwrap();
        let plan = Plan {
            home: home.clone(),
            mode: Mode::Single {
                user: me.name,
                group,
            },
            programs: Some(programs()),
            link: true,
            me: Some(b"test.example".to_vec()),
            split: sqmail::queue::DEFAULT_SPLIT,
        };
        setup::install(&plan, &mut |_| {}).expect("setup");
        Instance {
            home,
            _scratch: scratch,
        }
    }

    pub fn bin(&self, prog: &str) -> PathBuf {
        self.home.join("bin").join(prog)
    }

    /// A command for one of the instance's programs, with QMAILHOME set and a clean
    /// environment (PATH kept).
    pub fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new(self.bin(prog));
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("QMAILHOME", &self.home);
        c
    }

    pub fn control(&self, name: &str, body: &[u8]) {
        std::fs::write(self.home.join("control").join(name), body).unwrap();
    }

    /// Every regular file under queue/ except lock/, as (path relative to queue/, bytes).
    pub fn queue_files(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        walk(&self.home.join("queue"), &self.home.join("queue"), &mut out);
        out.sort();
        out
    }

    /// The files in one queue directory (`mess`, `todo`, ...), as (relative path, bytes).
    pub fn queue_dir(&self, dir: &str) -> Vec<(String, Vec<u8>)> {
        self.queue_files()
            .into_iter()
            .filter(|(p, _)| p.starts_with(&format!("{dir}/")))
            .collect()
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if rel == "lock" {
            continue;
        }
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            walk(root, &p, out);
        } else if ft.is_file() {
            out.push((rel, std::fs::read(&p).unwrap()));
        }
    }
}

/// The inode number of a file.
pub fn inode(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().ino()
}

/// Runs a command with `input` on fd 0, waiting at most `secs`; the child is killed by pid
/// if it overstays. Output is read while the child runs, so a chatty program cannot block.
/// Fails the test unless it runs as root; `why` says what needs root.
pub fn must_be_root(why: &str) {
    assert_eq!(sys::euid(), 0, "{why}: this test must run as root");
}

pub fn run_with(mut c: Command, input: &[u8], secs: u64) -> Output {
    use std::io::Read;
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("command did not finish within {secs} s: {c:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = feeder.join();
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Runs qmail-queue of `inst` with `message` on fd 0 and `envelope` on fd 1; returns
/// (exit code, pid).
pub fn qmail_queue(inst: &Instance, message: &[u8], envelope: &[u8]) -> (i32, u32) {
    qmail_queue_cmd(inst.cmd("qmail-queue"), message, envelope)
}

/// Runs a qmail-queue command with the message on fd 0 and the envelope on fd 1.
pub fn qmail_queue_cmd(mut c: Command, message: &[u8], envelope: &[u8]) -> (i32, u32) {
    let (r, mut w) = std::io::pipe().unwrap();
    c.stdin(Stdio::piped())
        .stdout(Stdio::from(r))
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn qmail-queue");
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let m = message.to_vec();
    let e = envelope.to_vec();
    let t = std::thread::spawn(move || {
        let _ = stdin.write_all(&m);
        drop(stdin);
        let _ = w.write_all(&e);
    });
    let out = child.wait_with_output().unwrap();
    let _ = t.join();
    (out.status.code().unwrap_or(-1), pid)
}

/// An instance owned by an unprivileged account, as deliveries need: the invoking user, or
/// when that is root the `sqmail` account that single-user setup creates.
pub struct Owned {
    pub inst: Instance,
    pub uid: u32,
    pub gid: u32,
}

impl Owned {
    pub fn new() -> Owned {
        let scratch = Scratch::new("owned");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&scratch.0, std::fs::Permissions::from_mode(0o755)).unwrap();
        let home = scratch.0.join("qmail");
        let mode = setup::single_mode(&mut |_| {}).expect("single-user mode");
        let Mode::Single { user, .. } = &mode else {
            unreachable!()
        };
        let acct = sys::account(user).unwrap().unwrap();
        let plan = Plan {
            home: home.clone(),
            mode,
            programs: Some(programs()),
            link: true,
            me: Some(b"test.example".to_vec()),
            split: sqmail::queue::DEFAULT_SPLIT,
        };
        setup::install(&plan, &mut |_| {}).expect("setup");
        Owned {
            inst: Instance {
                home,
                _scratch: scratch,
            },
            uid: acct.uid,
            gid: acct.gid,
        }
    }

    /// Writes a file in the instance owned by the instance's account.
    pub fn file(&self, rel: &str, body: &[u8], mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let p = self.inst.home.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        if sys::euid() == 0 {
            std::os::unix::fs::chown(&p, Some(self.uid), Some(self.gid)).unwrap();
        }
    }

    /// Makes a Maildir owned by the instance's account.
    pub fn maildir(&self, rel: &str) -> PathBuf {
        let p = self.inst.home.join(rel);
        for d in ["", "tmp", "new", "cur"] {
            let q = p.join(d);
            std::fs::create_dir_all(&q).unwrap();
            if sys::euid() == 0 {
                std::os::unix::fs::chown(&q, Some(self.uid), Some(self.gid)).unwrap();
            }
        }
        let mut a = p.clone();
        while let Some(parent) = a.parent() {
            if parent == self.inst.home || !parent.starts_with(&self.inst.home) {
                break;
            }
            if sys::euid() == 0 {
                std::os::unix::fs::chown(parent, Some(self.uid), Some(self.gid)).unwrap();
            }
            a = parent.to_path_buf();
        }
        p
    }
}

/// qmail-start (and so qmail-send and its helpers) running on an instance; stopped with
/// SIGTERM, then SIGKILL, by pid on drop.
pub struct Daemons {
    pub child: Option<std::process::Child>,
    pub log: PathBuf,
}

impl Daemons {
    pub fn start(inst: &Instance, env: &[(&str, &str)]) -> Daemons {
        static RUN: AtomicU32 = AtomicU32::new(0);
        let log = inst
            .home
            .join(format!("send-{}.log", RUN.fetch_add(1, Ordering::Relaxed)));
        let out = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&log)
            .unwrap();
        let mut c = inst.cmd("qmail-start");
        c.arg("./Maildir/")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::inherit());
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c.spawn().expect("qmail-start");
        let d = Daemons {
            child: Some(child),
            log,
        };
        // qmail-send logs its status once it is ready for signals and work.
        let ready = wait_for(20, || d.log_text().contains("status: local").then_some(()));
        assert!(
            ready.is_some(),
            "qmail-send did not start; log:\n{}",
            d.log_text()
        );
        d
    }

    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Sends SIGTERM and waits for qmail-send to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = sys::proc::kill(c.id(), sys::proc::Signal::Terminate);
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if c.try_wait().unwrap().is_some() {
                    return;
                }
                if Instant::now() > deadline {
                    let ps = Command::new("ps")
                        .args(["-eo", "pid,ppid,stat,wchan:30,comm"])
                        .output()
                        .unwrap();
                    let mut tree = String::from_utf8_lossy(&ps.stdout)
                        .lines()
                        .filter(|l| l.contains("qmail"))
                        .collect::<Vec<_>>()
                        .join("\n");
                    for dir in std::fs::read_dir("/proc").unwrap().flatten() {
                        let comm =
                            std::fs::read_to_string(dir.path().join("comm")).unwrap_or_default();
                        let Ok(fds) = std::fs::read_dir(dir.path().join("fd")) else {
                            continue;
                        };
                        let links: Vec<String> = fds
                            .flatten()
                            .filter_map(|f| {
                                std::fs::read_link(f.path()).ok().map(|l| {
                                    format!("{}->{}", f.file_name().to_string_lossy(), l.display())
                                })
                            })
                            .filter(|l| l.contains("pipe"))
                            .collect();
                        if !links.is_empty() && !comm.starts_with("cargo") {
                            tree.push_str(&format!(
                                "\n{} {}: {}",
                                dir.file_name().to_string_lossy(),
                                comm.trim(),
                                links.join(" ")
                            ));
                        }
                    }
                    let _ = c.kill();
                    let _ = c.wait();
                    panic!(
                        "qmail-send {} did not stop on SIGTERM; processes:\n{tree}\nlog:\n{}",
                        c.id(),
                        self.log_text()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Kills qmail-send with SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = sys::proc::kill(c.id(), sys::proc::Signal::Terminate);
            std::thread::sleep(Duration::from_millis(200));
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits until `f` returns Some, for at most `secs` seconds.
pub fn wait_for<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The files in a Maildir's new/ directory, with their bytes.
pub fn maildir_new(dir: &Path) -> Vec<Vec<u8>> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join("new"))
        .map(|d| {
            d.flatten()
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.into_iter().map(|x| x.1).collect()
}

/// The pids of the processes whose parent is `pid`, with their command names, from /proc.
pub fn children(pid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let comm = stat
            .get(stat.find('(').map_or(0, |i| i + 1)..close)
            .unwrap_or("")
            .to_string();
        let ppid = stat
            .get(close + 2..)
            .and_then(|r| r.split(' ').nth(1))
            .and_then(|x| x.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push((p, comm));
        }
    }
    out
}
