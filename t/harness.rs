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
/// if it overstays.
pub fn run_with(mut c: Command, input: &[u8], secs: u64) -> Output {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("command did not finish within {secs} s: {c:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = feeder.join();
    child.wait_with_output().unwrap()
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
