//! qmail-send: the delivery scheduler, started by qmail-start. Logs on fd 0; talks to
//! qmail-lspawn (fds 1, 2), qmail-rspawn (3, 4), qmail-clean (5, 6) and qmail-todo (7, 8).
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use sqmail::send::{Config, Send};
use sqmail::sys::proc::Signal;
use sqmail::{env, prog, sys};

/// Logs why qmail-send cannot start, on the log (fd 0) if it is still open, else on fd 2.
fn alert(text: &str) -> ExitCode {
    let line = format!("alert: cannot start: {text}\n");
    match sys::inherited_fd(0) {
        Some(mut log) => {
            let _ = log.write_all(line.as_bytes());
        }
        None => prog::err(line.as_bytes()),
    }
    ExitCode::from(111)
}

/// The queue lock inherited from qmail-start, if LOCK_FD is open on the same file.
fn inherited_lock(opened: &std::fs::File) -> Option<std::fs::File> {
    use std::os::unix::fs::MetadataExt;
    let f = sys::inherited_fd(sqmail::start::LOCK_FD)?;
    let (a, b) = (f.metadata().ok()?, opened.metadata().ok()?);
    (a.dev() == b.dev() && a.ino() == b.ino()).then_some(f)
}

fn main() -> ExitCode {
    // First of all, so that an early SIGALRM or SIGHUP cannot end the process.
    sys::proc::catch(&[Signal::Terminate, Signal::Alarm, Signal::Hangup]);
    let home = env::home();
    if std::env::set_current_dir(&home).is_err() {
        return alert("unable to switch to home directory");
    }
    let Ok(cfg) = Config::load(&home) else {
        return alert("unable to read controls");
    };
    if std::env::set_current_dir("queue").is_err() {
        return alert("unable to switch to queue directory");
    }
    sys::umask(0o077);
    let Ok(opened) = std::fs::OpenOptions::new()
        .write(true)
        .open("lock/sendmutex")
    else {
        return alert("unable to open mutex");
    };
    // qmail-start hands over the lock it took (shared with qmail-todo) on LOCK_FD; taking
    // that open file again succeeds, while a fresh open would find it held.
    let mutex = inherited_lock(&opened).unwrap_or(opened);
    if !sys::try_lock_exclusive(&mutex).unwrap_or(false) {
        return alert("qmail-send is already running");
    }
    match Send::start(&home, cfg) {
        Ok(s) => s.run(),
        Err(e) => return alert(&e.to_string()),
    }
    drop(mutex);
    ExitCode::SUCCESS
}
